"""`eventmgmt serve` runs retention itself: the archive tiers and the state store's ageing, as the
policy says, without an operator's cron job (issue 14)."""

from __future__ import annotations

import gzip
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eventmgmt.runtime.app import build_runtime
from eventmgmt.settings import Settings


def _partition(root: Path, tier: str, type_: str, day: datetime) -> Path:
    path = root / tier / type_ / f"dt={day.date().isoformat()}"
    path.mkdir(parents=True)
    (path / "x.jsonl.gz").write_bytes(gzip.compress(b'{"record": "event"}\n'))
    return path


def test_the_runtime_runs_retention_on_its_own_schedule(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    now = datetime.now(UTC)
    ancient = _partition(archive, "cold", "log", now - timedelta(days=3650))  # past any policy
    today = _partition(archive, "hot", "log", now)
    rt = build_runtime(Settings(home=tmp_path, archive_url=str(archive), retention_every=0.2))
    try:
        assert rt.retention is not None
        deadline = time.monotonic() + 20
        while ancient.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not ancient.exists() and today.exists()
    finally:
        rt.stop()


def test_retention_every_zero_leaves_it_to_the_operator(tmp_path: Path) -> None:
    rt = build_runtime(Settings(home=tmp_path, retention_every=0))
    try:
        assert rt.retention is None
    finally:
        rt.stop()
