"""On SQLite every writing transaction begins IMMEDIATE (it takes the write lock up front); a reader
(`store.reader`: route's ledger reads and stored snapshots, the dashboard's queries, /metrics)
begins deferred, so while correlation holds its transaction open it reads the last commit at once
instead of waiting for it, and holds up nobody."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from eventmgmt.store import ensure_schema, make_engine, reader
from eventmgmt.store.queries import list_incidents
from eventmgmt.store.tables import IncidentFingerprintRow


@pytest.fixture
def engine(tmp_path) -> Engine:  # type: ignore[no-untyped-def]
    e = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    ensure_schema(e)
    return e


def _holding_a_write(engine: Engine, release: threading.Event, holding: threading.Event) -> None:
    with Session(engine) as s, s.begin():
        s.execute(text("INSERT INTO incident_fingerprints (fingerprint, incident_id) VALUES ('fp', 'inc')"))
        holding.set()
        release.wait(60)


def _select_one(engine: Engine) -> int | None:
    with Session(engine) as s, s.begin():
        return s.scalar(text("SELECT 1"))


def _in_thread(fn, wait: float = 10.0):  # type: ignore[no-untyped-def]
    """[what `fn` returned], or [] while it is still waiting after `wait` seconds."""
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    t.join(wait)
    return out


def test_a_reader_reads_the_last_commit_while_a_writer_holds_its_transaction(engine: Engine) -> None:
    release, holding = threading.Event(), threading.Event()
    writer = threading.Thread(target=_holding_a_write, args=(engine, release, holding), daemon=True)
    writer.start()
    assert holding.wait(10)
    try:

        def count() -> int | None:
            with Session(reader(engine)) as s:
                return s.scalar(select(func.count()).select_from(IncidentFingerprintRow))

        assert _in_thread(count) == [0]  # answered while the write is open, without its row
        assert _in_thread(lambda: list_incidents(engine)["total"]) == [0]  # the dashboard's query too
        # NOTE: a session that may write still waits for the lock (its BEGIN IMMEDIATE)
        assert _in_thread(lambda: _select_one(engine), wait=1.0) == []
    finally:
        release.set()
        writer.join(10)
    with Session(reader(engine)) as s:
        assert s.scalar(select(func.count()).select_from(IncidentFingerprintRow)) == 1
