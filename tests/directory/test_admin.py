"""Catalogue administration: creating items, resource codes and lifecycle,
validation, soft delete, matters, and what the gateway snapshot then serves."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from govshare.directory import (
    AlreadyExists,
    CertificateType,
    DataItem,
    Department,
    DepartmentState,
    FailedPrecondition,
    InvalidArgument,
    InvalidTransition,
    Material,
    MaterialSource,
    Matter,
    NotFound,
    Resource,
    ResourceState,
    SharingType,
    SqlCatalogueStore,
    classification_label,
    export_catalogue_yaml,
    import_catalogue_yaml,
    is_valid_classification_code,
    next_resource_code,
)

ADMIN = "admin/ops"
MARKET = "11330100002482101D"
PUBLIC_SECURITY = "11330100002482102G"
NEW_DEPARTMENT = "91110108551385082Q"
LICENCE = "105001/00001"
IDENTITY = "101001/00001"
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def draft(code: str = "", **changes: object) -> Resource:
    """A valid CONDITIONAL draft of the market regulator; tests change one thing."""
    base = Resource(
        code=code,
        display_name="个体工商户登记信息",
        classification="",
        provider=MARKET,
        summary="个体工商户登记照面信息",
        format="服务接口",
        data_items=(DataItem("uscc", "统一社会信用代码", "string"),),
        sharing_type=SharingType.CONDITIONAL,
        sharing_method="接口",
        update_cycle="实时",
        publish_date="",
        sharing_condition="仅限办理登记类事项",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


class TestDepartments:
    async def test_create_and_get(self, store: SqlCatalogueStore) -> None:
        """A department with a valid USCC is created at version 1 and can be read back."""
        created = await store.create_department(
            Department(NEW_DEPARTMENT, "市数据资源管理局", "330100"), actor=ADMIN
        )
        assert (created.version, created.state, created.delete_time) == (
            1,
            DepartmentState.ACTIVE,
            None,
        )
        assert await store.get_department(NEW_DEPARTMENT) == created
        assert created.etag

    async def test_invalid_uscc_and_fields(self, store: SqlCatalogueStore) -> None:
        """A wrong check character, an empty name and a bad region are all reported."""
        with pytest.raises(InvalidArgument) as raised:
            await store.create_department(
                Department("91110108551385082A", " ", "33010"), actor=ADMIN
            )
        assert [f for f, _ in raised.value.violations] == ["uscc", "display_name", "region_code"]

    async def test_duplicate(self, store: SqlCatalogueStore) -> None:
        """Creating an existing USCC again is AlreadyExists."""
        with pytest.raises(AlreadyExists):
            await store.create_department(Department(MARKET, "重复", "330100"), actor=ADMIN)

    async def test_unknown_is_not_found(self, store: SqlCatalogueStore) -> None:
        """Reading a department that never existed is NotFound, naming it."""
        with pytest.raises(NotFound) as raised:
            await store.get_department(NEW_DEPARTMENT)
        assert raised.value.metadata == {"name": f"departments/{NEW_DEPARTMENT}"}

    async def test_suspension_reaches_the_snapshot(self, store: SqlCatalogueStore) -> None:
        """Suspending a department shows in the next snapshot the gateway loads."""
        current = await store.get_department(MARKET)
        suspended = dataclasses.replace(current, state=DepartmentState.SUSPENDED)
        await store.update_department(suspended, update_mask=["state"], actor=ADMIN)
        catalogue = await store.load()
        assert catalogue.departments[MARKET].state is DepartmentState.SUSPENDED


class TestResourceCodes:
    def test_next_code_follows_the_highest_sequence(self) -> None:
        """105001/00002 follows 105001/00001; gaps are not reused; other prefixes are ignored."""
        assert next_resource_code("105001", []) == "105001/00001"
        assert next_resource_code("105001", ["105001/00001"]) == "105001/00002"
        existing = ["105001/00001", "105001/00007", "1050011/00009", "105002/00042", "x"]
        assert next_resource_code("105001", existing) == "105001/00008"

    def test_sub_category_digits(self) -> None:
        """A 细目 extends the classification; its sequence is separate."""
        assert next_resource_code("10500101", ["105001/00003"]) == "10500101/00001"

    @pytest.mark.parametrize("code", ["105001", "2010010", "399999123"])
    def test_valid_classification_codes(self, code: str) -> None:
        """Class 1-3, two item digits, three category digits, optional digits."""
        assert is_valid_classification_code(code)

    @pytest.mark.parametrize("code", ["", "405001", "10500", "1050a1", "105001/"])
    def test_invalid_classification_codes(self, code: str) -> None:
        """Class 4, too short, letters or a slash are refused."""
        assert not is_valid_classification_code(code)
        with pytest.raises(InvalidArgument):
            next_resource_code(code, [])

    def test_labels(self) -> None:
        """The class digit names 基础, 主题 or 部门."""
        assert [classification_label(c) for c in ("101001", "201001", "301001", "x")] == [
            "基础",
            "主题",
            "部门",
            "",
        ]

    def test_exhausted_sequence(self) -> None:
        """After 99999 there is no five-digit sequence left."""
        with pytest.raises(FailedPrecondition):
            next_resource_code("105001", ["105001/99999"])

    async def test_store_generates_the_next_code(self, store: SqlCatalogueStore) -> None:
        """An empty code gets the next sequence under its classification, which labels it."""
        first = await store.create_resource(draft(), classification_code="105001", actor=ADMIN)
        second = await store.create_resource(
            draft(display_name="另一个"), classification_code="105001", actor=ADMIN
        )
        assert (first.code, second.code) == ("105001/00002", "105001/00003")
        assert first.classification == "基础"

    async def test_code_or_classification_required(self, store: SqlCatalogueStore) -> None:
        """Without a code or a classification code there is nothing to name the resource."""
        with pytest.raises(InvalidArgument):
            await store.create_resource(draft(), actor=ADMIN)
        with pytest.raises(InvalidArgument):
            await store.create_resource(
                draft("105002/00009"), classification_code="105001", actor=ADMIN
            )


class TestResourceLifecycle:
    async def test_created_as_draft(self, store: SqlCatalogueStore) -> None:
        """A new resource is a DRAFT whatever state the caller sent, and is not shared."""
        created = await store.create_resource(
            draft("301002/00001", state=ResourceState.PUBLISHED), actor=ADMIN
        )
        assert created.state is ResourceState.DRAFT
        assert (await store.load()).resources["301002/00001"].state is ResourceState.DRAFT

    async def test_draft_published_retired(self, store: SqlCatalogueStore) -> None:
        """Publishing sets today's publish date; retiring follows; each bumps the version."""
        created = await store.create_resource(draft("301002/00001"), actor=ADMIN)
        published = await store.publish_resource(created.code, etag=created.etag, actor=ADMIN)
        assert (published.state, published.publish_date, published.version) == (
            ResourceState.PUBLISHED,
            "2026-03-02",
            2,
        )
        retired = await store.retire_resource(created.code, etag=published.etag, actor=ADMIN)
        assert (retired.state, retired.version) == (ResourceState.RETIRED, 3)
        actions = [
            e.action
            for e in (await store.list_events(filter='target = "resources/301002/00001"')).items
        ]
        assert actions == ["resource.create", "resource.publish", "resource.retire"]

    @pytest.mark.parametrize(
        ("start", "target"),
        [
            (ResourceState.DRAFT, ResourceState.RETIRED),
            (ResourceState.PUBLISHED, ResourceState.DRAFT),
            (ResourceState.RETIRED, ResourceState.PUBLISHED),
            (ResourceState.RETIRED, ResourceState.DRAFT),
        ],
    )
    async def test_other_moves_are_refused(
        self, store: SqlCatalogueStore, start: ResourceState, target: ResourceState
    ) -> None:
        """Only DRAFT → PUBLISHED → RETIRED; anything else is InvalidTransition."""
        code = "301002/00001"
        await store.create_resource(draft(code), actor=ADMIN)
        if start is not ResourceState.DRAFT:
            await store.publish_resource(code, actor=ADMIN)
        if start is ResourceState.RETIRED:
            await store.retire_resource(code, actor=ADMIN)
        current = await store.get_resource(code)
        with pytest.raises(InvalidTransition) as raised:
            await store.update_resource(
                dataclasses.replace(current, state=target), update_mask="state", actor=ADMIN
            )
        assert raised.value.metadata == {"from": start.value, "to": target.value}
        assert (await store.get_resource(code)).state is start

    async def test_publishing_twice_is_a_no_op(self, store: SqlCatalogueStore) -> None:
        """Publishing a PUBLISHED resource changes nothing and records nothing."""
        before = await store.revision()
        same = await store.publish_resource(LICENCE, actor=ADMIN)
        assert same.version == 1
        assert await store.revision() == before

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"sharing_condition": ""}, "sharing_condition"),
            ({"sharing_type": SharingType.NOT_SHARED}, "legal_basis"),
            ({"publish_date": "2026/03/01"}, "publish_date"),
            ({"publish_date": "20260301"}, "publish_date"),
            ({"code": "资源/1"}, "code"),
            ({"data_items": (DataItem("a", "甲", "text"),)}, "data_items[0].data_type"),
            ({"provider": NEW_DEPARTMENT}, "provider"),
        ],
    )
    async def test_sharing_rules(
        self, store: SqlCatalogueStore, changes: dict[str, object], field: str
    ) -> None:
        """Condition, legal basis, YYYY-MM-DD, code alphabet, data types, known provider."""
        with pytest.raises(InvalidArgument) as raised:
            await store.create_resource(draft(**{"code": "301002/00001", **changes}), actor=ADMIN)
        assert field in [f for f, _ in raised.value.violations]

    async def test_publishing_needs_data_items(self, store: SqlCatalogueStore) -> None:
        """A draft may have no data items yet, but cannot be published without them."""
        created = await store.create_resource(draft("301002/00001", data_items=()), actor=ADMIN)
        with pytest.raises(InvalidArgument) as raised:
            await store.publish_resource(created.code, actor=ADMIN)
        assert raised.value.violations == [("data_items", "a PUBLISHED resource needs data items")]

    async def test_publishing_needs_the_core_metadata(self, store: SqlCatalogueStore) -> None:
        """A draft may lack summary, format, sharing method, update cycle and classification;
        publishing it names every one that is missing and leaves it a DRAFT."""
        bare = draft(
            "1x/1",  # no 分类码, so no classification can be derived from the code
            summary="",
            format="",
            sharing_method="",
            update_cycle=" ",
        )
        created = await store.create_resource(bare, actor=ADMIN)
        with pytest.raises(InvalidArgument) as raised:
            await store.publish_resource(created.code, actor=ADMIN)
        assert [f for f, _ in raised.value.violations] == [
            "classification",
            "summary",
            "format",
            "sharing_method",
            "update_cycle",
        ]
        assert (await store.get_resource(created.code)).state is ResourceState.DRAFT

    async def test_a_row_published_before_the_rule_stays_writable(
        self, store: SqlCatalogueStore
    ) -> None:
        """A PUBLISHED row stored without a format (written before the core-metadata rule)
        can still be renamed and retired, and re-imported from an export; clearing a field
        it has is still refused."""
        catalogue = await store.load()
        legacy = dataclasses.replace(catalogue.resources[IDENTITY], format="")
        await store.replace(
            dataclasses.replace(catalogue, resources={**catalogue.resources, IDENTITY: legacy})
        )
        renamed = await store.update_resource(
            dataclasses.replace(legacy, display_name="居民身份信息（旧）"),
            update_mask=["display_name"],
            actor=ADMIN,
        )
        assert (renamed.display_name, renamed.format) == ("居民身份信息（旧）", "")
        with pytest.raises(InvalidArgument) as cleared:
            await store.update_resource(
                dataclasses.replace(renamed, summary=""), update_mask=["summary"], actor=ADMIN
            )
        assert cleared.value.violations == [("summary", "a PUBLISHED resource needs a summary")]
        exported = await export_catalogue_yaml(store)
        await import_catalogue_yaml(exported, store, ADMIN)
        retired = await store.retire_resource(IDENTITY, actor=ADMIN)
        assert retired.state is ResourceState.RETIRED

    async def test_a_chosen_code_names_the_classification(self, store: SqlCatalogueStore) -> None:
        """A draft created under a 分类码/NNNNN code without a classification gets the class's."""
        created = await store.create_resource(draft("201003/00007"), actor=ADMIN)
        assert created.classification == "主题"
        published = await store.publish_resource(created.code, actor=ADMIN)
        assert published.state is ResourceState.PUBLISHED


class TestSoftDelete:
    async def test_deleted_department_is_suspended_and_readable(
        self, store: SqlCatalogueStore
    ) -> None:
        """A deleted department stays readable, SUSPENDED, and out of default lists."""
        deleted = await store.delete_department(MARKET, actor=ADMIN)
        assert (deleted.state, deleted.delete_time) == (DepartmentState.SUSPENDED, NOW)
        assert (await store.get_department(MARKET)).deleted
        listed = await store.list_departments()
        assert MARKET not in [d.uscc for d in listed.items]
        with_deleted = await store.list_departments(show_deleted=True)
        assert MARKET in [d.uscc for d in with_deleted.items]
        assert (await store.load()).departments[MARKET].state is DepartmentState.SUSPENDED

    async def test_deleted_items_cannot_be_changed(self, store: SqlCatalogueStore) -> None:
        """Updating or deleting again a deleted item is FailedPrecondition."""
        deleted = await store.delete_department(MARKET, actor=ADMIN)
        with pytest.raises(FailedPrecondition):
            await store.update_department(deleted, actor=ADMIN)
        with pytest.raises(FailedPrecondition):
            await store.delete_department(MARKET, actor=ADMIN)

    async def test_deleting_a_published_resource_retires_it(self, store: SqlCatalogueStore) -> None:
        """A deleted resource is RETIRED, so the gateway no longer shares it."""
        deleted = await store.delete_resource(LICENCE, actor=ADMIN)
        assert (deleted.state, deleted.deleted) == (ResourceState.RETIRED, True)
        assert (await store.load()).resources[LICENCE].state is ResourceState.RETIRED

    async def test_deleted_certificate_type_is_not_looked_up(
        self, store: SqlCatalogueStore
    ) -> None:
        """The snapshot keeps a deleted certificate type but certificate_type() skips it."""
        await store.delete_certificate_type("business_licence", actor=ADMIN)
        catalogue = await store.load()
        assert "business_licence" in catalogue.certificate_types
        assert catalogue.certificate_type("business_licence") is None
        assert catalogue.certificate_type("11330100002482101D001") is None
        kept = await store.get_certificate_type("11330100002482101D001")
        assert kept.deleted


class TestCertificateTypes:
    async def test_create_checks_references_and_code(self, store: SqlCatalogueStore) -> None:
        """Unknown resource, unknown issuer and a type code in use are all reported."""
        bad = CertificateType(
            "new_licence", "11330100002482101D001", "新证照", "001", NEW_DEPARTMENT, "999999/00001"
        )
        with pytest.raises(InvalidArgument) as raised:
            await store.create_certificate_type(bad, actor=ADMIN)
        assert sorted(f for f, _ in raised.value.violations) == ["issuer", "resource", "type_code"]

    async def test_no_new_type_on_a_deleted_resource(self, store: SqlCatalogueStore) -> None:
        """Creating a certificate type for a deleted resource is refused; existing ones stay."""
        await store.delete_resource(IDENTITY, actor=ADMIN)
        new = CertificateType(
            "household_record", "11330100002482102G002", "户口簿", "111", PUBLIC_SECURITY, IDENTITY
        )
        with pytest.raises(InvalidArgument) as raised:
            await store.create_certificate_type(new, actor=ADMIN)
        assert raised.value.violations == [("resource", "the resource is deleted")]
        assert not (await store.get_certificate_type("identity_record")).deleted

    async def test_get_by_key_or_type_code(self, store: SqlCatalogueStore) -> None:
        """A certificate type is found by its key and by its 21-character code."""
        by_key = await store.get_certificate_type("identity_record")
        assert await store.get_certificate_type("11330100002482102G001") == by_key
        with pytest.raises(NotFound):
            await store.get_certificate_type("11330100002482102G002")


class TestMatters:
    def matter(self, *materials: Material) -> Matter:
        return Matter("330100-GT-0001", "个体工商户变更登记", materials)

    async def test_create_with_materials(self, store: SqlCatalogueStore) -> None:
        """A matter maps materials to certificate types, resources or the applicant."""
        created = await store.create_matter(
            self.matter(
                Material("营业执照", MaterialSource.CERTIFICATE_TYPE, "business_licence"),
                Material("身份信息", MaterialSource.RESOURCE, IDENTITY, ("name",)),
                Material("变更申请书", MaterialSource.APPLICANT_SUBMITS),
            ),
            actor=ADMIN,
        )
        assert (await store.load()).matter("330100-GT-0001") == created
        assert (await store.get_matter("330100-GT-0001")).materials[1].data_items == ("name",)

    async def test_material_sources_are_checked(self, store: SqlCatalogueStore) -> None:
        """Unknown certificate types, items not in the resource and sourced submissions fail."""
        with pytest.raises(InvalidArgument) as raised:
            await store.create_matter(
                self.matter(
                    Material("a", MaterialSource.CERTIFICATE_TYPE, "no_such_type"),
                    Material("b", MaterialSource.RESOURCE, IDENTITY, ("salary",)),
                    Material("c", MaterialSource.APPLICANT_SUBMITS, IDENTITY),
                    Material("d", MaterialSource.RESOURCE),
                ),
                actor=ADMIN,
            )
        assert sorted(f for f, _ in raised.value.violations) == [
            "materials[0].source_key",
            "materials[1].data_items",
            "materials[2].source_key",
            "materials[3].source_key",
        ]

    async def test_seed_matters_are_loaded(self, store: SqlCatalogueStore) -> None:
        """The seed ships three matters; deleting one hides it from Catalogue.matter."""
        assert len((await store.list_matters()).items) == 4
        await store.delete_matter("330100-BDC-0002", actor=ADMIN)
        catalogue = await store.load()
        assert catalogue.matter("330100-BDC-0002") is None
        assert catalogue.matter("330100-BDC-0001") is not None
