"""Checks of catalogue writes that look beyond the row written: what still uses a
resource's data items (ACTIVE grants, live matters' materials), references to other
rows, and the shape a certificate type key may not take. Used by _admin.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from ._errors import FailedPrecondition
from ._model import (
    Catalogue,
    CertificateType,
    Department,
    GrantState,
    Material,
    MaterialSource,
    Matter,
    Resource,
)
from ._rules import (
    Violations,
    certificate_type_reference_violations,
    certificate_type_violations,
    department_violations,
    matter_reference_violations,
    matter_violations,
    new_certificate_type_key_violations,
    resource_reference_violations,
    resource_violations,
)

__all__: list[str] = []

# Users named in a DATA_ITEMS_IN_USE message; the rest are counted (the message is bounded).
_NAMED_USERS = 10


def validate_department(d: Department, _: Catalogue) -> Violations:
    return department_violations(d)


def validate_resource(r: Resource, snapshot: Catalogue) -> Violations:
    # The snapshot still holds the stored row an update replaces (None on create).
    before = snapshot.resources.get(r.code)
    return resource_violations(r, before) + resource_reference_violations(
        r, snapshot.departments, before
    )


def _certificate_type_violations(c: CertificateType, snapshot: Catalogue) -> Violations:
    # On an update the snapshot still holds the row it replaces: an issuer deleted
    # since may stay, as it may on import.
    found = certificate_type_violations(c) + certificate_type_reference_violations(
        c, snapshot.resources, snapshot.departments, snapshot.certificate_types.get(c.key)
    )
    for other in snapshot.certificate_types.values():
        if other.type_code == c.type_code and other.key != c.key:
            found.append(("type_code", f"already used by certificate type {other.key}"))
    return found


def validate_certificate_type(c: CertificateType, snapshot: Catalogue) -> Violations:
    """An update; the snapshot still holds the stored row it replaces."""
    found = _certificate_type_violations(c, snapshot)
    before = snapshot.certificate_types.get(c.key)
    if not found and before is not None and before.resource != c.resource:
        # A bad request is the caller's to fix first; only a good one meets its users.
        _check_matters_keep_their_items(c, snapshot)
    return found


def validate_new_certificate_type(c: CertificateType, snapshot: Catalogue) -> Violations:
    found = _certificate_type_violations(c, snapshot) + new_certificate_type_key_violations(c.key)
    resource = snapshot.resources.get(c.resource)
    if resource is not None and resource.deleted:
        # On create only: a type whose resource is deleted later stays valid (and a
        # file exported with both still imports), but nobody starts one on it.
        found.append(("resource", "the resource is deleted"))
    return found


def _material_resource(material: Material, snapshot: Catalogue) -> str:
    """The code of the resource a material's data items come from ("" if none)."""
    if material.source is MaterialSource.RESOURCE:
        return material.source_key
    if material.source is MaterialSource.CERTIFICATE_TYPE:
        ctype = snapshot.certificate_types.get(material.source_key)
        return "" if ctype is None else ctype.resource
    return ""


def check_removed_items_unused(before: Resource, after: Resource, snapshot: Catalogue) -> None:
    """Data items an update drops must not be granted (ACTIVE) or needed by a live matter.

    Either would be left naming an item the resource no longer has: a grant that
    silently gives less than was approved, a material that can never be resolved,
    and an export that the import refuses. Revoked and expired grants and deleted
    matters are history, not users.
    """
    removed = set(before.data_item_names) - set(after.data_item_names)
    if not removed:
        return
    used: set[str] = set()
    grants: list[str] = []
    for grant in snapshot.grants:
        granted = grant.data_items & removed
        if granted and grant.resource == after.code and grant.state is GrantState.ACTIVE:
            grants.append(grant.grant_id)
            used |= granted
    matters: list[str] = []
    for code, needed in _needed_by_live_matters(
        snapshot, lambda material: _material_resource(material, snapshot) == after.code
    ):
        if needed & removed:
            matters.append(code)
            used |= needed & removed
    if used:
        raise _in_use(f"resources/{after.code}", used, sorted(grants), sorted(matters))


def _needed_by_live_matters(
    snapshot: Catalogue, uses: Callable[[Material], bool]
) -> Iterator[tuple[str, set[str]]]:
    """(matter code, data items) of each live matter's materials that `uses` selects."""
    for matter in snapshot.matters.values():
        if matter.deleted:
            continue
        needed = {
            name for material in matter.materials if uses(material) for name in material.data_items
        }
        if needed:
            yield matter.code, needed


def _check_matters_keep_their_items(c: CertificateType, snapshot: Catalogue) -> None:
    """A type moved to another resource must still offer what its matters narrow to."""
    target = snapshot.resources.get(c.resource)
    offered = set() if target is None else set(target.data_item_names)
    missing: set[str] = set()
    matters: list[str] = []
    for code, needed in _needed_by_live_matters(
        snapshot,
        lambda material: (
            material.source is MaterialSource.CERTIFICATE_TYPE and material.source_key == c.key
        ),
    ):
        if needed - offered:
            matters.append(code)
            missing |= needed - offered
    if missing:
        raise _in_use(f"certificateTypes/{c.type_code}", missing, [], sorted(matters))


def _in_use(
    name: str, data_items: set[str], grants: list[str], matters: list[str]
) -> FailedPrecondition:
    users = []
    if grants:
        users.append(f"ACTIVE grants {_named(grants)}")
    if matters:
        users.append(f"matters {_named(matters)}")
    metadata = {"name": name, "data_items": ",".join(sorted(data_items))}
    if grants:
        metadata["grants"] = ",".join(grants)
    if matters:
        metadata["matters"] = ",".join(matters)
    return FailedPrecondition(
        f"{name}: data items {', '.join(sorted(data_items))} are still used by "
        f"{' and '.join(users)}; revoke those grants or change those matters first",
        reason="DATA_ITEMS_IN_USE",
        metadata=metadata,
    )


def _named(names: Iterable[str]) -> str:
    listed = list(names)
    shown = ", ".join(listed[:_NAMED_USERS])
    rest = len(listed) - _NAMED_USERS
    return f"{shown} (+{rest} more)" if rest > 0 else shown


def validate_matter(m: Matter, snapshot: Catalogue) -> Violations:
    return matter_violations(m) + matter_reference_violations(
        m, snapshot.resources, snapshot.certificate_types
    )
