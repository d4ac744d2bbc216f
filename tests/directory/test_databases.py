"""Where SQLite and PostgreSQL would answer differently unless the store sees to it:
row order, text PostgreSQL cannot hold, unbounded names, replicas starting together."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from govshare.directory import (
    InvalidArgument,
    NotFound,
    SqlCatalogueStore,
    export_catalogue_yaml,
    load_builtin_catalogue,
)

ADMIN = "admin/ops"
MARKET = "11330100002482101D"


class TestOrder:
    async def test_grants_keep_their_order_through_updates(self, store: SqlCatalogueStore) -> None:
        """A revoked grant stays where it was in the snapshot and the export
        (PostgreSQL moves an updated row to the end of its table)."""
        seed_order = [g.grant_id for g in load_builtin_catalogue().grants]
        exported = await export_catalogue_yaml(store)
        await store.revoke_grant(seed_order[0], reason="测试撤销", actor=ADMIN)
        await store.revoke_grant(seed_order[2], reason="测试撤销", actor=ADMIN)
        assert [g.grant_id for g in (await store.load()).grants] == seed_order
        after = await export_catalogue_yaml(store)
        assert after != exported
        assert [line for line in after.splitlines() if "- id: g-" in line] == [
            line for line in exported.splitlines() if "- id: g-" in line
        ]


class TestText:
    async def test_nul_characters_are_refused(self, store: SqlCatalogueStore) -> None:
        """SQLite would store a NUL, PostgreSQL cannot: both refuse it as INVALID_ARGUMENT."""
        department = await store.get_department(MARKET)
        with pytest.raises(InvalidArgument) as raised:
            await store.update_department(
                dataclasses.replace(department, display_name="市场\x00监管"), actor=ADMIN
            )
        assert list(raised.value.violations) == [
            ("display_name", "must not contain NUL characters")
        ]
        with pytest.raises(InvalidArgument):
            await store.update_department(department, actor="admin/\x00", request_id="r-1")
        assert await store.get_department(MARKET) == department
        assert await store.revision() == 1

    async def test_a_nul_in_a_name_is_not_found(self, store: SqlCatalogueStore) -> None:
        """Looking up a name holding a NUL is NOT_FOUND, not a database error."""
        with pytest.raises(NotFound):
            await store.get_department("1133010000\x00482101D")
        with pytest.raises(NotFound):
            await store.get_certificate_type("11330100002482102G\x0001")

    async def test_long_actor_names_are_kept(self, store: SqlCatalogueStore) -> None:
        """An actor name longer than any VARCHAR is stored (PostgreSQL enforces lengths)
        and a retry under it is still answered from the first result."""
        actor = "admin/" + "长" * 300
        department = await store.get_department(MARKET)
        renamed = dataclasses.replace(department, display_name="市场监管局")
        first = await store.update_department(renamed, actor=actor, request_id="r-long")
        again = await store.update_department(renamed, actor=actor, request_id="r-long")
        assert again == first
        (event,) = (await store.list_events(filter=f'target = "departments/{MARKET}"')).items
        assert event.actor == actor


class TestStartup:
    @pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
    async def test_replicas_create_the_schema_together(self, database: Any) -> None:
        """Gateways starting at once on one PostgreSQL database all create the schema
        without tripping over each other. (SQLite is one gateway's file.)"""
        stores = [database.open() for _ in range(4)]
        try:
            await asyncio.gather(*(s.create_schema() for s in stores))
            assert await stores[0].revision() == 0
            assert await stores[1].is_empty()
        finally:
            for opened in stores:
                await opened.close()
