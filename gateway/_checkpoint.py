"""Signed log checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes (Ed25519).

Wire formats (https://c2sp.org/tlog-checkpoint, https://c2sp.org/signed-note), the same
as Go's golang.org/x/mod/sumdb/note, so off-the-shelf witnesses and verifiers accept them:

    <origin>\\n<tree size>\\n<base64 root hash>\\n[<extension line>\\n ...]
    \\n
    — <key name> <base64(4-byte key hash || 64-byte signature)>\\n

Key hash = SHA-256(name || 0x0A || 0x01 || public key)[:4], 0x01 naming Ed25519.
Verifier keys read `<name>+<hex key hash>+<base64(0x01 || public key)>`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ._secrets import create_secret

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "NoteSigner",
    "NoteVerifier",
    "load_or_create_note_signer",
    "open_note",
    "open_signed_note",
]

_ED25519: Final = 0x01  # signature type byte of the signed-note spec
_SIG_PREFIX: Final = "\u2014 "  # EM DASH, SPACE
_MAX_SIGNATURES: Final = 100  # as Go's note.Open: bounds the work an attacker can cause
_MAX_SIZE: Final = (1 << 64) - 1
_DECIMAL: Final = re.compile(r"0|[1-9][0-9]*")
_KEY_HASH: Final = re.compile(r"[0-9a-fA-F]{8}")
# Every ASCII control character but newline is forbidden in a note.
_CONTROL: Final = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


class CheckpointError(Exception):
    """A signed note or checkpoint is malformed, unsigned by a known key, or forged."""


def _valid_name(name: str) -> bool:
    # signed-note: non-empty, no Unicode whitespace, no "+" (it separates key fields).
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _b64decode(text: str) -> bytes:
    """Strict standard base64 (padded, no whitespace); ValueError otherwise."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"invalid base64 ({exc})") from None
    # Canonical only: otherwise one signature or key would have several spellings.
    if base64.b64encode(raw).decode() != text:
        raise ValueError("non-canonical base64")
    return raw


def _key_hash(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise CheckpointError("malformed note: the text must end with a newline")
    if _CONTROL.search(text):
        raise CheckpointError("malformed note: control character in the text")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One tree head of a log: its origin, tree size and root hash (tlog-checkpoint)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lines = (self.origin, *self.extensions)
        if not self.origin or any("\n" in s or _CONTROL.search(s) for s in lines):
            raise ValueError("origin and extension lines must be non-empty single lines")
        if any(not line for line in self.extensions):
            raise ValueError("extension lines must not be empty")
        if not 0 <= self.size <= _MAX_SIZE:
            raise ValueError(f"tree size {self.size} is not a uint64")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
            raise ValueError("the root hash is 32 bytes (SHA-256)")

    def body(self) -> bytes:
        """The checkpoint text that gets signed, UTF-8, each line ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "".join(f"{line}\n" for line in (*lines, *self.extensions)).encode()

    @classmethod
    def parse(cls, body: bytes | str) -> Checkpoint:
        """Read a checkpoint body (the note text), strictly; CheckpointError if malformed."""
        try:
            text = body.decode() if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            raise CheckpointError("malformed checkpoint: not UTF-8") from None
        if not text.endswith("\n"):
            raise CheckpointError("malformed checkpoint: the body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("malformed checkpoint: need origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        # Canonical decimal only, so one tree head has exactly one signed spelling.
        if not _DECIMAL.fullmatch(size_text) or int(size_text) > _MAX_SIZE:
            raise CheckpointError(f"malformed checkpoint: bad tree size {size_text!r}")
        try:
            root_hash = _b64decode(root_text)
        except ValueError:
            raise CheckpointError(f"malformed checkpoint: bad root hash {root_text!r}") from None
        try:
            return cls(origin, int(size_text), root_hash, tuple(extensions))
        except ValueError as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from None


@dataclass(frozen=True, slots=True)
class NoteVerifier:
    """An Ed25519 note verification key with its name and key hash."""

    name: str
    key_hash: int
    public_key: Ed25519PublicKey

    @classmethod
    def from_public_key(cls, name: str, public_key: Ed25519PublicKey) -> NoteVerifier:
        """The verifier for `public_key` under `name`."""
        if not _valid_name(name):
            raise ValueError(f"invalid key name {name!r}")
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(name, _key_hash(name, raw), public_key)

    @classmethod
    def from_key(cls, vkey: str) -> NoteVerifier:
        """Parse `<name>+<hex key hash>+<base64(0x01 || key)>`.

        Raises ValueError (a configuration mistake, not a bad note) if malformed, of
        another algorithm, or if the key hash does not match the name and key.
        """
        # maxsplit: "+" is also a base64 character in the key itself.
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise ValueError("a verifier key reads <name>+<hex key hash>+<base64 key>")
        name, hash_hex, key_b64 = parts
        if not _valid_name(name) or not _KEY_HASH.fullmatch(hash_hex):
            raise ValueError(f"malformed verifier key {vkey!r}")
        try:
            raw = _b64decode(key_b64)
        except ValueError as exc:
            raise ValueError(f"malformed verifier key: {exc}") from None
        if len(raw) != 33 or raw[0] != _ED25519:
            raise ValueError("verifier key is not a 32-byte Ed25519 key (type 0x01)")
        if _key_hash(name, raw[1:]) != int(hash_hex, 16):
            raise ValueError(f"verifier key hash {hash_hex} does not match the name and key")
        return cls(name, int(hash_hex, 16), Ed25519PublicKey.from_public_bytes(raw[1:]))

    def key(self) -> str:
        """This key in verifier key string form."""
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        encoded = base64.b64encode(bytes([_ED25519]) + raw).decode()
        return f"{self.name}+{self.key_hash:08x}+{encoded}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """True iff `signature` (without the key hash prefix) signs `text`."""
        try:
            self.public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


class NoteSigner:
    """Signs note texts (e.g. `Checkpoint.body()`) with an Ed25519 key under `name`."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self._verifier = NoteVerifier.from_public_key(name, private_key.public_key())

    @classmethod
    def from_key(cls, skey: str) -> NoteSigner:
        """Parse `PRIVATE+KEY+<name>+<hex key hash>+<base64(0x01 || seed)>` (Go's format)."""
        parts = skey.split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise ValueError("a signer key reads PRIVATE+KEY+<name>+<hex key hash>+<base64 key>")
        _, _, name, hash_hex, key_b64 = parts
        if not _valid_name(name) or not _KEY_HASH.fullmatch(hash_hex):
            raise ValueError("malformed signer key")
        try:
            raw = _b64decode(key_b64)
        except ValueError as exc:
            raise ValueError(f"malformed signer key: {exc}") from None
        if len(raw) != 33 or raw[0] != _ED25519:
            raise ValueError("signer key is not a 32-byte Ed25519 seed (type 0x01)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.key_hash != int(hash_hex, 16):
            raise ValueError(f"signer key hash {hash_hex} does not match the name and key")
        return signer

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_hash(self) -> int:
        return self._verifier.key_hash

    def verifier(self) -> NoteVerifier:
        """The matching verifier."""
        return self._verifier

    def verifier_key(self) -> str:
        """The verifier key string to publish for this signer."""
        return self._verifier.key()

    def sign(self, body: bytes | str) -> str:
        """The complete signed note: `body`, a blank line, then this key's signature line."""
        try:
            text = body.decode() if isinstance(body, bytes) else body
        except UnicodeDecodeError:
            raise CheckpointError("malformed note: the text is not UTF-8") from None
        _check_text(text)
        signature = self._private_key.sign(text.encode())
        blob = base64.b64encode(self.key_hash.to_bytes(4, "big") + signature).decode()
        return f"{text}\n{_SIG_PREFIX}{self.name} {blob}\n"


def _verifier_table(verifiers: Iterable[NoteVerifier]) -> dict[tuple[str, int], NoteVerifier]:
    table: dict[tuple[str, int], NoteVerifier] = {}
    for v in verifiers:
        seen = table.setdefault((v.name, v.key_hash), v)
        if seen.key() != v.key():
            raise CheckpointError(f"ambiguous key {v.name}+{v.key_hash:08x}")
    return table


def open_note(text: bytes | str, verifiers: Iterable[NoteVerifier]) -> str:
    """The text of a signed note, once a signature by one of `verifiers` checks out.

    Signatures by other keys are ignored (a witness may cosign); a signature line that
    names a known key but does not verify is a forgery and fails the whole note, as in Go.
    Raises CheckpointError: malformed note, no signature by a known key, bad signature.
    """
    try:
        message = text.decode() if isinstance(text, bytes) else text
    except UnicodeDecodeError:
        raise CheckpointError("malformed note: not UTF-8") from None
    if _CONTROL.search(message):
        raise CheckpointError("malformed note: control character")
    split = message.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line before the signatures")
    body, signature_block = message[: split + 1], message[split + 2 :]
    if not signature_block.endswith("\n"):
        raise CheckpointError("malformed note: the signature block must end with a newline")
    lines = signature_block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    table = _verifier_table(verifiers)
    verified: set[tuple[str, int]] = set()
    unknown: list[str] = []
    for line in lines:
        name, _, blob_b64 = line.removeprefix(_SIG_PREFIX).partition(" ")
        try:
            blob = _b64decode(blob_b64)
        except ValueError:
            blob = b""
        if not line.startswith(_SIG_PREFIX) or not _valid_name(name) or len(blob) < 5:
            raise CheckpointError(f"malformed note: bad signature line {line[:100]!r}")
        key = (name, int.from_bytes(blob[:4], "big"))
        verifier = table.get(key)
        if verifier is None:
            unknown.append(f"{name}+{key[1]:08x}")
        elif key not in verified:
            if not verifier.verify(body.encode(), blob[4:]):
                raise CheckpointError(f"invalid signature for key {name}+{key[1]:08x}")
            verified.add(key)
    if not verified:
        raise CheckpointError(
            "note has no signature by a known key (signed by: " + ", ".join(unknown) + ")"
        )
    return body


def open_signed_note(
    text: bytes | str, verifiers: Iterable[NoteVerifier], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse it; CheckpointError if anything is wrong.

    Pass `origin` to also require the log's origin line: a checkpoint validly signed for
    another log must not be taken for this one (tlog-checkpoint requires this check).
    """
    checkpoint = Checkpoint.parse(open_note(text, verifiers))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint is for origin {checkpoint.origin!r}, expected {origin!r}"
        )
    return checkpoint


def load_or_create_note_signer(path: Path, name: str) -> NoteSigner:
    """The checkpoint signer whose Ed25519 key is the PKCS#8 PEM at `path`, made on first use.

    The key file is created with mode 0600 from its first byte, once (`create_secret`).
    """
    if not _valid_name(name):
        # Checked before a key file is created for a signer that could never be used.
        raise ValueError(f"invalid key name {name!r}")
    if not path.exists():
        generated = Ed25519PrivateKey.generate()
        pem = generated.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # If another process created it meanwhile, its key is the one read below.
        create_secret(path, pem)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        # cryptography's own text names neither the file nor what it should hold.
        raise ValueError(
            f"{path} is not an unencrypted PEM private key ({error}); restore the "
            "checkpoint key from its backup"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return NoteSigner(name, key)
