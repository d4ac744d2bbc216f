"""List pages: filter, order, page size and opaque page tokens, in memory.

The directory holds thousands of rows, not millions, so a list reads the
collection and filters in Python (docs/decisions.md, "Lists filter in memory"). Page tokens
carry an offset and a digest of (collection, filter, order_by, show_deleted):
a token presented with any of them changed is refused rather than silently
paging through a different result.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._errors import InvalidArgument
from ._filter import FieldKind, FilterField, order_items, parse_filter, parse_order_by
from ._model import (
    ApplicationState,
    CertificateType,
    Department,
    DepartmentState,
    DirectoryEvent,
    Grant,
    GrantState,
    Matter,
    Resource,
    ResourceState,
    SharingApplication,
    SharingType,
)

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Page", "paginate"]

_T = TypeVar("_T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Page(Generic[_T]):
    """One page of a list; `next_page_token` is empty on the last page."""

    items: tuple[_T, ...]
    next_page_token: str
    total_size: int


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _token(collection: str, query: str, offset: int) -> str:
    raw = json.dumps({"c": collection, "q": query, "o": offset}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _offset(token: str, collection: str, query: str) -> int:
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset = decoded["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError("bad offset")
        same = decoded["c"] == collection and decoded["q"] == query
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidArgument(
            [("page_token", "not a page token issued by this directory")],
            reason="PAGE_TOKEN_INVALID",
        ) from None
    if not same:
        raise InvalidArgument(
            [("page_token", "the token belongs to another collection, filter or order_by")],
            reason="PAGE_TOKEN_INVALID",
        )
    return offset


def paginate(
    collection: str,
    items: Iterable[_T],
    fields: Mapping[str, FilterField[_T]],
    *,
    tiebreak: str,
    filter: str = "",
    order_by: str = "",
    page_size: int = 0,
    page_token: str = "",
    bound: str = "",
    where: Callable[[_T], bool] | None = None,
) -> Page[_T]:
    """Filter, order and cut one page; `bound` adds list options (show_deleted, whose
    items `where` keeps) to the token. `where` is a restriction applied in code, for
    one that filter text would state at a length that grows with the data."""
    if page_size < 0:
        raise InvalidArgument([("page_size", "must not be negative")])
    predicate = parse_filter(filter, fields)
    order = parse_order_by(order_by, fields)
    query = _digest(collection, filter, order_by, bound)
    offset = _offset(page_token, collection, query) if page_token else 0
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    kept = (i for i in items if predicate(i) and (where is None or where(i)))
    selected = order_items(kept, order, fields, tiebreak)
    page = tuple(selected[offset : offset + size])
    end = offset + len(page)
    next_token = _token(collection, query, end) if end < len(selected) else ""
    return Page(items=page, next_page_token=next_token, total_size=len(selected))


def _s(get: Callable[[_T], Any], prefix: str = "") -> FilterField[_T]:
    return FilterField(FieldKind.STRING, get, prefix=prefix)


def _enum(get: Callable[[_T], Any], values: Iterable[str]) -> FilterField[_T]:
    return FilterField(FieldKind.ENUM, get, values=frozenset(values))


def _of(kind: FieldKind, get: Callable[[_T], Any]) -> FilterField[_T]:
    return FilterField(kind, get)


def _publish_date(r: Resource) -> _dt.date | None:
    try:
        return _dt.date.fromisoformat(r.publish_date) if r.publish_date else None
    except ValueError:
        return None


_DEPT = "departments/"
_RES = "resources/"

DEPARTMENT_FIELDS: Mapping[str, FilterField[Department]] = {
    "uscc": _s(lambda d: d.uscc, _DEPT),
    "display_name": _s(lambda d: d.display_name),
    "region_code": _s(lambda d: d.region_code),
    "state": _enum(lambda d: d.state.value, DepartmentState),
    "version": _of(FieldKind.INT, lambda d: d.version),
    "delete_time": _of(FieldKind.TIMESTAMP, lambda d: d.delete_time),
}

RESOURCE_FIELDS: Mapping[str, FilterField[Resource]] = {
    "code": _s(lambda r: r.code, _RES),
    "display_name": _s(lambda r: r.display_name),
    "classification": _s(lambda r: r.classification),
    "provider": _s(lambda r: r.provider, _DEPT),
    "format": _s(lambda r: r.format),
    "sharing_type": _enum(lambda r: r.sharing_type.value, SharingType),
    "sharing_method": _s(lambda r: r.sharing_method),
    "update_cycle": _s(lambda r: r.update_cycle),
    "publish_date": _of(FieldKind.DATE, _publish_date),
    "open_to_public": _of(FieldKind.BOOL, lambda r: r.open_to_public),
    "state": _enum(lambda r: r.state.value, ResourceState),
    "version": _of(FieldKind.INT, lambda r: r.version),
    "data_items": _of(FieldKind.LIST, lambda r: r.data_item_names),
    "delete_time": _of(FieldKind.TIMESTAMP, lambda r: r.delete_time),
}

CERTIFICATE_TYPE_FIELDS: Mapping[str, FilterField[CertificateType]] = {
    "key": _s(lambda c: c.key),
    "type_code": _s(lambda c: c.type_code, "certificateTypes/"),
    "display_name": _s(lambda c: c.display_name),
    "holder_id_type": _s(lambda c: c.holder_id_type),
    "issuer": _s(lambda c: c.issuer, _DEPT),
    "resource": _s(lambda c: c.resource, _RES),
    "version": _of(FieldKind.INT, lambda c: c.version),
    "delete_time": _of(FieldKind.TIMESTAMP, lambda c: c.delete_time),
}

MATTER_FIELDS: Mapping[str, FilterField[Matter]] = {
    "code": _s(lambda m: m.code, "matters/"),
    "name": _s(lambda m: m.name),
    "material_sources": _of(
        FieldKind.LIST, lambda m: tuple(x.source_key for x in m.materials if x.source_key)
    ),
    "version": _of(FieldKind.INT, lambda m: m.version),
    "delete_time": _of(FieldKind.TIMESTAMP, lambda m: m.delete_time),
}

GRANT_FIELDS: Mapping[str, FilterField[Grant]] = {
    "grant_id": _s(lambda g: g.grant_id, "grants/"),
    "consumer": _s(lambda g: g.consumer, _DEPT),
    "resource": _s(lambda g: g.resource, _RES),
    "state": _enum(lambda g: g.state.value, GrantState),
    "application_id": _s(lambda g: g.application_id, "sharingApplications/"),
    "valid_from": _of(FieldKind.DATE, lambda g: g.valid_from),
    "valid_until": _of(FieldKind.DATE, lambda g: g.valid_until),
    "data_items": _of(FieldKind.LIST, lambda g: g.data_items),
    "matter_codes": _of(FieldKind.LIST, lambda g: g.matter_codes),
}


def application_fields(today: _dt.date) -> Mapping[str, FilterField[SharingApplication]]:
    """Application fields; `overdue` (电子监察) is computed against `today`."""
    return {
        "application_id": _s(lambda a: a.application_id, "sharingApplications/"),
        "consumer": _s(lambda a: a.consumer, _DEPT),
        "provider": _s(lambda a: a.provider, _DEPT),
        "resource": _s(lambda a: a.resource, _RES),
        "state": _enum(lambda a: a.state.value, ApplicationState),
        "create_time": _of(FieldKind.TIMESTAMP, lambda a: a.create_time),
        "update_time": _of(FieldKind.TIMESTAMP, lambda a: a.update_time),
        "due_date": _of(FieldKind.DATE, lambda a: a.due_date),
        "decide_time": _of(FieldKind.TIMESTAMP, lambda a: a.decide_time),
        "decided_by": _s(lambda a: a.decided_by),
        "valid_from": _of(FieldKind.DATE, lambda a: a.valid_from),
        "valid_until": _of(FieldKind.DATE, lambda a: a.valid_until),
        "grant_id": _s(lambda a: a.grant_id, "grants/"),
        "data_items": _of(FieldKind.LIST, lambda a: a.data_items),
        "matter_codes": _of(FieldKind.LIST, lambda a: a.matter_codes),
        "overdue": _of(FieldKind.BOOL, lambda a: a.is_overdue(today)),
    }


EVENT_FIELDS: Mapping[str, FilterField[DirectoryEvent]] = {
    "seq": _of(FieldKind.INT, lambda e: e.seq),
    "time": _of(FieldKind.TIMESTAMP, lambda e: e.time),
    "actor": _s(lambda e: e.actor),
    "action": _s(lambda e: e.action),
    "target": _s(lambda e: e.target),
    "request_id": _s(lambda e: e.request_id),
}
