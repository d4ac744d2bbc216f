"""mTLS is required: no certificate, or one from another CA, gets no answer;
health and reflection are served to authenticated callers; stopping lets calls
in flight finish and tells health watchers first."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

import grpc
import pytest
from govshare.adapters.simulators import Population, SimulatorOptions, start_simulators
from govshare.api.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from govshare.gateway import Gateway, GatewayConfig, client_credentials
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support import Pki, RunningGateway, eventually, requests_received


class TestClientCertificates:
    async def test_a_client_without_a_certificate_cannot_connect(
        self, gateway: RunningGateway
    ) -> None:
        """TLS without a client certificate fails the handshake; no audit row appears."""
        credentials = grpc.ssl_channel_credentials(
            root_certificates=gateway.pki.ca_certificate.read_bytes()
        )
        async with grpc.aio.secure_channel(gateway.gateway.address, credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await exchange_pb2_grpc.ExchangeServiceStub(channel).ListSigningKeys(
                    exchange_pb2.ListSigningKeysRequest(), timeout=5
                )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert gateway.audit_rows() == []

    async def test_a_certificate_from_another_ca_cannot_connect(
        self, gateway: RunningGateway
    ) -> None:
        """A department certificate signed by a foreign CA is refused at the handshake."""
        credentials = client_credentials(gateway.pki.ca_certificate, gateway.pki.foreign)
        async with grpc.aio.secure_channel(gateway.gateway.address, credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await exchange_pb2_grpc.ExchangeServiceStub(channel).ListSigningKeys(
                    exchange_pb2.ListSigningKeysRequest(), timeout=5
                )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

    async def test_plaintext_is_refused(self, gateway: RunningGateway) -> None:
        """An insecure channel gets no answer from the TLS port."""
        async with grpc.aio.insecure_channel(gateway.gateway.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await exchange_pb2_grpc.ExchangeServiceStub(channel).ListSigningKeys(
                    exchange_pb2.ListSigningKeysRequest(), timeout=5
                )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


class TestStandardServices:
    async def test_health_reports_serving_for_the_exchange_service(
        self, gateway: RunningGateway
    ) -> None:
        """grpc.health.v1 answers SERVING for ExchangeService over mTLS."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="govshare.exchange.v1.ExchangeService"),
                timeout=5,
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    async def test_reflection_lists_the_govshare_services(self, gateway: RunningGateway) -> None:
        """Server reflection names the exchange and directory services."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            call = stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
            names = set()
            async for reply in call:
                names |= {s.name for s in reply.list_services_response.service}
        assert {
            "govshare.exchange.v1.ExchangeService",
            "govshare.directory.v1.DirectoryService",
            "grpc.health.v1.Health",
        } <= names

    async def test_an_unknown_method_is_unimplemented(self, gateway: RunningGateway) -> None:
        """A method no service offers is UNIMPLEMENTED, also on a known service's path."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            for path in ("/govshare.exchange.v1.ExchangeService/Nope", "/no.Such/Method"):
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await channel.unary_unary(path)(b"", timeout=5)
                assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


class TestShutdown:
    async def test_a_call_waiting_on_a_slow_registry_completes_during_shutdown(
        self,
        population: Population,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        pki: Pki,
    ) -> None:
        """A call whose request has reached a registry that answers 1.5 s later, when
        the gateway begins to stop, still gets its answer: the grace covers it."""
        async with await start_simulators(
            population, options=SimulatorOptions(latency=1.5)
        ) as slow:
            gateway = Gateway(gateway_config(dict(slow.base_urls)))
            await gateway.start()
            try:
                running = RunningGateway(gateway, pki)
                async with running.channel(pki.land_registry) as channel:
                    call = running.exchange(channel).GetCertificate(
                        exchange_pb2.GetCertificateRequest(
                            certificate_type="identity_record",
                            holder=exchange_pb2.Holder(
                                id_type="111", id=population.persons[0].citizen_id
                            ),
                            matter_code="330100-BDC-0001",
                            purpose="不动产转移登记核验卖方身份",
                        ),
                        timeout=10,
                    )
                    answer = asyncio.ensure_future(call)
                    await eventually(
                        lambda: requests_received(slow, "public_security") == 1,
                        "the gateway's request to reach the public security registry",
                    )
                    stopping = asyncio.ensure_future(gateway.stop())
                    evidence = await answer
                    await stopping
            finally:
                await gateway.stop()
        assert evidence.fields["citizen_id"] == population.persons[0].citizen_id

    async def test_health_reports_not_serving_once_shutdown_begins(
        self, gateway: RunningGateway
    ) -> None:
        """Once stopping begins, health answers NOT_SERVING for every service while
        calls in flight finish (read in process: grpc refuses new calls meanwhile)."""
        health = gateway.gateway._health
        assert health is not None
        stopping = asyncio.ensure_future(gateway.gateway.stop())
        await asyncio.sleep(0)
        statuses = {
            name: (await health.Check(health_pb2.HealthCheckRequest(service=name), None)).status
            for name in ("", "govshare.exchange.v1.ExchangeService")
        }
        await stopping
        assert set(statuses.values()) == {health_pb2.HealthCheckResponse.NOT_SERVING}

    async def test_a_health_watcher_sees_not_serving_once_shutdown_begins(
        self, gateway: RunningGateway
    ) -> None:
        """A health watcher sees SERVING, then NOT_SERVING as soon as stopping begins."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=10
            )
            seen = [(await watch.read()).status]
            stopping = asyncio.ensure_future(gateway.gateway.stop())
            seen.append((await watch.read()).status)
            await stopping
        assert seen == [
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        ]

    async def test_health_turns_not_serving_when_the_access_log_fails(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """After a commit of the access log fails (every later call would fail too), a
        health watcher sees NOT_SERVING, so a load balancer sends calls elsewhere."""
        with sqlite3.connect(gateway.audit_db) as conn:
            conn.execute(
                "CREATE TRIGGER fail_inserts BEFORE INSERT ON access_log "
                "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
            )
        async with gateway.channel(gateway.pki.land_registry) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service="govshare.exchange.v1.ExchangeService"),
                timeout=10,
            )
            seen = [(await watch.read()).status]
            with pytest.raises(grpc.aio.AioRpcError):
                await gateway.exchange(channel).GetCertificate(
                    exchange_pb2.GetCertificateRequest(
                        certificate_type="identity_record",
                        holder=exchange_pb2.Holder(
                            id_type="111", id=population.persons[0].citizen_id
                        ),
                        matter_code="330100-BDC-0001",
                        purpose="核验",
                    ),
                    timeout=10,
                )
            seen.append((await watch.read()).status)
            watch.cancel()
        assert seen == [
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        ]

    async def test_a_health_watch_ends_after_not_serving_so_stopping_need_not_wait(
        self,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        simulators: dict[str, str],
        pki: Pki,
    ) -> None:
        """With a minute's grace and a load balancer watching, the watch stream ends
        normally right after NOT_SERVING (it is not cut off when the grace runs out),
        so stopping ends with the last call rather than after the whole grace."""
        config = gateway_config(simulators).replace(shutdown_grace_seconds=60.0)
        started = Gateway(config)
        await started.start()
        gateway = RunningGateway(started, pki)
        try:
            async with gateway.channel(pki.land_registry) as channel:
                watch = health_pb2_grpc.HealthStub(channel).Watch(
                    health_pb2.HealthCheckRequest(service="")
                )
                seen = [(await watch.read()).status]
                stopping = asyncio.ensure_future(started.stop())
                seen.append((await watch.read()).status)
                ended = await watch.read()
                await stopping
                code = await watch.code()
        finally:
            await started.stop()
        assert seen == [
            health_pb2.HealthCheckResponse.SERVING,
            health_pb2.HealthCheckResponse.NOT_SERVING,
        ]
        assert (ended, code) == (grpc.aio.EOF, grpc.StatusCode.OK)
