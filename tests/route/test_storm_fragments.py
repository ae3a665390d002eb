"""A storm grouped by alertname (every pod's crash loop first, each opening a fragment; then every
error rate, folding each fragment into its model's incident) costs route no ledger write per
fragment: an incident seen the first time waits for its first page after a read, and one folded
away while it waited is owed nothing by the receivers it waited for. An incident that resolved
while its first page waited is still recorded (a catch-up after a restart must not page it)."""

from __future__ import annotations

import time

from eventmgmt.incident import CorrelatedMessage, IncidentAction, IncidentStatus
from eventmgmt.route.decide import RESOLVED, TRIGGERED
from tests.correlate.helpers import ev
from tests.route.test_held_first_page import setup, triggers
from tests.support.httpsink import http_sink


def told(router, incident_id: str) -> str:  # type: ignore[no-untyped-def]
    return {r.incident_id: r.state for r in router.ledger.rows()}.get(incident_id, "nothing")


def announced(messages: list[CorrelatedMessage]) -> list[CorrelatedMessage]:
    return [m for m in messages if m.incident is not None]


def test_a_new_incident_waits_for_its_first_page_without_a_ledger_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with http_sink() as sink:
        stage, router = setup(sink, tmp_path, wait=0.5)
        (first,) = announced(stage.process(ev("high_error_rate", 0, pod="triton-bert-0001", model="bert")))
        assert router.route(first) == []
        assert router.ledger.rows() == []  # nothing written while it waits
        time.sleep(0.6)
        assert router.release_waiting() == 1
        assert triggers(sink) == [first.incident_id]
        assert told(router, first.incident_id) == TRIGGERED


def test_a_fragment_folded_away_while_its_first_page_waited_leaves_no_ledger_row(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with http_sink() as sink:
        stage, router = setup(sink, tmp_path, wait=0.5)
        # NOTE: one delivery each, as a storm's webhooks: the fragment is announced before it folds
        crash = announced(stage.process(ev("triton_crash", 0, pod="triton-bert-0001", node="n1", fp="c1")))
        model = announced(
            stage.process(ev("high_error_rate", 0, pod="triton-bert-0002", node="n2", model="bert", fp="e2"))
        )
        folding = announced(
            stage.process(ev("high_error_rate", 0.1, pod="triton-bert-0001", node="n1", model="bert", fp="e1"))
        )
        merged = [m for m in folding if m.incident is not None and m.incident.merged_into]
        assert len(merged) == 1, [(m.incident_id, m.action) for m in folding]
        fragment, survivor = merged[0].incident_id, merged[0].incident.merged_into  # type: ignore[union-attr]
        for m in [*crash, *model, *folding]:
            router.route(m)
        assert told(router, fragment) == "nothing"  # no write for it, ever
        assert fragment not in router._waiting
        time.sleep(0.6)
        router.release_waiting()
        assert triggers(sink) == [survivor]
        assert {r.incident_id for r in router.ledger.rows()} == {survivor}


def test_an_incident_that_resolved_while_its_first_page_waited_is_recorded_not_paged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with http_sink() as sink:
        stage, router = setup(sink, tmp_path, wait=30)
        (first,) = announced(stage.process(ev("high_error_rate", 0, pod="triton-bert-0001", model="bert")))
        router.route(first)
        assert first.incident is not None
        gone = first.incident.model_copy(
            update={"status": IncidentStatus.resolved, "version": first.incident.version + 1}
        )
        router.route(first.model_copy(update={"incident": gone}))
        assert triggers(sink) == []
        assert told(router, first.incident_id) == RESOLVED  # NOTE: a catch-up finds it told, and pages nothing


def test_an_incident_just_opened_is_not_even_read_from_the_ledger(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Correlation opened it in this message: nobody was told of its new id. An incident route first
    sees in a later version (after a restart) is read, since a receiver may know it already."""
    with http_sink() as sink:
        stage, router = setup(sink, tmp_path, wait=30)
        reads: list[str] = []
        read = router.ledger.told
        router.ledger.told = lambda r, i: (reads.append(i), read(r, i))[1]  # type: ignore[method-assign]
        (opened,) = announced(stage.process(ev("high_error_rate", 0, pod="triton-bert-0001", model="bert")))
        assert opened.action is IncidentAction.opened
        router.route(opened)
        assert reads == []
        (update,) = announced(stage.process(ev("high_error_rate", 0.1, pod="triton-bert-0002", model="bert")))
        assert update.action is IncidentAction.updated and update.incident_id == opened.incident_id
        fresh = setup(sink, tmp_path / "restarted", wait=30)[1]  # NOTE: a route that never saw it
        fresh.ledger.told = router.ledger.told  # type: ignore[method-assign]
        fresh.route(update)
        assert reads and set(reads) == {opened.incident_id}  # one read a receiver
        assert triggers(sink) == []
