"""Issue 13 audit: first pages held back by the group wait are sent on SIGTERM. With the default
10 s group wait, a stop within it left them unsent: they went out a group wait after the next start,
and never if the pod was not started again. A real `eventmgmt serve` with PagerDuty on a local sink
takes alerts opening a few incidents, is stopped 2 s later, and every stored incident must have
been paged before the process exited, once."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime

import httpx

from tests.reliability.test_pages_survive import triggers, webhook
from tests.support.httpsink import http_sink
from tests.support.serve import start, stop

INCIDENTS = 4


def test_sigterm_inside_the_group_wait_sends_the_held_first_pages_before_exit(tmp_path) -> None:
    with http_sink() as sink:
        env = {
            "EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k",
            "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue",
            "EVENTMGMT_GROUP_WAIT_SECONDS": "10",
        }
        server = start(tmp_path, env)
        try:
            starts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            posted = time.monotonic()
            with httpx.Client(base_url=server.url, timeout=10) as http:
                for i in range(INCIDENTS):
                    assert http.post("/ingest/alertmanager", json=webhook(i, starts)).status_code == 202
                http.get("/api/queue", params={"wait": 5})
            time.sleep(max(0.0, posted + 1.0 - time.monotonic()))  # NOTE: route has seen them
            assert not triggers(sink), "paged before the group wait was over: the test proves nothing"
            assert time.monotonic() - posted < 2
            server.proc.send_signal(signal.SIGTERM)
            code = server.proc.wait(20)
        finally:
            stop(server.proc)
        with sqlite3.connect(tmp_path / "state.db") as db:
            stored = {i for (i,) in db.execute("SELECT id FROM incidents WHERE status != 'merged'")}
        assert code == 0
        assert len(stored) == INCIDENTS
        assert Counter(triggers(sink)) == Counter(stored), "a stored incident not paged before the exit, or twice"
