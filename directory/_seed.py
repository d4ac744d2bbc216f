"""Reading a catalogue from YAML, validating every row before accepting any.

The same reader serves `parse_catalogue` (a file that IS the directory: the
seed) and the import (a file merged INTO a directory, _import.py); each row
keeps its line number so an import can say where a bad row is.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml

from ._codec import (
    certificate_type_from_doc,
    department_from_doc,
    grant_from_doc,
    matter_from_doc,
    resource_from_doc,
)
from ._model import Catalogue, CertificateType, Department, Grant, Matter, Resource
from ._rules import (
    Violations,
    certificate_type_reference_violations,
    certificate_type_violations,
    department_violations,
    grant_reference_violations,
    grant_violations,
    matter_reference_violations,
    matter_violations,
    new_certificate_type_key_violations,
    resource_reference_violations,
    resource_violations,
)

__all__ = ["CatalogueError", "load_builtin_catalogue", "load_catalogue", "parse_catalogue"]

_T = TypeVar("_T")

SECTIONS = ("departments", "resources", "certificate_types", "matters", "grants")

# The fields a row may carry: what the export writes (the *_to_doc documents).
# A misspelt field (`sharing_condtion`) would otherwise be dropped without a word,
# as unknown CSV columns are refused.
_DATA_ITEM_FIELDS = frozenset({"name", "label", "data_type", "personal"})
_MATERIAL_FIELDS = frozenset({"name", "source", "source_key", "data_items"})
_ROW_FIELDS: Mapping[str, frozenset[str]] = {
    "departments": frozenset(
        {"uscc", "display_name", "region_code", "state", "version", "delete_time"}
    ),
    "resources": frozenset(
        {
            "code",
            "display_name",
            "classification",
            "provider",
            "summary",
            "format",
            "sharing_type",
            "sharing_condition",
            "legal_basis",
            "sharing_method",
            "open_to_public",
            "update_cycle",
            "publish_date",
            "state",
            "version",
            "delete_time",
            "data_items",
        }
    ),
    "certificate_types": frozenset(
        {
            "key",
            "type_code",
            "display_name",
            "holder_id_type",
            "issuer",
            "resource",
            "version",
            "delete_time",
        }
    ),
    "matters": frozenset({"code", "name", "materials", "version", "delete_time"}),
    "grants": frozenset(
        {
            "id",
            "consumer",
            "resource",
            "data_items",
            "matter_codes",
            "valid_from",
            "valid_until",
            "state",
            "application_id",
        }
    ),
}
# Lists of mappings inside a row, and the fields their entries may carry.
_NESTED_FIELDS: Mapping[tuple[str, str], frozenset[str]] = {
    ("resources", "data_items"): _DATA_ITEM_FIELDS,
    ("matters", "materials"): _MATERIAL_FIELDS,
}


class CatalogueError(ValueError):
    """A catalogue file has bad rows; `problems` lists every one."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class Problem:
    """A bad row: its line, what it is (`resources[1]`, `grant g-1`) and what is wrong."""

    line: int
    label: str
    text: str

    def plain(self, source: str) -> str:
        return f"{source}: {self.label}: {self.text}" if self.label else f"{source}: {self.text}"

    def located(self) -> tuple[int, str]:
        return self.line, f"{self.label}: {self.text}" if self.label else self.text


@dataclass(frozen=True, slots=True)
class Row(Generic[_T]):
    item: _T
    line: int


@dataclass
class ParsedFile:
    """Every well-formed row of a catalogue file, and a problem for every other."""

    departments: list[Row[Department]] = field(default_factory=list)
    resources: list[Row[Resource]] = field(default_factory=list)
    certificate_types: list[Row[CertificateType]] = field(default_factory=list)
    matters: list[Row[Matter]] = field(default_factory=list)
    grants: list[Row[Grant]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def load_builtin_catalogue() -> Catalogue:
    """The seed catalogue shipped with the package (five registries)."""
    text = importlib.resources.files(__package__).joinpath("seed/catalogue.yaml").read_text("utf-8")
    return parse_catalogue(text, source="seed/catalogue.yaml")


def load_catalogue(path: Path) -> Catalogue:
    return parse_catalogue(path.read_text("utf-8"), source=str(path))


def parse_catalogue(text: str, *, source: str = "<catalogue>") -> Catalogue:
    """Parse and validate; raise CatalogueError naming every bad row."""
    parsed = parse_file(text)
    if parsed.problems and parsed.problems[0].label == "<document>":
        raise CatalogueError([f"{source}: {parsed.problems[0].text}"])
    departments = [row.item for row in parsed.departments]
    resources = [row.item for row in parsed.resources]
    certificate_types = [row.item for row in parsed.certificate_types]
    matters = [row.item for row in parsed.matters]
    grants = [row.item for row in parsed.grants]
    problems = parsed.problems + check_references(
        parsed,
        departments={d.uscc: d for d in departments},
        resources={r.code: r for r in resources},
        certificate_types={c.key: c for c in certificate_types},
    )
    if problems:
        raise CatalogueError([p.plain(source) for p in problems])
    return Catalogue.build(departments, resources, certificate_types, grants, matters)


class _Loader(yaml.SafeLoader):
    """safe_load's loader, except that an unquoted date-like value which is no real
    day (`2025-02-30`) stays text: the row rules then say which row holds it,
    where PyYAML would raise a bare ValueError for the whole file."""


def _timestamp_or_text(loader: _Loader, node: yaml.ScalarNode) -> object:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_or_text)


def _section_lines(text: str) -> tuple[dict[str, int], dict[str, list[int]]]:
    """1-based lines of each top-level key and of every entry of each section.

    safe_load drops the marks, so the node tree from yaml.compose supplies them.
    """
    keys: dict[str, int] = {}
    lines: dict[str, list[int]] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            keys[str(key.value)] = key.start_mark.line + 1
            if isinstance(value, yaml.SequenceNode):
                lines[str(key.value)] = [node.start_mark.line + 1 for node in value.value]
    return keys, lines


def parse_file(text: str, *, core_metadata: bool = True) -> ParsedFile:
    """Parse rows section by section; a document-level failure is one `<document>` problem.

    `core_metadata=False`: resources' core metadata is left to the import plan, which
    knows the stored rows (`core_metadata_violations`).
    """
    parsed = ParsedFile()
    try:
        document = yaml.load(text, Loader=_Loader) or {}  # a SafeLoader: no arbitrary objects
        key_lines, lines = _section_lines(text)
    except (yaml.YAMLError, ValueError) as exc:
        # ValueError: a value PyYAML cannot build, e.g. `!!float abc`.
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        parsed.problems.append(Problem(line, "<document>", f"not valid YAML: {exc}"))
        return parsed
    if not isinstance(document, Mapping):
        parsed.problems.append(Problem(1, "<document>", "top level must be a mapping"))
        return parsed
    for key in document:
        if key not in SECTIONS:
            parsed.problems.append(
                Problem(key_lines.get(str(key), 1), "", f"unknown section {key!r}")
            )
    _rows(
        document,
        lines,
        "departments",
        department_from_doc,
        department_violations,
        parsed.departments,
        parsed,
    )
    _rows(
        document,
        lines,
        "resources",
        resource_from_doc,
        resource_violations if core_metadata else _without_core_metadata,
        parsed.resources,
        parsed,
    )
    _rows(
        document,
        lines,
        "certificate_types",
        certificate_type_from_doc,
        certificate_type_violations,
        parsed.certificate_types,
        parsed,
    )
    _rows(document, lines, "matters", matter_from_doc, matter_violations, parsed.matters, parsed)
    _rows(document, lines, "grants", grant_from_doc, grant_violations, parsed.grants, parsed)
    return parsed


def _without_core_metadata(r: Resource) -> Violations:
    return resource_violations(r, core_metadata=False)


def _rows(
    document: Mapping[str, Any],
    lines: Mapping[str, list[int]],
    section: str,
    parse: Callable[[Mapping[str, Any]], _T],
    rules: Callable[[_T], Violations],
    into: list[Row[_T]],
    parsed: ParsedFile,
) -> None:
    rows = document.get(section) or []
    section_lines = lines.get(section, [])
    if not isinstance(rows, list):
        parsed.problems.append(Problem(1, section, "must be a list"))
        return
    for position, raw in enumerate(rows):
        line = section_lines[position] if position < len(section_lines) else 1
        label = f"{section}[{position}]"
        unknown = _unknown_fields(section, raw)
        if unknown:
            parsed.problems.append(Problem(line, label, "; ".join(unknown)))
            continue
        try:
            item = parse(raw)
        except (KeyError, TypeError, ValueError) as exc:
            parsed.problems.append(Problem(line, label, _describe(exc)))
            continue
        found = rules(item)
        if found:
            parsed.problems.append(Problem(line, label, "; ".join(text for _, text in found)))
            continue
        into.append(Row(item, line))


def _unknown_fields(section: str, raw: object) -> list[str]:
    """`unknown field 'x'` for each field of the row (or of its nested entries) that
    no item of the section has; a row that is not a mapping is the parser's to report."""
    if not isinstance(raw, Mapping):
        return []
    found = [f"unknown field {key!r}" for key in raw if key not in _ROW_FIELDS[section]]
    for (kind, nested), allowed in _NESTED_FIELDS.items():
        entries = raw.get(nested) if kind == section else None
        for position, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, Mapping):
                found += [
                    f"unknown field {key!r} in {nested}[{position}]"
                    for key in entry
                    if key not in allowed
                ]
    return found


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _duplicates(kind: str, rows: Iterable[tuple[str, int]]) -> list[Problem]:
    seen: set[str] = set()
    found: list[Problem] = []
    for key, line in rows:
        if key in seen:
            found.append(Problem(line, "", f"duplicate {kind} {key}"))
        seen.add(key)
    return found


def check_references(
    parsed: ParsedFile,
    *,
    departments: Mapping[str, Department],
    resources: Mapping[str, Resource],
    certificate_types: Mapping[str, CertificateType],
    stored: Catalogue | None = None,
) -> list[Problem]:
    """Duplicates within the file, and references resolved against the given directory.

    `stored` is the directory an import writes into: a row it holds may keep naming a
    deleted department only if the stored row names it too. Rows it does not hold, and
    every row of a seed (no `stored`), are copies of rows as they stood, which may.
    """
    found = _duplicates("department", ((r.item.uscc, r.line) for r in parsed.departments))
    found += _duplicates("resource", ((r.item.code, r.line) for r in parsed.resources))
    found += _duplicates(
        "certificate type", ((r.item.key, r.line) for r in parsed.certificate_types)
    )
    found += _duplicates(
        "certificate type code", ((r.item.type_code, r.line) for r in parsed.certificate_types)
    )
    found += _duplicates("matter", ((r.item.code, r.line) for r in parsed.matters))
    found += _duplicates("grant", ((r.item.grant_id, r.line) for r in parsed.grants))

    def add(line: int, label: str, violations: Violations) -> None:
        found.extend(Problem(line, label, text) for _, text in violations)

    stored_resources: Mapping[str, Resource] = stored.resources if stored is not None else {}
    stored_types: Mapping[str, CertificateType] = (
        stored.certificate_types if stored is not None else {}
    )
    for r in parsed.resources:
        before = stored_resources.get(r.item.code, r.item)
        add(
            r.line,
            f"resource {r.item.code}",
            resource_reference_violations(r.item, departments, before),
        )
    in_file = {c.item.key for c in parsed.certificate_types}
    for c in parsed.certificate_types:
        stored_type = stored_types.get(c.item.key, c.item)
        add(
            c.line,
            f"certificate type {c.item.key}",
            certificate_type_reference_violations(c.item, resources, departments, stored_type),
        )
        if c.item.key not in stored_types:
            # As CreateCertificateType: only a type the directory does not hold yet.
            add(
                c.line,
                f"certificate type {c.item.key}",
                new_certificate_type_key_violations(c.item.key),
            )
        for other in certificate_types.values():
            # Codes clashing within the file are duplicates above; here: with the rest.
            if other.type_code == c.item.type_code and other.key not in in_file:
                found.append(
                    Problem(c.line, f"certificate type {c.item.key}", "type_code already used")
                )
    for m in parsed.matters:
        add(
            m.line,
            f"matter {m.item.code}",
            matter_reference_violations(m.item, resources, certificate_types),
        )
    for g in parsed.grants:
        add(
            g.line,
            f"grant {g.item.grant_id}",
            grant_reference_violations(g.item, departments, resources),
        )
    return found
