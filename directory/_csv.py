"""Import of resource lists as administrators keep them in spreadsheets (CSV).

Columns are named in Chinese or English (资源代码 or code, …); values of 共享类型
may be 无条件共享 / 有条件共享 / 不予共享, 1 / 2 / 3 or the English names; 信息项
is `name:label:type[:personal];…` (full-width ：； accepted). Unlike the YAML
import, a spreadsheet rarely carries every attribute, so for a resource that
exists only the columns present are changed; everything else is kept.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._codes import classification_label, is_valid_classification_code, next_resource_code
from ._errors import InvalidTransition
from ._model import Catalogue, DataItem, Resource, ResourceState, SharingType
from ._rules import check_resource_transition, resource_reference_violations, resource_violations
from ._store import ImportPlan, ImportReport, SqlCatalogueStore

__all__ = ["import_resources_csv"]

_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "code": ("资源代码", "信息资源代码", "code"),
    "display_name": ("资源名称", "信息资源名称", "display_name", "name"),
    "provider": ("提供方代码", "provider"),
    "summary": ("摘要", "信息资源摘要", "summary"),
    "sharing_type": ("共享类型", "sharing_type"),
    "sharing_condition": ("共享条件", "sharing_condition"),
    "legal_basis": ("不予共享依据", "legal_basis"),
    "sharing_method": ("共享方式", "sharing_method"),
    "update_cycle": ("更新周期", "update_cycle"),
    "publish_date": ("发布日期", "publish_date"),
    "data_items": ("信息项", "data_items"),
    "classification_code": ("分类码", "classification_code"),
    "classification": ("资源分类", "信息资源分类", "classification"),
    "format": ("格式", "资源格式", "信息资源格式", "format"),
    "open_to_public": ("开放属性", "是否向社会开放", "open_to_public"),
    "state": ("状态", "state"),
}
_ALIASES = {alias.lower(): column for column, names in _COLUMNS.items() for alias in names}

_SHARING_TYPES = {
    "无条件共享": SharingType.UNCONDITIONAL,
    "无条件": SharingType.UNCONDITIONAL,
    "1": SharingType.UNCONDITIONAL,
    "unconditional": SharingType.UNCONDITIONAL,
    "有条件共享": SharingType.CONDITIONAL,
    "有条件": SharingType.CONDITIONAL,
    "2": SharingType.CONDITIONAL,
    "conditional": SharingType.CONDITIONAL,
    "不予共享": SharingType.NOT_SHARED,
    "不予": SharingType.NOT_SHARED,
    "3": SharingType.NOT_SHARED,
    "not_shared": SharingType.NOT_SHARED,
}
_STATES = {
    "草稿": ResourceState.DRAFT,
    "draft": ResourceState.DRAFT,
    "发布": ResourceState.PUBLISHED,
    "已发布": ResourceState.PUBLISHED,
    "published": ResourceState.PUBLISHED,
    "下线": ResourceState.RETIRED,
    "已下线": ResourceState.RETIRED,
    "retired": ResourceState.RETIRED,
}
_TRUE = frozenset({"是", "开放", "yes", "true", "1", "y"})
_FALSE = frozenset({"否", "不开放", "no", "false", "0", "n", ""})
_PERSONAL = frozenset({"personal", "个人", "是", "true", "1", "yes"})


@dataclass(frozen=True, slots=True)
class _CsvRow:
    line: int
    values: Mapping[str, Any]  # column → parsed value, only for columns in the file
    classification_code: str


def _data_items(text: str) -> tuple[DataItem, ...]:
    items: list[DataItem] = []
    for part in text.replace("；", ";").split(";"):
        if not part.strip():
            continue
        fields = [f.strip() for f in part.replace("：", ":").split(":")]
        if len(fields) < 2 or len(fields) > 4 or not fields[0] or not fields[1]:
            raise ValueError(f"信息项 {part.strip()!r} is not name:label:type")
        data_type = fields[2] if len(fields) > 2 and fields[2] else "string"
        personal = len(fields) == 4 and fields[3].lower() in _PERSONAL
        items.append(DataItem(fields[0], fields[1], data_type, personal))
    return tuple(items)


def _value(column: str, raw: str) -> Any:
    text = raw.strip()
    if column == "sharing_type":
        found = _SHARING_TYPES.get(text.lower())
        if found is None:
            raise ValueError(
                f"共享类型 {text!r} is not 无条件共享, 有条件共享, 不予共享, 1, 2 or 3"
            )
        return found
    if column == "state":
        if not text:
            return ResourceState.PUBLISHED
        state = _STATES.get(text.lower())
        if state is None:
            raise ValueError(f"状态 {text!r} is not 草稿, 已发布 or 已下线")
        return state
    if column == "open_to_public":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"开放属性 {text!r} is not 是 or 否")
    if column == "data_items":
        return _data_items(text)
    return text


def _read(text: str, problems: list[tuple[int, str]]) -> list[_CsvRow]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = next(reader)
    except StopIteration:
        problems.append((1, "the file is empty"))
        return []
    columns: list[str | None] = []
    for cell in header:
        name = cell.strip()
        column = _ALIASES.get(name.lower())
        if name and column is None:
            problems.append((1, f"unknown column {name!r}"))
        if column is not None and column in columns:
            problems.append((1, f"column {name!r} appears twice"))
        columns.append(column)
    for required in ("display_name", "provider", "sharing_type", "data_items"):
        if required not in columns:
            problems.append((1, f"missing column {_COLUMNS[required][0]} ({required})"))
    if "code" not in columns and "classification_code" not in columns:
        problems.append((1, "need a 资源代码 (code) or a 分类码 (classification_code) column"))
    if problems:
        return []
    rows: list[_CsvRow] = []
    line = reader.line_num + 1
    for cells in reader:
        start, line = line, reader.line_num + 1  # a quoted cell may span several lines
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > len(columns):
            problems.append((start, "more cells than columns"))
            continue
        values: dict[str, Any] = {}
        bad: list[str] = []
        for column, raw in zip(columns, cells, strict=False):
            if column is None:
                continue
            try:
                values[column] = _value(column, raw)
            except ValueError as exc:
                bad.append(str(exc))
        if bad:
            problems.append((start, "; ".join(bad)))
            continue
        code = str(values.pop("classification_code", ""))
        rows.append(_CsvRow(start, values, code))
    return rows


def _plan(rows: list[_CsvRow], snapshot: Catalogue, source: str) -> ImportPlan:
    problems: list[tuple[int, str]] = []
    taken = set(snapshot.resources) | {str(r.values.get("code", "")) for r in rows}
    seen: dict[str, int] = {}
    planned: list[Resource] = []
    for row in rows:
        code = str(row.values.get("code", ""))
        prefix = row.classification_code
        if prefix and not is_valid_classification_code(prefix):
            problems.append((row.line, f"分类码 {prefix!r} is not 类+项+目[+细目] digits"))
            continue
        if not code:
            if not prefix:
                problems.append((row.line, "an empty 资源代码 needs a 分类码 to generate one"))
                continue
            code = _matching_code(snapshot, row, prefix) or next_resource_code(prefix, taken)
            taken.add(code)
        elif prefix and not code.startswith(prefix + "/"):
            problems.append((row.line, f"资源代码 {code} does not start with 分类码 {prefix}/"))
            continue
        if code in seen:
            problems.append((row.line, f"resource {code} is also on line {seen[code]}"))
            continue
        seen[code] = row.line
        values = {k: v for k, v in row.values.items() if k != "code"}
        current = snapshot.resources.get(code)
        if prefix and not values.get("classification"):
            values["classification"] = classification_label(prefix)
        elif not values.get("classification") and (current is None or not current.classification):
            # As on create: a `分类码/NNNNN` code names its class (core metadata).
            values["classification"] = classification_label(code.rsplit("/", 1)[0])
        if current is not None:
            resource = dataclasses.replace(current, **values)
            try:
                check_resource_transition(current.state, resource.state)
            except InvalidTransition as exc:
                problems.append((row.line, f"resource {code}: {exc.message}"))
                continue
        else:
            resource = _new_resource(code, values)
        found = resource_violations(resource, current) + resource_reference_violations(
            resource, snapshot.departments, current
        )
        if found:
            described = "; ".join(f"{field}: {text}" for field, text in found)
            problems.append((row.line, f"resource {code}: {described}"))
            continue
        planned.append(resource)
    return ImportPlan(resources=planned, problems=problems, source=source)


def _matching_code(snapshot: Catalogue, row: _CsvRow, prefix: str) -> str:
    """Re-importing a sheet whose rows had no code must not create every resource again."""
    for code, resource in snapshot.resources.items():
        if (
            code.startswith(prefix + "/")
            and resource.provider == row.values.get("provider")
            and resource.display_name == row.values.get("display_name")
        ):
            return code
    return ""


def _new_resource(code: str, values: Mapping[str, Any]) -> Resource:
    return Resource(
        code=code,
        display_name=str(values.get("display_name", "")),
        classification=str(values.get("classification", "")),
        provider=str(values.get("provider", "")),
        summary=str(values.get("summary", "")),
        format=str(values.get("format", "")),
        data_items=values.get("data_items", ()),
        sharing_type=values["sharing_type"],
        sharing_method=str(values.get("sharing_method", "")),
        update_cycle=str(values.get("update_cycle", "")),
        publish_date=str(values.get("publish_date", "")),
        sharing_condition=str(values.get("sharing_condition", "")),
        legal_basis=str(values.get("legal_basis", "")),
        open_to_public=bool(values.get("open_to_public", False)),
        state=values.get("state", ResourceState.PUBLISHED),
    )


async def import_resources_csv(
    text: str, store: SqlCatalogueStore, actor: str, *, source: str = "<resources.csv>"
) -> ImportReport:
    """Validate every row, then upsert all resources or none (ImportRejected, with lines).

    An empty 资源代码 generates `分类码/NNNNN`, unless a resource with the same
    provider and name already exists under that 分类码: then that one is
    updated, so importing the same sheet twice changes nothing. Resources
    missing from the sheet are not deleted. A new resource without 状态 is
    PUBLISHED, as in the seed format.
    """
    problems: list[tuple[int, str]] = []
    rows = _read(text, problems)

    def build(snapshot: Catalogue) -> ImportPlan:
        planned = _plan(rows, snapshot, source)
        return dataclasses.replace(planned, problems=[*problems, *planned.problems])

    return await store.apply_import(build, actor=actor)
