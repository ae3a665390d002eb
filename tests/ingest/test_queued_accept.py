"""Storm accept (issue 16): an Alertmanager webhook is answered once its alerts are checked and the
delivery is queued as received; its events are built behind the answer. Proven here:

- the check refuses exactly the records the parser refuses (same index, field, error) and names the
  ids of exactly the events the parser builds, in order, with or without an ingest cluster;
- a checked delivery queued (delivery_messages), read back (read_delivery) and parsed part by part
  yields exactly the events of parsing it whole: raw text embedded, refused records queued as null,
  a delivery cut in parts, a raw body that cannot be embedded as it is;
- over HTTP, in the embedded runtime, the 202 names the ids that are stored once the queue drains,
  the ingest counters count what was built, and the configured filters still drop behind the answer;
- a queued row that is not a delivery is retried, then dead-lettered, and the queue goes on; a row
  that is not even JSON is set aside at once;
- stable_hash's fast path for strings digests the same text the JSON encoder writes.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from eventmgmt.config import parse_config
from eventmgmt.ingest.queued import DELIVERIES, delivery_messages, read_delivery
from eventmgmt.model import stable_hash
from eventmgmt.runtime.app import Runtime, build_runtime, create_app
from eventmgmt.runtime.drain import Drainer, hand_on
from eventmgmt.settings import Settings
from eventmgmt.sources import Checked, ParseContext, check_delivery, parse_delivery
from eventmgmt.sources.base import may_hold_bad_text
from eventmgmt.sources.limits import DEFAULT as LIMITS
from eventmgmt.store.tables import EventRow
from eventmgmt.transport.publisher import EncodedMessage
from tests.support.incidents import wait_drained

SRC = "alertmanager"
NOW = datetime.now(UTC).replace(microsecond=0)
STARTS = NOW.isoformat().replace("+00:00", "Z")
SURROGATE = "SURROGATE"  # placeholder for a lone surrogate escape in raw JSON text


def alert(name: str, **over: Any) -> dict[str, Any]:
    a: dict[str, Any] = {
        "status": "firing",
        "startsAt": STARTS,
        "fingerprint": f"fp-{name}",
        "labels": {"alertname": "TritonHighErrorRate", "severity": "critical", "model": "bert", "pod": name},
        "annotations": {"summary": f"errors on {name}"},
    }
    a.update(over)
    return a


def webhook(*alerts: Any, status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "status": status, "receiver": "eventmgmt", "groupKey": "{}:{}", "alerts": list(alerts)}


def raw_json(body: Any) -> str:
    """JSON text of `body` with each SURROGATE placeholder a lone surrogate escape (\\ud800)."""
    return json.dumps(body).replace(SURROGATE, "\\ud800")


def context(*, cluster: str | None = None, check_text: bool = True, first_index: int = 0) -> ParseContext:
    return ParseContext("cap-1", NOW, cluster, check_text=check_text, first_index=first_index)


def dumps(events: list) -> list[dict[str, Any]]:
    return [ev.model_dump() for ev in events]


def queued_and_parsed(body: dict[str, Any], ctx: ParseContext, checked: Checked, raw: bytes | None = None, **kw: Any):
    """The delivery's queued messages, and each one as the drain reads it back and parses it."""
    messages = delivery_messages(SRC, body, ctx, checked, raw, **kw)
    parts = [read_delivery(json.loads(m.payload), LIMITS) for m in messages]
    return messages, parts, [parse_delivery(p.source, p.body, p.ctx) for p in parts]


def assert_round_trip(body: dict[str, Any], ctx: ParseContext, raw: bytes | None = None, **kw: Any):
    """Queued, read back and parsed part by part, the delivery yields exactly what parsing it whole
    yields; each part refuses again only what was already refused (and answered)."""
    whole = parse_delivery(SRC, body, ctx)
    checked = check_delivery(SRC, body, ctx)
    assert checked is not None
    messages, parts, parsed = queued_and_parsed(body, ctx, checked, raw, **kw)
    assert dumps([ev for p in parsed for ev in p.events]) == dumps(whole.events)
    assert [ev.id for p in parsed for ev in p.events] == checked.ids
    for part, got in zip(parts, parsed, strict=True):
        assert {r.index for r in got.rejected} == part.refused
        assert part.source == SRC and part.ctx.capture_id == ctx.capture_id and part.ctx.received_at == ctx.received_at
        assert part.ctx.cluster == ctx.cluster and part.ctx.check_text == ctx.check_text
    assert [m.events for m in messages] == [len(p.events) for p in parsed]
    assert all(m.attributes == {"source": SRC, "capture": ctx.capture_id} for m in messages)
    return messages, parts, parsed, whole


# --- 1. the check refuses exactly what the parser refuses --------------------------------------------


def mixed_webhook_text() -> str:
    good = alert("p0")
    no_fingerprint = {k: v for k, v in alert("p-nofp").items() if k != "fingerprint"}
    own_status_missing = {k: v for k, v in alert("p-nostatus").items() if k != "status"}
    alerts = [
        good,  # 0
        "not an alert",  # 1
        {k: v for k, v in alert("p2").items() if k != "labels"},  # 2: labels missing
        alert("p3", labels={"alertname": "X", "pod": 5}),  # 3: a label value that is a number
        alert("p4", startsAt="yesterday"),  # 4: startsAt unparseable
        no_fingerprint,  # 5: good, fingerprint from its labels
        alert("p6", startsAt="10000-01-01T00:00:00Z"),  # 6: year 10000
        alert("p7", endsAt="garbage"),  # 7
        alert("p8", labels={"alertname": "X", "pod": f"triton-{SURROGATE}"}),  # 8: a lone surrogate
        alert("p9", annotations={"summary": "a NUL \x00 here"}),  # 9
        own_status_missing,  # 10: good, resolved as its group is
        alert("p11", status="resolved", endsAt=STARTS),  # 11: good
        alert("p12", startsAt="9999-12-31T23:59:59-01:00"),  # 12: not representable in UTC
        alert("p13", status="pending"),  # 13: a status that is neither
        None,  # 14
    ]
    return raw_json(webhook(*alerts, status="resolved"))


GOOD = [0, 5, 10, 11]


@pytest.mark.parametrize("first_index", [0, 7])
def test_the_check_refuses_exactly_what_the_parser_refuses(first_index: int) -> None:
    text = mixed_webhook_text()
    assert "\\ud800" in text and "\\u0000" in text
    body = json.loads(text)
    ctx = context(check_text=True, first_index=first_index)
    parsed = parse_delivery(SRC, body, ctx)
    checked = check_delivery(SRC, body, ctx)
    assert checked is not None
    assert checked.rejected == parsed.rejected
    assert checked.ids == [ev.id for ev in parsed.events]
    assert checked.good == [ev.origin.index for ev in parsed.events] == [first_index + i for i in GOOD]
    refused = {r.index - first_index: r.field for r in checked.rejected}
    assert sorted(refused) == [i for i in range(15) if i not in GOOD]
    at = f"body.alerts.{first_index + 8}"
    assert refused[8] == f"{at}.labels.pod" and refused[6].endswith(".startsAt") and refused[7].endswith(".endsAt")
    assert {ev.origin.index - first_index: ev.status.value for ev in parsed.events}[10] == "resolved"


def test_a_webhook_with_no_good_alert_is_refused_alike() -> None:
    body = webhook("not an alert", alert("p1", startsAt="yesterday"))
    ctx = context()
    parsed = parse_delivery(SRC, body, ctx)
    checked = check_delivery(SRC, body, ctx)
    assert checked is not None and checked.ids == [] and checked.good == []
    assert checked.rejected == parsed.rejected and len(parsed.rejected) == 2


@pytest.mark.parametrize("cluster", [None, "prod-eu"])
def test_check_ids_agree_with_the_parser_whatever_the_cluster_labels(cluster: str | None) -> None:
    def labelled(name: str, **labels: str) -> dict[str, Any]:
        a = alert(name)
        a["labels"] = {**a["labels"], **labels}
        return a

    body = webhook(
        alert("no-cluster-label"),
        labelled("same-cluster", cluster="prod-eu"),
        labelled("other-cluster", cluster="prod-us"),
        labelled("exported", exported_cluster="prod-eu", cluster="monitoring"),
        labelled("empty", cluster=""),
        {k: v for k, v in labelled("no-fp", cluster="prod-eu").items() if k != "fingerprint"},
    )
    ctx = context(cluster=cluster)
    parsed = parse_delivery(SRC, body, ctx)
    checked = check_delivery(SRC, body, ctx)
    assert checked is not None and parsed.rejected == checked.rejected == []
    assert checked.ids == [ev.id for ev in parsed.events]
    assert len(set(checked.ids)) == 6
    if cluster is not None:
        # the ingest's own cluster is part of the identity (two clusters, two facts): the ids differ
        # from the ones without a cluster, except for the alert that names another cluster
        plain = check_delivery(SRC, body, context())
        assert plain is not None
        same = [a == b for a, b in zip(checked.ids, plain.ids, strict=True)]
        assert same == [False, False, True, False, False, False]


# --- 2. queued, read back and parsed: exactly what parsing the whole delivery yields ---------------


def test_a_small_good_delivery_is_queued_as_its_raw_text() -> None:
    body = webhook(alert("p0"), alert("p1"), {k: v for k, v in alert("p2").items() if k != "fingerprint"})
    raw = json.dumps(body, indent=1).encode()
    ctx = context(check_text=may_hold_bad_text(raw))
    messages, parts, parsed, whole = assert_round_trip(body, ctx, raw)
    (m,) = messages
    assert raw.decode() in m.payload  # embedded verbatim, not encoded again
    assert m.events == 3 and parts[0].ctx.first_index == 0 and parts[0].refused == frozenset()
    assert [ev.origin.index for ev in whole.events] == [0, 1, 2]


def test_refused_records_are_queued_as_null_and_named_refused() -> None:
    text = raw_json(webhook(alert("p0"), alert("p1", startsAt="yesterday"), alert("p2", labels={"pod": SURROGATE})))
    raw = text.encode()
    body = json.loads(raw)
    ctx = context(check_text=may_hold_bad_text(raw))
    messages, parts, parsed, whole = assert_round_trip(body, ctx, raw)
    (m,) = messages
    assert text not in m.payload  # encoded again, the refused records left out
    assert "yesterday" not in m.payload and "\\ud800" not in m.payload
    assert json.loads(m.payload)["body"]["alerts"][1:] == [None, None]
    assert parts[0].refused == frozenset({1, 2}) and m.events == 1
    assert [r.index for r in whole.rejected] == [1, 2]


@pytest.mark.parametrize(
    ("bad", "first_indexes", "counts"),
    [
        ([], [0, 3, 6, 9], [3, 3, 3, 1]),
        ([4], [0, 3, 6, 9], [3, 2, 3, 1]),
        ([3, 4, 5], [0, 6, 9], [3, 3, 1]),  # a part with nothing good is not queued
    ],
)
def test_a_delivery_larger_than_a_part_is_queued_in_parts(
    bad: list[int], first_indexes: list[int], counts: list[int]
) -> None:
    alerts = [alert(f"p{i}", startsAt="yesterday") if i in bad else alert(f"p{i}") for i in range(10)]
    body = webhook(*alerts)
    raw = json.dumps(body).encode()
    ctx = context(check_text=False)
    messages, parts, parsed, whole = assert_round_trip(body, ctx, raw, part=3)
    assert [p.ctx.first_index for p in parts] == first_indexes
    assert [m.events for m in messages] == counts
    assert [len(p.body["alerts"]) for p in parts] == [min(3, 10 - i) for i in first_indexes]
    assert [sorted(p.refused) for p in parts] == [[i for i in bad if f <= i < f + 3] for f in first_indexes]
    assert [ev.origin.index for p in parsed for ev in p.events] == [i for i in range(10) if i not in bad]
    for part, got in zip(parts, parsed, strict=True):
        assert all(part.ctx.first_index <= ev.origin.index < part.ctx.first_index + 3 for ev in got.events)


def ascii_text(body: Any) -> str:
    return json.dumps(body)


def literal_text(body: Any) -> str:
    return json.dumps(body, ensure_ascii=False)


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda body: b"\xef\xbb\xbf" + ascii_text(body).encode(), id="utf-8 with a BOM"),
        pytest.param(lambda body: b"\xef\xbb\xbf" + literal_text(body).encode(), id="utf-8 with a BOM, literal"),
        pytest.param(lambda body: literal_text(body).encode("utf-16"), id="utf-16 with a BOM"),
        pytest.param(lambda body: ascii_text(body).encode("utf-16-be"), id="utf-16-be"),
        pytest.param(
            lambda body: (
                literal_text(body)
                .replace('"eventmgmt"', '"recv-\\ud800"')
                .encode()
                .replace(b"\\ud800", b"\xed\xa0\x80")
            ),
            id="a surrogate encoded in UTF-8 in the envelope",
        ),
    ],
)
def test_a_raw_body_that_cannot_be_embedded_is_encoded_again(encode) -> None:
    raw = encode(webhook(alert("p0"), alert("caf\u00e9-\U0001f525")))
    body = json.loads(raw)  # as ingest reads it
    assert body["alerts"][1]["labels"]["pod"] == "caf\u00e9-\U0001f525"
    ctx = context(check_text=may_hold_bad_text(raw))
    messages, parts, parsed, whole = assert_round_trip(body, ctx, raw)
    (m,) = messages
    assert "\ufeff" not in m.payload and "\x00" not in m.payload
    assert parts[0].body == body and len(whole.events) == 2


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-32-le"])
def test_a_utf16le_body_without_bom_is_queued_as_json(codec: str) -> None:
    body = webhook(alert("p0"))
    raw = json.dumps(body).encode(codec)
    assert json.loads(raw) == body  # ingest takes it (json.loads detects the encoding)
    ctx = context(check_text=may_hold_bad_text(raw))
    assert_round_trip(body, ctx, raw)


# --- 3-5. the embedded runtime over HTTP ------------------------------------------------------------


@pytest.fixture
def rt(tmp_path: Path):
    runtime = build_runtime(Settings(home=tmp_path))
    yield runtime
    runtime.stop()


def stored(rt: Runtime) -> list[tuple[str, str | None, int | None]]:
    with Session(rt.engine) as s:
        return [tuple(r) for r in s.execute(select(EventRow.id, EventRow.capture, EventRow.idx).order_by(EventRow.idx))]


def restart_drainer(rt: Runtime, **kw: Any) -> None:
    rt.drainer.close()
    rt.drainer = Drainer(rt.queue, functools.partial(hand_on, rt.publisher), **kw).start()


def test_the_answer_names_the_ids_stored_once_the_queue_drains(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    rt.drainer.close()  # nothing is built while the drain is stopped
    hook = webhook(alert("p0"), alert("p1"), alert("p2"), alert("p3", startsAt="yesterday"))
    r = client.post("/ingest/alertmanager", json=hook)
    assert r.status_code == 202, r.json
    assert r.json["queued"] is True and r.json["accepted"] == 3 and r.json["source"] == SRC
    assert [(x["index"], x["field"]) for x in r.json["rejected"]] == [(3, "body.alerts.3.startsAt")]
    assert len(r.json["ids"]) == 3 and "filtered" not in r.json
    assert stored(rt) == []
    assert client.get("/api/queue").json["backlog_events"] == 3
    stats = client.get("/ingest/stats").json
    assert stats["accepted"] == {} and stats["rejected_records"] == {SRC: 1}
    restart_drainer(rt)
    q = wait_drained(client, timeout=30)
    assert q["backlog_events"] == 0 and q["dead_letters"] == 0
    assert stored(rt) == [(i, r.json["capture"], n) for n, i in enumerate(r.json["ids"])]
    stats = client.get("/ingest/stats").json
    assert stats["accepted"] == {SRC: 3} and stats["rejected_records"] == {SRC: 1} and stats["filtered"] == {}


def test_filters_still_drop_behind_the_answer(tmp_path: Path) -> None:
    config = parse_config(
        {"filters": [{"name": "drop-noise", "when": {"source": "alertmanager", "labels": {"alertname": "Noise"}}}]}
    )
    rt = build_runtime(Settings(home=tmp_path), config)
    try:
        client = create_app(rt).test_client()
        noise = alert("p-noise")
        noise["labels"] = {**noise["labels"], "alertname": "Noise"}
        r = client.post("/ingest/alertmanager", json=webhook(alert("p0"), noise, alert("p2")))
        assert r.status_code == 202 and r.json["queued"] is True
        assert r.json["accepted"] == 3 and len(r.json["ids"]) == 3 and r.json["rejected"] == []
        wait_drained(client, timeout=30)
        kept = [r.json["ids"][0], r.json["ids"][2]]
        assert [row[0] for row in stored(rt)] == kept
        stats = client.get("/ingest/stats").json
        assert stats["filtered"] == {"drop-noise": 1} and stats["accepted"] == {SRC: 2}
    finally:
        rt.stop()


def test_a_queued_row_that_is_not_a_delivery_is_dead_lettered_and_the_queue_goes_on(rt: Runtime) -> None:
    client = create_app(rt).test_client()
    rt.drainer.close()
    rt.queue.append_encoded(DELIVERIES, [EncodedMessage('{"nonsense":1}', {}, None, 1)])
    r = client.post("/ingest/alertmanager", json=webhook(alert("p0"), alert("p1")))
    assert r.status_code == 202 and client.get("/api/queue").json["backlog_events"] == 3
    restart_drainer(rt, backoff=0.01, max_attempts=2)
    q = wait_drained(client, timeout=30)
    assert q["dead_letters"] == 1 and q["backlog_events"] == 0
    (dead,) = client.get("/api/queue/dead-letters").json["dead_letters"]
    assert dead["topic"] == DELIVERIES and dead["attempts"] == 2 and dead["events"] == 1
    assert "queued delivery is malformed" in dead["error"]
    assert [row[0] for row in stored(rt)] == r.json["ids"]
    assert client.get("/ingest/stats").json["accepted"] == {SRC: 2}


def test_a_row_that_is_not_json_is_set_aside_at_once_and_the_queue_goes_on(rt: Runtime) -> None:
    """However a row came to be unreadable (a bug, a disk), it cannot wedge the drain."""
    client = create_app(rt).test_client()
    rt.drainer.close()
    rt.queue.append_encoded(DELIVERIES, [EncodedMessage('{"body":{\x00', {}, None, 1)])
    r = client.post("/ingest/alertmanager", json=webhook(alert("p0")))
    restart_drainer(rt, backoff=0.01)
    q = wait_drained(client, timeout=30)
    assert q["dead_letters"] == 1 and q["backlog_events"] == 0
    (dead,) = client.get("/api/queue/dead-letters").json["dead_letters"]
    assert dead["attempts"] == 0 and "unreadable row" in dead["error"]
    assert [row[0] for row in stored(rt)] == r.json["ids"]


# --- 6. stable_hash ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts",
    [
        (),
        ("alertmanager",),
        ("alertmanager", "fp-1", "2026-01-01T00:00:00Z", "firing"),
        ('say "hi"', "back\\slash", "\\u0000 as text", "/"),
        ("\x00", "\x01\x1f", "\t\n\r\b\f", "\x7f"),
        ("café", "日本語", "Ωmega", "\u2028\u2029"),
        ("\U0001f525", "a\U0001f600b"),
        ("\ud800", "x\udfffy", "\udbff\udc00"),
        ("", "", ""),
    ],
)
@pytest.mark.parametrize("length", [16, 24, 64])
def test_stable_hash_of_strings_equals_the_json_digest(parts: tuple[str, ...], length: int) -> None:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    assert stable_hash(*parts, length=length) == hashlib.sha256(text.encode()).hexdigest()[:length]
