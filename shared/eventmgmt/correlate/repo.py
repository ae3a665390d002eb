"""Where correlation keeps live incidents: the interface, and the in-memory implementation replay uses."""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Protocol

from ..incident import IncidentSnapshot
from ..model import Event, stable_hash
from .state import RECURRENCE_KEEP, Incident, PastIncident


def incident_id_for(ev: Event) -> str:
    """Deterministic from the first event, so a replay and a live run name incidents alike."""
    return "inc-" + stable_hash(ev.id, length=12)


class IncidentRepo(Protocol):
    """Live incidents (open, or resolved but still inside the reopen window), indexed by resource key
    and alert fingerprint. Implementations need not be thread-safe: callers hold `locked()`."""

    def seen(self, event_id: str) -> bool: ...

    def incident_of(self, event_id: str) -> str | None:
        """The incident an already-seen event joined."""
        ...

    def record_event(self, ev: Event, incident_id: str | None) -> None: ...

    def by_fingerprint(self, fingerprint: str) -> Incident | None: ...

    def by_keys(self, keys: Iterable[str]) -> list[Incident]: ...

    def get(self, incident_id: str) -> Incident | None: ...

    def save(self, inc: Incident, due: datetime | None, snap: IncidentSnapshot | None = None) -> None:
        """Store `inc` and (re)schedule its next lifecycle check at `due`; `snap`, when the caller has
        built it already, is `inc`'s snapshot at this version."""
        ...

    def reschedule(self, inc: Incident, due: datetime | None) -> None:
        """Move the next lifecycle check of an unchanged `inc`."""
        ...

    def due(self, now: datetime) -> list[Incident]:
        """Incidents whose lifecycle check is due at `now` (each returned once per scheduling)."""
        ...

    def retire(self, inc: Incident) -> None:
        """`inc` can no longer change: drop it from the live indexes, keeping its `PastIncident`
        (found by `past`) when it resolved, for a recurrence within the next 24 hours."""
        ...

    def past(self, keys: Iterable[str]) -> dict[str, list[PastIncident]]:
        """Retired incidents found by each of `keys` (resource keys, `fingerprint_key`s), those that
        resolved within `RECURRENCE_KEEP` of the latest retirement at least; callers filter by time."""
        ...

    def hold(self, ev: Event, until: datetime) -> None:
        """Keep a suppressed firing alert until its maintenance window ends."""
        ...

    def release(self, fingerprint: str) -> None:
        """The held alert resolved inside the window: forget it."""
        ...

    def held_due(self, now: datetime) -> list[Event]:
        """Held alerts whose window has ended, removed from the hold."""
        ...

    def merge_away(self, inc: Incident) -> None:
        """`inc` was folded into another incident: drop it from the live indexes, keep no report of it."""
        ...

    def new_id(self, ev: Event) -> str: ...


class MemoryRepo:
    """Live incidents in dicts; retired incidents go to `on_retire` (replay writes them to its report),
    so memory is bounded by live incidents, not by events seen."""

    def __init__(
        self, on_retire: Callable[[Incident], None] | None = None, dedup_horizon: timedelta = timedelta(hours=1)
    ) -> None:
        self.incidents: dict[str, Incident] = {}
        self._by_key: dict[str, set[str]] = defaultdict(set)
        self._by_fp: dict[str, str] = {}
        self._heap: list[tuple[datetime, str, int]] = []
        self._due_version: dict[str, int] = {}
        self._seen: dict[str, str | None] = {}
        self._seen_at: deque[tuple[datetime, str]] = deque()
        self._dedup_horizon = dedup_horizon
        self._on_retire = on_retire
        self._redirect: dict[str, str] = {}
        self._held: dict[str, tuple[datetime, Event]] = {}
        # Retired incidents' digests by lookup key, and in order of retirement with their keys (to
        # forget them once past RECURRENCE_KEEP): a few fields each, not the incident.
        self._past: dict[str, list[PastIncident]] = {}
        self._past_order: deque[tuple[PastIncident, list[str]]] = deque()

    def seen(self, event_id: str) -> bool:
        return event_id in self._seen

    def incident_of(self, event_id: str) -> str | None:
        iid = self._seen.get(event_id)
        while iid is not None and iid in self._redirect:
            iid = self._redirect[iid]
        return iid

    def record_event(self, ev: Event, incident_id: str | None) -> None:
        self._seen[ev.id] = incident_id
        self._seen_at.append((ev.received_at, ev.id))
        # NOTE: ids are remembered for a horizon of receipt time (webhook retries and Pub/Sub
        # redelivery come within minutes), so memory follows the event rate, not the day's total.
        horizon = ev.received_at - self._dedup_horizon
        while self._seen_at and self._seen_at[0][0] < horizon:
            _, old = self._seen_at.popleft()
            self._seen.pop(old, None)

    def by_fingerprint(self, fingerprint: str) -> Incident | None:
        iid = self._by_fp.get(fingerprint)
        return self.incidents.get(iid) if iid else None

    def by_keys(self, keys: Iterable[str]) -> list[Incident]:
        ids: set[str] = set()
        for k in keys:
            ids |= self._by_key.get(k, set())
        return [self.incidents[i] for i in sorted(ids)]

    def get(self, incident_id: str) -> Incident | None:
        return self.incidents.get(incident_id)

    def save(self, inc: Incident, due: datetime | None, snap: IncidentSnapshot | None = None) -> None:
        self.incidents[inc.id] = inc
        for k in inc.fresh_keys:
            self._by_key[k].add(inc.id)
        for fp in inc.fresh_fps:
            self._by_fp[fp] = inc.id
        inc.fresh_keys, inc.fresh_fps = set(), set()
        self.reschedule(inc, due)

    def reschedule(self, inc: Incident, due: datetime | None) -> None:
        if due is not None:
            self._due_version[inc.id] = inc.version
            heapq.heappush(self._heap, (due, inc.id, inc.version))

    def due(self, now: datetime) -> list[Incident]:
        out = []
        while self._heap and self._heap[0][0] <= now:
            _, iid, version = heapq.heappop(self._heap)
            inc = self.incidents.get(iid)
            if inc is not None and self._due_version.get(iid) == version:
                out.append(inc)
        return out

    def retire(self, inc: Incident) -> None:
        self._unindex(inc)
        self._remember(inc)
        if self._on_retire is not None:
            self._on_retire(inc)

    def _remember(self, inc: Incident) -> None:
        past = PastIncident.of(inc)
        if past is None:
            return
        keys = PastIncident.index_keys(inc)
        for k in keys:
            self._past.setdefault(k, []).append(past)
        self._past_order.append((past, keys))
        cutoff = past.resolved_at - RECURRENCE_KEEP
        while self._past_order and self._past_order[0][0].resolved_at < cutoff:
            old, old_keys = self._past_order.popleft()
            for k in old_keys:
                kept = [p for p in self._past.get(k, ()) if p is not old]
                if kept:
                    self._past[k] = kept
                else:
                    self._past.pop(k, None)

    def past(self, keys: Iterable[str]) -> dict[str, list[PastIncident]]:
        return {k: list(self._past[k]) for k in keys if k in self._past}

    def hold(self, ev: Event, until: datetime) -> None:
        self._held[ev.fingerprint] = (until, ev)

    def release(self, fingerprint: str) -> None:
        self._held.pop(fingerprint, None)

    def held_due(self, now: datetime) -> list[Event]:
        due = [fp for fp, (until, _) in self._held.items() if until <= now]
        return [self._held.pop(fp)[1] for fp in due]

    def merge_away(self, inc: Incident) -> None:
        self._unindex(inc)
        if inc.merged_into:
            self._redirect[inc.id] = inc.merged_into

    def _unindex(self, inc: Incident) -> None:
        self.incidents.pop(inc.id, None)
        self._due_version.pop(inc.id, None)
        for k in inc.keys:
            ids = self._by_key.get(k)
            if ids is not None:
                ids.discard(inc.id)
                if not ids:
                    del self._by_key[k]
        for fp in inc.fingerprints:
            if self._by_fp.get(fp) == inc.id:
                del self._by_fp[fp]

    def new_id(self, ev: Event) -> str:
        return incident_id_for(ev)

    def live(self) -> list[Incident]:
        return list(self.incidents.values())
