"""HttpJsonAdapter with the built-in mappings against the real simulators, over HTTP."""

from __future__ import annotations

import asyncio
import gzip
import importlib.resources
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import govshare.adapters as adapters
import pytest
import yaml
from aiohttp import web
from govshare.adapters import (
    HolderNotFound,
    HttpJsonAdapter,
    LookupRequest,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RegistryMapping,
    load_builtin_mappings,
    load_mapping,
    parse_mapping,
)
from govshare.adapters.simulators import (
    REGISTRIES,
    Company,
    Person,
    Population,
    RunningSimulators,
    SimulatorOptions,
    generate_population,
    start_simulators,
)

RESOURCES = {
    "market_regulation": "105001/00001",
    "public_security": "101001/00001",
    "civil_affairs": "101002/00001",
    "natural_resources": "105002/00001",
    "taxation": "105003/00001",
}
_SAMPLE = 25


@pytest.fixture(scope="module")
def population() -> Population:
    return generate_population()


@pytest.fixture(scope="module")
def mappings() -> dict[str, RegistryMapping]:
    return load_builtin_mappings()


@pytest.fixture
async def sims(population: Population) -> AsyncIterator[RunningSimulators]:
    async with await start_simulators(population) as running:
        yield running


@pytest.fixture
async def registry_adapters(
    sims: RunningSimulators, mappings: dict[str, RegistryMapping]
) -> AsyncIterator[dict[str, HttpJsonAdapter]]:
    built = {name: HttpJsonAdapter(mappings[name], sims.base_urls[name]) for name in REGISTRIES}
    yield built
    for adapter in built.values():
        await adapter.close()


def _request(registry: str, holder_id: str) -> LookupRequest:
    holder_type = "001" if registry == "market_regulation" else "111"
    return LookupRequest(RESOURCES[registry], holder_type, holder_id, "req-0001")


async def _lookup(
    adapters_: dict[str, HttpJsonAdapter], registry: str, holder_id: str, seconds: float = 2.0
) -> dict[str, str]:
    record = await adapters_[registry].lookup(_request(registry, holder_id), timeout=seconds)
    return dict(record.fields)


async def _failure(expected: type[ProviderError], holder_id: str, lookup: Any) -> ProviderError:
    """Await `lookup`, expect `expected`, and check its text never shows the holder id."""
    with pytest.raises(expected) as caught:
        await lookup
    assert holder_id not in str(caught.value)
    assert holder_id not in repr(caught.value)
    assert caught.value.__cause__ is None
    return caught.value


# --- expected canonical records, straight from the population ------------------


def _licence(company: Company) -> dict[str, str]:
    return {
        "uscc": company.uscc,
        "company_name": company.name,
        "company_type": company.company_type,
        "legal_representative": company.legal_representative,
        "registered_capital": format(company.registered_capital, "f"),
        "established_date": company.established_date.isoformat(),
        "address": company.address,
        "business_scope": company.business_scope,
        "registration_authority": company.registration_authority,
        "status": company.status,
    }


def _identity(person: Person) -> dict[str, str]:
    record = {
        "citizen_id": person.citizen_id,
        "name": person.name,
        "sex": person.sex,
        "ethnicity": person.ethnicity,
        "birth_date": person.birth_date.isoformat(),
        "address": person.address,
        "issuing_authority": person.issuing_authority,
    }
    if person.valid_until is not None:
        record["valid_until"] = person.valid_until.isoformat()
    return record


def _marriage(population: Population, citizen_id: str) -> dict[str, str]:
    latest = population.marriage_records(citizen_id)[0]
    spouse = population.spouse_of(citizen_id, latest)
    return {
        "certificate_number": latest.certificate_number,
        "marital_status": "已婚" if latest.kind == "结婚" else "离婚",
        "registration_date": latest.registration_date.isoformat(),
        "spouse_name": spouse.name,
        "spouse_citizen_id": spouse.citizen_id,
        "registration_authority": latest.registration_authority,
    }


def _real_estate(population: Population, citizen_id: str) -> dict[str, str]:
    estate = population.real_estate_of(citizen_id)[0]
    return {
        "certificate_number": estate.certificate_number,
        "owner_name": estate.owner_name,
        "location": estate.location,
        "area": format(estate.area, "f"),
        "usage": estate.usage,
        "right_type": estate.right_type,
        "registration_date": estate.registration_date.isoformat(),
    }


def _tax(population: Population, citizen_id: str) -> dict[str, str]:
    proof = population.tax_proof(citizen_id)
    assert proof is not None
    return {
        "certificate_number": proof.certificate_number,
        "taxpayer_name": proof.taxpayer_name,
        "tax_authority": proof.tax_authority,
        "period_start": proof.period_start.isoformat(),
        "period_end": proof.period_end.isoformat(),
        "total_amount": format(proof.total_amount, "f"),
        "issue_date": proof.issue_date.isoformat(),
    }


class TestBuiltinMappings:
    """The shipped mappings cover the catalogue's five shared resources exactly."""

    def test_package_exports_sorted(self) -> None:
        """`govshare.adapters.__all__` is sorted and every name in it exists."""
        assert adapters.__all__ == sorted(adapters.__all__)
        assert all(hasattr(adapters, name) for name in adapters.__all__)

    def test_registries_and_providers(self, mappings: dict[str, RegistryMapping]) -> None:
        """One mapping per registry, each naming its catalogue resource and provider USCC."""
        catalogue = yaml.safe_load(
            importlib.resources.files("govshare.directory")
            .joinpath("seed/catalogue.yaml")
            .read_text(encoding="utf-8")
        )
        resources = {r["code"]: r for r in catalogue["resources"]}
        assert sorted(mappings) == sorted(REGISTRIES)
        for registry, code in RESOURCES.items():
            mapping = mappings[registry]
            assert list(mapping.resources) == [code]
            assert mapping.provider == resources[code]["provider"]
            names = [f.name for f in mapping.resources[code].fields]
            assert names == [item["name"] for item in resources[code]["data_items"]]

    async def test_serves(self, registry_adapters: dict[str, HttpJsonAdapter]) -> None:
        """An adapter serves its own resource code and no other."""
        assert registry_adapters["taxation"].serves("105003/00001")
        assert not registry_adapters["taxation"].serves("105001/00001")


class TestCanonicalRecords:
    """Each registry's native answer maps to canonical catalogue data items."""

    async def test_market_regulation(
        self, registry_adapters: dict[str, HttpJsonAdapter], population: Population
    ) -> None:
        """Licences map field by field; capital loses the six-place padding."""
        companies = list(population.companies[:_SAMPLE])
        companies.append(next(c for c in population.companies if c.registered_capital % 1))
        got = await asyncio.gather(
            *(_lookup(registry_adapters, "market_regulation", c.uscc) for c in companies)
        )
        assert got == [_licence(c) for c in companies]

    async def test_public_security(
        self, registry_adapters: dict[str, HttpJsonAdapter], population: Population
    ) -> None:
        """Codes map to labels, dates become ISO, and 长期 leaves valid_until out."""
        persons = list(population.persons[:_SAMPLE])
        persons.append(next(p for p in population.persons if p.ethnicity != "汉族"))
        got = await asyncio.gather(
            *(_lookup(registry_adapters, "public_security", p.citizen_id) for p in persons)
        )
        assert got == [_identity(p) for p in persons]
        assert any("valid_until" not in g for g in got)
        assert any("valid_until" in g for g in got)

    async def test_civil_affairs(
        self, registry_adapters: dict[str, HttpJsonAdapter], population: Population
    ) -> None:
        """The spouse is the other party, whether the holder is husband or wife."""
        records = population.marriages[:_SAMPLE]
        holders = [r.husband_id for r in records] + [r.wife_id for r in records]
        holders.append(population.divorced_person().citizen_id)
        got = await asyncio.gather(
            *(_lookup(registry_adapters, "civil_affairs", h) for h in holders)
        )
        assert got == [_marriage(population, h) for h in holders]
        assert got[-1]["marital_status"] == "离婚"
        assert all(g["spouse_citizen_id"] != h for g, h in zip(got, holders, strict=True))

    async def test_natural_resources(
        self, registry_adapters: dict[str, HttpJsonAdapter], population: Population
    ) -> None:
        """The most recent title maps, with area to two decimal places."""
        owners = list(dict.fromkeys(e.owner_id for e in population.real_estate))[:_SAMPLE]
        got = await asyncio.gather(
            *(_lookup(registry_adapters, "natural_resources", o) for o in owners)
        )
        assert got == [_real_estate(population, o) for o in owners]

    async def test_taxation(
        self, registry_adapters: dict[str, HttpJsonAdapter], population: Population
    ) -> None:
        """JSON-number amounts keep two places; a UTC issue time gives the CST date."""
        proofs = list(population.tax_proofs[:_SAMPLE])
        proofs.append(next(p for p in population.tax_proofs if p.issued_at.hour < 8))
        proofs.append(next(p for p in population.tax_proofs if p.total_amount % 1 == 0))
        got = await asyncio.gather(
            *(_lookup(registry_adapters, "taxation", p.taxpayer_id) for p in proofs)
        )
        assert got == [_tax(population, p.taxpayer_id) for p in proofs]
        assert got[-1]["total_amount"].endswith(".00")


class TestNotFound:
    """Each registry's own not-found convention becomes HolderNotFound."""

    @pytest.mark.parametrize("registry", REGISTRIES)
    async def test_unknown_holder(
        self,
        registry: str,
        registry_adapters: dict[str, HttpJsonAdapter],
        population: Population,
    ) -> None:
        """An unknown holder raises HolderNotFound naming the registry, not the holder."""
        holder = (
            population.unknown_uscc()
            if registry == "market_regulation"
            else population.unknown_citizen_id()
        )
        error = await _failure(HolderNotFound, holder, _lookup(registry_adapters, registry, holder))
        assert registry in str(error)

    async def test_known_person_without_record(
        self, registry_adapters: dict[str, HttpJsonAdapter], population: Population
    ) -> None:
        """A person the registry knows nothing about is not found, not unavailable."""
        single = population.person_without_marriage().citizen_id
        await _failure(HolderNotFound, single, _lookup(registry_adapters, "civil_affairs", single))


class TestFailures:
    """Refusals, slowness and garbage become ProviderUnavailable or ProviderTimeout."""

    async def test_closed_port(
        self, mappings: dict[str, RegistryMapping], population: Population
    ) -> None:
        """A refused connection raises ProviderUnavailable naming the connection error,
        not ProviderTimeout: the adapter gives up on the refusal, not on the timeout."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        adapter = HttpJsonAdapter(mappings["taxation"], f"http://127.0.0.1:{port}")
        holder = population.person_with_all_records().citizen_id
        try:
            lookup = adapter.lookup(_request("taxation", holder), timeout=5.0)
            error = await _failure(ProviderUnavailable, holder, lookup)
        finally:
            await adapter.close()
        assert str(error) == "taxation (105003/00001): ClientConnectorError"

    async def test_latency_above_timeout(
        self,
        sims: RunningSimulators,
        registry_adapters: dict[str, HttpJsonAdapter],
        population: Population,
    ) -> None:
        """A registry that would answer only after 30 s raises ProviderTimeout for a 0.3 s
        timeout: the error type proves the timeout fired before the answer came."""
        sims.set_options("public_security", SimulatorOptions(latency=30.0))
        holder = population.persons[0].citizen_id
        lookup = _lookup(registry_adapters, "public_security", holder, seconds=0.3)
        error = await _failure(ProviderTimeout, holder, lookup)
        assert str(error) == "public_security (101001/00001): no answer within 0.3 s"

    async def test_service_unavailable(
        self,
        sims: RunningSimulators,
        registry_adapters: dict[str, HttpJsonAdapter],
        population: Population,
    ) -> None:
        """HTTP 503 raises ProviderUnavailable naming the status; the next call recovers."""
        holder = population.divorced_person().citizen_id
        sims.set_options("civil_affairs", SimulatorOptions(failure_rate=1.0))
        error = await _failure(
            ProviderUnavailable, holder, _lookup(registry_adapters, "civil_affairs", holder)
        )
        assert "503" in str(error)
        sims.set_options("civil_affairs", SimulatorOptions())
        assert await _lookup(registry_adapters, "civil_affairs", holder)

    async def test_unmapped_resource_and_closed_adapter(
        self, registry_adapters: dict[str, HttpJsonAdapter], population: Population
    ) -> None:
        """A resource outside the mapping, or a closed adapter, is unavailable."""
        holder = population.persons[0].citizen_id
        adapter = registry_adapters["public_security"]
        wrong = LookupRequest("105003/00001", "111", holder, "r")
        await _failure(ProviderUnavailable, holder, adapter.lookup(wrong, timeout=1.0))
        await adapter.close()
        await _failure(
            ProviderUnavailable, holder, _lookup(registry_adapters, "public_security", holder)
        )


# --- a scripted registry for answers the simulators never give ----------------

_HOLDER = "330106198001010005"
_SCRIPT = web.AppKey("script", dict)
_PEERS = web.AppKey("peers", list)


async def _scripted(request: web.Request) -> web.StreamResponse:
    request.app[_PEERS].append(
        request.transport.get_extra_info("peername") if request.transport else None
    )
    status, body = request.app[_SCRIPT]["answer"]
    headers = request.app[_SCRIPT].get("headers")
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _fake_mapping(**field: Any) -> RegistryMapping:
    return parse_mapping(
        {
            "registry": "scripted",
            "provider": "11330100002482101D",
            "resources": {
                "900001/00001": {
                    "request": {"path": "/answer/{holder_id}"},
                    "not_found": [{"status": 404}],
                    "record": "data",
                    "fields": {"value": {"path": "value", **field}},
                }
            },
        },
        "<test>",
    )


class ScriptedRegistry:
    def __init__(self, base_url: str, app: web.Application) -> None:
        self.base_url = base_url
        self.app = app

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.app[_SCRIPT]["answer"] = (status, body)
        self.app[_SCRIPT]["headers"] = headers

    async def lookup(self, **field: Any) -> dict[str, str]:
        adapter = HttpJsonAdapter(_fake_mapping(**field), self.base_url)
        try:
            request = LookupRequest("900001/00001", "111", _HOLDER, "r")
            return dict((await adapter.lookup(request, timeout=2.0)).fields)
        finally:
            await adapter.close()


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedRegistry]:
    app = web.Application()
    app[_SCRIPT] = {"answer": (200, b"{}")}
    app[_PEERS] = []
    app.router.add_get("/answer/{holder}", _scripted)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield ScriptedRegistry(f"http://127.0.0.1:{runner.addresses[0][1]}", app)
    finally:
        await runner.cleanup()


class TestUnreadableAnswers:
    """Answers that do not fit the mapping are unavailable, never half-mapped."""

    @pytest.mark.parametrize(
        ("status", "body", "field", "reason"),
        [
            (200, b"<html>busy</html>", {}, "not JSON"),
            (200, b'{"other": 1}', {}, "no record at data"),
            (500, b"{}", {}, "HTTP 500"),
            (302, b"{}", {}, "HTTP 302"),
            (200, b'{"data": {"value": "7"}}', {"values": {"1": "男"}}, "data item value"),
            (200, b'{"data": {"value": 1.005}}', {"type": "decimal", "scale": 2}, "value"),
            (
                200,
                b'{"data": {"value": "2025-13-01"}}',
                {"type": "date", "format": "%Y-%m-%d"},
                "value",
            ),
            (200, b'{"data": {"value": {"nested": 1}}}', {}, "value"),
            # Nested deeper than the parser's stack: not JSON, not a crash.
            (200, b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}", {}, "not JSON"),
            # A lone surrogate is valid JSON but no text a record can carry.
            (200, b'{"data": {"value": "\\ud800"}}', {}, "data item value"),
            (200, b'{"data": {"value": "' + b"x" * 8193 + b'"}}', {}, "data item value"),
            (200, b'{"data": {"value": 1e6000000}}', {"type": "decimal"}, "data item value"),
        ],
    )
    async def test_unreadable(
        self,
        scripted: ScriptedRegistry,
        status: int,
        body: bytes,
        field: dict[str, Any],
        reason: str,
    ) -> None:
        """The answer raises ProviderUnavailable saying what was wrong."""
        scripted.answer(status, body)
        error = await _failure(ProviderUnavailable, _HOLDER, scripted.lookup(**field))
        assert reason in str(error)

    @pytest.mark.parametrize(
        ("value", "field", "expected"),
        [
            (b"12", {"type": "decimal", "scale": 2}, {"value": "12.00"}),
            (b"1e3", {"type": "decimal"}, {"value": "1000"}),
            (b'"0.50"', {"type": "decimal"}, {"value": "0.50"}),
            (b"true", {}, {"value": "true"}),
            (b'"  "', {}, {}),
            # Positional notation would be a million digits: the scientific spelling stays.
            (b"1e1000000", {}, {"value": "1E+1000000"}),
            (b'"' + "经营范围".encode() * 2048 + b'"', {}, {"value": "经营范围" * 2048}),
            (b"null", {}, {}),
            (
                b'"2025-01-01T01:00:00+09:00"',
                {"type": "date", "format": "iso8601"},
                {"value": "2025-01-01"},
            ),
            (
                b'"2020/01/02 10:00:00"',
                {"type": "date", "format": "%Y/%m/%d %H:%M:%S"},
                {"value": "2020-01-02"},
            ),
            (
                b'"2024-12-31T17:30:00Z"',
                {"type": "date", "format": "iso8601", "timezone": "+08:00"},
                {"value": "2025-01-01"},
            ),
        ],
    )
    async def test_canonical_forms(
        self,
        scripted: ScriptedRegistry,
        value: bytes,
        field: dict[str, Any],
        expected: dict[str, str],
    ) -> None:
        """Decimals, booleans, blanks and timestamps take one canonical form."""
        scripted.answer(200, b'{"data": {"value": ' + value + b"}}")
        assert await scripted.lookup(**field) == expected

    async def test_compressed_answer_is_capped_after_inflating(
        self, scripted: ScriptedRegistry
    ) -> None:
        """A small gzip body that inflates past the answer limit is refused, not read."""
        inflated = b'{"data": {"value": "' + b"x" * (5 * 1024 * 1024) + b'"}}'
        scripted.answer(200, gzip.compress(inflated), {"Content-Encoding": "gzip"})
        error = await _failure(ProviderUnavailable, _HOLDER, scripted.lookup())
        assert "larger than" in str(error)

    async def test_compressed_answer_within_the_cap_is_read(
        self, scripted: ScriptedRegistry
    ) -> None:
        """Compression itself is fine: a gzip answer under the limit maps as usual."""
        body = gzip.compress(b'{"data": {"value": "ok"}}')
        scripted.answer(200, body, {"Content-Encoding": "gzip"})
        assert await scripted.lookup() == {"value": "ok"}


class TestSession:
    """One keep-alive session per adapter, owned unless the caller passes one."""

    async def test_keep_alive(self, scripted: ScriptedRegistry) -> None:
        """Sequential lookups reuse one connection."""
        scripted.answer(200, b'{"data": {"value": "x"}}')
        adapter = HttpJsonAdapter(_fake_mapping(), scripted.base_url)
        try:
            for _ in range(5):
                await adapter.lookup(LookupRequest("900001/00001", "111", _HOLDER, "r"), timeout=1)
        finally:
            await adapter.close()
        assert len(set(scripted.app[_PEERS])) == 1

    async def test_callers_session_stays_open(self, scripted: ScriptedRegistry) -> None:
        """close() leaves a session the caller passed in open."""
        scripted.answer(404, b"{}")
        async with aiohttp.ClientSession() as session:
            adapter = HttpJsonAdapter(_fake_mapping(), scripted.base_url, session)
            request = LookupRequest("900001/00001", "111", _HOLDER, "r")
            with pytest.raises(HolderNotFound):
                await adapter.lookup(request, timeout=1)
            await adapter.close()
            assert not session.closed


# --- mapping validation --------------------------------------------------------


def _valid_document() -> dict[str, Any]:
    return {
        "registry": "sample",
        "provider": "11330100002482101D",
        "resources": {
            "R/1": {
                "request": {"method": "GET", "path": "/r/{holder_id}"},
                "not_found": [{"status": 404}],
                "record": "data",
                "fields": {"x": {"path": "x"}},
            }
        },
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        *parents, last = path.split("|")
        node = document
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


class TestMappingValidation:
    """A bad mapping file is refused on load with the file and the key named."""

    def test_valid_file_loads(self, tmp_path: Path) -> None:
        """A valid file loads into a RegistryMapping."""
        path = tmp_path / "sample.yaml"
        path.write_text(yaml.safe_dump(_valid_document(), allow_unicode=True), encoding="utf-8")
        mapping = load_mapping(path)
        assert (mapping.registry, list(mapping.resources)) == ("sample", ["R/1"])

    @pytest.mark.parametrize(
        ("mutate", "key"),
        [
            (_set("resources|R/1|fields|x|scael", 2), "resources.R/1.fields.x.scael"),
            (_set("resources|R/1|request|path", "/r/{holder}"), "resources.R/1.request.path"),
            (_set("resources|R/1|request|method", "DELETE"), "resources.R/1.request.method"),
            (_set("resources|R/1|fields|x|type", "datetime"), "resources.R/1.fields.x.type"),
            (_set("resources|R/1|fields|x|type", "date"), "resources.R/1.fields.x.format"),
            (_set("resources|R/1|fields|x|values", {1: "男"}), "resources.R/1.fields.x.values.1"),
            (
                _set("resources|R/1|not_found", [{"path": "a", "equals": "1", "empty": True}]),
                "resources.R/1.not_found.0",
            ),
            (_set("resources|R/1|fields|x|path", "a..b"), "resources.R/1.fields.x.path"),
            (_set("provider", "nope"), "provider"),
            (_set("resources|R/1|fields", {}), "resources.R/1.fields"),
        ],
    )
    def test_bad_key_named(
        self, tmp_path: Path, mutate: Callable[[dict[str, Any]], None], key: str
    ) -> None:
        """The ValueError names the file and the offending key."""
        document = _valid_document()
        mutate(document)
        path = tmp_path / "broken.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
        with pytest.raises(ValueError, match=r"broken\.yaml") as caught:
            load_mapping(path)
        assert f": {key}: " in str(caught.value)

    def test_not_yaml(self, tmp_path: Path) -> None:
        """A file that is not YAML is refused naming the file."""
        path = tmp_path / "garbage.yaml"
        path.write_text("registry: [unclosed", encoding="utf-8")
        with pytest.raises(ValueError, match=r"garbage\.yaml: not valid YAML"):
            load_mapping(path)
