"""The Publisher interface and the in-process implementation the embedded runtime uses."""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from cloudevents.http import CloudEvent

from .envelope import encode_message, to_cloudevent
from .pipeline import CORRELATED

Handler = Callable[[CloudEvent], Any]
BatchHandler = Callable[[list[CloudEvent]], Any]
ObjectsHandler = Callable[[list[Any]], Any]


class Outgoing(NamedTuple):
    """One message for `publish_all`."""

    payload: dict[str, Any]
    attributes: dict[str, str]
    ordering_key: str | None = None


class EncodedMessage(NamedTuple):
    """A message whose payload is JSON text already, and how many events it carries."""

    payload: str
    attributes: dict[str, str]
    ordering_key: str | None
    events: int


def batch_items(payload: Any) -> list[Any]:
    """The events a message payload carries: a batch message (`{"events": [...]}`, see
    messages.publish_events) many, anything else itself alone."""
    if isinstance(payload, dict) and "events" in payload:
        items = payload["events"]
        return items if isinstance(items, list) else [items]
    return [payload]


class Publisher(Protocol):
    def publish(
        self,
        topic: str,
        payload: dict[str, Any],
        attributes: dict[str, str] | None = None,
        ordering_key: str | None = None,
    ) -> str:
        """Publish one JSON payload; returns the message id once the transport has accepted it.
        Raises on failure, so the caller answers 5xx and its sender retries."""
        ...


def publish_all(publisher: Publisher, topic: str, messages: Sequence[Outgoing]) -> list[str]:
    """Publish several messages as one batch where the publisher can (`publish_many`): Pub/Sub sends
    them in one request, the in-process publisher hands them to a batch handler, so correlate stores
    a whole webhook in one transaction. Raises if any message was not accepted."""
    if not messages:
        return []
    many = getattr(publisher, "publish_many", None)
    if many is not None:
        return list(many(topic, messages))
    return [publisher.publish(topic, m.payload, m.attributes, ordering_key=m.ordering_key) for m in messages]


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class InProcessPublisher:
    """Delivers each message synchronously, as a messagePublished CloudEvent, to every handler
    subscribed to its topic; a handler's exception propagates to the publisher, like a 5xx would
    make Pub/Sub redeliver."""

    def __init__(self, project: str = "local", batches: bool = True) -> None:
        self.project = project
        # NOTE: batches=False hands a batch over one message at a time (the per-event path), for
        # benchmarks that compare the two.
        self.batches = batches
        self._subs: dict[str, list[tuple[str, Handler, BatchHandler | None]]] = defaultdict(list)
        self._objects: dict[tuple[str, str], ObjectsHandler] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def subscribe(
        self,
        topic: str,
        subscription: str,
        handler: Handler,
        batch: BatchHandler | None = None,
        objects: ObjectsHandler | None = None,
    ) -> None:
        """`batch`, if given, receives the messages of one `publish_many` call together; `objects`,
        if given, receives what one `publish_objects` call published, as the objects themselves."""
        self._subs[topic].append((subscription, handler, batch))
        if objects is not None:
            self._objects[(topic, subscription)] = objects

    def publish_objects(
        self,
        topic: str,
        objects: list[Any],
        encode: Callable[[], Sequence[Outgoing]],
        encode_text: Callable[[], Sequence[EncodedMessage]] | None = None,
    ) -> None:
        """Hand `objects` (frozen events or correlated messages) to each subscriber that takes them
        as they are, and their messages (`encode()`, built at most once) to the others.

        NOTE: within one process, encoding an event to JSON, wrapping it in a Pub/Sub envelope and
        decoding and validating it again at the next stage cost more than enriching it; the wire
        format is still what the emulator and the cloud exchange (and what the queue stores).
        `encode_text` (the same messages as JSON text) is for publishers that store them."""
        if not self.batches:
            self.publish_many(topic, encode())
            return
        encoded: list[dict[str, Any]] | None = None
        for sub, handler, batch in self._subs.get(topic, []):
            direct = self._objects.get((topic, sub))
            if direct is not None:
                direct(objects)
                continue
            encoded = encoded if encoded is not None else self._encode(encode())[1]
            self._hand(topic, sub, handler, batch, encoded)

    def publish(
        self,
        topic: str,
        payload: dict[str, Any],
        attributes: dict[str, str] | None = None,
        ordering_key: str | None = None,
    ) -> str:
        with self._lock:
            mid = str(next(self._ids))
        msg = encode_message(dumps(payload), attributes or {}, mid)
        for subscription, handler, _ in self._subs.get(topic, []):
            handler(to_cloudevent(self.project, topic, subscription, msg))
        return mid

    def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        mids, encoded = self._encode(messages)
        for subscription, handler, batch in self._subs.get(topic, []):
            self._hand(topic, subscription, handler, batch, encoded)
        return mids

    def _encode(self, messages: Sequence[Outgoing]) -> tuple[list[str], list[dict[str, Any]]]:
        """Message ids, and the PubsubMessages every subscriber of one publish shares."""
        with self._lock:
            mids = [str(next(self._ids)) for _ in messages]
        return mids, [
            encode_message(dumps(m.payload), m.attributes, mid) for m, mid in zip(messages, mids, strict=True)
        ]

    def _hand(
        self, topic: str, subscription: str, handler: Handler, batch: BatchHandler | None, encoded: list[dict[str, Any]]
    ) -> None:
        ces = [to_cloudevent(self.project, topic, subscription, msg) for msg in encoded]
        if batch is not None and self.batches:
            batch(ces)
        else:
            for ce in ces:
                handler(ce)


class RecordingPublisher:
    """Keeps what was published, per topic; for tests and for replay's report."""

    def __init__(self) -> None:
        self.messages: dict[str, list[tuple[dict[str, Any], dict[str, str]]]] = defaultdict(list)

    def publish(
        self,
        topic: str,
        payload: dict[str, Any],
        attributes: dict[str, str] | None = None,
        ordering_key: str | None = None,
    ) -> str:
        self.messages[topic].append((payload, dict(attributes or {})))
        return str(sum(len(v) for v in self.messages.values()))

    def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        return [self.publish(topic, m.payload, m.attributes, m.ordering_key) for m in messages]

    def events(self, topic: str) -> list[dict[str, Any]]:
        """The canonical events published to `topic`, in order, batch messages taken apart."""
        return [item for payload, _ in self.messages.get(topic, []) for item in batch_items(payload)]

    def correlated(self) -> list[dict[str, Any]]:
        """The correlated messages published to events-correlated, in order, batches taken apart."""
        out: list[dict[str, Any]] = []
        for payload, _ in self.messages.get(CORRELATED, []):
            out.extend(payload["messages"] if "messages" in payload and "event" not in payload else [payload])
        return out
