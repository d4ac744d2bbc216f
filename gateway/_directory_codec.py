"""Directory model <-> DirectoryService messages. Resource names follow AIP-122:
`departments/{uscc}`, `resources/{code}`, `certificateTypes/{type_code}`,
`matters/{code}`, `sharingApplications/{id}`, `grants/{id}`."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Collection, Iterable, Mapping
from typing import TypeVar

from google.protobuf import timestamp_pb2
from govshare.api.directory.v1 import directory_pb2 as pb
from govshare.directory import (
    ApplicationRequest,
    ApplicationState,
    Catalogue,
    CertificateType,
    DataItem,
    Department,
    DepartmentState,
    DirectoryEvent,
    Grant,
    GrantState,
    InvalidArgument,
    Material,
    MaterialSource,
    Matter,
    Resource,
    ResourceState,
    SharingApplication,
    SharingType,
    is_valid_iso_date,
)

__all__ = [
    "application_request_from_pb",
    "application_to_pb",
    "certificate_type_from_pb",
    "certificate_type_to_pb",
    "department_from_pb",
    "department_to_pb",
    "event_to_pb",
    "grant_to_pb",
    "mask_paths",
    "matter_from_pb",
    "matter_mask",
    "matter_to_pb",
    "name_id",
    "resource_from_pb",
    "resource_to_pb",
]

_E = TypeVar("_E")

_SHARING = {
    SharingType.UNCONDITIONAL: pb.SHARING_TYPE_UNCONDITIONAL,
    SharingType.CONDITIONAL: pb.SHARING_TYPE_CONDITIONAL,
    SharingType.NOT_SHARED: pb.SHARING_TYPE_NOT_SHARED,
}
_RESOURCE_STATE = {
    ResourceState.DRAFT: pb.RESOURCE_STATE_DRAFT,
    ResourceState.PUBLISHED: pb.RESOURCE_STATE_PUBLISHED,
    ResourceState.RETIRED: pb.RESOURCE_STATE_RETIRED,
}
_DEPARTMENT_STATE = {
    DepartmentState.ACTIVE: pb.DEPARTMENT_STATE_ACTIVE,
    DepartmentState.SUSPENDED: pb.DEPARTMENT_STATE_SUSPENDED,
}
_MATERIAL_SOURCE = {
    MaterialSource.CERTIFICATE_TYPE: pb.MATERIAL_SOURCE_CERTIFICATE_TYPE,
    MaterialSource.RESOURCE: pb.MATERIAL_SOURCE_RESOURCE,
    MaterialSource.APPLICANT_SUBMITS: pb.MATERIAL_SOURCE_APPLICANT_SUBMITS,
}
_APPLICATION_STATE = {
    ApplicationState.APPLIED: pb.APPLICATION_STATE_APPLIED,
    ApplicationState.APPROVED: pb.APPLICATION_STATE_APPROVED,
    ApplicationState.REJECTED: pb.APPLICATION_STATE_REJECTED,
    ApplicationState.REVOKED: pb.APPLICATION_STATE_REVOKED,
    ApplicationState.EXPIRED: pb.APPLICATION_STATE_EXPIRED,
}
_GRANT_STATE = {
    GrantState.ACTIVE: pb.GRANT_STATE_ACTIVE,
    GrantState.REVOKED: pb.GRANT_STATE_REVOKED,
    GrantState.EXPIRED: pb.GRANT_STATE_EXPIRED,
}
# AIP collection ids; no resource code, key or USCC starts with one of them.
_COLLECTIONS = (
    "departments",
    "resources",
    "certificateTypes",
    "matters",
    "sharingApplications",
    "grants",
)
# Proto paths whose model field has another name (AIP `name` is the resource name).
_MATTER_PATHS = {"display_name": "name"}


def _invert(table: Mapping[_E, int]) -> dict[int, _E]:
    return {value: key for key, value in table.items()}


def name_id(name: str, collection: str, field: str = "name") -> str:
    """`collection/{id}` -> id; a bare id is accepted as well. The name of an item of
    another collection is INVALID_ARGUMENT: looking it up here could only say NOT_FOUND,
    which hides the caller's mistake."""
    prefix = collection + "/"
    if name.startswith(prefix):
        return name[len(prefix) :]
    other = next((c for c in _COLLECTIONS if name.startswith(c + "/")), None)
    if other is not None:
        raise InvalidArgument([(field, f"{name!r} names one of {other}, not of {collection}")])
    return name


def mask_paths(paths: Iterable[str], renames: dict[str, str] | None = None) -> list[str] | None:
    names = [(renames or {}).get(p, p) for p in paths]
    return names or None


def _timestamp(moment: _dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment if moment.tzinfo else moment.replace(tzinfo=_dt.UTC))
    return stamp


def _enum(
    table: Mapping[_E, int],
    value: int,
    field: str,
    mask: Collection[str] | None = None,
    placeholder: _E | None = None,
) -> _E:
    """The model value of an enum; unset is an error unless the update mask leaves it out
    (then `placeholder` stands in and the store ignores it). `*` leaves nothing out."""
    if value == 0 and mask and field not in mask and "*" not in mask and placeholder is not None:
        return placeholder
    found = _invert(table).get(value)
    if found is None:
        raise InvalidArgument([(field, "must be set to a known value")])
    return found


def department_to_pb(d: Department) -> pb.Department:
    return pb.Department(
        name=f"departments/{d.uscc}",
        uscc=d.uscc,
        display_name=d.display_name,
        region_code=d.region_code,
        state=_DEPARTMENT_STATE[d.state],
        version=d.version,
        etag=d.etag,
        delete_time=_timestamp(d.delete_time),
    )


def department_from_pb(message: pb.Department, mask: Collection[str] | None = None) -> Department:
    """A new department is ACTIVE unless stated; an update names its state or masks it out."""
    uscc = message.uscc or name_id(message.name, "departments")
    state = message.state
    if mask is None and state == 0:
        state = pb.DEPARTMENT_STATE_ACTIVE
    return Department(
        uscc=uscc,
        display_name=message.display_name,
        region_code=message.region_code,
        state=_enum(_DEPARTMENT_STATE, state, "state", mask, DepartmentState.ACTIVE),
    )


def resource_to_pb(r: Resource) -> pb.Resource:
    return pb.Resource(
        name=f"resources/{r.code}",
        code=r.code,
        display_name=r.display_name,
        provider=f"departments/{r.provider}",
        summary=r.summary,
        format=r.format,
        data_items=[
            pb.DataItem(name=i.name, label=i.label, data_type=i.data_type, personal=i.personal)
            for i in r.data_items
        ],
        sharing_type=_SHARING[r.sharing_type],
        sharing_condition=r.sharing_condition,
        legal_basis=r.legal_basis,
        sharing_method=r.sharing_method,
        open_to_public=r.open_to_public,
        update_cycle=r.update_cycle,
        publish_date=r.publish_date,
        state=_RESOURCE_STATE[r.state],
        version=r.version,
        classification=r.classification,
        etag=r.etag,
        delete_time=_timestamp(r.delete_time),
    )


def resource_from_pb(message: pb.Resource, mask: Collection[str] | None = None) -> Resource:
    """`mask` None is a create: its state is output only, so an unset one stands for DRAFT.
    An update carries the state it names (a Get's copy keeps its PUBLISHED), or masks it out."""
    state = message.state
    if mask is None and state == 0:
        state = pb.RESOURCE_STATE_DRAFT
    return Resource(
        code=message.code or name_id(message.name, "resources"),
        display_name=message.display_name,
        classification=message.classification,
        provider=name_id(message.provider, "departments", "provider"),
        summary=message.summary,
        format=message.format,
        data_items=tuple(
            DataItem(name=i.name, label=i.label, data_type=i.data_type, personal=i.personal)
            for i in message.data_items
        ),
        sharing_type=_enum(
            _SHARING, message.sharing_type, "sharing_type", mask, SharingType.UNCONDITIONAL
        ),
        sharing_method=message.sharing_method,
        update_cycle=message.update_cycle,
        publish_date=message.publish_date,
        sharing_condition=message.sharing_condition,
        legal_basis=message.legal_basis,
        open_to_public=message.open_to_public,
        state=_enum(_RESOURCE_STATE, state, "state", mask, ResourceState.DRAFT),
    )


def certificate_type_to_pb(c: CertificateType, catalogue: Catalogue) -> pb.CertificateType:
    resource = catalogue.resources.get(c.resource)
    return pb.CertificateType(
        name=f"certificateTypes/{c.type_code}",
        type_code=c.type_code,
        key=c.key,
        display_name=c.display_name,
        holder_id_type=c.holder_id_type,
        issuer=f"departments/{c.issuer}",
        resource=f"resources/{c.resource}",
        face_fields=list(resource.data_item_names) if resource is not None else [],
        version=c.version,
        etag=c.etag,
        delete_time=_timestamp(c.delete_time),
    )


def certificate_type_from_pb(message: pb.CertificateType) -> CertificateType:
    return CertificateType(
        key=message.key,
        type_code=message.type_code or name_id(message.name, "certificateTypes"),
        display_name=message.display_name,
        holder_id_type=message.holder_id_type,
        issuer=name_id(message.issuer, "departments", "issuer"),
        resource=name_id(message.resource, "resources", "resource"),
    )


def matter_to_pb(m: Matter) -> pb.Matter:
    return pb.Matter(
        name=f"matters/{m.code}",
        code=m.code,
        display_name=m.name,
        materials=[
            pb.Material(
                display_name=x.name,
                source=_MATERIAL_SOURCE[x.source],
                source_key=x.source_key,
                data_items=list(x.data_items),
            )
            for x in m.materials
        ],
        version=m.version,
        etag=m.etag,
        delete_time=_timestamp(m.delete_time),
    )


def matter_from_pb(message: pb.Matter) -> Matter:
    return Matter(
        code=message.code or name_id(message.name, "matters"),
        name=message.display_name,
        materials=tuple(
            Material(
                name=x.display_name,
                source=_enum(_MATERIAL_SOURCE, x.source, "materials.source"),
                source_key=x.source_key,
                data_items=tuple(x.data_items),
            )
            for x in message.materials
        ),
    )


def matter_mask(paths: Iterable[str]) -> list[str] | None:
    """Proto paths to model fields. The proto's `name` is the AIP resource name, an
    identifier: it must not reach the model's `name` (the display name)."""
    paths = list(paths)
    if "name" in paths:
        raise InvalidArgument(
            [("update_mask", "'name' cannot be updated")], reason="UPDATE_MASK_INVALID"
        )
    return mask_paths(paths, _MATTER_PATHS)


def _date(text: str, field: str) -> _dt.date:
    # fromisoformat alone also takes 20260101 and 2026-W01-1.
    if not is_valid_iso_date(text):
        raise InvalidArgument([(field, "must be a date YYYY-MM-DD")])
    return _dt.date.fromisoformat(text)


def application_request_from_pb(
    message: pb.SharingApplication, consumer: str
) -> ApplicationRequest:
    return ApplicationRequest(
        consumer=consumer,
        resource=name_id(message.resource, "resources", "resource"),
        data_items=tuple(message.data_items),
        matter_codes=tuple(message.matter_codes),
        purpose=message.purpose,
        legal_basis=message.legal_basis,
        valid_from=_date(message.valid_from, "valid_from"),
        valid_until=_date(message.valid_until, "valid_until"),
    )


def application_to_pb(a: SharingApplication, today: _dt.date) -> pb.SharingApplication:
    return pb.SharingApplication(
        name=f"sharingApplications/{a.application_id}",
        consumer=f"departments/{a.consumer}",
        provider=f"departments/{a.provider}",
        resource=f"resources/{a.resource}",
        data_items=list(a.data_items),
        matter_codes=list(a.matter_codes),
        purpose=a.purpose,
        legal_basis=a.legal_basis,
        valid_from=a.valid_from.isoformat(),
        valid_until=a.valid_until.isoformat(),
        state=_APPLICATION_STATE[a.state],
        create_time=_timestamp(a.create_time),
        due_date=a.due_date.isoformat(),
        overdue=a.is_overdue(today),
        decided_by=a.decided_by,
        decide_time=_timestamp(a.decide_time),
        reason=a.reason,
        grant=f"grants/{a.grant_id}" if a.grant_id else "",
        etag=a.etag,
    )


def grant_to_pb(g: Grant) -> pb.Grant:
    return pb.Grant(
        name=f"grants/{g.grant_id}",
        consumer=f"departments/{g.consumer}",
        resource=f"resources/{g.resource}",
        data_items=sorted(g.data_items),
        matter_codes=sorted(g.matter_codes),
        valid_from=g.valid_from.isoformat(),
        valid_until=g.valid_until.isoformat(),
        state=_GRANT_STATE[g.state],
        sharing_application=(f"sharingApplications/{g.application_id}" if g.application_id else ""),
        etag=g.etag,
    )


def event_to_pb(e: DirectoryEvent) -> pb.DirectoryEvent:
    return pb.DirectoryEvent(
        seq=e.seq,
        time=_timestamp(e.time),
        actor=e.actor,
        action=e.action,
        target=e.target,
        request_id=e.request_id,
        before_json=_json(e.before),
        after_json=_json(e.after),
    )


def _json(document: object) -> str:
    if document is None:
        return ""
    return json.dumps(document, ensure_ascii=False, sort_keys=True, default=str)
