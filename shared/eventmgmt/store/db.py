"""Engine creation and the one declarative Base every stage's tables register on, by being imported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import SingletonThreadPool


class Base(DeclarativeBase):
    pass


class JsonText(str):
    """A JSON document already encoded, written to a JSON column as it is: an event's row gets the
    text pydantic's serializer writes (a third of the time json.dumps takes over the same dict,
    measured 7 vs 20 us an event), not the dict encoded again."""


def json_serializer(value: Any) -> str:
    """What every engine `make_engine` makes encodes a JSON column's value with."""
    return str(value) if isinstance(value, JsonText) else json.dumps(value)


def in_memory(url: URL) -> bool:
    """An SQLite database that lives only as long as a connection to it: `:memory:`, or a URI
    with `mode=memory` (a shared cache the tests use)."""
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


_READ_ONLY = "eventmgmt_read_only"


def reader(engine: Engine) -> Engine:
    """`engine` for sessions that only read.

    NOTE: on SQLite every other transaction begins IMMEDIATE, taking the write lock up front (a
    transaction that reads, then writes, could otherwise fail to upgrade). A reader that did so
    waited for correlation's whole transaction, a second or more in a storm, and the next one waited
    for it: the route worker's reads, the dashboard's. Begun deferred, in WAL mode, a reader reads
    the last commit and waits for nobody. Nothing may write through it."""
    return engine.execution_options(**{_READ_ONLY: True})


def make_engine(url: str) -> Engine:
    """An engine with the settings each backend needs under concurrent writers."""
    return _sqlite_engine(url) if url.startswith("sqlite") else _postgres_engine(url)


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    memory = in_memory(parsed)
    if parsed.database and not memory:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # NOTE: an in-memory database keeps one connection a thread, the pool SQLAlchemy picks for
    # these URLs itself; named, since SQLAlchemy 2.1 warns that its choice for `mode=memory`
    # will change (a QueuePool would drop the database with its last connection).
    pool = {"poolclass": SingletonThreadPool} if memory else {}
    engine = create_engine(
        url, connect_args={"timeout": 30, "check_same_thread": False}, json_serializer=json_serializer, **pool
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # NOTE: WAL lets the dashboard read while correlate writes; the pysqlite driver's own
        # transaction handling is turned off so BEGIN IMMEDIATE below takes the write lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: the live-incident index stays in memory
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: str) -> Engine:
    # NOTE: `postgres://` is the spelling of Heroku, Render and many operators' secrets; SQLAlchemy
    # knows no such dialect and failed with "Can't load plugin".
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            url = "postgresql+psycopg://" + url[len(scheme) :]
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, json_serializer=json_serializer)

    @event.listens_for(engine, "connect")
    def _custom_plans(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # NOTE: psycopg prepares a statement on its fifth run, and PostgreSQL then keeps one generic
        # plan for it, costed for an array of unknown length against the table as it was: early in
        # a storm, a few rows. Every `key = ANY(:keys)` lookup of correlation then scanned the whole
        # index table (73 of 73 lookups in an 8,000-event storm, 9.7 ms each, growing with the
        # storm). Custom plans see the delivery's array and the table's size. Set per session, not
        # as a startup `options`: the URL's own (a search_path) stay as they are, and PgBouncer
        # refuses startup parameters it does not know.
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        with dbapi_conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.autocommit = autocommit

    return engine


def ensure_schema(engine: Engine) -> None:
    """Creates what is missing of every table declared so far: the store's own, and those of each
    stage module imported (a stage's tables register on `Base` by being imported, so the store
    knows no stage). Idempotent: nothing is altered or dropped."""
    from . import tables  # noqa: F401  (the events and incidents every entry point needs)

    Base.metadata.create_all(engine)
