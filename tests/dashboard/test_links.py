"""An incident shows the root cause alert's own runbook (over the response matrix's for its kind)
and links back to where it came from (Alertmanager's generatorURL), on the page and in the pages
sent; a sender's non-http link is shown as text, never made a live link (issue 12, issue 14)."""

from __future__ import annotations

from datetime import UTC, datetime

from eventmgmt.runtime.app import create_app
from tests.support.incidents import wait_drained

NOW = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def hook(model: str, runbook: str, source: str) -> dict:
    return {
        "alerts": [
            {
                "status": "firing",
                "startsAt": NOW,
                "fingerprint": f"mu-{model}",
                "generatorURL": source,
                "labels": {"alertname": "TritonModelUnavailable", "severity": "critical", "model": model},
                "annotations": {"summary": f"{model} unavailable", "runbook": runbook},
            }
        ]
    }


def test_the_alerts_own_runbook_and_source_link_are_on_the_incident(runtime) -> None:
    client = create_app(runtime).test_client()
    own = "https://docs.example.com/runbooks/triton-errors"
    source = "http://prometheus.example:9090/graph?g0.expr=up"
    assert client.post("/ingest/alertmanager", json=hook("bert", own, source)).status_code == 202
    wait_drained(client)
    (inc,) = client.get("/api/incidents").json["incidents"]
    assert inc["runbook"] == own and inc["source_url"] == source
    html = client.get(f"/incidents/{inc['id']}").get_data(as_text=True)
    assert f'href="{own}"' in html and 'id="source"' in html and "prometheus.example:9090/graph" in html


def test_a_script_link_from_a_sender_is_never_a_live_link(runtime) -> None:
    client = create_app(runtime).test_client()
    evil = "javascript:alert(document.cookie)"
    assert client.post("/ingest/alertmanager", json=hook("gpt2", evil, evil)).status_code == 202
    wait_drained(client)
    (inc,) = client.get("/api/incidents").json["incidents"]
    html = client.get(f"/incidents/{inc['id']}").get_data(as_text=True)
    assert 'href="javascript:' not in html and 'id="source"' not in html
    assert "javascript:alert(document.cookie)" in html  # NOTE: shown as text, escaped


def test_the_alertmanager_that_sent_an_alert_is_linked_and_a_script_url_is_not(runtime) -> None:
    """Alertmanager's externalURL (where an operator silences the alert) is kept on its events and
    linked from the incident page; a non-http one is not made a link."""
    client = create_app(runtime).test_client()
    for model, url in (("t5", "http://alertmanager.monitoring:9093"), ("opt", "javascript:alert(1)")):
        body = {**hook(model, "https://docs.example.com/rb", "http://prom:9090/graph"), "externalURL": url}
        assert client.post("/ingest/alertmanager", json=body).status_code == 202
    wait_drained(client)
    pages = {}
    for inc in client.get("/api/incidents").json["incidents"]:
        events = client.get("/api/events", query_string={"incident": inc["id"]}).json["events"]
        pages[events[0]["labels"]["alertmanager_url"]] = client.get(f"/incidents/{inc['id']}").get_data(as_text=True)
    good = pages["http://alertmanager.monitoring:9093"]
    assert 'class="alertmanager" href="http://alertmanager.monitoring:9093"' in good
    assert 'class="alertmanager"' not in pages["javascript:alert(1)"]
