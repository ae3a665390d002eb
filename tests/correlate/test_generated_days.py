"""Generated days and storms (eventmgmt.simulator.storm) replayed and scored against their truth.

The days mix routine traffic with fleet-wide outages, OOM cascades at the same time on other nodes, a
drain, a node pool going NotReady, a recurrence and independent failures of the same models hours
apart: names, sizes and timings none of the public scenarios has."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pytest

from eventmgmt.classify import classify, filter_reason
from eventmgmt.config import default_config
from eventmgmt.replay import replay
from eventmgmt.scoring import score
from eventmgmt.simulator import storm
from eventmgmt.simulator.storm import generated_day, generated_day_detail, storm_alerts, storm_captures, webhooks
from eventmgmt.sources import ParseContext, parse
from eventmgmt.timeutil import parse_ts

SEEDS = (1, 2, 3, 4)


def _refs(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['capture']}#{e['index']}" for e in events]


def _with_default_group_wait(captures: list[dict[str, Any]]) -> Any:
    """Replay with the product's group wait on first pages (the suite pages at once: tests/conftest.py)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("EVENTMGMT_GROUP_WAIT_SECONDS", raising=False)
        return replay([json.dumps(c) for c in captures], default_config())


def _replay_day(seed: int) -> dict[str, Any]:
    """Generate, replay and score one day."""
    day = generated_day_detail(seed)
    result = _with_default_group_wait(day.captures)
    report = result.report()
    return {
        "truth": day.truth,
        "problems": day.problems,
        "report": report,
        "score": score(day.truth, report),
        "pages": result.pages,
        "rejected": report["rejected"],
    }


@pytest.fixture(scope="module")
def days() -> dict[int, dict[str, Any]]:
    """Every seed's replay, computed once (2-3 s of CPU each)."""
    return {s: _replay_day(s) for s in SEEDS}


def _placement(day: dict[str, Any]) -> tuple[dict[str, str], dict[str, list[str]]]:
    placed: dict[str, str] = {}
    for inc in day["report"]["incidents"]:
        for ref in _refs(inc["events"]):
            placed[ref] = inc["id"]
    groups: dict[str, list[str]] = defaultdict(list)
    for ref, v in day["truth"]["events"].items():
        if v["group"]:
            groups[v["group"]].append(ref)
    return placed, groups


# --- replay scores ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_day_scores(days: dict[int, dict[str, Any]], seed: int) -> None:
    day = days[seed]
    s = day["score"]
    assert not day["rejected"], day["rejected"][:3]
    assert s["f1"] >= 0.95, s
    assert s["root_cause_accuracy"] >= 0.9, s


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_day_routine_never_in_an_incident(days: dict[int, dict[str, Any]], seed: int) -> None:
    day = days[seed]
    placed, _ = _placement(day)
    routine = [ref for ref, v in day["truth"]["events"].items() if not v["group"] and ref in placed]
    assert routine == [], f"routine events placed in incidents: {routine[:5]}"
    assert day["score"]["noise_in_incidents"] == 0 and day["score"]["incidents_of_noise_only"] == 0, day["score"]


@pytest.mark.parametrize("seed", SEEDS)
def test_each_group_is_one_incident(days: dict[int, dict[str, Any]], seed: int) -> None:
    """Stricter than F1: every group lands whole in one incident, with its root cause, and no incident
    holds two groups."""
    day = days[seed]
    placed, groups = _placement(day)
    roots = {
        inc["id"]: f"{inc['root_cause']['capture']}#{inc['root_cause']['index']}" for inc in day["report"]["incidents"]
    }
    wrong = []
    for g, members in sorted(groups.items()):
        where = Counter(placed.get(ref) for ref in members)
        main = where.most_common(1)[0][0]
        ok_roots = {day["truth"]["roots"][g], *day["truth"]["root_alternatives"][g]}
        if len(where) > 1 or main is None or roots.get(main) not in ok_roots:
            wrong.append((g, dict(where), roots.get(main)))
    by_incident: dict[str, set[str]] = defaultdict(set)
    for g, members in groups.items():
        for ref in members:
            if ref in placed:
                by_incident[placed[ref]].add(g)
    merged = {i: gs for i, gs in by_incident.items() if len(gs) > 1}
    assert not wrong and not merged, {"split_or_wrong_root": wrong, "merged": merged}


@pytest.mark.parametrize("seed", SEEDS)
def test_generated_day_one_page_per_incident(days: dict[int, dict[str, Any]], seed: int) -> None:
    """Node pool NotReady: each node's NodeNotReady event carries no pool label and opens an incident
    of its own, merged by the pool-labelled KubeNodeNotReady alerts that follow; the first page's group
    wait (route.group_wait_seconds) lets that happen before anyone is paged."""
    day = days[seed]
    incidents = sum(1 for inc in day["report"]["incidents"] if inc["kind"] == "incident")
    assert day["pages"] <= incidents, (day["pages"], incidents)


def test_scale_in_pod_deletes_stay_routine() -> None:
    """An audit policy that records every write sees the ReplicaSet controller delete the pods the HPA
    scales in: routine, like the HPA's own scale request."""
    day = generated_day_detail(2, controller_pod_deletes=True)
    report = replay([json.dumps(c) for c in day.captures], default_config()).report()
    s = score(day.truth, report)
    assert s["noise_in_incidents"] == 0 and s["incidents_of_noise_only"] == 0, (
        s,
        [i["title"] for i in report["incidents"] if i["kind"] == "change"],
    )


# --- the generator ------------------------------------------------------------------------------


def test_day_is_deterministic_per_seed() -> None:
    a = generated_day(5)
    assert json.dumps(a, sort_keys=True) == json.dumps(generated_day(5), sort_keys=True)
    assert json.dumps(generated_day(6)[0][:50]) != json.dumps(a[0][:50])
    t = "2026-11-07T08:00:00Z"
    assert storm_alerts(3, 4, t, seed=1) == storm_alerts(3, 4, t, seed=1)
    assert storm_alerts(3, 4, t, seed=1) != storm_alerts(3, 4, t, seed=2)


def test_generated_events_classify_as_intended() -> None:
    """Every generated event parses and classifies to the kind and class the generator meant; only
    per-request lines and audit reads are dropped at ingest."""
    config = default_config()
    day = generated_day_detail(7, controller_pod_deletes=True)
    wrong: Counter[tuple[str, ...]] = Counter()
    seen_kinds: Counter[str] = Counter()
    for cap in day.captures:
        events = parse(cap["source"], cap["body"], ParseContext(cap["id"], parse_ts(cap["received_at"])))
        for ev in events:
            ev = classify(ev, config)
            assert ev.origin is not None
            ref = f"{cap['id']}#{ev.origin.index}"
            truth = day.truth["events"][ref]
            seen_kinds[ev.kind] += 1
            if ev.kind != day.kinds[ref] or ev.cls.value != truth["cls"]:
                wrong[(cap["source"], ev.signal, ev.kind, day.kinds[ref], ev.cls.value, truth["cls"])] += 1
            reason = filter_reason(ev, config)
            if reason is not None:
                assert truth["group"] is None and reason in ("triton-per-request", "audit-read", "audit-not-complete")
            if "time_clamped" in ev.labels:
                wrong[("clamped", cap["source"], ev.signal)] += 1
    assert not wrong, dict(wrong)
    want = {
        "model_load_failed",
        "model_unavailable",
        "high_error_rate",
        "triton_crash",
        "pod_oom",
        "pod_not_ready",
        "node_not_ready",
        "node_drain",
        "pod_eviction",
        "pod_stop",
        "reduced_capacity",
        "pod_lifecycle",
        "scaling",
        "model_loaded",
        "watchdog",
        "audit",
        "log",
    }
    assert want <= set(seen_kinds), want - set(seen_kinds)
    # storm alerts are crash loops and error rates
    alerts = storm_alerts(2, 3, "2026-11-07T08:00:00Z", seed=3)
    for body in webhooks(alerts, 4):
        for ev in parse("alertmanager", body, ParseContext("c", datetime(2026, 11, 7, 8, 2, tzinfo=UTC))):
            assert classify(ev, config).kind in ("triton_crash", "high_error_rate")


def test_chains_match_the_defaults() -> None:
    """The truth's root causes follow the chains the configuration ships with."""
    mine = {name: [list(step) for step in steps] for name, steps in storm.CHAINS}
    assert mine == {c.name: c.steps for c in default_config().chains}


def test_day_captures_and_truth_are_well_formed() -> None:
    day = generated_day_detail(8)
    caps, truth = day.captures, day.truth
    ids = [c["id"] for c in caps]
    assert len(set(ids)) == len(ids) and all(re.fullmatch(r"c\d{6}-[0-9a-f]{6}", i) for i in ids)
    times = [parse_ts(c["received_at"]) for c in caps]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    assert {c["source"] for c in caps} == {"alertmanager", "k8s-event", "k8s-event-v1", "k8s-audit", "log"}
    assert set(truth) == {"events", "roots", "root_alternatives", "groups"}
    for g, root in truth["roots"].items():
        assert truth["events"][root]["group"] == g
        assert all(truth["events"][r]["group"] == g for r in truth["root_alternatives"][g])
    kinds = Counter(v["kind"] for v in truth["groups"].values())
    assert kinds["fleet_outage"] == 2 and kinds["pod_oom"] >= 3, kinds
    assert kinds["node_drain"] == 1 and kinds["node_not_ready"] == 1 and kinds["model_load_failed"] == 1, kinds
    assert any("recurrence_of" in v for v in truth["groups"].values())
    # a fleet outage: 12-40 replicas on several nodes, failing within a minute, in several webhooks
    alertmanager = {c["id"] for c in caps if c["source"] == "alertmanager"}
    for p in day.problems:
        if p["kind"] != "fleet_outage":
            continue
        hooks = {r.split("#")[0] for r, v in truth["events"].items() if v["group"] == p["group"]} & alertmanager
        assert len(hooks) >= 3, p
        m = re.search(r"\((\d+) pods on (\d+) nodes\)", p["summary"])
        assert m and 12 <= int(m.group(1)) <= 40 and int(m.group(2)) >= 2, p


def test_storm_pod_names() -> None:
    t = "2026-11-07T08:00:00Z"
    standard = storm_alerts(3, 5, t, seed=4)
    k8s = "[bcdfghjklmnpqrstvwxz2456789]"
    for a in standard:
        assert re.fullmatch(rf"triton-[a-z0-9-]+-{k8s}{{8,10}}-{k8s}{{5}}", a["labels"]["pod"]), a["labels"]["pod"]
        assert {"pod", "node", "namespace"} <= set(a["labels"])
    assert {a["labels"]["alertname"] for a in standard} == {"KubePodCrashLooping", "TritonHighErrorRate"}
    starts = {a["startsAt"][:16] for a in standard}
    assert starts == {"2026-11-07T08:00"}
    odd = storm_alerts(3, 5, t, seed=4, standard_names=False)
    assert not any(re.fullmatch(rf".*-{k8s}{{6,10}}-{k8s}{{5}}", a["labels"]["pod"]) for a in odd)
    bodies = webhooks(standard, 4)
    assert all(len(b["alerts"]) <= 4 and len(b["groupLabels"]) == 1 for b in bodies)
    assert sum(len(b["alerts"]) for b in bodies) == len(standard)


# --- storms ----------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _storm_replay(models: int, pods: int, batch: int, standard_names: bool) -> tuple[dict[str, set[str]], Any, int]:
    alerts = storm_alerts(models, pods, "2026-11-07T08:00:00Z", seed=11, standard_names=standard_names)
    captures = storm_captures(alerts, batch, seed=11)
    result = _with_default_group_wait(captures)
    model_of_pod = {a["labels"]["pod"]: a["labels"]["model"] for a in alerts if "model" in a["labels"]}
    model_of = {
        f"{c['id']}#{i}": model_of_pod[a["labels"]["pod"]] for c in captures for i, a in enumerate(c["body"]["alerts"])
    }
    incidents_of: dict[str, set[str]] = defaultdict(set)
    placed = 0
    for inc in result.incidents:
        models_here = {model_of[ref] for ref in _refs(inc["events"])}
        assert len(models_here) == 1, f"one incident spans models {sorted(models_here)[:5]}"
        for m in models_here:
            incidents_of[m].add(inc["id"])
        placed += len(inc["events"])
    assert placed == len(alerts), (placed, len(alerts))
    return incidents_of, result, len(result.incidents)


@pytest.mark.timeout(300)
def test_storm_is_one_incident_per_model() -> None:
    """2,000 pods of 20 models crash-looping and erroring in the same minute (4,000 alerts, 100 per
    webhook): one incident per model, one page per incident."""
    incidents_of, result, n = _storm_replay(20, 100, 100, standard_names=True)
    assert len(incidents_of) == 20
    assert max(len(v) for v in incidents_of.values()) == 1, {m: len(v) for m, v in incidents_of.items()}
    assert result.pages <= n, (result.pages, n)


def test_storm_with_nonstandard_pod_names_is_one_incident_per_model() -> None:
    incidents_of, _, _ = _storm_replay(8, 25, 50, standard_names=False)
    assert max(len(v) for v in incidents_of.values()) == 1, {m: len(v) for m, v in incidents_of.items()}


def test_storm_with_nonstandard_pod_names_pages_once_per_incident() -> None:
    """Pods whose names give no deployment: each crash-loop alert (pod, node, no model) opens a
    fragment, folded into its model's incident by the error-rate alerts; the group wait keeps the
    fragments from paging."""
    _, result, n = _storm_replay(8, 25, 50, standard_names=False)
    assert result.pages <= n, (result.pages, n)


def test_command_line_writes_a_day_and_a_storm(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert storm.main(["day", "--seed", "3", "--out", str(tmp_path / "day"), "--hours", "8"]) == 0
    lines = (tmp_path / "day" / "captures.jsonl").read_text().splitlines()
    truth = json.loads((tmp_path / "day" / "truth.json").read_text())
    assert lines and all(f"{json.loads(line)['id']}#0" in truth["events"] for line in lines)
    assert (
        storm.main(["storm", "--models", "3", "--pods", "4", "--batch", "5", "--out", str(tmp_path / "s.jsonl")]) == 0
    )
    caps = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert sum(len(c["body"]["alerts"]) for c in caps) == 24 and all(len(c["body"]["alerts"]) <= 5 for c in caps)
    assert "24 alerts in" in capsys.readouterr().out
