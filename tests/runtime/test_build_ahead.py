"""Building queued webhooks in a process of their own (runtime/build_ahead.py): the drain correlates
exactly what it would have built itself, whoever built each row; each row is built by one process;
a builder that dies, stalls or cannot build a row leaves it to the drain, and nothing is lost or
stored twice; the builder does not outlive the process that started it."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from eventmgmt.ingest.queued import DELIVERIES
from eventmgmt.runtime import build_ahead
from eventmgmt.runtime.app import Runtime, build_runtime
from eventmgmt.runtime.build_ahead import BuildAhead, usable_cores
from eventmgmt.runtime.builder import Claims
from eventmgmt.runtime.drain import Drainer
from eventmgmt.settings import Settings
from eventmgmt.store.tables import EventRow
from eventmgmt.transport.publisher import EncodedMessage
from tests.support.incidents import wait
from tests.support.procmem import gone
from tests.support.storm import storm_alert, webhook

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JSON = {"content-type": "application/json"}
SPAWN = multiprocessing.get_context("spawn")


def bodies() -> list[bytes]:
    """A storm in webhooks of 50, with what ingest refuses (a record without labels) and what the
    configuration's filter drops (Watchdog) among them."""
    out = []
    for w in range(12):
        alerts = [storm_alert(w * 50 + i, T0) for i in range(50)]
        if w % 3 == 0:
            alerts[7] = {"status": "firing", "startsAt": "2026-11-28T12:00:00Z"}
        if w % 4 == 1:
            alerts[9]["labels"] = {"alertname": "Watchdog", "severity": "none"}
        out.append(json.dumps(webhook(alerts)).encode())
    return out


@pytest.fixture
def queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Runtimes whose drain thread is not started (the test steps it), each with the same webhooks
    queued: received at one fixed time, so every home queues the same rows."""
    monkeypatch.setattr(Drainer, "start", lambda self: self)
    made: list[Runtime] = []

    config = tmp_path / "config.yaml"
    config.write_text("filters:\n  - {name: watchdog, when: {source: alertmanager, labels: {alertname: Watchdog}}}\n")

    def make(name: str) -> Runtime:
        rt = build_runtime(Settings(home=tmp_path / name, config_path=str(config)))
        made.append(rt)
        rt.ingest.clock = lambda: T0
        for body in bodies():
            answer = rt.ingest.handle("alertmanager", JSON, body)
            assert answer.status == 202, answer.body
        return rt

    yield make
    for rt in made:
        rt.stop()


def drainer(rt: Runtime) -> Drainer:
    assert isinstance(rt.drainer, Drainer)
    return rt.drainer


def attach(rt: Runtime, **kw: Any) -> BuildAhead:
    ahead = BuildAhead(rt.settings.queue_path, rt.config, rt.ingest.limits, ctx=SPAWN, **kw).start()
    assert ahead.wait_ready(60), "the build process did not start"
    drainer(rt).ahead = ahead
    return ahead


def drain(rt: Runtime) -> None:
    while drainer(rt).step():
        pass


def outcome(rt: Runtime) -> dict[str, Any]:
    """What correlation stored (each event's stored form, which events share an incident) and what
    ingest counted."""
    with Session(rt.engine) as s:
        rows = list(s.scalars(select(EventRow)))
        events = {r.id: r.data for r in rows}
        incidents: dict[str | None, set[str]] = {}
        for r in rows:
            incidents.setdefault(r.incident_id, set()).add(r.id)
    return {
        "events": events,
        "groups": sorted(sorted(v) for v in incidents.values()),
        "accepted": dict(rt.ingest.accepted),
        "filtered": dict(rt.ingest.filtered),
        "late": dict(rt.ingest.rejected_records),
        "backlog": rt.queue.backlog,
    }


def builder_pid(ahead: BuildAhead) -> int:
    return int(ahead._proc.pid)


def test_the_drain_correlates_what_it_would_have_built_itself(queued: Any) -> None:
    alone, helped = queued("alone"), queued("helped")
    drain(alone)
    reported: Counter[str] = Counter()
    ahead = attach(helped, report=lambda **n: reported.update(n))
    # NOTE: the builder is given a head start, as in a storm the drain is busy with the rows before
    ahead._wake()
    assert wait(lambda: ahead.claims.claimed >= 3, 30), "the builder claimed nothing"
    drain(helped)
    expected, found = outcome(alone), outcome(helped)
    assert expected["events"] and expected["filtered"] and expected["backlog"] == 0
    assert found == expected
    assert ahead.ahead_rows >= 3, (ahead.ahead_rows, ahead.drain_rows)
    assert ahead.ahead_rows + ahead.drain_rows == len(bodies())
    assert drainer(helped).build_counts == (reported["ahead"], reported["in_drain"], 0) == ahead.counts
    assert drainer(alone).build_counts == (0, len(bodies()), 0)
    # NOTE: closed twice, as serve's exit does (drain_before_exit, then Runtime.stop)
    drainer(helped).close()
    drainer(helped).close()
    assert not ahead._proc.is_alive()


def test_each_row_is_claimed_by_one_process_only(tmp_path: Path) -> None:
    state = SPAWN.RawArray("q", 2)
    lock = tmp_path / "claims.lock"
    results = SPAWN.Queue()
    others = [SPAWN.Process(target=_claim_all, args=(state, lock, 3000, results)) for _ in range(2)]
    for p in others:
        p.start()
    mine = _claim_all(state, lock, 3000)
    theirs = [results.get(timeout=60) for _ in others]
    for p in others:
        p.join(10)
    everyone = [*mine, *theirs[0], *theirs[1]]
    assert sorted(everyone) == list(range(1, 3001)), "a row claimed twice, or by nobody"
    assert all(theirs) or mine, "nobody claimed anything"


def _claim_all(state: Any, lock: Path, n: int, results: Any = None) -> list[int]:
    claims = Claims(state, lock)
    got = [seq for seq in range(1, n + 1) if claims.claim(seq)]
    claims.close()
    if results is not None:
        results.put(got)
    return got


def test_rows_a_dead_builder_claimed_are_built_by_the_drain(queued: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build_ahead, "RESTART_DELAY", 0.0)
    expected = outcome(_drained(queued("alone")))
    rt = queued("helped")
    ahead = attach(rt)
    # NOTE: as if it had claimed the first rows and died building them
    assert ahead.claims.claim(4)
    os.kill(builder_pid(ahead), signal.SIGKILL)
    assert wait(lambda: not ahead._alive, 10)
    first = drainer(rt).queue.take(1)[0].seq
    drainer(rt).step()
    assert ahead.restarts == 1, "the build process was not started again"
    assert ahead.wait_ready(60)
    drain(rt)
    assert outcome(rt) == expected
    assert first <= 4
    assert ahead.late_rows == 0, "the drain waited for rows the dead builder had claimed"


def _drained(rt: Runtime) -> Runtime:
    drain(rt)
    return rt


def test_rows_of_a_stalled_builder_are_built_by_the_drain(queued: Any) -> None:
    expected = outcome(_drained(queued("alone")))
    rt = queued("helped")
    ahead = attach(rt, wait=0.5)
    pid = builder_pid(ahead)
    os.kill(pid, signal.SIGSTOP)
    try:
        assert ahead.claims.claim(2)  # NOTE: claimed, then stopped before it built them
        # NOTE: more wake-ups than its pipe holds: none may block the drain
        waking = threading.Thread(target=lambda: [ahead._wake() for _ in range(20_000)], daemon=True)
        waking.start()
        waking.join(20)
        assert not waking.is_alive(), "a wake-up blocked on the stopped builder's full pipe"
        started = time.monotonic()
        drain(rt)
        assert time.monotonic() - started < 30
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert outcome(rt) == expected
    assert ahead.late_rows == 1 and ahead.drain_rows >= 2, "the drain waited for each stalled row"
    assert wait(lambda: gone(pid), 10), "a stalled builder is killed, to be started again"


def test_a_part_nobody_can_build_is_dead_lettered_and_the_rest_correlated(queued: Any) -> None:
    expected = outcome(_drained(queued("alone")))
    rt = queued("helped")
    # NOTE: a row that is JSON but not a queued part: both the builder and the drain fail on it
    poison = EncodedMessage(json.dumps({"source": "alertmanager", "body": {}}), {}, None, 1)
    rt.queue.append_encoded(DELIVERIES, [poison])
    rt.ingest.handle("alertmanager", JSON, json.dumps(webhook([storm_alert(9000, T0)])).encode())
    ahead = attach(rt)
    ahead._wake()
    assert wait(lambda: ahead.claims.claimed >= len(bodies()) + 2, 30), ahead.claims.claimed
    d = drainer(rt)
    d.backoff = 0.0
    d.max_attempts = 1
    drain(rt)
    found = outcome(rt)
    assert rt.queue.stats()["dead_letters"] == 1
    assert len(found["events"]) == len(expected["events"]) + 1
    assert set(expected["events"]) < set(found["events"])
    assert found["backlog"] == 0


def test_the_builder_stops_when_the_process_that_started_it_dies(tmp_path: Path) -> None:
    ours, theirs = SPAWN.Pipe()
    parent = SPAWN.Process(target=_start_builder, args=(tmp_path, theirs))
    parent.start()
    try:
        assert ours.poll(60), "the builder's parent reported nothing"
        pid = ours.recv()
        os.kill(int(parent.pid or 0), signal.SIGKILL)
        parent.join(10)
        assert wait(lambda: gone(pid), 10), "the build process outlived the process that started it"
    finally:
        if parent.is_alive():
            parent.kill()


def _start_builder(home: Path, conn: Any) -> None:
    rt = build_runtime(Settings(home=home))
    ahead = BuildAhead(rt.settings.queue_path, rt.config, rt.ingest.limits, ctx=SPAWN).start()
    ahead.wait_ready(60)
    conn.send(builder_pid(ahead))
    time.sleep(600)


@pytest.mark.parametrize(
    ("cpu_max", "cap"),
    [("max 100000\n", None), ("100000 100000\n", 1), ("150000 100000\n", 2), ("50000 100000\n", 1), (None, None)],
)
def test_the_cores_counted_are_capped_by_a_cgroup_quota(tmp_path: Path, cpu_max: str | None, cap: int | None) -> None:
    """A Kubernetes CPU limit of 1 leaves no second core for the build process to run on."""
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores(path) == (affinity if cap is None else min(affinity, cap))
