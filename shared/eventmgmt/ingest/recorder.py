"""Records what ingest receives in the capture format, so real traffic can be replayed later."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

import fsspec

from ..timeutil import iso


class Recorder:
    """Appends `{"id", "received_at", "source", "body"}` lines to a file (any fsspec URL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()

    def record(self, capture_id: str, received_at: datetime, source: str, body: Any) -> None:
        line = json.dumps({"id": capture_id, "received_at": iso(received_at), "source": source, "body": body})
        with self._lock, fsspec.open(self.url, "a") as f:
            f.write(line + "\n")
