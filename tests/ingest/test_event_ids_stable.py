"""An event's id is what makes a retried delivery a duplicate, so it must not change between
versions: an Alertmanager alert's id is the SHA-256 of its identity written as a JSON list
(source, fingerprint, startsAt, status, and the ingest's own cluster when the alert names it),
whether ingest checks the delivery (the queued accept) or parses it (the drain, replay)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from eventmgmt.sources import ParseContext, check_delivery, parse_delivery

RECEIVED = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def spec_id(*identity: str) -> str:
    text = json.dumps(["alertmanager", *identity], separators=(",", ":"))
    return "alertmanager:" + hashlib.sha256(text.encode()).hexdigest()[:24]


def alert(**over: Any) -> dict[str, Any]:
    a = {
        "status": "firing",
        "labels": {"alertname": "TritonHighErrorRate", "pod": "triton-0", "model": "llm"},
        "startsAt": "2026-11-28T01:59:00.5Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "a1b2c3d4e5f60718",
    }
    a.update(over)
    return {k: v for k, v in a.items() if v is not None}


def ids(alerts: list[dict[str, Any]], cluster: str | None = None) -> tuple[list[str], list[str]]:
    """The ids the check answers and the ids parsing builds; the check is the same whether its
    delivery's text needs walking or not."""
    body = {"version": "4", "status": "firing", "alerts": alerts}
    walked, fast = (
        check_delivery("alertmanager", body, ParseContext("cap", RECEIVED, cluster, check_text=walk))
        for walk in (True, False)
    )
    assert walked is not None and fast is not None and walked.ids == fast.ids and walked.good == fast.good
    return fast.ids, [e.id for e in parse_delivery("alertmanager", body, ParseContext("cap", RECEIVED, cluster)).events]


@pytest.mark.parametrize(
    ("over", "identity"),
    [
        ({}, ("a1b2c3d4e5f60718", "2026-11-28T01:59:00.5Z", "firing")),
        ({"status": "resolved"}, ("a1b2c3d4e5f60718", "2026-11-28T01:59:00.5Z", "resolved")),
        # NOTE: without its own status, an alert whose endsAt has passed is resolved
        (
            {"status": None, "endsAt": "2026-11-28T01:59:30Z"},
            ("a1b2c3d4e5f60718", "2026-11-28T01:59:00.5Z", "resolved"),
        ),
    ],
)
def test_id_is_the_digest_of_the_alerts_identity(over: dict[str, Any], identity: tuple[str, ...]) -> None:
    checked, parsed = ids([alert(**over)])
    assert checked == parsed == [spec_id(*identity)]


def test_without_a_fingerprint_the_labels_digest_stands_for_it() -> None:
    labels = {"alertname": "TritonHighErrorRate", "pod": "triton-0", "model": "llm"}
    fp = hashlib.sha256(json.dumps([sorted(labels.items())], separators=(",", ":")).encode()).hexdigest()[:16]
    checked, parsed = ids([alert(fingerprint=None)])
    assert checked == parsed == [spec_id(fp, "2026-11-28T01:59:00.5Z", "firing")]


def test_the_ingests_own_cluster_is_part_of_the_identity_when_the_alert_names_it() -> None:
    mine = alert(labels={"alertname": "X", "cluster": "east"})
    other = alert(labels={"alertname": "X", "cluster": "west"})
    unnamed = alert(labels={"alertname": "X"})
    checked, parsed = ids([mine, other, unnamed], cluster="east")
    base = ("a1b2c3d4e5f60718", "2026-11-28T01:59:00.5Z", "firing")
    # NOTE: an alert without a cluster label is the ingest's cluster too (its resources say so)
    assert checked == parsed == [spec_id(*base, "east"), spec_id(*base), spec_id(*base, "east")]
