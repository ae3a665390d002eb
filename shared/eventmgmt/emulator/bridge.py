"""What Eventarc does for a Pub/Sub trigger, locally: pull a subscription, POST each message to the
function as a binary-mode `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent, acknowledge on
2xx, redeliver with backoff otherwise, and move it to the dead-letter topic after `max_attempts`.

Synchronous pull, not streaming pull: DESIGN.md measured pstest's streaming pull at ~90 messages/s
and synchronous pull at thousands. The fake does not enforce dead-letter policies, so the bridge
counts attempts itself."""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from cloudevents.conversion import to_binary
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

from ..logjson import log_json
from ..transport import to_cloudevent

log = logging.getLogger("eventmgmt.bridge")


@dataclass
class Route:
    subscription: str  # projects/P/subscriptions/S
    topic: str
    url: str
    dead_letter_topic: str | None = None
    # Ordered delivery, as a subscription with message ordering: a message that fails is retried
    # (with backoff) before any later one is delivered.
    ordered: bool = False


@dataclass
class BridgeStats:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    attempts: dict[str, int] = field(default_factory=dict)


def envelope(project: str, topic: str, subscription: str, msg: Any) -> tuple[dict[str, str], bytes]:
    """The HTTP request Eventarc sends for one received Pub/Sub message."""
    published = msg.publish_time
    message = {
        "data": base64.b64encode(msg.data).decode(),
        "attributes": dict(msg.attributes),
        "messageId": msg.message_id,
        "message_id": msg.message_id,
        "publishTime": published.isoformat().replace("+00:00", "Z") if published else None,
        "publish_time": published.isoformat().replace("+00:00", "Z") if published else None,
    }
    if msg.ordering_key:
        message["orderingKey"] = msg.ordering_key
    ce = to_cloudevent(project, topic, subscription.rsplit("/", 1)[-1], message)
    headers, body = to_binary(ce)
    return dict(headers), body


def _publish_order(received: Any) -> tuple[Any, ...]:
    mid = received.message.message_id
    seq = int(mid[1:]) if mid[:1] == "m" and mid[1:].isdigit() else 0  # pstest ids: m0, m1, ...
    return (seq, received.message.publish_time, mid)


class Bridge:
    def __init__(
        self,
        project: str,
        routes: list[Route],
        subscriber: pubsub_v1.SubscriberClient | None = None,
        publisher: pubsub_v1.PublisherClient | None = None,
        max_attempts: int = 5,
        backoff: float = 1.0,
        batch: int = 50,
        http_timeout: float = 60.0,
    ) -> None:
        self.project = project
        self.routes = routes
        self.subscriber = subscriber or pubsub_v1.SubscriberClient()
        self.publisher = publisher or pubsub_v1.PublisherClient()
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.batch = batch
        self.http = httpx.Client(timeout=http_timeout)
        self.stats: dict[str, BridgeStats] = {r.subscription: BridgeStats() for r in routes}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.idle = {r.subscription: threading.Event() for r in routes}
        # Messages pulled and not yet settled (acknowledged, dead-lettered or handed back), per route.
        self._leased: dict[str, set[str]] = {r.subscription: set() for r in routes}
        self._leased_lock = threading.Lock()

    def start(self, ordered_delay: float = 0.0) -> None:
        """`ordered_delay`: after a subscriber was lost mid-batch, ordered routes wait this long (its
        ack deadline) before pulling, as Pub/Sub withholds the later messages of an ordering key until
        the outstanding ones come back; delivering the rest first would reorder them."""
        for r in self.routes:
            t = threading.Thread(
                target=self._loop,
                args=(r, ordered_delay if r.ordered else 0.0),
                name=f"bridge-{r.subscription.rsplit('/', 1)[-1]}",
                daemon=True,
            )
            t.start()
            self._threads.append(t)

    def stop(self, release: bool = True) -> int:
        """Stop pulling. With `release`, messages pulled but not delivered are handed back (ack
        deadline 0) so the next subscriber gets them at once, as a subscriber shutting down cleanly
        does; without it they stay leased until their ack deadline, as after a crash. Returns how
        many were outstanding."""
        self._stop.set()
        for t in self._threads:
            t.join(10)
        outstanding = 0
        with self._leased_lock:
            for subscription, leased in self._leased.items():
                outstanding += len(leased)
                if release and leased:
                    self.subscriber.modify_ack_deadline(
                        request={"subscription": subscription, "ack_ids": list(leased), "ack_deadline_seconds": 0}
                    )
                leased.clear()
        self.http.close()
        return outstanding

    def _lease(self, route: Route, messages: list[Any]) -> None:
        with self._leased_lock:
            self._leased[route.subscription].update(m.ack_id for m in messages)

    def _settle(self, route: Route, ack_id: str) -> None:
        with self._leased_lock:
            self._leased[route.subscription].discard(ack_id)

    def _loop(self, route: Route, delay: float) -> None:
        if self._stop.wait(delay):
            return
        while not self._stop.is_set():
            try:
                resp = self.subscriber.pull(
                    request={"subscription": route.subscription, "max_messages": self._max(route)}, timeout=5.0
                )
            except (gexc.DeadlineExceeded, gexc.ServiceUnavailable, gexc.NotFound) as err:
                log.debug("pull %s: %s", route.subscription, err)
                self.idle[route.subscription].set()
                time.sleep(0.2)
                continue
            if not resp.received_messages:
                self.idle[route.subscription].set()
                time.sleep(0.05)
                continue
            self.idle[route.subscription].clear()
            received_messages = list(resp.received_messages)
            self._lease(route, received_messages)
            if route.ordered:
                received_messages.sort(key=_publish_order)
            for received in received_messages:
                if self._stop.is_set():
                    return
                while not self._deliver(route, received) and route.ordered and not self._stop.is_set():
                    n = self.stats[route.subscription].attempts.get(received.message.message_id, 0)
                    self._stop.wait(min(30.0, self.backoff * 2 ** max(0, n - 1)))

    def _max(self, route: Route) -> int:
        # NOTE: pstest hands out pending messages in no particular order; an ordered route takes the
        # whole backlog and sorts it (publish order), as an ordered subscription would deliver it.
        return 5000 if route.ordered else self.batch

    def _deliver(self, route: Route, received: Any) -> bool:
        """True when the message is done with (delivered or dead-lettered)."""
        msg = received.message
        stats = self.stats[route.subscription]
        headers, body = envelope(self.project, route.topic, route.subscription, msg)
        try:
            ok = self.http.post(route.url, headers=headers, content=body).is_success
        except httpx.HTTPError:
            ok = False
        if ok:
            self.subscriber.acknowledge(request={"subscription": route.subscription, "ack_ids": [received.ack_id]})
            self._settle(route, received.ack_id)
            stats.attempts.pop(msg.message_id, None)
            stats.delivered += 1
            return True
        n = stats.attempts.get(msg.message_id, 0) + 1
        stats.attempts[msg.message_id] = n
        if n >= self.max_attempts and route.dead_letter_topic:
            attrs = {
                **dict(msg.attributes),
                "dead_letter_subscription": route.subscription,
                "delivery_attempts": str(n),
            }
            self.publisher.publish(route.dead_letter_topic, msg.data, **attrs).result(timeout=30)
            self.subscriber.acknowledge(request={"subscription": route.subscription, "ack_ids": [received.ack_id]})
            self._settle(route, received.ack_id)
            stats.attempts.pop(msg.message_id, None)
            stats.dead_lettered += 1
            log_json(
                log, "ERROR", "moved to dead letter", id=msg.message_id, subscription=route.subscription, attempts=n
            )
            return True
        stats.retried += 1
        if route.ordered:
            # NOTE: keep the lease while the caller retries this message in place
            self.subscriber.modify_ack_deadline(
                request={"subscription": route.subscription, "ack_ids": [received.ack_id], "ack_deadline_seconds": 60}
            )
            return False
        delay = min(60, int(self.backoff * 2 ** (n - 1)) or 1)
        # NOTE: redeliver after `delay` seconds: the ack deadline is the earliest redelivery.
        self.subscriber.modify_ack_deadline(
            request={"subscription": route.subscription, "ack_ids": [received.ack_id], "ack_deadline_seconds": delay}
        )
        self._settle(route, received.ack_id)
        return True
