"""The Publisher interface and the in-process implementation the embedded runtime uses."""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from cloudevents.http import CloudEvent

from .envelope import encode_message, to_cloudevent

Handler = Callable[[CloudEvent], Any]


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


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class InProcessPublisher:
    """Delivers each message synchronously, as a messagePublished CloudEvent, to every handler
    subscribed to its topic; a handler's exception propagates to the publisher, like a 5xx would
    make Pub/Sub redeliver."""

    def __init__(self, project: str = "local") -> None:
        self.project = project
        self._subs: dict[str, list[tuple[str, Handler]]] = defaultdict(list)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def subscribe(self, topic: str, subscription: str, handler: Handler) -> None:
        self._subs[topic].append((subscription, handler))

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
        for subscription, handler in self._subs.get(topic, []):
            handler(to_cloudevent(self.project, topic, subscription, msg))
        return mid


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
