"""A subscriber that works off the request path: slow sinks must not slow ingest down.

In-process stand-in for a Pub/Sub push subscription: in order, redelivered with backoff when the
handler raises, moved to a dead-letter file after `max_attempts`."""

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

log = logging.getLogger("eventmgmt")


class BackgroundSubscriber:
    def __init__(
        self,
        name: str,
        handler: Callable[[CloudEvent], Any],
        dead_letter: Path,
        max_attempts: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.handler = handler
        self.dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.sleep = sleep
        self._queue: queue.Queue[CloudEvent | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=f"eventmgmt-{name}", daemon=True)
        self._thread.start()

    def handle(self, ce: CloudEvent) -> None:
        self._queue.put(ce)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far was handled (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(_Marker(done))  # type: ignore[arg-type]
        return done.wait(timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        while True:
            ce = self._queue.get()
            if ce is None:
                return
            if isinstance(ce, _Marker):
                ce.done.set()
                continue
            for attempt in range(1, self.max_attempts + 1):
                try:
                    self.handler(ce)
                    break
                except Exception as err:
                    if attempt == self.max_attempts:
                        self._dead_letter(ce, err)
                    else:
                        self.sleep(self.backoff * 2 ** (attempt - 1))

    def _dead_letter(self, ce: CloudEvent, err: Exception) -> None:
        log.error(
            json.dumps(
                {
                    "severity": "ERROR",
                    "subscriber": self.name,
                    "message": "moved to dead letter",
                    "ce_id": ce["id"],
                    "error": f"{type(err).__name__}: {err}",
                }
            )
        )
        self.dead_letter.parent.mkdir(parents=True, exist_ok=True)
        with self.dead_letter.open("a") as f:
            f.write(
                json.dumps(
                    {"subscriber": self.name, "ce_id": ce["id"], "error": str(err), "data": ce.get_data()}, default=str
                )
                + "\n"
            )


class _Marker:
    def __init__(self, done: threading.Event) -> None:
        self.done = done
