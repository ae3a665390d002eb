"""The chain on Pub/Sub: Google's fake (pstest), each function in its own functions-framework
process, and the push bridge. Captures posted to the ingest function end as the incidents replay
finds; a function killed mid-stream loses nothing and duplicates nothing; poison ends in the
dead-letter topic."""

from __future__ import annotations

import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from google.cloud import pubsub_v1
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from eventmgmt.config import default_config
from eventmgmt.emulator.stack import Stack
from eventmgmt.replay import run_replay
from eventmgmt.store.tables import EventRow, IncidentRow
from tests.support.incidents import BACKFILL_TOKEN, capture_headers

# NOTE: the bridge polls pstest with return_immediately (bridge.py: IDLE_POLL); the client warns each time
pytestmark = pytest.mark.filterwarnings("ignore:The return_immediately flag:DeprecationWarning")
SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"
CAPTURES = SCENARIOS / "public-1" / "captures.jsonl"


@pytest.fixture(scope="module")
def have_go():
    if not shutil.which("go") or not Path("/usr/share/gocode/src/cloud.google.com/go/pubsub/pstest").exists():
        pytest.skip("Go and Debian's golang-google-cloud-dev are needed to build pstest (make debs installs them)")
    if not CAPTURES.exists():
        pytest.skip(f"scenario captures not present at {CAPTURES}")


def post_all(stack: Stack, caps: list[dict]) -> None:
    with httpx.Client(base_url=stack.url("ingest"), timeout=60) as http:
        for cap in caps:
            r = http.post(
                f"/ingest/{cap['source']}",
                json=cap["body"],
                headers=capture_headers(cap),
            )
            assert r.status_code == 202, r.text


def partition_db(url: str) -> tuple[set[frozenset[str]], int]:
    engine = create_engine(url)
    with Session(engine) as s:
        groups: dict[str, set[str]] = defaultdict(set)
        for e in s.scalars(select(EventRow).where(EventRow.incident_id.is_not(None))):
            groups[e.incident_id].add(f"{e.capture}#{e.idx}")
        n = s.scalar(select(func.count()).select_from(EventRow))
        incidents = s.scalar(select(func.count()).select_from(IncidentRow).where(IncidentRow.status != "merged"))
    engine.dispose()
    assert incidents == len(groups)
    return {frozenset(g) for g in groups.values()}, n or 0


def replay_partition() -> set[frozenset[str]]:
    result = run_replay(str(CAPTURES), default_config(), None)
    return {frozenset(f"{e['capture']}#{e['index']}" for e in inc["events"]) for inc in result.incidents}


def wait_for_events(stack: Stack, want: int, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    engine = create_engine(stack.env["EVENTMGMT_DATABASE_URL"])
    try:
        n = 0
        while time.monotonic() < deadline:
            try:
                with Session(engine) as s:
                    n = s.scalar(select(func.count()).select_from(EventRow)) or 0
            except OperationalError:
                n = 0  # NOTE: correlate creates its tables on its first delivery
            if n >= want:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()
    raise TimeoutError(f"only {n} of {want} events reached correlate")


def assert_dashboard_shows_and_acks(stack: Stack, live: set[frozenset[str]]) -> None:
    board = httpx.Client(base_url=stack.url("dashboard"), timeout=30)
    page = board.get("/api/incidents", params={"limit": 500}).json()
    assert page["total"] == len(live) and len(page["incidents"]) == len(live)
    shown = {i["id"] for i in page["incidents"]}
    with Session(engine := create_engine(stack.env["EVENTMGMT_DATABASE_URL"])) as s:
        stored = set(s.scalars(select(IncidentRow.id).where(IncidentRow.status != "merged")))
    engine.dispose()
    assert shown == stored
    assert board.get("/").status_code == 200
    assert board.post("/ingest/alertmanager", json={"alerts": []}).status_code == 404
    route = stack.bridge.stats[f"projects/{stack.project}/subscriptions/events-correlated-route"]
    before = route.delivered
    target = next(i for i in page["incidents"] if i["status"] == "open")
    r = board.post(f"/api/incidents/{target['id']}/ack", json={"by": "emulator-test"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged", r.text
    assert board.get(f"/api/incidents/{target['id']}").json()["acknowledged_by"] == "emulator-test"
    deadline = time.monotonic() + 30
    while route.delivered <= before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert route.delivered > before, "the ack never reached the route function"
    board.close()


def test_emulator_stack_matches_replay_and_survives_a_killed_function(tmp_path, have_go):
    caps = [json.loads(line) for line in CAPTURES.read_text().splitlines()]
    expected = run_replay(str(CAPTURES), default_config(), None)
    kept = sum(v for k, v in expected.by_class.items() if k != "filtered")
    stack = Stack(
        home=tmp_path,
        max_attempts=5,
        backoff=1.0,
        extra_env={"EVENTMGMT_BACKFILL_TOKEN": BACKFILL_TOKEN},
        dashboard=True,
    ).start()
    try:
        half = len(caps) // 2
        post_all(stack, caps[:half])
        stack.kill("correlate")  # mid-stream, SIGKILL: in-flight delivery fails, the rest waits in order
        post_all(stack, caps[half : half + 40])
        stack.restart("correlate")
        post_all(stack, caps[half + 40 :])
        wait_for_events(stack, kept)
        stack.wait_idle()
        live, stored = partition_db(stack.env["EVENTMGMT_DATABASE_URL"])
        assert stored == kept  # every event processed exactly once
        assert live == replay_partition()  # the same incidents as replay, none duplicated

        # the dashboard-only server shows what the functions stored, and its ack reaches route
        assert_dashboard_shows_and_acks(stack, live)

        # poison: a message no function can ever accept ends in the dead-letter topic
        pub = pubsub_v1.PublisherClient()
        stack.kill("route")
        pub.publish(pub.topic_path(stack.project, "events-correlated"), b'{"event": {}}').result(timeout=30)
        sub = pubsub_v1.SubscriberClient()
        dl = sub.subscription_path(stack.project, "events-correlated-dead-letter-inspect")
        deadline = time.monotonic() + 60
        got = []
        while time.monotonic() < deadline and not got:
            got = list(sub.pull(request={"subscription": dl, "max_messages": 10}, timeout=5).received_messages)
        stats = stack.bridge.stats[sub.subscription_path(stack.project, "events-correlated-route")]
        assert got, (stats, [p.poll() for p in stack.procs.values()])
        assert got[0].message.attributes["delivery_attempts"] == "5"
        # the bridge counts a dead letter once the dead-letter publish has returned and the original is
        # acknowledged; the pull above can see the message a moment before that
        settle = time.monotonic() + 10
        while stats.dead_lettered == 0 and time.monotonic() < settle:
            time.sleep(0.05)
        assert stats.dead_lettered == 1
    finally:
        stack.stop()


@pytest.mark.parametrize("push_batch", [50, 1], ids=["batched", "one-a-push"])
def test_bridge_subscriber_restarted_mid_stream(tmp_path, have_go, push_batch):
    """The push bridge replaced twice while the backlog drains: once cleanly (it hands back what it
    had pulled), once abandoned mid-batch as a crash leaves it (its messages come back when their ack
    deadline passes). Every event once, the incidents replay finds. Batched pushes to the functions'
    batch targets, and one message a push to their CloudEvent targets, as Eventarc does."""
    caps = [json.loads(line) for line in CAPTURES.read_text().splitlines()]
    expected = run_replay(str(CAPTURES), default_config(), None)
    kept = sum(v for k, v in expected.by_class.items() if k != "filtered")
    stack = Stack(
        home=tmp_path,
        max_attempts=5,
        backoff=1.0,
        ack_deadline=10,
        push_batch=push_batch,
        extra_env={"EVENTMGMT_BACKFILL_TOKEN": BACKFILL_TOKEN},
    ).start()
    try:
        third = len(caps) // 3
        post_all(stack, caps[:third])
        handed_back = stack.restart_bridge(graceful=True)
        post_all(stack, caps[third : 2 * third])
        abandoned = stack.restart_bridge(graceful=False)
        post_all(stack, caps[2 * third :])
        wait_for_events(stack, kept)
        stack.wait_idle(quiet=12.0)  # past the ack deadline of anything the abandoned bridge held
        live, stored = partition_db(stack.env["EVENTMGMT_DATABASE_URL"])
        assert stored == kept
        assert live == replay_partition()
        print("bridge restart:", json.dumps({"handed_back": handed_back, "abandoned": abandoned, "events": stored}))
    finally:
        stack.stop()
