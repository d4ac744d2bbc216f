"""SqlCatalogueStore on a real SQLite file: schema, round trip, replace semantics."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from govshare.directory import Catalogue, SqlCatalogueStore, load_builtin_catalogue
from sqlalchemy.exc import IntegrityError


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "directory.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqlCatalogueStore]:
    opened = SqlCatalogueStore(sqlite_url(db_path))
    await opened.create_schema()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="module")
def builtin() -> Catalogue:
    return load_builtin_catalogue()


class TestSchema:
    async def test_create_schema_makes_an_empty_file(
        self, store: SqlCatalogueStore, db_path: Path
    ) -> None:
        """create_schema creates the SQLite file and the directory is empty."""
        assert await asyncio.to_thread(db_path.is_file)
        assert await store.is_empty()
        loaded = await store.load()
        assert (dict(loaded.departments), dict(loaded.resources), loaded.grants) == ({}, {}, ())

    async def test_create_schema_twice_keeps_data(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """Creating the schema again on a filled database changes nothing."""
        await store.replace(builtin)
        await store.create_schema()
        assert not await store.is_empty()
        assert await store.load() == builtin


class TestRoundTrip:
    async def test_replace_then_load_equals_original(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """The builtin catalogue comes back equal, field by field."""
        await store.replace(builtin)
        assert not await store.is_empty()
        loaded = await store.load()
        assert dict(loaded.departments) == dict(builtin.departments)
        assert dict(loaded.resources) == dict(builtin.resources)
        assert dict(loaded.certificate_types) == dict(builtin.certificate_types)
        assert loaded.grants == builtin.grants
        assert loaded == builtin

    async def test_loaded_catalogue_is_indexed(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """Lookups by type code and by consumer+resource work on the loaded snapshot."""
        await store.replace(builtin)
        loaded = await store.load()
        identity = loaded.certificate_type("11330100002482102G001")
        assert identity is not None
        assert identity.key == "identity_record"
        grants = loaded.grants_for("113301000024821070", "105003/00001")
        assert [g.grant_id for g in grants] == ["g-zf-tax-expired"]

    async def test_replace_twice_is_idempotent(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """Replacing with the same catalogue twice leaves one copy, not two."""
        await store.replace(builtin)
        await store.replace(builtin)
        loaded = await store.load()
        assert loaded == builtin
        assert len(loaded.grants) == len(builtin.grants)

    async def test_replace_removes_what_is_gone(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """replace writes the whole directory: rows missing from the new one disappear."""
        await store.replace(builtin)
        smaller = Catalogue.build(
            builtin.departments.values(),
            [r for code, r in builtin.resources.items() if code != "301001/00001"],
            [c for c in builtin.certificate_types.values() if c.key != "criminal_record"],
            [g for g in builtin.grants if g.grant_id != "g-zf-tax-expired"],
        )
        await store.replace(smaller)
        loaded = await store.load()
        assert loaded == smaller
        assert "301001/00001" not in loaded.resources
        assert loaded.certificate_type("criminal_record") is None

    async def test_changed_rows_are_written(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """A changed resource version and grant end date survive the round trip."""
        await store.replace(builtin)
        resource = dataclasses.replace(builtin.resources["105001/00001"], version=2)
        grant = dataclasses.replace(builtin.grants[0], valid_until=builtin.grants[0].valid_from)
        changed = Catalogue.build(
            builtin.departments.values(),
            [resource, *(r for c, r in builtin.resources.items() if c != resource.code)],
            builtin.certificate_types.values(),
            [grant, *builtin.grants[1:]],
        )
        await store.replace(changed)
        loaded = await store.load()
        assert loaded.resources["105001/00001"].version == 2
        assert loaded.grants_for(grant.consumer, grant.resource)[0].valid_until == grant.valid_from

    async def test_survives_reopening(self, db_path: Path, builtin: Catalogue) -> None:
        """A second store on the same file loads what the first one wrote."""
        first = SqlCatalogueStore(sqlite_url(db_path))
        try:
            await first.create_schema()
            await first.replace(builtin)
        finally:
            await first.close()
        second = SqlCatalogueStore(sqlite_url(db_path))
        try:
            assert await second.load() == builtin
        finally:
            await second.close()

    async def test_failed_replace_keeps_the_previous_directory(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """replace is one transaction: a failing write leaves the old directory intact."""
        await store.replace(builtin)
        duplicate = dataclasses.replace(builtin.grants[0], matter_codes=frozenset({"X-1"}))
        broken = Catalogue.build(
            [],
            [],
            [],
            [*builtin.grants, duplicate],
        )
        with pytest.raises(IntegrityError):
            await store.replace(broken)
        assert await store.load() == builtin
