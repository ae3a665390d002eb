"""Replay captures through the whole chain on a simulated clock, and write the report."""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any, TextIO

from cloudevents.http import CloudEvent

from . import jsontext
from .classify import admit
from .clock import EventClock
from .config import Config
from .correlate.repo import MemoryRepo
from .correlate.stage import CorrelateStage
from .correlate.state import Incident
from .enrich import TopologyGraph, enrich
from .errors import InputError
from .incident import CorrelatedMessage, IncidentSnapshot
from .model import Event
from .route.config import Receiver, group_wait_of
from .route.decide import NOTHING, TRIGGERED, Decision, Told, desired_state, needs_send
from .settings import Settings
from .sources import ParseContext, parse
from .sources.base import may_hold_bad_text
from .timeutil import parse_ts
from .transport import InProcessPublisher
from .transport.messages import publish_messages
from .transport.pipeline import CORRELATED


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

    def count(self, events: list[Event], kept: list[Event], dropped: Counter[str]) -> None:
        """Count a capture's events: by class those kept, by reason those filtered out."""
        self.events += len(events)
        self.by_class["filtered"] += sum(dropped.values())
        self.filtered.update(dropped)
        self.by_class.update(ev.cls.value for ev in kept)

    def add_incident(self, entry: dict[str, Any]) -> None:
        self._spool.write(json.dumps(entry) + "\n")
        self.incident_count += 1

    def iter_incidents(self) -> Iterator[dict[str, Any]]:
        self._spool.flush()
        self._spool.seek(0)
        for line in self._spool:
            yield jsontext.loads(line)
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
            yield n, jsontext.loads(line)


def _captures(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str, bool]]:
    """Each line's capture, and whether its text may hold a NUL or lone surrogate (see
    ParseContext); a line that is not a JSON object yields what is wrong with it instead."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            cap = jsontext.loads(line)
        except (ValueError, RecursionError) as err:
            yield n, f"not JSON: {err}", False
            continue
        if not isinstance(cap, dict):
            yield n, f"expected a capture object, got {type(cap).__name__}", False
            continue
        yield n, cap, may_hold_bad_text(line)


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
        # NOTE: as the served API has them (the snapshot): the earlier episode's incident, and how
        # many episodes of this problem came in the 24 hours before this one.
        "recurrence_of": snap.recurrence_of,
        "recurrences": snap.recurrences,
    }


def _capture_events(
    lineno: int, cap: dict[str, Any] | str, suspicious: bool, result: ReplayResult
) -> tuple[datetime, list[Event]] | None:
    """A capture's arrival time and events; None, with the capture noted as rejected, when it is
    not a capture, has no arrival time, or cannot be parsed."""
    if isinstance(cap, str):
        result.rejected.append({"line": lineno, "error": cap})
        return None
    received = parse_ts(cap.get("received_at"))
    if received is None:
        result.rejected.append({"line": lineno, "error": "received_at missing"})
        return None
    result.first = result.first or received
    result.last = received
    try:
        events = parse(cap["source"], cap["body"], ParseContext(cap["id"], received, check_text=suspicious))
    except (InputError, KeyError) as err:
        result.rejected.append({"line": lineno, "capture": cap.get("id"), "error": str(err)})
        return None
    return received, events


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
        publisher.subscribe(CORRELATED, "listener", listen)
    repo = MemoryRepo(on_retire=lambda inc: result.add_incident(incident_entry(inc, config)))
    correlate_stage = CorrelateStage(config, publisher, clock, repo=repo)
    pager = FirstPages(timedelta(seconds=group_wait_of(config, Settings().group_wait_seconds)))
    graph = TopologyGraph()
    for lineno, cap, suspicious in _captures(lines):
        read = _capture_events(lineno, cap, suspicious, result)
        if read is None:
            continue
        received, events = read
        kept, dropped = admit(events, config)
        result.count(events, kept, dropped)
        if kept:
            messages = correlate_stage.correlate([enrich(ev, config, graph) for ev in kept])
            pager.release(received)
            pager.see(messages, received)
            if listen is not None:
                publish_messages(publisher, messages)
        if progress is not None:
            progress.update(1)
    if clock.watermark is not None:
        pager.see(correlate_stage.tick(clock.watermark), result.last or clock.watermark)
    pager.release(None)
    result.pages = pager.pages
    for inc in sorted(repo.live(), key=lambda i: i.opened_at):
        result.add_incident(incident_entry(inc, config))
    return result


class FirstPages:
    """Counts the pages a paging receiver gets, deciding as route does (route/decide.py), with its
    group wait on arrival time (each capture's `received_at`): a first page waits until `wait` after
    its incident was first announced, then goes out as the incident stands, so a fragment folded
    into another meanwhile is never paged."""

    def __init__(self, wait: timedelta) -> None:
        self.wait = wait
        self.pages = 0
        self._receiver = Receiver(name="pager", type="pagerduty")
        self._told: dict[str, Told] = {}
        self._latest: dict[str, IncidentSnapshot] = {}
        self._due: dict[str, datetime] = {}
        self._waiting: set[str] = set()

    def see(self, messages: Iterable[CorrelatedMessage], now: datetime) -> None:
        for m in messages:
            if m.incident is not None:
                self._latest[m.incident.id] = m.incident
                self._tell(m.incident, now)

    def release(self, now: datetime | None) -> None:
        """Send the first pages due by `now` (all of them when None: the end of the captures)."""
        for iid in sorted(self._waiting, key=lambda i: (self._due[i], i)):
            if now is None or self._due[iid] <= now:
                self._waiting.discard(iid)
                self._tell(self._latest[iid], None)

    def _tell(self, snap: IncidentSnapshot, now: datetime | None) -> None:
        state = desired_state(snap, self._receiver)
        if state is None:
            return
        told = self._told.get(snap.id, Told())
        decision = needs_send(told, snap.version, state, self._receiver)
        if decision is Decision.skip:
            return
        if decision is Decision.send and state == TRIGGERED and told.state == NOTHING and now is not None:
            if now < self._due.setdefault(snap.id, now + self.wait):
                self._waiting.add(snap.id)
                return
        if decision is Decision.send and state == TRIGGERED:
            self.pages += 1
        self._told[snap.id] = Told(state, snap.version)
        self._waiting.discard(snap.id)


def run_replay(path: str, config: Config, report_path: str | None, out: TextIO | None = None) -> ReplayResult:
    """Replay a capture file, streaming it; a progress bar when `out` (default: standard error, as it
    is when called) is a terminal."""
    out = out if out is not None else sys.stderr
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
