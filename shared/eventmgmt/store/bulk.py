"""Inserting many rows in one go: PostgreSQL's COPY, an executemany elsewhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.exc import DBAPIError

from .db import json_serializer


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows`, each a mapping of the same columns, within `conn`'s transaction.

    NOTE: on PostgreSQL an executemany is a pipeline of one INSERT a row: the server parses, binds
    and runs each, and a client sharing its cores with the server is switched out for it once a
    packet, a hundred times a delivery in a storm (5,500 preemptions of each of two correlate
    instances in `scaleout_bench`). COPY streams the rows as one statement. Errors come back as
    SQLAlchemy's, as an executemany's would: the drain retries an OperationalError."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(table.insert(), rows)
        return
    names = list(rows[0])
    as_json = {i for i, n in enumerate(names) if isinstance(table.c[n].type, JSON)}
    prep = conn.dialect.identifier_preparer
    sql = f"COPY {prep.format_table(table)} ({', '.join(prep.quote(n) for n in names)}) FROM STDIN"
    driver = conn.connection.dbapi_connection
    assert driver is not None
    dbapi = conn.dialect.loaded_dbapi
    try:
        with driver.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[attr-defined]
            for row in rows:
                if row.keys() != rows[0].keys():
                    raise ValueError(f"rows for {table.name} name different columns: {sorted(row)} and {names}")
                values = [row[n] for n in names]
                for i in as_json:
                    if values[i] is not None:
                        values[i] = json_serializer(values[i])
                copy.write_row(values)
    except dbapi.Error as err:
        wrapped = DBAPIError.instance(sql, None, err, dbapi.Error)
        if conn.dialect.is_disconnect(err, driver, None):
            # NOTE: as SQLAlchemy does for its own statements: the pool must not hand the dead
            # connection out again, and rolling back on it must not raise a second error
            wrapped.connection_invalidated = True
            conn.invalidate(wrapped)
        raise wrapped from err
