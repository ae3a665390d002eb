"""The dashboard in headless Chromium (Debian's package, driven by Playwright): after replaying a
public scenario into `eventmgmt serve`, find the OOM cascade, open it, see its chain and runbook,
acknowledge it, and keep a screenshot for the README."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import httpx
import pytest

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


def test_on_call_finds_the_oom_cascade_and_acknowledges_it(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make debs installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    caps = [json.loads(line) for line in (SCENARIOS / "public-1" / "captures.jsonl").read_text().splitlines()]
    with serve(tmp_path) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            for cap in caps:
                r = http.post(
                    f"/ingest/{cap['source']}",
                    json=cap["body"],
                    headers=capture_headers(cap),
                )
                assert r.status_code == 202
            wait_drained(http)
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1366, "height": 900})
                console: list[str] = []
                page.on("console", lambda msg: console.append(msg.text))
                page.goto(url + "/")
                link = page.locator("#incidents a", has_text="pod_oom").first
                assert link.is_visible()
                link.click()
                page.wait_for_selector("svg.chain")
                assert page.locator("svg.chain g.root").count() >= 1
                assert "pod oom" in page.locator("#chain").inner_text()
                runbook = page.locator("#runbook")
                assert runbook.get_attribute("href").startswith("https://runbooks.example.com/")
                assert page.locator("#action").inner_text().strip()
                page.click("#ack")
                # NOTE: a locator, not wait_for_function: the pages' CSP forbids the eval that uses.
                sync_api.expect(page.locator("#status")).to_have_text("acknowledged", timeout=10_000)
                shot = tmp_path / "screenshot-incident.png"
                page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                if os.environ.get("EVENTMGMT_UPDATE_SCREENSHOT"):
                    # NOTE: the README's picture is refreshed on request, not by every test run
                    shutil.copy(shot, ROOT / "docs" / "screenshot-incident.png")
                page.goto(url + "/")
                assert page.locator("#incidents .status.acknowledged").count() >= 1
                # a maintenance window through the form: silencing everything must be ticked
                page.goto(url + "/maintenance")
                page.fill("input[name=name]", "all-nodes")
                page.fill("input[name=start]", "2026-11-07T08:00")
                page.fill("input[name=end]", "2026-11-07T09:00")
                page.click("form button[type=submit]")
                sync_api.expect(page.locator("#out")).to_contain_text("match_all", timeout=10_000)
                page.check("input[name=match_all]")
                page.click("form button[type=submit]")
                sync_api.expect(page.locator("#windows")).to_contain_text("all-nodes", timeout=10_000)
                assert "everything" in page.locator("#windows").inner_text()
                assert not [m for m in console if "Content Security Policy" in m], console
            finally:
                browser.close()
