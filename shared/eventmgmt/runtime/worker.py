"""A subscriber that works off the request path: slow sinks must not slow ingest down.

In-process stand-in for a Pub/Sub push subscription: in order, redelivered with backoff when the
handler raises, moved to a dead-letter file after `max_attempts`. Its queue is memory only: a
handler whose work matters after a crash must be able to derive it again (route does, from the state
store, with the `periodic` task this thread also runs: at start, and every `every` seconds)."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent

from ..logjson import log_json

log = logging.getLogger("eventmgmt")

# How long `close` waits past its deadline for the message in hand (one request to a sink).
GRACE_SECONDS = 2.0


class BackgroundSubscriber:
    def __init__(
        self,
        name: str,
        handler: Callable[[Any], Any],
        dead_letter: Path,
        max_attempts: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        periodic: Callable[[], Any] | None = None,
        every: float = 15.0,
        checkpoint: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep
        self.periodic = periodic
        self.every = every
        # NOTE: called before each message: where the worker steps aside for ingest requests in flight
        # (runtime/priority.py), as the drain does; a storm's updates must not slow taking the storm.
        self.checkpoint = checkpoint
        self._queue: queue.Queue[Any] = queue.Queue()
        self._deadline: float | None = None  # time.monotonic() after which closing stops handling
        self._drained = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"eventmgmt-{name}", daemon=True)
        self._thread.start()

    def handle(self, ce: CloudEvent) -> None:
        self._queue.put(ce)

    def handle_many(self, items: list[Any]) -> None:
        """Objects the handler takes as well as CloudEvents (in-process: correlated messages)."""
        for item in items:
            self._queue.put(item)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was handled (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(_Marker(done))
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        """Handle what is queued for at most `timeout` seconds, then stop after the message in hand.
        Returns whether everything queued was handled. Calling it again changes nothing."""
        if self._deadline is None:
            self._deadline = time.monotonic() + timeout
            self._queue.put(None)
        self._thread.join(max(0.0, self._deadline - time.monotonic()) + GRACE_SECONDS)
        return self._drained.is_set()

    def _closing_late(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _run(self) -> None:
        due = time.monotonic()
        while True:
            if self.periodic is not None and self._deadline is None and time.monotonic() >= due:
                self._run_periodic()
                due = time.monotonic() + self.every
            try:
                item = self._queue.get(timeout=max(0.01, due - time.monotonic()) if self.periodic else None)
            except queue.Empty:
                continue
            if item is None:
                self._drained.set()
                return
            if self._closing_late():
                return  # NOTE: what is left is the handler's to derive again after the next start
            if isinstance(item, _Marker):
                item.done.set()
            else:
                if self.checkpoint is not None and self._deadline is None:
                    self.checkpoint()
                self._deliver(item)

    def _run_periodic(self) -> None:
        assert self.periodic is not None
        try:
            self.periodic()
        except Exception:
            log.exception("%s: periodic task failed", self.name)

    def _deliver(self, ce: Any) -> None:
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.handler(ce)
                return
            except Exception as err:
                if attempt == self.max_attempts:
                    self._dead_letter(ce, err)
                elif self._closing_late():
                    return
                else:
                    self.sleep(self.backoff * 2 ** (attempt - 1))

    def _dead_letter(self, item: Any, err: Exception) -> None:
        if isinstance(item, CloudEvent):
            ce_id, data = item["id"], item.get_data()
        else:
            ce_id, data = getattr(getattr(item, "event", None), "id", None), item.to_json()
        log_json(
            log,
            "ERROR",
            "moved to dead letter",
            subscriber=self.name,
            ce_id=ce_id,
            error=f"{type(err).__name__}: {err}",
        )
        self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
        with self.dead_letter.open("a") as f:
            f.write(
                json.dumps({"subscriber": self.name, "ce_id": ce_id, "error": str(err), "data": data}, default=str)
                + "\n"
            )


class _Marker:
    def __init__(self, done: threading.Event) -> None:
        self.done = done
