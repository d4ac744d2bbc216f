"""The SQL schema of the directory and how items map to rows.

Columns carry the same names as the item documents (_codec.py), so a row is
its document with dates as SQL dates; lists are JSON columns. Timestamps are
ISO 8601 UTC text: portable between SQLite and PostgreSQL and ordered as text.
Etags are not stored: they are derived from the content (_model.py).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    inspect,
    text,
)

from ._codec import (
    Codec,
    application_from_doc,
    application_to_doc,
    certificate_type_from_doc,
    certificate_type_to_doc,
    department_from_doc,
    department_to_doc,
    grant_from_doc,
    grant_to_doc,
    matter_from_doc,
    matter_to_doc,
    resource_from_doc,
    resource_to_doc,
)
from ._model import CertificateType, Department, Grant, Matter, Resource, SharingApplication

__all__: list[str] = []

_T = TypeVar("_T")

metadata = MetaData()


def _version() -> Column[int]:
    return Column("version", Integer, nullable=False, server_default=text("1"))


def _delete_time() -> Column[str]:
    return Column("delete_time", String(40), nullable=True)


departments = Table(
    "departments",
    metadata,
    Column("uscc", String(18), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("region_code", String(6), nullable=False),
    Column("state", String(16), nullable=False),
    _version(),
    _delete_time(),
)

resources = Table(
    "resources",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("classification", Text, nullable=False),
    Column("provider", String(18), nullable=False),
    Column("summary", Text, nullable=False),
    Column("format", Text, nullable=False),
    Column("data_items", JSON, nullable=False),
    Column("sharing_type", String(16), nullable=False),
    Column("sharing_condition", Text, nullable=False),
    Column("legal_basis", Text, nullable=False),
    Column("sharing_method", Text, nullable=False),
    Column("open_to_public", Boolean, nullable=False),
    Column("update_cycle", Text, nullable=False),
    Column("publish_date", String(10), nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    _delete_time(),
)

certificate_types = Table(
    "certificate_types",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("type_code", String(21), nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("holder_id_type", String(3), nullable=False),
    Column("issuer", String(18), nullable=False),
    Column("resource", String(64), nullable=False),
    _version(),
    _delete_time(),
)

matters = Table(
    "matters",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("materials", JSON, nullable=False),
    _version(),
    _delete_time(),
)

grants = Table(
    "grants",
    metadata,
    Column("grant_id", String(64), primary_key=True),
    Column("consumer", String(18), nullable=False, index=True),
    Column("resource", String(64), nullable=False),
    Column("data_items", JSON, nullable=False),
    Column("matter_codes", JSON, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("state", String(16), nullable=False, server_default=text("'ACTIVE'")),
    Column("application_id", String(64), nullable=False, server_default=text("''")),
    # Grants are a sequence, not a mapping: loads and exports keep the order they were
    # written in. SQLite's rowid used to give that order; PostgreSQL has nothing like it
    # (an updated row moves), so the store numbers grants as it inserts them.
    Column("catalogue_order", Integer, nullable=False, server_default=text("0")),
)

applications = Table(
    "sharing_applications",
    metadata,
    Column("application_id", String(64), primary_key=True),
    Column("consumer", String(18), nullable=False, index=True),
    Column("provider", String(18), nullable=False, index=True),
    Column("resource", String(64), nullable=False),
    Column("data_items", JSON, nullable=False),
    Column("matter_codes", JSON, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("legal_basis", Text, nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("create_time", String(40), nullable=False),
    Column("due_date", Date, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("update_time", String(40), nullable=True),
    Column("decided_by", Text, nullable=False),
    Column("decide_time", String(40), nullable=True),
    Column("reason", Text, nullable=False),
    Column("grant_id", String(64), nullable=False),
)

events = Table(
    "directory_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    # SQLite would otherwise reuse the highest seq after a delete; seqs must never repeat.
    sqlite_autoincrement=True,
)

requests = Table(
    "directory_requests",
    metadata,
    Column("request_id", String(128), nullable=False),
    # Text, as long as the caller's name: PostgreSQL enforces VARCHAR lengths, SQLite does not.
    Column("actor", Text, nullable=False),
    Column("operation", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("result", JSON, nullable=False),
    Column("create_time", String(40), nullable=False),
    PrimaryKeyConstraint("request_id", "actor"),
)

revision = Table(
    "directory_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", Integer, nullable=False),
)


@dataclass(frozen=True, slots=True)
class Kind(Generic[_T]):
    """One stored collection: its table, key column, collection name and codec."""

    codec: Codec[_T]
    table: Table
    key_column: str
    collection: str
    date_columns: tuple[str, ...] = ()
    renames: Mapping[str, str] | None = None  # document key → column name
    order_column: str | None = None  # the store's insertion counter, not part of the item

    def key_of(self, item: _T) -> str:
        row = self.to_row(item)
        return str(row[self.key_column])

    def to_row(self, item: _T) -> dict[str, Any]:
        row = dict(self.codec.to_doc(item))
        for doc_key, column in (self.renames or {}).items():
            row[column] = row.pop(doc_key)
        for column in self.date_columns:
            row[column] = _dt.date.fromisoformat(row[column])
        return row

    def from_row(self, row: Mapping[Any, Any]) -> _T:
        doc = dict(row)
        if self.order_column is not None:
            doc.pop(self.order_column, None)
        for doc_key, column in (self.renames or {}).items():
            doc[doc_key] = doc.pop(column)
        return self.codec.from_doc(doc)


DEPARTMENT: Kind[Department] = Kind(
    Codec("department", department_to_doc, department_from_doc), departments, "uscc", "departments"
)
RESOURCE: Kind[Resource] = Kind(
    Codec("resource", resource_to_doc, resource_from_doc), resources, "code", "resources"
)
CERTIFICATE_TYPE: Kind[CertificateType] = Kind(
    Codec("certificate_type", certificate_type_to_doc, certificate_type_from_doc),
    certificate_types,
    "key",
    "certificateTypes",
)
MATTER: Kind[Matter] = Kind(
    Codec("matter", matter_to_doc, matter_from_doc), matters, "code", "matters"
)
GRANT: Kind[Grant] = Kind(
    Codec("grant", grant_to_doc, grant_from_doc),
    grants,
    "grant_id",
    "grants",
    date_columns=("valid_from", "valid_until"),
    renames={"id": "grant_id"},
    order_column="catalogue_order",
)
APPLICATION: Kind[SharingApplication] = Kind(
    Codec("application", application_to_doc, application_from_doc),
    applications,
    "application_id",
    "sharingApplications",
    date_columns=("valid_from", "valid_until", "due_date"),
)


def add_missing_columns(conn: Connection, on_add: Callable[[str], None] | None = None) -> None:
    """Bring a directory made by an older release up to this schema.

    create_all makes missing tables but never alters existing ones; the
    columns added since (version, delete_time, grant state…) are all nullable
    or have a server default, so ADD COLUMN is enough and no migration tool is
    needed yet.
    """
    inspector = inspect(conn)
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            ddl = f"ALTER TABLE {table.name} ADD COLUMN {column.name} "
            ddl += column.type.compile(conn.dialect)
            if column.server_default is not None:
                default = column.server_default.arg  # type: ignore[attr-defined]
                ddl += f" DEFAULT {default.text if hasattr(default, 'text') else default}"
                ddl += " NOT NULL" if not column.nullable else ""
            conn.execute(text(ddl))
            if on_add is not None:
                on_add(f"{table.name}.{column.name}")
