"""Catalogue administration: departments, resources, certificate types, matters.

Creates, updates (with update_mask and etag) and soft deletes over the generic
steps of _items.py. Output-only fields (version, etag, delete_time, and a new
resource's state) are the store's, whatever the caller passes.

An update may not pull data items from under what still uses them (ACTIVE grants,
matters' materials): FAILED_PRECONDITION `DATA_ITEMS_IN_USE`, naming the users. A
resource moved to another provider takes its live applications with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from . import _tables as t
from . import _workflow as wf
from ._admin_checks import (
    check_removed_items_unused,
    validate_certificate_type,
    validate_department,
    validate_matter,
    validate_new_certificate_type,
    validate_resource,
)
from ._codec import name_of
from ._codes import classification_label, next_resource_code
from ._core import Tx, check_etag
from ._errors import FailedPrecondition, InvalidArgument, NotFound
from ._items import ItemStore, Mask, resolve_mask
from ._listing import (
    CERTIFICATE_TYPE_FIELDS,
    DEPARTMENT_FIELDS,
    MATTER_FIELDS,
    RESOURCE_FIELDS,
    Page,
)
from ._model import (
    Catalogue,
    CertificateType,
    Department,
    DepartmentState,
    Matter,
    Resource,
    ResourceState,
)
from ._rules import (
    check_resource_transition,
)

__all__: list[str] = []

# Fields a caller may change; keys, version, etag and delete_time are the store's.
DEPARTMENT_MUTABLE = frozenset({"display_name", "region_code", "state"})
RESOURCE_MUTABLE = frozenset(
    {
        "display_name",
        "classification",
        "provider",
        "summary",
        "format",
        "data_items",
        "sharing_type",
        "sharing_method",
        "update_cycle",
        "publish_date",
        "sharing_condition",
        "legal_basis",
        "open_to_public",
        "state",
    }
)
CERTIFICATE_TYPE_MUTABLE = frozenset({"display_name", "holder_id_type", "issuer", "resource"})
MATTER_MUTABLE = frozenset({"name", "materials"})


def _resource_state_change(current: Resource, candidate: Resource, tx: Tx) -> Resource:
    check_resource_transition(current.state, candidate.state)
    if candidate.state is ResourceState.PUBLISHED and not candidate.publish_date:
        # 发布日期 is the day it was published unless the administrator set one.
        return dataclasses.replace(candidate, publish_date=tx.today.isoformat())
    return candidate


def _resource_action(current: Resource, candidate: Resource) -> str:
    if candidate.state is not current.state:
        return {
            ResourceState.PUBLISHED: "resource.publish",
            ResourceState.RETIRED: "resource.retire",
        }.get(candidate.state, "resource.update")
    return "resource.update"


class CatalogueAdmin(ItemStore):
    """Reads and writes of the catalogue proper (not applications or grants)."""

    # --- departments ----------------------------------------------------------------

    async def get_department(self, uscc: str) -> Department:
        """The department, soft-deleted or not; NotFound if it never existed."""
        return await self._get_item(t.DEPARTMENT, uscc)

    async def list_departments(
        self,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
        show_deleted: bool = False,
    ) -> Page[Department]:
        return await self._list_items(
            t.DEPARTMENT,
            DEPARTMENT_FIELDS,
            "uscc",
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
            show_deleted=show_deleted,
        )

    async def create_department(
        self, department: Department, *, actor: str, request_id: str = ""
    ) -> Department:
        def build(tx: Tx, snapshot: Catalogue) -> Department:
            return dataclasses.replace(department, version=1, delete_time=None)

        return await self._create_item(
            t.DEPARTMENT,
            build,
            validate_department,
            actor=actor,
            request_id=request_id,
            request={"item": department},
        )

    async def update_department(
        self,
        department: Department,
        *,
        update_mask: Mask = None,
        etag: str = "",
        actor: str,
        request_id: str = "",
    ) -> Department:
        """Change the masked fields (state ACTIVE ⇄ SUSPENDED included)."""
        fields = resolve_mask(update_mask, Department, DEPARTMENT_MUTABLE)
        return await self._update_item(
            t.DEPARTMENT,
            department.uscc,
            lambda _: {f: getattr(department, f) for f in fields},
            validate_department,
            etag=etag,
            actor=actor,
            request_id=request_id,
            request={"values": {f: getattr(department, f) for f in sorted(fields)}},
        )

    async def delete_department(
        self, uscc: str, *, etag: str = "", actor: str, request_id: str = ""
    ) -> Department:
        """Soft delete: still readable, and SUSPENDED so that it is denied everywhere."""
        return await self._delete_item(
            t.DEPARTMENT,
            uscc,
            lambda _: {"state": DepartmentState.SUSPENDED},
            etag=etag,
            actor=actor,
            request_id=request_id,
        )

    # --- resources ------------------------------------------------------------------

    async def get_resource(self, code: str) -> Resource:
        return await self._get_item(t.RESOURCE, code)

    async def list_resources(
        self,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
        show_deleted: bool = False,
    ) -> Page[Resource]:
        """E.g. `provider = "11330100002482102G" AND sharing_type = CONDITIONAL`."""
        return await self._list_items(
            t.RESOURCE,
            RESOURCE_FIELDS,
            "code",
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
            show_deleted=show_deleted,
        )

    async def create_resource(
        self,
        resource: Resource,
        *,
        classification_code: str = "",
        actor: str,
        request_id: str = "",
    ) -> Resource:
        """Create a DRAFT resource (the given state is output only; publish it afterwards).

        An empty `resource.code` is generated as `classification_code/NNNNN`,
        the next sequence under that 分类码; an empty classification is then
        filled with 基础 / 主题 / 部门 from the class digit of the code.
        """

        def build(tx: Tx, snapshot: Catalogue) -> Resource:
            code = resource.code
            classification = resource.classification
            if classification_code and not classification:
                classification = classification_label(classification_code)
            if not code:
                if not classification_code:
                    raise InvalidArgument([("code", "give a code or a classification_code")])
                code = next_resource_code(classification_code, snapshot.resources)
            elif classification_code and not code.startswith(classification_code + "/"):
                raise InvalidArgument([("code", f"does not start with {classification_code}/")])
            if not classification:
                # A chosen `分类码/NNNNN` code names its class as well as a generated one;
                # publishing needs the classification (core metadata).
                classification = classification_label(code.rsplit("/", 1)[0])
            return dataclasses.replace(
                resource,
                code=code,
                classification=classification,
                state=ResourceState.DRAFT,
                version=1,
                delete_time=None,
            )

        return await self._create_item(
            t.RESOURCE,
            build,
            validate_resource,
            actor=actor,
            request_id=request_id,
            request={"item": resource, "classification_code": classification_code},
        )

    async def update_resource(
        self,
        resource: Resource,
        *,
        update_mask: Mask = None,
        etag: str = "",
        actor: str,
        request_id: str = "",
    ) -> Resource:
        """Change the masked fields; a `state` change must follow DRAFT → PUBLISHED → RETIRED.

        Dropping data items that an ACTIVE grant or a live matter uses is
        FailedPrecondition (`DATA_ITEMS_IN_USE`). A new provider takes over the
        resource's APPLIED and APPROVED applications in the same transaction (one
        `application.reassign` event each), so only it decides them from now on.
        """
        fields = resolve_mask(update_mask, Resource, RESOURCE_MUTABLE)
        values = {f: getattr(resource, f) for f in fields}
        codec = t.RESOURCE.codec

        # The steps of ItemStore._update_item, plus the applications: they must move in
        # the transaction that moves the resource, or the old provider could decide between.
        async def body(tx: Tx) -> Resource:
            current = await self._require(tx.conn, t.RESOURCE, resource.code)
            name = name_of(current)
            check_etag(current, etag, name)
            if current.deleted:
                raise FailedPrecondition(
                    f"{name} is deleted", reason="DELETED", metadata={"name": name}
                )
            candidate = _resource_state_change(current, dataclasses.replace(current, **values), tx)
            if candidate == current:
                return current  # nothing changes: no new version, no event
            candidate = dataclasses.replace(candidate, version=current.version + 1)
            snapshot = await self._snapshot(tx.conn)
            found = validate_resource(candidate, snapshot)
            if found:
                raise InvalidArgument(found)
            # A bad request is the caller's to fix first; only a good one meets the users.
            check_removed_items_unused(current, candidate, snapshot)
            await self._update(tx.conn, t.RESOURCE, candidate)
            tx.record(
                _resource_action(current, candidate),
                name,
                codec.to_doc(current),
                codec.to_doc(candidate),
            )
            if candidate.provider != current.provider:
                await self._reassign_applications(tx, candidate)
            return candidate

        return await self._mutate(
            actor=actor,
            request_id=request_id,
            operation="resource.update",
            # As _update_item fingerprints it: a retry across versions still replays.
            request={
                "key": resource.code,
                "etag": etag,
                "values": {f: values[f] for f in sorted(fields)},
            },
            codec=codec,
            body=body,
        )

    async def _reassign_applications(self, tx: Tx, resource: Resource) -> None:
        """Point the resource's live applications at its provider (see `wf.reassign`)."""
        table = t.APPLICATION.table
        rows = (
            (
                await tx.conn.execute(
                    select(table)
                    .where(table.c.resource == resource.code)
                    .order_by(table.c.application_id)
                )
            )
            .mappings()
            .all()
        )
        codec = t.APPLICATION.codec
        for row in rows:
            app = t.APPLICATION.from_row(row)
            moved = wf.reassign(app, resource.provider, now=tx.now)
            if moved is app:
                continue
            await self._update(tx.conn, t.APPLICATION, moved)
            before, after = codec.to_doc(app), codec.to_doc(moved)
            tx.record("application.reassign", name_of(moved), before, after)

    async def _set_resource_state(
        self, code: str, state: ResourceState, verb: str, *, etag: str, actor: str, request_id: str
    ) -> Resource:
        return await self._update_item(
            t.RESOURCE,
            code,
            lambda current: {"state": state},
            validate_resource,
            etag=etag,
            actor=actor,
            request_id=request_id,
            request={},
            operation=verb,
            adjust=_resource_state_change,
            action=_resource_action,
        )

    async def publish_resource(
        self, code: str, *, etag: str = "", actor: str, request_id: str = ""
    ) -> Resource:
        """DRAFT → PUBLISHED (publish_date defaults to today); else InvalidTransition."""
        return await self._set_resource_state(
            code, ResourceState.PUBLISHED, "publish", etag=etag, actor=actor, request_id=request_id
        )

    async def retire_resource(
        self, code: str, *, etag: str = "", actor: str, request_id: str = ""
    ) -> Resource:
        """PUBLISHED → RETIRED; anything else is InvalidTransition."""
        return await self._set_resource_state(
            code, ResourceState.RETIRED, "retire", etag=etag, actor=actor, request_id=request_id
        )

    async def delete_resource(
        self, code: str, *, etag: str = "", actor: str, request_id: str = ""
    ) -> Resource:
        """Soft delete; a PUBLISHED resource is RETIRED with it so it is no longer shared."""

        def retire(current: Resource) -> Mapping[str, Any]:
            if current.state is ResourceState.PUBLISHED:
                return {"state": ResourceState.RETIRED}
            return {}

        return await self._delete_item(
            t.RESOURCE, code, retire, etag=etag, actor=actor, request_id=request_id
        )

    # --- certificate types ----------------------------------------------------------

    async def get_certificate_type(self, key_or_type_code: str) -> CertificateType:
        """By 21-character type code or by key, soft-deleted or not.

        The type code first, as `Catalogue.certificate_type` does: it is the AIP name.
        """

        async def body(conn: AsyncConnection) -> CertificateType:
            table = t.certificate_types
            by_code = select(table).where(table.c.type_code == key_or_type_code)
            # PostgreSQL refuses a NUL in a parameter; no stored code holds one.
            row = (
                None
                if "\x00" in key_or_type_code
                else (await conn.execute(by_code)).mappings().first()
            )
            if row is not None:
                return t.CERTIFICATE_TYPE.from_row(row)
            found = await self._get(conn, t.CERTIFICATE_TYPE, key_or_type_code)
            if found is None:
                name = f"certificateTypes/{key_or_type_code}"
                raise NotFound(f"{name} does not exist", metadata={"name": name})
            return found

        return await self._read(body)

    async def list_certificate_types(
        self,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
        show_deleted: bool = False,
    ) -> Page[CertificateType]:
        return await self._list_items(
            t.CERTIFICATE_TYPE,
            CERTIFICATE_TYPE_FIELDS,
            "key",
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
            show_deleted=show_deleted,
        )

    async def create_certificate_type(
        self, certificate_type: CertificateType, *, actor: str, request_id: str = ""
    ) -> CertificateType:
        def build(tx: Tx, snapshot: Catalogue) -> CertificateType:
            return dataclasses.replace(certificate_type, version=1, delete_time=None)

        return await self._create_item(
            t.CERTIFICATE_TYPE,
            build,
            validate_new_certificate_type,
            actor=actor,
            request_id=request_id,
            request={"item": certificate_type},
        )

    async def update_certificate_type(
        self,
        certificate_type: CertificateType,
        *,
        update_mask: Mask = None,
        etag: str = "",
        actor: str,
        request_id: str = "",
    ) -> CertificateType:
        """Change the masked fields; key and type code are identifiers and never change."""
        fields = resolve_mask(update_mask, CertificateType, CERTIFICATE_TYPE_MUTABLE)
        return await self._update_item(
            t.CERTIFICATE_TYPE,
            certificate_type.key,
            lambda _: {f: getattr(certificate_type, f) for f in fields},
            validate_certificate_type,
            etag=etag,
            actor=actor,
            request_id=request_id,
            request={"values": {f: getattr(certificate_type, f) for f in sorted(fields)}},
        )

    async def delete_certificate_type(
        self, key: str, *, etag: str = "", actor: str, request_id: str = ""
    ) -> CertificateType:
        """Soft delete: listed with show_deleted; Catalogue.certificate_type no longer finds it."""
        return await self._delete_item(
            t.CERTIFICATE_TYPE, key, lambda _: {}, etag=etag, actor=actor, request_id=request_id
        )

    # --- matters --------------------------------------------------------------------

    async def get_matter(self, code: str) -> Matter:
        return await self._get_item(t.MATTER, code)

    async def list_matters(
        self,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
        show_deleted: bool = False,
    ) -> Page[Matter]:
        return await self._list_items(
            t.MATTER,
            MATTER_FIELDS,
            "code",
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
            show_deleted=show_deleted,
        )

    async def create_matter(self, matter: Matter, *, actor: str, request_id: str = "") -> Matter:
        def build(tx: Tx, snapshot: Catalogue) -> Matter:
            return dataclasses.replace(matter, version=1, delete_time=None)

        return await self._create_item(
            t.MATTER,
            build,
            validate_matter,
            actor=actor,
            request_id=request_id,
            request={"item": matter},
        )

    async def update_matter(
        self,
        matter: Matter,
        *,
        update_mask: Mask = None,
        etag: str = "",
        actor: str,
        request_id: str = "",
    ) -> Matter:
        fields = resolve_mask(update_mask, Matter, MATTER_MUTABLE)
        return await self._update_item(
            t.MATTER,
            matter.code,
            lambda _: {f: getattr(matter, f) for f in fields},
            validate_matter,
            etag=etag,
            actor=actor,
            request_id=request_id,
            request={"values": {f: getattr(matter, f) for f in sorted(fields)}},
        )

    async def delete_matter(
        self, code: str, *, etag: str = "", actor: str, request_id: str = ""
    ) -> Matter:
        return await self._delete_item(
            t.MATTER, code, lambda _: {}, etag=etag, actor=actor, request_id=request_id
        )
