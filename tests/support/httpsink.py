"""A real HTTP server on loopback that records requests and answers what a test scripts."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Sink:
    url: str
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    script: dict[str, deque[tuple[int, Any, dict[str, str]]]] = field(default_factory=lambda: defaultdict(deque))
    times: list[tuple[str, float]] = field(default_factory=list)  # (path, time.perf_counter()) of each request
    # (path, time.perf_counter(), body) of each request, in one tuple: `requests` and `times` are two
    # appends, so under concurrent senders their indices need not line up.
    timed: list[tuple[str, float, Any]] = field(default_factory=list)
    down: bool = False  # answer every request 503, as a service in an outage
    taken: list[tuple[str, Any]] = field(default_factory=list)  # (path, body) of each request answered 2xx
    delay: float = 0.0  # seconds each answer takes, as a distant service's would

    def first(self, path: str) -> float | None:
        return next((t for p, t in self.times if p == path), None)

    def answer(
        self, path: str, status: int, body: Any = None, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        for _ in range(times):
            self.script[path].append((status, body, headers or {}))

    def bodies(self, path: str) -> list[Any]:
        return [b for p, _, b in self.requests if p == path]

    def taken_bodies(self, path: str) -> list[Any]:
        """Bodies of the requests to `path` that were answered 2xx."""
        return [b for p, b in self.taken if p == path]


# What the real services answer when nothing else is scripted.
DEFAULTS = {
    "/v2/enqueue": (202, {"status": "success", "message": "Event processed", "dedup_key": None}),
    "/slack": (200, "ok"),
}


@contextmanager
def http_sink() -> Iterator[Sink]:
    sink = Sink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length", 0)))
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            now = time.perf_counter()
            sink.requests.append((self.path, dict(self.headers), body))
            sink.times.append((self.path, now))
            sink.timed.append((self.path, now, body))
            if sink.delay:
                time.sleep(sink.delay)
            queue = sink.script.get(self.path)
            if sink.down:
                status, answer, headers = 503, {"status": "unavailable"}, {}
            else:
                status, answer, headers = (
                    queue.popleft() if queue else (*DEFAULTS.get(self.path, (200, {"ok": True})), {})
                )
            if 200 <= status < 300:
                sink.taken.append((self.path, body))
            if isinstance(answer, dict) and "dedup_key" in answer and isinstance(body, dict):
                answer = {**answer, "dedup_key": body.get("dedup_key")}
            data = (json.dumps(answer) if not isinstance(answer, str) else answer).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up (a timeout, or a benchmark that finished): nothing to answer

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
