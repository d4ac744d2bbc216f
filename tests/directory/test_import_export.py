"""Catalogue export and import (YAML), and resource lists from spreadsheets (CSV):
all or nothing, every bad row named by its line, idempotent."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import yaml
from govshare.directory import (
    ApplicationRequest,
    Catalogue,
    GrantState,
    ResourceState,
    SharingType,
    SqlCatalogueStore,
    dump_catalogue_yaml,
    export_catalogue_yaml,
    import_catalogue_yaml,
    import_resources_csv,
    load_builtin_catalogue,
    parse_catalogue,
)
from support import line_of, rejected

ADMIN = "admin/ops"
MARKET = "11330100002482101D"
NEW_DEPARTMENT = "91110108551385082Q"
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def builtin() -> Catalogue:
    return load_builtin_catalogue()


class TestExport:
    def test_export_parses_back_to_the_same_catalogue(self, builtin: Catalogue) -> None:
        """The export is the seed format: parsing it gives the catalogue it came from."""
        text = dump_catalogue_yaml(builtin)
        assert parse_catalogue(text) == builtin
        assert list(yaml.safe_load(text)) == [
            "departments",
            "resources",
            "certificate_types",
            "matters",
            "grants",
        ]

    async def test_store_export_matches_the_snapshot(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """Exporting a store exports its current directory, with grants and their states."""
        await store.revoke_grant("g-bdc-marriage", actor=ADMIN)
        document = yaml.safe_load(await export_catalogue_yaml(store))
        states = {g["id"]: g["state"] for g in document["grants"]}
        assert states["g-bdc-marriage"] == "REVOKED"
        assert len(document["resources"]) == len(builtin.resources)

    async def test_applications_are_not_exported(self, store: SqlCatalogueStore) -> None:
        """Applications are workflow, not catalogue: the export leaves them out."""
        await store.create_application(
            ApplicationRequest(
                "113301000024821070",
                "101002/00001",
                ("marital_status",),
                ("330100-ZF-0003",),
                "独一无二的申请事由",
                "",
                dt.date(2026, 3, 1),
                dt.date(2026, 12, 31),
            ),
            actor="dept/113301000024821070",
        )
        text = await export_catalogue_yaml(store)
        assert "applications" not in yaml.safe_load(text)
        assert "独一无二的申请事由" not in text


class TestYamlImport:
    async def test_import_into_an_empty_directory(
        self, empty: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """Importing the export into an empty store reproduces the catalogue, one event per item."""
        report = await import_catalogue_yaml(dump_catalogue_yaml(builtin), empty, ADMIN)
        assert report.created == {
            "departments": 8,
            "resources": 6,
            "certificate_types": 6,
            "matters": 4,
            "grants": 6,
        }
        assert await empty.load() == builtin
        assert await empty.revision() == 1
        events = await empty.list_events(page_size=100)
        assert len(events.items) == 30
        assert {e.actor for e in events.items} == {ADMIN}

    async def test_importing_twice_changes_nothing(
        self, empty: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """The second import of the same file writes nothing: no event, same revision."""
        text = dump_catalogue_yaml(builtin)
        await import_catalogue_yaml(text, empty, ADMIN)
        revision = await empty.revision()
        report = await import_catalogue_yaml(text, empty, ADMIN)
        assert not report.changed
        assert sum(report.unchanged.values()) == 30
        assert await empty.revision() == revision
        assert len((await empty.list_events(page_size=100)).items) == 30

    async def test_changed_row_updates_one_item(
        self, store: SqlCatalogueStore, builtin: Catalogue
    ) -> None:
        """One changed resource is updated, its version bumped, before and after recorded."""
        text = dump_catalogue_yaml(builtin).replace("常住人口居民身份基本信息", "居民身份基本信息")
        report = await import_catalogue_yaml(text, store, ADMIN)
        assert (report.updated["resources"], sum(report.updated.values())) == (1, 1)
        resource = await store.get_resource("101001/00001")
        assert (resource.summary, resource.version) == ("居民身份基本信息", 2)
        (event,) = (await store.list_events(filter='action = "resource.import"')).items
        assert event.before is not None
        assert event.after is not None
        assert (event.before["summary"], event.after["summary"]) == (
            "常住人口居民身份基本信息",
            "居民身份基本信息",
        )

    async def test_items_missing_from_the_file_stay(self, store: SqlCatalogueStore) -> None:
        """A partial file adds what it holds and deletes nothing."""
        text = f"departments:\n  - {{uscc: {NEW_DEPARTMENT}, display_name: 市大数据局}}\n"
        report = await import_catalogue_yaml(text, store, ADMIN)
        assert report.created["departments"] == 1
        catalogue = await store.load()
        assert len(catalogue.departments) == 9
        assert len(catalogue.resources) == 6

    async def test_every_bad_row_is_reported_by_line(self, store: SqlCatalogueStore) -> None:
        """Four bad rows give four problems with their lines, and nothing is imported."""
        text = f"""\
departments:
  - uscc: {NEW_DEPARTMENT}
    display_name: 市大数据局
  - uscc: 91110108551385082A
    display_name: 校验位错误
resources:
  - code: 301009/00001
    display_name: 好的资源
    classification: 部门
    provider: {NEW_DEPARTMENT}
    summary: 测试
    format: 服务接口
    sharing_type: UNCONDITIONAL
    sharing_method: 接口
    update_cycle: 实时
    publish_date: "2026-01-01"
    data_items: [{{name: a, label: 甲, data_type: string}}]
  - code: 301009/00002
    display_name: 缺共享条件
    provider: {NEW_DEPARTMENT}
    sharing_type: CONDITIONAL
    publish_date: "2026-01-01"
    data_items: [{{name: a, label: 甲, data_type: string}}]
  - code: 301009/00003
    display_name: 日期错误
    provider: {NEW_DEPARTMENT}
    sharing_type: UNCONDITIONAL
    publish_date: "2026-02-30"
    data_items: [{{name: a, label: 甲, data_type: string}}]
grants:
  - id: g-new
    consumer: {NEW_DEPARTMENT}
    resource: 999999/00001
    data_items: [a]
    matter_codes: [M-1]
    valid_from: "2026-01-01"
    valid_until: "2026-12-31"
"""
        revision = await store.revision()
        before = await store.load()
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="cat.yaml"))
        assert error.lines == (
            line_of(text, "91110108551385082A"),
            line_of(text, "301009/00002"),
            line_of(text, "301009/00003"),
            line_of(text, "id: g-new"),
        )
        assert error.problems[0] == "cat.yaml:4: departments[1]: invalid USCC '91110108551385082A'"
        assert "CONDITIONAL needs a sharing_condition" in error.problems[1]
        assert "grant g-new: unknown resource" in error.problems[3]
        assert ("cat.yaml:4", "departments[1]: invalid USCC '91110108551385082A'") in (
            error.violations
        )
        assert await store.revision() == revision
        assert await store.load() == before

    async def test_references_resolve_against_the_store(self, store: SqlCatalogueStore) -> None:
        """A file may refer to departments and resources that are only in the store."""
        text = """\
grants:
  - {id: g-extra, consumer: "113301000024821070", resource: 101002/00001,
     data_items: [marital_status], matter_codes: [330100-ZF-0003],
     valid_from: "2026-01-01", valid_until: "2026-12-31"}
"""
        report = await import_catalogue_yaml(text, store, ADMIN)
        assert report.created["grants"] == 1
        catalogue = await store.load()
        assert [g.grant_id for g in catalogue.grants_for("113301000024821070", "101002/00001")] == [
            "g-extra"
        ]

    async def test_lifecycle_and_final_states_hold(self, store: SqlCatalogueStore) -> None:
        """A file (at the stored versions, so not stale) cannot republish a RETIRED
        resource nor revive a REVOKED grant."""
        await store.retire_resource("105001/00001", actor=ADMIN)
        await store.revoke_grant("g-bdc-identity", actor=ADMIN)
        document = yaml.safe_load(await export_catalogue_yaml(store))
        for resource in document["resources"]:
            if resource["code"] == "105001/00001":
                resource["state"] = "PUBLISHED"
        for grant in document["grants"]:
            if grant["id"] == "g-bdc-identity":
                grant["state"] = "ACTIVE"
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="old.yaml"))
        assert len(error.problems) == 2
        assert "a RETIRED resource cannot become PUBLISHED" in error.problems[0]
        assert "a REVOKED grant cannot become ACTIVE" in error.problems[1]
        assert error.lines[0] == line_of(text, "code: 105001/00001")

    async def test_broken_yaml_and_unknown_sections(self, store: SqlCatalogueStore) -> None:
        """Unparsable YAML names its line; an unknown section is refused, not ignored."""
        error = await rejected(import_catalogue_yaml("departments:\n  - [a\n", store, ADMIN))
        assert error.lines == (3,)
        assert "not valid YAML" in error.problems[0]
        error = await rejected(
            import_catalogue_yaml("departments: []\nresource: []\n", store, ADMIN)
        )
        assert error.problems == ("<catalogue>:2: unknown section 'resource'",)

    async def test_deleted_item_in_the_file_stays_deleted(self, store: SqlCatalogueStore) -> None:
        """Export then import of a soft-deleted item keeps it deleted and changes nothing."""
        await store.delete_matter("330100-BDC-0002", actor=ADMIN)
        revision = await store.revision()
        report = await import_catalogue_yaml(await export_catalogue_yaml(store), store, ADMIN)
        assert not report.changed
        assert await store.revision() == revision
        assert (await store.get_matter("330100-BDC-0002")).deleted


CSV_ZH = """\
资源代码,资源名称,提供方代码,摘要,格式,共享类型,共享条件,不予共享依据,共享方式,更新周期,发布日期,信息项,分类码
,个体工商户登记信息,11330100002482101D,个体户照面,服务接口,有条件共享,仅限登记类事项,,接口,实时,2026-01-15,uscc:统一社会信用代码:string;operator:经营者:string:personal,105001
,企业年报信息,11330100002482101D,年度报告,电子表格,1,,,接口,每年,2026-01-15,report_year:年度:integer,105001
301009/00001,内部执法记录,11330100002482102G,执法记录,数据库,不予共享,,《某条例》第十条,无,实时,2026-01-15,record_id：记录编号：string,
"""


class TestCsvImport:
    async def test_chinese_headers_and_generated_codes(self, store: SqlCatalogueStore) -> None:
        """Chinese columns and values import; empty codes continue the 分类码 sequence."""
        report = await import_resources_csv(CSV_ZH, store, ADMIN)
        assert report.created["resources"] == 3
        page = await store.list_resources(filter='code = "105001/*"')
        assert [r.code for r in page.items] == ["105001/00001", "105001/00002", "105001/00003"]
        household = page.items[1]
        assert (household.display_name, household.sharing_type, household.classification) == (
            "个体工商户登记信息",
            SharingType.CONDITIONAL,
            "基础",
        )
        assert [(i.name, i.personal) for i in household.data_items] == [
            ("uscc", False),
            ("operator", True),
        ]
        assert page.items[2].sharing_type is SharingType.UNCONDITIONAL
        record = await store.get_resource("301009/00001")
        assert (record.sharing_type, record.legal_basis, record.state) == (
            SharingType.NOT_SHARED,
            "《某条例》第十条",
            ResourceState.PUBLISHED,
        )
        assert record.data_items[0].name == "record_id"

    async def test_importing_the_same_sheet_twice(self, store: SqlCatalogueStore) -> None:
        """Rows without a code find their resource again by provider and name."""
        await import_resources_csv(CSV_ZH, store, ADMIN)
        revision = await store.revision()
        report = await import_resources_csv(CSV_ZH, store, ADMIN)
        assert (report.unchanged["resources"], report.changed) == (3, False)
        assert await store.revision() == revision

    async def test_english_headers_update_only_their_columns(
        self, store: SqlCatalogueStore
    ) -> None:
        """An existing resource keeps every attribute the sheet has no column for."""
        text = (
            "code,display_name,provider,sharing_type,data_items,summary\n"
            "105001/00001,营业执照信息,11330100002482101D,UNCONDITIONAL,"
            "uscc:统一社会信用代码:string,新的摘要\n"
        )
        before = await store.get_resource("105001/00001")
        report = await import_resources_csv(text, store, ADMIN)
        assert report.updated["resources"] == 1
        after = await store.get_resource("105001/00001")
        assert (after.summary, after.format, after.update_cycle) == ("新的摘要", "服务接口", "实时")
        assert after.data_item_names == ("uscc",)
        assert (
            dataclasses.replace(
                after, summary=before.summary, data_items=before.data_items, version=1
            )
            == before
        )

    async def test_bad_rows_are_reported_by_line(self, store: SqlCatalogueStore) -> None:
        """Every bad row is named by its starting line (quoted cells may span lines); nothing lands."""
        text = (
            "资源代码,资源名称,提供方代码,摘要,格式,共享方式,更新周期,共享类型,共享条件,"
            "发布日期,信息项,分类码\n"
            ',好的资源,11330100002482101D,"两行\n的摘要",服务接口,接口,实时,1,,2026-01-15,'
            "a:甲:string,105001\n"
            ",缺条件,11330100002482101D,摘要,服务接口,接口,实时,2,,2026-01-15,a:甲:string,105001\n"
            ",错类型,11330100002482101D,摘要,服务接口,接口,实时,4,,2026-01-15,a:甲:string,105001\n"
            ",无分类码,11330100002482101D,摘要,服务接口,接口,实时,1,,2026-01-15,a:甲:string,\n"
            ",坏日期,11330100002482101D,摘要,服务接口,接口,实时,1,,2026/01/15,a:甲,105001\n"
            ",坏信息项,11330100002482101D,摘要,服务接口,接口,实时,1,,2026-01-15,a,105001\n"
        )
        revision = await store.revision()
        error = await rejected(import_resources_csv(text, store, ADMIN, source="sheet.csv"))
        assert error.lines == (4, 5, 6, 7, 8)
        assert "CONDITIONAL needs a sharing_condition" in error.problems[0]
        assert "共享类型 '4'" in error.problems[1]
        assert "needs a 分类码" in error.problems[2]
        assert "publish_date" in error.problems[3]
        assert "信息项 'a'" in error.problems[4]
        assert await store.revision() == revision

    async def test_header_problems(self, store: SqlCatalogueStore) -> None:
        """Unknown and missing columns are reported on line 1."""
        error = await rejected(
            import_resources_csv("资源名称,颜色\n", store, ADMIN, source="s.csv")
        )
        assert set(error.lines) == {1}
        assert "s.csv:1: unknown column '颜色'" in error.problems
        assert any("missing column 提供方代码" in p for p in error.problems)
        assert any("分类码" in p for p in error.problems)

    async def test_state_column_follows_the_lifecycle(self, store: SqlCatalogueStore) -> None:
        """A sheet cannot turn a PUBLISHED resource back into a draft."""
        text = (
            "code,display_name,provider,sharing_type,data_items,state\n"
            "105001/00001,营业执照信息,11330100002482101D,1,uscc:代码,草稿\n"
        )
        error = await rejected(import_resources_csv(text, store, ADMIN))
        assert error.lines == (2,)
        assert "cannot become DRAFT" in error.problems[0]

    async def test_revoked_grant_stays_revoked_through_csv(self, store: SqlCatalogueStore) -> None:
        """A CSV import touches resources only: grants keep their state."""
        await store.revoke_grant("g-bdc-identity", actor=ADMIN)
        await import_resources_csv(CSV_ZH, store, ADMIN)
        assert (await store.get_grant("g-bdc-identity")).state is GrantState.REVOKED
