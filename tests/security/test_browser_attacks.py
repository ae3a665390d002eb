"""The attacks of issue 13, finding 6, made by a real browser (Debian's Chromium) against
`eventmgmt serve` with no token configured: a page of another site posts a form and no-cors
fetches at it, and a page on a rebound name (evil.example resolving to 127.0.0.1) writes and reads
same-origin. None of them changes or reads anything."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.security.conftest import alerts
from tests.support.incidents import wait_drained
from tests.support.serve import serve

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
NO_LNA = "LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights"
WINDOW = {"name": "everything", "start": "2020-01-01T00:00:00Z", "end": "2099-01-01T00:00:00Z", "match_all": True}

CROSS_SITE = """<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="post" action="{url}/api/incidents/{incident}/resolve" target="sink">
  <input name="by" value="evil"></form>
<form id="g" method="post" action="{url}/api/maintenance" target="sink2" enctype="text/plain">
  <input name='{{"name":"x","start":"2020-01-01T00:00:00Z","end":"2099-01-01T00:00:00Z","z":"' value='"}}'></form>
<iframe name="sink2"></iframe>
<script>
(async () => {{
  // NOTE: a refused answer framed here may never fire `load` (it is not frameable): wait at most 3 s.
  const landed = (name) => Promise.race([
    new Promise((ok) => {{ document.querySelector(`iframe[name=${{name}}]`).onload = ok; }}),
    new Promise((ok) => setTimeout(ok, 3000)),
  ]);
  const a = landed("sink"), b = landed("sink2");
  document.getElementById("f").submit();
  document.getElementById("g").submit();
  const post = (path, body) => fetch("{url}" + path, {{method: "POST", mode: "no-cors", body}}).catch(() => null);
  await post("/ingest/alertmanager", {alert});
  await post("/ingest/alertmanager", new Blob([{alert}]));
  await post("/api/maintenance", {window});
  await post("/api/maintenance/everything/end", "{{}}");
  await Promise.all([a, b]);
  document.title = "done";
}})();
</script></body></html>"""

REBOUND = """<!doctype html><html><body><script>
(async () => {{
  const w = await fetch("/api/maintenance", {{method: "POST", headers: {{"Content-Type": "application/json"}}, body: {window}}});
  const r = await fetch("/api/incidents");
  window.results = [w.status, r.status];
  document.title = "done";
}})();
</script></body></html>"""


@contextmanager
def attacker_site(page: str) -> Iterator[int]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_web_pages_cannot_act_through_a_browser_on_the_machine(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make debs installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve(tmp_path) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/ingest/alertmanager", json=alerts(1)).status_code == 202
        wait_drained(http)  # NOTE: correlation runs behind the 202
        (incident,) = http.get("/api/incidents").json()["incidents"]
        fake = json.dumps(json.dumps(alerts(1, pod="fake-{i}", tag="fake")))
        page_html = CROSS_SITE.format(
            url=url, incident=incident["id"], alert=fake, window=json.dumps(json.dumps(WINDOW))
        )
        port = url.rsplit(":", 1)[1]
        with attacker_site(page_html) as attacker_port, sync_api.sync_playwright() as pw:
            # NOTE: Chromium's own Local Network Access checks would stop the rebound page before it
            # reaches the server; other browsers have none, so they are turned off to test ours.
            args = [*FLAGS, "--host-resolver-rules=MAP evil.example 127.0.0.1", f"--disable-features={NO_LNA}"]
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                page = browser.new_page()
                # NOTE: localhost and 127.0.0.1 are different sites to the browser.
                page.goto(f"http://localhost:{attacker_port}/")
                page.wait_for_function("document.title === 'done'", timeout=20_000)
                rebound = f"http://evil.example:{port}/attack.html"
                html = REBOUND.format(window=json.dumps(json.dumps(WINDOW)))
                page.route(rebound, lambda route: route.fulfill(body=html, content_type="text/html"))
                page.goto(rebound)
                page.wait_for_function("document.title === 'done'", timeout=20_000)
                written, read = page.evaluate("window.results")
            finally:
                browser.close()
        wait_drained(http)  # NOTE: a forged delivery that got through would be correlated by now
        assert http.get(f"/api/incidents/{incident['id']}").json()["status"] == "open"
        assert [i["id"] for i in http.get("/api/incidents").json()["incidents"]] == [incident["id"]]
        assert http.get("/api/maintenance").json() == []
        assert (written, read) == (421, 421)
