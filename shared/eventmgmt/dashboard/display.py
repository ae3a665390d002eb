"""How the pages say things: an incident's headline in words (its chain of kinds, the model, how
wide, the node), node names short enough to read at a glance, text clipped between words. Every
value here is still a sender's text: the templates escape it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# NOTE: words of kind names said as people write them; a kind's other words stay lower case.
WORDS = {
    "oom": "OOM",
    "gpu": "GPU",
    "cpu": "CPU",
    "api": "API",
    "dns": "DNS",
    "http": "HTTP",
    "pvc": "PVC",
    "tls": "TLS",
    "xid": "XID",
    "ecc": "ECC",
    "cuda": "CUDA",
    "nccl": "NCCL",
    "hpa": "HPA",
    "k8s": "K8s",
    "nvlink": "NVLink",
    "triton": "Triton",
    "kubernetes": "Kubernetes",
    "util": "utilisation",
}
# A run of two or more kind names joined by arrows, as correlation writes an incident's chain in its title.
# NOTE: a run starts only where a word starts (the lookbehind): without it every position inside a
# long word (an alert name of 100,000 letters) was tried and backtracked, quadratic in the title.
_PATH = re.compile(r"(?<![a-z0-9_])[a-z0-9_]+(?: → [a-z0-9_]+)+")


def kind_words(kind: str) -> str:
    """`pod_oom` as "pod OOM", `triton_crash` as "Triton crash"."""
    return " ".join(WORDS.get(w, w) for w in str(kind).split("_") if w)


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def kind_title(kind: str) -> str:
    """`node_drain` as "Node drain"."""
    return _first_upper(kind_words(kind))


def chain_kinds(title: str, root_kind: str, known: set[str]) -> list[str]:
    """The kinds an incident's title names in chain order (correlation writes them joined by "→"),
    if every one of them is a kind of the configured chains; else just the root cause's kind. A
    model or pod name with an arrow in it is never taken for a chain."""
    for m in _PATH.finditer(title or ""):
        kinds = m.group(0).split(" → ")
        if all(k in known for k in kinds):
            return kinds
    return [root_kind] if root_kind else []


def headline(inc: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    """What an incident is, in words a person reads at a glance: `what` ("Pod OOM → Triton crash →
    model unavailable → high error rate"), `where` (the model or deployment, how many pods), and
    the one node it is on (`node`, shown short) or how many (`nodes`)."""
    kinds = chain_kinds(str(inc.get("title") or ""), str(inc.get("root_kind") or ""), known)
    res: Mapping[str, list[str]] = inc.get("resources") or {}
    counts: Mapping[str, int] = inc.get("resource_counts") or {}
    where: list[str] = []
    for name in ("models", "deployments"):
        values = res.get(name) or []
        if values:
            more = max(counts.get(name, len(values)), len(values)) - 1
            where.append(str(values[0]) + (f" +{more}" if more else ""))
            break
    pods = counts.get("pods", len(res.get("pods") or []))
    if pods > 1:
        where.append(f"{pods} pods")
    nodes = res.get("nodes") or []
    n_nodes = max(counts.get("nodes", len(nodes)), len(nodes))
    return {
        "what": _first_upper(" → ".join(kind_words(k) for k in kinds)),
        "where": where,
        "node": str(nodes[0]) if n_nodes == 1 and nodes else None,
        "nodes": n_nodes,
    }


def chain_vocabulary(chains: Iterable[Any]) -> set[str]:
    """Every kind the configured chains name."""
    return {k for c in chains for step in c.steps for k in step}


def short_names(names: Iterable[str], least: int = 4, most: int = 40) -> dict[str, str]:
    """Each name as its shortest tail of dash-separated parts (at least `least` characters) that no
    other of `names` ends with, behind "…": gke-inference-prod-gpu-pool-3f0c as "…3f0c" when no
    other node ends in 3f0c. The pages show the whole name on hover (a title attribute)."""
    distinct = sorted({str(n) for n in names})
    out: dict[str, str] = {}
    for name in distinct:
        parts = name.split("-")
        short = name
        for k in range(1, len(parts)):
            tail = "-".join(parts[-k:])
            if len(tail) < least or any(o != name and (o == tail or o.endswith("-" + tail)) for o in distinct):
                continue
            short = "…" + tail
            break
        out[name] = short if len(short) <= most else "…" + name[-(most - 1) :]
    return out


def clip_words(value: Any, n: int = 140, slack: int = 40) -> str:
    """At most about `n` characters of `value`, cut between words: a word (a pod name, a path)
    that starts before `n` is kept whole if it ends within `slack` more, else left out; "…" marks
    the cut. Only a single word longer than `n` is cut inside."""
    text = " ".join(("" if value is None else str(value)).split())
    if len(text) <= n:
        return text
    end = text.find(" ", n)
    end = len(text) if end == -1 else end
    if end - n <= slack:
        return text if end == len(text) else text[:end].rstrip(" ,;:") + " …"
    start = text.rfind(" ", 0, n + 1)
    return (text[:start].rstrip(" ,;:") if start > 0 else text[:n]) + " …"


# What a receiver was told (the route ledger's states), in words.
TOLD = {
    "none": "nothing yet",
    "triggered": "paged",
    "acknowledged": "told it is acknowledged",
    "resolved": "told it is resolved",
    "linked": "told of the linked change",
}


# What is still owed to a receiver that was down (the outbox's states), in words.
OWED = {
    "triggered": "the page",
    "acknowledged": "the acknowledgement",
    "resolved": "the resolution",
    "linked": "the linked change",
}


def told_words(state: Any, owed: bool = False) -> str:
    return (OWED if owed else TOLD).get(str(state), str(state))


def alert_links(events: Iterable[Mapping[str, Any]], most: int = 20) -> list[dict[str, Any]]:
    """Each alert of an incident once (by its name), with where it came from (Alertmanager's
    generatorURL: the rule's graph in Prometheus; the Alertmanager that sent it, its externalURL) and
    its own runbook, when it has any. Links are
    as the sender wrote them: the page makes only http(s) ones live."""
    seen: dict[str, dict[str, Any]] = {}
    for e in events:
        labels = e.get("labels") or {}
        source, runbook, manager = labels.get("generator_url"), e.get("runbook"), labels.get("alertmanager_url")
        if e.get("class") != "alert" or not (source or runbook or manager):
            continue
        name = str(e.get("signal") or e.get("kind") or "")
        got = seen.setdefault(
            name, {"signal": name, "kind": e.get("kind"), "source": None, "runbook": None, "alertmanager": None, "n": 0}
        )
        got["source"] = got["source"] or source
        got["runbook"] = got["runbook"] or runbook
        got["alertmanager"] = got["alertmanager"] or manager
        got["n"] += 1
    return list(seen.values())[:most]


def match_pairs(match: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """A maintenance window's matcher as (field, pattern) pairs: `resources` by their names (node,
    model, ...), `labels` as "label NAME"."""
    pairs: list[tuple[str, str]] = []
    for key, value in (match or {}).items():
        if isinstance(value, Mapping):
            prefix = "label " if key == "labels" else ""
            pairs.extend((f"{prefix}{k}", str(v)) for k, v in value.items())
        else:
            pairs.append((str(key), str(value)))
    return pairs
