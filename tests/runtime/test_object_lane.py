"""In-process stages hand each other the objects themselves; a subscriber without an object handler
still gets the wire messages, encoded once, and a queued row that is not canonical events still
reaches the stage as a message (so it is logged as poison there)."""

from __future__ import annotations

import json
from typing import Any

from cloudevents.http import CloudEvent

from eventmgmt.model import Event
from eventmgmt.runtime.drain import hand_on
from eventmgmt.transport import InProcessPublisher, Outgoing
from eventmgmt.transport.messages import decode_batch, event_messages, event_messages_text, publish_events


def _event(i: int) -> Event:
    return Event.from_json(
        {
            "id": f"t:{i}",
            "fingerprint": f"fp{i}",
            "source": "alertmanager",
            "signal": "X",
            "occurred_at": "2026-11-27T10:00:00Z",
            "received_at": "2026-11-27T10:00:01Z",
            "resources": {"cluster": "a" if i % 2 else "b", "pod": f"p{i}"},
        }
    )


def _by_cluster(events: list[Event]) -> list[Event]:
    """Grouped by cluster in order of first appearance, in order within each: the messages' order."""
    keys = list(dict.fromkeys(e.resources.cluster for e in events))
    return [e for k in keys for e in events if e.resources.cluster == k]


def test_objects_and_messages_subscribers_see_the_same_events() -> None:
    pub = InProcessPublisher()
    direct: list[list[Any]] = []
    wire: list[CloudEvent] = []
    pub.subscribe("events-raw", "fast", lambda ce: None, objects=direct.append)
    pub.subscribe("events-raw", "slow", wire.append, batch=wire.extend)
    events = [_event(i) for i in range(5)]
    publish_events(pub, "events-raw", events)
    assert direct == [events]
    # NOTE: one message per cluster (ordering key), in order within each
    decoded = [ev for ce in wire for ev in decode_batch(ce)]
    assert sorted(e.id for e in decoded) == sorted(e.id for e in events) and len(wire) == 2
    assert decoded == _by_cluster(events)


def test_encode_is_not_called_when_every_subscriber_takes_objects() -> None:
    pub = InProcessPublisher()
    got: list[list[Any]] = []
    pub.subscribe("t", "s", lambda ce: None, objects=got.append)

    def encode() -> list[Outgoing]:
        raise AssertionError("encoded although no subscriber needs messages")

    pub.publish_objects("t", [1, 2], encode)
    assert got == [[1, 2]]


def test_queued_row_is_handed_on_as_events_or_else_as_messages() -> None:
    pub = InProcessPublisher()
    direct: list[list[Event]] = []
    wire: list[CloudEvent] = []
    pub.subscribe("events-raw", "enrich", wire.append, batch=wire.extend, objects=direct.append)
    events = [_event(i) for i in range(3)]
    hand_on(pub, "events-raw", event_messages(events))
    assert [e for batch in direct for e in batch] == _by_cluster(events)
    assert wire == []
    hand_on(pub, "events-raw", [Outgoing({"events": [{"not": "an event"}]}, {}, None)])
    assert len(wire) == 1 and len(direct) == 1


def test_text_encoding_is_the_same_json_as_the_message_encoding() -> None:
    events = [_event(i) for i in range(4)]
    odd = Event.from_json(
        {**events[0].to_json(), "id": "t:odd", "summary": 'naïve \u2603 "quoted"\n', "labels": {"é": "ü"}}
    )
    events.append(odd)
    text = event_messages_text(events, {"source": "alertmanager"})
    dicts = event_messages(events, {"source": "alertmanager"})
    assert [json.loads(m.payload) for m in text] == [m.payload for m in dicts]
    assert [(m.attributes, m.ordering_key, m.events) for m in text] == [
        (m.attributes, m.ordering_key, len(m.payload["events"])) for m in dicts
    ]


def test_correlated_messages_travel_in_one_message_per_cluster_and_decode_back() -> None:
    from eventmgmt.incident import CorrelatedMessage
    from eventmgmt.transport.envelope import encode_message, to_cloudevent
    from eventmgmt.transport.messages import correlated_messages, decode_correlated, publish_messages

    pub = InProcessPublisher()
    wire: list[CloudEvent] = []
    pub.subscribe("events-correlated", "route", wire.append)
    msgs = [CorrelatedMessage(event=_event(i)) for i in range(5)]
    publish_messages(pub, msgs)
    assert len(wire) == len(correlated_messages(msgs)) == 2
    assert [m for ce in wire for m in decode_correlated(ce, "route")] == [
        m for key in ("b", "a") for m in msgs if m.event.resources.cluster == key
    ]
    # NOTE: a bare message, as earlier versions published, still decodes; a poison one decodes to nothing
    bare = to_cloudevent(
        "p", "events-correlated", "route", encode_message(json.dumps(msgs[0].to_json()).encode(), {}, "9")
    )
    assert decode_correlated(bare, "route") == [msgs[0]]
    poison = to_cloudevent("p", "events-correlated", "route", encode_message(b'{"messages": [{"x": 1}]}', {}, "10"))
    assert decode_correlated(poison, "route") == []
