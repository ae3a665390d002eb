"""The collector's state at an fsspec URL: memory:// (what gs:// is to the function) and a local path;
first start, a corrupt file, atomic replacement, and a cold start that must not re-emit transitions."""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from eventmgmt.collector import Collector
from eventmgmt.collector.state import STATE_URL, CollectorState, Condition, StateFile, state_url
from eventmgmt.config import default_config
from eventmgmt.settings import Settings
from eventmgmt.transport.publisher import RecordingPublisher
from tests.collector.test_collect import CFG, SERIES, FakeProm
from tests.correlate.helpers import at

CORRUPT = {
    "not JSON (a write cut short)": b'{"conditions": {"a": {"signal": "X", "lab',
    "not UTF-8": b"\xff\xfe\x00garbage",
    "JSON of another shape": b"[1, 2, 3]",
    "a condition missing its fields": b'{"conditions": {"a": {"signal": "X"}}}',
    "a time without its offset": (
        b'{"conditions": {"a": {"signal": "X", "labels": {}, "since": "2024-05-01T10:00:00", "firing": true}}}'
    ),
    "labels that are not an object": (
        b'{"conditions": {"a": {"signal": "X", "labels": "pod=a", "since": "2024-05-01T10:00:00+00:00",'
        b' "firing": true}}}'
    ),
}


@pytest.fixture(autouse=True)
def no_state_url(monkeypatch):
    monkeypatch.delenv(STATE_URL, raising=False)


@pytest.fixture
def memory_url():
    """A fresh memory:// object, removed afterwards (the memory filesystem is process-wide)."""
    url = f"memory://collector-test-{uuid.uuid4().hex}/state/collector-state.json"
    yield url
    fs, path = fsspec.core.url_to_fs(url)
    fs.rm(path.rsplit("/", 2)[0], recursive=True) if fs.exists(path.rsplit("/", 2)[0]) else None


def sample() -> CollectorState:
    return CollectorState(
        {
            "TritonHighErrorRate|pod=a": Condition("TritonHighErrorRate", {"pod": "a"}, at(0), firing=True),
            "ContainerOOMKilled|pod=b": Condition("ContainerOOMKilled", {"pod": "b"}, at(3), stateful=False),
        }
    )


def url_for(kind: str, tmp_path: Path, memory_url: str) -> str:
    return memory_url if kind == "memory" else str(tmp_path / "home" / "collector-state.json")


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_round_trip(kind, tmp_path, memory_url):
    file = StateFile(url_for(kind, tmp_path, memory_url))
    file.save(sample())
    assert StateFile(file.url).load() == sample()  # NOTE: a new instance, as after a cold start


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_first_start_without_a_file_starts_blind(kind, tmp_path, memory_url, caplog):
    file = StateFile(url_for(kind, tmp_path, memory_url))
    with caplog.at_level(logging.INFO, logger="eventmgmt.collector"):
        assert file.load() == CollectorState()
    (line,) = (json.loads(r.getMessage()) for r in caplog.records)
    assert line["severity"] == "INFO" and "first run" in line["message"] and line["url"] == file.url


@pytest.mark.parametrize("what", sorted(CORRUPT))
@pytest.mark.parametrize("kind", ["memory", "local"])
def test_a_corrupt_file_is_logged_and_the_collector_starts_blind(kind, what, tmp_path, memory_url, caplog):
    file = StateFile(url_for(kind, tmp_path, memory_url))
    fs, path = fsspec.core.url_to_fs(file.url)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, CORRUPT[what])
    with caplog.at_level(logging.INFO, logger="eventmgmt.collector"):
        assert file.load() == CollectorState()
    (line,) = (json.loads(r.getMessage()) for r in caplog.records)
    assert line["severity"] == "WARNING" and "starting blind" in line["message"]
    assert line["url"] == file.url and line["error"]
    file.save(sample())  # the next save replaces it
    assert file.load() == sample()


def test_local_save_replaces_the_file_whole_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    file = StateFile(str(tmp_path / "collector-state.json"))
    file.save(sample())
    before = (tmp_path / "collector-state.json").read_bytes()

    def crash(src, dst):
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        file.save(CollectorState())
    assert (tmp_path / "collector-state.json").read_bytes() == before  # never half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collector-state.json"]
    monkeypatch.undo()
    file.save(CollectorState())
    assert file.load() == CollectorState()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collector-state.json"]


def test_object_store_save_is_one_upload_without_rename_or_directories(memory_url, monkeypatch):
    calls = []
    real = MemoryFileSystem.pipe_file
    monkeypatch.setattr(MemoryFileSystem, "pipe_file", lambda self, p, v, **kw: calls.append(p) or real(self, p, v))
    for name in ("mv", "makedirs", "mkdir"):
        monkeypatch.setattr(MemoryFileSystem, name, lambda *a, **kw: pytest.fail("no rename or mkdir on a store"))
    file = StateFile(memory_url)
    file.save(sample())
    assert calls == [fsspec.core.url_to_fs(memory_url)[1]]
    assert file.load() == sample()


def test_a_store_that_cannot_be_read_raises_rather_than_starting_blind(tmp_path):
    (tmp_path / "collector-state.json").mkdir()  # NOTE: not a missing file: an error to report
    with pytest.raises(OSError):
        StateFile(str(tmp_path / "collector-state.json")).load()


def test_the_environment_names_the_state_url(monkeypatch, memory_url, tmp_path):
    assert state_url(str(tmp_path / "s.json")) == str(tmp_path / "s.json")
    monkeypatch.setenv(STATE_URL, memory_url)
    assert StateFile(str(tmp_path / "s.json")).url == memory_url


def test_a_url_that_went_through_pathlib_gets_its_slashes_back(tmp_path):
    assert str(Path("gs://bucket/eventmgmt") / "collector-state.json") == "gs:/bucket/eventmgmt/collector-state.json"
    assert state_url("gs:/bucket/eventmgmt/collector-state.json") == "gs://bucket/eventmgmt/collector-state.json"
    assert state_url("memory:/x/collector-state.json") == "memory://x/collector-state.json"
    local = str(tmp_path / "collector-state.json")
    assert state_url(local) == local and state_url("file:/tmp/x.json") == "file:/tmp/x.json"


def collector_on(home: Path, prom: FakeProm, publisher: RecordingPublisher, now) -> Collector:
    """A collector as the function builds one: `EVENTMGMT_HOME` is the instance's own disk."""
    collector = Collector.from_settings(Settings(home=home), default_config(), publisher, lambda: now)
    collector.cfg, collector.prom = CFG, prom
    return collector


def statuses(publisher: RecordingPublisher) -> list[tuple[str, str]]:
    return [(e["signal"], e["status"]) for e in publisher.events("events-raw")]


@pytest.mark.parametrize("shared", [True, False])
def test_a_cold_start_does_not_emit_the_transitions_again(shared, tmp_path, memory_url, monkeypatch):
    """Two instances, each with its own /tmp: with the state at a shared URL the second carries on;
    with the state under EVENTMGMT_HOME (what Terraform used to deploy) it starts blind and the
    condition fires a second time, with a new start, after its `for` again."""
    if shared:
        monkeypatch.setenv(STATE_URL, memory_url)
    prom, publisher = FakeProm(), RecordingPublisher()
    prom.series["errors > 0.01"] = SERIES
    for minute in (0, 5, 6):
        collector_on(tmp_path / "instance-1", prom, publisher, at(minute)).run()
    assert statuses(publisher) == [("TritonHighErrorRate", "firing")]
    for minute in (7, 12, 13):
        collector_on(tmp_path / "instance-2", prom, publisher, at(minute)).run()
    fired = [("TritonHighErrorRate", "firing")]
    assert statuses(publisher) == (fired if shared else fired * 2)
    prom.series["errors > 0.01"] = []
    collector_on(tmp_path / "instance-3", prom, publisher, at(14)).run()
    resolved = [("TritonHighErrorRate", "resolved")]
    assert statuses(publisher) == (fired + resolved if shared else fired * 2)  # blind: never resolves
