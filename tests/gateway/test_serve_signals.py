"""`Gateway.serve_until_signalled`: the first SIGINT/SIGTERM drains, a second one cuts
the grace short instead of raising KeyboardInterrupt through the shutdown."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
from collections.abc import Callable

import grpc
import pytest
from govshare.adapters.simulators import Population, SimulatorOptions, start_simulators
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import Gateway, GatewayConfig
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import Pki, RunningGateway, eventually, requests_received


async def _draining(channel: grpc.aio.Channel) -> None:
    """Return once the gateway has begun its drain: health says NOT_SERVING, or new
    calls are refused. Bounded so that a first signal that is lost fails the test."""
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(1000):
        try:
            answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError:
            return
        if answer.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the first signal did not start the drain")


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_second_signal_cancels_the_calls_still_in_their_grace(
    second: signal.Signals,
    gateway_config: Callable[[dict[str, str]], GatewayConfig],
    pki: Pki,
    population: Population,
) -> None:
    """With a call waiting on a registry that answers after 60 s and a 60 s grace, a
    first SIGINT starts the drain and a second signal ends it at once: the gateway
    stops cleanly, the caller gets an error and the call is logged as cancelled."""
    async with await start_simulators(population, options=SimulatorOptions(latency=60.0)) as slow:
        # The registry wait is as long as the grace: only the second signal can end
        # the call (the fixture's 3 s provider timeout did, on a slow run).
        config = dataclasses.replace(
            gateway_config(dict(slow.base_urls)),
            provider_timeout_seconds=60.0,
            shutdown_grace_seconds=60.0,
        )
        gateway = Gateway(config)
        await gateway.start()
        running = RunningGateway(gateway, pki)
        try:
            serving = asyncio.ensure_future(gateway.serve_until_signalled())
            async with running.channel(pki.land_registry) as channel:
                call = running.exchange(channel).GetCertificate(
                    exchange_pb2.GetCertificateRequest(
                        certificate_type="identity_record",
                        holder=exchange_pb2.Holder(
                            id_type="111", id=population.persons[0].citizen_id
                        ),
                        matter_code="330100-BDC-0001",
                        purpose="核验",
                        request_id="in-flight",
                    ),
                    timeout=120,
                )
                await eventually(
                    lambda: requests_received(slow, "public_security") == 1,
                    "the call to reach the slow registry",
                )
                os.kill(os.getpid(), signal.SIGINT)
                await _draining(channel)
                os.kill(os.getpid(), second)
                # Bounded only so that a regression fails instead of hanging for 60 s.
                await asyncio.wait_for(serving, timeout=30)
                with pytest.raises(grpc.aio.AioRpcError):
                    await call
        finally:
            await gateway.stop()
        rows = [json.loads(r["leaf"]) for r in running.audit_rows()]
    assert [(r["request_id"], r["reason"]) for r in rows] == [("in-flight", "CALL_CANCELLED")]
