"""An HTML report of a replay: events per minute against incidents opened, noise reduction, and the
time from an incident's first event to the event that completed it (time to correlate)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from html import escape
from typing import Any

from ..dashboard.display import clip_words
from ..dashboard.svg import bars, hbars
from ..timeutil import parse_ts


def _bucket(t: datetime) -> str:
    return t.replace(minute=t.minute - t.minute % 10).strftime("%m-%d %H:%M")


def html_report(report: dict[str, Any], captures: Iterable[str]) -> str:
    received: dict[str, datetime] = {}
    for line in captures:
        if line.strip():
            cap = json.loads(line)
            when = parse_ts(cap.get("received_at"))
            if when is not None:
                received[cap["id"]] = when
    per: dict[str, dict[str, int]] = {}
    for t in received.values():
        b = per.setdefault(_bucket(t), {})
        b["captures"] = b.get("captures", 0) + 1
    ttc: list[tuple[str, int]] = []
    for inc in report.get("incidents", []):
        times = [received[e["capture"]] for e in inc["events"] if e["capture"] in received]
        if not times:
            continue
        opened = min(times)
        b = per.setdefault(_bucket(opened), {})
        b["incidents"] = b.get("incidents", 0) + 1
        # NOTE: the title cut between words, not inside a kind or a pod name
        ttc.append((f"{inc['id']} {clip_words(inc['title'], 70)}", int((max(times) - opened).total_seconds())))
    events = report.get("events", 0)
    incidents = len(report.get("incidents", []))
    by_class = report.get("events_by_class", {})
    kinds = Counter(inc.get("root_kind", inc.get("kind", "")) for inc in report.get("incidents", []))
    rows = "".join(
        f"<tr><td>{escape(i['id'])}</td><td>{escape(i['severity'])}</td><td>{escape(i['kind'])}</td>"
        f"<td>{escape(i['title'])}</td><td>{len(i['events'])}</td><td>{len(i['changes'])}</td></tr>"
        for i in report.get("incidents", [])
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Replay report</title>
<style>body{{font:14px system-ui,sans-serif;max-width:1100px;margin:1rem auto;color:#1a202c}}
table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #e2e8f0;padding:.3rem .5rem;text-align:left}}
.cards{{display:flex;gap:1rem}}.card{{border:1px solid #e2e8f0;border-radius:6px;padding:.6rem 1rem}}.card b{{display:block;font-size:1.5rem}}
td:first-child{{white-space:nowrap}}.hbars .val{{color:#4a5568}}</style>
</head><body><h1>Replay report</h1>
<div class="cards"><div class="card">events<b>{events}</b></div><div class="card">incidents<b>{incidents}</b></div>
<div class="card">noise reduction<b>{round(events / max(1, incidents), 1)}×</b></div>
<div class="card">alerts / changes / info / filtered<b>{by_class.get("alert", 0)} / {by_class.get("change", 0)} / {by_class.get("info", 0)} / {by_class.get("filtered", 0)}</b></div></div>
<h2>Captures per 10 minutes against incidents opened</h2>
{bars(sorted(per.items()), [("captures", "#a0aec0"), ("incidents", "#b3261e")])}
<h2>Time to correlate (first to last member event, seconds)</h2>{hbars(sorted(ttc, key=lambda x: -x[1])[:30], "#2b6cb0")}
<h2>Incidents by root cause</h2>{hbars(kinds.most_common(), "#b3261e")}
<h2>Incidents</h2><table><tr><th>id</th><th>severity</th><th>kind</th><th>title</th><th>events</th><th>changes</th></tr>{rows}</table>
</body></html>"""
