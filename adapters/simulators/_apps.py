"""The five reference registries, each serving its own native HTTP/JSON API.

The shapes differ on purpose — field names, date formats, code tables, paging
and not-found conventions — because the gateway must map each declaratively
(adapters/mappings/*.yaml):

==================  ===============================================  ===========================
registry            request                                          not found
==================  ===============================================  ===========================
market_regulation   GET /api/v2/licences?uniscid=<USCC>              200, ``code`` "40400"
public_security     POST /rkxx/query ``{"gmsfhm": <id>}``            404, ``{"error": ...}``
civil_affairs       GET /marriage/v2/persons/<id>/records            200, ``records: []``
natural_resources   GET /bdc/api/certificates?qlrzjh=<id> (paged)      200, ``total: 0``
taxation            GET /tax/v1/payment-proofs/<id>                  200, ``Status`` "NOT_FOUND"
==================  ===============================================  ===========================

Faults are per registry (`SimulatorOptions`): added latency and a seeded
share of HTTP 503 answers. Access logging is off: paths and queries carry
holder ids, which must never reach a log in clear.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from ._data import Company, MarriageRecord, Person, Population, TaxPaymentProof

__all__ = [
    "REGISTRIES",
    "RunningSimulators",
    "SimulatorOptions",
    "build_simulator_app",
    "start_simulators",
]

#: Registry names, in the order `start_simulators` assigns consecutive ports.
REGISTRIES = (
    "market_regulation",
    "public_security",
    "civil_affairs",
    "natural_resources",
    "taxation",
)

# GB/T 3304 codes for the ethnic groups the synthetic population holds.
_ETHNICITY_CODES = {
    "汉族": "01", "回族": "03", "苗族": "06", "满族": "11", "土家族": "15", "畲族": "22",
}  # fmt: skip
_SEX_CODES = {"男": "1", "女": "2"}  # GB/T 2261.1
_MAX_PAGE_SIZE = 100
# Handlers still sleeping on simulated latency must not hold up close().
_SHUTDOWN_TIMEOUT = 0.5

_dumps = functools.partial(json.dumps, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """Faults one simulator injects into every answer."""

    latency: float = 0.0  # seconds added before each answer
    failure_rate: float = 0.0  # share of requests answered with HTTP 503
    failure_seed: int = 0  # seeds the failure draws, so a run repeats exactly

    def __post_init__(self) -> None:
        if self.latency < 0:
            raise ValueError("latency must not be negative")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must lie in [0, 1]")


class _Faults:
    """The options a running simulator applies now; replaceable at run time."""

    def __init__(self, options: SimulatorOptions) -> None:
        self.set(options)

    def set(self, options: SimulatorOptions) -> None:
        self.options = options
        self.rng = random.Random(options.failure_seed)


_POPULATION = web.AppKey("population", Population)
_FAULTS = web.AppKey("faults", _Faults)


@web.middleware
async def _inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    faults = request.app[_FAULTS]
    if faults.options.latency > 0:
        await asyncio.sleep(faults.options.latency)
    if faults.options.failure_rate > 0 and faults.rng.random() < faults.options.failure_rate:
        return web.Response(status=503, text="service temporarily unavailable")
    return await handler(request)


def _json(body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, dumps=_dumps)


# --- market regulation (营业执照) ---------------------------------------------


def _licence_body(company: Company) -> dict[str, Any]:
    return {
        "uniscid": company.uscc,
        "entName": company.name,
        "entType": company.company_type,
        "lerep": company.legal_representative,
        "regCap": f"{company.registered_capital:.6f}",
        "estDate": f"{company.established_date:%Y%m%d}",
        "dom": company.address,
        "opScope": company.business_scope,
        "regOrg": company.registration_authority,
        "regState": company.status,
    }


async def _market_licence(request: web.Request) -> web.Response:
    uscc = request.query.get("uniscid", "")
    if not uscc:
        return _json({"code": "40001", "msg": "缺少参数uniscid", "data": None})
    company = request.app[_POPULATION].company(uscc)
    if company is None:
        return _json({"code": "40400", "msg": "无此企业", "data": None})
    return _json({"code": "0", "msg": "成功", "data": _licence_body(company)})


# --- public security (居民身份) -----------------------------------------------


def _resident_body(person: Person) -> dict[str, Any]:
    return {
        "gmsfhm": person.citizen_id,
        "xm": person.name,
        "xb": _SEX_CODES[person.sex],
        "mz": _ETHNICITY_CODES[person.ethnicity],
        "csrq": f"{person.birth_date:%Y%m%d}",
        "zz": person.address,
        "qfjg": person.issuing_authority,
        "yxqz": "长期" if person.valid_until is None else f"{person.valid_until:%Y%m%d}",
    }


async def _security_query(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return _json({"error": "bad request"}, status=400)
    citizen_id = body.get("gmsfhm") if isinstance(body, dict) else None
    if not isinstance(citizen_id, str):
        return _json({"error": "bad request"}, status=400)
    person = request.app[_POPULATION].person(citizen_id)
    if person is None:
        return _json({"error": "not found"}, status=404)
    return _json({"result": _resident_body(person)})


# --- civil affairs (婚姻登记) -------------------------------------------------


def _marriage_body(population: Population, record: MarriageRecord) -> dict[str, Any]:
    husband = population.person(record.husband_id)
    wife = population.person(record.wife_id)
    # Records only ever join persons of the same population.
    assert husband is not None
    assert wife is not None
    return {
        "certNo": record.certificate_number,
        "regDate": f"{record.registration_date:%Y}年{record.registration_date:%m}月"
        f"{record.registration_date:%d}日",
        "type": record.kind,
        "husband": {"name": husband.name, "idNumber": husband.citizen_id},
        "wife": {"name": wife.name, "idNumber": wife.citizen_id},
        "regOrgan": record.registration_authority,
    }


async def _civil_records(request: web.Request) -> web.Response:
    population = request.app[_POPULATION]
    records = population.marriage_records(request.match_info["citizen_id"])
    return _json({"records": [_marriage_body(population, r) for r in records]})


# --- natural resources (不动产权) ---------------------------------------------


_PAGE_NUMBER = re.compile(r"[0-9]{1,9}")


def _positive_int(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    # ASCII digits only, and few of them: str.isdigit() accepts "²" and "١", which
    # int() then refuses or reads, and a 5,000-digit page is no page.
    if _PAGE_NUMBER.fullmatch(text) is None:
        return None
    number = int(text)
    return number if number > 0 else None


async def _estate_certificates(request: web.Request) -> web.Response:
    owner = request.query.get("qlrzjh", "")
    page = _positive_int(request.query.get("page"), 1)
    size = _positive_int(request.query.get("size"), 20)
    if not owner or page is None or size is None or size > _MAX_PAGE_SIZE:
        return _json({"total": 0, "page": 0, "items": [], "message": "参数错误"}, status=400)
    estates = request.app[_POPULATION].real_estate_of(owner)
    chosen = estates[(page - 1) * size : page * size]
    items = [
        {
            "bdcqzh": e.certificate_number,
            "qlr": e.owner_name,
            "zl": e.location,
            "mj": f"{e.area:.2f}",
            "yt": e.usage,
            "qllx": e.right_type,
            "djsj": f"{e.registration_date:%Y/%m/%d}",
        }
        for e in chosen
    ]
    return _json({"total": len(estates), "page": page, "size": size, "items": items})


# --- taxation (完税证明) ------------------------------------------------------


def _proof_body(proof: TaxPaymentProof) -> dict[str, Any]:
    # Period bounds in CST, the issue time in UTC: the mapping must convert.
    issued_utc = proof.issued_at.astimezone(dt.UTC)
    return {
        "ProofNo": proof.certificate_number,
        "TaxpayerName": proof.taxpayer_name,
        "TaxAuthority": proof.tax_authority,
        "PeriodStart": f"{proof.period_start.isoformat()}T00:00:00+08:00",
        "PeriodEnd": f"{proof.period_end.isoformat()}T23:59:59+08:00",
        # A JSON number, as the registry sends it; float keeps two-decimal amounts exact.
        "TotalAmount": float(proof.total_amount),
        "IssuedAt": issued_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def _tax_proof(request: web.Request) -> web.Response:
    proof = request.app[_POPULATION].tax_proof(request.match_info["taxpayer_id"])
    if proof is None:
        return _json({"Status": "NOT_FOUND", "Payload": None})
    return _json({"Status": "OK", "Payload": _proof_body(proof)})


_ROUTES: dict[str, tuple[str, str, Handler]] = {
    "market_regulation": ("GET", "/api/v2/licences", _market_licence),
    "public_security": ("POST", "/rkxx/query", _security_query),
    "civil_affairs": ("GET", "/marriage/v2/persons/{citizen_id}/records", _civil_records),
    "natural_resources": ("GET", "/bdc/api/certificates", _estate_certificates),
    "taxation": ("GET", "/tax/v1/payment-proofs/{taxpayer_id}", _tax_proof),
}


def build_simulator_app(
    registry: str, population: Population, options: SimulatorOptions | None = None
) -> web.Application:
    """The aiohttp application of one registry (a name from `REGISTRIES`)."""
    if registry not in _ROUTES:
        raise ValueError(f"unknown registry {registry!r}; expected one of {REGISTRIES}")
    app = web.Application(middlewares=[_inject_faults])
    app[_POPULATION] = population
    app[_FAULTS] = _Faults(options or SimulatorOptions())
    method, path, handler = _ROUTES[registry]
    app.router.add_route(method, path, handler)
    return app


class RunningSimulators:
    """The five simulators, already listening; `close()` or ``async with`` stops them.

    ``async with await start_simulators(population) as sims: sims.base_urls[...]``
    """

    def __init__(self, runners: Mapping[str, web.AppRunner], base_urls: Mapping[str, str]) -> None:
        self._runners = dict(runners)
        self.base_urls: dict[str, str] = dict(base_urls)

    def set_options(self, registry: str, options: SimulatorOptions) -> None:
        """Change one simulator's faults from its next request on."""
        self._runners[registry].app[_FAULTS].set(options)

    async def close(self) -> None:
        """Stop every simulator; idempotent."""
        runners, self._runners = self._runners, {}
        for runner in runners.values():
            await runner.cleanup()

    async def __aenter__(self) -> RunningSimulators:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def start_simulators(
    population: Population,
    host: str = "127.0.0.1",
    options: SimulatorOptions | Mapping[str, SimulatorOptions] | None = None,
    *,
    ports: Mapping[str, int] | None = None,
) -> RunningSimulators:
    """Start all five simulators; each on its port from `ports`, else a free one.

    `options` applies to every simulator, or per registry name when a mapping.
    """
    started: dict[str, web.AppRunner] = {}
    base_urls: dict[str, str] = {}
    try:
        for registry in REGISTRIES:
            chosen = options.get(registry) if isinstance(options, Mapping) else options
            app = build_simulator_app(registry, population, chosen)
            runner = web.AppRunner(
                app, access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT, handler_cancellation=True
            )
            await runner.setup()
            started[registry] = runner
            site = web.TCPSite(runner, host, (ports or {}).get(registry, 0))
            await site.start()
            port = runner.addresses[0][1]
            base_urls[registry] = f"http://{_url_host(host)}:{port}"
    except BaseException:
        for runner in started.values():
            await runner.cleanup()
        raise
    return RunningSimulators(started, base_urls)
