"""Every event of both public scenario sets parses, with the class a person gave it and its resources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventmgmt.classify import classify
from eventmgmt.config import default_config
from eventmgmt.sources import ParseContext, detect, parse
from eventmgmt.timeutil import parse_ts

SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


def captures(name: str) -> list[dict]:
    path = SCENARIOS / name / "captures.jsonl"
    if not path.exists():
        pytest.skip(f"scenario captures not present at {path}")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name", ["public-1", "public-2"])
def test_every_capture_parses_to_the_truth_class(name: str) -> None:
    truth = json.loads((SCENARIOS / name / "truth.json").read_text())["events"]
    cfg = default_config()
    seen = set()
    for cap in captures(name):
        assert detect(cap["body"]) == cap["source"]
        for ev in parse(cap["source"], cap["body"], ParseContext(cap["id"], parse_ts(cap["received_at"]))):
            ev = classify(ev, cfg)
            ref = f"{ev.origin.capture}#{ev.origin.index}"
            assert ev.cls.value == truth[ref]["cls"], (ref, ev.signal, ev.kind)
            seen.add(ref)
            if ev.cls.value == "alert":
                assert ev.kind != "unknown" and ev.resources.keys(), ref
    assert seen == set(truth)


# (capture, index) -> expected (kind, class, severity from the source, resources)
EXPECTED = {
    ("public-1", "c000061-785cdd", 0): ("pod_oom", "alert", {"node": "gke-inference-prod-gpu-pool-efc6"}),
    ("public-1", "c000062-78232c", 0): (
        "triton_crash",
        "alert",
        {
            "pod": "triton-whisper-small-hhvkb7jwwk-bq896",
            "node": "gke-inference-prod-gpu-pool-efc6",
            "deployment": "triton-whisper-small",
            "namespace": "inference",
        },
    ),
    ("public-1", "c000070-d0187d", 1): (
        "triton_crash",
        "alert",
        {"pod": "triton-whisper-small-hhvkb7jwwk-bq896", "container": "triton"},
    ),
    ("public-1", "c000072-b6f8dd", 0): (
        "model_unavailable",
        "alert",
        {"model": "whisper-small", "version": "1", "cluster": "gke-inference-prod"},
    ),
    ("public-1", "c000098-5c0d09", 0): ("node_drain", "change", {"node": "gke-inference-prod-gpu-pool-3f0c"}),
    ("public-1", "c000101-6c8b8f", 1): (
        "pod_eviction",
        "change",
        {"pod": "triton-yolov8-qr4hpw5746-pds4v", "deployment": "triton-yolov8"},
    ),
    ("public-1", "c000174-282b0a", 0): (
        "model_load_failed",
        "alert",
        {
            "model": "bert-large",
            "pod": "triton-bert-large-r9w2fh26mf-6n65v",
            "node": "gke-inference-prod-gpu-pool-efc6",
        },
    ),
    ("public-1", "c000200-8185de", 0): ("deployment_change", "change", {"deployment": "triton-whisper-small"}),
    ("public-1", "c000287-3c9b72", 0): ("node_not_ready", "alert", {"node": "gke-inference-prod-gpu-pool-efc6"}),
    ("public-1", "c000316-be1f2d", 0): (
        "gpu_high_util",
        "alert",
        {"node": "gke-inference-prod-gpu-pool-3f0c", "gpu": "GPU-05805975-ed2f-89d9-4a2f-20aaf3c64af7"},
    ),
    ("public-1", "c000463-292de1", 0): ("pod_oom", "alert", {"node": "gke-inference-prod-gpu-pool-efc6"}),
    ("public-1", "c000001-ee81e0", 0): ("model_loaded", "info", {"model": "resnet50"}),
}


@pytest.mark.parametrize(("key", "want"), list(EXPECTED.items()), ids=[f"{k[1]}#{k[2]}" for k in EXPECTED])
def test_kind_class_and_resources(key, want) -> None:
    name, cid, index = key
    cap = next(c for c in captures(name) if c["id"] == cid)
    ev = classify(
        parse(cap["source"], cap["body"], ParseContext(cid, parse_ts(cap["received_at"])))[index], default_config()
    )
    kind, cls, resources = want
    assert (ev.kind, ev.cls.value) == (kind, cls)
    for field, value in resources.items():
        assert getattr(ev.resources, field) == value, field


def test_resolved_alert_keeps_its_episode_and_fingerprint() -> None:
    caps = {c["id"]: c for c in captures("public-1")}
    firing = parse("alertmanager", caps["c000085-e3bf40"]["body"], ParseContext("a", parse_ts("2026-11-07T08:29:09Z")))[
        0
    ]
    resolved = parse(
        "alertmanager", caps["c000106-1928a7"]["body"], ParseContext("b", parse_ts("2026-11-07T08:33:31Z"))
    )[1]
    assert firing.fingerprint == resolved.fingerprint and firing.started_at == resolved.started_at
    assert firing.id != resolved.id and resolved.status.value == "resolved"
    assert resolved.occurred_at > firing.occurred_at
