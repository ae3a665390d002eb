"""A storm webhook's alerts, validated together, are checked in one loop (alertmanager._check_together):
the same ids, the same records, as checking each on its own and as parsing them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventmgmt.sources import ParseContext, check_delivery, parse_delivery
from eventmgmt.sources import alertmanager as am
from eventmgmt.sources.limits import Limits

RECEIVED = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
times = st.sampled_from(
    ["2026-11-28T08:59:00Z", "2026-11-28T08:59:00.123456789Z", "2026-11-28T09:59:00+01:00", "0001-01-01T00:00:00Z"]
)
label_values = st.text(alphabet="abc-1", min_size=1, max_size=4)


@st.composite
def alerts(draw: st.DrawFn) -> dict[str, Any]:
    labels = {"alertname": draw(st.sampled_from(["KubePodCrashLooping", "TritonHighErrorRate"]))}
    for name in draw(st.lists(st.sampled_from(["pod", "cluster", "exported_cluster", "model"]), unique=True)):
        labels[name] = draw(label_values)
    a: dict[str, Any] = {"labels": labels, "startsAt": draw(times)}
    if draw(st.booleans()):
        a["status"] = draw(st.sampled_from(["firing", "resolved"]))
    if draw(st.booleans()):
        a["endsAt"] = draw(st.sampled_from(["0001-01-01T00:00:00Z", "2026-11-28T08:59:30Z", "2026-11-28T09:30:00Z"]))
    if draw(st.booleans()):
        a["fingerprint"] = draw(st.text(alphabet="0123456789abcdef", min_size=16, max_size=16))
    return a


def context(cluster: str | None, first_index: int = 0) -> ParseContext:
    return ParseContext("cap", RECEIVED, cluster, check_text=False, first_index=first_index)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(alerts(), min_size=1, max_size=12),
    st.sampled_from([None, "firing", "resolved"]),
    st.sampled_from([None, "prod-eu", "a"]),
    st.sampled_from([0, 1000]),
)
def test_together_as_one_by_one_and_as_parsed(
    batch: list[dict[str, Any]], group: str | None, cluster: str | None, first: int
) -> None:
    body: dict[str, Any] = {"version": "4", "alerts": batch, **({"status": group} if group else {})}
    ctx = context(cluster, first)
    together = check_delivery("alertmanager", body, ctx)
    assert together is not None and not together.rejected
    assert together.good == list(range(first, first + len(batch)))
    one_by_one = check_delivery(
        "alertmanager", body, ParseContext("cap", RECEIVED, cluster, check_text=True, first_index=first)
    )
    assert one_by_one is not None
    assert together.ids == one_by_one.ids
    assert together.ids == [ev.id for ev in parse_delivery("alertmanager", body, ctx).events]


def test_a_bad_alert_falls_back_to_checking_each_and_is_named() -> None:
    good = {"labels": {"alertname": "A", "pod": "p1"}, "startsAt": "2026-11-28T08:59:00Z"}
    bad = {"labels": {"alertname": "A", "pod": "p2"}, "startsAt": "2026-13-45T99:00:00Z"}
    checked = check_delivery("alertmanager", {"alerts": [good, bad, good]}, context(None))
    assert checked is not None
    assert checked.good == [0, 2] and len(checked.ids) == 2
    assert [r.index for r in checked.rejected] == [1]
    assert checked.rejected[0].field == "body.alerts.1.startsAt"


def test_the_record_limit_holds_together(monkeypatch: pytest.MonkeyPatch) -> None:
    alert = {"labels": {"alertname": "A"}, "startsAt": "2026-11-28T08:59:00Z"}
    ctx = ParseContext("cap", RECEIVED, None, check_text=False, limits=Limits(max_records=3))
    called: list[int] = []
    real = am._check_together
    monkeypatch.setattr(am, "_check_together", lambda *a: called.append(1) or real(*a))
    with pytest.raises(Exception, match="at most 3"):
        check_delivery("alertmanager", {"alerts": [alert] * 4}, ctx)
    assert called
