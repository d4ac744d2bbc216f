"""Reading a catalogue from YAML, validating every row before accepting any."""

from __future__ import annotations

import datetime as _dt
import importlib.resources
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ._model import (
    Catalogue,
    CertificateType,
    DataItem,
    Department,
    DepartmentState,
    Grant,
    Resource,
    ResourceState,
    SharingType,
)
from ._validation import (
    HOLDER_ID_TYPE_CITIZEN_ID,
    HOLDER_ID_TYPE_USCC,
    is_valid_resource_code,
    is_valid_uscc,
)

__all__ = ["CatalogueError", "load_builtin_catalogue", "load_catalogue", "parse_catalogue"]

_T = TypeVar("_T")
_DATA_TYPES = frozenset({"string", "date", "decimal", "integer", "boolean"})


class CatalogueError(ValueError):
    """A catalogue file has bad rows; `problems` lists every one."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


def load_builtin_catalogue() -> Catalogue:
    """The seed catalogue shipped with the package (five registries)."""
    text = importlib.resources.files(__package__).joinpath("seed/catalogue.yaml").read_text("utf-8")
    return parse_catalogue(text, source="seed/catalogue.yaml")


def load_catalogue(path: Path) -> Catalogue:
    return parse_catalogue(path.read_text("utf-8"), source=str(path))


def parse_catalogue(text: str, *, source: str = "<catalogue>") -> Catalogue:
    """Parse and validate; raise CatalogueError naming every bad row."""
    document = yaml.safe_load(text) or {}
    if not isinstance(document, Mapping):
        raise CatalogueError([f"{source}: top level must be a mapping"])
    problems: list[str] = []
    departments = _rows(document, "departments", source, problems, _department)
    resources = _rows(document, "resources", source, problems, _resource)
    certificate_types = _rows(document, "certificate_types", source, problems, _certificate_type)
    grants = _rows(document, "grants", source, problems, _grant)
    _duplicates(source, "department", [d.uscc for d in departments], problems)
    _duplicates(source, "resource", [r.code for r in resources], problems)
    _duplicates(source, "certificate type", [c.key for c in certificate_types], problems)
    _duplicates(source, "certificate type code", [c.type_code for c in certificate_types], problems)
    _duplicates(source, "grant", [g.grant_id for g in grants], problems)
    known_departments = {d.uscc for d in departments}
    known_resources = {r.code: r for r in resources}
    for resource in resources:
        if resource.provider not in known_departments:
            problems.append(f"{source}: resource {resource.code}: unknown provider")
    for ctype in certificate_types:
        if ctype.resource not in known_resources:
            problems.append(f"{source}: certificate type {ctype.key}: unknown resource")
    for grant in grants:
        target = known_resources.get(grant.resource)
        if target is None:
            problems.append(f"{source}: grant {grant.grant_id}: unknown resource")
        elif not grant.data_items <= set(target.data_item_names):
            problems.append(f"{source}: grant {grant.grant_id}: data items not in resource")
        if grant.consumer not in known_departments:
            problems.append(f"{source}: grant {grant.grant_id}: unknown consumer")
    if problems:
        raise CatalogueError(problems)
    return Catalogue.build(departments, resources, certificate_types, grants)


def _duplicates(source: str, kind: str, keys: list[str], problems: list[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            problems.append(f"{source}: duplicate {kind} {key}")
        seen.add(key)


def _rows(
    document: Mapping[str, Any],
    key: str,
    source: str,
    problems: list[str],
    parse: Callable[[Mapping[str, Any]], _T],
) -> list[_T]:
    rows = document.get(key) or []
    parsed: list[_T] = []
    for position, row in enumerate(rows):
        try:
            parsed.append(parse(row))
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{source}: {key}[{position}]: {_describe(exc)}")
    return parsed


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _department(row: Mapping[str, Any]) -> Department:
    uscc = str(row["uscc"])
    if not is_valid_uscc(uscc):
        raise ValueError(f"invalid USCC {uscc!r}")
    return Department(
        uscc=uscc,
        display_name=str(row["display_name"]),
        region_code=str(row.get("region_code", "")),
        state=DepartmentState(row.get("state", "ACTIVE")),
    )


def _resource(row: Mapping[str, Any]) -> Resource:
    code = str(row["code"])
    if not is_valid_resource_code(code):
        raise ValueError(f"invalid resource code {code!r}")
    sharing_type = SharingType(row["sharing_type"])
    condition = str(row.get("sharing_condition", ""))
    legal_basis = str(row.get("legal_basis", ""))
    if sharing_type is SharingType.CONDITIONAL and not condition:
        raise ValueError(f"resource {code}: CONDITIONAL needs a sharing_condition")
    if sharing_type is SharingType.NOT_SHARED and not legal_basis:
        raise ValueError(f"resource {code}: NOT_SHARED needs a legal_basis")
    publish_date = str(row["publish_date"])
    _dt.date.fromisoformat(publish_date)
    items = tuple(_data_item(item) for item in row["data_items"])
    if len({item.name for item in items}) != len(items):
        raise ValueError(f"resource {code}: duplicate data item names")
    return Resource(
        code=code,
        display_name=str(row["display_name"]),
        classification=str(row.get("classification", "")),
        provider=str(row["provider"]),
        summary=str(row.get("summary", "")),
        format=str(row.get("format", "")),
        data_items=items,
        sharing_type=sharing_type,
        sharing_method=str(row.get("sharing_method", "")),
        update_cycle=str(row.get("update_cycle", "")),
        publish_date=publish_date,
        sharing_condition=condition,
        legal_basis=legal_basis,
        open_to_public=bool(row.get("open_to_public", False)),
        state=ResourceState(row.get("state", "PUBLISHED")),
        version=int(row.get("version", 1)),
    )


def _data_item(row: Mapping[str, Any]) -> DataItem:
    data_type = str(row["data_type"])
    if data_type not in _DATA_TYPES:
        raise ValueError(f"data item {row.get('name')!r}: unknown data_type {data_type!r}")
    return DataItem(
        name=str(row["name"]),
        label=str(row["label"]),
        data_type=data_type,
        personal=bool(row.get("personal", False)),
    )


def _certificate_type(row: Mapping[str, Any]) -> CertificateType:
    holder_id_type = str(row["holder_id_type"])
    if holder_id_type not in (HOLDER_ID_TYPE_CITIZEN_ID, HOLDER_ID_TYPE_USCC):
        raise ValueError(f"holder_id_type must be 111 or 001, not {holder_id_type!r}")
    type_code = str(row["type_code"])
    if len(type_code) != 21 or not is_valid_uscc(type_code[:18]) or not type_code[18:].isdigit():
        raise ValueError(f"type_code {type_code!r} is not a USCC + 3 digits")
    return CertificateType(
        key=str(row["key"]),
        type_code=type_code,
        display_name=str(row["display_name"]),
        holder_id_type=holder_id_type,
        issuer=str(row["issuer"]),
        resource=str(row["resource"]),
    )


def _grant(row: Mapping[str, Any]) -> Grant:
    valid_from = _dt.date.fromisoformat(str(row["valid_from"]))
    valid_until = _dt.date.fromisoformat(str(row["valid_until"]))
    if valid_until < valid_from:
        raise ValueError(f"grant {row['id']}: valid_until before valid_from")
    return Grant(
        grant_id=str(row["id"]),
        consumer=str(row["consumer"]),
        resource=str(row["resource"]),
        data_items=frozenset(str(x) for x in row["data_items"]),
        matter_codes=frozenset(str(x) for x in row["matter_codes"]),
        valid_from=valid_from,
        valid_until=valid_until,
    )
