"""Correlation: which incident an event belongs to, and when incidents resolve, reopen and retire.

Pure logic over an `IncidentRepo`: time comes from the events and from the `now` callers pass in,
never from the clock, so a replay behaves exactly as the day it replays."""

from __future__ import annotations

from collections.abc import Container, Set
from dataclasses import dataclass
from datetime import datetime

from ..config import Config
from ..incident import CorrelatedMessage, IncidentAction, IncidentSnapshot, IncidentStatus
from ..model import Event, EventClass, Status
from ..timeutil import parse_ts
from .repo import IncidentRepo
from .state import RECURRENCE_HORIZON, Incident, PastIncident, fingerprint_key, key_weight


@dataclass(frozen=True)
class Outcome:
    """What processing one event (or one tick) did."""

    messages: list[CorrelatedMessage]
    duplicate: bool = False


class Correlator:
    """`lazy`: messages that change an incident carry its action but no snapshot; `snapshot(id)`
    builds it once, for the last message of each incident in a delivery (see coalesce.py)."""

    def __init__(self, config: Config, repo: IncidentRepo, *, lazy: bool = False) -> None:
        self.config = config
        self.repo = repo
        self.lazy = lazy
        self.touched: dict[str, Incident] = {}
        self.chains = config.chains
        self._chain_kinds = config.chain_kinds

    # --- compatibility --------------------------------------------------------------------------
    def compatible(self, kind: str, inc: Incident) -> bool:
        """Some chain explains `kind` together with every kind already in the incident; a kind in no
        chain only groups with its own kind."""
        return self._compatible_kinds(kind, inc.kinds)

    def _compatible_kinds(self, kind: str, present: Set[str]) -> bool:
        kinds = present | {kind}
        if len(kinds) == 1:
            return True
        return any(kinds <= ck for ck in self._chain_kinds)

    def _conflicts(self, ev: Event, inc: Incident) -> bool:
        """Two different pods on different nodes share only a model or deployment. They are one
        problem when they began together (onset grouping: a fleet-wide outage, a storm), two when
        they began apart (independent failures of one model at different times). A deployment-wide
        or model-wide event (no pod of its own) may always join. Nothing joins across clusters: the
        same model, namespace and pod names (a StatefulSet's `triton-0`) recur in every cluster."""
        return self._conflicts_with(ev, _clusters(inc), inc.agg.pod_members > 0, inc.keys, inc.opened_at)

    def _conflicts_with(
        self, ev: Event, clusters: Set[str], pods: bool, keys: Container[str], opened_at: datetime
    ) -> bool:
        """`_conflicts` against an incident's clusters, whether it has pod members, (some of) its
        keys, and its opening: a live incident's or a retired one's (`PastIncident`)."""
        if not _same_cluster({ev.resources.cluster} if ev.resources.cluster else set(), clusters):
            return True
        if not ev.resources.pod:
            return False
        ns = ev.resources.namespace or ""
        pod_key = f"pod:{ns}/{ev.resources.pod}"
        if not pods or pod_key in keys:
            return False
        node_key = f"node:{ev.resources.node}" if ev.resources.node else None
        if node_key is not None and node_key in keys:
            return False
        return not self._began_at(ev, opened_at)

    def _began_together(self, ev: Event, inc: Incident) -> bool:
        return self._began_at(ev, inc.opened_at)

    def _began_at(self, ev: Event, opened_at: datetime) -> bool:
        onset = ev.started_at or ev.occurred_at
        return abs(onset - opened_at) <= self.config.correlation.onset_window

    def _same_episode_live(self, inc: Incident, ev: Event) -> bool:
        """Whether `inc` is where another event of the same alert (fingerprint) belongs.

        The same episode (same start) always belongs to it: that is its repeat or its resolution.
        A new episode reopens or continues it only within the reopen window of its activity."""
        state = inc.fingerprints.get(ev.fingerprint)
        if state is not None and state.started is not None and state.started == ev.started_at:
            return True
        if not inc.open_at(ev.occurred_at):
            # NOTE: once an incident has resolved, a new episode of the same alert is a recurrence
            # (a new incident naming this one), and the end of an episode it never saw reopens nothing.
            return False
        if ev.status is Status.resolved:
            if state is None or state.started is None:
                return True  # sources without episodes: a resolution closes the alert it names
            return self._live_at(inc, ev.occurred_at)
        return self._live_at(inc, ev.occurred_at, same_alert=True)

    def _node_event_near(self, inc: Incident, ev: Event) -> bool:
        """A node is shared by many pods: sharing only the node joins an incident only when the
        incident is about the node itself (a node-scoped member: NotReady, cordon, kernel OOM kill)
        at about the same time. Two pods failing on one node an hour apart are two problems."""
        near = self.config.correlation.node_window.total_seconds()
        node = ev.resources.node
        # NOTE: symmetric, so arrival order does not matter: a pod event joins a node event nearby,
        # and a node event joins the pod events on that node nearby.
        return node is not None and inc.agg.near(node, ev.occurred_at, near, node_scoped_only=bool(ev.resources.pod))

    def _live_at(self, inc: Incident, at: datetime, same_alert: bool = False) -> bool:
        """Whether an event at `at` may still join `inc`.

        A new episode of an alert already in the open incident (flapping) joins within the reopen
        window of its activity; other events must come within the correlation window. An alert left
        firing, or whose resolution was lost, must not make its incident swallow every later problem
        on the same pod, node or deployment hours later."""
        c = self.config.correlation
        if same_alert:
            return inc.opened_at - c.reopen_window <= at <= inc.last_seen + c.reopen_window
        return inc.opened_at - c.window <= at <= inc.last_seen + c.window

    # --- one event ------------------------------------------------------------------------------
    def process(self, ev: Event, now: datetime) -> Outcome:
        if self.repo.seen(ev.id):
            return self._redelivered(ev)
        messages = self.tick(now)
        if ev.suppressed and ev.cls is EventClass.alert:
            self._hold_or_release(ev)
        if ev.cls is EventClass.info or ev.suppressed:
            self.repo.record_event(ev, None)
            messages.append(CorrelatedMessage(event=ev))
            return Outcome(messages)

        candidates = self._candidates(ev)
        inc = candidates[0] if candidates else None
        if inc is not None and len(candidates) > 1:
            messages.extend(self._merge(ev, candidates))
            inc = candidates[0]
        action: IncidentAction
        if inc is None and (ev.kind in self.config.correlation.join_only or not self._persists(ev)):
            self.repo.record_event(ev, None)
            messages.append(CorrelatedMessage(event=ev))
            return Outcome(messages)
        if inc is None:
            inc = Incident(id=self.repo.new_id(ev), opened_at=ev.occurred_at, last_seen=ev.occurred_at)
            self._link_recurrence(inc, ev)
            action = IncidentAction.opened
        elif inc.is_resolved and (
            inc.open_at(ev.occurred_at) or (ev.cls is EventClass.alert and ev.status is Status.firing)
        ):
            # NOTE: an event from before the resolution (late in transit) shows it came too early;
            # the same episode still firing (after going stale) shows it is not over.
            inc.status = IncidentStatus.open
            inc.resolved_at = None
            action = IncidentAction.reopened
        else:
            action = IncidentAction.updated
        was_change = not inc.has_alerts
        inc.add(ev)
        inc.note_keys(ev.resources.keys())
        if action is IncidentAction.updated and was_change and inc.has_alerts:
            # NOTE: a change record that alerts join becomes an incident: that is the moment to page.
            action = IncidentAction.opened
        inc.version += 1
        snap = self._snap(inc)
        self.repo.save(inc, self.next_check(inc), snap)
        self.repo.record_event(ev, inc.id)
        messages.append(CorrelatedMessage(event=ev, incident_id=inc.id, action=action, incident=snap))
        return Outcome(messages)

    def _redelivered(self, ev: Event) -> Outcome:
        """NOTE: a redelivery may follow a crash between commit and publish: publish the incident as it
        stands again (consumers are idempotent on version), never change it twice."""
        iid = self.repo.incident_of(ev.id)
        inc = self.repo.get(iid) if iid else None
        snap = inc.snapshot(self.chains, self.config.response) if inc else None
        return Outcome([CorrelatedMessage(event=ev, incident_id=iid, incident=snap)], duplicate=True)

    def _hold_or_release(self, ev: Event) -> None:
        """A firing alert silenced by maintenance is held until the window ends (then it is a
        problem if still firing); its resolution releases it."""
        until = parse_ts(ev.labels.get("maintenance_until"))
        if ev.status is Status.firing and until is not None:
            self.repo.hold(ev, until)
        else:
            self.repo.release(ev.fingerprint)

    def _persists(self, ev: Event) -> bool:
        """Whether a Kubernetes Warning event may open an incident (correlation.persistence): its
        Event repeated often enough, or lasted long enough; any other event may."""
        if not ev.source.startswith("k8s-event"):
            return True
        rule = self.config.correlation.persistence_of(ev.kind, ev.signal)
        if rule is None:
            return True
        if rule.count is not None and int(ev.labels.get("count") or 1) >= rule.count:
            return True
        first = parse_ts(ev.labels.get("first_seen"))
        return rule.for_ is not None and first is not None and ev.occurred_at - first >= rule.for_

    def _snap(self, inc: Incident) -> IncidentSnapshot | None:
        self.touched[inc.id] = inc
        return None if self.lazy else inc.snapshot(self.chains, self.config.response)

    def snapshot(self, incident_id: str) -> IncidentSnapshot:
        """The snapshot of an incident this correlator changed, as it stands now."""
        inc = self.touched[incident_id]
        built = getattr(self.repo, "built", {}).get(incident_id)
        if built is not None and built.version == inc.version:
            return built
        return inc.snapshot(self.chains, self.config.response)

    def merged_into(self, incident_id: str) -> str | None:
        """Where an incident this correlator changed was folded, if it was."""
        inc = self.touched.get(incident_id)
        return inc.merged_into if inc is not None else None

    def _candidates(self, ev: Event) -> list[Incident]:
        """Incidents `ev` may join, best first: incidents open at the event's time, or the resolved
        incident of the very episode it continues."""
        same = self.repo.by_fingerprint(ev.fingerprint)
        mine = {ev.resources.cluster} if ev.resources.cluster else set()
        if same is not None and not _same_cluster(mine, _clusters(same)):
            same = None  # NOTE: one fingerprint in two clusters (a sender that names none): two alerts
        if same is not None and not self._same_episode_live(same, ev):
            same = None
        if same is not None and same.open_at(ev.occurred_at):
            return [same]
        scored: list[tuple[tuple[int, ...], Incident]] = []
        if same is not None:
            # NOTE: the same episode continues its resolved incident, unless an open incident on the
            # same resources explains it better (a node failure after a load failure healed).
            scored.append(((0, 0, 0, 0, 0, 0), same))
        for inc, shared in self._related(ev, exclude=same):
            if not inc.open_at(ev.occurred_at):
                continue
            resolving = inc.has_alerts and inc.firing == 0
            score = (
                1,
                0 if resolving else 1,
                max(key_weight(k) for k in shared),
                len(shared),
                int(inc.last_seen.timestamp()),
                -int(inc.opened_at.timestamp()),
            )
            scored.append((score, inc))
        # NOTE: the incident id breaks ties, so the choice never depends on lookup order.
        scored.sort(key=lambda x: (x[0], x[1].id), reverse=True)
        return [inc for _, inc in scored]

    def _related(
        self, ev: Event, exclude: Incident | None = None, *, anytime: bool = False, closed_only: bool = False
    ) -> list[tuple[Incident, list[str]]]:
        """Live incidents sharing resources with `ev` that one problem could explain together with
        it, each with the keys they share; near the event in time unless `anytime`; only those no
        longer open at the event's time if `closed_only`."""
        keys = ev.resources.keys()
        out = []
        for inc in self.repo.by_keys(keys):
            if inc is exclude or not (anytime or self._live_at(inc, ev.occurred_at)):
                continue
            if closed_only and inc.open_at(ev.occurred_at):
                continue
            if not self.compatible(ev.kind, inc):
                continue
            if self._conflicts(ev, inc):
                continue
            shared = [k for k in keys if k in inc.keys]
            if all(k.startswith(("node:", "nodepool:")) for k in shared) and not self._infra_near(inc, ev, shared):
                continue
            out.append((inc, shared))
        return out

    def _infra_near(self, inc: Incident, ev: Event, shared: list[str]) -> bool:
        """Sharing only a node (or node pool) joins near a node-scoped member; a node pool whose nodes
        fail together (NotReady within the onset window) is one problem."""
        if any(k.startswith("node:") for k in shared) and self._node_event_near(inc, ev):
            return True
        node = ev.resources.node
        if ev.cls is EventClass.change and not ev.resources.pod and node and inc.agg.node_scoped_times.get(node):
            # NOTE: a change to the node itself (the uncordon ending a drain) belongs to the incident
            # about that node within the correlation window, not only within node_window; a second
            # failure on the node (another OOM kill) is still a problem of its own.
            return True
        node_scoped = not ev.resources.pod and inc.agg.pod_members == 0
        return node_scoped and any(k.startswith("nodepool:") for k in shared) and self._began_together(ev, inc)

    def _link_recurrence(self, inc: Incident, ev: Event) -> None:
        """A new episode of a problem whose incident has resolved names that incident, and counts the
        episodes before it within the last 24 hours."""
        t = ev.occurred_at
        prior = self.repo.by_fingerprint(ev.fingerprint)
        if prior is None or prior.open_at(t):
            # NOTE: open incidents are passed over before the costlier checks: in a storm every
            # incident a new pod's alert shares a node with is open.
            resolved = self._related(ev, anytime=True, closed_only=True)
            # NOTE: the same pod, deployment or model, not merely the same node.
            resolved = [(i, s) for i, s in resolved if any(not k.startswith(("node:", "nodepool:")) for k in s)]
            prior = max(resolved, key=lambda x: (x[0].resolved_at or x[0].last_seen, x[0].id))[0] if resolved else None
        since = t - RECURRENCE_HORIZON
        if (
            prior is not None
            and prior.resolved_at is not None
            and prior.resolved_at <= t <= prior.resolved_at + RECURRENCE_HORIZON
        ):
            # NOTE: not retired yet (its retirement waits for the next tick) does not mean recent.
            inc.recurrence_of = prior.id
            inc.earlier_episodes = [e for e in (*prior.earlier_episodes, prior.opened_at) if e >= since][-50:]
            return
        # NOTE: incidents retire `recurrence_window` after they resolved; what a retired one leaves
        # (PastIncident) names it for a recurrence up to 24 hours after its resolution, by the same
        # rules as above (the same alert first, else the same pod, deployment or model).
        past = self._past_recurrence(ev)
        if past is not None:
            inc.recurrence_of = past.id
            inc.earlier_episodes = [e for e in (*past.episodes, past.opened_at) if e >= since][-50:]

    def _past_recurrence(self, ev: Event) -> PastIncident | None:
        """The latest retired incident a new episode `ev` recurs, resolved within 24 hours before it."""
        t = ev.occurred_at
        keys = ev.resources.keys()
        fp_key = fingerprint_key(ev.fingerprint)
        found = self.repo.past([fp_key, *keys])

        def recent(p: PastIncident) -> bool:
            return p.resolved_at <= t <= p.resolved_at + RECURRENCE_HORIZON

        same = [p for p in found.get(fp_key, ()) if recent(p)]
        if same:
            return max(same, key=lambda p: (p.resolved_at, p.id))
        shared: dict[str, tuple[PastIncident, set[str]]] = {}
        for k in keys:
            for p in found.get(k, ()):
                if recent(p):
                    shared.setdefault(p.id, (p, set()))[1].add(k)
        related = [
            p
            for p, ks in shared.values()
            if any(not k.startswith(("node:", "nodepool:")) for k in ks)
            and self._compatible_kinds(ev.kind, p.kinds)
            and not self._conflicts_with(ev, p.clusters, p.pods, ks, p.opened_at)
        ]
        return max(related, key=lambda p: (p.resolved_at, p.id)) if related else None

    def _merge(self, ev: Event, candidates: list[Incident]) -> list[CorrelatedMessage]:
        """An event tying several open incidents together, when one chain explains them all, shows
        they are one problem seen from different resources first: fold them into one."""
        group = [i for i in candidates if not i.is_resolved]
        kinds = {ev.kind}
        for inc in group:
            kinds |= inc.kinds
        if len(group) < 2 or not any(kinds <= ck for ck in self._chain_kinds):
            return []
        # NOTE: the biggest survives (then the oldest): in a storm, the incident already announced
        # absorbs the one a new pod just opened, so no page is sent for a moment's fragment.
        group.sort(key=lambda i: (-i.size, i.opened_at, i.id))
        keep = group[0]
        # NOTE: an event naming no cluster (a log line, an audit record) may relate to incidents of
        # two clusters; it joins the first and ties nothing across clusters.
        rest = [i for i in group[1:] if _same_cluster(_clusters(keep), _clusters(i))]
        if not rest:
            return []
        out = []
        for other in rest:
            keep.absorb(other)
            other.merged_into = keep.id
            other.version += 1
            self.repo.merge_away(other)
            out.append(
                CorrelatedMessage(
                    event=ev, incident_id=other.id, action=IncidentAction.merged, incident=self._snap(other)
                )
            )
        candidates[:] = [keep]
        return out

    # --- lifecycle ------------------------------------------------------------------------------
    def next_check(self, inc: Incident) -> datetime:
        """When the lifecycle looks at `inc` next: resolve when quiet or stale, retire when settled."""
        c = self.config.correlation
        if inc.is_resolved and inc.resolved_at is not None:
            return inc.resolved_at + c.recurrence_window
        if inc.firing > 0:
            # NOTE: nothing can change a firing incident but a new event (which reschedules it) or
            # going stale, so it is not looked at every quiet period.
            return inc.last_seen + c.stale_after
        return inc.last_seen + c.quiet_period

    def tick(self, now: datetime, settle: datetime | None = None) -> list[CorrelatedMessage]:
        """Resolve incidents that went quiet by `now`, and retire those past their reopen window by
        `settle` (event time; `now` by default).

        NOTE: an incident resolves *at* the time it went quiet (its due time), not at the time this
        tick happens to run, so whether a later event finds it open depends on event times alone."""
        out: list[CorrelatedMessage] = []
        settle = now if settle is None else min(settle, now)
        for held in self.repo.held_due(now):
            # NOTE: still firing when its maintenance window ended: it is a real problem now.
            labels = {k: v for k, v in held.labels.items() if not k.startswith("maintenance")}
            labels["after_maintenance"] = held.labels.get("maintenance", "")
            revived = held.model_copy(
                update={"id": held.id + ":after-maintenance", "suppressed": False, "labels": labels, "received_at": now}
            )
            out.extend(self.process(revived, now).messages)
        for inc in self.repo.due(now):
            due = self.next_check(inc)
            if inc.is_resolved:
                if settle >= due:
                    self.repo.retire(inc)
                else:
                    self.repo.reschedule(inc, due)
                continue
            if now < due:
                self.repo.reschedule(inc, due)
                continue
            inc.status = IncidentStatus.resolved
            inc.resolved_at = due
            inc.version += 1
            snap = self._snap(inc)
            self.repo.save(inc, self.next_check(inc), snap)
            out.append(
                CorrelatedMessage(
                    event=_lifecycle_event(inc, due), incident_id=inc.id, action=IncidentAction.resolved, incident=snap
                )
            )
        return out


def _lifecycle_event(inc: Incident, now: datetime) -> Event:
    """A synthetic event that carries an incident's own lifecycle change through the topics."""
    from ..model import Severity

    return Event(
        id=f"lifecycle:{inc.id}:{inc.version}",
        fingerprint=f"incident:{inc.id}",
        source="eventmgmt",
        signal="IncidentResolved",
        kind="incident_resolved",
        cls=EventClass.info,
        severity=Severity.info,
        status=Status.resolved,
        occurred_at=now,
        received_at=now,
        summary=f"incident {inc.id} resolved",
    )


def _clusters(inc: Incident) -> set[str]:
    return set(inc.agg.names.get("cluster", ()))


def _same_cluster(a: Set[str], b: Set[str]) -> bool:
    """Whether two sets of cluster names can be one problem: either names none, or they share one."""
    return not a or not b or not a.isdisjoint(b)
