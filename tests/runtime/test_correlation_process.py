"""`serve` correlates in a process of its own (runtime/correlation_process.py), with real processes:
- the durable queue's counters are shared: a drain in another process wakes on an append, and its
  removals are what the appending process sees as the backlog; it may not append itself;
- against a real `eventmgmt serve`: the child is the server's; an acknowledgement made through the
  server reaches the receiver through the child's route at once (not at route's 15 s catch-up);
  a child killed with SIGKILL is started again and correlates what comes next, and an operator's
  change made while it was down reaches its route and its archive (queued, and handled once);
  a child whose parent is killed stops within seconds."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventmgmt.archive.writer import read_partition
from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.runtime.correlation_process import CorrelationProcess
from eventmgmt.runtime.drain import hand_on
from eventmgmt.runtime.durable_queue import DurableQueue
from eventmgmt.runtime.operator_changes import OPERATOR_CHANGES, OperatorChanges
from eventmgmt.runtime.queue_counters import SharedCounters
from eventmgmt.settings import Settings
from eventmgmt.transport import InProcessPublisher, Outgoing
from eventmgmt.transport.messages import decode_correlated
from eventmgmt.transport.pipeline import CORRELATED
from tests.correlate.helpers import ev
from tests.support.httpsink import http_sink
from tests.support.incidents import wait
from tests.support.procmem import children, gone
from tests.support.serve import serve_process
from tests.support.storm import storm_alert, webhook


def _drain_elsewhere(path: str, counters: SharedCounters, woken: Any, refused: Any) -> None:
    counters.woken_by(woken)
    q = DurableQueue(Path(path), counters=counters)
    try:
        q.append("t", [Outgoing({"x": 0}, {}, None)])
    except RuntimeError:
        refused.value = 1
    taken = 0
    while taken < 3 and q.wait_for_work(10):
        batch = q.take(100)
        q.remove(batch[-1].seq)
        taken += len(batch)
    q.close()


def test_queue_counters_shared_with_a_draining_process(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    q = DurableQueue(tmp_path / "q.db")
    counters = q.share(ctx)
    refused = ctx.Value("i", 0)
    woken, wake = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_drain_elsewhere, args=(str(tmp_path / "q.db"), counters, woken, refused))
    child.start()
    woken.close()
    counters.wake_with(wake)
    try:
        time.sleep(2)  # NOTE: the child is waiting (up to 10 s): the appends below must wake it
        started = time.monotonic()
        for _ in range(3):
            q.append("t", [Outgoing({"n": 1}, {}, None)], bound=1000)
        assert q.wait_drained(20), q.stats()
        assert time.monotonic() - started < 8, "the drain was not woken by the appends"
        assert q.backlog == 0 and q.counters.rows == 0
        stats = q.stats()
        assert stats["last_accepted_seq"] == stats["last_drained_seq"] == 3
    finally:
        child.join(20)
    assert child.exitcode == 0
    assert refused.value == 1, "the draining process appended to a queue another process appends to"
    q.close()


def _pid_of_child(log: Path) -> int:
    for line in log.read_text().splitlines():
        if '"correlating process started"' in line:
            pid = int(json.loads(line)["pid"])
    return pid


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def _builders(pid: int) -> list[int]:
    """The processes `pid` started with multiprocessing's spawn (its build process)."""
    found = []
    for child in children(pid):
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except FileNotFoundError:
            pass
    return found


def _actions(sink: Any) -> list[tuple[str, str]]:
    return [(b["event_action"], b["dedup_key"]) for b in sink.bodies("/v2/enqueue")]


def _archived(home: Path, incident: str, lifecycle: str) -> bool:
    return any(
        r.get("record") == "incident" and r.get("id") == incident and r.get("lifecycle") == lifecycle
        for r in read_partition(str(home / "archive"))
    )


def test_serve_correlates_in_a_child_that_is_restarted_and_follows_its_parent(tmp_path: Path) -> None:
    t0 = datetime.now(UTC)
    with http_sink() as sink:
        env = {
            "EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k",
            "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue",
            "EVENTMGMT_GROUP_WAIT_SECONDS": "0",
        }
        with serve_process(tmp_path, env) as (url, proc), httpx.Client(base_url=url, timeout=30) as http:
            log = tmp_path / "serve.log"
            assert wait(lambda: '"correlating process started"' in log.read_text(), 30)
            child = _pid_of_child(log)
            assert child != proc.pid and _ppid(child) == proc.pid
            # NOTE: the child builds webhooks' events in a process of its own (runtime/build_ahead.py)
            assert wait(lambda: _builders(child), 30), "the correlating process started no build process"
            builders = _builders(child)

            assert http.post("/ingest/alertmanager", json=webhook([storm_alert(0, t0)])).status_code == 202
            assert wait(lambda: any(a == "trigger" for a, _ in _actions(sink)), 20), _actions(sink)
            incident = http.get("/api/incidents").json()["incidents"][0]["id"]

            # an acknowledgement here is announced to the child's route at once
            acked = http.post(f"/api/incidents/{incident}/ack", json={"by": "alice"})
            assert acked.status_code == 200, acked.text
            assert wait(lambda: ("acknowledge", incident) in _actions(sink), 5), _actions(sink)

            # the child killed: another one is started, and correlates what comes next
            os.kill(child, signal.SIGKILL)
            assert wait(lambda: gone(child), 5)
            assert wait(lambda: all(gone(b) for b in builders), 10), "the build process outlived its drain"
            # NOTE: deliveries are still taken while it is started again: ready, at most degraded
            ready = http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["ready"] is True, ready.text
            # an operator's change while no child runs waits in the queue for the next one
            assert http.post(f"/api/incidents/{incident}/resolve", json={"by": "alice"}).status_code == 200
            assert wait(lambda: _pid_of_child(log) != child, 30), log.read_text()[-2000:]
            assert "the correlating process exited; starting another" in log.read_text()
            assert wait(lambda: ("resolve", incident) in _actions(sink), 10), _actions(sink)
            assert wait(lambda: _archived(tmp_path, incident, "resolved"), 20)
            second = _pid_of_child(log)
            assert wait(lambda: _builders(second), 30)
            builders = _builders(second)
            assert http.post("/ingest/alertmanager", json=webhook([storm_alert(501, t0)])).status_code == 202
            assert http.get("/api/queue", params={"wait": 20}).json()["backlog_events"] == 0
            assert len(http.get("/api/incidents").json()["incidents"]) == 2
            assert http.get("/readyz").status_code == 200
            metrics = http.get("/metrics").text
            assert "eventmgmt_correlation_restarts_total 1.0" in metrics
            # NOTE: the two webhooks' rows, built by either child's drain or build process, counted
            # across the restart (the counts live in memory the parent shares)
            built = re.findall(r'^eventmgmt_queued_rows_built_total\{by="(\w+)"\} (\S+)$', metrics, re.M)
            assert {by for by, _ in built} == {"build_process", "drain"}, metrics
            assert sum(float(n) for _, n in built) >= 2, built

            # the parent killed: the child stops on its own, soon
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert wait(lambda: gone(second), 10), "the correlating process outlived its parent"
            assert wait(lambda: all(gone(b) for b in builders), 10), "the build process outlived its drain"


@pytest.mark.parametrize("pipe_first", [True, False])
def test_an_operators_change_is_queued_and_handled_once(tmp_path: Path, pipe_first: bool) -> None:
    """Forwarded, a change is queued durably (whether or not a child runs, here none was started),
    and the child hands it to route and archive once, whether the pipe's copy or the queue's comes
    first."""
    corr = Correlator(default_config(), MemoryRepo())
    e = ev("high_error_rate", 0, pod="triton-bert-0", model="bert")
    sent = corr.process(e, e.received_at).messages
    assert sent and sent[0].incident_id
    queue = DurableQueue(tmp_path / "queue.db")
    CorrelationProcess(Settings(home=tmp_path), queue).forward(sent)
    rows = queue.take(100)
    assert [r.topic for r in rows] == [OPERATOR_CHANGES] and queue.backlog > 0

    got: list[Any] = []
    publisher = InProcessPublisher()
    publisher.subscribe(CORRELATED, "archive", lambda ce: got.extend(decode_correlated(ce, "archive")))
    changes = OperatorChanges(publisher)
    publisher.subscribe(OPERATOR_CHANGES, "operator-changes", changes.handle_encoded)
    copies = [lambda: changes.handle(sent), lambda: hand_on(publisher, rows[0].topic, rows[0].messages)]
    for copy in copies if pipe_first else reversed(copies):
        copy()
    assert [(m.event.id, m.incident_id, m.action) for m in got] == [(m.event.id, m.incident_id, m.action) for m in sent]
    queue.close()
