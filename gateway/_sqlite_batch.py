"""Inserting many rows into SQLite with few statements.

`executemany` steps SQLite once per row and releases and re-takes the GIL each
time; while the event loop thread is busy, every re-take waits its turn, which
made a group commit of 128 access records cost ~50 µs per row instead of ~5.
One multi-row `INSERT … VALUES (…), (…)` per chunk steps once per chunk. Chunk
sizes are a few fixed powers of four so the statement cache stays warm.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

__all__ = ["insert_rows"]

_CHUNKS = (256, 64, 16, 4, 1)


def insert_rows(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> None:
    """INSERT `rows` into `table`, in as few statements as the chunk sizes allow."""
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ", ".join("?" * len(columns)) + ")"
    position = 0
    while position < len(rows):
        size = next(c for c in _CHUNKS if c <= len(rows) - position)
        chunk = rows[position : position + size]
        conn.execute(head + ", ".join([one] * size), [v for row in chunk for v in row])
        position += size
