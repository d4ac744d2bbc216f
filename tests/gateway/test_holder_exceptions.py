"""Documented holder id exceptions (`holder_id_exceptions`): ids really issued with a
check character that fails GB 32100 / GB 11643 reach their registry when listed.

DOMAIN.md: "Some real codes fail the check; a registry may carry a documented
exception list." Unlisted ids failing the check are still refused before any
registry is asked, and a listed id appears in logs only masked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping

import grpc
import pytest
from govshare.adapters import LookupRequest, ProviderRecord
from govshare.api.audit.v1 import audit_pb2, audit_pb2_grpc
from govshare.api.exchange.v1 import exchange_pb2, exchange_pb2_grpc
from govshare.directory import is_valid_citizen_id, is_valid_uscc
from govshare.gateway import Gateway, GatewayConfig, GovshareError, Reason
from govshare.gateway._exchange_call import check_holder
from support import Pki, RunningGateway, error_info

ISSUED_USCC = "91330106MA27XL1230"  # USCC shape, fails the GB 32100 check character
ISSUED_CITIZEN_ID = "360426199101010072"  # citizen id shape, fails the GB 11643 check
OTHER_FAILING_CITIZEN_ID = "360426199101010073"  # fails too, and is not listed
EXCEPTIONS: Mapping[str, frozenset[str]] = {
    "001": frozenset({ISSUED_USCC}),
    "111": frozenset({ISSUED_CITIZEN_ID}),
}
LICENCE = "105001/00001"
IDENTITY = "101001/00001"


class _Registry:
    """A stand-in registry that holds every holder it is asked about."""

    def __init__(self, resource_code: str, fields: Callable[[str], dict[str, str]]) -> None:
        self._resource_code = resource_code
        self._fields = fields
        self.asked: list[str] = []

    def serves(self, resource_code: str) -> bool:
        return resource_code == self._resource_code

    async def lookup(self, request: LookupRequest, *, timeout: float) -> ProviderRecord:  # noqa: ASYNC109
        self.asked.append(request.holder_id)
        return ProviderRecord(self._fields(request.holder_id))

    async def close(self) -> None:
        return None


def _market_registry() -> _Registry:
    return _Registry(LICENCE, lambda uscc: {"uscc": uscc, "company_name": "杭州某某科技有限公司"})


def _public_security() -> _Registry:
    return _Registry(IDENTITY, lambda citizen_id: {"citizen_id": citizen_id, "name": "张三"})


async def _resolve_company_purchase(
    exchange: exchange_pb2_grpc.ExchangeServiceStub,
) -> exchange_pb2.ResolveMaterialsResponse:
    """ResolveMaterials for a company buying real estate, the company being ISSUED_USCC."""
    response: exchange_pb2.ResolveMaterialsResponse = await exchange.ResolveMaterials(
        exchange_pb2.ResolveMaterialsRequest(
            matter_code="330100-BDC-0003",
            applicants=[exchange_pb2.Holder(id_type="001", id=ISSUED_USCC)],
            purpose="企业购买存量房核验买方营业执照",
        ),
        timeout=10,
    )
    return response


def _leaves(gateway: RunningGateway) -> list[dict[str, object]]:
    return [json.loads(row["leaf"]) for row in gateway.audit_rows()]


def test_the_examples_fail_their_check() -> None:
    """The ids used here are of their type's shape but fail the check (else the tests
    below would prove nothing)."""
    assert not is_valid_uscc(ISSUED_USCC)
    assert not is_valid_citizen_id(ISSUED_CITIZEN_ID)
    assert not is_valid_citizen_id(OTHER_FAILING_CITIZEN_ID)


async def test_a_listed_uscc_failing_its_check_gets_its_licence_shared(
    gateway_config: Callable[[dict[str, str]], GatewayConfig],
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With the USCC in holder_id_exceptions, ResolveMaterials shares the company's
    business licence (the registry is asked for it) instead of MUST_SUBMIT; the log
    and the access line hold the id only masked and hashed."""
    caplog.set_level(logging.INFO, logger="govshare.access")
    registry = _market_registry()
    config = gateway_config({}).replace(holder_id_exceptions=EXCEPTIONS)
    async with Gateway(config, adapters=[registry]) as started:
        gw = RunningGateway(started, pki)
        async with gw.channel(pki.land_registry) as channel:
            reply = await _resolve_company_purchase(gw.exchange(channel))
        leaves = _leaves(gw)
    licence = next(r for r in reply.results if r.source == "business_licence")
    assert (licence.outcome, licence.reason) == (exchange_pb2.MATERIAL_OUTCOME_SHARED, "")
    assert licence.evidence.fields["uscc"] == ISSUED_USCC
    assert registry.asked == [ISSUED_USCC]
    [logged] = [leaf for leaf in leaves if leaf["resource_code"] == LICENCE]
    assert logged["outcome"] == "ALLOWED"
    assert logged["holder_id_masked"] != ISSUED_USCC
    assert ISSUED_USCC not in json.dumps(leaves, ensure_ascii=False)
    assert ISSUED_USCC not in caplog.text


async def test_a_listed_citizen_id_is_served_and_an_unlisted_one_still_refused(
    gateway_config: Callable[[dict[str, str]], GatewayConfig], pki: Pki
) -> None:
    """GetCertificate admits the listed citizen id despite its check character; another
    id failing the check is HOLDER_ID_INVALID and never reaches the registry."""
    registry = _public_security()
    config = gateway_config({}).replace(holder_id_exceptions=EXCEPTIONS)
    async with Gateway(config, adapters=[registry]) as started:
        gw = RunningGateway(started, pki)
        async with gw.channel(pki.land_registry) as channel:
            exchange = gw.exchange(channel)

            def request(citizen_id: str) -> exchange_pb2.GetCertificateRequest:
                return exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=exchange_pb2.Holder(id_type="111", id=citizen_id),
                    matter_code="330100-BDC-0001",
                    purpose="不动产转移登记核验卖方身份",
                )

            evidence = await exchange.GetCertificate(request(ISSUED_CITIZEN_ID), timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await exchange.GetCertificate(request(OTHER_FAILING_CITIZEN_ID), timeout=10)
    assert evidence.fields["citizen_id"] == ISSUED_CITIZEN_ID
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(refused.value).reason == "HOLDER_ID_INVALID"
    assert OTHER_FAILING_CITIZEN_ID not in (refused.value.details() or "")
    assert registry.asked == [ISSUED_CITIZEN_ID]


async def test_without_the_list_the_failing_uscc_must_be_submitted(
    gateway_config: Callable[[dict[str, str]], GatewayConfig], pki: Pki
) -> None:
    """By default (no exceptions) the same USCC is HOLDER_ID_INVALID before the registry
    is asked: the list, not a weaker check, is what admits it."""
    registry = _market_registry()
    async with Gateway(gateway_config({}), adapters=[registry]) as started:
        gw = RunningGateway(started, pki)
        async with gw.channel(pki.land_registry) as channel:
            reply = await _resolve_company_purchase(gw.exchange(channel))
    licence = next(r for r in reply.results if r.source == "business_licence")
    assert (licence.outcome, licence.reason) == (
        exchange_pb2.MATERIAL_OUTCOME_MUST_SUBMIT,
        "HOLDER_ID_INVALID",
    )
    assert registry.asked == []


class TestCheckHolder:
    def refusal(
        self, holder: exchange_pb2.Holder, expected_id_type: str | None = None
    ) -> GovshareError:
        with pytest.raises(GovshareError) as raised:
            check_holder(holder, expected_id_type, EXCEPTIONS)
        assert holder.id not in raised.value.message
        return raised.value

    @pytest.mark.parametrize(
        ("id_type", "holder_id"), [("001", ISSUED_USCC), ("111", ISSUED_CITIZEN_ID)]
    )
    def test_a_listed_id_passes_despite_its_check(self, id_type: str, holder_id: str) -> None:
        """An id in the list of its own type is admitted although it fails the check."""
        check_holder(exchange_pb2.Holder(id_type=id_type, id=holder_id), id_type, EXCEPTIONS)

    def test_an_id_listed_under_another_type_is_refused(self) -> None:
        """The lists are per id type: a citizen id listed under 111 is not a USCC."""
        holder = exchange_pb2.Holder(id_type="001", id=ISSUED_CITIZEN_ID)
        assert self.refusal(holder).reason is Reason.HOLDER_ID_INVALID

    def test_a_listed_id_of_the_wrong_type_for_the_material_is_refused(self) -> None:
        """The list admits a failed check, not an id of the wrong type for the certificate."""
        holder = exchange_pb2.Holder(id_type="001", id=ISSUED_USCC)
        error = self.refusal(holder, expected_id_type="111")
        assert error.metadata == {"expected_id_type": "111"}

    def test_valid_ids_need_no_list(self) -> None:
        """Ids passing their check are admitted with empty lists."""
        check_holder(exchange_pb2.Holder(id_type="001", id="91110108551385082Q"), "001", {})
        check_holder(exchange_pb2.Holder(id_type="111", id="360426199101010071"), "111", {})


async def test_auditors_can_search_the_log_for_a_listed_holder(
    gateway_config: Callable[[dict[str, str]], GatewayConfig], pki: Pki
) -> None:
    """ListAccessRecords' holder filter admits the listed id as the exchange does: the
    access to that holder is found; an unlisted failing id is still refused."""
    registry = _public_security()
    config = gateway_config({}).replace(holder_id_exceptions=EXCEPTIONS)
    async with Gateway(config, adapters=[registry]) as started:
        gw = RunningGateway(started, pki)
        async with gw.channel(pki.land_registry) as channel:
            evidence = await gw.exchange(channel).GetCertificate(
                exchange_pb2.GetCertificateRequest(
                    certificate_type="identity_record",
                    holder=exchange_pb2.Holder(id_type="111", id=ISSUED_CITIZEN_ID),
                    matter_code="330100-BDC-0001",
                    purpose="不动产转移登记核验卖方身份",
                ),
                timeout=10,
            )
        async with gw.channel(pki.auditor) as channel:
            audit = audit_pb2_grpc.AuditServiceStub(channel)
            found = await audit.ListAccessRecords(
                audit_pb2.ListAccessRecordsRequest(
                    holder_id_type="111", holder_id=ISSUED_CITIZEN_ID
                )
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await audit.ListAccessRecords(
                    audit_pb2.ListAccessRecordsRequest(
                        holder_id_type="111", holder_id=OTHER_FAILING_CITIZEN_ID
                    )
                )
    assert [r.index for r in found.access_records] == [evidence.log_index]
    assert error_info(refused.value).reason == "HOLDER_ID_INVALID"
