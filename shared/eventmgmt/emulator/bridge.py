"""What Eventarc does for a Pub/Sub trigger, locally: pull a subscription, POST each message to the
function as a binary-mode `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent, acknowledge on
2xx, redeliver with backoff otherwise, and move it to the dead-letter topic after `max_attempts`.

Synchronous pull, not streaming pull: DESIGN.md measured pstest's streaming pull at ~90 messages/s
and synchronous pull at thousands. The fake does not enforce dead-letter policies, so the bridge
counts attempts itself.

A route with `batch` > 1 pushes what it pulled several messages a request (CloudEvents batched
content mode, to the function's batch target: see push.py) and acknowledges them together once the
function answers 2xx; a batch that fails is delivered again one message a push, so each message is
retried, counted and dead-lettered on its own, and none is lost with it. Ordered routes keep publish
order within and across batches."""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from cloudevents.conversion import to_binary, to_dict
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.pubsub_v1 import SubscriberClient as GapicSubscriberClient
from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

from ..logjson import log_json
from ..transport import to_cloudevent
from .push import BATCH_CONTENT_TYPE

log = logging.getLogger("eventmgmt.bridge")

# NOTE: pstest's Pull, when nothing is pending, waits a flat 500 ms before looking again (it is not
# woken by a publish), so every stage that caught up with the one before it sat out half a second,
# and the drain's last message did at each hop. The bridge asks it to answer at once and polls
# instead, from IDLE_POLL[0] doubling to IDLE_POLL[1] while the subscription stays empty.
# (The client library then issues a DeprecationWarning a pull, shown only under pytest: the field
# is discouraged on Google Cloud, where its Pull does not wait in this way.)
IDLE_POLL = (0.005, 0.05)


@dataclass
class Route:
    subscription: str  # projects/P/subscriptions/S
    topic: str
    url: str
    dead_letter_topic: str | None = None
    # Ordered delivery, as a subscription with message ordering: a message that fails is retried
    # (with backoff) before any later one is delivered.
    ordered: bool = False
    # Messages a push, and events they hold (their `events` or `messages` attribute; 1 without) a
    # push: above 1, `url` is the function's batch target (push.py). A message holding more is
    # pushed alone.
    batch: int = 1
    batch_events: int = 1000
    # Pushes in flight at once; unordered routes only (an ordered route delivers in publish order).
    concurrency: int = 1


@dataclass
class BridgeStats:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    pushes: int = 0  # HTTP requests, batches and single messages
    batches_failed: int = 0  # batches answered with an error, delivered again one message a push
    last_delivered: float = 0.0  # time.perf_counter() when a message was last acknowledged
    attempts: dict[str, int] = field(default_factory=dict)


def cloudevent(project: str, topic: str, subscription: str, msg: Any) -> Any:
    """The messagePublished CloudEvent Eventarc sends for one received Pub/Sub message."""
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
    return to_cloudevent(project, topic, subscription.rsplit("/", 1)[-1], message)


def envelope(project: str, topic: str, subscription: str, msg: Any) -> tuple[dict[str, str], bytes]:
    """The HTTP request Eventarc sends for one received Pub/Sub message (binary mode)."""
    headers, body = to_binary(cloudevent(project, topic, subscription, msg))
    return dict(headers), body


def batch_envelope(project: str, topic: str, subscription: str, msgs: list[Any]) -> tuple[dict[str, str], bytes]:
    """One request for several received messages: their CloudEvents in the batched content mode."""
    items = [to_dict(cloudevent(project, topic, subscription, m)) for m in msgs]
    return {"content-type": BATCH_CONTENT_TYPE}, json.dumps(items, separators=(",", ":")).encode()


def _weight(msg: Any) -> int:
    """Events (or correlated messages) a message holds, by the attribute its publisher sets."""
    attrs = msg.attributes
    raw = attrs.get("events") or attrs.get("messages") or "1"
    return int(raw) if raw.isdigit() and int(raw) > 0 else 1


def chunks(route: Route, received: list[Any]) -> list[list[Any]]:
    """`received` (in order) cut into pushes of at most `route.batch` messages and
    `route.batch_events` events, in order."""
    out: list[list[Any]] = []
    size = 0
    for r in received:
        w = _weight(r.message)
        if not out or len(out[-1]) >= route.batch or size + w > route.batch_events:
            out.append([])
            size = 0
        out[-1].append(r)
        size += w
    return out


def subscriber_client() -> Any:
    """A subscriber whose pulls may be of any size. Against the emulator the client library connects
    over a channel with gRPC's default 4 MiB receive limit: a pull of a backlog above it (about 25
    storm webhooks' enriched events) failed with RESOURCE_EXHAUSTED after pstest had leased the
    messages, which then came back only at their ack deadline, behind later ones."""
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        return pubsub_v1.SubscriberClient()
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    channel = grpc.insecure_channel(host, options=options)
    return GapicSubscriberClient(transport=SubscriberGrpcTransport(channel=channel, host=host))


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
        self.subscriber = subscriber or subscriber_client()
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
        pool = ThreadPoolExecutor(route.concurrency) if route.concurrency > 1 and not route.ordered else None
        wait = IDLE_POLL[0]
        try:
            while not self._stop.is_set():
                try:
                    resp = self.subscriber.pull(
                        request={
                            "subscription": route.subscription,
                            "max_messages": self._max(route),
                            "return_immediately": True,
                        },
                        timeout=5.0,
                    )
                except gexc.GoogleAPICallError as err:  # NOTE: the thread must outlive any of them
                    log.debug("pull %s: %s", route.subscription, err)
                    self.idle[route.subscription].set()
                    time.sleep(0.2)
                    continue
                if not resp.received_messages:
                    self.idle[route.subscription].set()
                    self._stop.wait(wait)
                    wait = min(IDLE_POLL[1], wait * 2)
                    continue
                wait = IDLE_POLL[0]
                self.idle[route.subscription].clear()
                received_messages = list(resp.received_messages)
                self._lease(route, received_messages)
                if route.ordered:
                    received_messages.sort(key=_publish_order)
                    self._deliver_in_order(route, chunks(route, received_messages))
                elif pool is not None:
                    list(pool.map(lambda c: self._push(route, c), chunks(route, received_messages)))
                else:
                    for chunk in chunks(route, received_messages):
                        if self._stop.is_set():
                            return
                        self._push(route, chunk)
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    def _max(self, route: Route) -> int:
        # NOTE: pstest hands out pending messages in no particular order; an ordered route takes the
        # whole backlog and sorts it (publish order), as an ordered subscription would deliver it.
        # An unordered one takes enough for `concurrency` full pushes, and no more: what it pulls
        # stays leased until pushed, and the ack deadline runs meanwhile.
        return 5000 if route.ordered else max(self.batch, route.batch * route.concurrency)

    def _deliver_in_order(self, route: Route, pushes: list[list[Any]]) -> None:
        """Each push in turn; the messages of one that failed one at a time, each retried in place
        (with backoff) until it is delivered or dead-lettered, before any later message."""
        for chunk in pushes:
            if self._stop.is_set():
                return
            if len(chunk) > 1 and self._push_batch(route, chunk):
                continue
            for received in chunk:
                while not self._deliver(route, received) and not self._stop.is_set():
                    n = self.stats[route.subscription].attempts.get(received.message.message_id, 0)
                    self._stop.wait(min(30.0, self.backoff * 2 ** max(0, n - 1)))
                if self._stop.is_set():
                    return

    def _push(self, route: Route, chunk: list[Any]) -> None:
        """An unordered push: a batch, or what a failed batch held one message a push (each
        redelivered after its own backoff if it fails)."""
        if len(chunk) > 1 and self._push_batch(route, chunk):
            return
        for received in chunk:
            self._deliver(route, received)

    def _push_batch(self, route: Route, chunk: list[Any]) -> bool:
        """True when the function handled every message of `chunk` (all acknowledged at once). On
        an error nothing is acknowledged or counted as an attempt: the caller delivers them again
        one a push."""
        stats = self.stats[route.subscription]
        headers, body = batch_envelope(self.project, route.topic, route.subscription, [r.message for r in chunk])
        self._count(stats, "pushes")
        try:
            ok = self.http.post(route.url, headers=headers, content=body).is_success
        except httpx.HTTPError:
            ok = False
        if not ok:
            self._count(stats, "batches_failed")
            log.debug("batch of %d to %s failed: delivering them one a push", len(chunk), route.url)
            return False
        ack_ids = [r.ack_id for r in chunk]
        self.subscriber.acknowledge(request={"subscription": route.subscription, "ack_ids": ack_ids})
        with self._leased_lock:
            self._leased[route.subscription].difference_update(ack_ids)
            for r in chunk:
                stats.attempts.pop(r.message.message_id, None)
            stats.delivered += len(chunk)
            stats.last_delivered = time.perf_counter()
        return True

    def _count(self, stats: BridgeStats, name: str, n: int = 1) -> None:
        # NOTE: an unordered route's pushes run on several threads
        with self._leased_lock:
            setattr(stats, name, getattr(stats, name) + n)

    def _attempt(self, stats: BridgeStats, message_id: str) -> int:
        with self._leased_lock:
            n = stats.attempts[message_id] = stats.attempts.get(message_id, 0) + 1
            return n

    def _done(self, stats: BridgeStats, message_id: str, name: str) -> None:
        with self._leased_lock:
            stats.attempts.pop(message_id, None)
            setattr(stats, name, getattr(stats, name) + 1)
            stats.last_delivered = time.perf_counter()

    def _deliver(self, route: Route, received: Any) -> bool:
        """True when the message is done with (delivered or dead-lettered)."""
        msg = received.message
        stats = self.stats[route.subscription]
        headers, body = envelope(self.project, route.topic, route.subscription, msg)
        self._count(stats, "pushes")
        try:
            ok = self.http.post(route.url, headers=headers, content=body).is_success
        except httpx.HTTPError:
            ok = False
        if ok:
            self.subscriber.acknowledge(request={"subscription": route.subscription, "ack_ids": [received.ack_id]})
            self._settle(route, received.ack_id)
            self._done(stats, msg.message_id, "delivered")
            return True
        n = self._attempt(stats, msg.message_id)
        if n >= self.max_attempts and route.dead_letter_topic:
            attrs = {
                **dict(msg.attributes),
                "dead_letter_subscription": route.subscription,
                "delivery_attempts": str(n),
            }
            self.publisher.publish(route.dead_letter_topic, msg.data, **attrs).result(timeout=30)
            self.subscriber.acknowledge(request={"subscription": route.subscription, "ack_ids": [received.ack_id]})
            self._settle(route, received.ack_id)
            self._done(stats, msg.message_id, "dead_lettered")
            log_json(
                log, "ERROR", "moved to dead letter", id=msg.message_id, subscription=route.subscription, attempts=n
            )
            return True
        self._count(stats, "retried")
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
