"""What the collector saw last run: pending and firing conditions, so it emits only changes.

The state is one JSON object at an fsspec URL: a local file for the embedded runtime, a `gs://` object
for the Cloud Run function (whose `$EVENTMGMT_HOME` is an instance's /tmp, gone at every cold start)."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..logjson import log_json

log = logging.getLogger("eventmgmt.collector")

# NOTE: where the state lives when set (Terraform: gs://<archive bucket>/state/collector-state.json);
# otherwise where the caller says ($EVENTMGMT_HOME/collector-state.json).
STATE_URL = "EVENTMGMT_COLLECTOR_STATE_URL"

# NOTE: stores whose objects an upload replaces whole or not at all: written in one put, no rename.
OBJECT_STORES = frozenset({"gs", "gcs", "s3", "s3a", "az", "abfs", "abfss", "adl", "oss", "memory"})

# NOTE: a URL that went through pathlib lost a slash (`Path("gs://b/k")` is "gs:/b/k"), which fsspec
# takes for a local path: the state would land on the instance's disk and be lost with it.
_COLLAPSED = re.compile(r"^(?P<protocol>[A-Za-z][A-Za-z0-9+.-]+):/(?!/)")


def state_url(default: str) -> str:
    """The state's location: `$EVENTMGMT_COLLECTOR_STATE_URL` when set, else `default`, with a
    URL that pathlib collapsed ("gs:/bucket/key") given its "//" back."""
    url = os.environ.get(STATE_URL) or default
    m = _COLLAPSED.match(url)
    if m and m.group("protocol").lower() in OBJECT_STORES:
        url = f"{m.group('protocol')}://{url[m.end() :]}"
    return url


@dataclass
class Condition:
    signal: str
    labels: dict[str, str]
    since: datetime
    firing: bool = False
    stateful: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "labels": self.labels,
            "since": self.since.isoformat(),
            "firing": self.firing,
            "stateful": self.stateful,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Condition:
        since = datetime.fromisoformat(d["since"])
        if since.tzinfo is None:
            raise ValueError(f"since {d['since']!r} has no UTC offset")
        firing, stateful = d["firing"], d.get("stateful", True)
        if not isinstance(d["signal"], str) or not isinstance(d["labels"], dict):
            raise TypeError("signal must be a string and labels an object")
        if not isinstance(firing, bool) or not isinstance(stateful, bool):
            raise TypeError("firing and stateful must be true or false")
        return cls(d["signal"], d["labels"], since, firing, stateful)


@dataclass
class CollectorState:
    conditions: dict[str, Condition] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"conditions": {k: c.to_json() for k, c in self.conditions.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CollectorState:
        return cls({k: Condition.from_json(v) for k, v in d.get("conditions", {}).items()})


class StateFile:
    """The state as one JSON object at an fsspec URL (a local file, memory://, or gs:// for the
    function); `$EVENTMGMT_COLLECTOR_STATE_URL`, when set, wins over `url` (state_url)."""

    def __init__(self, url: str) -> None:
        self.url = state_url(url)

    def load(self) -> CollectorState:
        """The saved state; an empty one (the collector starts blind) when there is none yet or it
        cannot be read as state. Any other failure to read (permissions, the store unreachable)
        raises: starting blind then would emit every firing condition again as new."""
        fs, path = fsspec.core.url_to_fs(self.url)
        try:
            raw = fs.cat_file(path)
        except FileNotFoundError:
            log_json(log, "INFO", "no collector state yet (first run): starting blind", url=self.url)
            return CollectorState()
        try:
            return CollectorState.from_json(json.loads(raw))
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            # NOTE: ValueError covers JSONDecodeError and UnicodeDecodeError; the others, JSON that
            # is not the state's shape. The next save replaces the file.
            log_json(
                log,
                "WARNING",
                "collector state unreadable: starting blind (conditions firing now fire again once "
                "they have lasted their `for`); this run's state replaces it",
                url=self.url,
                error=f"{type(err).__name__}: {err}"[:500],
            )
            return CollectorState()

    def save(self, state: CollectorState) -> None:
        """Replace the state whole, so a reader never sees half of it: a temporary file renamed over
        it on a local disk, one upload on an object store (which replaces an object atomically)."""
        data = json.dumps(state.to_json()).encode()
        fs, path = fsspec.core.url_to_fs(self.url)
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        if isinstance(fs, LocalFileSystem):
            _replace_local(path, data)
        elif protocols & OBJECT_STORES:
            fs.pipe_file(path, data)
        else:
            # NOTE: another filesystem with directories: write beside it, then rename over it
            # (atomic where the filesystem's rename is).
            parent = path.rsplit("/", 1)[0]
            if parent:
                fs.makedirs(parent, exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            fs.pipe_file(tmp, data)
            fs.mv(tmp, path)


def _replace_local(path: str, data: bytes) -> None:
    parent = os.path.dirname(path) or "."
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".collector-state.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
