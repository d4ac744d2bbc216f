"""Generic item steps for the catalogue store: get, list, create, update, soft delete.

Each write is one transaction through `StoreCore._mutate` (idempotent by
request_id, evented, revision-bumping) and validates the whole item against a
snapshot of the directory read inside that transaction, so references (a
resource's provider, a certificate type's resource, a material's source) are
checked against what is committed, not against what a caller saw earlier.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from . import _tables as t
from ._codec import name_of
from ._core import StoreCore, Tx, check_etag
from ._errors import AlreadyExists, FailedPrecondition, InvalidArgument
from ._filter import FilterField
from ._listing import Page, paginate
from ._model import Catalogue
from ._rules import Violations

__all__: list[str] = []


class _Item(Protocol):
    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def version(self) -> int: ...

    @property
    def deleted(self) -> bool: ...

    @property
    def etag(self) -> str: ...


_I = TypeVar("_I", bound=_Item)
Mask = Iterable[str] | str | None


def resolve_mask(update_mask: Mask, item_type: type, mutable: frozenset[str]) -> frozenset[str]:
    """AIP-134: no mask or `*` means every mutable field; naming any other field is an error."""
    if isinstance(update_mask, str):
        update_mask = update_mask.split(",")
    names = [name.strip() for name in (update_mask or ()) if name.strip()]
    if not names or "*" in names:
        return mutable
    known = {f.name for f in dataclasses.fields(item_type)} - {"etag"}
    found: Violations = []
    for name in names:
        if name not in known:
            found.append(("update_mask", f"unknown field {name!r}"))
        elif name not in mutable:
            found.append(("update_mask", f"{name!r} cannot be updated"))
    if found:
        raise InvalidArgument(found, reason="UPDATE_MASK_INVALID")
    return frozenset(names)


def _raise_if(found: Violations) -> None:
    if found:
        raise InvalidArgument(found)


class ItemStore(StoreCore):
    """The steps every catalogue kind shares; the kinds themselves are in _admin.py."""

    # --- generic steps --------------------------------------------------------------

    async def _get_item(self, kind: t.Kind[_I], key: str) -> _I:
        async def body(conn: AsyncConnection) -> _I:
            return await self._require(conn, kind, key)

        return await self._read(body)

    async def _list_items(
        self,
        kind: t.Kind[_I],
        fields: Mapping[str, FilterField[_I]],
        tiebreak: str,
        *,
        filter: str,
        order_by: str,
        page_size: int,
        page_token: str,
        show_deleted: bool,
    ) -> Page[_I]:
        async def body(conn: AsyncConnection) -> list[_I]:
            return await self._all(conn, kind)

        items = await self._read(body)
        return paginate(
            kind.collection,
            (i for i in items if show_deleted or not i.deleted),
            fields,
            tiebreak=tiebreak,
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
            bound=f"show_deleted={show_deleted}",
        )

    async def _create_item(
        self,
        kind: t.Kind[_I],
        build: Callable[[Tx, Catalogue], _I],
        validate: Callable[[_I, Catalogue], Violations],
        *,
        actor: str,
        request_id: str,
        request: Mapping[str, Any],
    ) -> _I:
        async def body(tx: Tx) -> _I:
            snapshot = await self._snapshot(tx.conn)
            item = build(tx, snapshot)
            _raise_if(validate(item, snapshot))
            name = name_of(item)
            if await self._get(tx.conn, kind, kind.key_of(item)) is not None:
                raise AlreadyExists(f"{name} exists already", metadata={"name": name})
            await self._insert(tx.conn, kind, item)
            tx.record(f"{kind.codec.kind}.create", name, None, kind.codec.to_doc(item))
            return item

        return await self._mutate(
            actor=actor,
            request_id=request_id,
            operation=f"{kind.codec.kind}.create",
            request=request,
            codec=kind.codec,
            body=body,
        )

    async def _update_item(
        self,
        kind: t.Kind[_I],
        key: str,
        changes: Callable[[_I], Mapping[str, Any]],
        validate: Callable[[_I, Catalogue], Violations],
        *,
        etag: str,
        actor: str,
        request_id: str,
        request: Mapping[str, Any],
        operation: str = "update",
        adjust: Callable[[_I, _I, Tx], _I] | None = None,
        action: Callable[[_I, _I], str] | None = None,
    ) -> _I:
        async def body(tx: Tx) -> _I:
            current = await self._require(tx.conn, kind, key)
            name = name_of(current)
            check_etag(current, etag, name)
            if current.deleted:
                raise FailedPrecondition(
                    f"{name} is deleted", reason="DELETED", metadata={"name": name}
                )
            candidate = dataclasses.replace(current, **changes(current))
            if adjust is not None:
                candidate = adjust(current, candidate, tx)
            if candidate == current:
                return current  # nothing changes: no new version, no event
            candidate = dataclasses.replace(candidate, version=current.version + 1)
            _raise_if(validate(candidate, await self._snapshot(tx.conn)))
            await self._update(tx.conn, kind, candidate)
            verb = action(current, candidate) if action else f"{kind.codec.kind}.update"
            tx.record(verb, name, kind.codec.to_doc(current), kind.codec.to_doc(candidate))
            return candidate

        return await self._mutate(
            actor=actor,
            request_id=request_id,
            operation=f"{kind.codec.kind}.{operation}",
            # The fingerprint covers what the caller asks to change, not the
            # output-only fields of the item it happened to read before.
            request={"key": key, "etag": etag, **request},
            codec=kind.codec,
            body=body,
        )

    async def _delete_item(
        self,
        kind: t.Kind[_I],
        key: str,
        retire: Callable[[_I], Mapping[str, Any]],
        *,
        etag: str,
        actor: str,
        request_id: str,
    ) -> _I:
        async def body(tx: Tx) -> _I:
            current = await self._require(tx.conn, kind, key)
            name = name_of(current)
            check_etag(current, etag, name)
            if current.deleted:
                raise FailedPrecondition(
                    f"{name} is deleted already", reason="DELETED", metadata={"name": name}
                )
            deleted = dataclasses.replace(
                current, delete_time=tx.now, version=current.version + 1, **retire(current)
            )
            await self._update(tx.conn, kind, deleted)
            tx.record(
                f"{kind.codec.kind}.delete",
                name,
                kind.codec.to_doc(current),
                kind.codec.to_doc(deleted),
            )
            return deleted

        return await self._mutate(
            actor=actor,
            request_id=request_id,
            operation=f"{kind.codec.kind}.delete",
            request={"key": key, "etag": etag},
            codec=kind.codec,
            body=body,
        )
