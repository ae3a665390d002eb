"""The command line answers mistakes with a message and exit status 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventmgmt import __version__
from eventmgmt.cli import main


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"eventmgmt {__version__}"


def test_replay_of_a_missing_file_or_truth_is_a_message(tmp_path: Path, capsys) -> None:
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 2
    assert "capture file" in capsys.readouterr().err
    good = tmp_path / "c.jsonl"
    good.write_text("")
    assert main(["replay", str(good), "--truth", str(tmp_path / "t.json")]) == 2
    err = capsys.readouterr().err
    assert "truth file" in err and "Traceback" not in err


def test_replay_skips_bad_lines_and_names_them(tmp_path: Path, capsys) -> None:
    cap = {
        "id": "c1",
        "received_at": "2026-11-07T08:00:00Z",
        "source": "alertmanager",
        "body": {
            "alerts": [
                {
                    "status": "firing",
                    "startsAt": "2026-11-07T08:00:00Z",
                    "labels": {"alertname": "TritonModelUnavailable", "severity": "critical", "model": "bert"},
                }
            ]
        },
    }
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(cap) + "\nnot json\n[1]\n")
    report = tmp_path / "r.json"
    assert main(["replay", str(path), "--report", str(report)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["events"] == 1 and json.loads(out)["rejected"] == 2
    assert "line 2 skipped: not JSON" in err and "line 3 skipped" in err
    assert [r["line"] for r in json.loads(report.read_text())["rejected"]] == [2, 3]


def test_report_of_a_missing_file_is_a_message(tmp_path: Path, capsys) -> None:
    args = [
        "report",
        str(tmp_path / "r.json"),
        "--captures",
        str(tmp_path / "c.jsonl"),
        "--html",
        str(tmp_path / "o.html"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "r.json" in err and "Traceback" not in err


def test_a_misspelled_config_section_is_refused_with_the_likely_name(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("corelation:\n  window: 5m\n")
    captures = tmp_path / "c.jsonl"
    captures.write_text("")
    assert main(["replay", str(captures), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "unknown section 'corelation'" in err and "did you mean 'correlation'" in err


def test_url_without_a_scheme_means_http() -> None:
    import argparse

    from eventmgmt.operator.commands import _client

    with _client(argparse.Namespace(url="localhost:8080")) as http:
        assert str(http.base_url).startswith("http://localhost:8080")
