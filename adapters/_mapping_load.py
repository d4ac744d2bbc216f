"""Loading mapping files: every key checked, every error naming file and key.

The format is described in `_mapping`. A ValueError reads
``<file>: <dotted key>: <problem>``, e.g.
``taxation.yaml: resources.105003/00001.fields.total_amount.scale: must be …``.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import os
import re
import string
from pathlib import Path
from typing import Any

import yaml

from ._mapping import (
    FieldMapping,
    NotFoundRule,
    PickRule,
    RegistryMapping,
    RequestTemplate,
    ResourceMapping,
)

__all__ = ["load_builtin_mappings", "load_mapping", "load_mapping_dir", "parse_mapping"]

_PACKAGE = __name__.rpartition(".")[0]
_PLACEHOLDERS = frozenset({"holder_id", "holder_id_type", "request_id"})
_REGISTRY_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
# Shape only: whether the provider is a registered department is the gateway's check.
_USCC_SHAPE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")
_RESOURCE_CODE = re.compile(r"[A-Za-z0-9\-_/]{1,64}")
_TIMEZONE = re.compile(r"([+-])(\d{2}):(\d{2})")
# Offsets in use run from -12:00 to +14:00; anything beyond +-14:00 is a typo.
_MAX_OFFSET = dt.timedelta(hours=14)
# A date format holds exactly one of each of these and otherwise literal text (or %%).
_DATE_DIRECTIVES = ("%Y", "%d", "%m")
_TIME_DIRECTIVES = frozenset({"%H", "%M", "%S", "%f"})
# Two-digit month and day that cannot be swapped unnoticed, and a four-digit year.
_SAMPLE_DATE = dt.date(2031, 12, 25)
_METHODS = ("GET", "POST")
_TYPES = ("string", "date", "decimal")
_MAX_SCALE = 10


class _Reader:
    """Reads one mapping document, naming the file and key in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ValueError:
        return ValueError(f"{self.source}: {key}: {problem}")

    def table(self, value: object, key: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping")
        for name in value:
            if not isinstance(name, str):
                raise self.fail(f"{key}.{name}", "keys must be quoted strings")
            if allowed and name not in allowed:
                raise self.fail(f"{key}.{name}", f"unknown key; expected one of {sorted(allowed)}")
        return value

    def text(self, value: object, key: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, "must be a non-empty string")
        return value

    def path(self, value: object, key: str, *, allow_root: bool = False) -> tuple[str, ...]:
        if allow_root and value == "":
            return ()
        segments = tuple(self.text(value, key).split("."))
        if not all(segments):
            raise self.fail(key, f"empty segment in path {value!r}")
        return segments

    def template(self, value: object, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(key, "must be a string")
        text = value
        try:
            parts = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise self.fail(key, f"bad template: {exc}") from None
        for _, name, spec, conversion in parts:
            if name is None:
                continue
            if name not in _PLACEHOLDERS or spec or conversion:
                raise self.fail(
                    key, f"placeholder {{{name}}} not allowed; use {sorted(_PLACEHOLDERS)}"
                )
        return text

    def json_template(self, value: object, key: str) -> Any:
        if isinstance(value, str):
            return self.template(value, key)
        if isinstance(value, dict):
            table = self.table(value, key, frozenset())
            return {k: self.json_template(v, f"{key}.{k}") for k, v in table.items()}
        if isinstance(value, list):
            return [self.json_template(v, f"{key}.{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, bool | int | float):
            return value
        raise self.fail(key, "must be a JSON value")

    def pairs(self, value: object, key: str) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        table = self.table(value, key, frozenset())
        return tuple((k, self.template(v, f"{key}.{k}")) for k, v in table.items())


_DOCUMENT_KEYS = frozenset({"registry", "provider", "resources"})
_RESOURCE_KEYS = frozenset({"request", "not_found", "success", "record", "fields"})
_REQUEST_KEYS = frozenset({"method", "path", "query", "json", "headers"})
_RULE_KEYS = frozenset({"status", "path", "equals", "empty"})
_SUCCESS_KEYS = frozenset({"path", "equals"})
_FIELD_KEYS = frozenset({"path", "pick", "type", "format", "timezone", "scale", "values", "absent"})
_PICK_KEYS = frozenset({"candidates", "other_than_holder"})


def _request(reader: _Reader, value: object, key: str) -> RequestTemplate:
    table = reader.table(value, key, _REQUEST_KEYS)
    method = table.get("method", "GET")
    if method not in _METHODS:
        raise reader.fail(f"{key}.method", f"must be one of {list(_METHODS)}")
    path = reader.template(table.get("path"), f"{key}.path")
    # "//host/x" would read as a network path: another host than the base URL's.
    if not path.startswith("/") or path.startswith("//"):
        raise reader.fail(f"{key}.path", "must start with a single '/'")
    if _CONTROL.search(path):
        raise reader.fail(f"{key}.path", "must not hold control characters")
    body = table.get("json")
    if body is not None and method != "POST":
        raise reader.fail(f"{key}.json", "a request body needs method POST")
    headers = reader.pairs(table.get("headers"), f"{key}.headers")
    for name, text in headers:
        # A header name is an RFC 9110 token; a CR or LF in either would split the
        # request (aiohttp refuses it at send time: every lookup would fail).
        if _TOKEN.fullmatch(name) is None:
            raise reader.fail(f"{key}.headers.{name}", "is not a valid header name")
        if _CONTROL.search(text):
            raise reader.fail(f"{key}.headers.{name}", "must not hold control characters")
    return RequestTemplate(
        method=method,
        path=path,
        query=reader.pairs(table.get("query"), f"{key}.query"),
        json_body=None if body is None else reader.json_template(body, f"{key}.json"),
        headers=headers,
    )


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _statuses(reader: _Reader, value: object, key: str) -> frozenset[int]:
    listed = value if isinstance(value, list) else [value]
    if not listed or not all(
        isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in listed
    ):
        raise reader.fail(key, "must be an HTTP status or a list of them")
    return frozenset(listed)


def _not_found_rule(reader: _Reader, value: object, key: str) -> NotFoundRule:
    table = reader.table(value, key, _RULE_KEYS)
    statuses = (
        _statuses(reader, table["status"], f"{key}.status") if "status" in table else frozenset()
    )
    if "path" not in table:
        if not statuses or "equals" in table or "empty" in table:
            raise reader.fail(key, "needs 'status', or 'path' with 'equals' or 'empty: true'")
        return NotFoundRule(statuses, None, None, False)
    path = reader.path(table["path"], f"{key}.path")
    if ("equals" in table) == (table.get("empty") is True):
        raise reader.fail(key, "a 'path' needs exactly one of 'equals' or 'empty: true'")
    if "empty" in table and table["empty"] is not True:
        raise reader.fail(f"{key}.empty", "must be true")
    if "equals" in table:
        return NotFoundRule(
            statuses, path, _scalar(reader, table["equals"], f"{key}.equals"), False
        )
    return NotFoundRule(statuses, path, None, True)


def _scalar(reader: _Reader, value: object, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise reader.fail(key, "must be a string or an integer")
    return str(value)


def _timezone(reader: _Reader, value: object, key: str) -> dt.tzinfo:
    match = _TIMEZONE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise reader.fail(key, 'must be an offset like "+08:00"')
    sign, hours, minutes = match.groups()
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes))
    if int(minutes) >= 60 or offset > _MAX_OFFSET:
        raise reader.fail(key, "must be an offset from -14:00 to +14:00, minutes below 60")
    return dt.timezone(-offset if sign == "-" else offset)


def _date_format(reader: _Reader, value: object, key: str) -> str:
    """'iso8601', or a strptime format of one %Y, one %m, one %d, literal text and
    optionally a time of day (%H, %M, %S, %f once each: registries that answer
    '2020/01/02 10:00:00'; the date item keeps the date)."""
    if value == "iso8601":
        return value
    if not isinstance(value, str):
        raise reader.fail(key, "must be a strptime format or 'iso8601'")
    parts = re.split(r"(%.)", value)
    directives = [part for part in parts[1::2] if part != "%%"]
    dates = sorted(d for d in directives if d not in _TIME_DIRECTIVES)
    times = [d for d in directives if d in _TIME_DIRECTIVES]
    if (
        "%" in "".join(parts[::2])
        or dates != sorted(_DATE_DIRECTIVES)
        or len(times) != len(set(times))
    ):
        raise reader.fail(
            key,
            "must hold %Y, %m and %d once each, optionally %H %M %S %f, and otherwise "
            "literal text, or be 'iso8601'",
        )
    try:
        read = dt.datetime.strptime(_SAMPLE_DATE.strftime(value), value).date()
    except ValueError:
        read = None
    if read != _SAMPLE_DATE:
        raise reader.fail(key, f"does not read back the date it writes ({_SAMPLE_DATE})")
    return value


def _field(reader: _Reader, name: str, value: object, key: str) -> FieldMapping:
    table = reader.table(value, key, _FIELD_KEYS)
    pick = None
    if "pick" in table:
        rule = reader.table(table["pick"], f"{key}.pick", _PICK_KEYS)
        candidates = rule.get("candidates")
        if not isinstance(candidates, list) or len(candidates) < 2:
            raise reader.fail(f"{key}.pick.candidates", "must list at least two paths")
        pick = PickRule(
            candidates=tuple(
                reader.path(c, f"{key}.pick.candidates.{i}") for i, c in enumerate(candidates)
            ),
            other_than_holder=reader.path(
                rule.get("other_than_holder"), f"{key}.pick.other_than_holder"
            ),
        )
    kind = table.get("type", "string")
    if kind not in _TYPES:
        raise reader.fail(f"{key}.type", f"must be one of {list(_TYPES)}")
    date_format = table.get("format")
    if (kind == "date") != (date_format is not None):
        raise reader.fail(f"{key}.format", "is required with type date and only with it")
    if date_format is not None:
        _date_format(reader, date_format, f"{key}.format")
    timezone = None
    if "timezone" in table:
        if date_format != "iso8601":
            raise reader.fail(f"{key}.timezone", "applies only to format iso8601")
        timezone = _timezone(reader, table["timezone"], f"{key}.timezone")
    scale = table.get("scale")
    if scale is not None and (
        kind != "decimal"
        or isinstance(scale, bool)
        or not isinstance(scale, int)
        or not 0 <= scale <= _MAX_SCALE
    ):
        raise reader.fail(f"{key}.scale", f"must be an integer 0–{_MAX_SCALE}, with type decimal")
    values = None
    if "values" in table:
        codes = reader.table(table["values"], f"{key}.values", frozenset())
        values = {k: reader.text(v, f"{key}.values.{k}") for k, v in codes.items()}
    absent = table.get("absent", [])
    if not isinstance(absent, list) or not all(isinstance(a, str) for a in absent):
        raise reader.fail(f"{key}.absent", "must be a list of strings")
    return FieldMapping(
        name=name,
        path=reader.path(table.get("path"), f"{key}.path"),
        pick=pick,
        type=kind,
        date_format=date_format,
        timezone=timezone,
        scale=scale,
        values=values,
        absent=frozenset(absent),
    )


def _record(reader: _Reader, table: dict[str, Any], key: str) -> tuple[str, ...]:
    # Required: left out, it would silently mean the document root, and a forgotten
    # line would read the envelope's keys (code, msg) as if they were the record.
    if "record" not in table:
        raise reader.fail(key, 'is required; write record: "" for the document root')
    value = table["record"]
    if not isinstance(value, str):
        raise reader.fail(key, 'must be a dotted path, or "" for the document root')
    return reader.path(value, key, allow_root=True)


def _resource(reader: _Reader, registry: str, code: str, value: object) -> ResourceMapping:
    key = f"resources.{code}"
    table = reader.table(value, key, _RESOURCE_KEYS)
    rules = table.get("not_found", [])
    if not isinstance(rules, list):
        raise reader.fail(f"{key}.not_found", "must be a list of rules")
    success = None
    if "success" in table:
        check = reader.table(table["success"], f"{key}.success", _SUCCESS_KEYS)
        success = (
            reader.path(check.get("path"), f"{key}.success.path"),
            _scalar(reader, check.get("equals"), f"{key}.success.equals"),
        )
    fields = reader.table(table.get("fields"), f"{key}.fields", frozenset())
    if not fields:
        raise reader.fail(f"{key}.fields", "must map at least one data item")
    return ResourceMapping(
        registry=registry,
        resource_code=code,
        request=_request(reader, table.get("request"), f"{key}.request"),
        not_found=tuple(
            _not_found_rule(reader, r, f"{key}.not_found.{i}") for i, r in enumerate(rules)
        ),
        success=success,
        record=_record(reader, table, f"{key}.record"),
        fields=tuple(_field(reader, n, v, f"{key}.fields.{n}") for n, v in fields.items()),
    )


def parse_mapping(document: object, source: str) -> RegistryMapping:
    """Validate a parsed mapping document; `source` names it in every ValueError."""
    reader = _Reader(source)
    table = reader.table(document, "<document>", _DOCUMENT_KEYS)
    registry = reader.text(table.get("registry"), "registry")
    if _REGISTRY_NAME.fullmatch(registry) is None:
        raise reader.fail("registry", "must be lower_snake_case")
    provider = reader.text(table.get("provider"), "provider")
    if _USCC_SHAPE.fullmatch(provider) is None:
        raise reader.fail("provider", "must be an 18-character USCC")
    resources = reader.table(table.get("resources"), "resources", frozenset())
    if not resources:
        raise reader.fail("resources", "must map at least one resource code")
    for code in resources:
        if _RESOURCE_CODE.fullmatch(code) is None:
            raise reader.fail(f"resources.{code}", "is not a valid resource code")
    return RegistryMapping(
        registry=registry,
        provider=provider,
        resources={code: _resource(reader, registry, code, v) for code, v in resources.items()},
        source=source,
    )


class _DuplicateKey(Exception):
    def __init__(self, key: str, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(f"{key}: given twice (lines {first.line + 1} and {again.line + 1})")


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _refuse_duplicate_keys(node: yaml.Node, key: str, seen: set[int]) -> None:
    """Walk the composed document; a key written twice in one mapping is an error."""
    if id(node) in seen:  # an alias: the anchored node was checked where it stands
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], yaml.Mark] = {}
        for name_node, value_node in node.value:
            name = f"{key}.{name_node.value}" if key else str(name_node.value)
            # Keys that are not scalars are refused by the reader; `<<` merges are
            # allowed to repeat keys of the mapping they merge (the local one wins).
            if isinstance(name_node, yaml.ScalarNode) and name_node.tag != _MERGE_TAG:
                spelled = (name_node.tag, name_node.value)
                if spelled in first:
                    raise _DuplicateKey(name, first[spelled], name_node.start_mark)
                first[spelled] = name_node.start_mark
            _refuse_duplicate_keys(value_node, name, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{key}.{index}" if key else str(index), seen)


class _MappingLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice is refused rather than the last kept.

    PyYAML keeps the last of two equal keys without a word; in a mapping file the
    first ``record:`` or field would silently stop counting.
    """

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node, "", set())
        return self.construct_document(node)


def _parse_yaml(text: str, source: str) -> RegistryMapping:
    try:
        document = yaml.load(text, Loader=_MappingLoader)  # a SafeLoader subclass: safe
    except _DuplicateKey as exc:
        raise ValueError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{source}: not valid YAML: {exc}") from None
    return parse_mapping(document, source)


def load_mapping(path: str | os.PathLike[str]) -> RegistryMapping:
    """Read and validate one mapping file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{os.fspath(path)}: not UTF-8 text") from None
    return _parse_yaml(text, os.fspath(path))


def load_builtin_mappings() -> dict[str, RegistryMapping]:
    """The mappings shipped with govshare (adapters/mappings/), by registry name."""
    folder = importlib.resources.files(_PACKAGE).joinpath("mappings")
    result: dict[str, RegistryMapping] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        mapping = _parse_yaml(
            entry.read_text(encoding="utf-8"), f"{_PACKAGE}/mappings/{entry.name}"
        )
        if mapping.registry in result:
            raise ValueError(f"{mapping.source}: registry: {mapping.registry!r} mapped twice")
        result[mapping.registry] = mapping
    return result


def load_mapping_dir(folder: str | os.PathLike[str]) -> dict[str, RegistryMapping]:
    """Every ``*.yaml`` mapping in `folder`, by registry name; one file per registry.

    A ``.yml`` file is refused rather than skipped: an operator who wrote one
    meant it to be read.
    """
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"{path}: mapping_dir is not a folder")
    result: dict[str, RegistryMapping] = {}
    for entry in sorted(path.iterdir()):
        if entry.suffix == ".yml":
            raise ValueError(f"{entry}: mapping files are read only as *.yaml; rename it")
        if entry.suffix != ".yaml" or entry.name.startswith("."):
            continue
        mapping = load_mapping(entry)
        if mapping.registry in result:
            raise ValueError(
                f"{entry}: registry: {mapping.registry!r} is also mapped by "
                f"{result[mapping.registry].source}"
            )
        result[mapping.registry] = mapping
    return result
