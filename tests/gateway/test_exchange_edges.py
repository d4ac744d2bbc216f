"""ExchangeService at its edges: strangers, odd request ids, wrong holder types,
and callers that give up half way."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Callable

import grpc
import pytest
from govshare.adapters.simulators import Population, SimulatorOptions, start_simulators
from govshare.api.exchange.v1 import exchange_pb2
from govshare.directory import CHINA_STANDARD_TIME
from govshare.gateway import ExchangeServicer, Gateway, GatewayConfig
from support import Pki, RunningGateway, error_info, eventually, requests_received

_MATTER = "330100-BDC-0001"


class TestPermissionBeforeExistence:
    @pytest.mark.parametrize("certificate_type", ["identity_record", "no_such_type"])
    async def test_an_unregistered_caller_learns_nothing_about_the_catalogue(
        self, certificate_type: str, gateway: RunningGateway, population: Population
    ) -> None:
        """A real and an invented certificate type both answer CALLER_UNKNOWN to a stranger."""
        async with gateway.channel(gateway.pki.unregistered) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).GetCertificate(
                    exchange_pb2.GetCertificateRequest(
                        certificate_type=certificate_type,
                        holder=exchange_pb2.Holder(
                            id_type="111", id=population.persons[0].citizen_id
                        ),
                        matter_code=_MATTER,
                        purpose="核验",
                    ),
                    timeout=10,
                )
        assert error_info(raised.value).reason == "CALLER_UNKNOWN"


class TestRequestIds:
    @pytest.mark.parametrize("request_id", ["a\r\nX-Evil: 1", "x" * 129, "空格 id"])
    async def test_an_unusable_request_id_is_refused_and_logged(
        self, request_id: str, gateway: RunningGateway, population: Population
    ) -> None:
        """A request id that could not travel as a header or log field is REQUEST_INVALID, logged under a fresh id."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).GetCertificate(
                    exchange_pb2.GetCertificateRequest(
                        certificate_type="identity_record",
                        holder=exchange_pb2.Holder(
                            id_type="111", id=population.persons[0].citizen_id
                        ),
                        matter_code=_MATTER,
                        purpose="核验",
                        request_id=request_id,
                    ),
                    timeout=10,
                )
        info = error_info(raised.value)
        assert (info.reason, info.metadata["field"]) == ("REQUEST_INVALID", "request_id")
        record = json.loads(gateway.audit_rows()[-1]["leaf"])
        assert record["reason"] == "REQUEST_INVALID"
        assert record["request_id"] != request_id

    async def test_calls_without_a_request_id_get_distinct_usable_ids(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """Ids the gateway makes up are unique per call and themselves valid request ids."""
        request = exchange_pb2.GetCertificateRequest(
            certificate_type="identity_record",
            holder=exchange_pb2.Holder(id_type="111", id=population.persons[0].citizen_id),
            matter_code=_MATTER,
            purpose="核验",
        )
        async with gateway.channel(gateway.pki.land_registry) as channel:
            stub = gateway.exchange(channel)
            ids = [(await stub.GetCertificate(request, timeout=10)).request_id for _ in range(3)]
        assert len(set(ids)) == 3
        assert all(re.fullmatch(r"[A-Za-z0-9._:/-]{1,128}", i) for i in ids)
        logged = [json.loads(r["leaf"])["request_id"] for r in gateway.audit_rows()[-3:]]
        assert logged == ids


class TestHolderTypes:
    async def test_a_company_id_for_a_personal_resource_is_refused_before_the_registry(
        self, gateway: RunningGateway, population: Population
    ) -> None:
        """QueryRecord on identity records with a USCC is HOLDER_ID_INVALID, not a registry miss."""
        async with gateway.channel(gateway.pki.land_registry) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await gateway.exchange(channel).QueryRecord(
                    exchange_pb2.QueryRecordRequest(
                        resource_code="101001/00001",
                        holder=exchange_pb2.Holder(
                            id_type="001", id=population.active_company().uscc
                        ),
                        fields=["name"],
                        matter_code=_MATTER,
                        purpose="核验",
                    ),
                    timeout=10,
                )
        assert error_info(raised.value).reason == "HOLDER_ID_INVALID"


class TestCancellation:
    async def test_a_call_cancelled_while_the_registry_answers_is_still_logged(
        self,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        pki: Pki,
        population: Population,
    ) -> None:
        """A call cancelled once the registry has received its request (and would answer
        only after 30 s) appears in the log as DENIED / CALL_CANCELLED."""
        async with (
            await start_simulators(population, options=SimulatorOptions(latency=30.0)) as slow,
            Gateway(gateway_config(dict(slow.base_urls))) as started,
        ):
            gw = RunningGateway(started, pki)
            async with gw.channel(pki.land_registry) as channel:
                call = gw.exchange(channel).GetCertificate(
                    exchange_pb2.GetCertificateRequest(
                        certificate_type="identity_record",
                        holder=exchange_pb2.Holder(
                            id_type="111", id=population.persons[0].citizen_id
                        ),
                        matter_code=_MATTER,
                        purpose="核验",
                        request_id="cancel-me",
                    ),
                    timeout=10,
                )
                await eventually(
                    lambda: requests_received(slow, "public_security") == 1,
                    "the gateway's request to reach the public security registry",
                )
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
            await eventually(lambda: bool(gw.audit_rows()), "the cancelled call's audit row")
            rows = [json.loads(r["leaf"]) for r in gw.audit_rows()]
        assert [(r["request_id"], r["outcome"], r["reason"]) for r in rows] == [
            ("cancel-me", "DENIED", "CALL_CANCELLED")
        ]


class TestGrantValidityIsJudgedInBeijingTime:
    @pytest.mark.parametrize(
        ("beijing", "reason"),
        [
            # 2026-01-01 03:00 in Beijing is still 2025-12-31 in UTC: the grant that
            # ended on 2025-12-31 has expired where the directory keeps its dates.
            (dt.datetime(2026, 1, 1, 3, 0), "GRANT_EXPIRED"),
            (dt.datetime(2025, 12, 31, 23, 0), ""),
        ],
    )
    async def test_the_grant_day_is_the_directory_day(
        self,
        beijing: dt.datetime,
        reason: str,
        monkeypatch: pytest.MonkeyPatch,
        gateway_config: Callable[[dict[str, str]], GatewayConfig],
        simulators: dict[str, str],
        pki: Pki,
        population: Population,
    ) -> None:
        """Between 00:00 and 08:00 Beijing time a grant that ended yesterday is expired;
        late on its last day (already the next day in no zone east of Beijing) it serves."""
        moment = beijing.replace(tzinfo=CHINA_STANDARD_TIME).astimezone(dt.UTC)
        defaults = ExchangeServicer.__init__.__kwdefaults__
        assert defaults is not None
        monkeypatch.setitem(defaults, "clock", lambda: moment)
        async with Gateway(gateway_config(simulators)) as started:
            gw = RunningGateway(started, pki)
            request = exchange_pb2.GetCertificateRequest(
                certificate_type="tax_payment_certificate",
                holder=exchange_pb2.Holder(id_type="111", id=population.tax_proofs[0].taxpayer_id),
                matter_code="330100-ZF-0003",
                purpose="公租房资格审核",
            )
            async with gw.channel(pki.housing) as channel:
                try:
                    await gw.exchange(channel).GetCertificate(request, timeout=10)
                    outcome = ""
                except grpc.aio.AioRpcError as error:
                    outcome = error_info(error).reason
        assert outcome == reason
        assert json.loads(gw.audit_rows()[-1]["leaf"])["reason"] == reason
