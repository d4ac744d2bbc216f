"""Fixtures shared by the directory tests: one seeded SQLite file per session,
copied for each test so every test starts from the seed catalogue."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from govshare.directory import SqlCatalogueStore, load_builtin_catalogue

# The clock of the seeded store: a Monday morning in Beijing (01:00 UTC).
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


async def _seed(path: Path) -> None:
    seeded = SqlCatalogueStore(f"sqlite+aiosqlite:///{path}")
    try:
        await seeded.create_schema()
        await seeded.replace(load_builtin_catalogue())
    finally:
        await seeded.close()


@pytest.fixture(scope="session")
def seeded_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One seeded SQLite file; tests work on copies of it."""
    path = tmp_path_factory.mktemp("seed") / "directory.db"
    asyncio.run(_seed(path))
    return path


@pytest.fixture
async def store(tmp_path: Path, seeded_file: Path) -> AsyncIterator[SqlCatalogueStore]:
    """A store on a fresh copy of the seed, its clock fixed at NOW."""
    path = tmp_path / "directory.db"
    await asyncio.to_thread(shutil.copyfile, seeded_file, path)
    opened = SqlCatalogueStore(f"sqlite+aiosqlite:///{path}", clock=lambda: NOW)
    try:
        yield opened
    finally:
        await opened.close()
