"""Every dashboard page and write endpoint through Flask's test client on a loaded runtime."""

from __future__ import annotations

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from tests.support.incidents import BACKFILL_TOKEN


def oom_incident(client) -> dict:
    incidents = client.get("/api/incidents?limit=100").json["incidents"]
    return next(i for i in incidents if i["root_kind"] in ("pod_oom", "triton_crash") and "pod_oom" in i["title"])


def test_board_lists_open_first_with_root_cause_and_changes(loaded):
    rt, client = loaded
    html = client.get("/").get_data(as_text=True)
    assert "Incidents" in html and "pod_oom" in html and "node_drain" in html
    # NOTE: its own icon, inline (allowed by the CSP's img-src data:), so no request for /favicon.ico 404s
    assert '<link rel="icon" href="data:image/svg+xml,' in html
    partial = client.get("/", headers={"X-Partial": "1"}).get_data(as_text=True)
    assert "<html" not in partial and 'id="incidents"' in partial  # what the page fetches to refresh itself
    rows = client.get("/api/incidents?limit=100").json["incidents"]
    ranks = [
        (r["status"] == "resolved", -{"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}[r["severity"]])
        for r in rows
    ]
    assert ranks == sorted(ranks)


def test_incident_page_shows_chain_action_runbook_and_timeline(loaded):
    rt, client = loaded
    inc = oom_incident(client)
    html = client.get(f"/incidents/{inc['id']}").get_data(as_text=True)
    assert '<svg class="chain"' in html and "root cause" in html
    assert "pod oom" in html and "model unavailable" in html and "high error rate" in html
    assert inc["runbook"] in html and (inc["action"] or "")[:20] in html
    assert 'id="timeline"' in html and 'id="ack"' in html
    assert client.get("/incidents/nope").status_code == 404


def test_acknowledge_and_resolve(loaded):
    rt, client = loaded
    inc = oom_incident(client)
    r = client.post(f"/api/incidents/{inc['id']}/ack", json={"by": "alice"})
    assert r.status_code == 200 and r.json["status"] == "acknowledged" and r.json["acknowledged_by"] == "alice"
    again = client.post(f"/api/incidents/{inc['id']}/ack", json={"by": "alice"})
    assert again.status_code == 409 and again.json["field"] == "status"
    assert client.get(f"/api/incidents/{inc['id']}").json["status"] == "acknowledged"
    r = client.post(f"/api/incidents/{inc['id']}/resolve", json={})
    assert r.status_code == 200 and r.json["status"] == "resolved"
    missing = client.post("/api/incidents/nope/ack", json={})
    assert missing.status_code == 404 and missing.json["field"] == "id"


def test_writes_need_the_token(tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTMGMT_INGEST_TOKEN", "s3cret")
    rt = build_runtime(Settings(home=tmp_path, backfill_token=BACKFILL_TOKEN))
    try:
        client = create_app(rt).test_client()
        from tests.dashboard.conftest import post_captures

        post_captures(client)  # the backfill token authorises ingest too
        inc = client.get("/api/incidents").json["incidents"][0]
        for auth in (None, "Bearer wrong"):
            r = client.post(f"/api/incidents/{inc['id']}/ack", json={}, headers={"Authorization": auth} if auth else {})
            assert r.status_code == 401 and r.json["field"] == "Authorization"
        r = client.post(
            "/api/maintenance", json={"name": "x", "start": "2026-11-07T08:00:00Z", "end": "2026-11-07T09:00:00Z"}
        )
        assert r.status_code == 401
        ok = client.post(f"/api/incidents/{inc['id']}/ack", json={}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        # no token configured: only loopback may write
    finally:
        rt.stop()


def test_no_token_means_loopback_only(runtime):
    client = create_app(runtime).test_client()
    r = client.post(
        "/api/maintenance",
        json={"name": "m", "start": "2026-11-07T08:00:00Z", "end": "2026-11-07T09:00:00Z"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert r.status_code == 401 and "loopback" in r.json["error"]


def test_noise_and_events_pages(loaded):
    rt, client = loaded
    html = client.get("/noise").get_data(as_text=True)
    assert 'class="bars"' in html and "triton-per-request" in html and "k8s-event" in html
    html = client.get("/events?kind=pod_oom").get_data(as_text=True)
    assert "OOMKilled" in html or "Killed process" in html
    assert "No events match" in client.get("/events?q=no-such-words-anywhere").get_data(as_text=True)
    # NOTE: `since` filters the page as it filters /api/events, and a bad one is refused, not ignored
    newest = client.get("/api/events?limit=1").json["events"][0]["occurred_at"]
    html = client.get("/events", query_string={"since": newest}).get_data(as_text=True)
    assert "No events match" not in html and html.count("<tr") < client.get("/events").get_data(as_text=True).count(
        "<tr"
    )
    bad = client.get("/events?since=yesterday")
    assert bad.status_code == 400 and bad.json["field"] == "since"
    page1 = client.get("/api/events?limit=50").json
    page2 = client.get(f"/api/events?limit=50&cursor={page1['next']}").json
    assert not {e["id"] for e in page1["events"]} & {e["id"] for e in page2["events"]}
    bad = client.get("/api/events?limit=lots")
    assert bad.status_code == 400 and bad.json["field"] == "limit"


def test_maintenance_windows_add_list_end_and_suppress(runtime):
    client = create_app(runtime).test_client()
    bad = client.post("/api/maintenance", json={"name": "x"})
    assert bad.status_code == 400 and bad.json["field"] == "start"
    bad = client.post(
        "/api/maintenance", json={"name": "x", "start": "2026-11-07T09:00:00Z", "end": "2026-11-07T08:00:00Z"}
    )
    assert bad.status_code == 400 and "end must be after start" in bad.json["error"]
    r = client.post(
        "/api/maintenance",
        json={
            "name": "efc6-upgrade",
            "start": "2026-11-07T08:00:00Z",
            "end": "2026-11-07T12:00:00Z",
            "node": "gke-inference-prod-gpu-pool-efc6",
        },
    )
    assert r.status_code == 201
    assert "efc6-upgrade" in client.get("/maintenance").get_data(as_text=True)
    from tests.dashboard.conftest import post_captures

    post_captures(client)
    incidents = client.get("/api/incidents?limit=100").json["incidents"]
    # alerts on the node under maintenance were kept, not turned into pages (the drain of that node is a
    # change, and the capacity alerts it caused name only deployments: those still form their incident)
    on_node = [
        i
        for i in incidents
        if "gke-inference-prod-gpu-pool-efc6" in (i["resources"].get("nodes") or []) and i["kind"] == "incident"
    ]
    assert on_node and all(i["root_kind"] == "node_drain" for i in on_node)
    suppressed = client.get("/api/events?kind=node_not_ready&limit=50").json["events"]
    assert suppressed and all(e["suppressed"] for e in suppressed if e["resources"].get("node", "").endswith("efc6"))
    assert client.post("/api/maintenance/efc6-upgrade/end", json={}).status_code == 200
    assert client.post("/api/maintenance/efc6-upgrade/end", json={}).status_code == 404


def test_the_status_filter_counts_what_it_selects_and_refuses_what_it_does_not_know(loaded):
    _, client = loaded
    every = client.get("/api/incidents?limit=500").json
    by_status: dict[str, int] = {}
    for i in every["incidents"]:
        by_status[i["status"]] = by_status.get(i["status"], 0) + 1
    assert every["total"] == len(every["incidents"]) and len(by_status) > 1
    for status, n in by_status.items():
        page = client.get(f"/api/incidents?status={status}&limit=500").json
        assert page["total"] == n and {i["status"] for i in page["incidents"]} == {status}
    both = ",".join(by_status)
    assert client.get(f"/api/incidents?status={both}").json["total"] == every["total"]
    bad = client.get("/api/incidents?status=bogus")
    assert bad.status_code == 400 and bad.json["field"] == "status" and "open" in bad.json["error"]


def ids_on(html: str, incidents: list[dict]) -> set[str]:
    return {i["id"] for i in incidents if f'data-id="{i["id"]}"' in html}


def test_the_board_shows_open_and_acknowledged_unless_asked_and_filters_by_status_and_severity(loaded):
    _, client = loaded
    everything = client.get("/api/incidents?limit=500").json["incidents"]
    resolved = {i["id"] for i in everything if i["status"] == "resolved"}
    active = {i["id"] for i in everything if i["status"] != "resolved"}
    assert resolved and active
    html = client.get("/").get_data(as_text=True)
    assert ids_on(html, everything) == active
    assert f"{len(resolved)} resolved not shown" in html and 'href="?status=all"' in html
    assert ids_on(client.get("/?status=open,acknowledged").get_data(as_text=True), everything) == active
    assert ids_on(client.get("/?status=all").get_data(as_text=True), everything) == active | resolved
    # a form's repeated values count as one list
    assert ids_on(client.get("/?status=resolved&status=open").get_data(as_text=True), everything) == resolved | {
        i["id"] for i in everything if i["status"] == "open"
    }
    one = sorted({i["severity"] for i in everything})[0]
    html = client.get(f"/?status=all&severity={one}").get_data(as_text=True)
    assert ids_on(html, everything) == {i["id"] for i in everything if i["severity"] == one}
    # the switches keep the other filters
    assert f'href="?status=resolved&amp;severity={one}"' in html
    assert client.get("/?status=bogus").status_code == 400
    assert client.get("/?severity=bogus").status_code == 400
    assert client.get("/api/incidents?severity=critical,high").json["total"] == sum(
        1 for i in everything if i["severity"] in ("critical", "high")
    )


def test_the_board_filters_by_model_and_node_and_keeps_the_filters_when_paging(loaded):
    _, client = loaded
    everything = client.get("/api/incidents?limit=500").json["incidents"]
    for key, name in (("models", "model"), ("nodes", "node")):
        values = sorted({v for i in everything for v in i["resources"].get(key) or []})
        assert len(values) > 1
        for value in values:
            html = client.get("/", query_string={"status": "all", name: value}).get_data(as_text=True)
            want = {i["id"] for i in everything if value in (i["resources"].get(key) or [])}
            assert want and ids_on(html, everything) == want, (name, value)
    node = "gke-inference-prod-gpu-pool-efc6"
    html = client.get(f"/?status=resolved&model=bert-large&node={node}").get_data(as_text=True)
    want = {
        i["id"]
        for i in everything
        if i["status"] == "resolved" and "bert-large" in i["resources"]["models"] and node in i["resources"]["nodes"]
    }
    assert want and ids_on(html, everything) == want
    assert f'value="{node}"' in html and 'value="bert-large"' in html  # the boxes say what is chosen
    assert "No incidents match" in client.get("/?model=no-such-model").get_data(as_text=True)


def test_the_board_says_what_each_incident_is_in_words(loaded):
    _, client = loaded
    html = client.get("/?status=all").get_data(as_text=True)
    assert "Pod OOM → Triton crash → model unavailable → high error rate" in html
    assert 'title="pod_oom → triton_crash' in html  # the title as correlated, on hover
    # a node by the end of its name, whole on hover; the root cause's summary not cut inside a word
    assert 'node <span class="node" title="gke-inference-prod-gpu-pool-3f0c">…3f0c</span>' in html
    assert "(+" not in html and "characters)" not in html


def test_what_senders_wrote_is_escaped_on_the_board_and_in_its_filters(runtime):
    from datetime import UTC, datetime

    client = create_app(runtime).test_client()
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)> → pod_oom'
    alert = {
        "status": "firing",
        "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "labels": {"alertname": "TritonModelUnavailable", "severity": "critical", "model": evil, "node": evil},
        "annotations": {"summary": evil},
    }
    assert client.post("/ingest/alertmanager", json={"alerts": [alert]}).status_code == 202
    from tests.support.incidents import wait_drained

    wait_drained(client)
    for path in ("/", "/?model=" + evil.replace("&", "%26"), "/?node=" + evil):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    inc = client.get("/api/incidents").json["incidents"][0]
    html = client.get(f"/incidents/{inc['id']}").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
