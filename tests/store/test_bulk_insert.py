"""`insert_rows`: COPY on PostgreSQL, an executemany on SQLite; the same rows back either way, and a
failure that leaves nothing behind and comes back as SQLAlchemy's error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.store.bulk import insert_rows
from eventmgmt.store.db import JsonText
from eventmgmt.store.tables import EventRow, IncidentKeyRow
from tests.support.pg import PG_URL, pg_schema, state_engine

EVENTS = EventRow.__table__
KEYS = IncidentKeyRow.__table__


def event(i: int, **over: object) -> dict[str, object]:
    row: dict[str, object] = dict(
        id=f"am:{i}",
        fingerprint=f"fp{i}",
        source="alertmanager",
        kind="triton_crash",
        cls="alert",
        severity="high",
        status="firing",
        occurred_at=datetime(2026, 11, 7, 8, i % 60, tzinfo=UTC),
        received_at=datetime(2026, 11, 7, 8, 59, 59, 250000, tzinfo=UTC),
        incident_id=None if i % 2 else f"inc-{i % 3}",
        # NOTE: what COPY's text format must escape: tabs, newlines, backslashes, its null marker
        summary=f"pod {i}\tOOMKilled\nexit 137 \\N C:\\triton «λ»",
        namespace="triton",
        node=None,
        pod=f"triton-{i}",
        model="llm",
        capture=None,
        idx=i,
        suppressed=bool(i % 2),
        data={"labels": {"a\tb": "c\\d\n", "n": None}, "values": [1, 2.5, True]},
    )
    row.update(over)
    return row


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with state_engine(request.param, tmp_path) as e:
        yield e


def stored(engine: Engine) -> list[dict[str, object]]:
    with engine.connect() as c:
        rows = [dict(r._mapping) for r in c.execute(select(EVENTS).order_by(EVENTS.c.idx))]
    for r in rows:
        for col in ("occurred_at", "received_at"):
            if r[col].tzinfo is None:  # SQLite hands them back without their zone
                r[col] = r[col].replace(tzinfo=UTC)
    return rows


def test_rows_come_back_as_they_went_in(engine: Engine):
    rows = [event(i) for i in range(30)]
    rows[4]["data"] = JsonText('{"as":"text","tab":"\\t"}')  # already encoded, as correlation writes it
    with engine.begin() as c:
        insert_rows(c, EVENTS, rows)
        insert_rows(c, KEYS, [])  # nothing to do
    back = stored(engine)
    rows[4]["data"] = {"as": "text", "tab": "\t"}
    assert back == rows


def test_a_duplicate_fails_the_whole_insert_as_an_integrity_error(engine: Engine):
    with engine.begin() as c:
        insert_rows(c, EVENTS, [event(1)])
    with pytest.raises(IntegrityError), engine.begin() as c:
        insert_rows(c, EVENTS, [event(i) for i in range(5)])  # am:1 again, among new ones
    assert [r["id"] for r in stored(engine)] == ["am:1"]


def test_rows_naming_different_columns_are_refused_by_copy():
    """(An executemany on SQLite takes the first row's columns itself.)"""
    with pg_schema() as url:
        engine = make_engine(url)
        ensure_schema(engine)
        try:
            with pytest.raises(ValueError, match="different columns"), engine.begin() as c:
                insert_rows(c, KEYS, [{"key": "pod:a", "incident_id": "i"}, {"key": "pod:b"}])
            with engine.connect() as c:
                assert c.execute(select(KEYS)).all() == []
        finally:
            engine.dispose()


def test_a_lost_connection_is_an_operational_error_the_drain_retries():
    from eventmgmt.runtime.drain import TRANSIENT

    with pg_schema() as url:
        engine = make_engine(url)
        ensure_schema(engine)
        admin = make_engine(PG_URL)
        try:
            with engine.connect() as c:
                c.begin()
                pid = c.execute(text("SELECT pg_backend_pid()")).scalar()
                with admin.begin() as a:
                    a.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                with pytest.raises(OperationalError) as caught:
                    insert_rows(c, EVENTS, [event(i) for i in range(3)])
            assert isinstance(caught.value, TRANSIENT) and caught.value.connection_invalidated
            assert stored(engine) == []
        finally:
            admin.dispose()
            engine.dispose()


def test_columns_left_out_take_their_defaults(engine: Engine):
    """As an executemany fills them: `summary` and `suppressed` have scalar defaults."""
    row = event(7)
    del row["summary"], row["suppressed"]
    with engine.begin() as c:
        insert_rows(c, EVENTS, [row])
    (back,) = stored(engine)
    assert (back["summary"], back["suppressed"]) == ("", False)
