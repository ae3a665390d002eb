"""The push bridge's batched pushes (emulator/bridge.py, emulator/push.py) against Google's Pub/Sub
fake and a stand-in function: a batch is acknowledged only once the function answered 2xx for all
of it; a batch that fails is delivered again one message a push, so a failing message is retried
(or dead-lettered) on its own and none of the others is lost or delivered twice; an ordered route
keeps publish order across a failure; the function side decodes batches and single CloudEvents."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cloudevents.conversion import to_binary, to_structured

from eventmgmt.emulator.bridge import Bridge, Route, batch_envelope, chunks
from eventmgmt.emulator.push import BATCH_CONTENT_TYPE, BadPush, cloudevents_of, handle_push
from eventmgmt.transport import decode, encode_message, to_cloudevent

pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")
PROJECT = "batch-test"


# --- the function side: what a batch target reads --------------------------------------------------


def _ce(n: int) -> Any:
    return to_cloudevent(PROJECT, "t", "s", encode_message(json.dumps({"n": n}).encode(), {}, f"m{n}"))


def test_a_batch_and_single_cloudevents_decode_in_order() -> None:
    body = json.dumps([json.loads(to_structured(_ce(n))[1]) for n in range(3)]).encode()
    got = cloudevents_of(f"{BATCH_CONTENT_TYPE}; charset=utf-8", {}, body)
    assert [decode(ce)[0] for ce in got] == [{"n": 0}, {"n": 1}, {"n": 2}]
    headers, single = to_binary(_ce(7))
    assert [decode(ce)[0] for ce in cloudevents_of("application/json", headers, single)] == [{"n": 7}]
    headers, structured = to_structured(_ce(8))
    assert [decode(ce)[0] for ce in cloudevents_of(headers["content-type"], headers, structured)] == [{"n": 8}]


@pytest.mark.parametrize("body", [b"not json", b"{}", b"[1, 2]", b'[{"specversion": "1.0"}]'])
def test_a_malformed_batch_is_refused_whole(body: bytes) -> None:
    with pytest.raises(BadPush):
        cloudevents_of(BATCH_CONTENT_TYPE, {}, body)
    handled: list[Any] = []
    answer, status = handle_push(BATCH_CONTENT_TYPE, {}, body, handled.extend)
    assert status == 400 and answer["field"] == "body" and handled == []


def test_the_bridge_batch_envelope_is_what_the_target_reads() -> None:
    @dataclass
    class Msg:
        data: bytes
        message_id: str
        attributes: dict[str, str] = field(default_factory=dict)
        publish_time: Any = None
        ordering_key: str = "c1"

    msgs = [Msg(json.dumps({"n": n}).encode(), f"m{n}") for n in range(3)]
    headers, body = batch_envelope(PROJECT, "t", f"projects/{PROJECT}/subscriptions/s", msgs)
    got = cloudevents_of(headers["content-type"], headers, body)
    assert [ce["id"] for ce in got] == ["m0", "m1", "m2"]
    assert [decode(ce)[0]["n"] for ce in got] == [0, 1, 2]
    assert got[0].get_data()["message"]["orderingKey"] == "c1"
    assert got[0].get_data()["subscription"] == f"projects/{PROJECT}/subscriptions/s"


def test_pushes_are_cut_by_messages_and_by_events() -> None:
    @dataclass
    class Received:
        message: Any

    @dataclass
    class Msg:
        attributes: dict[str, str]

    got = [Received(Msg({"events": str(n)})) for n in (100, 100, 900, 5000, 1, 1, 1)]
    route = Route("s", "t", "http://x", batch=3, batch_events=1000)
    sizes = [[int(r.message.attributes["events"]) for r in c] for c in chunks(route, got)]
    # at most 3 messages and 1,000 events a push; a message over the cap goes alone
    assert sizes == [[100, 100], [900], [5000], [1, 1, 1]]


# --- the bridge against pstest and a stand-in function ----------------------------------------------


@pytest.fixture(scope="module")
def pstest() -> Iterator[str]:
    if not shutil.which("go") or not Path("/usr/share/gocode/src/cloud.google.com/go/pubsub/pstest").exists():
        pytest.skip("Go and Debian's golang-google-cloud-dev are needed to build pstest (make debs installs them)")
    from eventmgmt.emulator.stack import build_pstest

    proc = subprocess.Popen([str(build_pstest())], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


class Function:
    """A stand-in batch target: records the payload numbers of each request it answered 2xx, in
    order; `fail(numbers)` says whether to answer 500 to a request holding these; `gate` holds
    requests until set."""

    def __init__(self, fail: Callable[[list[int]], bool] = lambda ns: False, port: int = 0) -> None:
        self.fail = fail
        self.handled: list[list[int]] = []
        self.requests: list[list[int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        fn = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                ns = [decode(ce)[0]["n"] for ce in cloudevents_of(self.headers["content-type"], self.headers, body)]
                fn.requests.append(ns)
                fn.waiting.set()
                fn.gate.wait(30)
                ok = not fn.fail(ns)
                if ok:
                    fn.handled.append(ns)
                self.send_response(200 if ok else 500)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def numbers(self) -> list[int]:
        return [n for ns in self.handled for n in ns]


@pytest.fixture
def pubsub(pstest: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[Bridge, Route]]]:
    """`make(name, function, ordered=..., batch=...)`: a topic, its subscription and dead-letter
    topic, and a started bridge pushing to `function`."""
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", pstest)
    from google.cloud import pubsub_v1

    from eventmgmt.emulator.bridge import subscriber_client

    pub, sub = pubsub_v1.PublisherClient(), subscriber_client()
    bridges: list[Bridge] = []

    def make(name: str, fn: Function, ordered: bool = False, attempts: int = 3, **route: Any) -> tuple[Bridge, Route]:
        topic, dead = pub.topic_path(PROJECT, name), pub.topic_path(PROJECT, f"{name}-dead")
        for t in (topic, dead):
            pub.create_topic(name=t)
        path = sub.subscription_path(PROJECT, name)
        sub.create_subscription(request={"name": path, "topic": topic, "ack_deadline_seconds": 10})
        sub.create_subscription(
            request={"name": f"{path}-dead", "topic": dead, "ack_deadline_seconds": 10},
        )
        r = Route(path, name, fn.url, dead, ordered=ordered, **route)
        bridge = Bridge(PROJECT, [r], publisher=pub, max_attempts=attempts, backoff=0.1)
        bridges.append(bridge)
        return bridge, r

    try:
        yield make
    finally:
        for b in bridges:
            b.stop()


def publish(name: str, numbers: range, ordering_key: str = "") -> None:
    from google.cloud import pubsub_v1

    pub = pubsub_v1.PublisherClient(publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    topic = pub.topic_path(PROJECT, name)
    futures = [pub.publish(topic, json.dumps({"n": n}).encode(), ordering_key=ordering_key) for n in numbers]
    for f in futures:
        f.result(timeout=30)


def wait_until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_batch_is_acknowledged_only_once_the_function_answered(pubsub) -> None:
    fn = Function()
    fn.gate.clear()
    try:
        bridge, route = pubsub("held", fn, batch=50)
        publish("held", range(20))
        bridge.start()
        wait_until(fn.waiting.is_set)  # the function holds the first push
        time.sleep(0.3)
        stats = bridge.stats[route.subscription]
        assert stats.delivered == 0 and bridge._leased[route.subscription]  # pulled, not acknowledged
        assert len(fn.requests[0]) > 1  # several messages in that one push
        fn.gate.set()
        wait_until(lambda: stats.delivered == 20)
        assert sorted(fn.numbers()) == list(range(20))
        assert stats.pushes < 20 and stats.retried == 0 and not bridge._leased[route.subscription]
    finally:
        fn.gate.set()
        fn.close()


def test_a_message_failing_in_a_batch_is_redelivered_without_losing_the_others(pubsub) -> None:
    """Message 7 fails twice, then succeeds; 13 always fails (dead-lettered after 3 attempts). The
    batches holding them fail; the bridge delivers their messages one a push: every other message
    is handled exactly once, 7 once after its retries, 13 never."""
    tries = {7: 0}

    def fail(ns: list[int]) -> bool:
        if 13 in ns:
            return True
        if 7 in ns:
            if len(ns) > 1:
                return True
            tries[7] += 1
            return tries[7] <= 2
        return False

    fn = Function(fail)
    try:
        bridge, route = pubsub("flaky", fn, batch=50)
        publish("flaky", range(30))
        bridge.start()
        stats = bridge.stats[route.subscription]
        wait_until(lambda: stats.delivered + stats.dead_lettered == 30)
        got = fn.numbers()
        assert sorted(got) == [n for n in range(30) if n != 13]  # each once: none lost, none twice
        assert stats.batches_failed >= 1 and stats.dead_lettered == 1 and tries[7] == 3
        assert any(len(r) > 1 for r in fn.requests)  # it did push batches
    finally:
        fn.close()


def test_an_ordered_route_keeps_publish_order_across_a_failed_batch(pubsub) -> None:
    """An ordered route: the batch holding 25 fails until 25 has failed twice alone; what was
    handled, in handling order, is the publish order, each once."""
    tries = {"alone": 0}

    def fail(ns: list[int]) -> bool:
        if 25 not in ns:
            return False
        if len(ns) > 1:
            return True
        tries["alone"] += 1
        return tries["alone"] <= 2

    fn = Function(fail)
    try:
        bridge, route = pubsub("ordered", fn, ordered=True, batch=10)
        publish("ordered", range(60), ordering_key="cluster-a")
        bridge.start()
        stats = bridge.stats[route.subscription]
        wait_until(lambda: stats.delivered == 60)
        assert fn.numbers() == list(range(60))
        assert stats.batches_failed >= 1 and stats.dead_lettered == 0
        assert max(len(ns) for ns in fn.handled) > 1
    finally:
        fn.close()


def test_a_function_that_is_down_gets_the_batch_again(pubsub) -> None:
    """Connection refused (a killed instance): nothing is acknowledged; the messages come back and
    are delivered once it is up again."""
    down = Function()
    down.close()
    bridge, route = pubsub("down", down, attempts=5, batch=50)
    publish("down", range(10))
    bridge.start()
    stats = bridge.stats[route.subscription]
    wait_until(lambda: stats.retried >= 1)
    assert stats.delivered == 0 and stats.batches_failed >= 1
    up = Function(port=down.server.server_address[1])
    try:
        wait_until(lambda: stats.delivered == 10)
        assert sorted(up.numbers()) == list(range(10))
    finally:
        up.close()


def test_warm_start_builds_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from eventmgmt.emulator import push

    built: list[int] = []
    frozen: list[str] = []
    monkeypatch.setattr(push.gc, "freeze", lambda: frozen.append("freeze"))
    monkeypatch.setattr(push.gc, "set_threshold", lambda *a: frozen.append("threshold"))
    monkeypatch.delenv(push.WARM_START_ENV, raising=False)
    push.warm_start(lambda: built.append(1))
    assert built == [] and frozen == []
    monkeypatch.setenv(push.WARM_START_ENV, "1")
    push.warm_start(lambda: built.append(1))
    assert built == [1] and frozen == ["freeze", "threshold"]

    def broken() -> None:
        raise RuntimeError("database not up yet")

    push.warm_start(broken)  # logged; the first delivery builds it again
    assert os.environ[push.WARM_START_ENV] == "1"
