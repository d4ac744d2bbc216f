"""Catalogue updates that must not strand what depends on them: applications follow
their resource to a new provider, data items in use stay, and a certificate type's
name (its type code) cannot be taken over by another type's key. On SQLite and
PostgreSQL (tests/directory/conftest.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from govshare.directory import (
    ApplicationRequest,
    ApplicationState,
    CertificateType,
    FailedPrecondition,
    InvalidArgument,
    SharingApplication,
    SqlCatalogueStore,
)

ADMIN = "admin/ops"
HOUSING = "113301000024821070"
CIVIL_AFFAIRS = "11330100002482103K"  # provides MARRIAGE in the seed
LAND_REGISTRY = "11330100002482106W"
MARRIAGE = "101002/00001"
IDENTITY = "101001/00001"
LICENCE = "105001/00001"
REAL_ESTATE = "105002/00001"
TAX = "105003/00001"
MARRIAGE_TYPE_CODE = "11330100002482103K001"  # marriage_record's type code


async def _apply(store: SqlCatalogueStore, application_id: str) -> SharingApplication:
    return await store.create_application(
        ApplicationRequest(
            consumer=HOUSING,
            resource=MARRIAGE,
            data_items=("marital_status",),
            matter_codes=("330100-ZF-0003",),
            purpose="公租房资格审核核验婚姻状况",
            legal_basis="",
            valid_from=dt.date(2026, 3, 1),
            valid_until=dt.date(2026, 12, 31),
        ),
        application_id=application_id,
        actor=f"dept/{HOUSING}",
    )


async def _move(store: SqlCatalogueStore, code: str, provider: str, **changes: object) -> None:
    resource = await store.get_resource(code)
    await store.update_resource(
        dataclasses.replace(resource, provider=provider, **changes),  # type: ignore[arg-type]
        update_mask=["provider", *changes],
        actor=ADMIN,
        request_id=f"move-{code}-{provider}",
    )


async def _without(store: SqlCatalogueStore, code: str, *names: str) -> None:
    resource = await store.get_resource(code)
    kept = tuple(item for item in resource.data_items if item.name not in names)
    await store.update_resource(
        dataclasses.replace(resource, data_items=kept), update_mask=["data_items"], actor=ADMIN
    )


class TestApplicationsFollowTheirResource:
    async def test_a_new_provider_takes_over_applied_and_approved_applications(
        self, store: SqlCatalogueStore
    ) -> None:
        """Moving a resource re-points its APPLIED and APPROVED applications at the new
        provider, so it alone decides and revokes them; a REJECTED one keeps the provider
        it was decided under."""
        await _apply(store, "waiting")
        await _apply(store, "granted")
        await store.approve_application("granted", actor=f"dept/{CIVIL_AFFAIRS}")
        await _apply(store, "refused")
        await store.reject_application("refused", reason="用途不明", actor=ADMIN)
        await _move(store, MARRIAGE, LAND_REGISTRY)
        providers = {
            a.application_id: (a.state, a.provider) for a in (await store.list_applications()).items
        }
        assert providers == {
            "waiting": (ApplicationState.APPLIED, LAND_REGISTRY),
            "granted": (ApplicationState.APPROVED, LAND_REGISTRY),
            "refused": (ApplicationState.REJECTED, CIVIL_AFFAIRS),
        }
        # A provider's filter (its work list) follows the move too.
        mine = await store.list_applications(filter=f'provider = "departments/{LAND_REGISTRY}"')
        assert sorted(a.application_id for a in mine.items) == ["granted", "waiting"]

    async def test_overdue_work_is_counted_for_the_new_provider(
        self, store: SqlCatalogueStore, seeded: Any
    ) -> None:
        """电子监察 counts an undecided application against the department that must
        decide it now; the due date does not restart with the move."""
        await _apply(store, "waiting")
        await _move(store, MARRIAGE, LAND_REGISTRY)
        later = seeded.open(clock=lambda: dt.datetime(2026, 5, 1, 1, 0, tzinfo=dt.UTC))
        try:
            assert await later.count_overdue(provider=LAND_REGISTRY) == 1
            assert await later.count_overdue(provider=CIVIL_AFFAIRS) == 0
        finally:
            await later.close()

    async def test_each_moved_application_is_an_event_of_the_same_write(
        self, store: SqlCatalogueStore
    ) -> None:
        """The audit trail says who moved which application from whom to whom, under the
        resource update's actor and request id, and the due date is unchanged."""
        before = await _apply(store, "waiting")
        await _move(store, MARRIAGE, LAND_REGISTRY)
        events = (await store.list_events(filter='action = "application.reassign"')).items
        assert [(e.target, e.actor, e.request_id) for e in events] == [
            ("sharingApplications/waiting", ADMIN, f"move-{MARRIAGE}-{LAND_REGISTRY}")
        ]
        event = events[0]
        assert event.before is not None
        assert event.after is not None
        assert (event.before["provider"], event.after["provider"]) == (CIVIL_AFFAIRS, LAND_REGISTRY)
        after = await store.get_application("waiting")
        assert after.due_date == before.due_date
        assert after.etag != before.etag

    async def test_an_update_that_keeps_the_provider_moves_nothing(
        self, store: SqlCatalogueStore
    ) -> None:
        """Only a provider change re-points applications."""
        before = await _apply(store, "waiting")
        resource = await store.get_resource(MARRIAGE)
        await store.update_resource(
            dataclasses.replace(resource, summary="婚姻登记信息(更新)"),
            update_mask=["summary"],
            actor=ADMIN,
        )
        assert await store.get_application("waiting") == before
        assert not (await store.list_events(filter='action = "application.reassign"')).items

    async def test_a_refused_move_moves_no_application(self, store: SqlCatalogueStore) -> None:
        """The applications move in the resource's transaction: a move refused for
        anything (here a data item an ACTIVE grant uses) leaves them where they were."""
        before = await _apply(store, "waiting")
        revision = await store.revision()
        resource = await store.get_resource(MARRIAGE)
        kept = tuple(item for item in resource.data_items if item.name != "spouse_name")
        with pytest.raises(FailedPrecondition):
            await store.update_resource(
                dataclasses.replace(resource, provider=LAND_REGISTRY, data_items=kept),
                update_mask=["provider", "data_items"],
                actor=ADMIN,
            )
        assert await store.get_application("waiting") == before
        assert (await store.get_resource(MARRIAGE)).provider == CIVIL_AFFAIRS
        assert await store.revision() == revision

    async def test_a_retried_move_replays_without_moving_twice(
        self, store: SqlCatalogueStore
    ) -> None:
        """The same request id answers from the first result: one event per application."""
        await _apply(store, "waiting")
        await _move(store, MARRIAGE, LAND_REGISTRY)
        await _move(store, MARRIAGE, LAND_REGISTRY)
        events = (await store.list_events(filter='action = "application.reassign"')).items
        assert len(events) == 1


class TestDataItemsInUse:
    async def test_an_item_an_active_grant_and_a_matter_use_is_kept(
        self, store: SqlCatalogueStore
    ) -> None:
        """Dropping `area` (granted by g-bdc-realestate, narrowed to by matter
        330100-ZF-0003) is FAILED_PRECONDITION naming both; nothing is written."""
        before = await store.get_resource(REAL_ESTATE)
        revision = await store.revision()
        with pytest.raises(FailedPrecondition) as raised:
            await _without(store, REAL_ESTATE, "area")
        assert raised.value.reason == "DATA_ITEMS_IN_USE"
        assert raised.value.metadata == {
            "name": f"resources/{REAL_ESTATE}",
            "data_items": "area",
            "grants": "g-bdc-realestate",
            "matters": "330100-ZF-0003",
        }
        assert "g-bdc-realestate" in raised.value.message
        assert "330100-ZF-0003" in raised.value.message
        assert await store.get_resource(REAL_ESTATE) == before
        assert await store.revision() == revision

    async def test_a_matter_alone_keeps_an_item_until_it_is_deleted(
        self, store: SqlCatalogueStore
    ) -> None:
        """With its grant revoked, `area` is still narrowed to by a live matter; once
        that matter is deleted (history, like a revoked grant) the item may go."""
        await store.revoke_grant("g-bdc-realestate", actor=ADMIN)
        with pytest.raises(FailedPrecondition) as raised:
            await _without(store, REAL_ESTATE, "area")
        assert raised.value.metadata.get("matters") == "330100-ZF-0003"
        assert "grants" not in raised.value.metadata
        await store.delete_matter("330100-ZF-0003", actor=ADMIN)
        await _without(store, REAL_ESTATE, "area")
        assert "area" not in (await store.get_resource(REAL_ESTATE)).data_item_names

    async def test_a_matter_taking_the_item_through_a_certificate_type_keeps_it(
        self, store: SqlCatalogueStore
    ) -> None:
        """330100-ZF-0003 narrows identity_record (a type on 101001/00001) to citizen_id
        and name: those stay in the resource while the matter needs them."""
        await store.revoke_grant("g-bdc-identity", actor=ADMIN)
        await store.revoke_grant("g-zf-identity", actor=ADMIN)
        with pytest.raises(FailedPrecondition) as raised:
            await _without(store, IDENTITY, "name")
        assert raised.value.metadata["matters"] == "330100-ZF-0003"

    async def test_items_no_live_user_needs_may_go(self, store: SqlCatalogueStore) -> None:
        """An item nothing uses, or only a REVOKED grant, is removed as before."""
        await _without(store, IDENTITY, "ethnicity")
        await store.revoke_grant("g-bdc-tax", actor=ADMIN)
        await _without(store, TAX, "issue_date")
        assert "issue_date" not in (await store.get_resource(TAX)).data_item_names

    async def test_a_certificate_type_cannot_move_away_from_its_matters_items(
        self, store: SqlCatalogueStore
    ) -> None:
        """Repointing identity_record at the business licence resource (no citizen_id,
        no name) would leave 330100-ZF-0003's material unresolvable: refused."""
        ctype = await store.get_certificate_type("identity_record")
        with pytest.raises(FailedPrecondition) as raised:
            await store.update_certificate_type(
                dataclasses.replace(ctype, resource=LICENCE),
                update_mask=["resource"],
                actor=ADMIN,
            )
        assert raised.value.reason == "DATA_ITEMS_IN_USE"
        assert raised.value.metadata == {
            "name": "certificateTypes/11330100002482102G001",
            "data_items": "citizen_id,name",
            "matters": "330100-ZF-0003",
        }
        assert (await store.get_certificate_type("identity_record")).resource == IDENTITY

    async def test_a_certificate_type_may_move_to_a_resource_with_the_items(
        self, store: SqlCatalogueStore
    ) -> None:
        """marriage_record's matters take it whole (no narrowing): it may move."""
        ctype = await store.get_certificate_type("marriage_record")
        moved = await store.update_certificate_type(
            dataclasses.replace(ctype, resource=IDENTITY), update_mask=["resource"], actor=ADMIN
        )
        assert moved.resource == IDENTITY


class TestTypeCodeNames:
    @pytest.mark.parametrize(
        "key",
        [
            MARRIAGE_TYPE_CODE,  # another type's code
            "91110108551385082Q001",  # no type's code yet, but one could be created
            "91110108551385082A001",  # a USCC's shape with a wrong check character
        ],
    )
    async def test_a_key_shaped_like_a_type_code_is_refused(
        self, store: SqlCatalogueStore, key: str
    ) -> None:
        """`certificateTypes/{name}` resolves type codes first: such a key could only
        ever name some other type, so it is INVALID_ARGUMENT on the key."""
        with pytest.raises(InvalidArgument) as raised:
            await store.create_certificate_type(
                CertificateType(
                    key=key,
                    type_code="11330100002482105R002",
                    display_name="完税证明(新版)",
                    holder_id_type="111",
                    issuer="11330100002482105R",
                    resource=TAX,
                ),
                actor=ADMIN,
            )
        assert [field for field, _ in raised.value.violations] == ["key"]

    async def test_keys_of_other_shapes_are_accepted(self, store: SqlCatalogueStore) -> None:
        """Lower case, other lengths or letters a USCC never has are not type codes."""
        for number, key in enumerate(
            ("11330100002482103k001", "TAX_2026", "1133010000248210OK001")
        ):
            created = await store.create_certificate_type(
                CertificateType(
                    key=key,
                    type_code=f"11330100002482105R10{number}",
                    display_name="完税证明(新版)",
                    holder_id_type="111",
                    issuer="11330100002482105R",
                    resource=TAX,
                ),
                actor=ADMIN,
            )
            assert created.key == key

    async def test_a_type_code_names_its_own_type_before_any_key(
        self, store: SqlCatalogueStore
    ) -> None:
        """A type stored before keys were checked, keyed with marriage_record's type
        code, does not take that name: the store and the snapshot resolve the code."""
        catalogue = await store.load()
        shadow = CertificateType(
            key=MARRIAGE_TYPE_CODE,
            type_code="11330100002482105R002",
            display_name="完税证明(新版)",
            holder_id_type="111",
            issuer="11330100002482105R",
            resource=TAX,
        )
        await store.replace(
            dataclasses.replace(
                catalogue, certificate_types={**catalogue.certificate_types, shadow.key: shadow}
            )
        )
        assert (await store.get_certificate_type(MARRIAGE_TYPE_CODE)).key == "marriage_record"
        loaded = await store.load()
        found = loaded.certificate_type(MARRIAGE_TYPE_CODE)
        assert found is not None
        assert found.key == "marriage_record"
        # The shadowing type is still reached by its own name, and a key still resolves.
        assert (await store.get_certificate_type("11330100002482105R002")).key == shadow.key
        by_key = loaded.certificate_type("marriage_record")
        assert by_key is not None
        assert by_key.type_code == MARRIAGE_TYPE_CODE


class TestRowsNamingADeletedDepartment:
    async def test_a_resource_of_a_deleted_provider_stays_writable(
        self, store: SqlCatalogueStore
    ) -> None:
        """DeleteDepartment leaves its resources naming it: an update of one that keeps
        the provider is accepted (as on import), moving another resource to the deleted
        department is refused."""
        await store.delete_department(CIVIL_AFFAIRS, actor=ADMIN)
        resource = await store.get_resource(MARRIAGE)
        updated = await store.update_resource(
            dataclasses.replace(resource, summary="婚姻登记信息（已调整）"),
            update_mask=["summary"],
            actor=ADMIN,
        )
        assert (updated.provider, updated.summary) == (CIVIL_AFFAIRS, "婚姻登记信息（已调整）")
        with pytest.raises(InvalidArgument, match="is a deleted department"):
            await _move(store, TAX, CIVIL_AFFAIRS)
