"""Reference registry simulators: a synthetic population behind five native APIs.

::

    population = generate_population(seed=20261123)
    async with await start_simulators(population) as sims:
        sims.base_urls["civil_affairs"]  # 'http://127.0.0.1:<port>'

`python -m govshare.adapters.simulators` runs them in the foreground.
"""

from __future__ import annotations

from ._apps import (
    REGISTRIES,
    RunningSimulators,
    SimulatorOptions,
    build_simulator_app,
    start_simulators,
)
from ._data import (
    DISTRICTS,
    Company,
    MarriageRecord,
    Person,
    Population,
    RealEstateCertificate,
    TaxPaymentProof,
    generate_population,
)

__all__ = [
    "DISTRICTS",
    "REGISTRIES",
    "Company",
    "MarriageRecord",
    "Person",
    "Population",
    "RealEstateCertificate",
    "RunningSimulators",
    "SimulatorOptions",
    "TaxPaymentProof",
    "build_simulator_app",
    "generate_population",
    "start_simulators",
]
