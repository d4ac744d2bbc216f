"""The access line each exchange call leaves in the operators' log (`_exchange_call`).

One structured line per call (STYLE.md), holder ids masked, never in clear.
"""

from __future__ import annotations

import logging

import grpc
import pytest
from govshare.adapters.simulators import Population
from govshare.api.exchange.v1 import exchange_pb2
from support import LAND_REGISTRY, RunningGateway, access_lines

BDC_TRANSFER = "330100-BDC-0001"


async def test_an_allowed_and_a_denied_call_each_leave_one_masked_json_line(
    gateway: RunningGateway, population: Population, caplog: pytest.LogCaptureFixture
) -> None:
    """The allowed call's line names method, consumer, resource, matter, outcome and its
    log index; the denied one its consumer, reason and index; neither holds the citizen id."""
    caplog.set_level(logging.INFO, logger="govshare.access")
    person = population.person_with_marriage_and_property()
    request = exchange_pb2.GetCertificateRequest(
        certificate_type="identity_record",
        holder=exchange_pb2.Holder(id_type="111", id=person.citizen_id),
        matter_code=BDC_TRANSFER,
        purpose="不动产转移登记核验卖方身份",
        request_id="line-test-1",
    )
    async with gateway.channel(gateway.pki.land_registry) as channel:
        evidence = await gateway.exchange(channel).GetCertificate(request, timeout=10)
        request.request_id = "line-test-2"
        request.matter_code = "000000-NOPE-0000"
        with pytest.raises(grpc.aio.AioRpcError):
            await gateway.exchange(channel).GetCertificate(request, timeout=10)
    allowed, denied = access_lines(caplog)
    assert allowed["method"] == "GetCertificate"
    assert allowed["request_id"] == "line-test-1"
    assert allowed["outcome"] == "ALLOWED"
    assert allowed["reason"] == ""
    assert allowed["log_index"] == evidence.log_index
    assert allowed["resource"] == "101001/00001"
    assert allowed["matter"] == BDC_TRANSFER
    assert allowed["consumer"] == LAND_REGISTRY
    assert float(str(allowed["latency_ms"])) > 0
    assert denied["request_id"] == "line-test-2"
    assert denied["outcome"] == "DENIED"
    assert denied["consumer"] == LAND_REGISTRY
    # 000000-NOPE-0000 is no matter of the catalogue: it opens no grant.
    assert denied["reason"] == "MATTER_NOT_COVERED"
    assert int(str(denied["log_index"])) == evidence.log_index + 1
    for line in (allowed, denied):
        masked = str(line["holder"])
        assert masked[:4] == person.citizen_id[:4]
        assert "*" in masked
    assert person.citizen_id not in caplog.text
