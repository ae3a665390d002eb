"""The incident says who was paged, when, and whether it was delivered (issue 14): the API's
`notifications` and the incident page's "Who was told" panel read the route ledger and outbox, for
a receiver that took the page and for one that is down (what is owed, attempts, the error)."""

from __future__ import annotations

from datetime import UTC, datetime

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from tests.runtime.test_outbox_wiring import wait
from tests.support.httpsink import http_sink
from tests.support.incidents import wait_drained


def told_of(client, incident_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return client.get(f"/api/incidents/{incident_id}").json["notifications"]


def hook(model: str) -> dict:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    alert = {
        "status": "firing",
        "startsAt": now,
        "fingerprint": f"f-{model}",
        "labels": {"alertname": "TritonModelUnavailable", "severity": "critical", "model": model, "pod": f"{model}-0"},
    }
    return {"version": "4", "status": "firing", "alerts": [alert]}


def test_a_delivered_page_and_an_owed_one_are_shown(tmp_path, monkeypatch) -> None:
    with http_sink() as sink:
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_ROUTING_KEY", "k")
        monkeypatch.setenv("EVENTMGMT_PAGERDUTY_URL", sink.url + "/v2/enqueue")
        rt = build_runtime(Settings(home=tmp_path))
        router = rt.router
        client = create_app(rt).test_client()
        try:
            assert client.post("/ingest/alertmanager", json=hook("bert")).status_code == 202
            wait_drained(client)
            (inc,) = client.get("/api/incidents").json["incidents"]
            assert wait(lambda: len(sink.taken_bodies("/v2/enqueue")) == 1)
            assert wait(lambda: [n["sent"] for n in told_of(client, inc["id"])] == [1])
            (told,) = client.get(f"/api/incidents/{inc['id']}").json["notifications"]
            assert told["receiver"] == "pagerduty" and told["owed"] is None and told["error"] is None
            assert told["state"] != "nothing" and told["version"] >= 1
            assert told["last_sent_at"].endswith("Z")
            page = client.get(f"/incidents/{inc['id']}").get_data(as_text=True)
            assert "Who was told" in page and "pagerduty" in page

            sink.down = True
            assert client.post("/ingest/alertmanager", json=hook("llama")).status_code == 202
            wait_drained(client)
            other = next(i for i in client.get("/api/incidents").json["incidents"] if i["id"] != inc["id"])
            assert wait(lambda: bool(router.outbox()))
            (owed,) = client.get(f"/api/incidents/{other['id']}").json["notifications"]
            assert owed["sent"] == 0 and owed["owed"] is not None and owed["attempts"] >= 1
            assert owed["error"] and owed["next_attempt_at"].endswith("Z")
            page = client.get(f"/incidents/{other['id']}").get_data(as_text=True)
            assert "attempt" in page and owed["owed"] in page
        finally:
            rt.stop()


def test_an_incident_nobody_was_told_of_says_so(tmp_path) -> None:
    rt = build_runtime(Settings(home=tmp_path))
    client = create_app(rt).test_client()
    try:
        assert client.post("/ingest/alertmanager", json=hook("bert")).status_code == 202
        wait_drained(client)
        (inc,) = client.get("/api/incidents").json["incidents"]
        assert client.get(f"/api/incidents/{inc['id']}").json["notifications"] == []
        assert "Nobody has been paged" in client.get(f"/incidents/{inc['id']}").get_data(as_text=True)
    finally:
        rt.stop()
