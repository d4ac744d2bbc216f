"""ResolveMaterials: every required material of a matter, shared or to be submitted."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable

import grpc
import pytest
from govshare.adapters import ResourceMapping
from govshare.adapters.simulators import Population
from govshare.api.exchange.v1 import exchange_pb2
from govshare.gateway import Gateway, GatewayConfig, verify_evidence
from support import Pki, RunningGateway, error_info

_SHARED = exchange_pb2.MATERIAL_OUTCOME_SHARED
_SUBMIT = exchange_pb2.MATERIAL_OUTCOME_MUST_SUBMIT
_UNAVAILABLE = exchange_pb2.MATERIAL_OUTCOME_UNAVAILABLE


def _request(population: Population, matter: str) -> exchange_pb2.ResolveMaterialsRequest:
    seller = population.person_with_all_records()
    buyer = population.active_company()
    return exchange_pb2.ResolveMaterialsRequest(
        matter_code=matter,
        applicants=[
            exchange_pb2.Holder(id_type="111", id=seller.citizen_id),
            exchange_pb2.Holder(id_type="001", id=buyer.uscc),
        ],
        purpose="企业购买存量房转移登记",
        request_id="resolve-1",
    )


class TestResolveMaterials:
    async def test_five_registries_answer_one_matter(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Each shareable material comes back as verified evidence; the contract must be submitted."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = gateway.exchange(channel)
            reply = await stub.ResolveMaterials(_request(population, "330100-BDC-0003"), timeout=10)
            jwks = json.loads(
                (await stub.ListSigningKeys(exchange_pb2.ListSigningKeysRequest())).jwks_json
            )
        outcomes = [(r.source, r.outcome) for r in reply.results]
        assert outcomes == [
            ("identity_record", _SHARED),
            ("marriage_record", _SHARED),
            ("real_estate_certificate", _SHARED),
            ("business_licence", _SHARED),
            ("tax_payment_certificate", _SHARED),
            ("", _SUBMIT),
        ]
        assert reply.results[-1].reason == "APPLICANT_SUBMITS"
        shared = [r.evidence for r in reply.results if r.outcome == _SHARED]
        assert all(verify_evidence(e.jws, jwks).valid for e in shared)
        assert shared[3].fields["uscc"] == population.active_company().uscc  # the company applicant
        assert [e.request_id for e in shared] == [f"resolve-1/{n}" for n in range(1, 6)]
        logged = [json.loads(r["leaf"]) for r in gateway.audit_rows()]
        assert sorted(r["request_id"] for r in logged) == [f"resolve-1/{n}" for n in range(1, 6)]

    async def test_materials_without_a_grant_must_be_submitted(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """For the housing bureau, identity is shared, the expired tax grant means MUST_SUBMIT."""
        async with gateway.channel(gateway.pki.housing) as channel:
            reply = await gateway.exchange(channel).ResolveMaterials(
                _request(population, "330100-ZF-0003"), timeout=10
            )
        by_name = {r.material: r for r in reply.results}
        assert by_name["申请人身份证明"].outcome == _SHARED
        assert set(by_name["申请人身份证明"].evidence.fields) == {"citizen_id", "name"}
        assert (by_name["完税证明"].outcome, by_name["完税证明"].reason) == (
            _SUBMIT,
            "GRANT_EXPIRED",
        )
        assert (by_name["家庭住房情况"].outcome, by_name["家庭住房情况"].reason) == (
            _SUBMIT,
            "GRANT_REQUIRED",
        )
        assert by_name["收入情况说明"].outcome == _SUBMIT
        reasons = sorted(json.loads(r["leaf"])["reason"] for r in gateway.audit_rows())
        assert reasons == ["", "GRANT_EXPIRED", "GRANT_REQUIRED"]

    async def test_unknown_holders_and_missing_applicant_types_must_be_submitted(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """A holder the registry does not know, or no applicant of the right type: MUST_SUBMIT."""
        request = _request(population, "330100-BDC-0003")
        del request.applicants[:]
        request.applicants.append(
            exchange_pb2.Holder(id_type="111", id=population.unknown_citizen_id())
        )
        async with gateway.channel(gateway.pki.land_registry) as channel:
            reply = await gateway.exchange(channel).ResolveMaterials(request, timeout=10)
        by_source = {r.source: r for r in reply.results}
        assert by_source["identity_record"].reason == "HOLDER_NOT_FOUND"
        assert by_source["business_licence"].reason == "HOLDER_ID_INVALID"  # no company applicant
        assert all(r.outcome == _SUBMIT for r in reply.results)

    async def test_a_registry_that_is_down_leaves_its_material_unavailable(
        self,
        simulators: dict[str, str],
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        pki: Pki,
        population: Population,
    ) -> None:
        """With the tax registry down, its material is UNAVAILABLE and the others are still shared."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        registries = dict(simulators, taxation=f"http://127.0.0.1:{closed}")
        async with Gateway(gateway_config(registries)) as started:
            gw = RunningGateway(started, pki)
            async with gw.channel(pki.land_registry) as channel:
                reply = await gw.exchange(channel).ResolveMaterials(
                    _request(population, "330100-BDC-0003"), timeout=10
                )
        by_source = {r.source: r for r in reply.results}
        tax = by_source["tax_payment_certificate"]
        assert (tax.outcome, tax.reason) == (_UNAVAILABLE, "PROVIDER_UNAVAILABLE")
        assert by_source["identity_record"].outcome == _SHARED

    async def test_a_defect_in_one_material_leaves_the_others_shared(
        self, gateway: RunningGateway, population: Population, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An unexpected exception in one lookup makes that material UNAVAILABLE with its own
        INTERNAL_ERROR record; the other materials are still delivered."""
        original = ResourceMapping.interpret

        def broken_for_marriage(
            self: ResourceMapping, status: int, raw: bytes, holder_id: str
        ) -> dict[str, str]:
            if self.resource_code == "101002/00001":
                raise RuntimeError("injected defect")
            return original(self, status, raw, holder_id)

        # Fault injection: stands in for a defect no real input triggers any more.
        monkeypatch.setattr(ResourceMapping, "interpret", broken_for_marriage)
        async with gateway.channel(gateway.pki.land_registry) as channel:
            reply = await gateway.exchange(channel).ResolveMaterials(
                _request(population, "330100-BDC-0003"), timeout=10
            )
        by_source = {r.source: r for r in reply.results}
        marriage = by_source["marriage_record"]
        assert (marriage.outcome, marriage.reason) == (_UNAVAILABLE, "INTERNAL_ERROR")
        assert "resolve-1/2" in marriage.message
        assert [r.outcome for r in reply.results].count(_SHARED) == 4
        logged = {
            (record["request_id"], record["outcome"], record["reason"])
            for record in (json.loads(r["leaf"]) for r in gateway.audit_rows())
        }
        assert ("resolve-1/2", "DENIED", "INTERNAL_ERROR") in logged
        assert ("resolve-1/1", "ALLOWED", "") in logged

    async def test_unknown_matter_and_missing_applicants(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """An unknown matter is MATTER_NOT_COVERED, as in GetCertificate; no applicants is
        INVALID_ARGUMENT; both are logged."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = gateway.exchange(channel)
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await stub.ResolveMaterials(_request(population, "330100-XX-9999"), timeout=10)
            empty = _request(population, "330100-BDC-0003")
            del empty.applicants[:]
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.ResolveMaterials(empty, timeout=10)
        assert unknown.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(unknown.value).reason == "MATTER_NOT_COVERED"
        assert error_info(missing.value).reason == "REQUEST_INVALID"
        assert [json.loads(r["leaf"])["outcome"] for r in gateway.audit_rows()] == [
            "DENIED",
            "DENIED",
        ]
