"""mTLS is required: no certificate, or one from another CA, gets no answer;
health and reflection are served to authenticated callers."""

from __future__ import annotations

import grpc
import pytest
from govshare.api.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from govshare.gateway import client_credentials
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support import RunningGateway


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
