"""The functions' batch targets (enrich_batch, correlate_batch, route_batch, archive_batch) through
functions-framework's HTTP path with the bridge's batched requests: several messages handled as one
delivery, 200 only once all are; a failure answers 500 (the bridge then delivers them one a push);
the archive stores each message as its own objects, so a redelivery adds nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import functions_framework
from cloudevents.conversion import to_binary, to_structured

from eventmgmt.archive.writer import read_partition
from eventmgmt.config import default_config
from eventmgmt.correlate.stage import CorrelateStage
from eventmgmt.emulator.push import BATCH_CONTENT_TYPE
from eventmgmt.enrich.stage import EnrichStage
from eventmgmt.store import ensure_schema, make_engine
from eventmgmt.transport import RecordingPublisher, encode_message, to_cloudevent
from eventmgmt.transport.publisher import dumps
from tests.archive.test_archive import messages as correlated_messages
from tests.correlate.helpers import ev

ROOT = Path(__file__).resolve().parents[2]
POD = "triton-bert-large-r9w2fh26mf-6n65v"


def ce(topic: str, payload: Any, mid: str, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else dumps(payload)
    return to_cloudevent("p", topic, f"{topic}-sub", encode_message(data, {}, mid))


def batch(*events: Any) -> tuple[dict[str, str], bytes]:
    body = json.dumps([json.loads(to_structured(e)[1]) for e in events]).encode()
    return {"content-type": BATCH_CONTENT_TYPE}, body


def client(name: str, target: str, **replace: Any) -> Any:
    """The function's batch target as functions-framework serves it, with its lazily-built objects
    replaced (the handler looks them up in sys.modules["main"] at call time)."""
    app = functions_framework.create_app(target, str(ROOT / "functions" / name / "main.py"), "http")
    for attr, value in replace.items():
        setattr(sys.modules["main"], attr, value)
    return app.test_client()


def test_enrich_then_correlate_a_batch_in_order(tmp_path: Path) -> None:
    pub = RecordingPublisher()
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    ensure_schema(engine)
    events = [
        ev("model_load_failed", 0, pod=POD, model="bert-large", source="log"),
        ev("high_error_rate", 1, pod=POD, model="bert-large"),
        ev("high_error_rate", 2, pod=POD, model="bert-large", status="resolved"),
    ]
    enrich_stage = EnrichStage(default_config(), pub)
    enrich = client("enrich", "enrich_batch", stage=lambda: enrich_stage)
    poison = ce("events-raw", None, "bad", raw=b"not json")
    headers, body = batch(*[ce("events-raw", e.to_json(), f"r{i}") for i, e in enumerate(events)], poison)
    answer = enrich.post("/", headers=headers, data=body)
    assert answer.status_code == 200 and answer.json == {"handled": 4}
    # NOTE: one publish for the whole push: one message for the cluster, the events in order
    assert len(pub.messages["events-enriched"]) == 1
    assert [e["id"] for e in pub.events("events-enriched")] == [e.id for e in events]

    correlate_stage = CorrelateStage(default_config(), pub, lambda: events[-1].received_at, engine=engine)
    correlate = client("correlate", "correlate_batch", stage=lambda: correlate_stage)
    enriched = [ce("events-enriched", {"events": [e]}, f"e{i}") for i, e in enumerate(pub.events("events-enriched"))]
    headers, body = batch(*enriched)
    assert correlate.post("/", headers=headers, data=body).status_code == 200
    first = pub.correlated()
    assert [m["event"]["id"] for m in first] == [e.id for e in events]
    assert len({m["incident_id"] for m in first}) == 1
    # a single binary-mode CloudEvent (what Eventarc sends) is a batch of one; a redelivery is a no-op
    h, b = to_binary(enriched[0])
    assert correlate.post("/", headers=dict(h), data=b).status_code == 200
    again = pub.correlated()[len(first) :]
    assert [m["action"] for m in again] == [None]


def test_a_failing_stage_answers_500_and_a_malformed_push_400() -> None:
    class Down:
        def handle_batch(self, ces: list[Any]) -> None:
            raise ConnectionError("database unreachable")

    down = Down()
    correlate = client("correlate", "correlate_batch", stage=lambda: down)
    headers, body = batch(ce("events-enriched", {"events": []}, "1"), ce("events-enriched", {"events": []}, "2"))
    assert correlate.post("/", headers=headers, data=body).status_code == 500
    assert correlate.post("/", headers=headers, data=b"[{]").status_code == 400


def test_archive_batch_stores_each_message_once(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("EVENTMGMT_ARCHIVE_URL", str(tmp_path))
    archive = client("archive", "archive_batch")
    sys.modules["main"].archiver.cache_clear()
    msgs = correlated_messages()
    one = ce("events-correlated", {"messages": [m.to_json() for m in msgs[:2]]}, "1")
    two = ce("events-correlated", {"messages": [m.to_json() for m in msgs[2:]]}, "2")
    headers, body = batch(one, two)
    assert archive.post("/", headers=headers, data=body).status_code == 200
    stored = read_partition(str(tmp_path))
    objects = sorted(tmp_path.rglob("*.jsonl.gz"))
    want = sum(1 + (m.incident is not None and m.action is not None) for m in msgs)
    assert len(stored) == want
    # a redelivery, alone or in another batch, rewrites nothing new
    headers, body = batch(two, one)
    assert archive.post("/", headers=headers, data=body).status_code == 200
    sys.modules["main"].archiver.cache_clear()  # a new instance: the same objects, rewritten
    assert archive.post("/", headers=headers, data=body).status_code == 200
    assert len(read_partition(str(tmp_path))) == want
    assert sorted(tmp_path.rglob("*.jsonl.gz")) == objects


def test_route_batch_routes_every_message_in_order() -> None:
    routed: list[str] = []

    class Router:
        def handle(self, event: Any) -> None:
            routed.append(event["id"])

    router = Router()
    route = client("route", "route_batch", router=lambda: router)
    headers, body = batch(*[ce("events-correlated", {"messages": []}, f"m{i}") for i in range(3)])
    assert route.post("/", headers=headers, data=body).status_code == 200
    assert routed == ["m0", "m1", "m2"]
