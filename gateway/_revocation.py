"""Revoked client certificates: the client CA's CRL, checked on every call.

The CRL file (PEM or DER) must be signed by the CA the gateway trusts for
client certificates; one that is not is refused at start. While serving, the
file is re-read when it changes, so an operator publishes a new CRL without a
restart. A call whose peer certificate is on the list is refused as
CALLER_UNKNOWN, and the refusal is written to the audit log like any other.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes

from ._decisions import DecisionRecorder
from ._errors import GovshareError, Reason, to_grpc_status
from ._exchange_call import log_refused_before_handler
from ._interceptors import WrappingInterceptor

__all__ = ["RevocationList", "RevocationListError", "RevokedCertificates"]

_log = logging.getLogger("govshare.gateway")

# How often the file is looked at for a new version: often enough that a
# revocation bites within seconds, rarely enough to cost nothing.
_RECHECK_SECONDS = 2.0
# Parsed peer certificates kept; far more than the principals of one deployment,
# and a bound so that a stream of distinct certificates cannot grow it forever.
_CACHE_LIMIT = 4096
# The auth-context property gRPC fills with the verified peer certificate.
_PEER_CERTIFICATE = "x509_pem_cert"
_SIGNING_KEYS = (
    dsa.DSAPublicKey,
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)


class RevocationListError(RuntimeError):
    """The CRL file cannot be read, parsed, or is not signed by the client CA.

    A RuntimeError like the gateway's other reasons not to start (no PKI).
    """


@dataclass(frozen=True, slots=True)
class _Crl:
    issuer: bytes  # DER of the issuer name: a serial means nothing under another issuer
    serials: frozenset[int]


@dataclass(frozen=True, slots=True)
class _FileStamp:
    """What tells a new version of the file apart, also one renamed into place."""

    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, path: Path) -> _FileStamp:
        stat = path.stat()
        return cls(stat.st_mtime_ns, stat.st_size, stat.st_ino)


class RevocationList:
    """The serials the client CA has revoked, as of the latest valid CRL file."""

    def __init__(self, path: Path, ca_certificate: Path) -> None:
        self.path = path
        try:
            ca = x509.load_pem_x509_certificate(ca_certificate.read_bytes())
        except (OSError, ValueError) as error:
            raise RevocationListError(f"{ca_certificate}: cannot read the CA: {error}") from None
        key = ca.public_key()
        if not isinstance(key, _SIGNING_KEYS):
            raise RevocationListError(f"{ca_certificate}: the CA's key cannot sign a CRL")
        self._ca_name = ca.subject
        self._ca_key: CertificateIssuerPublicKeyTypes = key
        self._stamp = _FileStamp.of(path) if path.exists() else None
        self._crl = _read_crl(path, self._ca_name, self._ca_key)
        self._peers: dict[bytes, tuple[bytes, int]] = {}

    @property
    def revoked_count(self) -> int:
        return len(self._crl.serials)

    def is_revoked(self, pem: bytes) -> bool:
        """Whether the PEM certificate's serial is on the list under the list's issuer."""
        peer = self._peers.get(pem)
        if peer is None:
            certificate = x509.load_pem_x509_certificate(pem)
            peer = (certificate.issuer.public_bytes(), certificate.serial_number)
            if len(self._peers) >= _CACHE_LIMIT:
                self._peers.clear()
            self._peers[pem] = peer
        issuer, serial = peer
        crl = self._crl
        return serial in crl.serials and issuer == crl.issuer

    def reload_if_changed(self) -> bool:
        """Read the file again if it changed; True when a new list took effect.

        A file that is missing or does not verify leaves the previous list in
        force: failing open would un-revoke every certificate on it.
        """
        try:
            stamp = _FileStamp.of(self.path)
        except OSError as error:
            _log.error(
                "revocation list %s unreadable, keeping the previous one: %s", self.path, error
            )
            return False
        if stamp == self._stamp:
            return False
        try:
            crl = _read_crl(self.path, self._ca_name, self._ca_key)
        except RevocationListError as error:
            _log.error("revocation list not reloaded, keeping the previous one: %s", error)
            # Remembered, so a bad file is reported once, not every few seconds.
            self._stamp = stamp
            return False
        self._stamp = stamp
        self._crl = crl
        _log.info("revocation list %s reloaded: %d revoked", self.path, len(crl.serials))
        return True

    async def watch(self, interval: float | None = None) -> None:
        """Reload whenever the file changes, checking every `interval` seconds."""
        every = _RECHECK_SECONDS if interval is None else interval
        while True:
            await asyncio.sleep(every)
            try:
                self.reload_if_changed()
            except Exception:
                # Whatever went wrong, the list in force stays and the next check
                # retries: a watcher that died would stop every later revocation.
                _log.exception("revocation list %s: reload failed", self.path)


def _read_crl(path: Path, issuer: x509.Name, key: CertificateIssuerPublicKeyTypes) -> _Crl:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise RevocationListError(f"{path}: cannot read the revocation list: {error}") from None
    try:
        crl = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_crl(data)
        )
    except ValueError:
        raise RevocationListError(f"{path}: not an X.509 CRL (PEM or DER)") from None
    if crl.issuer != issuer:
        raise RevocationListError(f"{path}: the CRL is not issued by the client CA")
    try:
        signed = crl.is_signature_valid(key)
    except (TypeError, ValueError):
        signed = False
    if not signed:
        raise RevocationListError(f"{path}: the CRL's signature does not verify with the client CA")
    next_update = crl.next_update_utc
    if next_update is not None and next_update < _dt.datetime.now(_dt.UTC):
        # Still the best list there is: warn rather than fail open or refuse to serve.
        _log.warning("revocation list %s is past its next update (%s)", path, next_update)
    return _Crl(
        issuer=crl.issuer.public_bytes(),
        serials=frozenset(entry.serial_number for entry in crl),
    )


_Handler = Callable[..., Any]


class RevokedCertificates(WrappingInterceptor):
    """Refuses every call, on every service, whose peer certificate is revoked."""

    def __init__(self, revocations: RevocationList, decisions: DecisionRecorder) -> None:
        super().__init__()
        self._revocations = revocations
        self._decisions = decisions

    def _wrap(self, method: str, handler: Any) -> Any:
        admit = self._admit
        options = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None or handler.stream_unary is not None:
            inner: _Handler = handler.unary_unary or handler.stream_unary

            async def single(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                await admit(method, context)
                return await inner(request, context)

            if handler.unary_unary is not None:
                return grpc.unary_unary_rpc_method_handler(single, **options)
            return grpc.stream_unary_rpc_method_handler(single, **options)

        inner_stream: _Handler = handler.unary_stream or handler.stream_stream

        async def many(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            await admit(method, context)
            result = inner_stream(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:
                # A handler that answers through context.write (e.g. Health.Watch).
                await result

        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(many, **options)
        return grpc.stream_stream_rpc_method_handler(many, **options)

    async def _admit(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        pems = context.auth_context().get(_PEER_CERTIFICATE)
        if not pems or not self._revocations.is_revoked(pems[0]):
            # No certificate at all cannot happen with client auth required; the
            # identity check refuses it anyway.
            return
        error = GovshareError(Reason.CALLER_UNKNOWN, "the client certificate is revoked")
        # Who the certificate named is not taken as the caller: it no longer names anyone.
        await self._decisions.record_denial(
            method.rsplit(".", 1)[-1].replace("/", "."), None, error
        )
        log_refused_before_handler(method, "", error.reason)
        status = to_grpc_status(error)
        await context.abort(status.code, status.details, status.trailing_metadata)
