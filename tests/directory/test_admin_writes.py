"""The write path every directory change takes: etags, update masks, request
ids, events with before/after, the revision counter, paged lists, and
upgrading a directory file made by the previous release."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest
from govshare.directory import (
    Catalogue,
    DataItem,
    Department,
    DepartmentState,
    EtagMismatch,
    InvalidArgument,
    Resource,
    ResourceState,
    SharingType,
    SqlCatalogueStore,
    load_builtin_catalogue,
)

ADMIN = "admin/ops"
OTHER_ADMIN = "admin/night-shift"
MARKET = "11330100002482101D"
IDENTITY = "101001/00001"
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


async def renamed(store: SqlCatalogueStore, name: str, **kwargs: object) -> Department:
    current = await store.get_department(MARKET)
    changed = dataclasses.replace(current, display_name=name)
    return await store.update_department(changed, update_mask=["display_name"], **kwargs)  # type: ignore[arg-type]


class TestEtag:
    async def test_etag_changes_with_every_write(self, store: SqlCatalogueStore) -> None:
        """The etag read before a change no longer matches after it."""
        before = await store.get_department(MARKET)
        after = await renamed(store, "市场监管局", etag=before.etag, actor=ADMIN)
        assert after.etag != before.etag
        assert after.version == before.version + 1

    async def test_stale_etag_is_refused_and_nothing_changes(
        self, store: SqlCatalogueStore
    ) -> None:
        """A write with the etag of an older read is EtagMismatch; the item keeps the newer value."""
        stale = await store.get_department(MARKET)
        await renamed(store, "第一次修改", etag=stale.etag, actor=ADMIN)
        revision = await store.revision()
        with pytest.raises(EtagMismatch) as raised:
            await renamed(store, "第二次修改", etag=stale.etag, actor=OTHER_ADMIN)
        assert raised.value.metadata == {"name": f"departments/{MARKET}"}
        assert (await store.get_department(MARKET)).display_name == "第一次修改"
        assert await store.revision() == revision

    async def test_empty_etag_writes_unconditionally(self, store: SqlCatalogueStore) -> None:
        """Without an etag the last writer wins."""
        await renamed(store, "甲", actor=ADMIN)
        assert (await renamed(store, "乙", actor=OTHER_ADMIN)).display_name == "乙"

    async def test_concurrent_writers_with_one_etag(self, store: SqlCatalogueStore) -> None:
        """Two writers racing with the same etag: exactly one wins."""
        etag = (await store.get_department(MARKET)).etag
        results = await asyncio.gather(
            renamed(store, "甲", etag=etag, actor=ADMIN),
            renamed(store, "乙", etag=etag, actor=OTHER_ADMIN),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["Department", "EtagMismatch"]

    async def test_stale_etag_on_delete(self, store: SqlCatalogueStore) -> None:
        """Deleting with a stale etag is refused too."""
        stale = await store.get_department(MARKET)
        await renamed(store, "改名", actor=ADMIN)
        with pytest.raises(EtagMismatch):
            await store.delete_department(MARKET, etag=stale.etag, actor=ADMIN)


class TestUpdateMask:
    async def test_only_masked_fields_change(self, store: SqlCatalogueStore) -> None:
        """Fields outside the mask keep their stored value whatever the caller sent."""
        current = await store.get_resource(IDENTITY)
        sent = dataclasses.replace(current, summary="新摘要", display_name="不应改变")
        updated = await store.update_resource(sent, update_mask=["summary"], actor=ADMIN)
        assert (updated.summary, updated.display_name) == ("新摘要", current.display_name)

    async def test_no_mask_means_every_mutable_field(self, store: SqlCatalogueStore) -> None:
        """An empty mask, or `*`, replaces every mutable field."""
        current = await store.get_resource(IDENTITY)
        sent = dataclasses.replace(current, summary="甲", update_cycle="每日")
        updated = await store.update_resource(sent, actor=ADMIN)
        assert (updated.summary, updated.update_cycle) == ("甲", "每日")
        sent = dataclasses.replace(updated, summary="乙")
        assert (await store.update_resource(sent, update_mask="*", actor=ADMIN)).summary == "乙"

    @pytest.mark.parametrize(
        ("mask", "message"),
        [
            (["summary", "colour"], "unknown field 'colour'"),
            (["version"], "'version' cannot be updated"),
            (["code"], "'code' cannot be updated"),
            (["etag"], "unknown field 'etag'"),
        ],
    )
    async def test_bad_masks(self, store: SqlCatalogueStore, mask: list[str], message: str) -> None:
        """Unknown fields and output-only or key fields are INVALID_ARGUMENT."""
        current = await store.get_resource(IDENTITY)
        with pytest.raises(InvalidArgument) as raised:
            await store.update_resource(current, update_mask=mask, actor=ADMIN)
        assert ("update_mask", message) in raised.value.violations

    async def test_unchanged_update_records_nothing(self, store: SqlCatalogueStore) -> None:
        """Writing back what is stored keeps the version, the etag and the revision."""
        current = await store.get_resource(IDENTITY)
        revision = await store.revision()
        same = await store.update_resource(current, etag=current.etag, actor=ADMIN)
        assert (same.version, same.etag) == (current.version, current.etag)
        assert await store.revision() == revision


class TestRequestId:
    async def test_retry_returns_the_first_result_once(self, store: SqlCatalogueStore) -> None:
        """The same request id from the same caller is answered from the first call."""
        first = await renamed(store, "一次", actor=ADMIN, request_id="req-1")
        revision = await store.revision()
        again = await renamed(store, "一次", actor=ADMIN, request_id="req-1")
        assert again == first
        assert again.version == first.version
        assert await store.revision() == revision
        events = await store.list_events(filter='request_id = "req-1"')
        assert len(events.items) == 1

    async def test_retry_after_a_later_change_still_answers_the_first(
        self, store: SqlCatalogueStore
    ) -> None:
        """A late retry does not overwrite a newer change made by someone else."""
        first = await renamed(store, "一次", actor=ADMIN, request_id="req-1")
        await renamed(store, "别人改的", actor=OTHER_ADMIN)
        assert await renamed(store, "一次", actor=ADMIN, request_id="req-1") == first
        assert (await store.get_department(MARKET)).display_name == "别人改的"

    async def test_request_ids_are_per_caller(self, store: SqlCatalogueStore) -> None:
        """Another caller's request with the same id is a different request."""
        await renamed(store, "甲", actor=ADMIN, request_id="req-1")
        theirs = await renamed(store, "乙", actor=OTHER_ADMIN, request_id="req-1")
        assert theirs.display_name == "乙"

    async def test_reuse_for_another_request_is_refused(self, store: SqlCatalogueStore) -> None:
        """One id for two different requests is INVALID_ARGUMENT, not a silent replay."""
        await renamed(store, "甲", actor=ADMIN, request_id="req-1")
        with pytest.raises(InvalidArgument) as raised:
            await renamed(store, "乙", actor=ADMIN, request_id="req-1")
        assert raised.value.reason == "REQUEST_ID_REUSED"

    async def test_failed_request_can_be_retried(self, store: SqlCatalogueStore) -> None:
        """A request that failed stored nothing, so its retry runs."""
        current = await store.get_department(MARKET)
        bad = dataclasses.replace(current, region_code="x")
        with pytest.raises(InvalidArgument):
            await store.update_department(bad, actor=ADMIN, request_id="req-1")
        good = dataclasses.replace(current, region_code="330102")
        assert (await store.update_department(good, actor=ADMIN, request_id="req-2")).version == 2

    async def test_actor_is_required(self, store: SqlCatalogueStore) -> None:
        """Every change names who made it."""
        with pytest.raises(InvalidArgument):
            await renamed(store, "甲", actor=" ")


class TestEvents:
    async def test_update_records_before_and_after(self, store: SqlCatalogueStore) -> None:
        """An event names actor, action, target, time, and holds the item before and after."""
        await renamed(store, "市场监管局", actor=ADMIN, request_id="req-9")
        (event,) = (await store.list_events(filter='action = "department.update"')).items
        assert (event.actor, event.target, event.time, event.request_id) == (
            ADMIN,
            f"departments/{MARKET}",
            NOW,
            "req-9",
        )
        assert event.before is not None
        assert event.after is not None
        assert (event.before["display_name"], event.after["display_name"]) == (
            "市市场监督管理局",
            "市场监管局",
        )
        assert (event.before["version"], event.after["version"]) == (1, 2)

    async def test_create_and_delete_events(self, store: SqlCatalogueStore) -> None:
        """A creation has no before; a soft delete has both, the after with delete_time."""
        department = Department("91110108551385082Q", "市大数据局", "330100")
        await store.create_department(department, actor=ADMIN)
        await store.delete_department(department.uscc, actor=ADMIN)
        page = await store.list_events(filter='target = "departments/91110108551385082Q"')
        create, delete = page.items
        assert (create.action, create.before) == ("department.create", None)
        assert delete.action == "department.delete"
        assert delete.after is not None
        assert delete.after["delete_time"] == NOW.isoformat()
        assert delete.after["state"] == DepartmentState.SUSPENDED.value

    async def test_feed_after_a_sequence_number(self, store: SqlCatalogueStore) -> None:
        """events_after pages the log in order for forwarding to the audit log."""
        first = (await store.list_events()).items[-1].seq
        for name in ("甲", "乙", "丙"):
            await renamed(store, name, actor=ADMIN)
        feed = await store.events_after(first, limit=2)
        assert [e.seq for e in feed] == [first + 1, first + 2]
        assert [e.after["display_name"] for e in feed if e.after] == ["甲", "乙"]

    async def test_events_filter_by_time_and_order(self, store: SqlCatalogueStore) -> None:
        """Events compare by time and list newest first on request."""
        await renamed(store, "甲", actor=ADMIN)
        await store.delete_resource(IDENTITY, actor=ADMIN)
        page = await store.list_events(
            filter='time >= "2026-03-02" AND time < "2026-03-03T00:00:00+08:00"',
            order_by="seq desc",
        )
        assert [e.action for e in page.items] == ["resource.delete", "department.update"]


class TestRevision:
    async def test_every_write_bumps_it(self, store: SqlCatalogueStore) -> None:
        """Each committed change moves the revision by one; reads do not."""
        start = await store.revision()
        await renamed(store, "甲", actor=ADMIN)
        await store.get_department(MARKET)
        await store.delete_resource(IDENTITY, actor=ADMIN)
        assert await store.revision() == start + 2
        assert (await store.load()).revision == start + 2

    async def test_failed_writes_do_not(self, store: SqlCatalogueStore) -> None:
        """A refused change leaves the revision where it was."""
        start = await store.revision()
        with pytest.raises(InvalidArgument):
            await renamed(store, "", actor=ADMIN)
        assert await store.revision() == start


def resource(number: int, provider: str, sharing_type: SharingType) -> Resource:
    return Resource(
        code=f"301009/{number:05d}",
        display_name=f"测试资源{number}",
        classification="部门",
        provider=provider,
        summary="",
        format="数据库",
        data_items=(DataItem("a", "甲", "string"),),
        sharing_type=sharing_type,
        sharing_method="接口",
        update_cycle="每日",
        publish_date=f"2025-{number % 12 + 1:02d}-01",
        sharing_condition="仅限测试" if sharing_type is SharingType.CONDITIONAL else "",
        state=ResourceState.PUBLISHED,
    )


@pytest.fixture
async def crowded(store: SqlCatalogueStore) -> SqlCatalogueStore:
    """The seed plus 120 resources of two providers, alternating sharing types."""
    seed = load_builtin_catalogue()
    extra = [
        resource(
            n,
            MARKET if n % 2 else "11330100002482102G",
            SharingType.CONDITIONAL if n % 3 else SharingType.UNCONDITIONAL,
        )
        for n in range(120)
    ]
    await _replace_with_extra_resources(store, seed, extra)
    return store


class TestListing:
    QUERY = f'provider = "departments/{MARKET}" AND sharing_type = CONDITIONAL'

    async def test_filtered_pages_cover_every_match_once(self, crowded: SqlCatalogueStore) -> None:
        """40 matches in pages of 15: 15, 15, 10, in code order, none twice."""
        codes: list[str] = []
        sizes: list[int] = []
        token = ""
        while True:
            page = await crowded.list_resources(filter=self.QUERY, page_size=15, page_token=token)
            assert page.total_size == 40
            sizes.append(len(page.items))
            codes += [r.code for r in page.items]
            token = page.next_page_token
            if not token:
                break
        assert sizes == [15, 15, 10]
        assert codes == sorted(set(codes))

    async def test_token_with_a_changed_filter(self, crowded: SqlCatalogueStore) -> None:
        """A page token is refused with any other filter, order or deleted-visibility."""
        token = (await crowded.list_resources(filter=self.QUERY, page_size=15)).next_page_token
        for changed in (
            {"filter": "sharing_type = CONDITIONAL"},
            {"filter": self.QUERY, "order_by": "publish_date desc"},
            {"filter": self.QUERY, "show_deleted": True},
        ):
            with pytest.raises(InvalidArgument) as raised:
                await crowded.list_resources(page_token=token, **changed)  # type: ignore[arg-type]
            assert raised.value.violations[0][0] == "page_token"
        with pytest.raises(InvalidArgument):
            await crowded.list_departments(page_token=token)

    async def test_order_by_date_then_code(self, store: SqlCatalogueStore) -> None:
        """order_by="publish_date desc" puts the newest first and breaks equal dates by
        ascending code; the filter keeps the boundary day and drops the day before."""
        seed = load_builtin_catalogue()
        # Added out of code order, with two pairs of equal dates; the seed's own
        # resources are all dated before 2025-12-01, so the filter leaves only these.
        dated = {
            4: "2025-12-20",
            7: "2026-02-01",
            3: "2026-01-10",
            6: "2025-12-01",
            1: "2026-01-10",
            5: "2025-11-30",
            2: "2025-12-20",
        }
        extra = [
            dataclasses.replace(resource(n, MARKET, SharingType.UNCONDITIONAL), publish_date=day)
            for n, day in dated.items()
        ]
        await _replace_with_extra_resources(store, seed, extra)
        page = await store.list_resources(
            filter="publish_date >= 2025-12-01", order_by="publish_date desc", page_size=100
        )
        assert [(r.code, r.publish_date) for r in page.items] == [
            ("301009/00007", "2026-02-01"),
            ("301009/00001", "2026-01-10"),
            ("301009/00003", "2026-01-10"),
            ("301009/00002", "2025-12-20"),
            ("301009/00004", "2025-12-20"),
            ("301009/00006", "2025-12-01"),
        ]

    async def test_unknown_field_in_a_store_list(self, crowded: SqlCatalogueStore) -> None:
        """A list with an unknown filter field is INVALID_ARGUMENT."""
        with pytest.raises(InvalidArgument):
            await crowded.list_resources(filter='owner = "x"')


OLD_SCHEMA = """
CREATE TABLE departments (uscc VARCHAR(18) PRIMARY KEY, display_name TEXT NOT NULL,
  region_code VARCHAR(6) NOT NULL, state VARCHAR(16) NOT NULL);
CREATE TABLE grants (grant_id VARCHAR(64) PRIMARY KEY, consumer VARCHAR(18) NOT NULL,
  resource VARCHAR(64) NOT NULL, data_items JSON NOT NULL, matter_codes JSON NOT NULL,
  valid_from DATE NOT NULL, valid_until DATE NOT NULL);
INSERT INTO departments VALUES ('11330100002482101D', '市市场监督管理局', '330100', 'ACTIVE');
INSERT INTO grants VALUES ('g-1', '11330100002482101D', '105001/00001', '["a"]', '["M-1"]',
  '2026-01-01', '2026-12-31');
"""


class TestSchemaUpgrade:
    async def test_older_directory_file_gains_the_new_columns(self, database: Any) -> None:
        """create_schema adds version, delete_time and grant state to an older directory."""
        await database.run_script(OLD_SCHEMA)
        upgraded = database.open()
        try:
            await upgraded.create_schema()
            catalogue = await upgraded.load()
        finally:
            await upgraded.close()
        department = catalogue.departments[MARKET]
        assert (department.version, department.delete_time) == (1, None)
        (grant,) = catalogue.grants
        assert (grant.state.value, grant.application_id) == ("ACTIVE", "")


async def _replace_with_extra_resources(
    store: SqlCatalogueStore, seed: Catalogue, extra: list[Resource]
) -> None:
    """Write `seed` plus `extra` resources as the whole directory."""
    await store.replace(
        Catalogue.build(
            seed.departments.values(),
            [*seed.resources.values(), *extra],
            seed.certificate_types.values(),
            seed.grants,
            seed.matters.values(),
        )
    )
