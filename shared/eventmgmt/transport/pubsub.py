"""The Publisher on google-cloud-pubsub, and the topic and subscription layout.

Works against Google Cloud and against the emulator (PUBSUB_EMULATOR_HOST), which the client
library honours by itself."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from . import DEAD_LETTER_SUFFIX, TOPICS
from .pipeline import subscribers
from .publisher import Outgoing, dumps

# Which function each topic feeds (the subscriptions Eventarc, or the local bridge, pushes from).
SUBSCRIPTIONS = {topic: subscribers(topic) for topic in TOPICS}


# NOTE: how long the client holds a batch open for more messages. publish_many hands it all its
# messages at once (encoded first), so a short wait loses nothing; every stage pays it once a
# delivery, inside the request. 10 ms was a fifth of an emulator enrich push.
MAX_LATENCY = 0.002


class PubSubPublisher:
    """`publish` returns once Pub/Sub has accepted the message, and raises otherwise: the caller
    answers 5xx and its sender retries. Batching is kept short on purpose: each stage publishes
    inside a request that waits for the result, so latency matters more than batch size."""

    def __init__(self, project: str, client: pubsub_v1.PublisherClient | None = None, timeout: float = 30.0) -> None:
        self.project = project
        self.timeout = timeout
        self.client = client or pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(
                max_messages=100, max_bytes=1_000_000, max_latency=MAX_LATENCY
            ),
            # NOTE: ordering keys are set per incident, so its snapshots arrive in version order where
            # a subscription enables message ordering; consumers still drop stale versions.
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
        )
        self._lock = threading.Lock()

    def topic(self, name: str) -> str:
        return self.client.topic_path(self.project, name)

    def publish(
        self,
        topic: str,
        payload: dict[str, Any],
        attributes: dict[str, str] | None = None,
        ordering_key: str | None = None,
    ) -> str:
        return self.publish_many(topic, [Outgoing(payload, attributes or {}, ordering_key)])[0]

    def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> list[str]:
        """All messages are handed to the client before waiting on any, so they travel in one
        request (the client batches them) rather than one round trip each."""
        path = self.topic(topic)
        data = [dumps(m.payload) for m in messages]  # NOTE: first, so the batch fills within MAX_LATENCY
        futures = [
            self.client.publish(path, d, ordering_key=m.ordering_key or "", **m.attributes)
            for m, d in zip(messages, data, strict=True)
        ]
        ids: list[str] = []
        failed: BaseException | None = None
        for m, future in zip(messages, futures, strict=True):
            try:
                ids.append(str(future.result(timeout=self.timeout)))
            except Exception as err:
                failed = failed or err
                if m.ordering_key:
                    # NOTE: after a failure the client pauses that ordering key until told to resume;
                    # the original error is what the caller must see.
                    with contextlib.suppress(Exception):
                        self.client.resume_publish(path, m.ordering_key)
        if failed is not None:
            raise failed
        return ids


def ensure_layout(
    project: str,
    publisher: pubsub_v1.PublisherClient | None = None,
    subscriber: pubsub_v1.SubscriberClient | None = None,
    ack_deadline: int = 60,
    max_attempts: int = 5,
) -> dict[str, str]:
    """Create topics, dead-letter topics and subscriptions (idempotent). Returns subscription paths by
    function name. The fake needs an explicit ack deadline of at least 10 s."""
    pub = publisher or pubsub_v1.PublisherClient()
    sub = subscriber or pubsub_v1.SubscriberClient()
    out: dict[str, str] = {}
    for topic in TOPICS:
        for name in (topic, topic + DEAD_LETTER_SUFFIX):
            try:
                pub.create_topic(name=pub.topic_path(project, name))
            except gexc.AlreadyExists:
                pass
        for fn in SUBSCRIPTIONS[topic]:
            path = sub.subscription_path(project, f"{topic}-{fn}")
            request = {
                "name": path,
                "topic": pub.topic_path(project, topic),
                "ack_deadline_seconds": ack_deadline,
                "dead_letter_policy": {
                    "dead_letter_topic": pub.topic_path(project, topic + DEAD_LETTER_SUFFIX),
                    "max_delivery_attempts": max_attempts,
                },
            }
            try:
                sub.create_subscription(request=request)
            except gexc.AlreadyExists:
                pass
            out[fn] = path
        dl = sub.subscription_path(project, f"{topic}{DEAD_LETTER_SUFFIX}-inspect")
        try:
            sub.create_subscription(
                request={
                    "name": dl,
                    "topic": pub.topic_path(project, topic + DEAD_LETTER_SUFFIX),
                    "ack_deadline_seconds": ack_deadline,
                }
            )
        except gexc.AlreadyExists:
            pass
        out[f"{topic}{DEAD_LETTER_SUFFIX}"] = dl
    return out
