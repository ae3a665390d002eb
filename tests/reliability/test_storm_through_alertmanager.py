"""A storm through a real Alertmanager (Debian package) grouping by alertname (a common route: the
storm reaches us a rule at a time), into a real `eventmgmt serve` paging a PagerDuty-like sink.

Every pod's crash loop comes first, in one notification: pods a person named (no controller suffix),
no model label, each on its own node, so each opens a fragment of its own. Every error rate comes
after, in a second notification, naming pod and model, and folds each fragment into its model's
incident. What must come out: one incident per model, one page for each, and no page for any
fragment, with the product's default group wait."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.support.httpsink import http_sink
from tests.support.incidents import fetch_incidents, list_incidents, wait, wait_for_pages
from tests.support.procs import alertmanager
from tests.support.serve import serve

MODELS = 8
PODS = 25  # per model


def alert(name: str, labels: dict[str, str], summary: str, starts: str) -> dict[str, Any]:
    """An alert as Prometheus posts it to Alertmanager's API."""
    base = {"alertname": name, "severity": "critical", "namespace": "inference"}
    return {"labels": {**base, **labels}, "annotations": {"summary": summary}, "startsAt": starts}


def storm(starts: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    crashes, errors = [], []
    for m in range(MODELS):
        for p in range(PODS):
            pod = f"triton-m{m}-7c9f-{p:05d}"  # NOTE: names no workload (no hash, no ordinal)
            node = f"gpu-{m:02d}{p:02d}"
            crashes.append(alert("KubePodCrashLooping", {"pod": pod, "node": node}, "restarting", starts))
            errors.append(alert("TritonHighErrorRate", {"pod": pod, "model": f"m{m}"}, "errors above 5%", starts))
    return crashes, errors


def test_a_storm_grouped_by_alertname_is_one_incident_and_one_page_per_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with http_sink() as sink:
        env = {
            "EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k",
            "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue",
            # NOTE: the product's default (the suite pages at once: tests/conftest.py)
            "EVENTMGMT_GROUP_WAIT_SECONDS": "10",
        }
        with (
            serve(home, env) as api,
            alertmanager(tmp_path / "am", api + "/ingest/alertmanager", group_by=["alertname"]) as am,
            httpx.Client(base_url=api, timeout=30) as http,
        ):
            crashes, errors = storm(datetime.now(UTC).isoformat().replace("+00:00", "Z"))
            assert httpx.post(am + "/api/v2/alerts", json=crashes, timeout=30).status_code == 200
            # NOTE: the crash loops' notification is correlated (a fragment a pod) before the error
            # rates reach Alertmanager: the order its grouping gives a storm
            assert wait(lambda: len(list_incidents(http, 200)) == MODELS * PODS, timeout=30), (
                f"{len(list_incidents(http, 200))} incidents listed"
            )
            assert httpx.post(am + "/api/v2/alerts", json=errors, timeout=30).status_code == 200
            # NOTE: the list leaves merged incidents out: the fragments are gone from it once folded
            assert wait(lambda: len(list_incidents(http, 200)) == MODELS, timeout=30), (
                f"{len(list_incidents(http, 200))} incidents listed"
            )
            listed, details = fetch_incidents(http, limit=200)
            live = {i["id"] for i in listed}
            assert {i["status"] for i in listed} == {"open"}
            # NOTE: waits until no page came for `quiet` seconds: a duplicate or a fragment's page
            # would show here
            paged = wait_for_pages(sink, live, timeout=30, quiet=3)
    assert sorted(d["member_count"] for d in details if d["id"] in live) == [2 * PODS] * MODELS
    assert Counter(paged) == Counter(live), f"pages {Counter(paged)} for the incidents {sorted(live)}"
