"""Issue 13 audit: an alert's name is bounded as its labels are. A 100,000-letter alertname made the
incident's title and kind 100,000 letters and /api/incidents 301 KB for one incident; the signal
(and the kind and title made from it) is cut to SIGNAL_CHARS with the labels' marker, and the cut is
counted in `signal_truncated`."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from eventmgmt.sources.limits import SIGNAL_CHARS, SIGNAL_TRUNCATED
from eventmgmt.store.tables import EventRow
from tests.security.conftest import alerts

LONG = "A" * 100_000


def test_a_100000_letter_alertname_is_cut_with_a_marker(client, runtime) -> None:
    hook = alerts(2)
    hook["alerts"][0]["labels"]["alertname"] = LONG
    r = client.post("/ingest/alertmanager", json=hook)
    assert r.status_code == 202 and r.json["accepted"] == 2, r.json
    with Session(runtime.engine) as s:
        rows = {r.data["fingerprint"]: r for r in s.scalars(select(EventRow))}
    long_row, short_row = rows["am:a0000"], rows["am:a0001"]
    signal = long_row.data["signal"]
    assert len(signal) <= SIGNAL_CHARS and signal.startswith("A" * 200) and signal.endswith("characters)")
    assert long_row.data["labels"][SIGNAL_TRUNCATED] == str(len(LONG))
    assert len(long_row.kind) <= SIGNAL_CHARS
    # NOTE: an ordinary name is left as it is, and not counted
    assert short_row.data["signal"] == "TritonHighErrorRate" and SIGNAL_TRUNCATED not in short_row.data["labels"]
    page = client.get("/api/incidents")
    assert page.status_code == 200 and len(page.data) < 40_000, len(page.data)
    assert all(len(i["title"]) < 1_000 for i in page.json["incidents"])
