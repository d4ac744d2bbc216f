"""Writing private keys so that no other user can ever read them."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_secret"]


def write_secret(path: Path, content: bytes) -> None:
    """Create or replace `path` with mode 0600 from the first byte on.

    Writing first and chmod-ing after would leave the key readable under the
    umask for a moment; a temp file opened 0600 and renamed into place never is.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
