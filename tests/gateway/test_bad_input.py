"""Bad input gets a clear status with an ErrorInfo reason, never UNKNOWN or a trace."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from govshare.api.audit.v1 import audit_pb2, audit_pb2_grpc
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import DevPki, Gateway, GatewayConfig, main
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

    async def test_many_long_violations_still_arrive_with_their_error_info(
        self, gateway: RunningGateway
    ) -> None:
        """Fifty data items named with 600 Chinese characters each: INVALID_ARGUMENT with
        its ErrorInfo, not a status too large for the client's trailers."""
        items = [
            directory_pb2.DataItem(name="名" * 600, label="名", data_type="string")
            for _ in range(50)
        ]
        async with gateway.channel(gateway.pki.admin) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await directory_pb2_grpc.DirectoryServiceStub(channel).CreateResource(
                    directory_pb2.CreateResourceRequest(
                        resource=directory_pb2.Resource(
                            code="105001/00009",
                            display_name="超长",
                            provider="departments/11330100002482101D",
                            sharing_type=directory_pb2.SHARING_TYPE_UNCONDITIONAL,
                            data_items=items,
                        )
                    )
                )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == "REQUEST_INVALID"


class TestEvidenceInput:
    async def test_a_deeply_nested_header_is_malformed(self, gateway: RunningGateway) -> None:
        """VerifyEvidence answers MALFORMED for a header of 100,000 brackets."""
        header = base64.urlsafe_b64encode(b"[" * 100_000).decode().rstrip("=")
        async with gateway.channel(gateway.pki.land_registry) as channel:
            reply = await gateway.exchange(channel).VerifyEvidence(
                exchange_pb2.VerifyEvidenceRequest(jws=f"{header}.e30.c2ln")
            )
        assert (reply.valid, reply.reason) == (False, "MALFORMED")

    @pytest.mark.parametrize(
        "forged",
        [
            {"alg": "EdDSA", "kid": "k", "gsidx": 2**63},
            {"alg": "EdDSA", "kid": "\ud800"},
            {"alg": "EdDSA", "kid": "k", "gsreq": "\ud800"},
            {"alg": "EdDSA", "kid": "k" * 100_000},
            {"alg": "EdDSA", "kid": 7},
        ],
        ids=["index-beyond-int64", "surrogate-kid", "surrogate-request-id", "long-kid", "int-kid"],
    )
    async def test_unauthenticated_header_values_give_a_verdict(
        self, forged: dict[str, object], gateway: RunningGateway
    ) -> None:
        """Header values that cannot go back in the reply give valid=false, not a failed call."""
        header = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        async with gateway.channel(gateway.pki.land_registry) as channel:
            reply = await gateway.exchange(channel).VerifyEvidence(
                exchange_pb2.VerifyEvidenceRequest(jws=f"{header}.e30.c2ln")
            )
        assert not reply.valid
        assert reply.reason in {"MALFORMED", "KEY_UNKNOWN"}
        assert reply.log_index == -1
        assert len(reply.key_id) <= 128


def _certificate_request(**changes: object) -> exchange_pb2.GetCertificateRequest:
    request = exchange_pb2.GetCertificateRequest(
        certificate_type="identity_record",
        holder=exchange_pb2.Holder(id_type="111", id="330106198001010005"),
        matter_code="330100-BDC-0001",
        purpose="不动产转移登记核验卖方身份",
    )
    for name, value in changes.items():
        if isinstance(value, exchange_pb2.Holder):
            request.holder.CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


class TestExchangeInput:
    """Over-long input is refused up front and never stored at full length."""

    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"certificate_type": "x" * 20_000}, "REQUEST_INVALID"),
            ({"matter_code": "m" * 1_000_000}, "REQUEST_INVALID"),
            ({"purpose": "p" * 201}, "REQUEST_INVALID"),
            ({"request_id": "r" * 129}, "REQUEST_INVALID"),
        ],
        ids=["certificate-type", "matter-code", "purpose", "request-id"],
    )
    async def test_over_long_codes_are_refused_with_a_bounded_status(
        self, changes: dict[str, object], reason: str, gateway: RunningGateway
    ) -> None:
        """The ErrorInfo arrives (nothing echoed overflows the trailers) and the log row is small."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).GetCertificate(
                    _certificate_request(**changes), timeout=10
                )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == reason
        row = gateway.audit_rows()[-1]
        assert (row["outcome"], row["reason"]) == ("DENIED", reason)
        assert len(row["leaf"]) < 2048

    async def test_an_unknown_code_is_echoed_cut_short(self, gateway: RunningGateway) -> None:
        """An unknown 64-character type is NOT_FOUND; its echo in the metadata is bounded."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).GetCertificate(
                    _certificate_request(certificate_type="t" * 64), timeout=10
                )
        info = error_info(raised.value)
        assert info.reason == "RESOURCE_NOT_FOUND"
        assert info.metadata["certificate_type"] == "t" * 64

    async def test_a_holder_id_too_long_for_any_rule_is_not_stored(
        self, gateway: RunningGateway
    ) -> None:
        """A megabyte holder id is HOLDER_ID_INVALID and neither hashed nor masked into the log."""
        holder = exchange_pb2.Holder(id_type="111", id="3" * 1_000_000)
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).GetCertificate(
                    _certificate_request(holder=holder), timeout=10
                )
        assert error_info(raised.value).reason == "HOLDER_ID_INVALID"
        record = json.loads(gateway.audit_rows()[-1]["leaf"])
        assert (record["holder_id_masked"], record["holder_id_hash"]) == ("", "")

    async def test_thousands_of_fields_are_refused(self, gateway: RunningGateway) -> None:
        """QueryRecord with 5,000 field names is REQUEST_INVALID, not a 16 KiB trailer overflow."""
        request = exchange_pb2.QueryRecordRequest(
            resource_code="101002/00001",
            holder=exchange_pb2.Holder(id_type="111", id="330106198001010005"),
            fields=[f"no_such_item_{n}" for n in range(5000)],
            matter_code="330100-BDC-0001",
            purpose="不动产转移登记核验卖方身份",
        )
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).QueryRecord(request, timeout=10)
        assert error_info(raised.value).reason == "REQUEST_INVALID"

    async def test_resolve_materials_refuses_a_long_purpose_for_the_whole_call(
        self, gateway: RunningGateway
    ) -> None:
        """A 201-character purpose fails the call instead of sending every material to paper."""
        request = exchange_pb2.ResolveMaterialsRequest(
            matter_code="330100-BDC-0001",
            applicants=[exchange_pb2.Holder(id_type="111", id="330106198001010005")],
            purpose="p" * 201,
        )
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).ResolveMaterials(request, timeout=10)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value).reason == "REQUEST_INVALID"


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
    async def test_a_stranger_learns_nothing_from_an_undecodable_request(
        self, gateway: RunningGateway, tmp_path: Path
    ) -> None:
        """Identity comes first: a certificate of another trust domain sending garbage gets
        CALLER_UNKNOWN (as with a valid request), not REQUEST_INVALID; and it is logged."""
        # Same CA, so the handshake passes; its own folder, so the shared PKI is untouched.
        for part in ("ca.crt", "ca.key"):
            shutil.copy(gateway.pki.folder / part, tmp_path / part)
        stranger = DevPki(tmp_path, "elsewhere.example").issue("dept", "11330100002482106W")
        async with gateway.channel(stranger) as channel:
            raw = channel.unary_unary("/govshare.exchange.v1.ExchangeService/GetCertificate")
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await raw(b"\x0a\x01\xff", timeout=10)
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(raised.value).reason == "CALLER_UNKNOWN"
        record = json.loads(gateway.audit_rows()[-1]["leaf"])
        assert (record["method"], record["reason"]) == (
            "ExchangeService.GetCertificate",
            "CALLER_UNKNOWN",
        )

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
