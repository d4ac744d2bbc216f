"""Exchange calls announce their audit record to the log (so concurrent records can
share a commit) and the announcements balance: once calls are done, none is left
over to hold later commits back."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
from govshare.adapters.simulators import Population
from govshare.api.exchange.v1 import exchange_pb2
from support import RunningGateway

MATTER = "330100-BDC-0001"


async def _settle(call: object) -> None:
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call  # type: ignore[misc]


async def test_announcements_balance_across_allowed_denied_and_resolved_calls(
    gateway: RunningGateway, population: Population
) -> None:
    """Allowed, denied (bad holder id, unknown type, unknown holder, stranger) and
    ResolveMaterials calls, 40 at once, leave no announced record outstanding."""
    person = population.person_with_all_records()
    log = gateway.gateway.access_log
    assert log.expected == 0

    def certificate(holder_id: str, certificate_type: str = "identity_record") -> object:
        return exchange_pb2.GetCertificateRequest(
            certificate_type=certificate_type,
            holder=exchange_pb2.Holder(id_type="111", id=holder_id),
            matter_code=MATTER,
            purpose="核验",
        )

    resolve = exchange_pb2.ResolveMaterialsRequest(
        matter_code="330100-BDC-0003",
        applicants=[
            exchange_pb2.Holder(id_type="111", id=person.citizen_id),
            exchange_pb2.Holder(id_type="001", id=population.active_company().uscc),
        ],
        purpose="核验",
    )
    before = len(gateway.audit_rows())
    async with (
        gateway.channel(gateway.pki.land_registry) as channel,
        gateway.channel(gateway.pki.unregistered) as stranger_channel,
    ):
        stub = gateway.exchange(channel)
        stranger = gateway.exchange(stranger_channel)
        calls = []
        for _ in range(5):
            calls += [
                stub.GetCertificate(certificate(person.citizen_id), timeout=10),
                stub.GetCertificate(certificate("110101199003070000"), timeout=10),
                stub.GetCertificate(certificate(person.citizen_id, "no_such_type"), timeout=10),
                stub.GetCertificate(certificate(population.unknown_citizen_id()), timeout=10),
                stranger.GetCertificate(certificate(person.citizen_id), timeout=10),
                stub.ResolveMaterials(resolve, timeout=10),
                stub.QueryRecord(
                    exchange_pb2.QueryRecordRequest(
                        resource_code="101001/00001",
                        holder=exchange_pb2.Holder(id_type="111", id=person.citizen_id),
                        fields=["name"],
                        matter_code=MATTER,
                        purpose="核验",
                    ),
                    timeout=10,
                ),
                stub.QueryRecord(exchange_pb2.QueryRecordRequest(), timeout=10),
            ]
        await asyncio.gather(*(_settle(c) for c in calls))
    # 5 × (7 single records + 5 materials of the five-registry matter)
    assert len(gateway.audit_rows()) - before == 5 * (7 + 5)
    assert log.expected == 0
