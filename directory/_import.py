"""Catalogue export to, and import from, the seed YAML format.

The export is the seed format (departments, resources, certificate types,
matters, grants; never applications), keyed items sorted by natural key so two
exports diff cleanly. The import validates every row before writing any, names each
bad row by its line, and upserts in one transaction; see `import_catalogue_yaml`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import yaml

from ._codec import (
    certificate_type_to_doc,
    department_to_doc,
    grant_to_doc,
    matter_to_doc,
    resource_to_doc,
)
from ._errors import ImportRejected, InvalidTransition
from ._model import Catalogue, GrantState, SharingApplication
from ._rules import check_resource_transition, core_metadata_violations
from ._seed import ParsedFile, Problem, Row, check_references, parse_file
from ._store import CatalogueStore, ImportPlan, ImportReport, SqlCatalogueStore, same_content

__all__ = ["dump_catalogue_yaml", "export_catalogue_yaml", "import_catalogue_yaml"]


def _pruned(doc: Mapping[str, Any]) -> dict[str, Any]:
    # Defaults are left out, as a person writes the seed; parsing puts them back.
    kept: dict[str, Any] = {}
    for key, value in doc.items():
        if value is None or value == "" or value is False or value == []:
            continue
        if key == "version" and value == 1:
            continue
        if isinstance(value, list):
            value = [_pruned(v) if isinstance(v, Mapping) else v for v in value]
        kept[key] = value
    return kept


def dump_catalogue_yaml(catalogue: Catalogue) -> str:
    """The catalogue in the seed format, which `import_catalogue_yaml` reads back unchanged."""
    document = {
        "departments": [
            _pruned(department_to_doc(d)) for _, d in sorted(catalogue.departments.items())
        ],
        "resources": [_pruned(resource_to_doc(r)) for _, r in sorted(catalogue.resources.items())],
        "certificate_types": [
            _pruned(certificate_type_to_doc(c))
            for _, c in sorted(catalogue.certificate_types.items())
        ],
        "matters": [_pruned(matter_to_doc(m)) for _, m in sorted(catalogue.matters.items())],
        # Grants keep catalogue order (a tuple, unlike the keyed mappings above).
        "grants": [_pruned(grant_to_doc(g)) for g in catalogue.grants],
    }
    header = (
        "# govshare directory export (seed format; applications are not exported).\n"
        f"# Directory revision {catalogue.revision}.\n"
    )
    # default_flow_style=None writes leaf lists and mappings inline, like the hand-written seed.
    body = yaml.safe_dump(
        document, allow_unicode=True, sort_keys=False, default_flow_style=None, width=120
    )
    return header + body


async def export_catalogue_yaml(catalogue_or_store: Catalogue | CatalogueStore) -> str:
    """`govshare directory export`: a Catalogue snapshot or a store's current directory."""
    if isinstance(catalogue_or_store, Catalogue):
        return dump_catalogue_yaml(catalogue_or_store)
    return dump_catalogue_yaml(await catalogue_or_store.load())


def _stale(row: Row[Any], current: Any, label: str) -> Problem | None:
    """A changed row older than the stored item: the import's ETAG_MISMATCH.

    Someone changed the item (through the API, or another import) after the file was
    exported; writing the row would silently undo that. An unchanged row is fine,
    whatever its version, and so is a newer one (a file from another directory).
    """
    if current is None or row.item.version >= current.version:
        return None
    if same_content(current, row.item):
        return None
    return Problem(
        row.line,
        label,
        f"stale row (ETAG_MISMATCH): version {row.item.version}, but version "
        f"{current.version} is stored, changed since the file was exported; "
        "export again and redo the change there",
    )


def _stale_problems(parsed: ParsedFile, snapshot: Catalogue) -> tuple[list[Problem], set[int]]:
    """Stale rows of every versioned kind, and their lines (whose other checks are moot)."""
    found: list[Problem] = []
    sections: tuple[tuple[Sequence[Row[Any]], Mapping[str, Any], str, Callable[[Any], str]], ...]
    sections = (
        (parsed.departments, snapshot.departments, "department", lambda d: d.uscc),
        (parsed.resources, snapshot.resources, "resource", lambda r: r.code),
        (parsed.certificate_types, snapshot.certificate_types, "certificate type", lambda c: c.key),
        (parsed.matters, snapshot.matters, "matter", lambda m: m.code),
    )
    for rows, stored, kind, key_of in sections:
        for row in rows:
            key = key_of(row.item)
            problem = _stale(row, stored.get(key), f"{kind} {key}")
            if problem is not None:
                found.append(problem)
    return found, {problem.line for problem in found}


def _grant_problems(
    parsed: ParsedFile, snapshot: Catalogue, applications: Mapping[str, SharingApplication]
) -> list[Problem]:
    """Grants a file may not write.

    A grant an approval made (it has an application_id) changes only with its
    application, in one transaction (_desk.py): a file that revoked it, or widened it,
    would leave an APPROVED application disagreeing with the grant calls are checked
    against. For the same reason a file cannot give a grant an application_id, or
    add one naming an application of this directory: revoking that grant would
    revoke the application. REVOKED and EXPIRED are final.
    """
    found: list[Problem] = []
    stored = {g.grant_id: g for g in snapshot.grants}
    for row in parsed.grants:
        grant, label = row.item, f"grant {row.item.grant_id}"
        before = stored.get(grant.grant_id)
        if before is None:
            if grant.application_id and grant.application_id in applications:
                found.append(
                    Problem(
                        row.line,
                        label,
                        f"application {grant.application_id} is in this directory: "
                        "only its approval makes its grant",
                    )
                )
            continue
        if grant == before:
            continue
        if before.application_id:
            found.append(
                Problem(
                    row.line,
                    label,
                    f"made by approving application {before.application_id}: it changes "
                    "with that application (revoke it through the API), not by import",
                )
            )
        elif grant.application_id:
            found.append(Problem(row.line, label, "application_id cannot change"))
        elif before.state is not GrantState.ACTIVE and grant.state is not before.state:
            found.append(
                Problem(
                    row.line,
                    label,
                    f"a {before.state.value} grant cannot become {grant.state.value}",
                )
            )
    return found


def _lifecycle_problems(parsed: ParsedFile, snapshot: Catalogue, stale: set[int]) -> list[Problem]:
    found: list[Problem] = []
    for row in parsed.resources:
        current = snapshot.resources.get(row.item.code)
        if row.line in stale:
            continue
        found.extend(
            Problem(row.line, f"resource {row.item.code}", f"{field}: {text}")
            for field, text in core_metadata_violations(row.item, current)
        )
        if current is None:
            continue
        try:
            check_resource_transition(current.state, row.item.state)
        except InvalidTransition as exc:
            found.append(Problem(row.line, f"resource {row.item.code}", exc.message))
    for c in parsed.certificate_types:
        existing = snapshot.certificate_types.get(c.item.key)
        if c.line in stale:
            continue
        if existing is not None and existing.type_code != c.item.type_code:
            found.append(
                Problem(c.line, f"certificate type {c.item.key}", "type_code cannot change")
            )
    return found


def plan_import(
    parsed: ParsedFile,
    snapshot: Catalogue,
    source: str,
    applications: Mapping[str, SharingApplication] | None = None,
) -> ImportPlan:
    """Check `parsed` against the directory it is imported into; problems stop everything."""
    departments = dict(snapshot.departments) | {r.item.uscc: r.item for r in parsed.departments}
    resources = dict(snapshot.resources) | {r.item.code: r.item for r in parsed.resources}
    certificate_types = dict(snapshot.certificate_types) | {
        r.item.key: r.item for r in parsed.certificate_types
    }
    problems = list(parsed.problems)
    problems += check_references(
        parsed,
        departments=departments,
        resources=resources,
        certificate_types=certificate_types,
        stored=snapshot,
    )
    stale_problems, stale_lines = _stale_problems(parsed, snapshot)
    problems += stale_problems
    problems += _lifecycle_problems(parsed, snapshot, stale_lines)
    problems += _grant_problems(parsed, snapshot, applications or {})

    def items(rows: Sequence[Any]) -> list[Any]:
        return [row.item for row in rows]

    return ImportPlan(
        departments=items(parsed.departments),
        resources=items(parsed.resources),
        certificate_types=items(parsed.certificate_types),
        matters=items(parsed.matters),
        grants=items(parsed.grants),
        problems=[p.located() for p in problems],
        source=source,
    )


async def import_catalogue_yaml(
    text: str, store: SqlCatalogueStore, actor: str, *, source: str = "<catalogue>"
) -> ImportReport:
    """`govshare directory import FILE`: validate every row, then upsert all or nothing.

    - Every bad row is reported with its line (ImportRejected.problems,
      "FILE:LINE: …"), and then nothing at all is imported.
    - Rows are matched by natural key (department USCC, resource code,
      certificate type key, matter code, grant id) and created or replaced
      whole; a row equal to what is stored is left alone, so importing the
      same file twice changes nothing the second time (no event, no new
      revision).
    - Items missing from the file are NOT deleted: a partial file (one
      department's resources) is a valid import. Delete through the API.
    - A row without `delete_time` restores a soft-deleted item. Resource
      states must follow DRAFT → PUBLISHED → RETIRED; REVOKED and EXPIRED
      grants stay so; a certificate type's type_code cannot change.
    - A changed row whose `version` is older than the stored item's is stale
      (someone changed the item since the export) and refused; an unchanged
      one is fine whatever its version.
    - A grant an approval made (with an application_id) cannot be changed at
      all, and no grant can be tied to an application by a file: they change
      with their application, through the API.
    - A row may keep naming a deleted department as provider or issuer (as
      DeleteDepartment leaves it); a stored row cannot be moved to one.
    """
    parsed = parse_file(text, core_metadata=False)
    if parsed.problems and parsed.problems[0].label == "<document>":
        raise ImportRejected([(parsed.problems[0].line, parsed.problems[0].text)], source=source)
    return await store.apply_catalogue_import(
        lambda snapshot, applications: plan_import(parsed, snapshot, source, applications),
        actor=actor,
    )
