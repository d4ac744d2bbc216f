"""Keeping the request path's catalogue snapshot current, and the directory's
changes in the audit log.

The exchange never queries the database: it reads an immutable `Catalogue`
snapshot. After each write through this gateway the snapshot is reloaded
before the caller gets its answer; changes made elsewhere (another replica,
`govshare directory import`) are noticed by polling the store's revision
counter. Each new directory event is appended to the transparency log once,
in event order; the last forwarded sequence number is read back from the log
itself at start, so a restart neither skips nor repeats events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from govshare.directory import Catalogue, DirectoryEvent, SqlCatalogueStore

from ._auditlog import SqliteAccessLog
from ._auditquery import AuditReader
from ._clock import utc_text

__all__ = ["DIRECTORY_EVENT_METHOD", "DirectorySync"]

DIRECTORY_EVENT_METHOD = "DirectoryEvent"
_log = logging.getLogger("govshare.directory")
_EXPIRY_INTERVAL_SECONDS = 3600.0


class DirectorySync:
    """Reloads the snapshot on change and forwards directory events to the log."""

    def __init__(
        self,
        *,
        store: SqlCatalogueStore,
        access_log: SqliteAccessLog,
        reader: AuditReader,
        publish: Callable[[Catalogue], None],
        poll_seconds: float,
    ) -> None:
        self._store = store
        self._log = access_log
        self._reader = reader
        self._publish = publish
        self._poll_seconds = poll_seconds
        self._lock = asyncio.Lock()
        self._revision = -1
        self._forwarded = 0
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        self._forwarded = await self._reader.last_directory_event_seq()
        await self.refresh()
        # Always: with polling off (0) the watcher still marks expired grants hourly.
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """Stop polling and wait for a refresh under way: the store and the log close next.

        A refresh is shielded, so cancelling the watcher does not end one it began;
        taking the lock waits for it (and for one a request started).
        """
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        async with self._lock:
            pass

    async def refresh(self) -> None:
        """Load a new snapshot if the store changed, and log the new events.

        Shielded: a caller whose deadline passes mid-refresh must not leave the
        snapshot or the forwarding half done.
        """
        await asyncio.shield(self._refresh())

    async def _refresh(self) -> None:
        async with self._lock:
            if self._stopped:
                return
            revision = await self._store.revision()
            if revision != self._revision:
                self._publish(await self._store.load())
                self._revision = revision
            await self._forward_events()

    async def _forward_events(self) -> None:
        while True:
            events = await self._store.events_after(self._forwarded, limit=500)
            if not events:
                return
            pending = [self._log.append(_event_record(e)) for e in events]
            # Queued appends commit in order or fail the log, so they count as
            # forwarded now: a cancelled wait below must not send them twice.
            self._forwarded = events[-1].seq
            await asyncio.gather(*(p.wait() for p in pending))

    async def _watch(self, expiry_interval: float = _EXPIRY_INTERVAL_SECONDS) -> None:
        polling = self._poll_seconds > 0
        step = self._poll_seconds if polling else expiry_interval
        since_expiry = 0.0
        while True:
            await asyncio.sleep(step)
            since_expiry += step
            try:
                expiring = since_expiry >= expiry_interval
                if expiring:
                    since_expiry = 0.0
                    await self._store.expire_due()
                if polling or expiring:
                    await self.refresh()
            except Exception:
                # A database hiccup must not stop the watcher; the next poll retries.
                _log.exception("directory refresh failed")


def _event_record(event: DirectoryEvent) -> dict[str, Any]:
    return {
        "time": utc_text(event.time),
        "method": DIRECTORY_EVENT_METHOD,
        "request_id": event.request_id,
        "consumer": event.actor,
        "resource_code": event.target,
        "outcome": "ALLOWED",
        "reason": "",
        "event": {
            "seq": event.seq,
            "action": event.action,
            "target": event.target,
            "before": _plain(event.before),
            "after": _plain(event.after),
        },
    }


def _plain(document: Any) -> Any:
    """JSON-safe copy (RFC 8785 takes only JSON types; dates become strings)."""
    if isinstance(document, dict):
        return {str(k): _plain(v) for k, v in document.items()}
    if isinstance(document, list | tuple):
        return [_plain(v) for v in document]
    if document is None or isinstance(document, str | bool | int):
        return document
    return str(document)
