"""The sharing-application desk: applications, their decisions, and grants.

Each decision is one transaction that changes the application and its grant
together and records an event for each, so the grant a call is checked
against never disagrees with the application that created it.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from . import _tables as t
from . import _workflow as wf
from ._codec import Codec, name_of
from ._core import StoreCore, Tx, check_etag
from ._errors import AlreadyExists
from ._listing import GRANT_FIELDS, Page, application_fields, paginate
from ._model import ApplicationState, Grant, GrantState, SharingApplication

__all__ = ["ExpiryReport"]


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    """What `expire_due` flipped to EXPIRED."""

    applications: tuple[str, ...]
    grants: tuple[str, ...]


_APP = t.APPLICATION.codec
_GRANT = t.GRANT.codec


class ApplicationDesk(StoreCore):
    """Create, decide, revoke and expire sharing applications; read and revoke grants."""

    async def _save_application(
        self, tx: Tx, verb: str, before: SharingApplication, after: SharingApplication
    ) -> None:
        await self._update(tx.conn, t.APPLICATION, after)
        tx.record(f"application.{verb}", name_of(after), _APP.to_doc(before), _APP.to_doc(after))

    async def _save_grant(self, tx: Tx, verb: str, before: Grant | None, after: Grant) -> None:
        if before is None:
            await self._insert(tx.conn, t.GRANT, after)
        else:
            await self._update(tx.conn, t.GRANT, after)
        tx.record(
            f"grant.{verb}",
            name_of(after),
            None if before is None else _GRANT.to_doc(before),
            _GRANT.to_doc(after),
        )

    # --- applications ---------------------------------------------------------------

    async def create_application(
        self,
        request: wf.ApplicationRequest,
        *,
        application_id: str = "",
        actor: str,
        request_id: str = "",
    ) -> SharingApplication:
        """Open an APPLIED application due `due_working_days` working days from today.

        Raises NotFound, InvalidArgument, FailedPrecondition (see
        `open_application`) or AlreadyExists for a taken `application_id`.
        """

        async def body(tx: Tx) -> SharingApplication:
            chosen = application_id or uuid.uuid4().hex
            if await self._get(tx.conn, t.APPLICATION, chosen) is not None:
                name = f"sharingApplications/{chosen}"
                raise AlreadyExists(f"{name} exists already", metadata={"name": name})
            app = wf.open_application(
                request,
                await self._snapshot(tx.conn),
                application_id=chosen,
                now=tx.now,
                due_date=self._calendar.add_working_days(tx.today, self._due_working_days),
            )
            await self._insert(tx.conn, t.APPLICATION, app)
            tx.record("application.create", name_of(app), None, _APP.to_doc(app))
            return app

        return await self._mutate(
            actor=actor,
            request_id=request_id,
            operation="application.create",
            request={"request": request, "application_id": application_id},
            codec=_APP,
            body=body,
        )

    async def get_application(self, application_id: str) -> SharingApplication:
        async def body(conn: AsyncConnection) -> SharingApplication:
            return await self._require(conn, t.APPLICATION, application_id)

        return await self._read(body)

    async def _all_applications(self) -> list[SharingApplication]:
        async def body(conn: AsyncConnection) -> list[SharingApplication]:
            return await self._all(conn, t.APPLICATION)

        return await self._read(body)

    async def list_applications(
        self,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
        visible: Callable[[SharingApplication], bool] | None = None,
        visibility: str = "",
    ) -> Page[SharingApplication]:
        """Oldest first unless ordered; `overdue = true` lists 电子监察's overdue work.

        `visible` and `visibility` restrict the view as in `list_grants`.
        """
        return paginate(
            t.APPLICATION.collection,
            await self._all_applications(),
            application_fields(self.today()),
            tiebreak="application_id",
            filter=filter,
            order_by=order_by or "create_time",
            page_size=page_size,
            page_token=page_token,
            bound=visibility,
            where=visible,
        )

    async def count_overdue(self, *, provider: str = "") -> int:
        """Applications still APPLIED after their due date, for one provider or all."""
        today = self.today()
        return sum(
            1
            for app in await self._all_applications()
            if app.is_overdue(today) and (not provider or app.provider == provider)
        )

    async def _decide(
        self,
        application_id: str,
        verb: str,
        decide: Callable[
            [Tx, SharingApplication, Grant | None],
            Awaitable[tuple[SharingApplication, Grant | None]],
        ],
        *,
        etag: str,
        actor: str,
        request_id: str,
        request: dict[str, str],
    ) -> SharingApplication:
        async def body(tx: Tx) -> SharingApplication:
            current = await self._require(tx.conn, t.APPLICATION, application_id)
            check_etag(current, etag, name_of(current))
            grant: Grant | None = None
            if current.grant_id:
                grant = await self._get(tx.conn, t.GRANT, current.grant_id)
            after, new_grant = await decide(tx, current, grant)
            # A grant of that id could have come in through a catalogue import.
            if (
                grant is None
                and new_grant is not None
                and await self._get(tx.conn, t.GRANT, new_grant.grant_id) is not None
            ):
                name = name_of(new_grant)
                raise AlreadyExists(f"{name} exists already", metadata={"name": name})
            await self._save_application(tx, verb, current, after)
            if new_grant is not None and new_grant != grant:
                await self._save_grant(tx, "create" if grant is None else verb, grant, new_grant)
            return after

        return await self._mutate(
            actor=actor,
            request_id=request_id,
            operation=f"application.{verb}",
            request={"application_id": application_id, "etag": etag, **request},
            codec=_APP,
            body=body,
        )

    async def approve_application(
        self, application_id: str, *, etag: str = "", actor: str, request_id: str = ""
    ) -> SharingApplication:
        """APPLIED → APPROVED and an ACTIVE grant `g-<application_id>` (see `get_grant`)."""

        async def decide(
            tx: Tx, app: SharingApplication, grant: Grant | None
        ) -> tuple[SharingApplication, Grant | None]:
            # The resource may have changed while the application waited: check it again.
            snapshot = await self._snapshot(tx.conn)
            return wf.approve(app, snapshot, actor=tx.actor, now=tx.now, today=tx.today)

        return await self._decide(
            application_id,
            "approve",
            decide,
            etag=etag,
            actor=actor,
            request_id=request_id,
            request={},
        )

    async def reject_application(
        self,
        application_id: str,
        *,
        reason: str,
        etag: str = "",
        actor: str,
        request_id: str = "",
    ) -> SharingApplication:
        """APPLIED → REJECTED; `reason` must not be empty."""

        async def decide(
            tx: Tx, app: SharingApplication, grant: Grant | None
        ) -> tuple[SharingApplication, Grant | None]:
            return wf.reject(app, actor=tx.actor, now=tx.now, reason=reason), grant

        return await self._decide(
            application_id,
            "reject",
            decide,
            etag=etag,
            actor=actor,
            request_id=request_id,
            request={"reason": reason},
        )

    async def revoke_application(
        self,
        application_id: str,
        *,
        reason: str = "",
        etag: str = "",
        actor: str,
        request_id: str = "",
    ) -> SharingApplication:
        """APPROVED → REVOKED, and its grant REVOKED: the next exchange call is denied."""

        async def decide(
            tx: Tx, app: SharingApplication, grant: Grant | None
        ) -> tuple[SharingApplication, Grant | None]:
            return wf.revoke(app, grant, now=tx.now, reason=reason)

        return await self._decide(
            application_id,
            "revoke",
            decide,
            etag=etag,
            actor=actor,
            request_id=request_id,
            request={"reason": reason},
        )

    async def expire_due(
        self, today: _dt.date | None = None, *, actor: str = "system"
    ) -> ExpiryReport:
        """Flip APPROVED applications past their validity, and every ACTIVE grant past
        its validity, to EXPIRED (run daily). Nothing to expire writes nothing."""

        async def body(tx: Tx) -> ExpiryReport:
            day = today if today is not None else tx.today
            expired_apps: list[str] = []
            expired_grants: list[str] = []
            grants = {g.grant_id: g for g in await self._all(tx.conn, t.GRANT)}
            for app in await self._all(tx.conn, t.APPLICATION):
                if app.state is not ApplicationState.APPROVED or app.valid_until >= day:
                    continue
                grant = grants.get(app.grant_id)
                after, new_grant = wf.expire(app, grant, now=tx.now, today=day)
                await self._save_application(tx, "expire", app, after)
                expired_apps.append(app.application_id)
                if grant is not None and new_grant is not None and new_grant != grant:
                    await self._save_grant(tx, "expire", grant, new_grant)
                    grants[grant.grant_id] = new_grant
                    expired_grants.append(grant.grant_id)
            for grant in list(grants.values()):
                # Grants loaded from a catalogue file have no application to expire with.
                if grant.state is GrantState.ACTIVE and grant.valid_until < day:
                    await self._save_grant(tx, "expire", grant, wf.expire_grant(grant, today=day))
                    expired_grants.append(grant.grant_id)
            return ExpiryReport(tuple(expired_apps), tuple(expired_grants))

        report_codec: Codec[ExpiryReport] = Codec(
            "expiry",
            lambda r: {"applications": list(r.applications), "grants": list(r.grants)},
            lambda d: ExpiryReport(tuple(d["applications"]), tuple(d["grants"])),
        )
        return await self._mutate(
            actor=actor,
            request_id="",
            operation="application.expire",
            request={},
            codec=report_codec,
            body=body,
        )

    # --- grants ---------------------------------------------------------------------

    async def get_grant(self, grant_id: str) -> Grant:
        async def body(conn: AsyncConnection) -> Grant:
            return await self._require(conn, t.GRANT, grant_id)

        return await self._read(body)

    async def list_grants(
        self,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
        visible: Callable[[Grant], bool] | None = None,
        visibility: str = "",
    ) -> Page[Grant]:
        """E.g. `consumer = "…" AND state = ACTIVE`, or `matter_codes:"330100-BDC-0001"`.

        `visible` keeps only the grants a caller may see; `visibility` names that
        restriction in page tokens, so a token cannot cross to another caller's view.
        """

        async def body(conn: AsyncConnection) -> list[Grant]:
            return await self._all(conn, t.GRANT)

        return paginate(
            t.GRANT.collection,
            await self._read(body),
            GRANT_FIELDS,
            tiebreak="grant_id",
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
            bound=visibility,
            where=visible,
        )

    async def revoke_grant(
        self,
        grant_id: str,
        *,
        reason: str = "",
        etag: str = "",
        actor: str,
        request_id: str = "",
    ) -> Grant:
        """ACTIVE → REVOKED; an APPROVED application behind it is REVOKED too."""

        async def body(tx: Tx) -> Grant:
            current = await self._require(tx.conn, t.GRANT, grant_id)
            check_etag(current, etag, name_of(current))
            revoked = wf.revoke_grant(current)
            await self._save_grant(tx, "revoke", current, revoked)
            if current.application_id:
                app = await self._get(tx.conn, t.APPLICATION, current.application_id)
                if app is not None and app.state is ApplicationState.APPROVED:
                    after, _ = wf.revoke(app, None, now=tx.now, reason=reason)
                    await self._save_application(tx, "revoke", app, after)
            return revoked

        return await self._mutate(
            actor=actor,
            request_id=request_id,
            operation="grant.revoke",
            request={"grant_id": grant_id, "etag": etag, "reason": reason},
            codec=_GRANT,
            body=body,
        )
