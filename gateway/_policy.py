"""The access decision: may this caller have these data items of this resource
for this matter today? Pure function of an in-memory catalogue snapshot.

The matter must be one the snapshot holds (not deleted) for either sharing type."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass

from govshare.directory import Catalogue, DepartmentState, Resource, ResourceState, SharingType

from ._errors import GovshareError, Reason, name_list
from ._identity import Principal, Role

__all__ = ["Decision", "authorize_department", "check_registered", "decide"]


@dataclass(frozen=True, slots=True)
class Decision:
    """An allowed access: the items to hand out, and the grant relied on."""

    resource: Resource
    fields: tuple[str, ...]
    grant_ids: tuple[str, ...]


def authorize_department(catalogue: Catalogue, caller: Principal) -> None:
    """Only a registered, active department may exchange data."""
    if caller.role is not Role.DEPARTMENT:
        raise GovshareError(Reason.ROLE_REQUIRED, "only departments may exchange data", role="dept")
    check_registered(catalogue, caller)


def check_registered(catalogue: Catalogue, caller: Principal) -> None:
    """A department caller must be in the directory and not suspended; others pass."""
    if caller.role is not Role.DEPARTMENT:
        return
    department = catalogue.departments.get(caller.name)
    if department is None:
        raise GovshareError(Reason.CALLER_UNKNOWN, "the calling department is not registered")
    if department.state is DepartmentState.SUSPENDED:
        raise GovshareError(Reason.CALLER_SUSPENDED, "the calling department is suspended")


def decide(
    catalogue: Catalogue,
    caller: Principal,
    resource: Resource,
    requested_fields: Sequence[str],
    matter_code: str,
    today: _dt.date,
) -> Decision:
    """Allow or raise the GovshareError that explains the denial."""
    authorize_department(catalogue, caller)
    if resource.state is not ResourceState.PUBLISHED:
        raise GovshareError(
            Reason.RESOURCE_NOT_SHARED, "the resource is not published", resource=resource.code
        )
    if resource.sharing_type is SharingType.NOT_SHARED:
        raise GovshareError(
            Reason.RESOURCE_NOT_SHARED,
            f"the resource is not shared: {resource.legal_basis}",
            resource=resource.code,
        )
    unknown = [name for name in requested_fields if name not in resource.data_item_names]
    if unknown:
        raise GovshareError(
            Reason.FIELD_UNKNOWN,
            "the resource has no such data items",
            resource=resource.code,
            fields=name_list(unknown),
        )
    # Every access is for a 政务服务事项 of the catalogue, whatever the sharing type: a
    # deleted (abolished) or made-up matter must neither open a grant that still names
    # it nor be written into the audit log as the reason data was handed out.
    if catalogue.matter(matter_code) is None:
        raise GovshareError(
            Reason.MATTER_NOT_COVERED,
            "the catalogue has no such matter (unknown or deleted)",
            resource=resource.code,
            matter_code=matter_code,
        )
    if resource.sharing_type is SharingType.UNCONDITIONAL:
        fields = tuple(requested_fields) or resource.data_item_names
        return Decision(resource, fields, ())
    return _decide_conditional(catalogue, caller, resource, requested_fields, matter_code, today)


def _decide_conditional(
    catalogue: Catalogue,
    caller: Principal,
    resource: Resource,
    requested_fields: Sequence[str],
    matter_code: str,
    today: _dt.date,
) -> Decision:
    grants = catalogue.grants_for(caller.name, resource.code)
    if not grants:
        raise GovshareError(
            Reason.GRANT_REQUIRED, "no grant for this resource", resource=resource.code
        )
    current = [g for g in grants if g.is_valid_on(today)]
    if not current:
        raise GovshareError(
            Reason.GRANT_EXPIRED,
            "the grants for this resource are not valid today",
            resource=resource.code,
        )
    covering = [g for g in current if matter_code in g.matter_codes]
    if not covering:
        raise GovshareError(
            Reason.MATTER_NOT_COVERED,
            "no grant covers this matter",
            resource=resource.code,
            matter_code=matter_code,
        )
    granted = frozenset().union(*(g.data_items for g in covering))
    not_granted = [name for name in requested_fields if name not in granted]
    if not_granted:
        raise GovshareError(
            Reason.FIELD_NOT_GRANTED,
            "data items are not granted for this matter",
            resource=resource.code,
            fields=name_list(not_granted),
        )
    fields = tuple(requested_fields) or tuple(
        name for name in resource.data_item_names if name in granted
    )
    return Decision(resource, fields, tuple(sorted(g.grant_id for g in covering)))
