"""The access line of each DirectoryService and AuditService call (`_access_lines`)."""

from __future__ import annotations

import logging

import grpc
import pytest
from govshare.api.audit.v1 import audit_pb2, audit_pb2_grpc
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support import LAND_REGISTRY, RunningGateway, access_lines


async def test_directory_and_audit_calls_each_leave_one_line_with_their_status(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """A served read, a NOT_FOUND read, a refused audit call and an auditor's search each
    write one line naming method, caller and gRPC status; health checks write none."""
    caplog.set_level(logging.INFO, logger="govshare.access")
    async with gateway.channel(gateway.pki.land_registry) as channel:
        directory = directory_pb2_grpc.DirectoryServiceStub(channel)
        await directory.ListDepartments(directory_pb2.ListDepartmentsRequest(page_size=5))
        with pytest.raises(grpc.aio.AioRpcError):
            await directory.GetResource(directory_pb2.GetResourceRequest(name="resources/nope"))
        with pytest.raises(grpc.aio.AioRpcError):
            await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
                audit_pb2.ListAccessRecordsRequest()
            )
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    async with gateway.channel(gateway.pki.auditor) as channel:
        await audit_pb2_grpc.AuditServiceStub(channel).ListAccessRecords(
            audit_pb2.ListAccessRecordsRequest(page_size=1)
        )
    lines = access_lines(caplog)
    assert [(line["method"], line["consumer"], line["code"]) for line in lines] == [
        ("DirectoryService.ListDepartments", LAND_REGISTRY, "OK"),
        ("DirectoryService.GetResource", LAND_REGISTRY, "NOT_FOUND"),
        ("AuditService.ListAccessRecords", LAND_REGISTRY, "PERMISSION_DENIED"),
        ("AuditService.ListAccessRecords", "auditor/audit-office", "OK"),
    ]
    assert all(isinstance(line["latency_ms"], float) for line in lines)


async def test_a_streamed_export_leaves_one_line_when_it_ends(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """ExportAccessRecords writes its line once the stream is over, not per message."""
    caplog.set_level(logging.INFO, logger="govshare.access")
    async with gateway.channel(gateway.pki.auditor) as channel:
        stub = audit_pb2_grpc.AuditServiceStub(channel)
        await stub.GetCheckpoint(audit_pb2.GetCheckpointRequest(refresh=True))
        chunks = [c async for c in stub.ExportAccessRecords(audit_pb2.ExportAccessRecordsRequest())]
    assert chunks
    assert [(line["method"], line["code"]) for line in access_lines(caplog)] == [
        ("AuditService.GetCheckpoint", "OK"),
        ("AuditService.ExportAccessRecords", "OK"),
    ]


async def test_exchange_calls_refused_before_their_handler_leave_one_line(
    gateway: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    """An undecodable GetCertificate (refused by an interceptor, not the exchange
    handler) still writes its exchange access line; an undecodable directory call
    writes exactly one line too, not one from each."""
    caplog.set_level(logging.INFO, logger="govshare.access")
    async with gateway.channel(gateway.pki.land_registry) as channel:
        for path in (
            "/govshare.exchange.v1.ExchangeService/GetCertificate",
            "/govshare.directory.v1.DirectoryService/GetResource",
        ):
            raw = channel.unary_unary(path)
            with pytest.raises(grpc.aio.AioRpcError):
                await raw(b"\x0a\x01\xff", timeout=10)  # field 1 = invalid UTF-8
    lines = access_lines(caplog)
    assert [
        (line["method"], line["consumer"], line.get("outcome"), line.get("reason"))
        for line in lines
    ] == [
        ("GetCertificate", LAND_REGISTRY, "DENIED", "REQUEST_INVALID"),
        ("DirectoryService.GetResource", LAND_REGISTRY, None, None),
    ]
    assert lines[1]["code"] == "INVALID_ARGUMENT"
