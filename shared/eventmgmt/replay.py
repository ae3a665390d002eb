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

from .classify import admit
from .clock import EventClock
from .config import Config
from .correlate.repo import MemoryRepo
from .correlate.stage import CorrelateStage
from .correlate.state import Incident
from .enrich import TopologyGraph, enrich
from .errors import InputError
from .incident import CorrelatedMessage, IncidentAction
from .sources import ParseContext, parse
from .sources.base import may_hold_bad_text
from .timeutil import parse_ts
from .transport import InProcessPublisher
from .transport.messages import publish_messages


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


def _captures(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any], bool]]:
    """`read_captures`, and whether a line's text may hold a NUL or lone surrogate (see ParseContext)."""
    for n, line in enumerate(lines, 1):
        if line.strip():
            yield n, json.loads(line), may_hold_bad_text(line)


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
    """Run every capture through parse, classify, filter, enrich and correlate, in capture order, one
    capture as one delivery (as the served path takes it), on event time. Memory holds only live
    incidents. `listen` also receives every message published to events-correlated (what route and
    archive would get).

    NOTE: the stages are called directly, not through the in-process topics: encoding each event
    into a Pub/Sub envelope and back between stages cost more than correlating it."""
    result = ReplayResult()
    clock = EventClock()
    publisher = InProcessPublisher()
    if listen is not None:
        publisher.subscribe("events-correlated", "listener", listen)
    repo = MemoryRepo(on_retire=lambda inc: result.add_incident(incident_entry(inc, config)))
    correlate_stage = CorrelateStage(config, publisher, clock, repo=repo)
    graph = TopologyGraph()
    for lineno, cap, suspicious in _captures(lines):
        received = parse_ts(cap.get("received_at"))
        if received is None:
            result.rejected.append({"line": lineno, "error": "received_at missing"})
            continue
        result.first = result.first or received
        result.last = received
        try:
            events = parse(cap["source"], cap["body"], ParseContext(cap["id"], received, check_text=suspicious))
        except (InputError, KeyError) as err:
            result.rejected.append({"line": lineno, "capture": cap.get("id"), "error": str(err)})
            continue
        kept, dropped = admit(events, config)
        result.events += len(events)
        result.by_class["filtered"] += sum(dropped.values())
        result.filtered.update(dropped)
        result.by_class.update(ev.cls.value for ev in kept)
        if kept:
            messages = correlate_stage.correlate([enrich(ev, config, graph) for ev in kept])
            result.pages += sum(1 for m in messages if _pages(m))
            if listen is not None:
                publish_messages(publisher, messages)
        if progress is not None:
            progress.update(1)
    if clock.watermark is not None:
        result.pages += sum(1 for m in correlate_stage.tick(clock.watermark) if _pages(m))
    for inc in sorted(repo.live(), key=lambda i: i.opened_at):
        result.add_incident(incident_entry(inc, config))
    return result


def _pages(m: CorrelatedMessage) -> bool:
    return m.action in (IncidentAction.opened, IncidentAction.reopened) and (
        m.incident is not None and m.incident.kind == "incident"
    )


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
