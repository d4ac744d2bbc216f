"""Helpers shared by the test modules (importable as `support`)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.rpc import error_details_pb2
from govshare.adapters.simulators import RunningSimulators
from govshare.api.exchange.v1 import exchange_pb2_grpc
from govshare.directory import ImportRejected
from govshare.gateway import Gateway, IssuedCertificate, error_info_of, open_channel

LAND_REGISTRY = "11330100002482106W"  # 市不动产登记中心: grants on identity, marriage, real estate
HOUSING = "113301000024821070"  # 市住房保障和房产管理局: an expired grant on tax records
SUSPENDED = "113301000024821083"  # 市人力资源和社会保障局: suspended in the seed
CIVIL_AFFAIRS = "11330100002482103K"  # 市民政局: provides the marriage records (101002/00001)
UNREGISTERED = "11330100002482199F"  # valid USCC, certificate from our CA, not in the directory


@dataclass(frozen=True)
class Pki:
    """The development CA and the client certificates the tests present."""

    folder: Path
    ca_certificate: Path
    land_registry: IssuedCertificate
    housing: IssuedCertificate
    civil_affairs: IssuedCertificate
    suspended: IssuedCertificate
    unregistered: IssuedCertificate
    admin: IssuedCertificate
    auditor: IssuedCertificate
    foreign: IssuedCertificate  # a department certificate from another CA


@dataclass
class RunningGateway:
    """A started gateway and the means to call it as a given principal."""

    gateway: Gateway
    pki: Pki

    @property
    def audit_db(self) -> Path:
        return self.gateway.config.audit_log_path

    def channel(self, client: IssuedCertificate) -> grpc.aio.Channel:
        return open_channel(self.gateway.address, self.pki.ca_certificate, client)

    def exchange(self, channel: grpc.aio.Channel) -> exchange_pb2_grpc.ExchangeServiceStub:
        return exchange_pb2_grpc.ExchangeServiceStub(channel)

    def audit_rows(self) -> list[sqlite3.Row]:
        """Committed access decisions (directory change events left out), from the log file."""
        with sqlite3.connect(self.audit_db) as conn:
            conn.row_factory = sqlite3.Row
            return list(
                conn.execute(
                    "SELECT * FROM access_log WHERE method IS NOT 'DirectoryEvent' ORDER BY idx"
                )
            )

    def audit_entry(self, index: int) -> sqlite3.Row:
        """The log entry at `index`, whatever its kind."""
        with sqlite3.connect(self.audit_db) as conn:
            conn.row_factory = sqlite3.Row
            row: sqlite3.Row = conn.execute(
                "SELECT * FROM access_log WHERE idx = ?", (index,)
            ).fetchone()
            return row


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo inside the google.rpc.Status the gateway sent."""
    info = error_info_of(error)
    assert info is not None, "the gateway sent no google.rpc.Status with an ErrorInfo"
    return info


async def eventually(condition: Callable[[], bool], what: str, *, within: float = 10.0) -> None:
    """Return once `condition()` holds, checking every 10 ms; fail naming `what` after
    `within` seconds. The bound only turns a hang into a failure: it measures nothing."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after {within:g} s for {what}")
        await asyncio.sleep(0.01)


def requests_received(sims: RunningSimulators, registry: str) -> int:
    """Requests the simulator of `registry` has read so far, counted as each arrives,
    before any simulated latency. RunningSimulators offers no counter of its own; its
    aiohttp server keeps one (`requests_count`), read here."""
    server = sims._runners[registry].server
    assert server is not None, f"the {registry} simulator is not running"
    return server.requests_count


def write_crl(
    ca_folder: Path,
    revoked: Sequence[IssuedCertificate],
    path: Path,
    *,
    encoding: serialization.Encoding = serialization.Encoding.PEM,
    issuer_folder: Path | None = None,
) -> Path:
    """A CRL revoking `revoked`, named as issued by the CA in `ca_folder` and signed
    with the key in `issuer_folder` (default: that same CA's key)."""
    ca = x509.load_pem_x509_certificate((ca_folder / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key(
        ((issuer_folder or ca_folder) / "ca.key").read_bytes(), None
    )
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(now - dt.timedelta(minutes=1))
        .next_update(now + dt.timedelta(days=1))
    )
    for issued in revoked:
        serial = x509.load_pem_x509_certificate(issued.certificate.read_bytes()).serial_number
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - dt.timedelta(minutes=1))
            .build()
        )
    crl = builder.sign(key, hashes.SHA256())
    path.write_bytes(crl.public_bytes(encoding))
    return path


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The `govshare.access` INFO lines captured so far, parsed (one JSON object each)."""
    return [
        json.loads(record.getMessage())
        for record in caplog.records
        if record.name == "govshare.access" and record.levelno == logging.INFO
    ]


def line_of(text: str, fragment: str) -> int:
    """The 1-based line holding `fragment`, so tests never count lines by hand."""
    (number,) = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    return number


async def rejected(coroutine: object) -> ImportRejected:
    with pytest.raises(ImportRejected) as raised:
        await coroutine  # type: ignore[misc]
    return raised.value
