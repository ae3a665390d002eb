"""The operator commands against a running `eventmgmt serve`, and the HTML replay report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.incidents import capture_headers, wait_drained
from tests.support.serve import serve

EXE = str(Path(sys.executable).parent / "eventmgmt")
SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=60)


def test_incident_and_maintenance_commands(tmp_path):
    caps = [json.loads(x) for x in (SCENARIOS / "public-1" / "captures.jsonl").read_text().splitlines()[:120]]
    with serve(tmp_path) as url:
        for cap in caps:
            httpx.post(
                f"{url}/ingest/{cap['source']}",
                json=cap["body"],
                headers=capture_headers(cap),
            ).raise_for_status()
        with httpx.Client(base_url=url, timeout=30) as http:
            wait_drained(http)
        listed = run("incidents", "list", "--url", url, "--json")
        assert listed.returncode == 0, listed.stderr
        first = json.loads(listed.stdout)["incidents"][0]
        shown = run("incidents", "show", first["id"], "--url", url)
        assert shown.returncode == 0 and "root cause" in shown.stdout and "runbook" in shown.stdout
        acked = run("incidents", "ack", first["id"], "--by", "bob", "--url", url)
        assert acked.returncode == 0 and "acknowledged" in acked.stdout
        again = run("incidents", "ack", first["id"], "--url", url)
        assert again.returncode == 1 and "409" in again.stderr and "already" in again.stderr
        assert run("incidents", "resolve", first["id"], "--url", url).returncode == 0
        missing = run("incidents", "show", "inc-none", "--url", url)
        assert missing.returncode == 1 and "404" in missing.stderr
        added = run(
            "maintenance",
            "add",
            "--name",
            "w1",
            "--start",
            "2026-11-07T08:00:00Z",
            "--end",
            "2026-11-07T10:00:00Z",
            "--match",
            "node=gke-.*-efc6",
            "--url",
            url,
        )
        assert added.returncode == 0, added.stderr
        assert "w1" in run("maintenance", "list", "--url", url).stdout
        assert run("maintenance", "end", "w1", "--url", url).returncode == 0
        assert run("maintenance", "add", "--name", "w2", "--start", "x", "--end", "y", "--url", url).returncode == 1
    down = run("incidents", "list", "--url", "http://127.0.0.1:9")
    assert down.returncode == 1 and "cannot reach" in down.stderr


def test_html_report(tmp_path):
    captures = SCENARIOS / "public-1" / "captures.jsonl"
    assert run("replay", str(captures), "--report", str(tmp_path / "r.json")).returncode == 0
    out = run("report", str(tmp_path / "r.json"), "--captures", str(captures), "--html", str(tmp_path / "r.html"))
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "r.html").read_text()
    assert html.count("<svg") >= 1 and "noise reduction" in html and "Time to correlate" in html
