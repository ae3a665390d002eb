"""functions/route/main.py through functions-framework with real binary-mode CloudEvents."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import functions_framework
from cloudevents.conversion import to_binary

from eventmgmt.transport import encode_message, to_cloudevent
from eventmgmt.transport.publisher import dumps
from tests.route.test_router import make_router, story
from tests.support.httpsink import http_sink

ROOT = Path(__file__).resolve().parents[2]


def test_route_function_queues_while_the_sink_is_down_and_route_flush_delivers_once(tmp_path):
    with http_sink() as sink:
        router = make_router(sink, f"sqlite:///{tmp_path / 'r.db'}")
        app = functions_framework.create_app("route", str(ROOT / "functions/route/main.py"), "cloudevent")
        sys.modules["main"].router = lambda: router
        client = app.test_client()
        msg = story()[0][-1]
        ce = to_cloudevent("p", "events-correlated", "route", encode_message(dumps(msg.to_json()), {}, "7"))
        headers, body = to_binary(ce)
        sink.answer("/v2/enqueue", 503, {"status": "unavailable"}, times=3)
        assert client.post("/", headers=headers, data=body).status_code == 200  # kept in the outbox
        assert client.post("/", headers=headers, data=body).status_code == 200  # a redelivery: no new try
        assert [(r["receiver"], r["state"], r["owed"]) for r in router.outbox()] == [
            ("pagerduty", "triggered", "triggered")
        ]
        assert len(sink.bodies("/v2/enqueue")) == 3  # the in-line attempts only

        flush = functions_framework.create_app("route_flush", str(ROOT / "functions/route/main.py"), "http")
        sys.modules["main"].router = lambda: router
        later = router.clock() + timedelta(hours=1)
        router.clock = lambda: later
        answer = flush.test_client().post("/")
        assert answer.status_code == 200 and answer.json == {"delivered": 1, "pending": 0, "not_sent": 0}
        assert router.outbox() == []
        assert client.post("/", headers=headers, data=body).status_code == 200
        assert [b["event_action"] for b in sink.bodies("/v2/enqueue")] == ["trigger"] * 4
        poison = to_cloudevent("p", "events-correlated", "route", encode_message(b"not json", {}, "8"))
        h, b = to_binary(poison)
        assert client.post("/", headers=h, data=b).status_code == 200  # acknowledged, logged
