"""Access decisions outside the exchange path — directory and audit calls that
were refused, and auditors' searches by holder — written to the same log."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from ._auditlog import AccessLogError, SqliteAccessLog
from ._clock import utc_now, utc_text
from ._errors import GovshareError, Reason
from ._identity import Principal

__all__ = ["DecisionRecorder"]

_log = logging.getLogger("govshare.gateway")


class DecisionRecorder:
    """Appends one record per decision and waits until it is durable."""

    def __init__(self, access_log: SqliteAccessLog) -> None:
        self._log = access_log

    async def record_denial(
        self, method: str, caller: Principal | None, error: GovshareError, request_id: str = ""
    ) -> None:
        await self.record(method, caller, "DENIED", error.reason.value, request_id)

    async def record_refusal(
        self, method: str, caller: Principal | None, reason: str, request_id: str = ""
    ) -> None:
        """A refusal under any reason text, e.g. the directory room's own (ETAG_MISMATCH)."""
        await self.record(method, caller, "DENIED", reason, request_id)

    async def record(
        self,
        method: str,
        caller: Principal | None,
        outcome: str,
        reason: str = "",
        request_id: str = "",
        **fields: Any,
    ) -> None:
        """Log a decision whose caller is told no either way (a refusal)."""
        # A log that cannot take the record has already failed every exchange
        # call, which is where operators will look.
        with contextlib.suppress(AccessLogError):
            await self._append(method, caller, outcome, reason, request_id, **fields)

    async def record_or_fail(
        self,
        method: str,
        caller: Principal | None,
        outcome: str,
        reason: str = "",
        request_id: str = "",
        **fields: Any,
    ) -> None:
        """Log a decision that hands data out; AUDIT_UNAVAILABLE if it cannot be logged.

        Like an exchange call, such an answer must not leave without its record.
        """
        try:
            await self._append(method, caller, outcome, reason, request_id, **fields)
        except AccessLogError:
            _log.exception("audit append failed method=%s", method)
            raise GovshareError(
                Reason.AUDIT_UNAVAILABLE, "the access could not be logged; nothing was handed out"
            ) from None

    async def _append(
        self,
        method: str,
        caller: Principal | None,
        outcome: str,
        reason: str,
        request_id: str,
        **fields: Any,
    ) -> None:
        record = {
            "time": utc_text(utc_now()),
            "method": method,
            "request_id": request_id,
            "consumer": caller.label if caller is not None else "",
            "outcome": outcome,
            "reason": reason,
            **fields,
        }
        await self._log.append(record).wait()
