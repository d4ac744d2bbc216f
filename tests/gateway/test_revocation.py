"""Revoked client certificates: a CRL from the client CA, checked on every call
over real mTLS, re-read without a restart, and refused at start when it does
not verify."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from govshare.adapters.simulators import Population
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import Gateway, GatewayConfig, IssuedCertificate
from govshare.gateway import _revocation as revocation_module
from support import Pki, RunningGateway, access_lines, error_info, write_crl

BDC_TRANSFER = "330100-BDC-0001"  # covered by the land registry's grants


@pytest.fixture
def crl_path(tmp_path: Path) -> Path:
    return tmp_path / "clients.crl"


@pytest.fixture
async def crl_gateway(
    simulators: dict[str, str],
    gateway_config: Callable[[dict[str, str]], GatewayConfig],
    pki: Pki,
    crl_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[RunningGateway]:
    """A gateway whose CRL revokes the housing bureau's certificate, re-read often."""
    monkeypatch.setattr(revocation_module, "_RECHECK_SECONDS", 0.05)
    write_crl(pki.folder, [pki.housing], crl_path)
    config = gateway_config(simulators).replace(crl_file=crl_path)
    async with Gateway(config) as started:
        yield RunningGateway(started, pki)


async def _identity_record(
    gateway: RunningGateway, client: IssuedCertificate, population: Population
) -> exchange_pb2.Evidence:
    async with gateway.channel(client) as channel:
        return await gateway.exchange(channel).GetCertificate(
            exchange_pb2.GetCertificateRequest(
                certificate_type="identity_record",
                holder=exchange_pb2.Holder(id_type="111", id=population.persons[0].citizen_id),
                matter_code=BDC_TRANSFER,
                purpose="不动产转移登记核验卖方身份",
            ),
            timeout=10,
        )


async def _refusal(call: Awaitable[object]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


def _publish(path: Path, write: Callable[[Path], object]) -> None:
    """Replace the CRL as an operator would, and make sure its mtime moves."""
    staged = path.with_suffix(".new")
    write(staged)
    before = path.stat().st_mtime_ns
    os.utime(staged, ns=(before + 5_000_000_000, before + 5_000_000_000))
    staged.replace(path)


async def _until_refused(gateway: RunningGateway, client: IssuedCertificate) -> grpc.StatusCode:
    """Call ListDepartments until refused (the CRL is re-read every 50 ms); the last code."""
    code = grpc.StatusCode.OK
    for _ in range(100):
        async with gateway.channel(client) as channel:
            try:
                await directory_pb2_grpc.DirectoryServiceStub(channel).ListDepartments(
                    directory_pb2.ListDepartmentsRequest(), timeout=5
                )
            except grpc.aio.AioRpcError as error:
                code = error.code()
                break
        await asyncio.sleep(0.05)
    return code


class TestRevokedCertificate:
    async def test_a_revoked_certificate_is_refused_and_the_other_served(
        self, crl_gateway: RunningGateway, population: Population
    ) -> None:
        """A certificate on the CRL gets PERMISSION_DENIED/CALLER_UNKNOWN on every
        service; an unrevoked one from the same CA is served."""
        gateway, pki = crl_gateway, crl_gateway.pki
        evidence = await _identity_record(gateway, pki.land_registry, population)
        assert evidence.fields["citizen_id"] == population.persons[0].citizen_id

        exchange_refusal = await _refusal(_identity_record(gateway, pki.housing, population))
        async with gateway.channel(pki.housing) as channel:
            directory_refusal = await _refusal(
                directory_pb2_grpc.DirectoryServiceStub(channel).ListDepartments(
                    directory_pb2.ListDepartmentsRequest(), timeout=5
                )
            )
        for refusal in (exchange_refusal, directory_refusal):
            assert refusal.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_info(refusal).reason == "CALLER_UNKNOWN"
            assert refusal.details() == "the client certificate is revoked"

    async def test_a_refused_exchange_call_leaves_its_access_line(
        self,
        crl_gateway: RunningGateway,
        population: Population,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """An exchange call refused for a revoked certificate writes one access line
        (DENIED, CALLER_UNKNOWN, no caller named), like a refusal by the handler."""
        caplog.set_level(logging.INFO, logger="govshare.access")
        gateway, pki = crl_gateway, crl_gateway.pki
        await _refusal(_identity_record(gateway, pki.housing, population))
        lines = access_lines(caplog)
        assert [(line["method"], line["consumer"], line["reason"]) for line in lines] == [
            ("GetCertificate", "", "CALLER_UNKNOWN")
        ]

    async def test_every_refusal_reaches_the_audit_log(
        self, crl_gateway: RunningGateway, population: Population
    ) -> None:
        """Each refused call leaves one DENIED CALLER_UNKNOWN record naming no caller."""
        gateway, pki = crl_gateway, crl_gateway.pki
        await _refusal(_identity_record(gateway, pki.housing, population))
        async with gateway.channel(pki.housing) as channel:
            await _refusal(
                directory_pb2_grpc.DirectoryServiceStub(channel).ListDepartments(
                    directory_pb2.ListDepartmentsRequest(), timeout=5
                )
            )
        rows = [
            (row["method"], row["consumer"], row["outcome"], row["reason"])
            for row in gateway.audit_rows()
        ]
        assert rows == [
            ("ExchangeService.GetCertificate", "", "DENIED", "CALLER_UNKNOWN"),
            ("DirectoryService.ListDepartments", "", "DENIED", "CALLER_UNKNOWN"),
        ]

    async def test_a_new_crl_takes_effect_without_restart(
        self, crl_gateway: RunningGateway, population: Population, crl_path: Path
    ) -> None:
        """Publishing a CRL that also revokes the land registry refuses its next calls."""
        gateway, pki = crl_gateway, crl_gateway.pki
        await _identity_record(gateway, pki.land_registry, population)
        _publish(
            crl_path, lambda path: write_crl(pki.folder, [pki.housing, pki.land_registry], path)
        )
        assert await _until_refused(gateway, pki.land_registry) == grpc.StatusCode.PERMISSION_DENIED
        refusal = await _refusal(_identity_record(gateway, pki.land_registry, population))
        assert error_info(refusal).reason == "CALLER_UNKNOWN"

    async def test_a_bad_new_crl_keeps_the_previous_list(
        self,
        crl_gateway: RunningGateway,
        population: Population,
        crl_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A replacement CRL that does not verify is logged as an error and changes
        nothing: the revoked stay revoked, the others stay served."""
        gateway, pki = crl_gateway, crl_gateway.pki
        foreign_ca = pki.foreign.certificate.parent
        _publish(
            crl_path,
            lambda path: write_crl(pki.folder, [pki.land_registry], path, issuer_folder=foreign_ca),
        )
        for _ in range(100):
            if any("not reloaded" in record.getMessage() for record in caplog.records):
                break
            await asyncio.sleep(0.05)
        assert [r.levelno for r in caplog.records if "not reloaded" in r.getMessage()] == [
            logging.ERROR
        ]
        await _identity_record(gateway, pki.land_registry, population)
        refusal = await _refusal(_identity_record(gateway, pki.housing, population))
        assert error_info(refusal).reason == "CALLER_UNKNOWN"


class TestCrlFile:
    async def test_der_crl_is_read(
        self,
        simulators: dict[str, str],
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        pki: Pki,
        crl_path: Path,
        population: Population,
    ) -> None:
        """A DER-encoded CRL works as well as PEM."""
        write_crl(pki.folder, [pki.land_registry], crl_path, encoding=serialization.Encoding.DER)
        async with Gateway(gateway_config(simulators).replace(crl_file=crl_path)) as started:
            gateway = RunningGateway(started, pki)
            refusal = await _refusal(_identity_record(gateway, pki.land_registry, population))
        assert error_info(refusal).reason == "CALLER_UNKNOWN"

    @pytest.mark.parametrize(
        ("make", "message"),
        [
            (
                lambda pki, path: write_crl(
                    pki.folder, [], path, issuer_folder=pki.foreign.certificate.parent
                ),
                "signature does not verify",
            ),
            (
                lambda pki, path: write_crl(pki.foreign.certificate.parent, [], path),
                "not issued by the client CA",
            ),
            (lambda pki, path: path.write_bytes(b"not a CRL"), "not an X.509 CRL"),
            (lambda pki, path: None, "cannot read the revocation list"),
        ],
        ids=["signed-by-another-key", "from-another-ca", "garbage", "missing"],
    )
    async def test_a_crl_that_does_not_verify_stops_the_start(
        self,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        pki: Pki,
        crl_path: Path,
        make: Callable[[Pki, Path], object],
        message: str,
    ) -> None:
        """A CRL not signed by the client CA, unreadable or missing: the gateway does
        not start, and says why."""
        make(pki, crl_path)
        config = gateway_config({}).replace(crl_file=crl_path)
        with pytest.raises(RuntimeError, match=message):
            async with Gateway(config):
                pass


class TestWatcher:
    async def test_an_unexpected_reload_failure_does_not_stop_the_watcher(
        self, pki: Pki, crl_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reload that raises something unforeseen is logged, and the watcher keeps
        checking: a dead watcher would ignore every later revocation."""
        write_crl(pki.folder, [pki.housing], crl_path)
        revocations = revocation_module.RevocationList(crl_path, pki.ca_certificate)
        calls: list[int] = []

        def flaky() -> bool:
            calls.append(len(calls))
            if len(calls) == 1:
                raise RuntimeError("injected: not a RevocationListError")
            return False

        monkeypatch.setattr(revocations, "reload_if_changed", flaky)
        watcher = asyncio.ensure_future(revocations.watch(interval=0.001))
        try:
            for _ in range(1000):
                if len(calls) >= 3:
                    break
                await asyncio.sleep(0.005)
        finally:
            watcher.cancel()
        assert len(calls) >= 3
        assert not watcher.done() or watcher.cancelled()
