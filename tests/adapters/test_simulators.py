"""The synthetic population and the five registry simulators, over real HTTP."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import govshare.adapters.simulators as simulators
import pytest
from govshare.adapters.simulators import (
    Population,
    RunningSimulators,
    SimulatorOptions,
    generate_population,
    start_simulators,
)
from govshare.directory import is_valid_citizen_id, is_valid_uscc
from support import eventually, requests_received


@pytest.fixture(scope="module")
def population() -> Population:
    return generate_population()


@pytest.fixture
async def sims(population: Population) -> AsyncIterator[RunningSimulators]:
    async with await start_simulators(population) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _isort_key(name: str) -> tuple[int, str]:
    # The order ruff's RUF022 enforces: SCREAMING_CASE, then CamelCase, then the rest.
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


async def _get(http: aiohttp.ClientSession, url: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.get(url, **kwargs) as response:
        return response.status, await response.json()


async def _status(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as response:
        return response.status


class TestPackage:
    """The simulators package says what it offers."""

    def test_all_is_sorted(self) -> None:
        """`__all__` is isort-sorted (constants, classes, functions) and every name exists."""
        assert simulators.__all__ == sorted(simulators.__all__, key=_isort_key)
        assert all(hasattr(simulators, name) for name in simulators.__all__)


class TestPopulation:
    """A seed determines a realistic, internally consistent population."""

    def test_same_seed_same_population(self, population: Population) -> None:
        """The same seed gives an equal population; another seed a different one."""
        assert generate_population() == population
        assert generate_population(seed=7, persons=200, companies=50) == generate_population(
            seed=7, persons=200, companies=50
        )
        assert generate_population(seed=8, persons=200, companies=50) != generate_population(
            seed=7, persons=200, companies=50
        )

    def test_sizes(self, population: Population) -> None:
        """The requested numbers of persons and companies are drawn."""
        assert len(population.persons) == 3000
        assert len(population.companies) == 1000

    def test_citizen_ids_valid_and_unique(self, population: Population) -> None:
        """Every citizen id passes GB 11643, is unique, and its order digit gives the sex."""
        ids = [p.citizen_id for p in population.persons]
        assert len(set(ids)) == len(ids)
        assert all(is_valid_citizen_id(i) for i in ids)
        for person in population.persons:
            assert person.sex == ("男" if int(person.citizen_id[16]) % 2 else "女")
            assert person.citizen_id[6:14] == f"{person.birth_date:%Y%m%d}"
            assert 1950 <= person.birth_date.year <= 2005

    def test_usccs_valid_and_unique(self, population: Population) -> None:
        """Every USCC passes GB 32100 and is unique; company names are unique."""
        codes = [c.uscc for c in population.companies]
        assert len(set(codes)) == len(codes)
        assert all(is_valid_uscc(c) and c.startswith("91") for c in codes)
        assert len({c.name for c in population.companies}) == len(codes)

    def test_marriages_pair_a_husband_and_a_wife(self, population: Population) -> None:
        """Each marriage joins one man and one woman; about 40% of persons are married."""
        married: set[str] = set()
        for record in population.marriages:
            husband = population.person(record.husband_id)
            wife = population.person(record.wife_id)
            assert husband is not None
            assert wife is not None
            assert (husband.sex, wife.sex) == ("男", "女")
            married |= {record.husband_id, record.wife_id}
        assert 0.3 < len(married) / len(population.persons) < 0.5
        kinds = {r.kind for r in population.marriages}
        assert kinds == {"结婚", "离婚"}

    def test_records_newest_first(self, population: Population) -> None:
        """A divorced person's divorce is listed before the marriage."""
        person = population.divorced_person()
        records = population.marriage_records(person.citizen_id)
        assert [r.kind for r in records] == ["离婚", "结婚"]
        assert records[0].certificate_number.startswith("L")
        assert records[1].certificate_number.startswith("J")

    def test_real_estate_and_tax_shares(self, population: Population) -> None:
        """About 30% of persons own one or two properties; about 60% hold a tax proof."""
        owners = {e.owner_id for e in population.real_estate}
        assert 0.25 < len(owners) / len(population.persons) < 0.35
        assert all(1 <= len(population.real_estate_of(o)) <= 2 for o in owners)
        assert 0.5 < len(population.tax_proofs) / len(population.persons) < 0.65
        assert all(e.area == e.area.quantize(Decimal("0.01")) for e in population.real_estate)

    def test_holder_pickers(self, population: Population) -> None:
        """The demo pickers return holders with exactly the records they promise."""
        both = population.person_with_marriage_and_property()
        assert population.marital_status(both.citizen_id) == "已婚"
        assert population.real_estate_of(both.citizen_id)
        full = population.person_with_all_records()
        assert population.tax_proof(full.citizen_id) is not None
        assert population.real_estate_of(full.citizen_id)
        single = population.person_without_marriage()
        assert population.marriage_records(single.citizen_id) == ()
        assert population.active_company().status == "存续"
        assert is_valid_citizen_id(population.unknown_citizen_id())
        assert population.person(population.unknown_citizen_id()) is None
        assert is_valid_uscc(population.unknown_uscc())
        assert population.company(population.unknown_uscc()) is None


class TestMarketRegulation:
    """The market-regulation registry answers HTTP 200 with a result code."""

    async def test_licence(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """A known USCC gives code "0" and the licence in its native field names."""
        company = population.active_company()
        url = sims.base_urls["market_regulation"] + "/api/v2/licences"
        status, body = await _get(http, url, params={"uniscid": company.uscc})
        assert status == 200
        assert body["code"] == "0"
        data = body["data"]
        assert data["uniscid"] == company.uscc
        assert data["entName"] == company.name
        assert data["regCap"] == f"{company.registered_capital:.6f}"
        assert data["estDate"] == f"{company.established_date:%Y%m%d}"

    async def test_not_found(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """An unknown USCC gives HTTP 200, code "40400" and null data."""
        url = sims.base_urls["market_regulation"] + "/api/v2/licences"
        status, body = await _get(http, url, params={"uniscid": population.unknown_uscc()})
        assert (status, body["code"], body["data"]) == (200, "40400", None)


class TestPublicSecurity:
    """The public-security registry takes a POST body and answers code values."""

    async def test_resident(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """A known id gives coded sex and ethnicity, and 长期 for a card valid for life."""
        person = next(p for p in population.persons if p.valid_until is None)
        url = sims.base_urls["public_security"] + "/rkxx/query"
        async with http.post(url, json={"gmsfhm": person.citizen_id}) as response:
            assert response.status == 200
            result = (await response.json())["result"]
        assert result["gmsfhm"] == person.citizen_id
        assert result["xb"] == ("1" if person.sex == "男" else "2")
        assert len(result["mz"]) == 2
        assert result["csrq"] == f"{person.birth_date:%Y%m%d}"
        assert result["yxqz"] == "长期"

    async def test_not_found(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """An unknown id gives HTTP 404 with an error object."""
        url = sims.base_urls["public_security"] + "/rkxx/query"
        async with http.post(url, json={"gmsfhm": population.unknown_citizen_id()}) as response:
            assert response.status == 404
            assert await response.json() == {"error": "not found"}

    async def test_bad_body(self, sims: RunningSimulators, http: aiohttp.ClientSession) -> None:
        """A body without gmsfhm gives HTTP 400."""
        url = sims.base_urls["public_security"] + "/rkxx/query"
        async with http.post(url, data=b"not json") as response:
            assert response.status == 400


class TestCivilAffairs:
    """The civil-affairs registry lists records, most recent first."""

    async def test_records(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """Both parties appear with names and ids; dates are written 年月日."""
        person = population.divorced_person()
        url = f"{sims.base_urls['civil_affairs']}/marriage/v2/persons/{person.citizen_id}/records"
        status, body = await _get(http, url)
        assert status == 200
        records = body["records"]
        assert [r["type"] for r in records] == ["离婚", "结婚"]
        latest = population.marriage_records(person.citizen_id)[0]
        day = latest.registration_date
        assert records[0]["regDate"] == f"{day.year}年{day.month:02d}月{day.day:02d}日"
        assert person.citizen_id in (
            records[0]["husband"]["idNumber"],
            records[0]["wife"]["idNumber"],
        )

    async def test_not_found(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """A person without records gets HTTP 200 and an empty list."""
        person = population.person_without_marriage()
        url = f"{sims.base_urls['civil_affairs']}/marriage/v2/persons/{person.citizen_id}/records"
        assert await _get(http, url) == (200, {"records": []})


class TestNaturalResources:
    """The natural-resources registry pages its certificate list."""

    async def test_certificates_paged(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """Paging by one splits an owner's two certificates over two pages."""
        owner = next(
            p for p in population.persons if len(population.real_estate_of(p.citizen_id)) == 2
        )
        url = sims.base_urls["natural_resources"] + "/bdc/api/certificates"
        pages = []
        for page in (1, 2):
            query = {"qlrzjh": owner.citizen_id, "page": str(page), "size": "1"}
            status, body = await _get(http, url, params=query)
            assert (status, body["total"], body["page"]) == (200, 2, page)
            pages.extend(body["items"])
        expected = population.real_estate_of(owner.citizen_id)
        assert [i["bdcqzh"] for i in pages] == [e.certificate_number for e in expected]
        assert pages[0]["mj"] == f"{expected[0].area:.2f}"
        assert pages[0]["djsj"] == f"{expected[0].registration_date:%Y/%m/%d}"

    async def test_not_found(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """A person without property gets total 0."""
        url = sims.base_urls["natural_resources"] + "/bdc/api/certificates"
        query = {"qlrzjh": population.unknown_citizen_id(), "page": "1", "size": "20"}
        status, body = await _get(http, url, params=query)
        assert (status, body["total"], body["items"]) == (200, 0, [])

    @pytest.mark.parametrize(
        "paging",
        [{"size": "1000"}, {"page": "²"}, {"page": "١"}, {"page": "9" * 5000}, {"size": "0"}],
        ids=["size-over-limit", "superscript", "arabic-indic", "5000-digits", "zero"],
    )
    async def test_bad_paging(
        self, paging: dict[str, str], sims: RunningSimulators, http: aiohttp.ClientSession
    ) -> None:
        """Paging that is not a small positive ASCII number gives HTTP 400, never a 500."""
        url = sims.base_urls["natural_resources"] + "/bdc/api/certificates"
        status, body = await _get(http, url, params={"qlrzjh": "1", **paging})
        assert (status, body["message"]) == (400, "参数错误")


class TestTaxation:
    """The taxation registry wraps its answer in Status and Payload."""

    async def test_proof(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """A proof carries its amount as a JSON number and ISO 8601 timestamps."""
        proof = population.tax_proofs[0]
        url = f"{sims.base_urls['taxation']}/tax/v1/payment-proofs/{proof.taxpayer_id}"
        async with http.get(url) as response:
            body = await response.json(loads=functools.partial(json.loads, parse_float=Decimal))
        assert body["Status"] == "OK"
        payload = body["Payload"]
        assert isinstance(payload["TotalAmount"], Decimal)
        assert payload["TotalAmount"] == proof.total_amount
        assert payload["PeriodStart"] == f"{proof.period_start}T00:00:00+08:00"
        assert payload["IssuedAt"].endswith("Z")

    async def test_not_found(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """An unknown taxpayer gives HTTP 200 with Status NOT_FOUND."""
        url = (
            f"{sims.base_urls['taxation']}/tax/v1/payment-proofs/{population.unknown_citizen_id()}"
        )
        assert await _get(http, url) == (200, {"Status": "NOT_FOUND", "Payload": None})


class TestFaults:
    """Latency and failures are injected per simulator, and logs never show holder ids."""

    async def test_latency(
        self, sims: RunningSimulators, http: aiohttp.ClientSession, population: Population
    ) -> None:
        """An answer waits at least the configured latency."""
        sims.set_options("taxation", SimulatorOptions(latency=0.2))
        url = (
            f"{sims.base_urls['taxation']}/tax/v1/payment-proofs/{population.unknown_citizen_id()}"
        )
        started = time.perf_counter()
        await _get(http, url)
        assert time.perf_counter() - started >= 0.2

    async def test_failure_rate(self, population: Population, http: aiohttp.ClientSession) -> None:
        """A failure rate of one answers HTTP 503 every time; zero never does."""
        options = {"market_regulation": SimulatorOptions(failure_rate=1.0)}
        async with await start_simulators(population, options=options) as running:
            for registry, expected in (("market_regulation", 503), ("taxation", 200)):
                url = f"{running.base_urls[registry]}/tax/v1/payment-proofs/x"
                if registry == "market_regulation":
                    url = f"{running.base_urls[registry]}/api/v2/licences?uniscid=x"
                async with http.get(url) as response:
                    assert response.status == expected

    async def test_failures_repeat_by_seed(
        self, population: Population, http: aiohttp.ClientSession
    ) -> None:
        """The same failure seed fails the same requests."""
        runs = []
        for _ in range(2):
            options = SimulatorOptions(failure_rate=0.5, failure_seed=3)
            async with await start_simulators(population, options=options) as running:
                url = f"{running.base_urls['taxation']}/tax/v1/payment-proofs/x"
                statuses = []
                for _ in range(12):
                    async with http.get(url) as response:
                        statuses.append(response.status)
                runs.append(statuses)
        assert runs[0] == runs[1]
        assert set(runs[0]) == {200, 503}

    async def test_no_holder_id_in_logs(
        self,
        sims: RunningSimulators,
        http: aiohttp.ClientSession,
        population: Population,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Serving a request logs nothing that contains the holder id."""
        person = population.person_with_all_records()
        caplog.set_level(logging.DEBUG)
        url = f"{sims.base_urls['civil_affairs']}/marriage/v2/persons/{person.citizen_id}/records"
        await _get(http, url)
        await asyncio.sleep(0)
        assert person.citizen_id not in caplog.text

    async def test_close_while_slow(self, population: Population) -> None:
        """Closing cuts off a request still waiting on latency instead of answering it:
        with an hour of latency the client gets no status but a lost connection, and
        close() returns (twice, idempotently) without waiting out the hour."""
        running = await start_simulators(population, options=SimulatorOptions(latency=3600.0))
        try:
            async with aiohttp.ClientSession() as session:
                url = f"{running.base_urls['taxation']}/tax/v1/payment-proofs/x"
                waiting = asyncio.ensure_future(_status(session, url))
                await eventually(
                    lambda: requests_received(running, "taxation") == 1,
                    "the request to reach the taxation simulator",
                )
                # Only a guard against a hang: waiting out the latency would take an hour.
                await asyncio.wait_for(running.close(), timeout=30)
                await running.close()
                # The server disconnects; aiohttp then retries the GET once, which finds
                # the port closed. Either way a connection error, never an answer.
                with pytest.raises(aiohttp.ClientConnectionError):
                    await waiting
        finally:
            await running.close()
