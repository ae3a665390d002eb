"""One delivery's correlated messages, as route and archive should see them.

A storm webhook of 100 alerts used to publish 100 snapshots of the same incident, and an incident
opened for one pod and folded into its model's incident a few alerts later was paged, then merged.
After a delivery is correlated, each incident it touched is announced once, as it stands at the end
of the delivery; an incident that was opened and merged away within the delivery is never announced.
Every event keeps one message of its own (archive stores each one), and no event has two that say
the same thing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..incident import CorrelatedMessage, IncidentAction, IncidentSnapshot

# NOTE: what a delivery did to an incident, strongest first: a page is owed for an opening even when
# later events of the same delivery only updated it.
_STRENGTH = [IncidentAction.opened, IncidentAction.reopened, IncidentAction.merged, IncidentAction.resolved]


def coalesce(
    messages: list[CorrelatedMessage],
    snapshot: Callable[[str], IncidentSnapshot] | None = None,
    merged_into: Callable[[str], str | None] | None = None,
) -> list[CorrelatedMessage]:
    """`snapshot(id)` gives the final snapshot of an incident whose messages carry an action but no
    snapshot (a lazy correlator's); `merged_into(id)`, where an incident went, without building the
    snapshot of each fragment a storm folds away."""

    def snap_of(m: CorrelatedMessage) -> IncidentSnapshot | None:
        if m.incident is not None or m.incident_id is None or m.action is None or snapshot is None:
            return m.incident
        return snapshot(m.incident_id)

    seen = _scan(messages, snap_of, merged_into)
    merged_to, actions, last = seen.merged_to, seen.actions, seen.last
    vanished = {iid for iid in merged_to if iid in seen.opened}
    out = []
    for i, m in enumerate(messages):
        iid = m.incident_id
        if iid is None:
            out.append(m)
            continue
        final = _follow(iid, merged_to) if iid in vanished else iid
        if iid in vanished or last.get(iid) != i:
            out.append(m.model_copy(update={"incident_id": final, "incident": None, "action": None}))
            continue
        done = actions.get(iid, set())
        action = next((a for a in _STRENGTH if a in done), m.action)
        snap = snap_of(m)
        out.append(
            m
            if action is m.action and snap is m.incident
            else m.model_copy(update={"action": action, "incident": snap})
        )
    return _one_bare_message_per_event(out)


def _one_bare_message_per_event(messages: list[CorrelatedMessage]) -> list[CorrelatedMessage]:
    """The event that folds a fragment away has two messages (the merge's and its own); once the
    fragment vanished, the merge's says nothing its own does not: drop it, so route and archive get
    each event once (in a storm, half the events were published twice)."""
    announcing = {m.event.id for m in messages if m.action is not None or m.incident is not None}
    seen: set[str] = set()
    out = []
    for m in messages:
        bare = m.action is None and m.incident is None
        if bare and (m.event.id in announcing or m.event.id in seen):
            continue
        seen.add(m.event.id)
        out.append(m)
    return out


@dataclass
class _Seen:
    """What a transaction's messages did: where each merged incident went, which were opened, each
    incident's actions, and the index of its last message."""

    merged_to: dict[str, str] = field(default_factory=dict)
    opened: set[str] = field(default_factory=set)
    actions: dict[str, set[IncidentAction]] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)


def _scan(
    messages: list[CorrelatedMessage],
    snap_of: Callable[[CorrelatedMessage], IncidentSnapshot | None],
    into: Callable[[str], str | None] | None,
) -> _Seen:
    seen = _Seen()
    for i, m in enumerate(messages):
        if m.incident_id is None or (m.incident is None and m.action is None):
            continue
        seen.last[m.incident_id] = i
        if m.action is not None:
            seen.actions.setdefault(m.incident_id, set()).add(m.action)
            if m.action is IncidentAction.opened:
                seen.opened.add(m.incident_id)
        if m.action is IncidentAction.merged:
            if m.incident is None and into is not None:
                target = into(m.incident_id)
            else:
                merged = snap_of(m)
                target = merged.merged_into if merged is not None else None
            if target:
                seen.merged_to[m.incident_id] = target
    return seen


def _follow(iid: str, merged_into: dict[str, str]) -> str:
    seen = {iid}
    while iid in merged_into and merged_into[iid] not in seen:
        iid = merged_into[iid]
        seen.add(iid)
    return iid
