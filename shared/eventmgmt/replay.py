"""Replay captures through the whole chain on a simulated clock, and write the report."""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, TextIO

from cloudevents.http import CloudEvent

from .classify import classify, filter_reason
from .clock import EventClock
from .config import Config
from .correlate.repo import MemoryRepo
from .correlate.stage import CorrelateStage
from .correlate.state import Incident
from .enrich.stage import EnrichStage
from .errors import InputError
from .sources import ParseContext, parse
from .timeutil import parse_ts
from .transport import InProcessPublisher, decode


@dataclass
class ReplayResult:
    """Counts kept in memory; finished incidents spooled to a temporary file, so a long replay's
    memory is bounded by the incidents still live, not by everything it has seen."""

    events: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    incident_count: int = 0
    first: datetime | None = None
    last: datetime | None = None
    _spool: IO[str] = field(default_factory=lambda: tempfile.TemporaryFile("w+"))

    def add_incident(self, entry: dict[str, Any]) -> None:
        self._spool.write(json.dumps(entry) + "\n")
        self.incident_count += 1

    def iter_incidents(self) -> Iterator[dict[str, Any]]:
        self._spool.flush()
        self._spool.seek(0)
        for line in self._spool:
            yield json.loads(line)
        self._spool.seek(0, 2)

    @property
    def incidents(self) -> list[dict[str, Any]]:
        return sorted(self.iter_incidents(), key=lambda e: e["opened_at"])

    def header(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "events_by_class": {k: self.by_class.get(k, 0) for k in ("alert", "change", "info", "filtered")},
            "filtered_by_reason": dict(self.filtered),
            "rejected": self.rejected,
        }

    def report(self) -> dict[str, Any]:
        return {**self.header(), "incidents": self.incidents}

    def write_report(self, path: str) -> None:
        """The report as DESIGN.md specifies, incidents streamed from the spool."""
        with open(path, "w") as f:
            head = json.dumps(self.header())
            f.write(head[:-1] + ', "incidents": [')
            for i, entry in enumerate(self.iter_incidents()):
                f.write(("," if i else "") + "\n" + json.dumps(entry))
            f.write("\n]}\n")


def read_captures(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(lines, 1):
        if line.strip():
            yield n, json.loads(line)


def _ref(m: Any) -> dict[str, Any]:
    return {"capture": m.origin.capture, "index": m.origin.index} if m.origin else {"capture": m.event_id, "index": 0}


def incident_entry(inc: Incident, config: Config) -> dict[str, Any]:
    snap = inc.snapshot(config.chains, config.response)
    root = inc.root(config.chains)
    return {
        "id": inc.id,
        "title": snap.title,
        "severity": snap.severity.value,
        "status": snap.status.value,
        "kind": snap.kind,
        "chain": snap.chain,
        "root_kind": snap.root_kind,
        "opened_at": snap.opened_at.isoformat(),
        "root_cause": _ref(root),
        "events": [_ref(m) for m in inc.members],
        "changes": [_ref(m) for m in inc.members if m.cls == "change"],
    }


def replay(
    lines: Iterable[str], config: Config, progress: Any = None, listen: Callable[[CloudEvent], Any] | None = None
) -> ReplayResult:
    """Run every capture through parse, classify, filter, enrich and correlate, in capture order, with
    the clock at each capture's `received_at`. Memory holds only live incidents. `listen` also
    receives every message published to events-correlated (what route and archive would get)."""
    result = ReplayResult()
    clock = EventClock()
    publisher = InProcessPublisher()
    repo = MemoryRepo(on_retire=lambda inc: result.add_incident(incident_entry(inc, config)))
    enrich_stage = EnrichStage(config, publisher)
    correlate_stage = CorrelateStage(config, publisher, clock, repo=repo)
    publisher.subscribe("events-raw", "enrich", enrich_stage.handle)
    publisher.subscribe("events-enriched", "correlate", correlate_stage.handle)

    def on_correlated(ce: Any) -> None:
        payload, _ = decode(ce)
        inc = payload.get("incident") or {}
        if payload.get("action") in ("opened", "reopened") and inc.get("kind") == "incident":
            result.pages += 1

    publisher.subscribe("events-correlated", "replay", on_correlated)
    if listen is not None:
        publisher.subscribe("events-correlated", "listener", listen)
    for lineno, cap in read_captures(lines):
        received = parse_ts(cap.get("received_at"))
        if received is None:
            result.rejected.append({"line": lineno, "error": "received_at missing"})
            continue
        result.first = result.first or received
        result.last = received
        try:
            events = parse(cap["source"], cap["body"], ParseContext(cap["id"], received))
        except (InputError, KeyError) as err:
            result.rejected.append({"line": lineno, "capture": cap.get("id"), "error": str(err)})
            continue
        for ev in events:
            result.events += 1
            ev = classify(ev, config)
            reason = filter_reason(ev, config)
            if reason is not None:
                result.by_class["filtered"] += 1
                result.filtered[reason] += 1
                continue
            result.by_class[ev.cls.value] += 1
            publisher.publish("events-raw", ev.to_json(), {"event_id": ev.id})
        if progress is not None:
            progress.update(1)
    if clock.watermark is not None:
        correlate_stage.tick(clock.watermark)
    for inc in sorted(repo.live(), key=lambda i: i.opened_at):
        result.add_incident(incident_entry(inc, config))
    return result


def run_replay(path: str, config: Config, report_path: str | None, out: TextIO = sys.stderr) -> ReplayResult:
    """Replay a capture file, streaming it; a progress bar when `out` is a terminal."""
    progress = None
    if out.isatty():
        from tqdm import tqdm

        with open(path) as f:
            total = sum(1 for _ in f)
        progress = tqdm(total=total, unit="capture", file=out)
    with open(path) as f:
        result = replay(f, config, progress)
    if progress is not None:
        progress.close()
    if report_path:
        result.write_report(report_path)
    return result
