"""Shared fixtures: a development PKI, the synthetic population, the five
registry simulators on loopback, and a real gateway on port 0 with mTLS."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest
from govshare.adapters.simulators import Population, generate_population, start_simulators
from govshare.gateway import DevPki, Gateway, GatewayConfig
from support import (
    CIVIL_AFFAIRS,
    HOUSING,
    LAND_REGISTRY,
    SUSPENDED,
    UNREGISTERED,
    Pki,
    RunningGateway,
)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    dev = DevPki(folder)
    dev.init()
    other = DevPki(tmp_path_factory.mktemp("other-ca"))
    other.init(common_name="someone else's CA")
    return Pki(
        folder=folder,
        ca_certificate=dev.ca_certificate,
        land_registry=dev.issue("dept", LAND_REGISTRY),
        housing=dev.issue("dept", HOUSING),
        civil_affairs=dev.issue("dept", CIVIL_AFFAIRS),
        suspended=dev.issue("dept", SUSPENDED),
        unregistered=dev.issue("dept", UNREGISTERED),
        admin=dev.issue("admin", "ops"),
        auditor=dev.issue("auditor", "audit-office"),
        foreign=other.issue("dept", LAND_REGISTRY),
    )


@pytest.fixture(scope="session")
def population() -> Population:
    return generate_population()


@pytest.fixture
async def simulators(population: Population) -> AsyncIterator[dict[str, str]]:
    running = await start_simulators(population)
    try:
        yield dict(running.base_urls)
    finally:
        await running.close()


@pytest.fixture
def gateway_config(tmp_path: Path, pki: Pki) -> Callable[[dict[str, str]], GatewayConfig]:
    def make(registries: dict[str, str]) -> GatewayConfig:
        return GatewayConfig(
            data_dir=tmp_path / "gateway",
            pki_dir=pki.folder,
            listen="127.0.0.1:0",
            registries=registries,
            provider_timeout_seconds=3.0,
        )

    return make


@pytest.fixture
async def gateway(
    simulators: dict[str, str],
    gateway_config: Callable[[dict[str, str]], GatewayConfig],
    pki: Pki,
) -> AsyncIterator[RunningGateway]:
    async with Gateway(gateway_config(simulators)) as started:
        yield RunningGateway(started, pki)


@pytest.fixture
def no_holder_ids_in(population: Population) -> Callable[[str], None]:
    """Assert that a text holds no citizen id or USCC of the population in clear."""
    ids = [p.citizen_id for p in population.persons] + [c.uscc for c in population.companies]

    def check(text: str) -> None:
        leaked = [i for i in ids if i in text]
        assert not leaked, f"{len(leaked)} holder ids in clear"

    return check


# PostgreSQL for the tests that need it (the directory store, the gateway on a
# PostgreSQL catalogue): 127.0.0.1:5432, database `test`, trust auth as `postgres`
# or `root`, or a DSN in GOVSHARE_TEST_POSTGRES_DSN. Missing, it fails the tests
# that need it (never a skip).
DSN_VARIABLE = "GOVSHARE_TEST_POSTGRES_DSN"
DEFAULT_DSNS = (
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/test",
)


async def _first_reachable(dsns: tuple[str, ...]) -> tuple[str, str]:
    problems = []
    for dsn in dsns:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError, TimeoutError) as error:
            problems.append(f"{dsn}: {type(error).__name__}: {error}")
            continue
        try:
            version = await conn.fetchval("SHOW server_version")
        finally:
            await conn.close()
        return dsn, str(version)
    raise RuntimeError("; ".join(problems))


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The PostgreSQL server the tests use; fails (never skips) when none answers."""
    configured = os.environ.get(DSN_VARIABLE, "")
    dsns = (configured,) if configured else DEFAULT_DSNS
    try:
        dsn, _version = asyncio.run(_first_reachable(dsns))
    except RuntimeError as error:
        pytest.fail(
            "The directory tests need PostgreSQL (a database `test` at 127.0.0.1:5432 "
            f"with trust auth for `postgres` or `root`, or a DSN in ${DSN_VARIABLE}); "
            f"none answered: {error}",
            pytrace=False,
        )
    return dsn
