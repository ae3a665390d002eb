"""The dashboard in headless Chromium (Debian's package, driven by Playwright) at 1400 px: after
replaying a public scenario into `eventmgmt serve` (with PagerDuty and Slack receivers on a local
sink), filter the board by status, severity, model and node, find the OOM cascade, open it, see its
chain, its alerts' links and who was told, acknowledge it and see the receivers told; then the
noise panel and the maintenance form. Layout checks that fail when the pages read badly: a board
title over two lines, a node name split across lines, bars that start at different x, a form whose
labels or fields do not line up. Screenshots for docs/ on request (EVENTMGMT_UPDATE_SCREENSHOT=1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from eventmgmt.operator.report import html_report
from tests.support.httpsink import http_sink
from tests.support.incidents import capture_headers, wait_drained
from tests.support.serve import serve

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT.parent / "shared" / "scenarios"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTH = 1400
# NOTE: the body's line height (14 px at 1.45); a title may take two lines, never three
LINE = 14 * 1.45


def boxes(locator: Any) -> list[dict[str, float]]:
    return [b for b in (locator.nth(i).bounding_box() for i in range(locator.count())) if b]


def lines_of(locator: Any) -> list[int]:
    """How many line boxes each element's text takes (an inline element split over lines has one
    client rectangle per line)."""
    return [locator.nth(i).evaluate("el => el.getClientRects().length") for i in range(locator.count())]


def rows(page: Any) -> Any:
    return page.locator("#incidents tbody tr[data-id]")


def attr_of_rows(page: Any, name: str) -> list[str]:
    loc = rows(page)
    return [loc.nth(i).get_attribute(name) or "" for i in range(loc.count())]


def shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"screenshot-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("EVENTMGMT_UPDATE_SCREENSHOT"):
        # NOTE: the docs' pictures are refreshed on request, not by every test run
        shutil.copy(path, ROOT / "docs" / path.name)


def check_board_layout(page: Any) -> None:
    titles = page.locator("#incidents a.title")
    assert titles.count() >= 1
    for box in boxes(titles):
        assert box["height"] <= 2 * LINE + 2, f"a board title takes more than two lines: {box}"
    nodes = page.locator("#incidents .node")
    assert nodes.count() >= 1
    assert set(lines_of(nodes)) == {1}, "a node name is split across lines"
    # NOTE: the filter panel is as wide as the page's content: the table must not be wider
    panel, table = page.locator("#filters").bounding_box(), page.locator("#incidents").bounding_box()
    assert panel and table and table["x"] + table["width"] <= panel["x"] + panel["width"] + 1, "the board overflows"


def check_bars_aligned(page: Any, where: str) -> None:
    for i in range(page.locator(f"{where} .hbars").count()):
        grid = page.locator(f"{where} .hbars").nth(i)
        starts = {round(b["x"]) for b in boxes(grid.locator(".bar"))}
        assert len(starts) == 1, f"bars start at different x: {sorted(starts)}"
        labels = grid.locator(".lbl")
        for j in range(labels.count()):
            # NOTE: a label is shown whole: nothing hidden past its box
            assert labels.nth(j).evaluate("el => el.scrollWidth <= el.clientWidth + 1"), labels.nth(j).inner_text()


def post_scenario(url: str, name: str) -> None:
    caps = [json.loads(line) for line in (SCENARIOS / name / "captures.jsonl").read_text().splitlines()]
    with httpx.Client(base_url=url, timeout=30) as http:
        for cap in caps:
            r = http.post(f"/ingest/{cap['source']}", json=cap["body"], headers=capture_headers(cap))
            assert r.status_code == 202
        wait_drained(http)


def told(page: Any, receiver: str) -> str:
    return page.locator(f'#notifications tr[data-receiver="{receiver}"] td.state').inner_text()


def test_on_call_filters_the_board_opens_the_oom_cascade_and_acknowledges_it(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make debs installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    with http_sink() as sink:
        env = {
            "EVENTMGMT_PAGERDUTY_ROUTING_KEY": "k",
            "EVENTMGMT_PAGERDUTY_URL": sink.url + "/v2/enqueue",
            "EVENTMGMT_SLACK_WEBHOOK_URL": sink.url + "/slack",
            "EVENTMGMT_GROUP_WAIT_SECONDS": "0",
        }
        with serve(tmp_path, env) as url:
            post_scenario(url, "public-1")
            everything = httpx.get(url + "/api/incidents?limit=500").json()["incidents"]
            with sync_api.sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
                try:
                    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
                    console: list[str] = []
                    page.on("console", lambda msg: console.append(msg.text))
                    board(page, url, everything, expect)
                    incident(page, url, tmp_path, expect)
                    noise(page, url, tmp_path)
                    maintenance(page, url, tmp_path, expect)
                    report(page)
                    assert not [m for m in console if "Content Security Policy" in m], console
                finally:
                    browser.close()


def board(page: Any, url: str, everything: list[dict], expect: Any) -> None:
    page.goto(url + "/")
    # resolved incidents do not fill the board unless asked for
    assert set(attr_of_rows(page, "data-status")) <= {"open", "acknowledged"}
    assert rows(page).count() == sum(1 for i in everything if i["status"] != "resolved")
    expect(page.locator('#status-filter a[data-status="active"]')).to_have_class("on")
    check_board_layout(page)
    # every status, then critical only: the status filter is kept
    page.click('#status-filter a[data-status="all"]')
    assert rows(page).count() == len(everything)
    assert "resolved" in attr_of_rows(page, "data-status")
    check_board_layout(page)
    page.click('#severity-filter a[data-severity="critical"]')
    critical = [i for i in everything if i["severity"] == "critical"]
    assert "status=all" in page.url and set(attr_of_rows(page, "data-severity")) == {"critical"}
    assert rows(page).count() == len(critical)
    # a model typed in the filter box
    model = "bert-large"
    page.fill("#filter-model", model)
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r"model=bert-large"))
    want = {i["id"] for i in critical if model in (i["resources"].get("models") or [])}
    assert want and set(attr_of_rows(page, "data-id")) == want
    assert "severity=critical" in page.url
    # a node clicked in a row; the model filter is dropped, the node kept
    page.click("#clear-filters")
    assert set(attr_of_rows(page, "data-status")) <= {"open", "acknowledged"}
    page.click('#status-filter a[data-status="all"]')
    node_link = page.locator("#incidents td.nodes a.node").first
    node = node_link.get_attribute("title") or ""
    node_link.click()
    page.wait_for_url(re.compile(r"node=[^&]"))
    want = {i["id"] for i in everything if node in (i["resources"].get("nodes") or [])}
    assert len(want) > 1 and set(attr_of_rows(page, "data-id")) == want
    for i in range(rows(page).count()):
        assert rows(page).nth(i).locator(f'td.nodes a.node[title="{node}"]').count() == 1
    assert page.locator("#filter-node").input_value() == node
    page.goto(url + "/")


def incident(page: Any, url: str, tmp_path: Path, expect: Any) -> None:
    page.locator("#incidents a.title", has_text="Pod OOM → Triton crash").first.click()
    page.wait_for_selector("svg.chain")
    assert "Pod OOM → Triton crash → model unavailable → high error rate" in page.locator("#headline").inner_text()
    assert page.locator("svg.chain g.root").count() >= 1
    assert "pod oom" in page.locator("#chain").inner_text()
    assert page.locator("#runbook").get_attribute("href").startswith("https://runbooks.example.com/")
    assert page.locator("#action").inner_text().strip()
    # the alerts behind it, with their graphs in Prometheus and their own runbooks
    sources = page.locator("#alerts a.source")
    assert sources.count() >= 1 and all(
        (sources.nth(i).get_attribute("href") or "").startswith("http://prometheus") for i in range(sources.count())
    )
    assert page.locator("#alerts a.runbook").count() >= 1
    # who was told: both receivers paged once, then told of the acknowledgement
    assert told(page, "pagerduty").startswith("paged") and told(page, "slack").startswith("paged")
    assert int(page.locator('#notifications tr[data-receiver="pagerduty"] td.num').inner_text()) >= 1
    page.click("#ack")
    # NOTE: a locator, not wait_for_function: the pages' CSP forbids the eval that uses.
    expect(page.locator("#status")).to_have_text("acknowledged", timeout=10_000)
    deadline = time.monotonic() + 20
    while "acknowledged" not in told(page, "pagerduty") and time.monotonic() < deadline:
        time.sleep(0.3)
        page.reload()
    assert told(page, "pagerduty").startswith("told it is acknowledged")
    shot(page, tmp_path, "incident")
    page.goto(url + "/")
    assert page.locator("#incidents .status.acknowledged").count() >= 1
    page.goto(url + "/?status=all")
    check_board_layout(page)
    shot(page, tmp_path, "board")


def noise(page: Any, url: str, tmp_path: Path) -> None:
    page.goto(url + "/noise")
    ticks = page.locator("svg.bars text.tick")
    assert ticks.count() >= 3 and ticks.first.text_content() == "0"
    assert page.locator(".hbars .bar").count() >= 3
    check_bars_aligned(page, "main")
    assert "alertmanager · reduced_capacity" in page.locator("main").inner_text()
    shot(page, tmp_path, "noise")


def maintenance(page: Any, url: str, tmp_path: Path, expect: Any) -> None:
    page.goto(url + "/maintenance")
    form = page.locator("form#add-window")
    labels = form.locator("fieldset > label:not(.check)")
    fields = form.locator("fieldset > input")
    assert labels.count() == fields.count() >= 8
    assert len({round(b["x"] + b["width"]) for b in boxes(labels)}) == 1, "labels are not aligned"
    assert len({round(b["x"]) for b in boxes(fields)}) == 1, "fields are not aligned"
    assert all(b["height"] <= LINE + 2 for b in boxes(labels)), "a label wraps"
    for lbl, field in zip(boxes(labels), boxes(fields), strict=True):
        assert abs((lbl["y"] + lbl["height"] / 2) - (field["y"] + field["height"] / 2)) < 4, "label beside its field"
    # a maintenance window through the form: silencing everything must be ticked
    page.fill("input[name=name]", "all-nodes")
    page.fill("input[name=start]", "2026-11-07T08:00")
    page.fill("input[name=end]", "2026-11-07T09:00")
    page.click("form button[type=submit]")
    expect(page.locator("#out")).to_contain_text("match_all", timeout=10_000)
    page.check("input[name=match_all]")
    page.click("form button[type=submit]")
    expect(page.locator("#windows")).to_contain_text("all-nodes", timeout=10_000)
    assert "everything" in page.locator("#windows").inner_text()
    page.fill("input[name=name]", "pool-3f0c-upgrade")
    page.fill("input[name=start]", "2026-11-08T06:00")
    page.fill("input[name=end]", "2026-11-08T08:00")
    page.fill("input[name=every]", "7d")
    page.fill("input[name=node]", "gke-inference-prod-gpu-pool-3f0c")
    page.click("form button[type=submit]")
    expect(page.locator("#windows")).to_contain_text("pool-3f0c-upgrade", timeout=10_000)
    shot(page, tmp_path, "maintenance")


def report(page: Any) -> None:
    """The HTML replay report's bars line up too (labels of very different lengths)."""
    titles = [
        ("gpu_high_util: resnet50", "gpu_high_util"),
        (
            "pod_oom → triton_crash → model_unavailable → high_error_rate: resnet50 (pod triton-resnet50-68kx)",
            "pod_oom",
        ),
        ("node_drain → pod_eviction → pod_stop → reduced_capacity on 2 pods (1 nodes)", "node_drain"),
    ]
    captures, incidents = [], []
    for n, (title, kind) in enumerate(titles):
        events = []
        for k in range(2):
            cid = f"c{n}{k}"
            captures.append(json.dumps({"id": cid, "received_at": f"2026-11-07T08:{n:02d}:{k * 30 + n:02d}Z"}))
            events.append({"capture": cid})
        incidents.append(
            {"id": f"inc-{n}", "title": title, "severity": "critical", "kind": "incident", "root_kind": kind}
            | {"events": events, "changes": []}
        )
    html = html_report({"events": 6, "incidents": incidents, "events_by_class": {"alert": 6}}, captures)
    page.set_content(html)
    assert page.locator(".hbars").count() == 2 and page.locator(".hbars .bar").count() == 6
    check_bars_aligned(page, "body")
