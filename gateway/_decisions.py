"""Access decisions outside the exchange path — directory and audit calls that
were refused, and auditors' searches by holder — written to the same log."""

from __future__ import annotations

import contextlib
from typing import Any

from ._auditlog import AccessLogError, SqliteAccessLog
from ._clock import utc_now, utc_text
from ._errors import GovshareError
from ._identity import Principal

__all__ = ["DecisionRecorder"]


class DecisionRecorder:
    """Appends one record per decision and waits until it is durable."""

    def __init__(self, access_log: SqliteAccessLog) -> None:
        self._log = access_log

    async def record_denial(
        self, method: str, caller: Principal | None, error: GovshareError, request_id: str = ""
    ) -> None:
        await self.record(method, caller, "DENIED", error.reason.value, request_id)

    async def record(
        self,
        method: str,
        caller: Principal | None,
        outcome: str,
        reason: str = "",
        request_id: str = "",
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
        # The caller is told no either way; a log that cannot take the record has
        # already failed every exchange call, which is where operators will look.
        with contextlib.suppress(AccessLogError):
            await self._log.append(record).wait()
