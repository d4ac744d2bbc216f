"""DirectorySync: stopping waits for a refresh under way (`_directory_sync`)."""

from __future__ import annotations

import asyncio
from typing import Any

from govshare.gateway._directory_sync import DirectorySync


class _SlowStore:
    """Stands in for the store: a revision read that takes until it is released."""

    def __init__(self) -> None:
        self.reading = asyncio.Event()
        self.release = asyncio.Event()
        self.closed = False
        self.used_after_close = False

    async def revision(self) -> int:
        self.reading.set()
        await self.release.wait()
        return 2

    async def load(self) -> Any:
        self.used_after_close |= self.closed
        return object()

    async def events_after(self, seq: int, limit: int) -> list[Any]:
        self.used_after_close |= self.closed
        return []


class _Reader:
    async def last_directory_event_seq(self) -> int:
        return 0


def _sync(store: Any, published: list[Any], *, poll_seconds: float) -> DirectorySync:
    """A DirectorySync on a stand-in store; no log is needed (no directory events)."""
    return DirectorySync(
        store=store,
        access_log=None,  # type: ignore[arg-type]
        reader=_Reader(),  # type: ignore[arg-type]
        publish=published.append,
        poll_seconds=poll_seconds,
    )


async def test_stop_waits_for_a_refresh_under_way() -> None:
    """stop() returns only after an in-flight refresh is done, so closing the store
    afterwards can never pull it from under that refresh; later refreshes do nothing."""
    store = _SlowStore()
    published: list[Any] = []
    sync = _sync(store, published, poll_seconds=0.01)
    task = asyncio.ensure_future(sync.refresh())
    await store.reading.wait()
    stopping = asyncio.ensure_future(sync.stop())
    await asyncio.sleep(0)
    assert not stopping.done()
    store.release.set()
    await stopping
    store.closed = True
    await task
    await sync.refresh()
    assert len(published) == 1
    assert not store.used_after_close


class _ExpiringStore:
    """Stands in for the store: each expiry run bumps the revision, as a real one does
    when it marks grants EXPIRED."""

    def __init__(self) -> None:
        self.expiries = 0
        self.current = 1

    async def expire_due(self) -> None:
        self.expiries += 1
        self.current += 1

    async def revision(self) -> int:
        return self.current

    async def load(self) -> Any:
        return object()

    async def events_after(self, seq: int, limit: int) -> list[Any]:
        return []


async def test_with_polling_off_expired_grants_are_still_marked_and_reloaded() -> None:
    """directory_poll_seconds = 0 turns polling off, not grant expiry: the watcher still
    runs expiry on its interval and reloads the snapshot it changed."""
    store = _ExpiringStore()
    published: list[Any] = []
    sync = _sync(store, published, poll_seconds=0)
    await sync.refresh()
    watcher = asyncio.ensure_future(sync._watch(expiry_interval=0.001))
    try:
        for _ in range(2000):
            if store.expiries >= 2 and len(published) >= 3:
                break
            await asyncio.sleep(0.001)
    finally:
        watcher.cancel()
    assert store.expiries >= 2
    assert len(published) >= 3  # the start, then one reload per expiry run
