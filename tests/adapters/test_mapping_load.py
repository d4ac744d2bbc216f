"""Mapping files are refused on load, naming file and key, when they would otherwise
load and then fail every lookup, invent values, or silently mean something else."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from govshare.adapters import load_mapping, load_mapping_dir, parse_mapping

_VALID = textwrap.dedent(
    """\
    registry: social_insurance
    provider: "113301000024821096"
    resources:
      105009/00001:
        request: {method: GET, path: "/si/{holder_id}"}
        not_found: [{status: 404}]
        record: data
        fields:
          name: {path: xm}
          paid_until: {path: jfzz, type: date, format: "%Y%m%d"}
    """
)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def document(**field: Any) -> dict[str, Any]:
    return {
        "registry": "sample",
        "provider": "11330100002482101D",
        "resources": {
            "R/1": {
                "request": {"path": "/r/{holder_id}"},
                "record": "data",
                "fields": {"d": {"path": "d", **field}},
            }
        },
    }


class TestDuplicateKeys:
    def test_a_field_given_twice_is_refused_with_both_lines(self, tmp_path: Path) -> None:
        """A data item written twice is an error naming file, key and both lines, not the
        last one kept."""
        text = _VALID.replace(
            "      name: {path: xm}\n", "      name: {path: xm}\n      name: {path: xingming}\n"
        )
        expected = (
            f"{tmp_path / 'dup.yaml'}: resources.105009/00001.fields.name: "
            "given twice (lines 9 and 10)"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
            load_mapping(write(tmp_path, "dup.yaml", text))

    def test_a_top_level_key_given_twice_is_refused(self, tmp_path: Path) -> None:
        """A second `registry:` is refused, not silently the registry the file maps."""
        text = _VALID + "registry: other_registry\n"
        with pytest.raises(ValueError, match=r"dup\.yaml: registry: given twice"):
            load_mapping(write(tmp_path, "dup.yaml", text))

    def test_a_merge_may_override_but_not_a_key_written_twice_beside_it(
        self, tmp_path: Path
    ) -> None:
        """A `<<:` merge may repeat a key of the merged mapping (the local value wins, as
        YAML says); the same key written twice beside the merge is still refused."""
        merged = _VALID.replace(
            "      name: {path: xm}",
            "      name: &base {path: xm}\n      alias_name: {<<: *base, path: bm}",
        )
        mapping = load_mapping(write(tmp_path, "merge.yaml", merged))
        fields = {f.name: f.path for f in mapping.resources["105009/00001"].fields}
        assert (fields["name"], fields["alias_name"]) == (("xm",), ("bm",))
        twice = merged.replace("path: bm}", "path: bm, path: cm}")
        with pytest.raises(ValueError, match=r"fields\.alias_name\.path: given twice"):
            load_mapping(write(tmp_path, "merge.yaml", twice))


class TestDateFormats:
    @pytest.mark.parametrize(
        "date_format",
        [
            "%Y%m%Q",  # an unknown directive: fails every lookup
            "%Y%m%",  # a lone % at the end
            "%Y%m",  # no day: strptime would invent the 1st
            "%H",  # no date at all: 1900-01-01 for every record
            "%Y%m%d %H %H",  # the hour twice
            "%Y%m%d%d",  # the day twice
            "%y%m%d",  # a two-digit year guesses the century
        ],
    )
    def test_formats_not_reading_exactly_a_date_are_refused(self, date_format: str) -> None:
        """A format without exactly one %Y, %m and %d (and only literal text or a time of
        day besides) is refused on load."""
        with pytest.raises(
            ValueError, match=r"^f\.yaml: resources\.R/1\.fields\.d\.format: must hold"
        ):
            parse_mapping(document(type="date", format=date_format), "f.yaml")

    @pytest.mark.parametrize("date_format", ["%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S.%f"])
    def test_a_date_with_a_time_of_day_loads(self, date_format: str) -> None:
        """Registries answering '2020/01/02 10:00:00' can be onboarded: a time of day
        next to exactly one %Y %m %d is allowed (the data item keeps the date)."""
        parse_mapping(document(type="date", format=date_format), "f.yaml")

    def test_a_format_that_does_not_read_back_its_own_date_is_refused(self) -> None:
        """A format whose output strptime cannot read back (here a NUL that cuts the
        written date short) is refused on load, not on every lookup."""
        with pytest.raises(ValueError, match=r"fields\.d\.format: does not read back"):
            parse_mapping(document(type="date", format="%Y\x00%m%d"), "f.yaml")


class TestRequests:
    @pytest.mark.parametrize(
        ("request_doc", "problem"),
        [
            ({"path": "//evil.example/r/{holder_id}"}, r"request\.path: must start with a single"),
            ({"path": "/r/{holder_id}\n"}, r"request\.path: must not hold control"),
            (
                {"path": "/r/{holder_id}", "headers": {"X N\n": "1"}},
                r"request\.headers\.X N\n: is not a valid header name",
            ),
            (
                {"path": "/r/{holder_id}", "headers": {"X-Ok": "a\r\nInjected: 1"}},
                r"request\.headers\.X-Ok: must not hold control",
            ),
        ],
        ids=["network-path", "newline-in-path", "bad-header-name", "crlf-in-header"],
    )
    def test_requests_that_could_not_be_sent_are_refused_on_load(
        self, request_doc: dict[str, Any], problem: str
    ) -> None:
        """A path to another host, or a header or path that would split the request, is
        refused when the mapping loads, not found out on every lookup."""
        doc = document()
        doc["resources"]["R/1"]["request"] = request_doc
        with pytest.raises(ValueError, match=problem):
            parse_mapping(doc, "req.yaml")

    def test_ordinary_headers_load(self) -> None:
        """Token header names with templated values still load."""
        doc = document()
        doc["resources"]["R/1"]["request"] = {
            "path": "/r/{holder_id}",
            "headers": {"X-Request-Id": "{request_id}", "Accept-Language": "zh-CN"},
        }
        mapping = parse_mapping(doc, "req.yaml")
        assert dict(mapping.resources["R/1"].request.headers) == {
            "X-Request-Id": "{request_id}",
            "Accept-Language": "zh-CN",
        }


class TestTimeZones:
    @pytest.mark.parametrize("offset", ["+25:00", "+08:99", "+14:01", "-15:00", "+08:60"])
    def test_offsets_beyond_14_hours_or_60_minutes_are_refused(self, offset: str) -> None:
        """An offset outside -14:00..+14:00 or with minutes >= 60 is a ValueError naming
        file and key (not a bare timedelta error, not accepted)."""
        with pytest.raises(ValueError, match=r"^tz\.yaml: resources\.R/1\.fields\.d\.timezone: "):
            parse_mapping(document(type="date", format="iso8601", timezone=offset), "tz.yaml")

    def test_the_bound_is_14_hours_either_way(self) -> None:
        """+14:00 and -14:00 (and +05:45) load; one minute beyond is refused."""
        for offset in ("+14:00", "-14:00", "+05:45"):
            parse_mapping(document(type="date", format="iso8601", timezone=offset), "tz.yaml")
        with pytest.raises(ValueError, match="from -14:00 to \\+14:00"):
            parse_mapping(document(type="date", format="iso8601", timezone="-14:01"), "tz.yaml")


class TestRecord:
    def test_a_missing_record_is_refused_and_an_empty_one_means_the_root(self) -> None:
        """Leaving `record` out is an error that says how to name the root, not a silent
        read of the whole answer; `record: ""` maps an answer that is the record itself."""
        doc = document()
        del doc["resources"]["R/1"]["record"]
        expected = (
            'r.yaml: resources.R/1.record: is required; write record: "" for the document root'
        )
        with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
            parse_mapping(doc, "r.yaml")
        doc["resources"]["R/1"]["record"] = ""
        resource = parse_mapping(doc, "r.yaml").resources["R/1"]
        assert resource.interpret(200, b'{"d": "x"}', "h") == {"d": "x"}

    def test_a_record_left_empty_is_refused_not_read_as_the_root(self) -> None:
        """`record:` with nothing after it (null) is refused: only "" names the root."""
        doc = document()
        doc["resources"]["R/1"]["record"] = None
        with pytest.raises(ValueError, match=r"r\.yaml: resources\.R/1\.record: must be"):
            parse_mapping(doc, "r.yaml")


class TestMappingDir:
    def test_every_yaml_file_is_loaded_and_other_files_ignored(self, tmp_path: Path) -> None:
        """*.yaml files load by registry name; a README beside them is not read."""
        write(tmp_path, "social_insurance.yaml", _VALID)
        write(tmp_path, "README.md", "not a mapping")
        mappings = load_mapping_dir(tmp_path)
        assert list(mappings) == ["social_insurance"]
        assert mappings["social_insurance"].source == str(tmp_path / "social_insurance.yaml")

    def test_two_files_for_one_registry_are_refused_naming_both(self, tmp_path: Path) -> None:
        """Two files mapping the same registry: which one wins would be an accident."""
        write(tmp_path, "a.yaml", _VALID)
        write(tmp_path, "b.yaml", _VALID)
        expected = (
            f"{tmp_path / 'b.yaml'}: registry: 'social_insurance' is also mapped by "
            f"{tmp_path / 'a.yaml'}"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
            load_mapping_dir(tmp_path)

    def test_a_yml_file_is_refused_not_skipped(self, tmp_path: Path) -> None:
        """A .yml file was meant to be read: it is an error, not silently left out."""
        write(tmp_path, "social_insurance.yml", _VALID)
        with pytest.raises(ValueError, match=r"social_insurance\.yml: .*\*\.yaml"):
            load_mapping_dir(tmp_path)

    def test_a_bad_file_is_refused_naming_it(self, tmp_path: Path) -> None:
        """One bad file fails the whole folder with that file's name and key."""
        write(tmp_path, "good.yaml", _VALID)
        write(tmp_path, "zbad.yaml", _VALID.replace("registry: social_insurance", "registry: X"))
        with pytest.raises(ValueError, match=r"zbad\.yaml: registry: must be lower_snake_case"):
            load_mapping_dir(tmp_path)

    def test_a_file_not_in_utf8_is_refused_naming_it(self, tmp_path: Path) -> None:
        """A mapping saved as GBK is a ValueError naming the file, not a bare codec error."""
        (tmp_path / "gbk.yaml").write_bytes(_VALID.replace("xm", "姓名").encode("gbk"))
        with pytest.raises(ValueError, match=r"gbk\.yaml: not UTF-8 text"):
            load_mapping_dir(tmp_path)

    def test_a_missing_folder_is_refused(self, tmp_path: Path) -> None:
        """A mapping_dir that does not exist is an error, not an empty set of mappings."""
        with pytest.raises(ValueError, match="mapping_dir is not a folder"):
            load_mapping_dir(tmp_path / "nowhere")
