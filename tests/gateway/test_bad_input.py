"""Bad input gets a clear status with an ErrorInfo reason, never UNKNOWN or a trace."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from govshare.api.audit.v1 import audit_pb2, audit_pb2_grpc
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import Gateway, GatewayConfig, main
from support import Pki, RunningGateway, error_info


class TestAuditInput:
    async def test_an_impossible_time_is_request_invalid(self, gateway: RunningGateway) -> None:
        """A timestamp beyond year 9999 is INVALID_ARGUMENT / REQUEST_INVALID."""
        request = audit_pb2.ListAccessRecordsRequest()
        request.start_time.seconds = 2**62
        async with gateway.channel(gateway.pki.auditor) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == "REQUEST_INVALID"

    @pytest.mark.parametrize("after", ["Infinity", "1" + "0" * 30])
    async def test_a_forged_page_token_is_request_invalid(
        self, after: str, gateway: RunningGateway
    ) -> None:
        """A token with an absurd position is refused, not an overflow."""
        token = base64.urlsafe_b64encode(f'{{"after": {after}, "q": "x"}}'.encode()).decode()
        async with gateway.channel(gateway.pki.auditor) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest(page_token=token)
                )
        assert error_info(raised.value).reason == "REQUEST_INVALID"


class TestDirectoryInput:
    @pytest.mark.parametrize(
        "text",
        ["NOT " * 3000 + 'state = "PUBLISHED"', "(" * 3000 + 'state = "PUBLISHED"' + ")" * 3000],
        ids=["deep-not", "deep-parentheses"],
    )
    async def test_a_pathological_filter_is_filter_invalid(
        self, text: str, gateway: RunningGateway
    ) -> None:
        """Thousands of nested operators are refused as FILTER_INVALID."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await directory_pb2_grpc.DirectoryServiceStub(channel).ListResources(
                    directory_pb2.ListResourcesRequest(filter=text)
                )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == "FILTER_INVALID"


class TestEvidenceInput:
    async def test_a_deeply_nested_header_is_malformed(self, gateway: RunningGateway) -> None:
        """VerifyEvidence answers MALFORMED for a header of 100,000 brackets."""
        header = base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=")
        async with gateway.channel(gateway.pki.land_registry) as channel:
            reply = await gateway.exchange(channel).VerifyEvidence(
                exchange_pb2.VerifyEvidenceRequest(jws=f"{header}.e30.c2ln")
            )
        assert (reply.valid, reply.reason) == (False, "MALFORMED")


class TestStartFailure:
    async def test_a_gateway_that_cannot_bind_leaves_nothing_running(
        self,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        simulators: dict[str, str],
        pki: Pki,
    ) -> None:
        """Start fails on a taken port and the log writer and watcher are stopped again."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            config = gateway_config(simulators).replace(listen=f"127.0.0.1:{port}")
            with pytest.raises(RuntimeError):
                await Gateway(config).start()
        assert "govshare-access-log" not in {t.name for t in threading.enumerate()}


class TestAuditCommandInput:
    def test_a_mistyped_key_is_reported_not_raised(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`audit verify --key garbage` exits 2 with a message instead of a traceback."""
        proof = tmp_path / "proof.json"
        proof.write_text(
            json.dumps({"checkpoint": "x\n", "leaf": "", "proof": [], "index": 0, "tree_size": 1})
        )
        assert main(["audit", "verify", "--proof", str(proof), "--key", "garbage"]) == 2
        assert "INVALID" in capsys.readouterr().out


class TestUndecodableRequests:
    async def test_invalid_utf8_is_request_invalid_and_logged(
        self, gateway: RunningGateway
    ) -> None:
        """A string field with invalid UTF-8 is INVALID_ARGUMENT / REQUEST_INVALID, not UNKNOWN."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            raw = channel.unary_unary("/govshare.exchange.v1.ExchangeService/GetCertificate")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await raw(b"\x0a\x01\xff", timeout=10)  # field 1 (certificate_type) = 0xFF
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == "REQUEST_INVALID"
        record = json.loads(gateway.audit_rows()[-1]["leaf"])
        assert (record["method"], record["consumer"], record["reason"]) == (
            "ExchangeService.GetCertificate",
            "11330100002482106W",
            "REQUEST_INVALID",
        )
