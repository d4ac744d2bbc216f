"""Items as plain documents (JSON/YAML mappings) and back.

One document shape serves the seed and export files, the before/after of
directory events and the stored results of idempotent requests, so an auditor
reads an event in the same vocabulary as the catalogue file. `*_to_doc`
writes every field; `*_from_doc` fills defaults for what a hand-written seed
may leave out and raises KeyError / TypeError / ValueError on a malformed row.
Business rules are not checked here (see _rules.py).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._model import (
    ApplicationState,
    CertificateType,
    DataItem,
    Department,
    DepartmentState,
    Grant,
    GrantState,
    Material,
    MaterialSource,
    Matter,
    Resource,
    ResourceState,
    SharingApplication,
    SharingType,
)

# Only `name_of` is public; the document functions serve the store, the
# import/export and the events, whose documents callers read as plain mappings.
__all__ = ["name_of"]

_T = TypeVar("_T")
Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Codec(Generic[_T]):
    """How one kind of item becomes a document and back."""

    kind: str
    to_doc: Callable[[_T], Doc]
    from_doc: Callable[[Mapping[str, Any]], _T]


def name_of(item: object) -> str:
    """The AIP resource name of an item, as events and the gRPC layer name it."""
    if isinstance(item, Department):
        return f"departments/{item.uscc}"
    if isinstance(item, Resource):
        return f"resources/{item.code}"
    if isinstance(item, CertificateType):
        return f"certificateTypes/{item.type_code}"
    if isinstance(item, Matter):
        return f"matters/{item.code}"
    if isinstance(item, Grant):
        return f"grants/{item.grant_id}"
    if isinstance(item, SharingApplication):
        return f"sharingApplications/{item.application_id}"
    raise TypeError(f"not a directory item: {type(item).__name__}")


def _row(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError("a row must be a mapping")
    return value


def _required(row: Mapping[str, Any], key: str) -> str:
    value = row[key]
    if value is None:
        raise ValueError(f"{key} must not be empty")
    return str(value)


def _text(row: Mapping[str, Any], key: str, default: str = "") -> str:
    value = row.get(key)
    return default if value is None else str(value)


def _bool(value: object) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0", ""):
            return False
        raise ValueError(f"{value!r} is not a boolean")
    return bool(value)


def _date(value: object) -> _dt.date:
    if isinstance(value, _dt.datetime):
        raise ValueError(f"{value!r} is a timestamp, not a date")
    if isinstance(value, _dt.date):
        return value
    return _dt.date.fromisoformat(str(value))


def _timestamp(value: object) -> _dt.datetime | None:
    if value is None or value == "":
        return None
    parsed = value if isinstance(value, _dt.datetime) else _dt.datetime.fromisoformat(str(value))
    # Stored times are UTC; a naive value (SQLite, hand-written YAML) is taken as UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_dt.UTC)


def _time_text(value: _dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError("expected a list")
    return [str(v) for v in value]


def department_to_doc(d: Department) -> Doc:
    return {
        "uscc": d.uscc,
        "display_name": d.display_name,
        "region_code": d.region_code,
        "state": d.state.value,
        "version": d.version,
        "delete_time": _time_text(d.delete_time),
    }


def department_from_doc(value: Mapping[str, Any]) -> Department:
    row = _row(value)
    return Department(
        uscc=_required(row, "uscc"),
        display_name=_required(row, "display_name"),
        region_code=_text(row, "region_code"),
        state=DepartmentState(_text(row, "state", "ACTIVE")),
        version=int(row.get("version") or 1),
        delete_time=_timestamp(row.get("delete_time")),
    )


def resource_to_doc(r: Resource) -> Doc:
    return {
        "code": r.code,
        "display_name": r.display_name,
        "classification": r.classification,
        "provider": r.provider,
        "summary": r.summary,
        "format": r.format,
        "sharing_type": r.sharing_type.value,
        "sharing_condition": r.sharing_condition,
        "legal_basis": r.legal_basis,
        "sharing_method": r.sharing_method,
        "open_to_public": r.open_to_public,
        "update_cycle": r.update_cycle,
        "publish_date": r.publish_date,
        "state": r.state.value,
        "version": r.version,
        "delete_time": _time_text(r.delete_time),
        "data_items": [
            {"name": i.name, "label": i.label, "data_type": i.data_type, "personal": i.personal}
            for i in r.data_items
        ],
    }


def _data_item(value: object) -> DataItem:
    row = _row(value)
    return DataItem(
        name=_required(row, "name"),
        label=_required(row, "label"),
        data_type=_required(row, "data_type"),
        personal=_bool(row.get("personal", False)),
    )


def resource_from_doc(value: Mapping[str, Any]) -> Resource:
    row = _row(value)
    items = row.get("data_items") or []
    if not isinstance(items, list | tuple):
        raise TypeError("data_items must be a list")
    publish_date = row.get("publish_date")
    return Resource(
        code=_required(row, "code"),
        display_name=_required(row, "display_name"),
        classification=_text(row, "classification"),
        provider=_required(row, "provider"),
        summary=_text(row, "summary"),
        format=_text(row, "format"),
        data_items=tuple(_data_item(item) for item in items),
        sharing_type=SharingType(_required(row, "sharing_type")),
        sharing_method=_text(row, "sharing_method"),
        update_cycle=_text(row, "update_cycle"),
        # YAML reads an unquoted 2025-03-01 as a date; str() gives it back as written.
        publish_date="" if publish_date is None else str(publish_date),
        sharing_condition=_text(row, "sharing_condition"),
        legal_basis=_text(row, "legal_basis"),
        open_to_public=_bool(row.get("open_to_public", False)),
        state=ResourceState(_text(row, "state", "PUBLISHED")),
        version=int(row.get("version") or 1),
        delete_time=_timestamp(row.get("delete_time")),
    )


def certificate_type_to_doc(c: CertificateType) -> Doc:
    return {
        "key": c.key,
        "type_code": c.type_code,
        "display_name": c.display_name,
        "holder_id_type": c.holder_id_type,
        "issuer": c.issuer,
        "resource": c.resource,
        "version": c.version,
        "delete_time": _time_text(c.delete_time),
    }


def certificate_type_from_doc(value: Mapping[str, Any]) -> CertificateType:
    row = _row(value)
    return CertificateType(
        key=_required(row, "key"),
        type_code=_required(row, "type_code"),
        display_name=_required(row, "display_name"),
        holder_id_type=_required(row, "holder_id_type"),
        issuer=_required(row, "issuer"),
        resource=_required(row, "resource"),
        version=int(row.get("version") or 1),
        delete_time=_timestamp(row.get("delete_time")),
    )


def matter_to_doc(m: Matter) -> Doc:
    return {
        "code": m.code,
        "name": m.name,
        "materials": [
            {
                "name": material.name,
                "source": material.source.value,
                "source_key": material.source_key,
                "data_items": list(material.data_items),
            }
            for material in m.materials
        ],
        "version": m.version,
        "delete_time": _time_text(m.delete_time),
    }


def _material(value: object) -> Material:
    row = _row(value)
    return Material(
        name=_required(row, "name"),
        source=MaterialSource(_required(row, "source")),
        source_key=_text(row, "source_key"),
        data_items=tuple(_strings(row.get("data_items"))),
    )


def matter_from_doc(value: Mapping[str, Any]) -> Matter:
    row = _row(value)
    materials = row.get("materials") or []
    if not isinstance(materials, list | tuple):
        raise TypeError("materials must be a list")
    return Matter(
        code=_required(row, "code"),
        name=_required(row, "name"),
        materials=tuple(_material(m) for m in materials),
        version=int(row.get("version") or 1),
        delete_time=_timestamp(row.get("delete_time")),
    )


def grant_to_doc(g: Grant) -> Doc:
    return {
        "id": g.grant_id,
        "consumer": g.consumer,
        "resource": g.resource,
        "data_items": sorted(g.data_items),
        "matter_codes": sorted(g.matter_codes),
        "valid_from": g.valid_from.isoformat(),
        "valid_until": g.valid_until.isoformat(),
        "state": g.state.value,
        "application_id": g.application_id,
    }


def grant_from_doc(value: Mapping[str, Any]) -> Grant:
    row = _row(value)
    return Grant(
        grant_id=_required(row, "id"),
        consumer=_required(row, "consumer"),
        resource=_required(row, "resource"),
        data_items=frozenset(_strings(row["data_items"])),
        matter_codes=frozenset(_strings(row["matter_codes"])),
        valid_from=_date(row["valid_from"]),
        valid_until=_date(row["valid_until"]),
        state=GrantState(_text(row, "state", "ACTIVE")),
        application_id=_text(row, "application_id"),
    )


def application_to_doc(a: SharingApplication) -> Doc:
    return {
        "application_id": a.application_id,
        "consumer": a.consumer,
        "provider": a.provider,
        "resource": a.resource,
        "data_items": list(a.data_items),
        "matter_codes": list(a.matter_codes),
        "purpose": a.purpose,
        "legal_basis": a.legal_basis,
        "valid_from": a.valid_from.isoformat(),
        "valid_until": a.valid_until.isoformat(),
        "create_time": a.create_time.isoformat(),
        "due_date": a.due_date.isoformat(),
        "state": a.state.value,
        "update_time": _time_text(a.update_time),
        "decided_by": a.decided_by,
        "decide_time": _time_text(a.decide_time),
        "reason": a.reason,
        "grant_id": a.grant_id,
    }


def application_from_doc(value: Mapping[str, Any]) -> SharingApplication:
    row = _row(value)
    create_time = _timestamp(row["create_time"])
    if create_time is None:
        raise ValueError("create_time must not be empty")
    return SharingApplication(
        application_id=_required(row, "application_id"),
        consumer=_required(row, "consumer"),
        provider=_required(row, "provider"),
        resource=_required(row, "resource"),
        data_items=tuple(_strings(row["data_items"])),
        matter_codes=tuple(_strings(row["matter_codes"])),
        purpose=_text(row, "purpose"),
        legal_basis=_text(row, "legal_basis"),
        valid_from=_date(row["valid_from"]),
        valid_until=_date(row["valid_until"]),
        create_time=create_time,
        due_date=_date(row["due_date"]),
        state=ApplicationState(_required(row, "state")),
        update_time=_timestamp(row.get("update_time")),
        decided_by=_text(row, "decided_by"),
        decide_time=_timestamp(row.get("decide_time")),
        reason=_text(row, "reason"),
        grant_id=_text(row, "grant_id"),
    )
