"""Registry failures reach the caller as reasons, within the caller's deadline."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import grpc
import pytest
from govshare.adapters.simulators import Population, SimulatorOptions, start_simulators
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import Gateway, GatewayConfig
from support import RunningGateway, error_info

_MATTER = "330100-BDC-0001"


def _identity_request(citizen_id: str) -> exchange_pb2.GetCertificateRequest:
    return exchange_pb2.GetCertificateRequest(
        certificate_type="identity_record",
        holder=exchange_pb2.Holder(id_type="111", id=citizen_id),
        matter_code=_MATTER,
        purpose="不动产转移登记核验卖方身份",
    )


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class TestHolderNotFound:
    async def test_no_record_in_the_registry_is_holder_not_found(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """A valid id the registry does not hold gives NOT_FOUND / HOLDER_NOT_FOUND, logged."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).GetCertificate(
                    _identity_request(population.unknown_citizen_id()), timeout=10
                )
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(raised.value).reason == "HOLDER_NOT_FOUND"
        record = json.loads(gateway.audit_rows()[-1]["leaf"])
        assert (record["outcome"], record["reason"]) == ("DENIED", "HOLDER_NOT_FOUND")


class TestRegistryDown:
    async def test_a_registry_that_refuses_connections_is_provider_unavailable(
        self,
        simulators: dict[str, str],
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        pki: object,
        population: Population,
    ) -> None:
        """Connection refused gives UNAVAILABLE / PROVIDER_UNAVAILABLE from the gateway:
        neither the provider timeout (PROVIDER_TIMEOUT) nor the caller's deadline
        (DEADLINE_EXCEEDED without an ErrorInfo) was waited out."""
        registries = dict(simulators, public_security=f"http://127.0.0.1:{_closed_port()}")
        async with Gateway(gateway_config(registries)) as started:
            gw = RunningGateway(started, pki)  # type: ignore[arg-type]
            async with gw.channel(gw.pki.land_registry) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await gw.exchange(channel).GetCertificate(
                        _identity_request(population.persons[0].citizen_id), timeout=10
                    )
            rows = gw.audit_rows()
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert error_info(raised.value).reason == "PROVIDER_UNAVAILABLE"
        record = json.loads(rows[-1]["leaf"])
        assert (record["outcome"], record["reason"]) == ("DENIED", "PROVIDER_UNAVAILABLE")

    async def test_a_slow_registry_times_out_before_the_callers_deadline(
        self,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        pki: object,
        population: Population,
    ) -> None:
        """A registry slower than the deadline gives DEADLINE_EXCEEDED / PROVIDER_TIMEOUT from the gateway."""
        async with (
            await start_simulators(population, options=SimulatorOptions(latency=3.0)) as slow,
            Gateway(gateway_config(dict(slow.base_urls))) as started,
        ):
            gw = RunningGateway(started, pki)  # type: ignore[arg-type]
            async with gw.channel(gw.pki.land_registry) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await gw.exchange(channel).GetCertificate(
                        _identity_request(population.persons[0].citizen_id), timeout=1.0
                    )
            rows = gw.audit_rows()
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The ErrorInfo proves the gateway answered, not the client's own timer.
        assert error_info(raised.value).reason == "PROVIDER_TIMEOUT"
        assert json.loads(rows[-1]["leaf"])["reason"] == "PROVIDER_TIMEOUT"
