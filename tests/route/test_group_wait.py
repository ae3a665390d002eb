"""The first page of an incident waits `group_wait` after route first saw it, as Alertmanager's
group_wait does: fragments a storm opens before correlation can join them (each pod's crash loop
before its model's error rate names the model) are folded into their incident and never paged."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from tests.support.httpsink import http_sink
from tests.support.incidents import wait_drained

NOW = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def alert(name: str, pod: str, **labels: str) -> dict:
    return {
        "status": "firing",
        "startsAt": NOW,
        "fingerprint": f"{name}-{pod}",
        "labels": {"alertname": name, "severity": "critical", "namespace": "serving", "pod": pod, **labels},
    }


def triggers(sink) -> list[str]:
    return [b["dedup_key"] for b in sink.bodies("/v2/enqueue") if b["event_action"] == "trigger"]


def run(tmp_path, monkeypatch, wait: float) -> tuple[list[str], list[str], float]:
    with http_sink() as sink:
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_ROUTING_KEY", "k")
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_URL", sink.url + "/v2/enqueue")
        rt = build_runtime(Settings(home=tmp_path, group_wait_seconds=wait))
        try:
            http = create_app(rt).test_client()
            started = time.monotonic()
            # NOTE: two pods crash-looping, names with nothing to derive a deployment from: two fragments
            crash = [alert("KubePodCrashLooping", p, node=f"gpu-{i}") for i, p in enumerate(("t-a0", "t-a1"))]
            assert http.post("/ingest/alertmanager", json={"alerts": crash}).status_code == 202
            wait_drained(http)
            errors = [
                alert("TritonHighErrorRate", p, model="bert", node=f"gpu-{i}") for i, p in enumerate(("t-a0", "t-a1"))
            ]
            assert http.post("/ingest/alertmanager", json={"alerts": errors}).status_code == 202
            wait_drained(http)
            deadline = time.monotonic() + wait + 10
            while not triggers(sink) and time.monotonic() < deadline:
                time.sleep(0.1)
            first_page = time.monotonic() - started
            time.sleep(1.5)  # NOTE: a late duplicate would arrive within the worker's next ticks
            incidents = [i["id"] for i in http.get("/api/incidents").json["incidents"] if i["status"] == "open"]
            return triggers(sink), incidents, first_page
        finally:
            rt.stop()


def test_fragments_folded_within_the_wait_are_never_paged(tmp_path, monkeypatch) -> None:
    pages, open_incidents, first_page = run(tmp_path, monkeypatch, wait=2.0)
    assert len(open_incidents) == 1 and pages == open_incidents, (pages, open_incidents)
    assert first_page >= 2.0


def test_without_a_wait_each_fragment_pages(tmp_path, monkeypatch) -> None:
    """The same traffic with group wait 0: what the wait saves (and proof the test can fail)."""
    pages, open_incidents, _ = run(tmp_path, monkeypatch, wait=0.0)
    assert len(open_incidents) == 1 and len(pages) == 2 and open_incidents[0] in pages, (pages, open_incidents)
