"""Pages survive a crash and a stop (issue 13, finding 2): a real `eventmgmt serve` with PagerDuty
pointed at a local sink takes a burst of Alertmanager webhooks that open many distinct incidents, and
is killed (`kill -9`) or stopped (SIGTERM) mid-burst, while route is still behind; then it is started
again on the same home. Every stored incident must reach PagerDuty exactly once (one trigger, dedup
key = incident id), within seconds of the restart, and a stop must exit 0 within its deadline."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.support.httpsink import Sink, http_sink
from tests.support.incidents import list_incidents, wait_drained
from tests.support.serve import start, stop

INCIDENTS = 60  # one model each: distinct incidents
ALERTS = 5  # per webhook, each its own fingerprint: every alert is a message for route
WEBHOOKS = 400
CLIENTS = 6
INTO_BURST = 2.0  # seconds into the burst the signal comes
# NOTE: route pages one at a time: with PagerDuty answering this slowly, paging every incident takes
# twice as long as the burst runs before the signal, so route is behind at the signal however fast
# correlation opens them (at 20 ms, a fast machine had paged all 60 before it, and the tests proved
# nothing).
SINK_DELAY = 2 * INTO_BURST / INCIDENTS
PAGED_WITHIN = 10.0  # seconds after the restart answers
QUIET = 5.0  # "exactly once" watches until no page came for this long: a late duplicate is seen


def webhook(i: int, starts: str) -> dict:
    k = i % INCIDENTS
    labels = {"alertname": "TritonHighErrorRate", "severity": "critical", "namespace": "inference"}
    alerts = [
        {
            "status": "firing",
            "startsAt": starts,
            "fingerprint": f"k{k}w{i}a{j}",
            "labels": {**labels, "model": f"m{k}", "pod": f"triton-m{k}-68kxfnbbb2-wbq4b", "replica": str(j)},
        }
        for j in range(ALERTS)
    ]
    return {"version": "4", "status": "firing", "receiver": "test", "alerts": alerts}


def burst(url: str) -> list[threading.Thread]:
    """Posts the webhooks from CLIENTS threads until the server goes away."""
    starts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    hooks = [webhook(i, starts) for i in range(WEBHOOKS)]

    def run(part: list[dict]) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            for hook in part:
                try:
                    http.post("/ingest/alertmanager", json=hook)
                except httpx.HTTPError:
                    return

    threads = [threading.Thread(target=run, args=(hooks[c::CLIENTS],), daemon=True) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    return threads


def triggers(sink: Sink, upto: int | None = None) -> list[str]:
    bodies = [b for p, _, b in sink.requests[:upto] if p == "/v2/enqueue"]
    return [b["dedup_key"] for b in bodies if b["event_action"] == "trigger"]


def stored(url: str) -> set[str]:
    with httpx.Client(base_url=url, timeout=10) as http:
        return {inc["id"] for inc in list_incidents(http, limit=100)}


@dataclass
class Run:
    exit_code: int | None
    exit_seconds: float
    before: list[str]  # triggers the sink had received when the first process was gone
    drained: int  # of those, how many came after the signal
    stored: set[str]  # incidents stored, read from the restarted server once it has caught up
    stored_at_exit: set[str]  # incidents the first process had stored when it was gone
    paged_after: float | None  # seconds from the restart until every stored incident had a trigger
    after: list[str]  # every trigger received, once nothing more came for QUIET seconds


def wait_exit(proc: subprocess.Popen, timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def interrupt(tmp_path: Path, sig: signal.Signals, env: dict[str, str] | None = None) -> Run:
    """Burst, `sig` INTO_BURST seconds in, restart on the same home, watch the pages."""
    with http_sink() as sink:
        sink.delay = SINK_DELAY
        env = {
            "EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k",
            "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue",
            **(env or {}),
        }
        first = start(tmp_path, env)
        threads = burst(first.url)
        time.sleep(INTO_BURST)
        signalled, sent_before_signal = time.monotonic(), len(triggers(sink))
        first.proc.send_signal(sig)
        code = wait_exit(first.proc, 30)
        exit_seconds = time.monotonic() - signalled
        stop(first.proc)
        for t in threads:
            t.join(15)
        before = triggers(sink)
        with sqlite3.connect(tmp_path / "state.db") as db:
            at_exit = {i for (i,) in db.execute("SELECT id FROM incidents WHERE status != 'merged'")}
        second = start(tmp_path, env)
        try:
            restarted, restarted_pc = time.monotonic(), time.perf_counter()
            # NOTE: what was accepted before the signal and not yet correlated is correlated first
            with httpx.Client(base_url=second.url, timeout=15) as http:
                wait_drained(http, timeout=PAGED_WITHIN)
            ids = stored(second.url)
            paged_after = None
            while time.monotonic() - restarted < PAGED_WITHIN + QUIET and paged_after is None:
                if ids <= set(triggers(sink)):
                    paged_after = time.monotonic() - restarted
                time.sleep(0.1)
            # NOTE: the sink stamps requests with perf_counter
            while time.perf_counter() - max([restarted_pc, *(t for _, t in sink.times)]) < QUIET:
                time.sleep(0.2)
        finally:
            stop(second.proc)
        drained = len(before) - sent_before_signal
        run = Run(code, exit_seconds, before, drained, ids, at_exit, paged_after, triggers(sink))
        print(
            f"{sig.name}: exit {code} in {exit_seconds:.2f} s; {len(ids)} stored, {len(set(before) & ids)} paged "
            f"before restart ({drained} after the signal), all paged {paged_after} s after it; triggers {len(run.after)}"
        )
        return run


def test_kill_9_mid_burst_then_every_stored_incident_paged_once_after_restart(tmp_path):
    run = interrupt(tmp_path, signal.SIGKILL)
    assert run.exit_code == -9
    assert len(run.stored) >= 5, "the burst stored too little before the kill to prove anything"
    owed = run.stored - set(run.before)
    assert owed, "route had paged everything before the kill: the kill came too late to prove anything"
    assert run.paged_after is not None and run.paged_after <= PAGED_WITHIN, (
        f"{len(run.stored - set(run.after))} of {len(run.stored)} stored incidents never paged after restart"
    )
    told = Counter(run.after)
    assert set(told) == run.stored
    # NOTE: the one request in flight when the process died (route sends one at a time) may have
    # reached the sink without route learning it: that page, and only that one, may come twice.
    in_flight = run.before[-1:]
    twice = {key for key, n in told.items() if n > 1}
    assert twice <= set(in_flight) and max(told.values()) <= 2, f"paged more than once: {sorted(twice)}"


def test_sigterm_mid_burst_drains_route_exits_0_and_nothing_is_lost(tmp_path):
    run = interrupt(tmp_path, signal.SIGTERM)
    assert run.exit_code == 0, f"SIGTERM: exit code {run.exit_code}"
    assert run.exit_seconds <= 10 + 3, f"took {run.exit_seconds:.1f} s to stop (deadline 10 s)"
    assert len(run.stored) >= 5
    assert run.drained, "route had paged everything before the signal: the test proves nothing"
    assert set(run.before) == run.stored_at_exit, "stopped before route had paged what was stored"
    assert run.paged_after is not None
    assert Counter(run.after) == Counter(run.stored), "an incident paged twice, or never"


def test_sigterm_with_a_drain_too_short_leaves_the_rest_to_the_restart(tmp_path):
    run = interrupt(tmp_path, signal.SIGTERM, {"EVENTMGMT_DRAIN_SECONDS": "0.2"})
    assert run.exit_code == 0
    assert run.exit_seconds <= 5, f"took {run.exit_seconds:.1f} s to stop (deadline 0.2 s)"
    assert run.stored - set(run.before), "route drained everything in 0.2 s: the test proves nothing"
    assert run.paged_after is not None and run.paged_after <= PAGED_WITHIN
    assert Counter(run.after) == Counter(run.stored), "an incident paged twice, or never"
