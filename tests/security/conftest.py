from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from eventmgmt.runtime.app import build_runtime, create_app
from eventmgmt.settings import Settings
from tests.support.incidents import BACKFILL_TOKEN, wait_drained


def alerts(n: int, *, pod: str = "triton-p{i}", summary: str = "error rate {i}%", tag: str = "a") -> dict:
    """One Alertmanager webhook of `n` firing alerts, started within the last hour."""
    start = datetime.now(UTC) - timedelta(minutes=30)
    return {
        "version": "4",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "startsAt": (start + timedelta(seconds=i)).isoformat(),
                "labels": {
                    "alertname": "TritonHighErrorRate",
                    "severity": "critical",
                    "model": f"m{i}",
                    "pod": pod.format(i=i),
                },
                "annotations": {"summary": summary.format(i=i)},
                "fingerprint": f"{tag}{i:04d}",
            }
            for i in range(n)
        ],
    }


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    for name in ("EVENTMGMT_INGEST_TOKEN", "EVENTMGMT_READ_TOKEN", "EVENTMGMT_ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    rt = build_runtime(Settings(home=tmp_path, backfill_token=BACKFILL_TOKEN))
    yield rt
    rt.stop()


class DrainedClient(FlaskClient):
    """A test client whose accepted ingest deliveries are correlated before `post` returns: these
    tests read what they wrote (ingest answers 202 once a delivery is queued; correlation runs
    behind it)."""

    def open(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        resp = super().open(*args, **kwargs)
        request = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "")
        if isinstance(request, str) and request.startswith("/ingest") and resp.status_code == 202:
            wait_drained(self)
        return resp


@pytest.fixture
def client(runtime):
    app = create_app(runtime)
    app.test_client_class = DrainedClient
    return app.test_client()


@pytest.fixture
def loaded(client):
    """120 events: more than the default page of 100."""
    r = client.post("/ingest/alertmanager", json=alerts(120))
    assert r.status_code == 202, r.json
    return client
