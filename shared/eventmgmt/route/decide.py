"""What a receiver should know of an incident, and whether it must be told: pure, no I/O. The
ledger (ledger.py) remembers what each receiver was told; this module only compares, as
Alertmanager's DedupStage.needsUpdate reads its notification log and decides."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..incident import IncidentSnapshot, IncidentStatus
from .config import Receiver

NOTHING = "none"  # the ledger's state before a receiver was told anything
TRIGGERED = "triggered"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
LINKED = "linked"
# States after which a receiver is owed nothing more unless the incident comes back (reopens).
FINAL = (RESOLVED, LINKED)


class Decision(Enum):
    skip = "skip"  # the receiver knows this state already, or a newer snapshot's
    record = "record"  # nothing to send, but the ledger takes the state (see needs_send)
    send = "send"


@dataclass(frozen=True)
class Told:
    """What the ledger says a receiver was told of one incident: a state, at a snapshot version."""

    state: str = NOTHING
    version: int = 0


def desired_state(snap: IncidentSnapshot, receiver: Receiver) -> str | None:
    """What `receiver` should know about `snap` now; None when it is not this receiver's business."""
    if receiver.type == "change":
        return LINKED if snap.changes else None
    if snap.kind != "incident":
        return None
    if snap.merged_into is not None or snap.status is IncidentStatus.resolved:
        return RESOLVED
    if snap.status is IncidentStatus.acknowledged:
        return ACKNOWLEDGED
    return TRIGGERED


def needs_send(told: Told, version: int, state: str, receiver: Receiver) -> Decision:
    """Whether telling `receiver` that the incident (at snapshot `version`) is in `state` is news."""
    if version < told.version or told.state == state:
        return Decision.skip
    if told.state == NOTHING and state in (RESOLVED, ACKNOWLEDGED) and receiver.type != "change":
        # NOTE: nothing was ever sent for it: there is nothing to acknowledge or resolve
        return Decision.record
    return Decision.send


def needs_owed_trigger(told: Told, version: int, state: str, receiver: Receiver) -> Decision:
    """Catching up from the state store on an incident acknowledged or resolved since: a receiver
    told nothing of it is still owed the trigger (`state`) first, as the outbox owes it, so the
    incident is recorded there however quickly it came and went."""
    owed = state == TRIGGERED and receiver.type != "change" and told.state == NOTHING
    return Decision.send if owed and version >= told.version else Decision.skip


def owes_trigger_first(state: str) -> bool:
    return state in (ACKNOWLEDGED, RESOLVED)


def first_owed(told_nothing: bool, state: str) -> str | None:
    """The state an outbox entry owes before its newest one: the trigger, when the first state that
    could not be delivered was a trigger to a receiver told nothing yet."""
    return TRIGGERED if told_nothing and state == TRIGGERED else None
