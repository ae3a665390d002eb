"""Plots for docs/benchmarks.md from the figures the benchmarks wrote (docs/bench-*.json).

.venv/bin/python -m benchmarks.plots      (`make bench` runs it last)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on these machines
import matplotlib.pyplot as plt

DOCS = Path(__file__).resolve().parents[1] / "docs"
OUT = DOCS / "plots"


def load(name: str) -> dict[str, Any] | None:
    path = DOCS / f"bench-{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def bars(ax: Any, labels: list[str], values: list[float], unit: str) -> None:
    ax.bar(labels, values, color=["#4c72b0", "#dd8452", "#55a868", "#c44e52"][: len(values)])
    for i, v in enumerate(values):
        text = f"{v:,.0f}" if v >= 10 else f"{v:.3g}"
        ax.annotate(f"{text} {unit}", (i, v), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(unit)


def side_by_side(d: dict[str, Any]) -> None:
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    bars(a, ["Alertmanager", "ours"], [d["alertmanager_alerts_per_s"], d["ours_alerts_per_s"]], "alerts/s")
    # NOTE: a log axis from 1, so bar heights compare orders of magnitude honestly
    a.set_yscale("log")
    a.set_ylim(bottom=1)
    a.set_title("alerts accepted per second (log)")
    bars(b, ["Alertmanager", "ours"], [d["alertmanager_first_notification_s"], d["ours_first_page_s"]], "s")
    b.set_title("first notification after first POST")
    fig.suptitle(f"same {d['alerts']:,} alerts, one run", fontsize=9)
    save(fig, "side-by-side.png")


def replay(d: dict[str, Any]) -> None:
    rows = d["replay"]
    copies = [r["copies"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(copies, [r["events_per_s"] for r in rows], marker="o")
    a.set_xscale("log")
    a.set_ylim(bottom=0)
    a.set_xlabel("× public scenarios")
    a.set_title("replay events/s")
    b.plot(copies, [r["peak_rss_mb"] for r in rows], marker="o", color="#dd8452")
    b.set_xscale("log")
    b.set_ylim(bottom=0)
    b.set_xlabel("× public scenarios")
    b.set_title("peak RSS, MB")
    save(fig, "replay-scale.png")

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key, label in (("open_incidents_memory", "memory"), ("open_incidents_sqlite", "SQLite")):
        pts = d.get(key) or []
        ax.plot([p["open_incidents"] for p in pts], [p["ratio_vs_smallest"] for p in pts], marker="o", label=label)
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("open incidents")
    ax.set_ylabel("cost per event vs 10 open")
    ax.legend()
    save(fig, "open-incidents.png")


def ingest(d: dict[str, Any]) -> None:
    per, batched = d["per_event_transaction"], d["one_transaction_per_webhook"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    labels = ["one txn per event", "one txn per webhook"]
    bars(a, labels, [per["alerts_per_s"], batched["alerts_per_s"]], "alerts/s")
    a.set_title("embedded ingest, in-process")
    bars(b, labels, [per["statements_per_alert"], batched["statements_per_alert"]], "statements")
    b.set_title("SQL statements per alert")
    save(fig, "ingest-batching.png")


def emulator(d: dict[str, Any]) -> None:
    lat = d["latency_ms"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bars(ax, ["p50", "p99", "max"], [lat["p50"] / 1000, lat["p99"] / 1000, lat["max"] / 1000], "s")
    ax.set_title(f"emulator stack: ingest to incident ({d['events_per_second']} events/s)")
    save(fig, "emulator-latency.png")


def storm(d: dict[str, Any]) -> None:
    panels = [k for k in ("storm", "big_webhook", "growth") if k in d]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        p = d[key]
        if key == "storm":
            am, ours = p["alertmanager"], p["eventmgmt"]
            bars(
                ax,
                ["Alertmanager\naccepted", "ours\naccepted", "ours fully\ncorrelated"],
                [am["alerts_per_s"], ours["alerts_per_s"], ours["correlated_alerts_per_s"]],
                "alerts/s",
            )
            # NOTE: a log axis from 1, as in side-by-side.png
            ax.set_yscale("log")
            ax.set_ylim(1, 8 * am["alerts_per_s"])
            ax.set_title(f"storm of {p['alerts']:,} alerts, {p['alerts_per_request']} a request (log)", fontsize=9)
        elif key == "big_webhook":
            ts = p["rss_timeline"]
            ax.plot([t for t, _ in ts], [mb for _, mb in ts], color="#dd8452")
            ax.axvline(p["response_s"], color="grey", linestyle="--", linewidth=1)
            ax.annotate(f"answered {p['status']} at {p['response_s']:.1f} s", (p["response_s"], 0), fontsize=8)
            ax.set_ylim(bottom=0)
            ax.set_xlabel("s after the request left")
            ax.set_ylabel("RSS, MB")
            ax.set_title(f"one webhook of {p['alerts']:,} alerts ({p['body_mb']} MB)", fontsize=9)
        else:
            ms = p["webhook_ms"]
            ax.plot(range(1, len(ms) + 1), ms, marker=".", color="#55a868")
            ax.set_ylim(bottom=0)
            ax.set_xlabel(f"webhook ({p['alerts_per_webhook']} alerts each)")
            ax.set_ylabel("response, ms")
            ax.set_title(f"one incident growing to {p['largest_members'][0]:,} members", fontsize=9)
    fig.suptitle(f"storm_bench, {d['date']}, {d['machine']}", fontsize=9)
    save(fig, "storm.png")


def save(fig: Any, name: str) -> None:
    OUT.mkdir(exist_ok=True)
    fig.tight_layout()
    fig.savefig(OUT / name, dpi=110)
    plt.close(fig)
    print(f"wrote {OUT / name}")


def main() -> None:
    for name, plot in (
        ("side-by-side", side_by_side),
        ("correlate", replay),
        ("ingest", ingest),
        ("emulator", emulator),
        ("storm", storm),
    ):
        data = load(name)
        if data is not None:
            plot(data)


if __name__ == "__main__":
    main()
