"""Catalogue storage on SQLAlchemy 2 async: SQLite (aiosqlite) by default,
PostgreSQL (asyncpg) by changing the URL.

The gateway loads a `Catalogue` snapshot once and serves requests from memory;
the store is touched only at start and on directory changes.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from ._model import (
    Catalogue,
    CertificateType,
    DataItem,
    Department,
    DepartmentState,
    Grant,
    Resource,
    ResourceState,
    SharingType,
)

__all__ = ["CatalogueStore", "SqlCatalogueStore"]

_metadata = MetaData()

_departments = Table(
    "departments",
    _metadata,
    Column("uscc", String(18), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("state", String(16), nullable=False),
)

_resources = Table(
    "resources",
    _metadata,
    Column("code", String(64), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("classification", Text, nullable=False),
    Column("provider", String(18), nullable=False),
    Column("summary", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("data_items", JSON, nullable=False),
    Column("sharing_type", String(16), nullable=False),
    Column("sharing_condition", Text, nullable=False),
    Column("legal_basis", Text, nullable=False),
    Column("sharing_method", Text, nullable=False),
    Column("open_to_public", Boolean, nullable=False),
    Column("update_cycle", Text, nullable=False),
    Column("publish_date", String(10), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
)

_certificate_types = Table(
    "certificate_types",
    _metadata,
    Column("key", String(64), primary_key=True),
    Column("type_code", String(21), nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("holder_id_type", String(3), nullable=False),
    Column("issuer", String(18), nullable=False),
    Column("resource", String(64), nullable=False),
)

_grants = Table(
    "grants",
    _metadata,
    Column("grant_id", String(64), primary_key=True),
    Column("consumer", String(18), nullable=False, index=True),
    Column("resource", String(64), nullable=False),
    Column("data_items", JSON, nullable=False),
    Column("matter_codes", JSON, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
)


class CatalogueStore(Protocol):
    """Where the directory lives between gateway starts."""

    async def create_schema(self) -> None: ...

    async def load(self) -> Catalogue: ...

    async def replace(self, catalogue: Catalogue) -> None: ...

    async def close(self) -> None: ...


class SqlCatalogueStore:
    """The directory in a SQL database reached through SQLAlchemy async."""

    def __init__(self, url: str) -> None:
        self._engine: AsyncEngine = create_async_engine(url)

    async def create_schema(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(_metadata.create_all)

    async def is_empty(self) -> bool:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(_departments.c.uscc).limit(1))).first()
        return row is None

    async def replace(self, catalogue: Catalogue) -> None:
        """Write `catalogue` as the whole directory, in one transaction."""
        async with self._engine.begin() as conn:
            for table in (_grants, _certificate_types, _resources, _departments):
                await conn.execute(delete(table))
            await _insert(
                conn, _departments, [_department_row(d) for d in catalogue.departments.values()]
            )
            await _insert(
                conn, _resources, [_resource_row(r) for r in catalogue.resources.values()]
            )
            await _insert(
                conn,
                _certificate_types,
                [_certificate_type_row(c) for c in catalogue.certificate_types.values()],
            )
            await _insert(conn, _grants, [_grant_row(g) for g in catalogue.grants])

    async def load(self) -> Catalogue:
        async with self._engine.connect() as conn:
            departments = (await conn.execute(select(_departments))).mappings().all()
            resources = (await conn.execute(select(_resources))).mappings().all()
            ctypes = (await conn.execute(select(_certificate_types))).mappings().all()
            grants = (await conn.execute(select(_grants))).mappings().all()
        return Catalogue.build(
            departments=(
                Department(
                    uscc=r["uscc"],
                    display_name=r["display_name"],
                    region_code=r["region_code"],
                    state=DepartmentState(r["state"]),
                )
                for r in departments
            ),
            resources=(_resource_from_row(r) for r in resources),
            certificate_types=(CertificateType(**dict(r)) for r in ctypes),
            grants=(_grant_from_row(r) for r in grants),
        )

    async def close(self) -> None:
        await self._engine.dispose()


async def _insert(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(table), list(rows))


def _department_row(d: Department) -> dict[str, Any]:
    return {
        "uscc": d.uscc,
        "display_name": d.display_name,
        "region_code": d.region_code,
        "state": d.state.value,
    }


def _resource_row(r: Resource) -> dict[str, Any]:
    return {
        "code": r.code,
        "display_name": r.display_name,
        "classification": r.classification,
        "provider": r.provider,
        "summary": r.summary,
        "format": r.format,
        "data_items": [
            {"name": i.name, "label": i.label, "data_type": i.data_type, "personal": i.personal}
            for i in r.data_items
        ],
        "sharing_type": r.sharing_type.value,
        "sharing_condition": r.sharing_condition,
        "legal_basis": r.legal_basis,
        "sharing_method": r.sharing_method,
        "open_to_public": r.open_to_public,
        "update_cycle": r.update_cycle,
        "publish_date": r.publish_date,
        "state": r.state.value,
        "version": r.version,
    }


def _resource_from_row(r: Any) -> Resource:
    return Resource(
        code=r["code"],
        display_name=r["display_name"],
        classification=r["classification"],
        provider=r["provider"],
        summary=r["summary"],
        format=r["format"],
        data_items=tuple(DataItem(**item) for item in r["data_items"]),
        sharing_type=SharingType(r["sharing_type"]),
        sharing_condition=r["sharing_condition"],
        legal_basis=r["legal_basis"],
        sharing_method=r["sharing_method"],
        open_to_public=bool(r["open_to_public"]),
        update_cycle=r["update_cycle"],
        publish_date=r["publish_date"],
        state=ResourceState(r["state"]),
        version=int(r["version"]),
    )


def _certificate_type_row(c: CertificateType) -> dict[str, Any]:
    return {
        "key": c.key,
        "type_code": c.type_code,
        "display_name": c.display_name,
        "holder_id_type": c.holder_id_type,
        "issuer": c.issuer,
        "resource": c.resource,
    }


def _grant_row(g: Grant) -> dict[str, Any]:
    return {
        "grant_id": g.grant_id,
        "consumer": g.consumer,
        "resource": g.resource,
        "data_items": sorted(g.data_items),
        "matter_codes": sorted(g.matter_codes),
        "valid_from": g.valid_from,
        "valid_until": g.valid_until,
    }


def _grant_from_row(r: Any) -> Grant:
    valid_from = r["valid_from"]
    valid_until = r["valid_until"]
    assert isinstance(valid_from, _dt.date)
    assert isinstance(valid_until, _dt.date)
    return Grant(
        grant_id=r["grant_id"],
        consumer=r["consumer"],
        resource=r["resource"],
        data_items=frozenset(r["data_items"]),
        matter_codes=frozenset(r["matter_codes"]),
        valid_from=valid_from,
        valid_until=valid_until,
    )
