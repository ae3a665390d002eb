"""`python -m eventmgmt.simulator --port P --scenario S`: /metrics, and POST /scenario to switch."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .metrics import TritonSimulator


def serve(sim: TritonSimulator, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    registry = CollectorRegistry()
    registry.register(sim)

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, json.dumps({"error": f"no such path {self.path}"}).encode())

        def do_POST(self) -> None:
            if self.path != "/scenario":
                self._send(404, json.dumps({"error": f"no such path {self.path}"}).encode())
                return
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                name = json.loads(raw)["scenario"]
                sim.set_scenario(name)
            except (ValueError, KeyError, TypeError) as err:
                self._send(400, json.dumps({"error": str(err), "field": "scenario"}).encode())
                return
            self._send(200, json.dumps({"scenario": name}).encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="triton-simulator")
    thread.start()
    return server, thread
