"""The seed catalogue and the catalogue parser: every bad row is reported."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from govshare.directory import (
    Catalogue,
    CatalogueError,
    DepartmentState,
    ResourceState,
    SharingType,
    load_builtin_catalogue,
    load_catalogue,
    parse_catalogue,
)

PROVIDER = "11330100002482101D"
CONSUMER = "11330100002482106W"
OTHER_VALID_USCC = "91110108551385082Q"
RESOURCE = "100001/00001"

SEED_REGISTRIES = {
    "11330100002482101D",  # market regulation
    "11330100002482102G",  # public security
    "11330100002482103K",  # civil affairs
    "11330100002482104N",  # natural resources
    "11330100002482105R",  # taxation
}


def base_document() -> dict[str, Any]:
    """A small catalogue that parses cleanly; tests break one row at a time."""
    return {
        "departments": [
            {"uscc": PROVIDER, "display_name": "提供方", "region_code": "330100"},
            {"uscc": CONSUMER, "display_name": "使用方", "region_code": "330100"},
        ],
        "resources": [
            {
                "code": RESOURCE,
                "display_name": "测试资源",
                "classification": "基础",
                "provider": PROVIDER,
                "summary": "测试用资源",
                "format": "服务接口",
                "sharing_type": "CONDITIONAL",
                "sharing_method": "接口",
                "update_cycle": "实时",
                "sharing_condition": "仅限办理事项",
                "publish_date": "2025-01-01",
                "data_items": [
                    {"name": "a", "label": "甲", "data_type": "string"},
                    {"name": "b", "label": "乙", "data_type": "date", "personal": True},
                ],
            }
        ],
        "certificate_types": [
            {
                "key": "licence",
                "type_code": PROVIDER + "001",
                "display_name": "测试证照",
                "holder_id_type": "001",
                "issuer": PROVIDER,
                "resource": RESOURCE,
            }
        ],
        "grants": [
            {
                "id": "g-1",
                "consumer": CONSUMER,
                "resource": RESOURCE,
                "data_items": ["a"],
                "matter_codes": ["M-1"],
                "valid_from": "2026-01-01",
                "valid_until": "2026-12-31",
            }
        ],
    }


def extra_resource(code: str, **changes: Any) -> dict[str, Any]:
    """A copy of the base resource under another code, referenced by nothing."""
    row = copy.deepcopy(base_document()["resources"][0])
    row.update(code=code, **changes)
    return row


def dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, allow_unicode=True)


def problems_of(document: dict[str, Any]) -> tuple[str, ...]:
    with pytest.raises(CatalogueError) as raised:
        parse_catalogue(dump(document), source="test.yaml")
    return raised.value.problems


@pytest.fixture(scope="module")
def seed() -> Catalogue:
    return load_builtin_catalogue()


class TestBuiltinCatalogue:
    def test_five_registries_provide_the_resources(self, seed: Catalogue) -> None:
        """The seed holds six resources provided by the five reference registries."""
        assert len(seed.resources) == 6
        assert {r.provider for r in seed.resources.values()} == SEED_REGISTRIES
        assert set(seed.resources) == {
            "105001/00001",
            "101001/00001",
            "101002/00001",
            "105002/00001",
            "105003/00001",
            "301001/00001",
        }

    def test_sharing_attributes(self, seed: Catalogue) -> None:
        """Sharing types, conditions and legal bases come through as written."""
        licence = seed.resources["105001/00001"]
        identity = seed.resources["101001/00001"]
        criminal = seed.resources["301001/00001"]
        assert licence.sharing_type is SharingType.UNCONDITIONAL
        assert identity.sharing_type is SharingType.CONDITIONAL
        assert identity.sharing_condition.startswith("仅限办理政务服务事项")
        assert criminal.sharing_type is SharingType.NOT_SHARED
        assert "犯罪记录" in criminal.legal_basis
        assert all(r.state is ResourceState.PUBLISHED for r in seed.resources.values())

    def test_data_items_keep_their_order(self, seed: Catalogue) -> None:
        """Data items keep catalogue order, with type and personal flag."""
        identity = seed.resources["101001/00001"]
        assert identity.data_item_names == (
            "citizen_id",
            "name",
            "sex",
            "ethnicity",
            "birth_date",
            "address",
            "issuing_authority",
            "valid_until",
        )
        birth = identity.data_items[4]
        assert (birth.data_type, birth.personal) == ("date", True)
        assert identity.data_items[6].personal is False

    def test_departments_and_suspension(self, seed: Catalogue) -> None:
        """Eight departments, one of them suspended."""
        assert len(seed.departments) == 8
        suspended = [
            d.uscc for d in seed.departments.values() if d.state is DepartmentState.SUSPENDED
        ]
        assert suspended == ["113301000024821083"]
        assert seed.departments["11330100002482102G"].region_code == "330100"

    def test_certificate_type_by_key_and_by_type_code(self, seed: Catalogue) -> None:
        """A certificate type resolves by its key and by its 21-character type code."""
        by_key = seed.certificate_type("identity_record")
        by_code = seed.certificate_type("11330100002482102G001")
        assert by_key is not None
        assert by_key is by_code
        assert (by_key.resource, by_key.holder_id_type) == ("101001/00001", "111")
        criminal = seed.certificate_type("11330100002482102G009")
        assert criminal is not None
        assert criminal.key == "criminal_record"
        assert seed.certificate_type("no_such_type") is None
        assert seed.certificate_type("11330100002482102G002") is None

    def test_grants_indexed_by_consumer_and_resource(self, seed: Catalogue) -> None:
        """grants_for returns exactly the grants naming that consumer on that resource."""
        land = seed.grants_for("11330100002482106W", "101001/00001")
        assert [g.grant_id for g in land] == ["g-bdc-identity"]
        grant = land[0]
        assert grant.data_items == frozenset({"citizen_id", "name", "sex", "birth_date", "address"})
        assert grant.matter_codes == frozenset(
            {"330100-BDC-0001", "330100-BDC-0002", "330100-BDC-0003"}
        )
        assert (grant.valid_from, grant.valid_until) == (dt.date(2026, 1, 1), dt.date(2028, 12, 31))
        housing = seed.grants_for("113301000024821070", "101001/00001")
        assert [g.grant_id for g in housing] == ["g-zf-identity"]
        assert seed.grants_for("113301000024821070", "101002/00001") == ()
        assert [g.grant_id for g in seed.grants_for("11330100002482106W", "105003/00001")] == [
            "g-bdc-tax"
        ]
        assert seed.grants_for("11330100002482106W", "301001/00001") == ()
        assert len(seed.grants) == 6


class TestParseCatalogue:
    def test_base_document_parses(self) -> None:
        """The fixture document is clean, so each bad-row test blames only its row."""
        catalogue = parse_catalogue(dump(base_document()))
        assert set(catalogue.departments) == {PROVIDER, CONSUMER}
        assert catalogue.resources[RESOURCE].data_item_names == ("a", "b")
        assert catalogue.grants_for(CONSUMER, RESOURCE)[0].data_items == frozenset({"a"})

    def test_empty_text_is_an_empty_catalogue(self) -> None:
        """An empty file is a catalogue with nothing in it."""
        catalogue = parse_catalogue("")
        assert (len(catalogue.departments), len(catalogue.resources), catalogue.grants) == (
            0,
            0,
            (),
        )

    def test_top_level_must_be_a_mapping(self) -> None:
        """A YAML list at top level is refused."""
        with pytest.raises(CatalogueError) as raised:
            parse_catalogue("- a\n- b\n", source="list.yaml")
        assert raised.value.problems == ("list.yaml: top level must be a mapping",)

    def test_bad_uscc(self) -> None:
        """A department with a wrong check character is one problem naming its row."""
        document = base_document()
        document["departments"].append({"uscc": "91110108551385082A", "display_name": "坏"})
        (problem,) = problems_of(document)
        assert problem.startswith("test.yaml: departments[2]:")
        assert "91110108551385082A" in problem

    def test_conditional_without_condition(self) -> None:
        """CONDITIONAL needs a sharing_condition."""
        document = base_document()
        document["resources"].append(extra_resource("100001/00002", sharing_condition=""))
        (problem,) = problems_of(document)
        assert problem.startswith("test.yaml: resources[1]:")
        assert "CONDITIONAL needs a sharing_condition" in problem

    def test_not_shared_without_legal_basis(self) -> None:
        """NOT_SHARED needs a legal_basis; with one it parses."""
        document = base_document()
        document["resources"].append(extra_resource("100001/00002", sharing_type="NOT_SHARED"))
        (problem,) = problems_of(document)
        assert problem.startswith("test.yaml: resources[1]:")
        assert "NOT_SHARED needs a legal_basis" in problem
        document["resources"][1]["legal_basis"] = "某法第一条"
        parsed = parse_catalogue(dump(document)).resources["100001/00002"]
        assert parsed.sharing_type is SharingType.NOT_SHARED

    @pytest.mark.parametrize("publish_date", ["2025-02-30", "2025/03/01", "yesterday"])
    def test_bad_publish_date(self, publish_date: str) -> None:
        """A publish date that is not a real YYYY-MM-DD day is refused."""
        document = base_document()
        document["resources"].append(extra_resource("100001/00002", publish_date=publish_date))
        (problem,) = problems_of(document)
        assert problem.startswith("test.yaml: resources[1]:")

    def test_an_unquoted_impossible_date_is_a_problem_of_its_row(self) -> None:
        """`publish_date: 2025-02-30` unquoted is reported for its row, not raised by PyYAML."""
        document = base_document()
        document["resources"].append(extra_resource("100001/00002", publish_date="2025-02-30"))
        text = dump(document).replace("'2025-02-30'", "2025-02-30")
        assert "publish_date: 2025-02-30\n" in text
        with pytest.raises(CatalogueError) as raised:
            parse_catalogue(text, source="test.yaml")
        (problem,) = raised.value.problems
        assert problem.startswith("test.yaml: resources[1]:")
        assert "'2025-02-30' is not a real YYYY-MM-DD date" in problem

    def test_unknown_fields_are_refused(self) -> None:
        """A misspelt field of a row or of a data item is refused, not silently dropped."""
        document = base_document()
        document["resources"][0]["sharing_condtion"] = "仅限办理事项"
        document["resources"][0]["data_items"][1]["persnal"] = True
        assert (
            "test.yaml: resources[0]: unknown field 'sharing_condtion'; "
            "unknown field 'persnal' in data_items[1]"
        ) in problems_of(document)

    def test_unknown_provider(self) -> None:
        """A resource whose provider is not a listed department is refused."""
        document = base_document()
        document["resources"][0]["provider"] = OTHER_VALID_USCC
        assert problems_of(document) == (f"test.yaml: resource {RESOURCE}: unknown provider",)

    def test_grant_items_not_in_resource(self) -> None:
        """A grant naming a data item the resource lacks is refused."""
        document = base_document()
        document["grants"][0]["data_items"] = ["a", "zzz"]
        assert problems_of(document) == ("test.yaml: grant g-1: data items not in resource",)

    def test_grant_ends_before_it_starts(self) -> None:
        """valid_until before valid_from is refused; the same day is fine."""
        document = base_document()
        document["grants"][0]["valid_until"] = "2025-12-31"
        (problem,) = problems_of(document)
        assert "grants[0]" in problem
        assert "valid_until before valid_from" in problem
        document["grants"][0]["valid_until"] = "2026-01-01"
        one_day = parse_catalogue(dump(document)).grants[0]
        assert one_day.valid_from == one_day.valid_until == dt.date(2026, 1, 1)

    def test_grant_unknown_consumer_and_resource(self) -> None:
        """A grant for an unlisted consumer on an unlisted resource gives two problems."""
        document = base_document()
        document["grants"][0]["consumer"] = OTHER_VALID_USCC
        document["grants"][0]["resource"] = "999999/00001"
        assert problems_of(document) == (
            "test.yaml: grant g-1: unknown resource",
            "test.yaml: grant g-1: unknown consumer",
        )

    def test_missing_field_is_named(self) -> None:
        """A row without a required field names the field."""
        document = base_document()
        del document["departments"][1]["display_name"]
        problems = problems_of(document)
        assert problems[0] == "test.yaml: departments[1]: missing field 'display_name'"

    def test_every_bad_row_is_reported(self) -> None:
        """Several bad rows give one problem each, and no catalogue is returned."""
        document = base_document()
        no_condition = extra_resource("100001/00002", sharing_condition="")
        no_basis = extra_resource("100001/00003", sharing_type="NOT_SHARED")
        bad_date = extra_resource("100001/00004", publish_date="2025-13-01")
        orphan = extra_resource("100001/00005", provider=OTHER_VALID_USCC)
        document["departments"].append({"uscc": "91110108551385082A", "display_name": "坏"})
        document["resources"] += [no_condition, no_basis, bad_date, orphan]
        good_grant = document["grants"][0]
        document["grants"] += [
            good_grant | {"id": "g-items", "data_items": ["a", "zzz"]},
            good_grant | {"id": "g-backwards", "valid_from": "2027-01-01"},
        ]
        problems = problems_of(document)
        expected = [
            "departments[2]",
            "resources[1]",
            "resources[2]",
            "resources[3]",
            "resource 100001/00005: unknown provider",
            "grants[2]",
            "grant g-items: data items not in resource",
        ]
        assert len(problems) == len(expected), problems
        for fragment in expected:
            assert len([p for p in problems if fragment in p]) == 1, (fragment, problems)
        assert "; ".join(problems) in str(CatalogueError(problems))

    def test_load_catalogue_names_the_file(self, tmp_path: Path) -> None:
        """load_catalogue reads a file and names it in problems."""
        path = tmp_path / "catalogue.yaml"
        path.write_text(dump(base_document()), "utf-8")
        assert set(load_catalogue(path).resources) == {RESOURCE}
        document = base_document()
        document["resources"][0]["provider"] = OTHER_VALID_USCC
        path.write_text(dump(document), "utf-8")
        with pytest.raises(CatalogueError) as raised:
            load_catalogue(path)
        assert raised.value.problems == (f"{path}: resource {RESOURCE}: unknown provider",)

    def test_duplicate_resource_code_is_refused(self) -> None:
        """Two resources with one code are a problem, not a silent overwrite."""
        document = base_document()
        document["resources"].append(extra_resource(RESOURCE, display_name="另一个"))
        assert len(problems_of(document)) == 1

    def test_duplicate_grant_id_is_refused(self) -> None:
        """Two grants with one id are a problem (the store keys grants by id)."""
        document = base_document()
        document["grants"].append(document["grants"][0] | {"matter_codes": ["M-2"]})
        assert len(problems_of(document)) == 1
