"""The pure decision, table-driven: what the ledger says a receiver was told, against a new state."""

from __future__ import annotations

import pytest

from eventmgmt.route.config import Receiver
from eventmgmt.route.decide import Decision, Told, first_owed, needs_send

PD = Receiver(name="pd", type="pagerduty")
CHANGE = Receiver(name="cab", type="change")


@pytest.mark.parametrize(
    ("told", "version", "state", "receiver", "decision"),
    [
        (Told(), 1, "triggered", PD, Decision.send),  # first page
        (Told("triggered", 1), 4, "triggered", PD, Decision.skip),  # an update: already paged
        (Told("triggered", 1), 5, "resolved", PD, Decision.send),
        (Told("resolved", 5), 1, "triggered", PD, Decision.skip),  # a stale snapshot arriving late
        (Told("resolved", 5), 5, "resolved", PD, Decision.skip),  # a redelivery
        (Told("resolved", 5), 7, "triggered", PD, Decision.send),  # reopened
        (Told(), 3, "resolved", PD, Decision.record),  # never paged: nothing to resolve
        (Told(), 3, "acknowledged", PD, Decision.record),
        (Told("triggered", 1), 2, "acknowledged", PD, Decision.send),
        (Told(), 1, "linked", CHANGE, Decision.send),
        (Told("linked", 1), 2, "linked", CHANGE, Decision.skip),
    ],
)
def test_needs_send(told: Told, version: int, state: str, receiver: Receiver, decision: Decision) -> None:
    assert needs_send(told, version, state, receiver) is decision


@pytest.mark.parametrize(
    ("told_nothing", "state", "owed"),
    [(True, "triggered", "triggered"), (True, "resolved", None), (False, "triggered", None)],
)
def test_outbox_owes_the_trigger_only_of_a_receiver_told_nothing(told_nothing: bool, state: str, owed: str | None):
    assert first_owed(told_nothing, state) == owed
