"""What a catalogue import may and may not write, so that an export always imports
and an import never undoes or contradicts what the API did:

- rows that named a department before it was deleted still import (and seed);
- grants made by approving an application change only with their application;
- a changed row older than the stored item is stale (the import's ETAG_MISMATCH);
- every value fits its column on PostgreSQL as on SQLite, or the row is named;
- a certificate type code ends in three ASCII digits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import yaml
from govshare.directory import (
    ApplicationRequest,
    ApplicationState,
    CertificateType,
    Department,
    GrantState,
    ImportRejected,
    InvalidArgument,
    NotFound,
    Resource,
    SqlCatalogueStore,
    certificate_type_violations,
    export_catalogue_yaml,
    import_catalogue_yaml,
    import_resources_csv,
    load_builtin_catalogue,
    parse_catalogue,
    resource_reference_violations,
)
from support import line_of, rejected

ADMIN = "admin/ops"
MARKET = "11330100002482101D"
CIVIL_AFFAIRS = "11330100002482103K"  # provides 101002/00001, issues marriage_record
NATURAL_RESOURCES = "11330100002482104N"  # provides 105002/00001
HOUSING = "113301000024821070"
REAL_ESTATE_CENTRE = "11330100002482106W"
NEW_DEPARTMENT = "91110108551385082Q"
MARRIAGE = "101002/00001"
REAL_ESTATE = "105002/00001"
NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def edited(text: str, section: str, key: str, value: str, **changes: object) -> str:
    """`text` (an export) with one row changed, every row in block style (one field a line)."""
    document = yaml.safe_load(text)
    (row,) = [row for row in document[section] if row[key] == value]
    row.update(changes)
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)


def csv_row(resource: Resource, **changes: str) -> str:
    """A resources CSV (the columns every row needs, and summary) for `resource`."""
    items = ";".join(
        f"{i.name}:{i.label}:{i.data_type}" + (":personal" if i.personal else "")
        for i in resource.data_items
    )
    values = {
        "code": resource.code,
        "display_name": resource.display_name,
        "provider": resource.provider,
        "sharing_type": resource.sharing_type.value,
        "data_items": items,
        "summary": resource.summary,
    } | changes
    return ",".join(values) + "\n" + ",".join(values.values()) + "\n"


class TestDeletedDepartments:
    """DeleteDepartment soft-deletes a department without looking at what names it (the
    department is SUSPENDED, its resources and certificate types stay as they are). A row
    that named it before may keep naming it; no write may point a row at it anew."""

    async def test_export_imports_back_after_a_providing_department_is_deleted(
        self, store: SqlCatalogueStore
    ) -> None:
        """The export of a directory whose deleted department still provides a resource
        and issues a certificate type imports into that directory, changing nothing."""
        await store.delete_department(CIVIL_AFFAIRS, actor=ADMIN)
        revision = await store.revision()
        report = await import_catalogue_yaml(await export_catalogue_yaml(store), store, ADMIN)
        assert not report.changed
        assert await store.revision() == revision

    async def test_that_export_seeds_and_imports_into_a_new_store(
        self, store: SqlCatalogueStore, empty: SqlCatalogueStore
    ) -> None:
        """The same export is a valid seed file and imports into an empty store, which
        then holds the same directory as the one exported."""
        await store.delete_department(CIVIL_AFFAIRS, actor=ADMIN)
        original = await store.load()
        text = await export_catalogue_yaml(store)
        assert parse_catalogue(text, source="export.yaml") == original
        await import_catalogue_yaml(text, empty, ADMIN, source="export.yaml")
        assert await empty.load() == original

    async def test_a_stored_row_cannot_be_moved_to_a_deleted_department(
        self, store: SqlCatalogueStore
    ) -> None:
        """A resource or certificate type the store holds, given a deleted department as
        provider or issuer by the file, is refused on its line, as the API refuses it."""
        await store.delete_department(CIVIL_AFFAIRS, actor=ADMIN)
        text = await export_catalogue_yaml(store)
        text = edited(text, "resources", "code", REAL_ESTATE, provider=CIVIL_AFFAIRS)
        text = edited(text, "certificate_types", "key", "business_licence", issuer=CIVIL_AFFAIRS)
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="moved.yaml"))
        assert error.problems == (
            f"moved.yaml:{line_of(text, f'- code: {REAL_ESTATE}')}: resource {REAL_ESTATE}: "
            f"the provider {CIVIL_AFFAIRS} is a deleted department",
            f"moved.yaml:{line_of(text, '- key: business_licence')}: certificate type "
            f"business_licence: the issuer {CIVIL_AFFAIRS} is a deleted department",
        )
        assert (await store.get_resource(REAL_ESTATE)).provider == NATURAL_RESOURCES

    async def test_a_department_unknown_everywhere_is_still_refused(
        self, store: SqlCatalogueStore
    ) -> None:
        """Keeping a reference needs the department to exist, deleted or not."""
        text = edited(
            await export_catalogue_yaml(store),
            "resources",
            "code",
            MARRIAGE,
            provider=NEW_DEPARTMENT,
        )
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="u.yaml"))
        assert error.problems == (
            f"u.yaml:{line_of(text, f'- code: {MARRIAGE}')}: resource {MARRIAGE}: unknown provider",
        )

    async def test_a_spreadsheet_may_update_a_resource_of_a_deleted_department(
        self, store: SqlCatalogueStore
    ) -> None:
        """A CSV row for a resource whose provider was deleted updates it (the provider is
        kept); a CSV row moving a resource to the deleted department is refused."""
        await store.delete_department(CIVIL_AFFAIRS, actor=ADMIN)
        marriage = await store.get_resource(MARRIAGE)
        sheet = csv_row(marriage, summary="婚姻登记信息")
        report = await import_resources_csv(sheet, store, ADMIN)
        assert report.updated["resources"] == 1
        assert (await store.get_resource(MARRIAGE)).summary == "婚姻登记信息"
        sheet = csv_row(await store.get_resource(REAL_ESTATE), provider=CIVIL_AFFAIRS)
        error = await rejected(import_resources_csv(sheet, store, ADMIN))
        assert error.lines == (2,)
        assert "the provider 11330100002482103K is a deleted department" in error.problems[0]

    def test_the_rule_keeps_a_reference_and_refuses_a_new_one(self) -> None:
        """resource_reference_violations: a deleted provider is fine for the row that
        already named it (`before`), not for a new row or a changed provider."""
        catalogue = load_builtin_catalogue()
        deleted = dataclasses.replace(catalogue.departments[CIVIL_AFFAIRS], delete_time=NOW)
        departments: dict[str, Department] = {**catalogue.departments, CIVIL_AFFAIRS: deleted}
        marriage = catalogue.resources[MARRIAGE]
        moved = dataclasses.replace(catalogue.resources[REAL_ESTATE], provider=CIVIL_AFFAIRS)
        assert resource_reference_violations(marriage, departments, marriage) == []
        assert resource_reference_violations(marriage, departments) != []
        assert resource_reference_violations(
            moved, departments, catalogue.resources[REAL_ESTATE]
        ) == [("provider", f"the provider {CIVIL_AFFAIRS} is a deleted department")]


async def approved(store: SqlCatalogueStore, application_id: str = "app1") -> None:
    await store.create_application(
        ApplicationRequest(
            consumer=HOUSING,
            resource=MARRIAGE,
            data_items=("marital_status",),
            matter_codes=("330100-ZF-0003",),
            purpose="公租房资格审核",
            legal_basis="",
            valid_from=dt.date(2026, 1, 1),
            valid_until=dt.date(2027, 1, 1),
        ),
        application_id=application_id,
        actor=f"dept/{HOUSING}",
    )
    await store.approve_application(application_id, actor=ADMIN)


class TestApplicationGrants:
    """A grant with an application_id changes only with its application (_desk.py), so the
    grant calls are checked against never disagrees with the approved application."""

    @pytest.mark.parametrize(
        "changes",
        [
            {"state": "REVOKED"},
            {"state": "EXPIRED"},
            {
                "consumer": REAL_ESTATE_CENTRE,
                "data_items": ["marital_status", "spouse_name", "spouse_citizen_id"],
                "valid_until": "2099-12-31",
            },
            {"application_id": ""},
        ],
        ids=["revoked", "expired", "widened", "detached"],
    )
    async def test_an_import_cannot_change_a_grant_an_approval_made(
        self, store: SqlCatalogueStore, changes: dict[str, object]
    ) -> None:
        """Any change to an application's grant is refused on the grant's line, naming the
        application; the grant and its APPROVED application are left as they were."""
        await approved(store)
        before = await store.get_grant("g-app1")
        text = edited(await export_catalogue_yaml(store), "grants", "id", "g-app1", **changes)
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="g.yaml"))
        assert error.problems == (
            f"g.yaml:{line_of(text, '- id: g-app1')}: grant g-app1: made by approving application "
            "app1: it changes with that application (revoke it through the API), not by import",
        )
        assert await store.get_grant("g-app1") == before
        assert (await store.get_application("app1")).state is ApplicationState.APPROVED

    async def test_an_unchanged_application_grant_imports_and_seeds(
        self, store: SqlCatalogueStore, empty: SqlCatalogueStore
    ) -> None:
        """The export of a directory with an approved application imports into it (the
        grant is unchanged) and into a new store, which holds no application."""
        await approved(store)
        text = await export_catalogue_yaml(store)
        assert not (await import_catalogue_yaml(text, store, ADMIN)).changed
        await import_catalogue_yaml(text, empty, ADMIN)
        assert (await empty.get_grant("g-app1")) == await store.get_grant("g-app1")

    async def test_a_file_cannot_attach_a_grant_to_an_application(
        self, store: SqlCatalogueStore
    ) -> None:
        """A file may neither give a stored grant an application_id nor add a grant that
        names an application of this directory: revoking that grant would revoke the
        application and leave the application's own grant ACTIVE."""
        await approved(store)
        text = edited(
            await export_catalogue_yaml(store), "grants", "id", "g-zf-identity", application_id="x"
        )
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="a.yaml"))
        assert error.problems == (
            f"a.yaml:{line_of(text, '- id: g-zf-identity')}: grant g-zf-identity: "
            "application_id cannot change",
        )
        text = f"""\
grants:
  - id: g-second
    consumer: "{HOUSING}"
    resource: {MARRIAGE}
    data_items: [marital_status]
    matter_codes: [330100-ZF-0003]
    valid_from: 2026-01-01
    valid_until: 2026-12-31
    application_id: app1
"""
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="b.yaml"))
        assert error.problems == (
            "b.yaml:2: grant g-second: application app1 is in this directory: "
            "only its approval makes its grant",
        )
        with pytest.raises(NotFound):
            await store.get_grant("g-second")

    async def test_catalogue_grants_still_change_by_import(self, store: SqlCatalogueStore) -> None:
        """A grant without an application (from the catalogue file) is still the file's to
        change: narrowed, or REVOKED."""
        text = edited(
            await export_catalogue_yaml(store),
            "grants",
            "id",
            "g-zf-identity",
            data_items=["citizen_id"],
            state="REVOKED",
        )
        report = await import_catalogue_yaml(text, store, ADMIN)
        assert report.updated["grants"] == 1
        grant = await store.get_grant("g-zf-identity")
        assert (grant.data_items, grant.state) == (frozenset({"citizen_id"}), GrantState.REVOKED)


class TestStaleRows:
    """Rows carry `version`: a changed row older than the stored item would silently undo
    a change made since the file was exported."""

    async def test_an_older_export_does_not_revert_a_newer_change(
        self, store: SqlCatalogueStore
    ) -> None:
        """Admin A edits an old export while admin B changes a resource through the API:
        A's import is refused on the line of the stale row, and nothing is written."""
        exported = await export_catalogue_yaml(store)
        resource = await store.get_resource(REAL_ESTATE)
        newer = "不动产权利人、坐落、面积、用途、抵押状态"
        await store.update_resource(
            dataclasses.replace(resource, summary=newer),
            update_mask=["summary"],
            etag=resource.etag,
            actor="admin/b",
        )
        revision = await store.revision()
        text = exported.replace("display_name: 市民政局", "display_name: 市民政局(婚姻登记处)")
        error = await rejected(import_catalogue_yaml(text, store, "admin/a", source="old.yaml"))
        assert error.problems == (
            f"old.yaml:{line_of(text, f'- code: {REAL_ESTATE}')}: resource {REAL_ESTATE}: "
            "stale row (ETAG_MISMATCH): version 1, but version 2 is stored, changed since "
            "the file was exported; export again and redo the change there",
        )
        assert (await store.get_resource(REAL_ESTATE)).summary == newer
        assert (await store.get_department(CIVIL_AFFAIRS)).display_name == "市民政局"
        assert await store.revision() == revision

    async def test_an_old_export_cannot_undo_a_deletion(self, store: SqlCatalogueStore) -> None:
        """A row exported before the item was deleted would restore it: stale as well."""
        exported = await export_catalogue_yaml(store)
        await store.delete_matter("330100-BDC-0002", actor=ADMIN)
        error = await rejected(import_catalogue_yaml(exported, store, ADMIN))
        assert error.lines == (line_of(exported, "- code: 330100-BDC-0002"),)
        assert "matter 330100-BDC-0002: stale row (ETAG_MISMATCH)" in error.problems[0]
        assert (await store.get_matter("330100-BDC-0002")).deleted

    async def test_unchanged_old_rows_and_newer_rows_are_fine(
        self, store: SqlCatalogueStore
    ) -> None:
        """A row equal to the stored item imports whatever its version (an item changed and
        changed back), and so does a row newer than the stored one (a file from another
        directory); the store then numbers the version itself."""
        exported = await export_catalogue_yaml(store)
        department = await store.get_department(MARKET)
        renamed = await store.update_department(
            dataclasses.replace(department, display_name="市场监管局"),
            update_mask=["display_name"],
            actor=ADMIN,
        )
        await store.update_department(
            dataclasses.replace(renamed, display_name=department.display_name),
            update_mask=["display_name"],
            actor=ADMIN,
        )
        assert (await store.get_department(MARKET)).version == 3
        assert not (await import_catalogue_yaml(exported, store, ADMIN)).changed
        text = f"""\
departments:
  - uscc: {MARKET}
    display_name: 市场监督管理局
    region_code: "330100"
    version: 7
"""
        report = await import_catalogue_yaml(text, store, ADMIN)
        assert report.updated["departments"] == 1
        stored = await store.get_department(MARKET)
        assert (stored.display_name, stored.version) == ("市场监督管理局", 4)


class TestColumnLimits:
    """PostgreSQL enforces INTEGER and VARCHAR(n), SQLite does not: a value past a column
    is a row problem on both, never a database error on one."""

    async def test_a_version_past_a_postgresql_integer_is_refused_by_line(
        self, store: SqlCatalogueStore, backend: str
    ) -> None:
        """version 3000000000 is refused with its line on both databases; 2**31 - 1 fits."""
        template = f"""\
departments:
  - uscc: {NEW_DEPARTMENT}
    display_name: 市大数据发展管理局
    region_code: "330100"
    version: %d
"""
        error = await rejected(
            import_catalogue_yaml(template % 3_000_000_000, store, ADMIN, source="big.yaml")
        )
        assert error.problems == (f"big.yaml:2: departments[0]: must be at most {2**31 - 1}",), (
            backend
        )
        await import_catalogue_yaml(template % (2**31 - 1), store, ADMIN)
        assert (await store.get_department(NEW_DEPARTMENT)).version == 2**31 - 1

    async def test_an_overlong_grant_application_id_is_refused_by_line(
        self, store: SqlCatalogueStore, backend: str
    ) -> None:
        """grants.application_id is VARCHAR(64) and names an application (a key):
        100 characters, or a space, are refused with the line on both databases."""
        for application_id in ("a" * 100, "app 1"):
            text = f"""\
grants:
  - id: g-long-application
    consumer: "{HOUSING}"
    resource: {MARRIAGE}
    data_items: [marital_status]
    matter_codes: [330100-ZF-0003]
    valid_from: 2026-01-01
    valid_until: 2026-12-31
    application_id: {application_id}
"""
            error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="g.yaml"))
            assert error.problems == ("g.yaml:2: grants[0]: must be [A-Za-z0-9_.-], 1-64 long",), (
                backend
            )

    async def test_an_overlong_delete_time_is_refused_by_line(
        self, store: SqlCatalogueStore, backend: str
    ) -> None:
        """delete_time is ISO text in a VARCHAR(40): an offset with seconds and
        microseconds (42 characters) is refused with its line on both databases."""
        text = f"""\
departments:
  - uscc: {NEW_DEPARTMENT}
    display_name: 市大数据发展管理局
    delete_time: "2026-01-01T00:00:00.123456+05:30:15.123456"
"""
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="t.yaml"))
        assert error.lines == (2,), backend
        assert "is too long a timestamp" in error.problems[0]

    async def test_a_nul_character_is_refused_by_line(
        self, store: SqlCatalogueStore, backend: str
    ) -> None:
        """A NUL (PostgreSQL text cannot hold one) is an import problem on its row, not an
        InvalidArgument without a line from the write."""
        text = f'departments:\n  - uscc: {NEW_DEPARTMENT}\n    display_name: "a\\0b"\n'
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="n.yaml"))
        assert error.problems == ("n.yaml:2: departments[0]: must not contain NUL characters",), (
            backend
        )


class TestTypeCodeDigits:
    """A type code is a USCC and three ASCII digits (the certificate identifier is ASCII)."""

    @pytest.mark.parametrize("suffix", ["¹²³", "٠٠١", "００１", "0١2"])
    def test_other_scripts_digits_are_not_a_type_code(self, suffix: str) -> None:
        """str.isdigit takes superscripts, Arabic-Indic and full-width digits: the rule does not."""
        ctype = CertificateType(
            key="licence_copy",
            type_code=f"{MARKET}{suffix}",
            display_name="营业执照(副本)",
            holder_id_type="001",
            issuer=MARKET,
            resource="105001/00001",
        )
        assert ("type_code", f"type_code {ctype.type_code!r} is not a USCC + 3 digits") in (
            certificate_type_violations(ctype)
        )
        assert (
            certificate_type_violations(dataclasses.replace(ctype, type_code=f"{MARKET}002")) == []
        )

    async def test_the_store_and_an_import_refuse_them(self, store: SqlCatalogueStore) -> None:
        """CreateCertificateType is INVALID_ARGUMENT; an import names the row."""
        ctype = CertificateType(
            key="licence_copy",
            type_code=f"{MARKET}٠٠٢",
            display_name="营业执照(副本)",
            holder_id_type="001",
            issuer=MARKET,
            resource="105001/00001",
        )
        with pytest.raises(InvalidArgument):
            await store.create_certificate_type(ctype, actor=ADMIN)
        text = f"""\
certificate_types:
  - key: licence_copy
    type_code: {MARKET}００２
    display_name: 营业执照(副本)
    holder_id_type: "001"
    issuer: {MARKET}
    resource: 105001/00001
"""
        error = await rejected(import_catalogue_yaml(text, store, ADMIN, source="c.yaml"))
        assert error.lines == (2,)
        assert "is not a USCC + 3 digits" in error.problems[0]


class TestDataItemsNoLongerInUse:
    async def test_an_item_only_revoked_grants_named_can_go_and_the_export_imports(
        self, store: SqlCatalogueStore, empty: SqlCatalogueStore
    ) -> None:
        """Once the only ACTIVE grant naming a data item is revoked and no matter uses it,
        the item may be removed; the export of that directory (the revoked grant still
        names the item) imports back and seeds a new store."""
        await store.revoke_grant("g-bdc-marriage", actor=ADMIN)
        resource = await store.get_resource(MARRIAGE)
        kept = tuple(item for item in resource.data_items if item.name != "spouse_name")
        await store.update_resource(
            dataclasses.replace(resource, data_items=kept), update_mask=["data_items"], actor=ADMIN
        )
        text = await export_catalogue_yaml(store)
        report = await import_catalogue_yaml(text, store, ADMIN)
        assert not report.changed
        await import_catalogue_yaml(text, empty, ADMIN, source="export.yaml")
        assert await empty.load() == await store.load()


class TestCertificateTypeKeys:
    async def test_an_import_refuses_a_new_key_shaped_like_a_type_code(
        self, store: SqlCatalogueStore
    ) -> None:
        """As CreateCertificateType, an import may not add a type whose key looks like a
        type code (here business_licence's): names resolve type codes first, so the new
        type could never be reached by its key."""
        text = """
certificate_types:
  - key: "11330100002482101D001"
    type_code: 11330100002482102G007
    display_name: 某证照
    holder_id_type: "111"
    issuer: 11330100002482102G
    resource: 101001/00001
"""
        with pytest.raises(ImportRejected, match="must not look like a type code"):
            await import_catalogue_yaml(text, store, ADMIN, source="types.yaml")
        catalogue = await store.load()
        assert catalogue.certificate_type("11330100002482101D001").key == "business_licence"
