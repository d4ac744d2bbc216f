"""The common path of DirectoryService: who is calling, may they, and what the
caller sees when the directory room says no. See `_directory_service.py` for the
table of roles."""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import grpc
import sqlalchemy.exc
from govshare.directory import (
    AlreadyExists,
    Catalogue,
    DirectoryError,
    EtagMismatch,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    SqlCatalogueStore,
)

from . import _directory_codec as codec
from ._errors import GovshareError, Reason, rich_status, to_grpc_status
from ._identity import Principal, Role, principal_from_auth_context
from ._policy import check_registered

__all__ = ["DirectoryAccess"]

_log = logging.getLogger("govshare.gateway")
_T = TypeVar("_T")
_READ = frozenset({Role.DEPARTMENT, Role.ADMIN, Role.AUDITOR})
_ADMIN = frozenset({Role.ADMIN})
_APPLY = frozenset({Role.DEPARTMENT})
_DECIDE = frozenset({Role.DEPARTMENT, Role.ADMIN})
_OVERSEE = frozenset({Role.ADMIN, Role.AUDITOR})
_CODES: tuple[tuple[type[DirectoryError], grpc.StatusCode], ...] = (
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (EtagMismatch, grpc.StatusCode.ABORTED),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
)
# The directory database failing under a call: locked past SQLite's busy timeout
# (another writer, e.g. `govshare directory import`), PostgreSQL down or restarting,
# the pool exhausted. asyncpg raises OSError itself when it cannot connect at all.
_DATABASE_ERRORS = (sqlalchemy.exc.DBAPIError, sqlalchemy.exc.TimeoutError, OSError)
# No reason of gateway/_errors.py names the directory's own database (AUDIT_ and
# PROVIDER_UNAVAILABLE point operators at the audit log and the registries): sent as
# text, like the directory room's own reasons.
DIRECTORY_UNAVAILABLE = "DIRECTORY_UNAVAILABLE"

# (method, caller, reason sent to the caller, request id): every refused write is logged.
Denied: TypeAlias = Callable[[str, Principal | None, str, str], Awaitable[None]]
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class DirectoryAccess:
    """Role checks, ownership checks and error translation for the servicer."""

    def __init__(
        self,
        *,
        store: SqlCatalogueStore,
        catalogue: Callable[[], Catalogue],
        trust_domain: str,
        on_change: Callable[[], Awaitable[None]],
        on_denied: Denied,
        today: Callable[[], _dt.date] | None = None,
    ) -> None:
        self._store = store
        self._catalogue = catalogue
        self._trust_domain = trust_domain
        self._on_change = on_change
        self._on_denied = on_denied
        # The store's today (Beijing time) by default: the `overdue` flag on each
        # application must agree with the store's `overdue = true` filter and count.
        self._today = today if today is not None else store.today

    async def _application_for(self, caller: Principal, name: str, *, allow_consumer: bool) -> Any:
        """The application, if the caller may act on it; strangers learn nothing.

        A department acts as the application's provider (which the store keeps equal
        to the resource's while the application is live) or, where allowed, its
        consumer. A decision (`allow_consumer=False`) also needs the caller to provide
        the resource now: a resource moved by a catalogue import, which does not
        re-point applications, leaves them to an administrator rather than to the
        department that gave the data up.
        """
        application_id = codec.name_id(name, "sharingApplications")
        if caller.role is not Role.DEPARTMENT:
            return await self._store.get_application(application_id)
        try:
            found = await self._store.get_application(application_id)
        except NotFound:
            found = None
        parties = (
            set()
            if found is None
            else {found.provider, *([found.consumer] if allow_consumer else [])}
        )
        if (
            found is not None
            and caller.name in parties
            and not allow_consumer
            and await self._current_provider(found.resource) != caller.name
        ):
            parties = set()
        if caller.name not in parties:
            raise GovshareError(
                Reason.ROLE_REQUIRED,
                "only the providing department or an administrator may do this",
            )
        return found

    async def _current_provider(self, code: str) -> str:
        # From the store, not the snapshot: another replica may have moved it a moment ago.
        try:
            return str((await self._store.get_resource(code)).provider)
        except NotFound:
            return ""

    async def _grant_for(self, caller: Principal, name: str) -> Any:
        grant_id = codec.name_id(name, "grants")
        if caller.role is not Role.DEPARTMENT:
            return await self._store.get_grant(grant_id)
        try:
            found = await self._store.get_grant(grant_id)
        except NotFound:
            found = None
        resource = None if found is None else self._catalogue().resources.get(found.resource)
        parties = (
            set() if found is None else {found.consumer, resource.provider if resource else ""}
        )
        if caller.name not in parties:
            raise GovshareError(
                Reason.ROLE_REQUIRED, "only the grant's consumer or provider may see it"
            )
        return found

    def _principal(self, context: Context) -> Principal:
        return principal_from_auth_context(context.auth_context(), self._trust_domain)

    def _check(self, caller: Principal, roles: frozenset[Role]) -> None:
        check_registered(self._catalogue(), caller)
        if caller.role not in roles:
            wanted = " or ".join(sorted(r.value for r in roles))
            raise GovshareError(
                Reason.ROLE_REQUIRED, f"this method needs the role {wanted}", role=wanted
            )

    async def _read(
        self,
        context: Context,
        method: str,
        body: Callable[[Principal], Awaitable[_T]],
        roles: frozenset[Role] = _READ,
    ) -> _T:
        return await self._call(context, method, roles, "", body, writes=False)

    async def _write(
        self,
        context: Context,
        method: str,
        roles: frozenset[Role],
        request_id: str,
        body: Callable[[Principal], Awaitable[_T]],
    ) -> _T:
        return await self._call(context, method, roles, request_id, body, writes=True)

    async def _call(
        self,
        context: Context,
        method: str,
        roles: frozenset[Role],
        request_id: str,
        body: Callable[[Principal], Awaitable[_T]],
        *,
        writes: bool,
    ) -> _T:
        """Identify, check, run; every refusal is logged with whoever was calling."""
        caller: Principal | None = None
        try:
            caller = self._principal(context)
            self._check(caller, roles)
            result = await body(caller)
        except GovshareError as error:
            await self._on_denied(
                f"DirectoryService.{method}", caller, error.reason.value, request_id
            )
            await _abort(context, to_grpc_status(error))
        except DirectoryError as error:
            status = _directory_status(error)
            if writes:
                await self._on_denied(
                    f"DirectoryService.{method}",
                    caller,
                    _REASON_ALIASES.get(error.reason, error.reason),
                    request_id,
                )
            await _abort(context, status)
        except _DATABASE_ERRORS as error:
            # The exception (its SQL included) is for operators; the caller learns only
            # that the directory could not answer, and that a retry is safe.
            _log.error(
                "directory database failed in DirectoryService.%s request_id=%r: %s",
                method,
                request_id,
                type(error).__name__,
                exc_info=error,
            )
            if writes:
                await self._on_denied(
                    f"DirectoryService.{method}", caller, DIRECTORY_UNAVAILABLE, request_id
                )
            await _abort(context, _unavailable(writes))
        else:
            if writes:
                await self._on_change()
            return result
        raise AssertionError("unreachable: abort raises")


def _list_args(request: Any, filter_text: str | None = None) -> dict[str, Any]:
    return {
        "filter": request.filter if filter_text is None else filter_text,
        "order_by": request.order_by,
        "page_size": request.page_size,
        "page_token": request.page_token,
    }


# The directory room's generic reasons, renamed to the contract's (DESIGN.md).
_REASON_ALIASES = {"NOT_FOUND": "RESOURCE_NOT_FOUND", "INVALID_ARGUMENT": "REQUEST_INVALID"}


def _directory_status(error: DirectoryError) -> grpc.Status:
    code = next(
        (code for kind, code in _CODES if isinstance(error, kind)),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    violations = error.violations if isinstance(error, InvalidArgument) else []
    reason = _REASON_ALIASES.get(error.reason, error.reason)
    return rich_status(code, reason, error.message, error.metadata, violations)


def _unavailable(writes: bool) -> grpc.Status:
    retry = (
        "try again; with the same request_id a retry cannot apply the change twice"
        if writes
        else "try again"
    )
    return rich_status(
        grpc.StatusCode.UNAVAILABLE,
        DIRECTORY_UNAVAILABLE,
        f"the directory database is unavailable (busy or unreachable); {retry}",
    )


async def _abort(context: Context, status: grpc.Status) -> None:
    await context.abort(status.code, status.details, status.trailing_metadata)
