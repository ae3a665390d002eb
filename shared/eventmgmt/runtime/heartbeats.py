"""A dead man's switch: Alertmanager's always-firing heartbeat (Watchdog, DeadMansSwitch, the names
under `heartbeats:`) proves the alerting pipeline works end to end. It is logged, never paged, as
long as it keeps arriving; when it stops for `timeout`, Prometheus, Alertmanager or the path to
eventmgmt is broken, and that is the one problem nothing else will page for. So the embedded
runtime opens a critical `heartbeat_silent` incident (paged like any other), and resolves it when
the heartbeat comes back.

Last-seen times are what ingest accepted in this process (Alertmanager resends the same alert, so
the store, which keeps each fact once, cannot tell them); after a restart a heartbeat is watched
again from its next arrival. Replay, which has no wall clock, never raises it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..model import Event, EventClass, Origin, Resources, Severity, Status, stable_hash
from ..timeutil import iso
from ..transport import Publisher
from ..transport.messages import publish_events
from ..transport.pipeline import RAW

KIND = "heartbeat_silent"
# NOTE: an alert that announces its own resolution, like Alertmanager's (correlate/state.is_stateful)
SOURCE = "heartbeat"
DEFAULT_TIMEOUT = timedelta(minutes=10)


def timeout_of(section: Any) -> timedelta:
    """`heartbeats:` is a list of names, or `{names: [...], timeout_minutes: N}`."""
    if isinstance(section, dict) and section.get("timeout_minutes") is not None:
        return timedelta(minutes=float(section["timeout_minutes"]))
    return DEFAULT_TIMEOUT


class HeartbeatWatch:
    def __init__(self, publisher: Publisher, timeout: timedelta, clock: Callable[[], datetime]) -> None:
        self.publisher = publisher
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[datetime, Event]] = {}  # fingerprint -> last arrival, the event
        self._silent: dict[str, datetime] = {}  # fingerprint -> its last arrival when declared silent

    def saw(self, events: list[Event], received: datetime) -> None:
        """Ingest's accepted events of one delivery (only heartbeats are kept)."""
        beats = [e for e in events if e.kind == "watchdog" and e.status is Status.firing]
        if beats:
            with self._lock:
                for e in beats:
                    self._seen[e.fingerprint] = (received, e)

    def check(self, now: datetime | None = None) -> list[Event]:
        """Publish a firing `heartbeat_silent` alert for each heartbeat silent for `timeout`, and its
        resolution once the heartbeat is back. Returns what it published."""
        at = now or self.clock()
        out: list[Event] = []
        with self._lock:
            for fp, (seen, beat) in self._seen.items():
                silent_since = self._silent.get(fp)
                if silent_since is None and at - seen >= self.timeout:
                    self._silent[fp] = seen
                    out.append(_alert(beat, seen, seen + self.timeout, seen + self.timeout, at, Status.firing))
                elif silent_since is not None and seen > silent_since:
                    del self._silent[fp]
                    out.append(_alert(beat, silent_since, silent_since + self.timeout, seen, at, Status.resolved))
        if out:
            publish_events(self.publisher, RAW, out, {"source": SOURCE})
        return out


def _alert(beat: Event, last: datetime, started: datetime, when: datetime, received: datetime, status: Status) -> Event:
    """The alert of one silence (one episode, from `started`: the heartbeat's last arrival plus the
    timeout), firing or resolved at `when`."""
    name = beat.signal
    return Event(
        id=f"{SOURCE}:{stable_hash(KIND, beat.fingerprint, iso(last), status.value, length=24)}",
        fingerprint=f"{KIND}:{beat.fingerprint}",
        source=SOURCE,
        signal="HeartbeatSilent",
        kind=KIND,
        cls=EventClass.alert,
        severity=Severity.critical,
        status=status,
        occurred_at=when,
        received_at=received,
        started_at=started,
        resources=Resources(cluster=beat.resources.cluster),
        labels={"heartbeat": name, "heartbeat_fingerprint": beat.fingerprint, "last_seen": iso(last)},
        summary=(
            f"No {name} heartbeat since {iso(last)}: Prometheus, Alertmanager or the path to eventmgmt is down"
            if status is Status.firing
            else f"{name} heartbeat back at {iso(when)}"
        ),
        origin=Origin(capture=f"heartbeat-{beat.fingerprint}", index=0),
    )
