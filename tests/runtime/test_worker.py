from __future__ import annotations

import json
import time

from eventmgmt.runtime.worker import BackgroundSubscriber
from eventmgmt.transport import encode_message, to_cloudevent


def ce(n: int):
    return to_cloudevent("p", "t", "s", encode_message(b"{}", {}, str(n)))


def test_retries_then_dead_letters_and_keeps_order(tmp_path):
    seen, calls = [], {"n": 0}

    def handler(e):
        calls["n"] += 1
        if e["id"] == "2":
            raise ConnectionError("sink down")
        seen.append(e["id"])

    sub = BackgroundSubscriber("route", handler, tmp_path / "dl.jsonl", max_attempts=3, sleep=lambda s: None)
    for i in range(1, 4):
        sub.handle(ce(i))
    assert sub.drain()
    sub.close()
    assert seen == ["1", "3"] and calls["n"] == 5
    (dead,) = (json.loads(x) for x in (tmp_path / "dl.jsonl").read_text().splitlines())
    assert dead["ce_id"] == "2" and "sink down" in dead["error"]


def test_periodic_task_runs_at_start_and_again_every_interval(tmp_path):
    runs: list[float] = []
    sub = BackgroundSubscriber(
        "route", lambda e: None, tmp_path / "dl.jsonl", periodic=lambda: runs.append(1), every=0.05
    )
    deadline = time.monotonic() + 5
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sub.close(1.0) is True
    assert len(runs) >= 3


def test_close_handles_what_is_queued_until_its_deadline_then_stops(tmp_path):
    seen: list[str] = []

    def slow(e):
        time.sleep(0.05)
        seen.append(e["id"])

    sub = BackgroundSubscriber("route", slow, tmp_path / "dl.jsonl")
    for i in range(100):
        sub.handle(ce(i))
    t0 = time.monotonic()
    assert sub.close(0.3) is False  # 100 messages of 50 ms do not fit in 0.3 s
    assert time.monotonic() - t0 < 0.3 + 1.5  # the message in hand finishes; no more
    assert 0 < len(seen) < 100 and seen == [str(i) for i in range(len(seen))]
    quick = BackgroundSubscriber("route", lambda e: None, tmp_path / "dl.jsonl")
    for i in range(100):
        quick.handle(ce(i))
    assert quick.close(5.0) is True
