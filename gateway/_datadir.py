"""One gateway per data directory, held by an advisory lock for the process's life.

Two gateways on one `data_dir` would both append to `audit.db`: the second one
starts, reports SERVING, and then fails every commit on an index the first one
already wrote (after calling the registry). The same happens when a restart
opens the log while the old process is still in its shutdown grace. So the
gateway takes an exclusive `flock` on `<data_dir>/gateway.lock` before opening
anything; the kernel drops it when the process ends, however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

__all__ = ["DataDirInUse", "DataDirLock"]

LOCK_FILE: Final = "gateway.lock"


class DataDirInUse(RuntimeError):
    """Another process holds the data directory."""


class DataDirLock:
    """Exclusive, non-blocking lock on a data directory; `release` (or exit) frees it."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUse(
                f"{self._path.parent} is in use by another gateway (pid {holder}); "
                "stop it first, or give this one its own data_dir"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        try:
            # Only for the message a second gateway prints; the lock is the flock.
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except BaseException:
            # E.g. a full disk: no lock may outlive the failed start.
            self.release()
            raise

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
