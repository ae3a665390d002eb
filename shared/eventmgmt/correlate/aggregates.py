"""What an incident's summary needs, kept as members join instead of recomputed from every member.

A storm incident grows to thousands of members; its snapshot, title, root cause and join checks are
needed on every delivery. Recomputing them from the member list made each further event cost more
than the last; these aggregates make them cost the same at 10 members and at 10,000."""

from __future__ import annotations

from bisect import insort
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from ..model import EventClass, Severity, Status

if TYPE_CHECKING:
    from .state import Member

RESOURCE_NAMES = ("cluster", "namespace", "node", "nodepool", "pod", "deployment", "model", "gpu")
# NOTE: the snapshot lists at most this many names per resource kind, most recent first, with the
# total beside them: a message stays small however large the incident.
LISTED = 50
# NOTE: per node, the member times a join check looks at; beyond this the oldest go (a node's
# members in one incident are minutes apart, the check asks about minutes).
_NODE_TIMES = 64


def _root_key(m: Member) -> tuple[bool, datetime, str]:
    return (m.status != Status.firing.value, m.occurred_at, m.event_id)


@dataclass
class Aggregates:
    kinds: Counter[str] = field(default_factory=Counter)
    alerts: int = 0
    severity: Severity = Severity.info
    # The earliest member of each kind (firing before resolved): the root cause is one of these.
    first: dict[str, Member] = field(default_factory=dict)
    changes: list[Member] = field(default_factory=list)
    # Distinct names per resource kind, in order of last mention (dicts keep insertion order).
    names: dict[str, dict[str, None]] = field(default_factory=dict)
    # Per node: times of members naming it, and of node-scoped members (no pod) naming it.
    node_times: dict[str, list[datetime]] = field(default_factory=dict)
    node_scoped_times: dict[str, list[datetime]] = field(default_factory=dict)
    pod_members: int = 0

    @classmethod
    def of(cls, members: list[Member]) -> Aggregates:
        agg = cls()
        for m in members:
            agg.add(m)
        return agg

    def add(self, m: Member) -> None:
        self.kinds[m.kind] += 1
        if m.cls == EventClass.alert.value:
            self.alerts += 1
            sev = Severity(m.severity)
            if sev.rank > self.severity.rank:
                self.severity = sev
        elif m.cls == EventClass.change.value:
            self.changes.append(m)
        best = self.first.get(m.kind)
        if best is None or _root_key(m) < _root_key(best):
            self.first[m.kind] = m
        for name, value in m.resources.items():
            if name in RESOURCE_NAMES:
                seen = self.names.setdefault(name, {})
                seen.pop(value, None)
                seen[value] = None
        pod = m.resources.get("pod")
        if pod:
            self.pod_members += 1
        node = m.resources.get("node")
        if node:
            _remember(self.node_times.setdefault(node, []), m.occurred_at)
            if not pod:
                _remember(self.node_scoped_times.setdefault(node, []), m.occurred_at)

    def merge(self, other: Aggregates) -> None:
        """As if each of `other`'s members had been added here, in their order (an incident found to
        be part of this one, whose members are not held)."""
        self.kinds.update(other.kinds)
        self.alerts += other.alerts
        if other.severity.rank > self.severity.rank:
            self.severity = other.severity
        self.changes.extend(other.changes)
        for kind, m in other.first.items():
            best = self.first.get(kind)
            if best is None or _root_key(m) < _root_key(best):
                self.first[kind] = m
        for name, values in other.names.items():
            seen = self.names.setdefault(name, {})
            for value in values:
                seen.pop(value, None)
                seen[value] = None
        for mine, theirs in ((self.node_times, other.node_times), (self.node_scoped_times, other.node_scoped_times)):
            for node, times in theirs.items():
                kept = mine.setdefault(node, [])
                for t in times:
                    _remember(kept, t)
        self.pod_members += other.pod_members

    def listed(self) -> dict[str, list[str]]:
        return {f"{n}s": list(reversed(v))[:LISTED] for n, v in sorted(self.names.items())}

    def counts(self) -> dict[str, int]:
        return {f"{n}s": len(v) for n, v in sorted(self.names.items())}

    def count(self, name: str) -> int:
        return len(self.names.get(name, ()))

    def only(self, name: str) -> str | None:
        values = self.names.get(name)
        return next(iter(values)) if values and len(values) == 1 else None

    def near(self, node: str, t: datetime, within: float, node_scoped_only: bool) -> bool:
        times = (self.node_scoped_times if node_scoped_only else self.node_times).get(node, ())
        return any(abs((x - t).total_seconds()) <= within for x in times)


def _remember(times: list[datetime], t: datetime) -> None:
    insort(times, t)
    if len(times) > _NODE_TIMES:
        # NOTE: drop the one closest to a neighbour, so the spread of times survives.
        gaps = [(times[i + 1] - times[i], i) for i in range(len(times) - 1)]
        del times[min(gaps)[1]]
