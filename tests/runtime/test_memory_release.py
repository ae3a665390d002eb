"""Giving memory back after a burst: the state store's SQLite page caches are released without
losing a connection in use or an in-memory database, and the drain releases once its queue is empty
after a burst, not after every delivery."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import pytest
from sqlalchemy import text

from eventmgmt.runtime import drain as drain_mod
from eventmgmt.runtime.drain import Drainer
from eventmgmt.runtime.durable_queue import DurableQueue
from eventmgmt.runtime.memory import release_page_caches
from eventmgmt.store import make_engine
from eventmgmt.transport import Outgoing


def test_idle_connections_are_closed_and_the_engine_still_works(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (v TEXT)"))
        c.execute(text("INSERT INTO t VALUES (:v)"), [{"v": "x" * 1000} for _ in range(2000)])
    with engine.connect() as c:
        first = c.connection.dbapi_connection
        assert c.execute(text("SELECT COUNT(*) FROM t")).scalar() == 2000
    release_page_caches(engine)
    with engine.connect() as c:
        # NOTE: a new connection: the idle one (and its page cache) was closed
        assert c.connection.dbapi_connection is not first
        assert c.execute(text("SELECT COUNT(*) FROM t")).scalar() == 2000
    engine.dispose()


def test_a_connection_in_use_finishes_its_transaction(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'state.db'}")
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (v INTEGER)"))
    started, released = threading.Event(), threading.Event()

    def writer() -> None:
        with engine.begin() as c:
            c.execute(text("INSERT INTO t VALUES (1)"))
            started.set()
            released.wait(10)
            c.execute(text("INSERT INTO t VALUES (2)"))

    t = threading.Thread(target=writer)
    t.start()
    assert started.wait(10)
    release_page_caches(engine)
    released.set()
    t.join(10)
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM t")).scalar() == 2
    engine.dispose()


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite:///file:release-test?mode=memory&cache=shared&uri=true"])
def test_an_in_memory_database_is_kept(url: str) -> None:
    with warnings.catch_warnings():
        # NOTE: SQLAlchemy 2.1 warns (deprecation) when it picks the pool of a `mode=memory` URL itself
        warnings.simplefilter("error")
        engine = make_engine(url)
    keep = engine.connect()  # NOTE: a shared in-memory database lives while one connection does
    with engine.begin() as c:
        c.execute(text("CREATE TABLE t (v INTEGER)"))
        c.execute(text("INSERT INTO t VALUES (1)"))
    keep.close()
    release_page_caches(engine)
    with engine.connect() as c:
        assert c.execute(text("SELECT COUNT(*) FROM t")).scalar() == 1


def test_the_drain_releases_once_empty_after_a_burst(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(drain_mod, "TRIM_AFTER_EVENTS", 10)
    queue = DurableQueue(tmp_path / "queue.db")
    released: list[int] = []
    handled: list[int] = []
    drainer = Drainer(
        queue,
        lambda _topic, messages: handled.append(len(messages)),
        max_events=4,
        release=lambda: released.append(queue.backlog),
    )
    for _ in range(3):  # 12 events: past the threshold once the queue is empty
        queue.append("events-raw", [Outgoing({"n": i}, {}, None) for i in range(4)])
    assert drainer.step() and drainer.step()
    assert released == [], "released with deliveries still queued"
    assert drainer.step()
    assert released == [0]
    queue.append("events-raw", [Outgoing({"n": 1}, {}, None)])
    assert drainer.step()
    assert released == [0], "released again after one small delivery"
    assert drainer.releases == 1
    assert sum(handled) == 13
    queue.shrink_memory()  # NOTE: both connections still usable afterwards
    queue.append("events-raw", [Outgoing({"n": 2}, {}, None)])
    assert queue.backlog == 1
    queue.close()
