"""The sharing-application state machine, as pure functions over the model.

    APPLIED ──approve──▶ APPROVED ──revoke──▶ REVOKED
       │                    └────expire──▶ EXPIRED
       └──reject (reason)──▶ REJECTED

Approval creates an ACTIVE grant with exactly what was applied for; revoking
or expiring the application does the same to its grant. Every other move is
an InvalidTransition (FAILED_PRECONDITION on the wire). Who may decide is the
gateway's business (it knows the caller's role); `SharingApplication.provider`
tells it which department that is, and `reassign` keeps it the resource's
provider while the application is live.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._errors import FailedPrecondition, InvalidArgument, InvalidTransition, NotFound
from ._model import (
    ApplicationState,
    Catalogue,
    Grant,
    GrantState,
    Resource,
    ResourceState,
    SharingApplication,
    SharingType,
)
from ._rules import Violations, is_valid_key

__all__ = [
    "MAX_PURPOSE_LENGTH",
    "ApplicationRequest",
    "approve",
    "can_transition",
    "expire",
    "expire_grant",
    "grant_id_for",
    "open_application",
    "reassign",
    "reject",
    "revoke",
    "revoke_grant",
]

# 事由 is at most 200 characters on the provincial sharing services (DOMAIN.md).
MAX_PURPOSE_LENGTH = 200
_MAX_APPLICATION_ID = 60  # leaves room for the "g-" of its grant within 64

# Applications whose provider still has something to answer for: a decision to make,
# or a grant on its data that it may revoke.
_LIVE = frozenset({ApplicationState.APPLIED, ApplicationState.APPROVED})

_NEXT: Mapping[ApplicationState, frozenset[ApplicationState]] = {
    ApplicationState.APPLIED: frozenset({ApplicationState.APPROVED, ApplicationState.REJECTED}),
    ApplicationState.APPROVED: frozenset({ApplicationState.REVOKED, ApplicationState.EXPIRED}),
}


@dataclass(frozen=True, slots=True)
class ApplicationRequest:
    """What a consumer asks for: the fields of CreateSharingApplication."""

    consumer: str
    resource: str
    data_items: tuple[str, ...]
    matter_codes: tuple[str, ...]
    purpose: str
    legal_basis: str
    valid_from: _dt.date
    valid_until: _dt.date


def can_transition(current: ApplicationState, target: ApplicationState) -> bool:
    return target in _NEXT.get(current, frozenset())


def grant_id_for(application_id: str) -> str:
    """The grant an approval creates is named after its application, so retries cannot fork it."""
    return f"g-{application_id}"


def _require(app: SharingApplication, target: ApplicationState, verb: str) -> None:
    if not can_transition(app.state, target):
        raise InvalidTransition(
            f"cannot {verb} an application that is {app.state.value}",
            reason="APPLICATION_STATE",
            metadata={"application_id": app.application_id, "state": app.state.value},
        )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in values))


def _resource(catalogue: Catalogue, code: str) -> Resource:
    resource = catalogue.resources.get(code)
    if resource is None:
        raise NotFound(
            f"resources/{code} does not exist",
            reason="RESOURCE_NOT_FOUND",
            metadata={"resource": code},
        )
    return resource


def _check_shareable(resource: Resource, verb: str) -> None:
    """Only a live, PUBLISHED, CONDITIONAL resource is applied for or granted."""
    meta = {"resource": resource.code}
    if resource.deleted or resource.state is not ResourceState.PUBLISHED:
        raise FailedPrecondition(
            f"only a PUBLISHED resource can be {verb}",
            reason="RESOURCE_NOT_PUBLISHED",
            metadata=meta,
        )
    if resource.sharing_type is SharingType.UNCONDITIONAL:
        raise FailedPrecondition(
            "the resource is shared unconditionally: no application is needed",
            reason="APPLICATION_NOT_NEEDED",
            metadata=meta,
        )
    if resource.sharing_type is SharingType.NOT_SHARED:
        raise FailedPrecondition(
            f"the resource is not shared and cannot be {verb}",
            reason="RESOURCE_NOT_SHARED",
            metadata=meta,
        )


def _check_still_grantable(app: SharingApplication, catalogue: Catalogue) -> None:
    """What open_application checked may have changed while the application waited:
    the consumer deleted, the resource retired, deleted, made NOT_SHARED or
    UNCONDITIONAL, or data items removed. A grant is only made for what could be
    applied for today, refused for the same reasons as a new application."""
    consumer = catalogue.departments.get(app.consumer)
    if consumer is None or consumer.deleted:
        raise FailedPrecondition(
            "the consumer is no longer a registered department",
            reason="CONSUMER_NOT_REGISTERED",
            metadata={"consumer": app.consumer},
        )
    resource = _resource(catalogue, app.resource)
    _check_shareable(resource, "granted")
    removed = [name for name in app.data_items if name not in resource.data_item_names]
    if removed:
        raise FailedPrecondition(
            f"data items no longer in the resource: {', '.join(removed)}",
            reason="DATA_ITEMS_REMOVED",
            metadata={"resource": resource.code, "data_items": ",".join(removed)},
        )


def open_application(
    request: ApplicationRequest,
    catalogue: Catalogue,
    *,
    application_id: str,
    now: _dt.datetime,
    due_date: _dt.date,
) -> SharingApplication:
    """Validate `request` against the catalogue and return the new APPLIED application.

    Raises NotFound (no such resource), InvalidArgument (every bad field at
    once) or FailedPrecondition (the resource is not PUBLISHED, or is
    UNCONDITIONAL — no application needed — or NOT_SHARED — never shared).
    """
    resource = _resource(catalogue, request.resource)
    data_items = _unique(request.data_items)
    matter_codes = _unique(request.matter_codes)
    found: Violations = []
    if not is_valid_key(application_id) or len(application_id) > _MAX_APPLICATION_ID:
        found.append(("application_id", f"must be [A-Za-z0-9_.-], 1-{_MAX_APPLICATION_ID} long"))
    consumer = catalogue.departments.get(request.consumer)
    if consumer is None or consumer.deleted:
        found.append(("consumer", "not a registered department"))
    if not data_items:
        found.append(("data_items", "name at least one data item"))
    unknown = [name for name in data_items if name not in resource.data_item_names]
    if unknown:
        found.append(("data_items", f"not in the resource: {', '.join(unknown)}"))
    if not matter_codes:
        found.append(("matter_codes", "name at least one matter"))
    if any(not is_valid_key(code) for code in matter_codes):
        found.append(("matter_codes", "a matter code is [A-Za-z0-9_.-], 1-64 long"))
    purpose = request.purpose.strip()
    if not purpose:
        found.append(("purpose", "state the purpose (事由)"))
    if len(purpose) > MAX_PURPOSE_LENGTH:
        found.append(("purpose", f"at most {MAX_PURPOSE_LENGTH} characters"))
    if request.valid_until < request.valid_from:
        found.append(("valid_until", "must not be before valid_from"))
    if found:
        raise InvalidArgument(found)
    _check_shareable(resource, "applied for")
    return SharingApplication(
        application_id=application_id,
        consumer=request.consumer,
        provider=resource.provider,
        resource=resource.code,
        data_items=data_items,
        matter_codes=matter_codes,
        purpose=purpose,
        legal_basis=request.legal_basis.strip(),
        valid_from=request.valid_from,
        valid_until=request.valid_until,
        create_time=now,
        due_date=due_date,
        update_time=now,
    )


def approve(
    app: SharingApplication,
    catalogue: Catalogue,
    *,
    actor: str,
    now: _dt.datetime,
    today: _dt.date,
) -> tuple[SharingApplication, Grant]:
    """APPLIED → APPROVED, with the ACTIVE grant it creates (validity as requested).

    The resource and consumer are checked again against `catalogue` (see
    `_check_still_grantable`); the validity must not have ended.
    """
    _require(app, ApplicationState.APPROVED, "approve")
    _check_still_grantable(app, catalogue)
    if app.valid_until < today:
        raise FailedPrecondition(
            "the requested validity has already ended",
            reason="VALIDITY_ENDED",
            metadata={"application_id": app.application_id},
        )
    grant = Grant(
        grant_id=grant_id_for(app.application_id),
        consumer=app.consumer,
        resource=app.resource,
        data_items=frozenset(app.data_items),
        matter_codes=frozenset(app.matter_codes),
        valid_from=app.valid_from,
        valid_until=app.valid_until,
        state=GrantState.ACTIVE,
        application_id=app.application_id,
    )
    approved = dataclasses.replace(
        app,
        state=ApplicationState.APPROVED,
        decided_by=actor,
        decide_time=now,
        update_time=now,
        grant_id=grant.grant_id,
    )
    return approved, grant


def reassign(app: SharingApplication, provider: str, *, now: _dt.datetime) -> SharingApplication:
    """The application answered for by `provider`, its resource's provider from now on.

    Only a live application moves: an APPLIED one waits for a decision that only the
    department providing the data may make, and an APPROVED one's grant is on data the
    new provider now answers for (and may revoke). A REJECTED, REVOKED or EXPIRED one
    records what was decided under the provider of the time, and keeps it.
    """
    if app.state not in _LIVE or app.provider == provider:
        return app
    return dataclasses.replace(app, provider=provider, update_time=now)


def reject(
    app: SharingApplication, *, actor: str, now: _dt.datetime, reason: str
) -> SharingApplication:
    """APPLIED → REJECTED; a refusal states its reasons, so `reason` is required."""
    if not reason.strip():
        raise InvalidArgument([("reason", "a rejection must state its reasons")])
    _require(app, ApplicationState.REJECTED, "reject")
    return dataclasses.replace(
        app,
        state=ApplicationState.REJECTED,
        decided_by=actor,
        decide_time=now,
        update_time=now,
        reason=reason.strip(),
    )


def revoke_grant(grant: Grant) -> Grant:
    """ACTIVE → REVOKED; the grant stays on record but is no longer served."""
    if grant.state is not GrantState.ACTIVE:
        raise InvalidTransition(
            f"cannot revoke a grant that is {grant.state.value}",
            reason="GRANT_STATE",
            metadata={"grant_id": grant.grant_id, "state": grant.state.value},
        )
    return dataclasses.replace(grant, state=GrantState.REVOKED)


def revoke(
    app: SharingApplication, grant: Grant | None, *, now: _dt.datetime, reason: str = ""
) -> tuple[SharingApplication, Grant | None]:
    """APPROVED → REVOKED, and its grant with it (if it is still ACTIVE)."""
    _require(app, ApplicationState.REVOKED, "revoke")
    if grant is not None and grant.state is GrantState.ACTIVE:
        grant = revoke_grant(grant)
    revoked = dataclasses.replace(
        app, state=ApplicationState.REVOKED, update_time=now, reason=reason.strip() or app.reason
    )
    return revoked, grant


def expire_grant(grant: Grant, *, today: _dt.date) -> Grant:
    """ACTIVE → EXPIRED once `today` is past its validity."""
    if grant.state is not GrantState.ACTIVE or grant.valid_until >= today:
        raise InvalidTransition(
            f"a {grant.state.value} grant valid until {grant.valid_until} does not expire today",
            reason="GRANT_STATE",
            metadata={"grant_id": grant.grant_id, "state": grant.state.value},
        )
    return dataclasses.replace(grant, state=GrantState.EXPIRED)


def expire(
    app: SharingApplication, grant: Grant | None, *, now: _dt.datetime, today: _dt.date
) -> tuple[SharingApplication, Grant | None]:
    """APPROVED → EXPIRED once `today` is past the validity, and its grant with it."""
    _require(app, ApplicationState.EXPIRED, "expire")
    if app.valid_until >= today:
        raise InvalidTransition(
            f"the application is valid until {app.valid_until.isoformat()} and does not expire yet",
            reason="APPLICATION_STATE",
            metadata={"application_id": app.application_id, "state": app.state.value},
        )
    if grant is not None and grant.state is GrantState.ACTIVE:
        grant = expire_grant(grant, today=today)
    return dataclasses.replace(app, state=ApplicationState.EXPIRED, update_time=now), grant
