"""SqlCatalogueStore on a real database (SQLite and PostgreSQL): schema, round trip,
replace semantics."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from govshare.directory import Catalogue, SqlCatalogueStore, load_builtin_catalogue
from sqlalchemy.exc import IntegrityError


@pytest.fixture
async def store(database: Any) -> AsyncIterator[SqlCatalogueStore]:
    """An empty store on this test's own database (conftest.Database)."""
    opened = database.open()
    await opened.create_schema()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="module")
def builtin() -> Catalogue:
    return load_builtin_catalogue()


class TestSchema:
    async def test_create_schema_makes_an_empty_directory(
        self, store: SqlCatalogueStore, database: Any
    ) -> None:
        """create_schema creates the tables (on SQLite, the file) and the directory is empty."""
        if database.path is not None:
            assert await asyncio.to_thread(database.path.is_file)
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


class TestSeeding:
    async def test_seed_if_empty_writes_once_and_never_over_a_change(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """The first seeding writes the catalogue; a later one (a replica that saw an
        empty directory a moment ago) leaves it, and a change made in between, alone."""
        assert await store.seed_if_empty(builtin)
        uscc, department = next(iter(builtin.departments.items()))
        await store.replace(
            dataclasses.replace(
                builtin,
                departments={
                    **builtin.departments,
                    uscc: dataclasses.replace(department, display_name="改过的名称"),
                },
            )
        )
        revision = await store.revision()
        assert not await store.seed_if_empty(builtin)
        assert (await store.load()).departments[uscc].display_name == "改过的名称"
        assert await store.revision() == revision

    @pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
    async def test_replicas_starting_together_seed_once(
        self, database: Any, builtin: Catalogue
    ) -> None:
        """Four stores on one empty PostgreSQL database seeding at once: exactly one
        seeds, one revision, one catalogue.replace event."""
        stores = [database.open() for _ in range(4)]
        try:
            await asyncio.gather(*(s.create_schema() for s in stores))
            seeded = await asyncio.gather(*(s.seed_if_empty(builtin) for s in stores))
            assert sorted(seeded) == [False, False, False, True]
            assert await stores[0].revision() == 1
            events = await stores[0].list_events(filter='action = "catalogue.replace"')
            assert len(events.items) == 1
            assert await stores[1].load() == builtin
        finally:
            for opened in stores:
                await opened.close()


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

    async def test_survives_reopening(self, database: Any, builtin: Catalogue) -> None:
        """A second store on the same database loads what the first one wrote."""
        first = database.open()
        try:
            await first.create_schema()
            await first.replace(builtin)
        finally:
            await first.close()
        second = database.open()
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
