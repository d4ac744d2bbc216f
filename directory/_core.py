"""The store's engine room: schema, snapshot loading, and the one write path.

Every write goes through `StoreCore._mutate`, which in ONE transaction
1. takes the directory writer lock (a no-op UPDATE of the revision row: a
   RESERVED lock on SQLite, a row lock on PostgreSQL), so reads of the current
   item, the etag check and the write cannot interleave with another writer;
2. answers a repeated (request_id, actor) from the stored first result;
3. runs the operation, which records events as it changes items;
4. appends those events, bumps the revision if anything changed, and stores
   the result under the request id.
A failure anywhere rolls all of it back: no half-applied change, no orphan event.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, insert, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from . import _tables as t
from ._calendar import DEFAULT_DUE_WORKING_DAYS, WorkingCalendar
from ._codec import Codec
from ._errors import EtagMismatch, InvalidArgument, NotFound
from ._listing import EVENT_FIELDS, Page, paginate
from ._model import Catalogue, DirectoryEvent, content_etag

__all__: list[str] = []

_T = TypeVar("_T")

# Working days and due dates are reckoned in Beijing time, whatever the server's zone.
CHINA_STANDARD_TIME = _dt.timezone(_dt.timedelta(hours=8), "CST")
_MAX_REQUEST_ID = 128
# Any constant shared by every gateway: serializes create_schema across PostgreSQL replicas.
_SCHEMA_LOCK_KEY = 0x60757368617265  # "govshare"-ish; pg_advisory_xact_lock takes a bigint


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


@dataclass
class Tx:
    """One write in progress: its connection, clock reading, actor and recorded events."""

    conn: AsyncConnection
    now: _dt.datetime
    today: _dt.date
    actor: str
    request_id: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self,
        action: str,
        target: str,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
    ) -> None:
        self.events.append(
            {
                "time": self.now.isoformat(),
                "actor": self.actor,
                "action": action,
                "target": target,
                "request_id": self.request_id,
                "before": None if before is None else dict(before),
                "after": None if after is None else dict(after),
            }
        )


def check_etag(current: object, etag: str, name: str) -> None:
    """An empty etag writes unconditionally; any other must be the current one."""
    current_etag = getattr(current, "etag", "")
    if etag and etag != current_etag:
        raise EtagMismatch(f"{name} was changed since it was read", metadata={"name": name})


class StoreCore:
    """Engine, clock, calendar and the transactional write path shared by every kind."""

    def __init__(
        self,
        url: str,
        *,
        calendar: WorkingCalendar | None = None,
        due_working_days: int = DEFAULT_DUE_WORKING_DAYS,
        clock: Callable[[], _dt.datetime] = _utc_now,
        timezone: _dt.tzinfo = CHINA_STANDARD_TIME,
        engine_options: Mapping[str, Any] | None = None,
    ) -> None:
        if due_working_days < 0:
            raise ValueError("due_working_days must not be negative")
        # engine_options go to create_async_engine as they are, e.g.
        # {"connect_args": {"server_settings": {"search_path": "directory"}}} for asyncpg.
        self._engine: AsyncEngine = create_async_engine(url, **dict(engine_options or {}))
        self._calendar = calendar if calendar is not None else WorkingCalendar()
        self._due_working_days = due_working_days
        self._clock = clock
        self._timezone = timezone

    @property
    def calendar(self) -> WorkingCalendar:
        return self._calendar

    def today(self) -> _dt.date:
        """Today in the directory's time zone (Beijing time unless configured)."""
        return self._clock().astimezone(self._timezone).date()

    async def create_schema(self) -> None:
        """Create missing tables and columns; safe to run on every start."""
        async with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Replicas starting together would race to CREATE the same tables (and the
                # revision row); DDL is transactional there, so one lock makes them take turns.
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY}
                )
            await conn.run_sync(t.metadata.create_all)
            await conn.run_sync(t.add_missing_columns)
            found = (
                await conn.execute(select(t.revision.c.value).where(t.revision.c.id == 1))
            ).first()
            if found is None:
                await conn.execute(insert(t.revision).values(id=1, value=0))

    async def close(self) -> None:
        await self._engine.dispose()

    async def is_empty(self) -> bool:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(t.departments.c.uscc).limit(1))).first()
        return row is None

    async def revision(self) -> int:
        """A counter bumped by every committed change: reload the snapshot when it moved."""
        async with self._engine.connect() as conn:
            value = (
                await conn.execute(select(t.revision.c.value).where(t.revision.c.id == 1))
            ).scalar()
        return int(value or 0)

    async def load(self) -> Catalogue:
        """The full snapshot the gateway serves from, soft-deleted items included."""
        async with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # One snapshot for every SELECT below, so the catalogue is never half of one
                # write and the revision is the one it was read at. (SQLite serializes writers;
                # there a write landing mid-load only causes one extra reload.)
                await conn.execution_options(isolation_level="REPEATABLE READ")
            # The revision is read first: a write landing mid-load only causes one extra reload.
            value = (
                await conn.execute(select(t.revision.c.value).where(t.revision.c.id == 1))
            ).scalar()
            return await self._snapshot(conn, revision=int(value or 0))

    async def _snapshot(self, conn: AsyncConnection, *, revision: int = 0) -> Catalogue:
        return Catalogue.build(
            departments=await self._all(conn, t.DEPARTMENT),
            resources=await self._all(conn, t.RESOURCE),
            certificate_types=await self._all(conn, t.CERTIFICATE_TYPE),
            grants=await self._all(conn, t.GRANT),
            matters=await self._all(conn, t.MATTER),
            revision=revision,
        )

    @staticmethod
    async def _all(conn: AsyncConnection, kind: t.Kind[_T]) -> list[_T]:
        """Every row of `kind` in a stable order: insertion order where it is kept.

        SQLite's rowid is the order rows were written in; PostgreSQL returns rows
        in no particular order (an updated row moves), so it orders by key.
        """
        order: list[ColumnElement[Any]] = []
        if kind.order_column is not None:
            order.append(kind.table.c[kind.order_column])
        if conn.dialect.name == "sqlite":
            order.append(literal_column("rowid"))
        else:
            order.append(kind.table.c[kind.key_column])
        rows = (await conn.execute(select(kind.table).order_by(*order))).mappings().all()
        return [kind.from_row(row) for row in rows]

    @staticmethod
    async def _get(conn: AsyncConnection, kind: t.Kind[_T], key: str) -> _T | None:
        if _NUL in key:
            return None  # nothing stored has one, and PostgreSQL refuses it in a parameter
        column = kind.table.c[kind.key_column]
        row = (await conn.execute(select(kind.table).where(column == key))).mappings().first()
        return None if row is None else kind.from_row(row)

    async def _require(self, conn: AsyncConnection, kind: t.Kind[_T], key: str) -> _T:
        found = await self._get(conn, kind, key)
        if found is None:
            name = f"{kind.collection}/{key}"
            raise NotFound(f"{name} does not exist", metadata={"name": name})
        return found

    @staticmethod
    async def _insert(conn: AsyncConnection, kind: t.Kind[_T], item: _T) -> None:
        row: dict[str, Any] = _checked(kind.to_row(item))
        if kind.order_column is not None:
            column = kind.table.c[kind.order_column]
            # Writers hold the directory lock (_mutate), so max + 1 cannot be taken twice.
            row[kind.order_column] = select(
                func.coalesce(func.max(column), 0) + 1
            ).scalar_subquery()
        await conn.execute(insert(kind.table).values(**row))

    @staticmethod
    async def _update(conn: AsyncConnection, kind: t.Kind[_T], item: _T) -> None:
        row = _checked(kind.to_row(item))
        key = row.pop(kind.key_column)
        column = kind.table.c[kind.key_column]
        await conn.execute(update(kind.table).where(column == key).values(**row))

    async def _read(self, body: Callable[[AsyncConnection], Awaitable[_T]]) -> _T:
        async with self._engine.connect() as conn:
            return await body(conn)

    async def _mutate(
        self,
        *,
        actor: str,
        request_id: str,
        operation: str,
        request: Mapping[str, Any],
        codec: Codec[_T],
        body: Callable[[Tx], Awaitable[_T]],
    ) -> _T:
        """Run `body` as one idempotent, evented, revision-bumping transaction."""
        if not actor.strip():
            raise InvalidArgument([("actor", "every change needs an actor")])
        if len(request_id) > _MAX_REQUEST_ID:
            raise InvalidArgument([("request_id", f"at most {_MAX_REQUEST_ID} characters")])
        _checked({"actor": actor, "request_id": request_id})
        fingerprint = content_etag({"operation": operation, **request})
        # Stored times are UTC text, so they order correctly whatever zone the clock uses.
        now = self._clock().astimezone(_dt.UTC)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(t.revision).where(t.revision.c.id == 1).values(value=t.revision.c.value)
            )
            if request_id:
                prior = (
                    (
                        await conn.execute(
                            select(t.requests).where(
                                t.requests.c.request_id == request_id, t.requests.c.actor == actor
                            )
                        )
                    )
                    .mappings()
                    .first()
                )
                if prior is not None:
                    if prior["fingerprint"] != fingerprint:
                        raise InvalidArgument(
                            [("request_id", "already used by this caller for another request")],
                            reason="REQUEST_ID_REUSED",
                        )
                    return codec.from_doc(prior["result"])
            tx = Tx(conn, now, now.astimezone(self._timezone).date(), actor, request_id)
            result = await body(tx)
            if tx.events:
                await conn.execute(insert(t.events), tx.events)
                await conn.execute(
                    update(t.revision)
                    .where(t.revision.c.id == 1)
                    .values(value=t.revision.c.value + 1)
                )
            if request_id:
                await conn.execute(
                    insert(t.requests).values(
                        request_id=request_id,
                        actor=actor,
                        operation=operation,
                        fingerprint=fingerprint,
                        result=codec.to_doc(result),
                        create_time=now.isoformat(),
                    )
                )
        return result

    async def list_events(
        self,
        *,
        filter: str = "",
        order_by: str = "",
        page_size: int = 0,
        page_token: str = "",
    ) -> Page[DirectoryEvent]:
        """Directory events (oldest first unless ordered), e.g. `target = "resources/…"`."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(t.events))).mappings().all()
        return paginate(
            "directoryEvents",
            (_event(row) for row in rows),
            EVENT_FIELDS,
            tiebreak="seq",
            filter=filter,
            order_by=order_by,
            page_size=page_size,
            page_token=page_token,
        )

    async def events_after(self, seq: int, limit: int = 1000) -> list[DirectoryEvent]:
        """Events with seq > `seq`, oldest first, paged in SQL: the feed for the audit log."""
        async with self._engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        select(t.events)
                        .where(t.events.c.seq > seq)
                        .order_by(t.events.c.seq)
                        .limit(limit)
                    )
                )
                .mappings()
                .all()
            )
        return [_event(row) for row in rows]


_NUL = "\x00"


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return _NUL in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_nul(v) for v in value)
    return False


def _checked(row: dict[str, Any]) -> dict[str, Any]:
    """Refuse NUL characters before they reach the database.

    SQLite would store them; PostgreSQL text cannot hold one and fails the
    write. Refusing them on both keeps the two databases answering alike.
    """
    found = [(column, "must not contain NUL characters") for column in row if _has_nul(row[column])]
    if found:
        raise InvalidArgument(found)
    return row


def _event(row: Mapping[Any, Any]) -> DirectoryEvent:
    time = _dt.datetime.fromisoformat(row["time"])
    return DirectoryEvent(
        seq=int(row["seq"]),
        time=time if time.tzinfo is not None else time.replace(tzinfo=_dt.UTC),
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        request_id=row["request_id"],
        before=row["before"],
        after=row["after"],
    )
