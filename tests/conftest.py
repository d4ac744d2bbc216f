"""Shared fixtures: a development PKI, the synthetic population, the five
registry simulators on loopback, and a real gateway on port 0 with mTLS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

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
