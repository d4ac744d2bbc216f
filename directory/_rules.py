"""Validation rules for catalogue items, as lists of (field, description).

Rules on one item never raise: they return every violation, so a form, an
import file or an RPC can report them all at once. Reference rules take the
rest of the directory as mappings, so the same rule serves a YAML seed (the
file's own rows), an import (the file plus the store) and a single write.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping

from ._errors import InvalidTransition
from ._model import (
    CertificateType,
    Department,
    Grant,
    MaterialSource,
    Matter,
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

__all__ = [
    "DATA_TYPES",
    "Violations",
    "certificate_type_reference_violations",
    "certificate_type_violations",
    "check_resource_transition",
    "core_metadata_violations",
    "department_violations",
    "grant_reference_violations",
    "grant_violations",
    "is_valid_iso_date",
    "is_valid_key",
    "matter_reference_violations",
    "matter_violations",
    "resource_reference_violations",
    "resource_violations",
]

Violations = list[tuple[str, str]]

DATA_TYPES = frozenset({"string", "date", "decimal", "integer", "boolean"})

_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REGION = re.compile(r"[0-9]{6}")
_DATA_ITEM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")

# 信息资源分类, 摘要, 格式, 共享方式, 更新周期: core metadata (发改高技〔2017〕1272号)
# kept as text; name, code, provider, data items and publish date are checked apart.
_CORE_TEXT_FIELDS = ("classification", "summary", "format", "sharing_method", "update_cycle")

_RESOURCE_TRANSITIONS: Mapping[ResourceState, frozenset[ResourceState]] = {
    ResourceState.DRAFT: frozenset({ResourceState.PUBLISHED}),
    ResourceState.PUBLISHED: frozenset({ResourceState.RETIRED}),
    ResourceState.RETIRED: frozenset(),
}


def is_valid_key(key: str) -> bool:
    """Keys of certificate types, matters, grants and applications: `[A-Za-z0-9_.-]{1,64}`."""
    return _KEY.fullmatch(key) is not None


def is_valid_iso_date(text: str) -> bool:
    """Exactly YYYY-MM-DD and a real day (fromisoformat alone also takes 20250301)."""
    if _ISO_DATE.fullmatch(text) is None:
        return False
    try:
        _dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def check_resource_transition(current: ResourceState, new: ResourceState) -> None:
    """DRAFT → PUBLISHED → RETIRED only; staying in the same state is not a transition."""
    if new is not current and new not in _RESOURCE_TRANSITIONS[current]:
        raise InvalidTransition(
            f"a {current.value} resource cannot become {new.value}",
            reason="RESOURCE_STATE_TRANSITION",
            metadata={"from": current.value, "to": new.value},
        )


def department_violations(d: Department) -> Violations:
    found: Violations = []
    if not is_valid_uscc(d.uscc):
        found.append(("uscc", f"invalid USCC {d.uscc!r}"))
    if not d.display_name.strip():
        found.append(("display_name", "must not be empty"))
    if d.region_code and _REGION.fullmatch(d.region_code) is None:
        found.append(("region_code", "must be six digits"))
    if d.version < 1:
        found.append(("version", "must be at least 1"))
    return found


def core_metadata_violations(r: Resource, before: Resource | None = None) -> Violations:
    """The guide's core metadata (DOMAIN.md): a draft may be incomplete, a published
    (or retired) entry of the catalogue may not.

    Required when the entry is published (new, or out of DRAFT) and never to be
    cleared. A row published before the rule existed, with a field still empty, can
    still be retired, updated elsewhere and re-imported: refusing that would freeze it.
    """
    if r.state is ResourceState.DRAFT:
        return []
    publishing = before is None or before.state is ResourceState.DRAFT
    found: Violations = []
    for name in _CORE_TEXT_FIELDS:
        had = before is not None and str(getattr(before, name)).strip()
        if not str(getattr(r, name)).strip() and (publishing or had):
            found.append((name, f"a {r.state.value} resource needs a {name}"))
    if not r.publish_date and (publishing or (before is not None and before.publish_date)):
        found.append(("publish_date", f"a {r.state.value} resource needs a publish_date"))
    if not r.data_items and (publishing or (before is not None and before.data_items)):
        found.append(("data_items", f"a {r.state.value} resource needs data items"))
    return found


def resource_violations(
    r: Resource, before: Resource | None = None, *, core_metadata: bool = True
) -> Violations:
    """What is wrong with `r`; `before` is the stored row it replaces, if any.

    `core_metadata=False` leaves the core-metadata rule to a later check that knows
    the stored row (a file being imported is parsed before the store is read).
    """
    found: Violations = core_metadata_violations(r, before) if core_metadata else []
    if not is_valid_resource_code(r.code):
        found.append(("code", f"invalid resource code {r.code!r}"))
    if not r.display_name.strip():
        found.append(("display_name", "must not be empty"))
    if r.sharing_type is SharingType.CONDITIONAL and not r.sharing_condition.strip():
        found.append(("sharing_condition", "CONDITIONAL needs a sharing_condition"))
    if r.sharing_type is SharingType.NOT_SHARED and not r.legal_basis.strip():
        found.append(("legal_basis", "NOT_SHARED needs a legal_basis"))
    if r.publish_date and not is_valid_iso_date(r.publish_date):
        found.append(("publish_date", f"{r.publish_date!r} is not a real YYYY-MM-DD date"))
    names = [item.name for item in r.data_items]
    if len(set(names)) != len(names):
        found.append(("data_items", "duplicate data item names"))
    for position, item in enumerate(r.data_items):
        where = f"data_items[{position}]"
        if _DATA_ITEM_NAME.fullmatch(item.name) is None:
            found.append((f"{where}.name", f"data item name {item.name!r} is not an identifier"))
        if not item.label.strip():
            found.append((f"{where}.label", "must not be empty"))
        if item.data_type not in DATA_TYPES:
            found.append(
                (
                    f"{where}.data_type",
                    f"data item {item.name!r}: unknown data_type {item.data_type!r}",
                )
            )
    if r.version < 1:
        found.append(("version", "must be at least 1"))
    return found


def certificate_type_violations(c: CertificateType) -> Violations:
    found: Violations = []
    if not is_valid_key(c.key):
        found.append(("key", f"invalid key {c.key!r}"))
    if c.holder_id_type not in (HOLDER_ID_TYPE_CITIZEN_ID, HOLDER_ID_TYPE_USCC):
        found.append(("holder_id_type", f"must be 111 or 001, not {c.holder_id_type!r}"))
    code = c.type_code
    if len(code) != 21 or not is_valid_uscc(code[:18]) or not code[18:].isdigit():
        found.append(("type_code", f"type_code {code!r} is not a USCC + 3 digits"))
    if not c.display_name.strip():
        found.append(("display_name", "must not be empty"))
    if c.version < 1:
        found.append(("version", "must be at least 1"))
    return found


def matter_violations(m: Matter) -> Violations:
    found: Violations = []
    if not is_valid_key(m.code):
        found.append(("code", f"invalid matter code {m.code!r}"))
    if not m.name.strip():
        found.append(("name", "must not be empty"))
    names = [material.name for material in m.materials]
    if len(set(names)) != len(names):
        found.append(("materials", "duplicate material names"))
    for position, material in enumerate(m.materials):
        where = f"materials[{position}]"
        if not material.name.strip():
            found.append((f"{where}.name", "must not be empty"))
        submitted = material.source is MaterialSource.APPLICANT_SUBMITS
        if submitted and (material.source_key or material.data_items):
            found.append((f"{where}.source_key", "an APPLICANT_SUBMITS material has no source"))
        if not submitted and not material.source_key:
            found.append((f"{where}.source_key", f"a {material.source.value} material needs one"))
    if m.version < 1:
        found.append(("version", "must be at least 1"))
    return found


def grant_violations(g: Grant) -> Violations:
    found: Violations = []
    if not is_valid_key(g.grant_id):
        found.append(("grant_id", f"invalid grant id {g.grant_id!r}"))
    if g.valid_until < g.valid_from:
        found.append(("valid_until", f"grant {g.grant_id}: valid_until before valid_from"))
    if not g.data_items:
        found.append(("data_items", "must not be empty"))
    if not g.matter_codes:
        found.append(("matter_codes", "must not be empty"))
    return found


def _live(items: Mapping[str, Department], key: str) -> bool:
    found = items.get(key)
    return found is not None and not found.deleted


def resource_reference_violations(r: Resource, departments: Mapping[str, Department]) -> Violations:
    return [] if _live(departments, r.provider) else [("provider", "unknown provider")]


def certificate_type_reference_violations(
    c: CertificateType, resources: Mapping[str, Resource], departments: Mapping[str, Department]
) -> Violations:
    found: Violations = []
    if c.resource not in resources:
        found.append(("resource", "unknown resource"))
    if not _live(departments, c.issuer):
        found.append(("issuer", "unknown issuer"))
    return found


def matter_reference_violations(
    m: Matter, resources: Mapping[str, Resource], certificate_types: Mapping[str, CertificateType]
) -> Violations:
    found: Violations = []
    for position, material in enumerate(m.materials):
        where = f"materials[{position}]"
        resource_code = material.source_key
        if material.source is MaterialSource.APPLICANT_SUBMITS or not material.source_key:
            continue  # a missing key is matter_violations' to report
        if material.source is MaterialSource.CERTIFICATE_TYPE:
            ctype = certificate_types.get(material.source_key)
            if ctype is None:
                found.append((f"{where}.source_key", "unknown certificate type"))
                continue
            resource_code = ctype.resource
        resource = resources.get(resource_code)
        if resource is None:
            found.append((f"{where}.source_key", "unknown resource"))
        elif not set(material.data_items) <= set(resource.data_item_names):
            found.append((f"{where}.data_items", "data items not in resource"))
    return found


def grant_reference_violations(
    g: Grant, departments: Mapping[str, Department], resources: Mapping[str, Resource]
) -> Violations:
    found: Violations = []
    target = resources.get(g.resource)
    if target is None:
        found.append(("resource", "unknown resource"))
    elif not g.data_items <= set(target.data_item_names):
        found.append(("data_items", "data items not in resource"))
    if g.consumer not in departments:
        found.append(("consumer", "unknown consumer"))
    return found
