"""A matter code opens data only while the catalogue holds the matter (running gateway).

DeleteMatter is soft; grants keep naming the matter. The exchange must still refuse
it, and must refuse a made-up matter on an UNCONDITIONAL resource too, each refusal
being one DENIED record in the audit log.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import pytest
from govshare.adapters.simulators import Population
from govshare.api.directory.v1 import directory_pb2, directory_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2
from support import RunningGateway, error_info

DELETED = "330100-BDC-0002"  # 不动产抵押权首次登记, named by grant g-bdc-identity
KEPT = "330100-BDC-0001"  # named by the same grant, not deleted


def _records(gateway: RunningGateway, request_id: str) -> list[dict[str, Any]]:
    leaves = (json.loads(row["leaf"]) for row in gateway.audit_rows())
    return [leaf for leaf in leaves if leaf["request_id"] == request_id]


async def _delete_matter(gateway: RunningGateway, code: str) -> None:
    async with gateway.channel(gateway.pki.admin) as admin:
        await directory_pb2_grpc.DirectoryServiceStub(admin).DeleteMatter(
            directory_pb2.DeleteMatterRequest(name=f"matters/{code}"), timeout=10
        )


async def test_deleted_matter_no_longer_opens_the_grant_naming_it(
    gateway: RunningGateway, population: Population
) -> None:
    """After DeleteMatter, GetCertificate and QueryRecord under the matter are
    PERMISSION_DENIED / MATTER_NOT_COVERED although grant g-bdc-identity still lists it,
    each leaving exactly one DENIED audit record; the grant's other matters still work."""
    holder = exchange_pb2.Holder(id_type="111", id=population.persons[0].citizen_id)
    await _delete_matter(gateway, DELETED)
    async with gateway.channel(gateway.pki.land_registry) as channel:
        exchange = gateway.exchange(channel)
        with pytest.raises(grpc.aio.AioRpcError) as certificate:
            await exchange.GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=holder,
                    matter_code=DELETED,
                    purpose="抵押登记核验身份",
                    request_id="deleted-matter-1",
                ),
                timeout=10,
            )
        with pytest.raises(grpc.aio.AioRpcError) as record:
            await exchange.QueryRecord(
                exchange_pb2.QueryRecordRequest(
                    resource_code="101001/00001",
                    holder=holder,
                    fields=["name"],
                    matter_code=DELETED,
                    purpose="抵押登记核验身份",
                    request_id="deleted-matter-2",
                ),
                timeout=10,
            )
        still = await exchange.GetCertificate(
            exchange_pb2.GetCertificateRequest(
                certificate_type="identity_record",
                holder=holder,
                matter_code=KEPT,
                purpose="转移登记核验身份",
            ),
            timeout=10,
        )
    for raised, request_id in ((certificate, "deleted-matter-1"), (record, "deleted-matter-2")):
        assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
        info = error_info(raised.value)
        assert info.reason == "MATTER_NOT_COVERED"
        assert info.metadata["matter_code"] == DELETED
        assert "catalogue has no such matter" in (raised.value.details() or "")
        [logged] = _records(gateway, request_id)
        assert (logged["outcome"], logged["reason"]) == ("DENIED", "MATTER_NOT_COVERED")
        assert logged["fields_returned"] == []
    assert still.fields["name"]


@pytest.mark.parametrize("matter", ["x", DELETED])
async def test_unconditional_resource_refuses_a_matter_the_catalogue_lacks(
    gateway: RunningGateway, population: Population, matter: str
) -> None:
    """A business licence (UNCONDITIONAL) is not handed out for a made-up or deleted
    matter: MATTER_NOT_COVERED, and the one audit record is a denial, not an access."""
    await _delete_matter(gateway, DELETED)
    company = exchange_pb2.Holder(id_type="001", id=population.active_company().uscc)
    async with gateway.channel(gateway.pki.housing) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await gateway.exchange(channel).GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="business_licence",
                    holder=company,
                    matter_code=matter,
                    purpose="核验营业执照",
                    request_id="made-up-matter",
                ),
                timeout=10,
            )
    assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_info(raised.value).reason == "MATTER_NOT_COVERED"
    [logged] = _records(gateway, "made-up-matter")
    assert (logged["outcome"], logged["reason"], logged["matter_code"]) == (
        "DENIED",
        "MATTER_NOT_COVERED",
        matter,
    )
