"""Acceptance before correlation, inside one process.

Embedded, ingest's request threads and the drain thread share one interpreter lock. When both want
it, each gets it for a switch interval at a time, so a webhook answered in 10 ms on its own takes
three times longer while a storm is being correlated, and Alertmanager's 10 s notification deadline
is what a storm tests. So the drain thread steps aside while deliveries are being taken: before each
delivery and every few events, it waits until no ingest request is in flight, for at most
`max_pause` each time. Correlation is never stopped for good: under sustained load it still gets a
share (its work between checkpoints against `max_pause`), and once its backlog reaches the bound,
ingest answers 503 and correlation has the process to itself until it catches up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class IngestPriority:
    def __init__(self, max_pause: float = 0.05, linger: float = 0.005) -> None:
        self.max_pause = max_pause
        # NOTE: a sender with deliveries to go sends the next one within a few milliseconds of the
        # answer (Alertmanager's webhooks for the groups of a storm, Fluent Bit's chunks): the drain
        # waits that long after the last answer too, or it would take the interpreter back between
        # two deliveries and slow reading the next one down.
        self.linger = linger
        self._last_left = 0.0
        self._busy = 0
        self._idle = threading.Condition()
        self.paused_seconds = 0.0  # NOTE: how long correlation stepped aside, for /healthz readers

    @property
    def busy(self) -> int:
        return self._busy

    def enter(self) -> None:
        with self._idle:
            self._busy += 1

    def leave(self) -> None:
        with self._idle:
            self._busy -= 1
            self._last_left = time.monotonic()
            if self._busy <= 0:
                self._busy = 0
                self._idle.notify_all()

    def step_aside(self) -> None:
        """Wait (releasing the interpreter lock) while an ingest request is in flight or one ended
        less than `linger` ago, at most `max_pause`."""
        started = time.monotonic()
        if not self._busy and started - self._last_left >= self.linger:
            return
        deadline = started + self.max_pause
        with self._idle:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if self._busy:
                    self._idle.wait(deadline - now)
                elif now - self._last_left < self.linger:
                    self._idle.wait(min(deadline, self._last_left + self.linger) - now)
                else:
                    break
        self.paused_seconds += time.monotonic() - started

    def wrap(self, app: WSGIApp, prefix: str = "/ingest") -> WSGIApp:
        """A WSGI app counting the POST requests under `prefix` while they are handled (Flask
        builds the whole answer before returning it, so returning is the end of the work)."""

        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("REQUEST_METHOD") != "POST" or not str(environ.get("PATH_INFO", "")).startswith(prefix):
                return app(environ, start_response)
            self.enter()
            try:
                return app(environ, start_response)
            finally:
                self.leave()

        return counted
