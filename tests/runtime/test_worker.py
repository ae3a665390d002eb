from __future__ import annotations

import json

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
