"""Holder ids leave the request path only as a keyed hash and a masked form."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from ._secrets import create_secret

__all__ = ["HolderIdProtector", "mask_holder_id"]

_KEY_BYTES = 32


def mask_holder_id(holder_id: str) -> str:
    """Hide at least five characters: 3604**********0071 for 15 or more, 12*****89 below.

    A check character recovers one hidden character, so a 9-character id shown 4+4
    would be in clear; short ids keep two at each end, ids of 8 or fewer none.
    """
    length = len(holder_id)
    if length <= 8:
        return "*" * length
    keep = 4 if length >= 15 else 2
    return holder_id[:keep] + "*" * (length - 2 * keep) + holder_id[-keep:]


class HolderIdProtector:
    """HMAC-SHA256 under a secret key, so the log can be searched by holder but
    a leaked log does not reveal ids (citizen ids are too few to hash unkeyed)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("holder hash key must be at least 16 bytes")
        # Keyed once; each hash copies the keyed state (hmac.new re-derives the key
        # pads and looks up the digest on every call).
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    @classmethod
    def load_or_create(cls, path: Path) -> HolderIdProtector:
        if not path.exists():
            # Created atomically: gateways starting together on a fresh folder must all
            # hash with the one key left on disk, or their entries are unfindable later.
            # (Only when missing: a provisioned key may sit in a read-only folder.)
            create_secret(path, (secrets.token_hex(_KEY_BYTES) + "\n").encode())
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except ValueError as error:
            raise ValueError(f"{path}: not a holder hash key ({error})") from None

    def hash(self, holder_id_type: str, holder_id: str) -> str:
        message = f"{holder_id_type}:{holder_id.upper()}".encode()
        keyed = self._keyed.copy()
        keyed.update(message)
        return keyed.hexdigest()
