"""Validation rules for catalogue items, as lists of (field, description).

Rules on one item never raise: they return every violation, so a form, an
import file or an RPC can report them all at once. Reference rules take the
rest of the directory as mappings, so the same rule serves a YAML seed (the
file's own rows), an import (the file plus the store) and a single write.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidTransition
from ._model import (
    CertificateType,
    Department,
    Grant,
    GrantState,
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
    "new_certificate_type_key_violations",
    "resource_reference_violations",
    "resource_violations",
]

Violations = list[tuple[str, str]]

DATA_TYPES = frozenset({"string", "date", "decimal", "integer", "boolean"})

_KEY = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REGION = re.compile(r"[0-9]{6}")
_DATA_ITEM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_THREE_DIGITS = re.compile(r"[0-9]{3}")  # not str.isdigit: that takes ¹²³, ٠٠١ and ００１ too

# Column limits (directory/_tables.py) that no other rule implies. PostgreSQL enforces
# them and SQLite does not, so a row past one must be refused here, alike on both
# databases and with the row named, rather than fail the write on one of them.
_MAX_VERSION = 2**31 - 1  # `version` is an INTEGER column
_MAX_TIME_TEXT = 40  # `delete_time` is ISO 8601 text in a VARCHAR(40)

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


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_has_nul(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, tuple | frozenset):
        return any(_has_nul(v) for v in value)
    return False


def _nul_violations(item: Any) -> Violations:
    """PostgreSQL text cannot hold a NUL, so the store refuses one on both databases as it
    writes (_core.py); as a rule it is reported with the others, and for an import by line."""
    return [
        (f.name, "must not contain NUL characters")
        for f in dataclasses.fields(item)
        if _has_nul(getattr(item, f.name))
    ]


def department_violations(d: Department) -> Violations:
    found: Violations = _nul_violations(d)
    if not is_valid_uscc(d.uscc):
        found.append(("uscc", f"invalid USCC {d.uscc!r}"))
    if not d.display_name.strip():
        found.append(("display_name", "must not be empty"))
    if d.region_code and _REGION.fullmatch(d.region_code) is None:
        found.append(("region_code", "must be six digits"))
    return found + _stored_field_violations(d.version, d.delete_time)


def _stored_field_violations(version: int, delete_time: _dt.datetime | None) -> Violations:
    """`version` and `delete_time` within their columns (the store sets both on its writes,
    but an import file carries them)."""
    found: Violations = []
    if version < 1:
        found.append(("version", "must be at least 1"))
    elif version > _MAX_VERSION:
        found.append(("version", f"must be at most {_MAX_VERSION}"))
    if delete_time is not None and len(delete_time.isoformat()) > _MAX_TIME_TEXT:
        # Only an offset with seconds and microseconds makes an ISO timestamp this long.
        found.append(("delete_time", f"{delete_time.isoformat()!r} is too long a timestamp"))
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
    found += _nul_violations(r)
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
    return found + _stored_field_violations(r.version, r.delete_time)


# A type code's shape (GB/T 36903: the defining authority's USCC + 3 digits; ASCII
# only, as in the certificate identifier). `certificateTypes/{name}` resolves a type
# code before a key, so a key of this shape could only ever name another type.
_TYPE_CODE_SHAPE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}[0-9]{3}")


def new_certificate_type_key_violations(key: str) -> Violations:
    """A certificate type that is new to the directory (created, or first imported)
    may not take a key shaped like a type code; stored ones keep theirs."""
    if _TYPE_CODE_SHAPE.fullmatch(key) is None:
        return []
    return [("key", "must not look like a type code (USCC + 3 digits): names resolve those first")]


def certificate_type_violations(c: CertificateType) -> Violations:
    found: Violations = _nul_violations(c)
    if not is_valid_key(c.key):
        found.append(("key", f"invalid key {c.key!r}"))
    if c.holder_id_type not in (HOLDER_ID_TYPE_CITIZEN_ID, HOLDER_ID_TYPE_USCC):
        found.append(("holder_id_type", f"must be 111 or 001, not {c.holder_id_type!r}"))
    code = c.type_code
    if len(code) != 21 or not is_valid_uscc(code[:18]) or not _THREE_DIGITS.fullmatch(code[18:]):
        found.append(("type_code", f"type_code {code!r} is not a USCC + 3 digits"))
    if not c.display_name.strip():
        found.append(("display_name", "must not be empty"))
    return found + _stored_field_violations(c.version, c.delete_time)


def matter_violations(m: Matter) -> Violations:
    found: Violations = _nul_violations(m)
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
    return found + _stored_field_violations(m.version, m.delete_time)


def grant_violations(g: Grant) -> Violations:
    found: Violations = _nul_violations(g)
    if not is_valid_key(g.grant_id):
        found.append(("grant_id", f"invalid grant id {g.grant_id!r}"))
    if g.valid_until < g.valid_from:
        found.append(("valid_until", f"grant {g.grant_id}: valid_until before valid_from"))
    if not g.data_items:
        found.append(("data_items", "must not be empty"))
    if not g.matter_codes:
        found.append(("matter_codes", "must not be empty"))
    if g.application_id and not is_valid_key(g.application_id):
        # An application id is a key (the desk makes them no longer than 60), and the
        # grants table holds it in a VARCHAR(64).
        found.append(("application_id", "must be [A-Za-z0-9_.-], 1-64 long"))
    return found


def _department_reference(
    field: str, uscc: str, departments: Mapping[str, Department], *, held: bool
) -> Violations:
    found = departments.get(uscc)
    if found is None:
        return [(field, f"unknown {field}")]
    if found.deleted and not held:
        return [(field, f"the {field} {uscc} is a deleted department")]
    return []


def resource_reference_violations(
    r: Resource, departments: Mapping[str, Department], before: Resource | None = None
) -> Violations:
    """The provider must be a department of the directory, and a live one unless the
    row already named it (`before`, the row `r` replaces, has the same provider).

    A soft-deleted department is still in the directory, and DeleteDepartment leaves
    the rows naming it as they are; those rows must stay writable and importable. No
    write may point a row at a deleted department anew. A file row that the store does
    not hold is passed as its own `before`: it is a copy of a row as it stood in the
    directory the file came from (a seed, or an export seeding another store).
    """
    held = before is not None and before.provider == r.provider
    return _department_reference("provider", r.provider, departments, held=held)


def certificate_type_reference_violations(
    c: CertificateType,
    resources: Mapping[str, Resource],
    departments: Mapping[str, Department],
    before: CertificateType | None = None,
) -> Violations:
    """The resource must exist (deleted or not); the issuer as a resource's provider."""
    found: Violations = []
    if c.resource not in resources:
        found.append(("resource", "unknown resource"))
    held = before is not None and before.issuer == c.issuer
    found += _department_reference("issuer", c.issuer, departments, held=held)
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
        # A deleted matter keeps its materials as they were; the API lets the items go.
        elif not m.deleted and not set(material.data_items) <= set(resource.data_item_names):
            found.append((f"{where}.data_items", "data items not in resource"))
    return found


def grant_reference_violations(
    g: Grant, departments: Mapping[str, Department], resources: Mapping[str, Resource]
) -> Violations:
    found: Violations = []
    target = resources.get(g.resource)
    if target is None:
        found.append(("resource", "unknown resource"))
    # A revoked or expired grant records what it granted; the API lets those items go.
    elif g.state is GrantState.ACTIVE and not g.data_items <= set(target.data_item_names):
        found.append(("data_items", "data items not in resource"))
    if g.consumer not in departments:
        found.append(("consumer", "unknown consumer"))
    return found
