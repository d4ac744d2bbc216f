"""One gateway per data directory (`_datadir`): a second one is refused at start."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from govshare.gateway import DataDirInUse, DataDirLock, Gateway, GatewayConfig


async def test_a_second_gateway_on_a_data_dir_in_use_is_refused_at_start(
    simulators: dict[str, str], gateway_config: Callable[[dict[str, str]], GatewayConfig]
) -> None:
    """While one gateway serves a data_dir, another on it fails to start, naming the
    holder's pid, and leaves the first one's audit log untouched; once the first one
    stops, the directory can be served again."""
    config = gateway_config(simulators)
    async with Gateway(config) as first:
        size = first.access_log.size
        second = Gateway(config)
        with pytest.raises(DataDirInUse, match=rf"in use by another gateway \(pid {os.getpid()}\)"):
            await second.start()
        assert first.access_log.size == size
    async with Gateway(config) as again:
        assert again.port > 0


def test_the_lock_is_released_for_the_next_holder(tmp_path: Path) -> None:
    """release() frees the directory at once; a lock never taken releases as a no-op."""
    folder = tmp_path
    first = DataDirLock(folder)
    first.acquire()
    with pytest.raises(DataDirInUse):
        DataDirLock(folder).acquire()
    first.release()
    first.release()
    second = DataDirLock(folder)
    second.acquire()
    second.release()


def test_a_lock_whose_pid_cannot_be_written_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If writing the pid fails after the flock was taken (a full disk), acquire raises
    and neither the lock nor its file descriptor outlives it."""

    def full_disk(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    lock = DataDirLock(tmp_path)
    with monkeypatch.context() as patched:
        patched.setattr(os, "write", full_disk)
        with pytest.raises(OSError, match="No space left"):
            lock.acquire()
    again = DataDirLock(tmp_path)
    again.acquire()
    again.release()
