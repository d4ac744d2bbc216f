"""Catalogue storage on SQLAlchemy 2 async: SQLite (aiosqlite) by default,
PostgreSQL (asyncpg) by changing the URL.

`SqlCatalogueStore` is the one store class: the snapshot API the gateway
started with (`create_schema`, `is_empty`, `replace`, `load`, `close`), plus
`revision()`, catalogue administration (_admin.py), the application desk
(_desk.py), events (_core.py) and the write half of import (`apply_import`).
The gateway loads a `Catalogue` snapshot and serves requests from memory; it
polls `revision()` and reloads when the number moved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy import delete, insert, select

from . import _tables as t
from ._admin import CatalogueAdmin
from ._codec import Codec, name_of
from ._core import Tx
from ._desk import ApplicationDesk
from ._errors import ImportRejected
from ._model import (
    Catalogue,
    CertificateType,
    Department,
    Grant,
    Matter,
    Resource,
    SharingApplication,
)

__all__ = ["CatalogueStore", "ImportPlan", "ImportReport", "SqlCatalogueStore"]

_T = TypeVar("_T")

_KINDS = ("departments", "resources", "certificate_types", "matters", "grants")


class CatalogueStore(Protocol):
    """Where the directory lives between gateway starts."""

    async def create_schema(self) -> None: ...

    async def load(self) -> Catalogue: ...

    async def replace(self, catalogue: Catalogue) -> None: ...

    async def seed_if_empty(self, catalogue: Catalogue) -> bool: ...

    async def revision(self) -> int: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ImportPlan:
    """Items to upsert by natural key, or the (line, problem) pairs that stop the import."""

    departments: Sequence[Department] = ()
    resources: Sequence[Resource] = ()
    certificate_types: Sequence[CertificateType] = ()
    matters: Sequence[Matter] = ()
    grants: Sequence[Grant] = ()
    problems: Sequence[tuple[int, str]] = ()
    source: str = "<import>"


@dataclass(frozen=True)
class ImportReport:
    """How many items of each kind an import created, updated and left unchanged."""

    created: Mapping[str, int] = field(default_factory=dict)
    updated: Mapping[str, int] = field(default_factory=dict)
    unchanged: Mapping[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(self.created.values()) or any(self.updated.values())


def _report_codec() -> Codec[ImportReport]:
    return Codec(
        "import",
        lambda r: {
            "created": dict(r.created),
            "updated": dict(r.updated),
            "unchanged": dict(r.unchanged),
        },
        lambda d: ImportReport(d["created"], d["updated"], d["unchanged"]),
    )


def same_content(current: Any, item: Any) -> bool:
    """Equal but for the version, which the store owns."""
    if hasattr(current, "version"):
        item = dataclasses.replace(item, version=current.version)
    return bool(current == item)


class SqlCatalogueStore(CatalogueAdmin, ApplicationDesk):
    """The directory in a SQL database reached through SQLAlchemy async.

    Constructor: `SqlCatalogueStore(url, *, calendar=None, due_working_days=10,
    clock=utc_now, timezone=UTC+8, engine_options=None)`. The URL chooses the
    database: `sqlite+aiosqlite:///path/directory.db` or
    `postgresql+asyncpg://user@host/db`; `engine_options` are passed to
    SQLAlchemy's `create_async_engine` (pool size, asyncpg `connect_args`…).
    """

    async def replace(self, catalogue: Catalogue, *, actor: str = "system") -> None:
        """Write `catalogue` as the whole directory, in one transaction (used to seed).

        Applications and events are kept; one `catalogue.replace` event records the counts.
        """

        async def body(tx: Tx) -> None:
            await _write_whole(tx, catalogue)

        await self._mutate(
            actor=actor,
            request_id="",
            operation="catalogue.replace",
            request={},
            codec=Codec("none", lambda _: {}, lambda _: None),
            body=body,
        )

    async def seed_if_empty(self, catalogue: Catalogue, *, actor: str = "system") -> bool:
        """Write `catalogue` only if the directory has no departments; True if it did.

        Checked inside the writing transaction, after the writer lock: gateways
        starting together on one empty database seed it once, and a replica that
        comes second can never wipe a change made after the first one seeded.
        """

        async def body(tx: Tx) -> bool:
            stored = await tx.conn.execute(select(t.departments.c.uscc).limit(1))
            if stored.first() is not None:
                return False
            await _write_whole(tx, catalogue)
            return True

        return await self._mutate(
            actor=actor,
            request_id="",
            operation="catalogue.seed",
            request={},
            codec=Codec("seeded", lambda seeded: {"seeded": seeded}, lambda doc: doc["seeded"]),
            body=body,
        )

    async def apply_import(
        self, build: Callable[[Catalogue], ImportPlan], *, actor: str
    ) -> ImportReport:
        """Upsert what `build` plans against the committed directory, all or nothing.

        `build` sees the directory as of this transaction, so references and
        lifecycle checks hold against what is committed; if its plan has
        problems, ImportRejected is raised and nothing is written. Items
        equal to what is stored are left alone: importing a file twice
        writes nothing the second time (no event, no revision bump).
        """
        return await self.apply_catalogue_import(lambda snapshot, _: build(snapshot), actor=actor)

    async def apply_catalogue_import(
        self,
        build: Callable[[Catalogue, Mapping[str, SharingApplication]], ImportPlan],
        *,
        actor: str,
    ) -> ImportReport:
        """`apply_import` for a plan that also needs the applications, by id: a file's
        grants must not claim an application of this directory (see _import.py)."""

        async def body(tx: Tx) -> ImportReport:
            snapshot = await self._snapshot(tx.conn)
            applications = {
                app.application_id: app for app in await self._all(tx.conn, t.APPLICATION)
            }
            plan = build(snapshot, applications)
            if plan.problems:
                raise ImportRejected(plan.problems, source=plan.source)
            created: dict[str, int] = {}
            updated: dict[str, int] = {}
            unchanged: dict[str, int] = {}
            current_by_kind: Mapping[str, Mapping[str, Any]] = {
                "departments": snapshot.departments,
                "resources": snapshot.resources,
                "certificate_types": snapshot.certificate_types,
                "matters": snapshot.matters,
                "grants": {g.grant_id: g for g in snapshot.grants},
            }
            kinds: Mapping[str, t.Kind[Any]] = {
                "departments": t.DEPARTMENT,
                "resources": t.RESOURCE,
                "certificate_types": t.CERTIFICATE_TYPE,
                "matters": t.MATTER,
                "grants": t.GRANT,
            }
            for section in _KINDS:
                kind = kinds[section]
                counts = [0, 0, 0]
                for item in getattr(plan, section):
                    current = current_by_kind[section].get(kind.key_of(item))
                    if current is not None and same_content(current, item):
                        counts[2] += 1
                        continue
                    if current is None:
                        await self._insert(tx.conn, kind, item)
                        counts[0] += 1
                    else:
                        if hasattr(current, "version"):
                            item = dataclasses.replace(item, version=current.version + 1)
                        await self._update(tx.conn, kind, item)
                        counts[1] += 1
                    before = None if current is None else kind.codec.to_doc(current)
                    tx.record(
                        f"{kind.codec.kind}.import", name_of(item), before, kind.codec.to_doc(item)
                    )
                created[section], updated[section], unchanged[section] = counts
            return ImportReport(created, updated, unchanged)

        return await self._mutate(
            actor=actor,
            request_id="",
            operation="catalogue.import",
            request={},
            codec=_report_codec(),
            body=body,
        )


async def _insert_all(tx: Tx, kind: t.Kind[_T], items: Any) -> None:
    """Insert into an emptied table; ordered kinds are numbered from 1 in `items` order."""
    rows = [kind.to_row(item) for item in items]
    if kind.order_column is not None:
        for number, row in enumerate(rows, 1):
            row[kind.order_column] = number
    if rows:
        await tx.conn.execute(insert(kind.table), rows)


async def _write_whole(tx: Tx, catalogue: Catalogue) -> None:
    """Replace every catalogue table's rows by `catalogue`'s, as one recorded event."""
    for table in (t.grants, t.matters, t.certificate_types, t.resources, t.departments):
        await tx.conn.execute(delete(table))
    await _insert_all(tx, t.DEPARTMENT, catalogue.departments.values())
    await _insert_all(tx, t.RESOURCE, catalogue.resources.values())
    await _insert_all(tx, t.CERTIFICATE_TYPE, catalogue.certificate_types.values())
    await _insert_all(tx, t.MATTER, catalogue.matters.values())
    await _insert_all(tx, t.GRANT, catalogue.grants)
    counts = {
        "departments": len(catalogue.departments),
        "resources": len(catalogue.resources),
        "certificate_types": len(catalogue.certificate_types),
        "matters": len(catalogue.matters),
        "grants": len(catalogue.grants),
    }
    tx.record("catalogue.replace", "catalogue", None, counts)
