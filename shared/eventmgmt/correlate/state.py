"""An incident's state as correlation keeps it, and how it is summarised for consumers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..config import Chain, Response
from ..incident import EventRef, IncidentSnapshot, IncidentStatus
from ..model import Event, EventClass, Origin, Severity, Status
from .aggregates import Aggregates

_KEY_SPECIFICITY = {"pod": 4, "gpu": 3, "deployment": 2, "model": 2, "node": 1, "nodepool": 0}
# NOTE: how far back the episodes of one problem are counted (`recurrences` on the snapshot).
RECURRENCE_HORIZON = timedelta(hours=24)
# NOTE: how long a retired incident's digest (`PastIncident`) is kept after it resolved: the horizon,
# and a margin so an event arriving hours late still finds what an event on time would have found.
RECURRENCE_KEEP = RECURRENCE_HORIZON + timedelta(hours=6)


def key_weight(key: str) -> int:
    return _KEY_SPECIFICITY.get(key.split(":", 1)[0], 0)


def _fires(s: FingerprintState) -> bool:
    return s.stateful and s.status == Status.firing.value


def is_stateful(ev: Event) -> bool:
    """Alerts that announce their own resolution (Alertmanager, the collector); other alerts are
    point-in-time facts (a kubelet event, a log line) that end when things go quiet."""
    return ev.source in ("alertmanager", "collector", "heartbeat") or ev.status is Status.resolved


@dataclass
class Member:
    event_id: str
    kind: str
    cls: str
    status: str
    severity: str
    occurred_at: datetime
    fingerprint: str
    summary: str
    origin: Origin | None
    resources: dict[str, str]
    # NOTE: the alert's own runbook and link back to its source (Alertmanager's generatorURL): the
    # root cause's are the incident's.
    runbook: str | None = None
    link: str | None = None

    @classmethod
    def of(cls, ev: Event) -> Member:
        return cls(
            event_id=ev.id,
            kind=ev.kind,
            cls=ev.cls.value,
            status=ev.status.value,
            severity=ev.severity.value,
            occurred_at=ev.occurred_at,
            fingerprint=ev.fingerprint,
            summary=ev.summary[:300],
            origin=ev.origin,
            resources={k: v for k, v in ev.resources.model_dump().items() if v},
            runbook=ev.runbook,
            link=ev.labels.get("generator_url"),
        )

    def ref(self) -> EventRef:
        return EventRef(
            id=self.event_id,
            kind=self.kind,
            cls=self.cls,
            status=self.status,
            occurred_at=self.occurred_at,
            summary=self.summary,
            origin=self.origin,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "kind": self.kind,
            "cls": self.cls,
            "status": self.status,
            "severity": self.severity,
            "occurred_at": self.occurred_at.isoformat(),
            "fingerprint": self.fingerprint,
            "summary": self.summary,
            "origin": self.origin.model_dump() if self.origin else None,
            "resources": self.resources,
            "runbook": self.runbook,
            "link": self.link,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Member:
        return cls(
            event_id=d["event_id"],
            kind=d["kind"],
            cls=d["cls"],
            status=d["status"],
            severity=d["severity"],
            occurred_at=datetime.fromisoformat(d["occurred_at"]),
            fingerprint=d["fingerprint"],
            summary=d["summary"],
            origin=Origin(**d["origin"]) if d.get("origin") else None,
            resources=d.get("resources", {}),
            runbook=d.get("runbook"),
            link=d.get("link"),
        )


@dataclass
class FingerprintState:
    """The latest known state of one alert fingerprint inside an incident."""

    status: str
    at: datetime
    stateful: bool
    started: datetime | None = None


@dataclass
class Incident:
    id: str
    opened_at: datetime
    last_seen: datetime
    version: int = 0
    status: IncidentStatus = IncidentStatus.open
    resolved_at: datetime | None = None
    acknowledged_by: str | None = None
    members: list[Member] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    fingerprints: dict[str, FingerprintState] = field(default_factory=dict)
    merged_into: str | None = None
    recurrence_of: str | None = None
    earlier_episodes: list[datetime] = field(default_factory=list)
    # Keys and fingerprints gained since the repository last indexed this incident (not persisted).
    fresh_keys: set[str] = field(default_factory=set, repr=False, compare=False)
    fresh_fps: set[str] = field(default_factory=set, repr=False, compare=False)
    _agg: Aggregates | None = field(default=None, repr=False, compare=False)
    _firing: int | None = field(default=None, repr=False, compare=False)
    # NOTE: how many members joined, whether or not they are held (`drop_members`).
    size: int = field(default=0, compare=False)
    keep_members: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.members and not self.size:
            self.size = len(self.members)

    def drop_members(self) -> None:
        """Hold the aggregates, not the members: the SQL store keeps every member as an event row,
        and a live storm incident's members were most of the served process's memory (a 20,000-pod
        delivery added about 50 MB that stayed while its incidents lived)."""
        _ = self.agg
        self.members = []
        self.keep_members = False

    # --- derived ---------------------------------------------------------------------------------
    @property
    def agg(self) -> Aggregates:
        if self._agg is None:
            self._agg = Aggregates.of(self.members)
        return self._agg

    @property
    def kinds(self) -> set[str]:
        return set(self.agg.kinds)

    @property
    def has_alerts(self) -> bool:
        return self.agg.alerts > 0

    @property
    def firing(self) -> int:
        if self._firing is None:
            self._firing = sum(1 for s in self.fingerprints.values() if _fires(s))
        return self._firing

    @property
    def is_resolved(self) -> bool:
        return self.status is IncidentStatus.resolved

    def open_at(self, t: datetime) -> bool:
        """Whether the incident was still open at event time `t` (an event from before its
        resolution, arriving late, finds it open)."""
        return not self.is_resolved or (self.resolved_at is not None and t < self.resolved_at)

    def severity(self) -> Severity:
        return self.agg.severity

    def note_keys(self, keys: Iterable[str]) -> None:
        new = set(keys) - self.keys
        self.keys |= new
        self.fresh_keys |= new

    def add(self, ev: Event) -> None:
        member = Member.of(ev)
        self.size += 1
        if self.keep_members:
            self.members.append(member)
        if self._agg is not None:
            self._agg.add(member)
        if ev.occurred_at > self.last_seen:
            self.last_seen = ev.occurred_at
        if ev.occurred_at < self.opened_at:
            self.opened_at = ev.occurred_at
        if ev.cls is EventClass.alert:
            prev = self.fingerprints.get(ev.fingerprint)
            # NOTE: the latest state by event time wins, so a resolved that overtook its firing
            # in transit still ends the alert.
            if prev is None:
                self.fresh_fps.add(ev.fingerprint)
            if prev is None or ev.occurred_at >= prev.at:
                new = FingerprintState(ev.status.value, ev.occurred_at, is_stateful(ev), ev.started_at)
                self.fingerprints[ev.fingerprint] = new
                if self._firing is not None:
                    self._firing += int(_fires(new)) - int(prev is not None and _fires(prev))

    def absorb(self, other: Incident) -> None:
        """Take over every member of `other` (an incident found to be part of this one)."""
        if self.keep_members:
            self.members.extend(other.members)
        if self._agg is not None:
            self._agg.merge(other.agg)
        self.size += other.size
        self.note_keys(other.keys)
        for fp, st in other.fingerprints.items():
            mine = self.fingerprints.get(fp)
            if mine is None:
                self.fresh_fps.add(fp)
            if mine is None or st.at >= mine.at:
                self.fingerprints[fp] = st
                if self._firing is not None:
                    self._firing += int(_fires(st)) - int(mine is not None and _fires(mine))
        self.opened_at = min(self.opened_at, other.opened_at)
        self.last_seen = max(self.last_seen, other.last_seen)

    # --- root cause and summary -----------------------------------------------------------------
    def _chain_order(self, chains: list[Chain]) -> tuple[Chain | None, dict[str, tuple[int, int]]]:
        """The best chain, and each kind's (step, place within the step as the chain lists it)."""
        kinds = self.agg.kinds.keys()  # NOTE: a view, not a set built for each call
        best: tuple[int, int, Chain] | None = None
        for order, chain in enumerate(chains):
            rank = chain.positions
            if not kinds <= rank.keys():
                continue
            first = min(rank[k][0] for k in kinds)
            if best is None or (first, order) < (best[0], best[1]):
                best = (first, order, chain)
        if best is None:
            return None, {}
        return best[2], best[2].positions

    def root(self, chains: list[Chain]) -> Member:
        """The earliest event of the earliest chain step present (firing before resolved). A tie in
        time goes to the kind the chain lists first within the step (an OOM kill before the crash
        loop it causes), then to the event id: never to arrival order."""
        return self._root(self._chain_order(chains)[1])

    def _root(self, rank: Mapping[str, tuple[int, int]]) -> Member:
        # NOTE: outside any chain, changes precede the alerts they cause, and alerts precede info.
        cls_rank = {"change": 0, "alert": 1, "info": 2}
        return min(
            self.agg.first.values(),
            key=lambda m: (
                rank.get(m.kind, (len(rank) + cls_rank.get(m.cls, 3), 0))[0],
                m.status != Status.firing.value,
                m.occurred_at,
                rank.get(m.kind, (0, 0))[1],
                m.event_id,
            ),
        )

    def resources(self) -> dict[str, list[str]]:
        """At most 50 names per resource kind, most recent first (`resource_counts` has the totals)."""
        return self.agg.listed()

    def title(self, chains: list[Chain]) -> str:
        """The chain of kinds present, in chain order, and where. An incident spanning several pods
        (a storm, a fleet outage) says what they share and how wide it is instead."""
        chain, rank = self._chain_order(chains)
        return self._title(chain, rank, self._root(rank))

    def _title(self, chain: Chain | None, rank: Mapping[str, tuple[int, int]], root: Member) -> str:
        present = sorted((k for k in self.agg.kinds if k in rank), key=lambda k: rank[k])
        path = " → ".join(present) if chain and len(present) > 1 else root.kind
        res = root.resources
        pods = self.agg.count("pod")
        if pods > 1:
            nodes = self.agg.count("node")
            shared = self._shared_name()
            width = f"{pods} pods" + (f" ({nodes} nodes)" if nodes else "")
            return f"{shared}: {kind_phrase(root.kind)} on {width} · {path}" if shared else f"{path} on {width}"
        where = res.get("model") or res.get("deployment") or res.get("pod") or res.get("node") or ""
        extra = [f"{n} {res[n]}" for n in ("pod", "node") if res.get(n) and res.get(n) != where]
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"{path}: {where}{tail}" if where else path

    def _shared_name(self) -> str | None:
        """The model, deployment or node pool every member naming one shares."""
        for name in ("model", "deployment", "nodepool"):
            value = self.agg.only(name)
            if value is not None:
                return value
        return None

    def snapshot(self, chains: list[Chain], response: Mapping[str, Response]) -> IncidentSnapshot:
        # NOTE: the chain, root and title from one look at the chains, not four: a storm's delivery
        # announces a hundred fragments, and building their snapshots was a sixth of its replay.
        chain, rank = self._chain_order(chains)
        root = self._root(rank)
        row = response.get(root.kind)
        return IncidentSnapshot(
            id=self.id,
            version=self.version,
            kind="incident" if self.has_alerts else "change",
            title=self._title(chain, rank, root),
            chain=chain.name if chain else None,
            root_kind=root.kind,
            severity=self.severity(),
            status=self.status,
            opened_at=self.opened_at,
            updated_at=self.last_seen,
            resolved_at=self.resolved_at,
            root_cause=root.ref(),
            changes=[m.ref() for m in self.agg.changes],
            member_count=self.size,
            firing=self.firing,
            resources=self.resources(),
            resource_counts=self.agg.counts(),
            action=row.action if row is not None else None,
            runbook=root.runbook or (row.runbook if row is not None else None),
            source_url=root.link,
            acknowledged_by=self.acknowledged_by,
            merged_into=self.merged_into,
            recurrence_of=self.recurrence_of,
            recurrences=len(self.earlier_episodes),
        )

    # --- persistence ----------------------------------------------------------------------------
    def to_json(self, *, flat: bool = False) -> dict[str, Any]:
        """The incident's state. `flat` leaves out what grows with the incident (members, keys,
        fingerprints): the SQL store keeps members as event rows and rebuilds the rest from them
        (`rebuild`), so writing a 10,000-member incident costs what writing a 10-member one does."""
        out: dict[str, Any] = {
            "id": self.id,
            "opened_at": self.opened_at.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "version": self.version,
            "status": self.status.value,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "acknowledged_by": self.acknowledged_by,
            "merged_into": self.merged_into,
            "recurrence_of": self.recurrence_of,
            "earlier_episodes": [e.isoformat() for e in self.earlier_episodes],
        }
        if flat:
            return out
        return {
            **out,
            "members": [m.to_json() for m in self.members],
            "keys": sorted(self.keys),
            "fingerprints": {
                fp: [s.status, s.at.isoformat(), s.stateful, s.started.isoformat() if s.started else None]
                for fp, s in self.fingerprints.items()
            },
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Incident:
        return cls(
            id=d["id"],
            opened_at=datetime.fromisoformat(d["opened_at"]),
            last_seen=datetime.fromisoformat(d["last_seen"]),
            version=d["version"],
            status=IncidentStatus(d["status"]),
            resolved_at=datetime.fromisoformat(d["resolved_at"]) if d.get("resolved_at") else None,
            acknowledged_by=d.get("acknowledged_by"),
            merged_into=d.get("merged_into"),
            recurrence_of=d.get("recurrence_of"),
            earlier_episodes=[datetime.fromisoformat(e) for e in d.get("earlier_episodes", ())],
            members=[Member.from_json(m) for m in d.get("members", ())],
            keys=set(d.get("keys", ())),
            fingerprints={
                fp: FingerprintState(
                    s[0], datetime.fromisoformat(s[1]), bool(s[2]), datetime.fromisoformat(s[3]) if s[3] else None
                )
                for fp, s in d.get("fingerprints", {}).items()
            },
        )

    def rebuild(self, events: Iterable[Event]) -> None:
        """Members, keys and alert states from the member events (flat state), oldest first."""
        opened, last = self.opened_at, self.last_seen
        for ev in events:
            self.add(ev)
            self.note_keys(ev.resources.keys())
        self.opened_at, self.last_seen = opened, last
        self.fresh_keys, self.fresh_fps = set(), set()


@dataclass(frozen=True, slots=True)
class PastIncident:
    """What a retired incident leaves for recurrence: a later episode of the same problem within
    `RECURRENCE_HORIZON` of its resolution names it and counts its episodes. Small on purpose: no
    members, no keys (the repositories index it by its keys and fingerprints instead)."""

    id: str
    opened_at: datetime
    resolved_at: datetime
    episodes: tuple[datetime, ...]  # its own earlier episodes within the horizon before it resolved
    kinds: frozenset[str]
    clusters: frozenset[str]
    pods: bool  # whether it had pod members (onset grouping, as for a live incident)

    @classmethod
    def of(cls, inc: Incident) -> PastIncident | None:
        """None for an incident that never resolved (merged away)."""
        if inc.resolved_at is None or inc.merged_into is not None:
            return None
        since = inc.resolved_at - RECURRENCE_HORIZON
        return cls(
            id=inc.id,
            opened_at=inc.opened_at,
            resolved_at=inc.resolved_at,
            episodes=tuple(e for e in inc.earlier_episodes if e >= since),
            kinds=frozenset(inc.kinds),
            clusters=frozenset(inc.agg.names.get("cluster", ())),
            pods=inc.agg.pod_members > 0,
        )

    @staticmethod
    def index_keys(inc: Incident) -> list[str]:
        """The lookup keys a retired incident is found by: its resource keys and its alerts'
        fingerprints (`fingerprint_key`)."""
        return sorted(inc.keys) + sorted(fingerprint_key(fp) for fp in inc.fingerprints)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "opened_at": self.opened_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat(),
            "episodes": [e.isoformat() for e in self.episodes],
            "kinds": sorted(self.kinds),
            "clusters": sorted(self.clusters),
            "pods": self.pods,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PastIncident:
        return cls(
            id=d["id"],
            opened_at=datetime.fromisoformat(d["opened_at"]),
            resolved_at=datetime.fromisoformat(d["resolved_at"]),
            episodes=tuple(datetime.fromisoformat(e) for e in d.get("episodes", ())),
            kinds=frozenset(d.get("kinds", ())),
            clusters=frozenset(d.get("clusters", ())),
            pods=bool(d.get("pods")),
        )


def fingerprint_key(fingerprint: str) -> str:
    """The lookup key of an alert fingerprint among resource keys (no resource key starts so)."""
    return "fingerprint:" + fingerprint


_PHRASES = {
    "pod_oom": "pod OOM-killed",
    "triton_crash": "Triton crash-looping",
    "pod_crash_loop": "pod crash-looping",
    "model_load_failed": "model failed to load",
    "model_unavailable": "model unavailable",
    "high_error_rate": "high error rate",
    "pod_not_ready": "pod not ready",
    "node_not_ready": "node not ready",
    "pod_eviction": "pods evicted",
    "node_drain": "node drained",
    "reduced_capacity": "reduced capacity",
    "deployment_change": "deployment changed",
}


def kind_phrase(kind: str) -> str:
    return _PHRASES.get(kind, kind.replace("_", " "))
