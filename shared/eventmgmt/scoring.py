"""Scores of a replay report against a truth file in the scenarios' format (for backtesting rules).

Pairwise precision/recall over incident members: a pair of truth members is a true positive when
the report puts both in one incident, as a person filed them; the root cause counts as right when
the incident holding most of a group's members names an acceptable root."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


def _ref(r: Any) -> str:
    if isinstance(r, str):
        return r if "#" in r else f"{r}#0"
    return f"{r['capture']}#{int(r.get('index', 0))}"


def score(truth: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    placed: dict[str, str] = {}
    roots: dict[str, str] = {}
    for inc in report.get("incidents", []):
        for e in inc.get("events", []):
            placed[_ref(e)] = str(inc["id"])
        if inc.get("root_cause"):
            roots[str(inc["id"])] = _ref(inc["root_cause"])
    group_of = {k: v["group"] for k, v in truth["events"].items() if v.get("group")}
    by_group: dict[str, list[str]] = defaultdict(list)
    for k, g in group_of.items():
        by_group[g].append(k)
    # Count pairs per (truth group, system incident) cell instead of enumerating pairs.
    cells: Counter[tuple[str, str | None]] = Counter((g, placed.get(k)) for k, g in group_of.items())
    sys_sizes: Counter[str] = Counter(placed[k] for k in group_of if k in placed)

    def pairs(n: int) -> int:
        return n * (n - 1) // 2

    tp = sum(pairs(n) for (g, s), n in cells.items() if s is not None)
    same_truth = sum(pairs(len(v)) for v in by_group.values())
    same_sys = sum(pairs(n) for n in sys_sizes.values())
    precision = tp / same_sys if same_sys else 0.0
    recall = tp / same_truth if same_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ok = 0
    for g, members in by_group.items():
        votes = Counter(placed[k] for k in members if k in placed)
        if not votes:
            continue
        best = votes.most_common(1)[0][0]
        acceptable = {truth["roots"][g], *truth.get("root_alternatives", {}).get(g, [])}
        ok += roots.get(best) in acceptable
    touched = {placed[k] for k in group_of if k in placed}
    noise = [k for k, v in truth["events"].items() if not v.get("group")]
    return {
        "truth_incidents": len(by_group),
        "system_incidents": len(report.get("incidents", [])),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "root_cause_accuracy": round(ok / max(1, len(by_group)), 4),
        "noise_in_incidents": sum(1 for k in noise if placed.get(k) in touched),
        "incidents_of_noise_only": len({placed[k] for k in noise if k in placed} - touched),
    }
