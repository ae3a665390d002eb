"""Replay of the public scenarios: the acceptance bar of correlation (F1, root cause, no noise)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventmgmt.config import default_config
from eventmgmt.replay import run_replay
from eventmgmt.scoring import score

SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


@pytest.mark.parametrize("name", ["public-1", "public-2"])
def test_public_scenario_scores(name: str, tmp_path: Path) -> None:
    captures = SCENARIOS / name / "captures.jsonl"
    if not captures.exists():
        pytest.skip(f"scenario captures not present at {captures}")
    result = run_replay(str(captures), default_config(), str(tmp_path / "report.json"))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["events"] == result.events and not report["rejected"]
    s = score(json.loads((SCENARIOS / name / "truth.json").read_text()), report)
    assert s["f1"] >= 0.95, s
    assert s["root_cause_accuracy"] >= 0.9, s
    assert s["noise_in_incidents"] == 0 and s["incidents_of_noise_only"] == 0, s
    # the report contract: every incident lists its root cause and linked changes among its events
    for inc in report["incidents"]:
        assert set(inc) >= {"id", "title", "severity", "status", "kind", "root_cause", "events", "changes"}
        assert inc["kind"] in ("incident", "change")
        assert inc["root_cause"] in inc["events"]
        assert all(c in inc["events"] for c in inc["changes"])
