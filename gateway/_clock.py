"""Times as the log and the evidence write them: ISO 8601 in UTC with a `Z`."""

from __future__ import annotations

import datetime as _dt

__all__ = ["utc_now", "utc_text"]


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


def utc_text(moment: _dt.datetime, timespec: str = "microseconds") -> str:
    """`2026-11-23T10:00:00.000000Z`; one format, so stored times sort as text."""
    return moment.astimezone(_dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
