"""Writing private keys so that no other user can ever read them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["create_secret", "write_secret"]


def write_secret(path: Path, content: bytes) -> None:
    """Create or replace `path` with mode 0600 from the first byte on.

    Writing first and chmod-ing after would leave the key readable under the
    umask for a moment; a temp file opened 0600 and renamed into place never is.
    The temp file has a fresh, unguessable name (mkstemp: O_EXCL, 0600), so a
    stale or planted file or symlink of a fixed name cannot lend it its mode or
    redirect the key elsewhere.
    """
    temporary = _private_temp(path, content)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def create_secret(path: Path, content: bytes) -> bool:
    """Create `path` (mode 0600) holding `content` unless it already exists.

    Atomic: of several processes starting on a fresh data folder at once, exactly
    one creates the file (a hard link fails if the name exists) and all then read
    the same key. Returns whether this call created it.
    """
    temporary = _private_temp(path, content)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


def _private_temp(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        try:
            os.write(fd, content)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary
