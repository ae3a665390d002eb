"""What `eventmgmt maintenance` and `eventmgmt retention run` print for people (tables, one-line
confirmations and errors) and, with --json, for scripts (the server's answer, the report as before)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from eventmgmt.archive.writer import ArchiveWriter
from eventmgmt.cli import main
from eventmgmt.matcher import Match
from eventmgmt.operator.commands import occurrence, one_line, window_table
from tests.support.serve import serve

EXE = str(Path(sys.executable).parent / "eventmgmt")
NOW = datetime(2026, 11, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def no_token(monkeypatch):
    monkeypatch.delenv("EVENTMGMT_INGEST_TOKEN", raising=False)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_maintenance_commands_against_a_running_server(tmp_path, capsys, no_token):
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = lambda dt: dt.isoformat().replace("+00:00", "Z")  # noqa: E731
    with serve(tmp_path) as url:
        code, out, err = cli(capsys, "maintenance", "list", "--url", url)
        assert (code, out.strip(), err) == (0, "no maintenance windows", "")
        assert cli(capsys, "maintenance", "list", "--url", url, "--json")[1].strip() == "[]"

        # NOTE: an offset is shown in UTC, with Z
        start = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
        code, out, err = cli(
            capsys,
            "maintenance",
            "add",
            "--name",
            "node-upgrade",
            "--start",
            start.isoformat(),
            "--end",
            stamp(now + timedelta(hours=1)),
            "--match",
            "node=gke-.*-efc6",
            "--match",
            "namespace=triton",
            "--url",
            url,
        )
        assert code == 0 and err == ""
        assert out.count("\n") == 1, out
        assert out.startswith("added maintenance window node-upgrade (active): ")
        assert f"{stamp(now - timedelta(hours=1))} to {stamp(now + timedelta(hours=1))} (2h)" in out
        assert "namespace=triton" in out and "node=gke-.*-efc6" in out
        code, out, _ = cli(
            capsys,
            "maintenance",
            "add",
            "--name",
            "weekly",
            "--start",
            stamp(now + timedelta(days=1)),
            "--end",
            stamp(now + timedelta(days=1, hours=2)),
            "--every",
            "7d",
            "--match",
            "model=bert",
            "--url",
            url,
            "--json",
        )
        added = json.loads(out)  # NOTE: the server's answer, as it always was
        assert code == 0 and added["name"] == "weekly" and added["every"] == "P7D"
        assert added["when"]["resources"] == {"model": "bert"}

        code, out, err = cli(capsys, "maintenance", "list", "--url", url)
        assert code == 0 and err == ""
        lines = out.splitlines()
        assert lines[0].split() == ["NAME", "FROM", "UNTIL", "STATE", "EVERY", "MATCHER", "CREATED_BY"]
        assert lines[1].split()[:5] == [
            "node-upgrade",
            stamp(now - timedelta(hours=1)),
            stamp(now + timedelta(hours=1)),
            "active",
            "-",
        ]
        assert lines[2].split()[:6] == [
            "weekly",
            stamp(now + timedelta(days=1)),
            stamp(now + timedelta(days=1, hours=2)),
            "scheduled",
            "7d",
            "model=bert",
        ]
        assert "namespace=triton node=gke-.*-efc6" in lines[1]
        assert lines[0].index("MATCHER") == lines[1].index("namespace=") == lines[2].index("model=")
        assert "None" not in out and "null" not in out and "{" not in out

        code, out, _ = cli(capsys, "maintenance", "list", "--url", url, "--json")
        listed = json.loads(out)
        assert code == 0 and {w["name"] for w in listed} == {"node-upgrade", "weekly"}
        assert all("when" in w and "start" in w for w in listed)

        code, out, err = cli(capsys, "maintenance", "end", "node-upgrade", "--url", url)
        assert (code, out, err) == (0, "ended maintenance window node-upgrade\n", "")
        code, out, _ = cli(capsys, "maintenance", "end", "weekly", "--url", url, "--json")
        assert code == 0 and json.loads(out) == {"ended": "weekly"}

        # --- errors: one line on stderr, non-zero, nothing on stdout --------------------------------
        code, out, err = cli(capsys, "maintenance", "end", "no-such-window", "--url", url)
        assert code == 1 and out == ""
        assert err == "eventmgmt maintenance end: no maintenance window 'no-such-window' added at run time (HTTP 404)\n"
        hour = ["--start", stamp(now), "--end", stamp(now + timedelta(hours=1)), "--url", url]
        for argv, says in [
            (["--match", "rack=r1"], "unknown resource fields ['rack']"),
            (["--match", "node=("], "bad regular expression '('"),
            ([], "--match-all"),
        ]:
            code, out, err = cli(capsys, "maintenance", "add", "--name", "bad", *hour, *argv)
            assert code == 1 and out == "", err
            assert err.count("\n") == 1 and err.startswith("eventmgmt maintenance add: ") and says in err, err
            assert "pydantic" not in err and "validation error" not in err and "[type=" not in err, err
        code, out, err = cli(capsys, "maintenance", "add", "--name", "bad", *hour, "--match", "node")
        assert code == 2 and "--match wants FIELD=REGEX" in err

        # NOTE: the installed command, as a user runs it: no traceback either
        done = subprocess.run(
            [EXE, "maintenance", "end", "gone", "--url", url], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
        assert done.stderr.strip().endswith("no maintenance window 'gone' added at run time (HTTP 404)")
    code, out, err = cli(capsys, "maintenance", "list", "--url", url)
    assert code == 1 and out == "" and err.startswith(f"eventmgmt maintenance list: cannot reach {url}: ")
    assert err.count("\n") == 1


def test_window_table_states_times_and_matchers():
    windows = [
        {"name": "done", "start": "2026-11-06T08:00:00+02:00", "end": "2026-11-06T10:00:00+02:00", "when": {}},
        {
            "name": "nightly",
            "start": "2026-11-01T08:30:00Z",
            "end": "2026-11-01T09:30:00Z",
            "every": "P1D",
            "when": {"resources": {"pod": "triton-.*"}, "labels": {"team": "ml"}, "severity": None, "cls": "alert"},
            "created_by": "token",
        },
        {"name": "all", "start": "2026-12-01T00:00:00", "end": "2026-12-01T01:00:00", "match_all": True},
    ]
    lines = window_table(windows, NOW)
    assert [line.split()[0] for line in lines] == ["NAME", "nightly", "all", "done"]
    assert lines[1].split() == [
        "nightly",
        "2026-11-07T08:30:00Z",
        "2026-11-07T09:30:00Z",
        "active",
        "1d",
        "pod=triton-.*",
        "labels.team=ml",
        "class=alert",
        "token",
    ]
    assert "2026-12-01T00:00:00Z" in lines[2] and "scheduled" in lines[2] and "everything (match_all)" in lines[2]
    assert "2026-11-06T06:00:00Z" in lines[3] and "ended" in lines[3]
    assert all(line == line.rstrip() for line in lines)
    assert window_table([], NOW) == ["no maintenance windows"]


def test_occurrence_of_a_repeating_window():
    start, end, day = NOW - timedelta(days=3, hours=2), NOW - timedelta(days=3, hours=1), timedelta(days=1)
    assert occurrence(start, end, day, NOW) == ("scheduled", start + 4 * day, end + 4 * day)
    assert occurrence(start, end, None, NOW) == ("ended", start, end)
    assert occurrence(start, end + timedelta(hours=2), day, NOW) == (
        "active",
        start + 3 * day,
        NOW + timedelta(hours=1),
    )


def test_pydantic_text_becomes_one_line():
    with pytest.raises(ValidationError) as err:
        Match.model_validate({"resources": {"bogus": "x"}})
    text = one_line(f"invalid match: {err.value}")
    assert text.startswith("invalid match: resources: unknown resource fields ['bogus']; known: ")
    assert "\n" not in text and "https://" not in text and "[type=" not in text and "validation error" not in text
    assert one_line("plain message") == "plain message"


# --- retention ------------------------------------------------------------------------------------


def seed(root: Path, day: str = "2026-01-01") -> None:
    w = ArchiveWriter(str(root))
    for t in ("alert", "metric", "log", "audit", "incident", "change", "info"):
        w.write([(t, datetime.fromisoformat(day).date(), f"{t}-1", {"type": t})])


def test_retention_dry_run_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVENTMGMT_HOME", str(tmp_path))
    for name in ("EVENTMGMT_ARCHIVE_URL", "EVENTMGMT_CONFIG", "EVENTMGMT_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    seed(tmp_path / "archive")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.jsonl.gz"))
    code, out, err = cli(capsys, "retention", "run", "--dry-run", "--now", "2026-05-01T00:00:00Z")
    assert code == 0 and err == ""
    assert "{" not in out and "None" not in out and "events:" not in out
    lines = out.splitlines()
    assert lines[0] == "retention dry run at 2026-05-01T00:00:00Z: nothing was changed"
    header = lines.index(next(x for x in lines if x.startswith("TYPE      POLICY")))
    assert lines[header].split("  ")[0:1] == ["TYPE"] and "WOULD DELETE" in lines[header]
    rows = {x.split()[0]: x.split() for x in lines[header + 1 : header + 9]}
    # NOTE: type, policy (5 words), would delete, would move, held, kept, objects, size (2 words)
    assert rows["alert"][1:6] == ["hot", "90d,", "delete", "after", "90d"]
    assert rows["alert"][6:11] == ["1", "0", "0", "0", "1"]
    assert rows["log"][6:11] == ["0", "1", "0", "0", "1"]
    assert rows["audit"][6:11] == ["0", "0", "0", "1", "0"]
    assert rows["total"][1:6] == ["4", "2", "0", "1", "6"]
    state = lines.index(next(x for x in lines if x.startswith("state store")))
    assert lines[state + 1].split() == ["TYPE", "WOULD", "DELETE"]
    assert [x.split()[0] for x in lines[state + 2 :]] == [
        "alert",
        "change",
        "info",
        "log",
        "audit",
        "metric",
        "incident",
    ]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.jsonl.gz")) == before  # nothing changed

    code, out, _ = cli(capsys, "retention", "run", "--dry-run", "--json", "--now", "2026-05-01T00:00:00Z")
    report = json.loads(out)
    assert code == 0 and set(report) == {
        "dry_run",
        "now",
        "moved",
        "deleted",
        "held",
        "kept_partitions",
        "objects",
        "bytes",
        "state",
    }
    assert report["dry_run"] is True and report["kept_partitions"] == 1 and len(report["deleted"]) == 4

    code, out, _ = cli(capsys, "retention", "run", "--now", "2026-05-01T00:00:00Z")
    assert code == 0 and out.startswith("retention run at 2026-05-01T00:00:00Z\n") and "DELETED" in out
    assert "WOULD" not in out
    assert not (tmp_path / "archive" / "hot" / "alert" / "dt=2026-01-01").exists()


def test_retention_errors_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EVENTMGMT_HOME", str(tmp_path))
    code, out, err = cli(capsys, "retention", "run", "--dry-run", "--archive", "nosuchproto://bucket/x")
    assert code == 1 and out == "" and err == "eventmgmt retention run: Protocol not known: nosuchproto\n"
    code, _, err = cli(capsys, "retention", "run", "--now", "later")
    assert code == 2 and "later" in err and err.count("\n") == 1


def test_help_describes_every_maintenance_command_and_option(capsys):
    for argv in (["maintenance"], ["maintenance", "list"], ["maintenance", "add"], ["maintenance", "end"]):
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        text = capsys.readouterr().out
        assert len(text.split("\n\n")) >= 3, text  # usage, a description, options
    with pytest.raises(SystemExit):
        main(["maintenance", "--help"])
    text = capsys.readouterr().out
    for sub in ("list", "add", "end"):
        assert any(line.split()[:1] == [sub] and len(line.split()) > 1 for line in text.splitlines()), text
    with pytest.raises(SystemExit):
        main(["incidents", "ack", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--by BY who acknowledges" in text and "(default: $USER" in text
    assert "--url URL base URL of `eventmgmt serve` (default: " in text
