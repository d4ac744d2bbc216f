"""Signed evidence: the canonical record (RFC 8785) as the payload of a JWS.

The protected header names the key (`kid`), the request (`gsreq`), the audit
log index (`gsidx`) and the time (`iat`), so a piece of evidence and its log
entry point at each other. Anyone holding the published JWKS verifies offline.

The default algorithm is `Ed25519` — EdDSA over Ed25519 under its RFC 9864
name, which replaces the deprecated polymorphic `EdDSA`; `ES256` is selectable.

One key signs; the JWKS also publishes every earlier evidence key the operator
keeps (the other algorithm's key file, and `retired/*.pem`), so evidence issued
before a change of algorithm or key still verifies.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import nacl.bindings
import rfc8785
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey
from joserfc.registry import HeaderParameter

from ._secrets import create_secret

__all__ = [
    "SIGNING_ALGORITHMS",
    "EvidenceSigner",
    "EvidenceVerification",
    "canonical_json",
    "load_or_create_signer",
    "verify_evidence",
]

_log = logging.getLogger("govshare.gateway")

SIGNING_ALGORITHMS = ("Ed25519", "ES256")
_EVIDENCE_TYPE = "govshare-evidence+jws"

_REGISTRY = jws.JWSRegistry(
    header_registry={
        "gsreq": HeaderParameter("govshare request id", "str", required=True),
        "gsidx": HeaderParameter("govshare audit log index", "int", required=True),
        "iat": HeaderParameter("issued at, seconds since the epoch", "int", required=True),
    },
    algorithms=list(SIGNING_ALGORITHMS),
)


_MAX_SAFE_INTEGER = 2**53 - 1
_ED25519_SIGNATURE_BYTES: Final = 64
# Built once: json.dumps with options constructs a new encoder on every call.
_CANONICAL_ENCODER: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False
)
_COMPACT_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of `value`.

    For JSON built only from strings, booleans, null, integers within ±(2^53−1),
    arrays and objects with ASCII keys — every record govshare writes — RFC 8785
    output is exactly what the standard library's C encoder writes with sorted
    keys, no whitespace and no ASCII escaping: UTF-16 key order equals code-point
    order for ASCII keys, such integers print alike, and both escape the same
    characters the same way. That path is four times faster on the request path;
    anything else (floats, non-ASCII keys, large integers) goes to the `rfc8785`
    library. tests/gateway/test_canonical.py checks that the two agree.
    """
    if _plain(value):
        try:
            return _CANONICAL_ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: let the library report it
    return rfc8785.dumps(value)


def _plain(value: Any) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER)
    if kind is list:
        return all(_plain(item) for item in value)
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    return False


class EvidenceSigner:
    """Signs evidence with one active key and publishes the JWKS: the active key
    first, then the public half of each key in `published` (earlier keys whose
    evidence must still verify; they never sign)."""

    def __init__(
        self, key: OKPKey | ECKey, algorithm: str, published: Iterable[OKPKey | ECKey] = ()
    ) -> None:
        if algorithm not in SIGNING_ALGORITHMS:
            raise ValueError(f"unsupported signing algorithm {algorithm!r}")
        self._key = key
        private = key.private_key
        if not isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the evidence signing key must be a private Ed25519 or P-256 key")
        if isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name != "secp256r1":
            raise ValueError("ES256 needs a P-256 key")
        self._private = private
        # Ed25519 signs through libsodium (PyNaCl): 319k instructions a signature
        # against 488k through cryptography's OpenSSL, the same deterministic bytes.
        self._sodium_key: bytes | None = None
        if isinstance(private, ed25519.Ed25519PrivateKey):
            seed = private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            public_raw = private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self._sodium_key = seed + public_raw
        self.algorithm = algorithm
        self.key_id = key.thumbprint()
        public = key.as_dict(private=False)
        public.update({"kid": self.key_id, "use": "sig", "alg": algorithm})
        keys = [public]
        for earlier in published:
            entry = _public_jwk(earlier)
            # A retired copy of the active key (copied, not moved) is listed once.
            if all(entry["kid"] != listed["kid"] for listed in keys):
                keys.append(entry)
        self._jwks: dict[str, Any] = {"keys": keys}
        self._jwks_json = json.dumps(self._jwks, sort_keys=True)

    def sign(self, payload: bytes, *, request_id: str, log_index: int, issued_at: int) -> str:
        # Signed directly (libsodium for Ed25519, cryptography for ES256): joserfc
        # re-validates the header against its registry and re-encodes on every call
        # (~60 µs on the request path). The header is plain ASCII JSON we build
        # ourselves; tests check that the tokens are byte-identical to joserfc's
        # (Ed25519 is deterministic) and verify with it.
        header = {
            "alg": self.algorithm,
            "kid": self.key_id,
            "typ": _EVIDENCE_TYPE,
            "gsreq": request_id,
            "gsidx": log_index,
            "iat": issued_at,
        }
        protected = _b64url(_COMPACT_ENCODER.encode(header).encode("ascii"))
        signing_input = protected + b"." + _b64url(payload)
        return (signing_input + b"." + _b64url(self._raw_signature(signing_input))).decode("ascii")

    def _raw_signature(self, message: bytes) -> bytes:
        if self._sodium_key is not None:
            # crypto_sign returns signature || message.
            return nacl.bindings.crypto_sign(message, self._sodium_key)[:_ED25519_SIGNATURE_BYTES]
        private = self._private
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        # JWS wants ES256 as the fixed-size pair r || s (RFC 7518 §3.4), not DER.
        r, s = decode_dss_signature(private.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    @property
    def jwks(self) -> Mapping[str, Any]:
        return self._jwks

    @property
    def jwks_json(self) -> str:
        return self._jwks_json


_RETIRED_FOLDER: Final = "retired"


def _key_file(folder: Path, algorithm: str) -> Path:
    return folder / f"evidence-signing-{algorithm.lower()}.pem"


def load_or_create_signer(folder: Path, algorithm: str = "Ed25519") -> EvidenceSigner:
    """Load the signing key from `folder` (PEM), creating it on first start.

    The JWKS also publishes, never to sign with, the key file of the other
    algorithm if there is one (the key used before a change of `signing_algorithm`)
    and every `*.pem` in `folder/retired/`, private or public (keys replaced by a
    rotation). A file there that is not an Ed25519 or P-256 key is a ValueError:
    evidence the operator means to keep verifiable must not silently stop verifying.
    """
    if algorithm not in SIGNING_ALGORITHMS:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}")
    path = _key_file(folder, algorithm)
    if not path.exists():
        private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = (
            ed25519.Ed25519PrivateKey.generate()
            if algorithm == "Ed25519"
            else ec.generate_private_key(ec.SECP256R1())
        )
        # If another process created it meanwhile, its key is the one read below.
        create_secret(
            path,
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    pem = path.read_bytes()
    try:
        key: OKPKey | ECKey = (
            OKPKey.import_key(pem) if algorithm == "Ed25519" else ECKey.import_key(pem)
        )
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        # The library's text names neither the file nor what it should hold.
        raise ValueError(
            f"{path} is not an unencrypted PEM {algorithm} private key ({error}); restore "
            "the evidence signing key from its backup"
        ) from None
    others = (_key_file(folder, other) for other in SIGNING_ALGORITHMS if other != algorithm)
    earlier = [file for file in others if file.exists()]
    earlier += sorted((folder / _RETIRED_FOLDER).glob("*.pem"))
    signer = EvidenceSigner(key, algorithm, [_published_key(file) for file in earlier])
    # The operator's check that a rotation kept the old key published.
    _log.info(
        "evidence signing key %s (%s); JWKS publishes %d earlier key(s) from %s",
        signer.key_id,
        algorithm,
        len(signer.jwks["keys"]) - 1,
        ", ".join(file.name for file in earlier) or "no other file",
    )
    return signer


def _published_key(path: Path) -> OKPKey | ECKey:
    """The public half of an earlier evidence key, from a private or public PEM file."""
    pem = path.read_bytes()
    try:
        if b"-----BEGIN PUBLIC KEY-----" in pem:
            public = serialization.load_pem_public_key(pem)
        else:
            public = serialization.load_pem_private_key(pem, password=None).public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise ValueError(f"{path}: not a readable evidence signing key: {error}") from error
    if isinstance(public, ed25519.Ed25519PublicKey):
        return OKPKey.import_key(public)
    if isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1":
        return ECKey.import_key(public)
    raise ValueError(f"{path}: an evidence signing key must be Ed25519 or P-256")


def _public_jwk(key: OKPKey | ECKey) -> dict[str, Any]:
    public = key.as_dict(private=False)
    # The same kid (RFC 7638 thumbprint) as when the key was active, so evidence
    # that names it finds it.
    if public.get("crv") == "Ed25519":
        algorithm = "Ed25519"
    elif public.get("crv") == "P-256":
        algorithm = "ES256"
    else:
        raise ValueError("an evidence signing key must be Ed25519 or P-256")
    public.update({"kid": key.thumbprint(), "use": "sig", "alg": algorithm})
    return public


@dataclass(frozen=True, slots=True)
class EvidenceVerification:
    """Result of checking a JWS: `reason` is empty when valid."""

    valid: bool
    reason: str = ""
    key_id: str = ""
    log_index: int = -1
    request_id: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    # Set only when valid: the header's `iat` and the payload exactly as signed.
    issued_at: int = -1
    payload_bytes: bytes = b""


def verify_evidence(token: str, jwks: Mapping[str, Any]) -> EvidenceVerification:
    """Check `token` against `jwks`; reasons: MALFORMED, KEY_UNKNOWN, SIGNATURE_INVALID."""
    try:
        header = _peek_header(token)
        keys = KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
    except (ValueError, KeyError, TypeError, RecursionError, JoseError):
        return EvidenceVerification(False, "MALFORMED")
    # The header is not authenticated yet, and these values go back to the caller:
    # only short, encodable text and an index that fits the reply are kept.
    kid = _echoable(header.get("kid"))
    request_id = _echoable(header.get("gsreq"))
    if kid is None or request_id is None:
        return EvidenceVerification(False, "MALFORMED")
    index = header.get("gsidx")
    log_index = index if type(index) is int and 0 <= index < _MAX_LOG_INDEX else -1
    if not any(key.kid == kid for key in keys.keys):
        return EvidenceVerification(False, "KEY_UNKNOWN", kid, log_index, request_id)
    try:
        verified = jws.deserialize_compact(token, keys, registry=_REGISTRY)
    except JoseError:
        return EvidenceVerification(False, "SIGNATURE_INVALID", kid, log_index, request_id)
    try:
        payload = json.loads(verified.payload)
    except (ValueError, RecursionError):
        return EvidenceVerification(False, "MALFORMED", kid, log_index, request_id)
    iat = header.get("iat")
    return EvidenceVerification(
        True,
        "",
        kid,
        log_index,
        request_id,
        payload,
        issued_at=iat if type(iat) is int else -1,
        payload_bytes=verified.payload,
    )


# log_index is an int64 in the reply; request ids are at most 128 characters plus
# "/<n>" for a ResolveMaterials material, key ids a thumbprint: anything beyond
# these bounds is not a header the gateway wrote.
_MAX_LOG_INDEX: Final = 2**63
_MAX_HEADER_TEXT: Final = 256


def _echoable(value: object) -> str | None:
    """`value` as text safe to send back (missing is ""), or None if it cannot be."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > _MAX_HEADER_TEXT:
        return None
    try:
        value.encode("utf-8")  # lone surrogates: JSON allows them, protobuf does not
    except UnicodeEncodeError:
        return None
    return value


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _peek_header(token: str) -> Mapping[str, Any]:
    """The protected header, decoded without trusting it (to pick the key)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    encoded = parts[0] + "=" * (-len(parts[0]) % 4)
    header = json.loads(base64.urlsafe_b64decode(encoded))
    if not isinstance(header, dict):
        raise ValueError("header is not an object")
    return header
