"""Archive writes through fsspec to a real local folder; retention moves and deletes exactly what
policy says, at exactly N days, respects legal holds, and is safe to repeat and to run concurrently."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import functions_framework
import pytest
from cloudevents.conversion import to_binary

from eventmgmt.archive import Archiver, retention_config, run_retention
from eventmgmt.archive.lifecycle import lifecycle_rules
from eventmgmt.archive.policy import Hold
from eventmgmt.archive.retention import HOLD_MARKER, partitions
from eventmgmt.archive.writer import ArchiveWriter, read_partition
from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.transport import encode_message, to_cloudevent
from eventmgmt.transport.publisher import dumps
from tests.correlate.helpers import at, ev

ROOT = Path(__file__).resolve().parents[2]
POLICY = retention_config(default_config().section("retention"))


def messages():
    corr = Correlator(default_config(), MemoryRepo())
    out = []
    for e in [
        ev("model_load_failed", 0, pod="triton-bert-large-r9w2fh26mf-6n65v", model="bert-large", source="log"),
        ev("high_error_rate", 1, pod="triton-bert-large-r9w2fh26mf-6n65v", model="bert-large"),
        ev("node_drain", 2, node="n1", name="cordon"),
        ev("pod_lifecycle", 3, pod="triton-bert-large-r9w2fh26mf-6n65v", name="sched").model_copy(
            update={"source": "k8s-event"}
        ),
    ]:
        out += corr.process(e, e.received_at).messages
    return out


def test_every_type_lands_in_its_partition_and_reads_back(tmp_path):
    arch = Archiver(str(tmp_path), batch=1)
    for m in messages():
        arch.add(m)
    day = at(0).date().isoformat()
    found = {p.relative_to(tmp_path).parts[:3] for p in tmp_path.rglob("*.jsonl.gz")}
    assert found == {("hot", t, f"dt={day}") for t in ("log", "alert", "audit", "info", "incident")}
    logs = read_partition(str(tmp_path / "hot" / "log"))
    assert [r["kind"] for r in logs] == ["model_load_failed"] and logs[0]["incident_id"]
    incidents = read_partition(str(tmp_path / "hot" / "incident"))
    assert {r["lifecycle"] for r in incidents} == {"opened", "updated"}


def test_redelivery_is_not_archived_twice(tmp_path):
    arch = Archiver(str(tmp_path), batch=1)
    msgs = messages()
    for m in msgs + msgs:
        arch.add(m)
    fresh = Archiver(str(tmp_path), batch=1)  # a new instance (restart): same objects rewritten
    for m in msgs:
        fresh.add(m)
    records = read_partition(str(tmp_path))
    ids = [(r["record"], r.get("id"), r.get("version"), r.get("lifecycle")) for r in records]
    # NOTE: something was archived (an empty archive has no duplicates either), and exactly once
    once = Archiver(str(tmp_path / "once"), batch=1)
    for m in msgs:
        once.add(m)
    assert len(ids) == len(set(ids)) == len(read_partition(str(tmp_path / "once"))) > 0


def archived(root: Path) -> list[str]:
    return sorted(
        json.dumps(r, sort_keys=True)
        for part in sorted({p.parent.parent for p in root.rglob("*.jsonl.gz")})
        for r in read_partition(str(part))
    )


def test_deferred_messages_are_archived_on_flush_or_past_the_bound(tmp_path):
    """The embedded drain hands messages over without archiving them; `flush` (the runtime's, once
    correlation is idle) archives them, and past `defer_up_to` the caller archives everything held:
    either way exactly what archiving at once writes."""
    msgs = messages()
    at_once = Archiver(str(tmp_path / "at-once"), batch=1)
    at_once.add_many(msgs)
    expected = archived(tmp_path / "at-once")
    assert len(expected) >= len(msgs)

    arch = Archiver(str(tmp_path / "a"), batch=2, defer_up_to=len(msgs) + 1)
    arch.add_many(msgs)
    assert archived(tmp_path / "a") == [] and arch.deferred[0] == len(msgs)
    arch.flush()
    assert arch.deferred[0] == 0 and archived(tmp_path / "a") == expected

    bounded = Archiver(str(tmp_path / "b"), batch=1, defer_up_to=2)
    bounded.add_many(msgs[:1])
    assert archived(tmp_path / "b") == []
    bounded.add_many(msgs[1:])  # the bound is passed: all of it is archived in this call
    assert bounded.deferred[0] == 0 and archived(tmp_path / "b") == expected


def test_archive_function_with_a_real_cloudevent(tmp_path, monkeypatch):
    monkeypatch.setenv("EVENTMGMT_ARCHIVE_URL", str(tmp_path))
    app = functions_framework.create_app("archive", str(ROOT / "functions/archive/main.py"), "cloudevent")
    sys.modules["main"].archiver.cache_clear()
    client = app.test_client()
    m = messages()[0]
    headers, body = to_binary(
        to_cloudevent("p", "events-correlated", "archive", encode_message(dumps(m.to_json()), {}, "1"))
    )
    assert client.post("/", headers=headers, data=body).status_code == 200
    assert len(read_partition(str(tmp_path))) == 2  # the event and the incident it opened
    h, b = to_binary(to_cloudevent("p", "events-correlated", "archive", encode_message(b"[]", {}, "2")))
    assert client.post("/", headers=h, data=b).status_code == 200  # poison: acknowledged and logged


# --- retention -----------------------------------------------------------------------------------

DAY = date(2026, 1, 1)


def seed(root: Path, types=("alert", "metric", "log", "audit", "incident", "change", "info"), tier="hot", day=DAY):
    w = ArchiveWriter(str(root))
    for t in types:
        path = root / tier / t / f"dt={day.isoformat()}"
        if tier == "hot":
            w.write([(t, day, f"{t}-1", {"type": t})])
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "x.jsonl.gz").write_bytes(b"\x1f\x8b")


def state(root: Path) -> set[tuple[str, str, str]]:
    return {
        (tier, t, d.isoformat()) for _, tier, t, d in partitions(__import__("fsspec").filesystem("file"), str(root))
    }


def end_of(day: date, days: int) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(days=days)


@pytest.mark.parametrize(
    ("type_", "hot", "delete"),
    [
        ("alert", 90, 90),
        ("metric", 30, 30),
        ("log", 30, 365),
        ("audit", 365, 365),
        ("incident", 90, 90),
        ("change", 90, 365),
        ("info", 30, 30),
    ],
)
def test_boundaries_at_exactly_n_days(tmp_path, type_, hot, delete):
    seed(tmp_path, (type_,))
    d = DAY.isoformat()
    if hot < delete:
        run_retention(str(tmp_path), POLICY, end_of(DAY, hot) - timedelta(seconds=1))
        assert state(tmp_path) == {("hot", type_, d)}
        r = run_retention(str(tmp_path), POLICY, end_of(DAY, hot))
        assert r.moved == [f"hot/{type_}/dt={d}"] and state(tmp_path) == {("cold", type_, d)}
        assert read_partition(str(tmp_path / "cold" / type_)) == [{"type": type_}]  # data survived the move
    r = run_retention(str(tmp_path), POLICY, end_of(DAY, delete) - timedelta(seconds=1))
    assert r.deleted == [] and len(state(tmp_path)) == 1
    r = run_retention(str(tmp_path), POLICY, end_of(DAY, delete))
    assert len(r.deleted) == 1 and state(tmp_path) == set()


def test_nothing_outside_policy_is_deleted_and_a_repeat_is_a_no_op(tmp_path):
    for offset in range(0, 400, 7):
        seed(tmp_path, day=DAY + timedelta(days=offset))
    now = end_of(DAY, 380)
    before = state(tmp_path)
    first = run_retention(str(tmp_path), POLICY, now)
    after = state(tmp_path)
    for _tier, t, d in before - after:
        moved = ("cold", t, d) in after
        rule = POLICY.policy(t)
        limit = rule.hot.days if moved else rule.delete_after.days
        assert now >= end_of(date.fromisoformat(d), limit)  # only what policy allows moved or went
    for _tier, t, d in after:
        day = date.fromisoformat(d)
        assert now < end_of(day, POLICY.policy(t).delete_after.days)  # everything past policy went
    second = run_retention(str(tmp_path), POLICY, now)
    assert second.moved == [] and second.deleted == [] and state(tmp_path) == after
    assert first.objects and first.bytes


def test_dry_run_changes_nothing(tmp_path):
    seed(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    r = run_retention(str(tmp_path), POLICY, end_of(DAY, 400), dry_run=True)
    assert len(r.deleted) == 7 and sorted(p for p in tmp_path.rglob("*")) == before


def test_legal_hold_by_policy_and_by_marker(tmp_path):
    seed(tmp_path, ("alert", "audit", "log"))
    (tmp_path / "hot" / "log" / f"dt={DAY.isoformat()}" / HOLD_MARKER).write_text("case 4711")
    policy = POLICY.model_copy(update={"holds": [Hold(name="case-42", type="audit", start=DAY, end=DAY)]})
    r = run_retention(str(tmp_path), policy, end_of(DAY, 400))
    assert sorted(r.held) == [f"hot/audit/dt={DAY.isoformat()}", f"hot/log/dt={DAY.isoformat()}"]
    assert state(tmp_path) == {("hot", "audit", DAY.isoformat()), ("hot", "log", DAY.isoformat())}


def test_two_concurrent_runs_end_as_one_run(tmp_path):
    for offset in range(0, 400, 3):
        seed(tmp_path, day=DAY + timedelta(days=offset))
    reference = tmp_path / "ref"
    for offset in range(0, 400, 3):
        seed(reference, day=DAY + timedelta(days=offset))
    now = end_of(DAY, 200)
    run_retention(str(reference), POLICY, now)
    errors = []

    def go():
        try:
            run_retention(str(tmp_path), POLICY, now)
        except Exception as err:
            errors.append(err)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {(a, b, c) for a, b, c in state(tmp_path)} == state(reference)
    cold_logs = read_partition(str(tmp_path / "cold" / "log"))
    assert len(cold_logs) == len(read_partition(str(reference / "cold" / "log")))  # moved once, nothing lost


def test_crash_mid_move_loses_nothing(tmp_path):
    seed(tmp_path, ("log",))
    src = tmp_path / "hot" / "log" / f"dt={DAY.isoformat()}"
    dst = tmp_path / "cold" / "log" / f"dt={DAY.isoformat()}"
    dst.mkdir(parents=True)
    for f in src.iterdir():  # the copy happened, the delete did not
        (dst / f.name).write_bytes(f.read_bytes())
    run_retention(str(tmp_path), POLICY, end_of(DAY, 31))
    assert state(tmp_path) == {("cold", "log", DAY.isoformat())}
    assert read_partition(str(dst)) == [{"type": "log"}]


def test_lifecycle_rules_mirror_the_policy():
    rules = lifecycle_rules(POLICY)
    deletes = {
        r["condition"]["matches_prefix"][0].split("/")[1]: r["condition"]["age"]
        for r in rules
        if r["action"]["type"] == "Delete"
    }
    assert deletes == {"alert": 91, "metric": 31, "log": 366, "audit": 366, "incident": 91, "change": 366, "info": 31}
    cold = {
        r["condition"]["matches_prefix"][0].split("/")[1]: r["condition"]["age"]
        for r in rules
        if r["action"]["type"] == "SetStorageClass"
    }
    assert cold == {"log": 31, "change": 91}


def test_cli_dry_run_json(tmp_path, monkeypatch):
    import json
    import subprocess

    seed(tmp_path / "archive")
    env = {**__import__("os").environ, "EVENTMGMT_HOME": str(tmp_path)}
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "eventmgmt"),
            "retention",
            "run",
            "--dry-run",
            "--json",
            "--now",
            "2026-05-01T00:00:00Z",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["dry_run"] and report["kept_partitions"] == 1  # audit: a year
    assert sorted(p.split("/")[1] for p in report["deleted"]) == ["alert", "incident", "info", "metric"]
    assert sorted(p.split("/")[1] for p in report["moved"]) == ["change", "log"]
    assert (tmp_path / "archive" / "hot" / "alert").exists()
    bad = subprocess.run(
        [str(Path(sys.executable).parent / "eventmgmt"), "retention", "run", "--now", "later"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "later" in bad.stderr
