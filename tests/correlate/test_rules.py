"""Table-driven correlation rules: each case is a stream of events and the incidents it must make."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.model import Event

from .helpers import at, ev

P1, P2 = "triton-whisper-small-hhvkb7jwwk-bq896", "triton-resnet50-68kxfnbbb2-twkpk"
N1, N2 = "gpu-node-a", "gpu-node-b"


@dataclass
class Case:
    name: str
    events: list[Event]
    groups: list[list[int]]  # indexes into events that must share one incident, one list per incident
    roots: list[int] = field(default_factory=list)  # root event index of each group


def oom_cascade(pod: str, node: str, model: str, t: float) -> list[Event]:
    return [
        ev("pod_oom", t, node=node, source="k8s-event"),
        ev("triton_crash", t + 0.1, pod=pod, node=node, source="k8s-event"),
        ev("pod_oom", t + 0.5, pod=pod),
        ev("model_unavailable", t - 0.2, pod=pod, model=model, received=t + 1),
        ev("high_error_rate", t + 1, pod=pod, model=model, received=t + 5),
    ]


CASES = [
    Case(
        "oom cascade is one incident rooted at the kernel OOM",
        oom_cascade(P1, N1, "whisper-small", 10),
        [[0, 1, 2, 3, 4]],
        [0],
    ),
    Case(
        "two cascades on other nodes and models stay apart",
        [*oom_cascade(P1, N1, "whisper-small", 10), *oom_cascade(P2, N2, "resnet50", 10.2)],
        [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]],
        [0, 5],
    ),
    Case(
        "drain: cordon, evictions of pods with no node yet, capacity alerts",
        [
            ev("node_drain", 0, node=N1, name="cordon"),
            ev("pod_eviction", 0.1, pod=P1),
            ev("pod_stop", 0.2, pod=P1, node=N1),
            ev("reduced_capacity", 1, deployment="triton-whisper-small"),
        ],
        [[0, 1, 2, 3]],
        [0],
    ),
    Case(
        "bad rollout: the deployment change is the root cause",
        [
            ev("deployment_change", 0, deployment="triton-whisper-small"),
            ev("model_load_failed", 0.5, pod=P1, node=N1, model="whisper-small", source="log"),
            ev("high_error_rate", 1, pod=P1, model="whisper-small"),
        ],
        [[0, 1, 2]],
        [0],
    ),
    Case(
        "node not ready fans out to its pods' error rates",
        [
            ev("node_not_ready", 0, node=N1, source="k8s-event"),
            ev("pod_not_ready", 0.1, pod=P1, node=N1, source="k8s-event"),
            ev("node_not_ready", 0.2, node=N1),
            ev("high_error_rate", 1, pod=P1, node=N1, model="whisper-small"),
        ],
        [[0, 1, 2, 3]],
        [0],
    ),
    Case(
        "unrelated kinds on the same pod do not join",
        [ev("gpu_high_util", 0, pod=P1, node=N1), ev("model_load_failed", 1, pod=P1, node=N1, source="log")],
        [[0], [1]],
    ),
    Case(
        "same kind on two pods of one model groups",
        [ev("high_error_rate", 0, model="bert-large"), ev("high_error_rate", 1, pod=P2, model="bert-large")],
        [[0, 1]],
    ),
    Case(
        "events beyond the window after a quiet incident start a new one",
        [
            ev("triton_crash", 0, pod=P1, node=N1, source="k8s-event"),
            ev("triton_crash", 60, pod=P1, node=N1, source="k8s-event", fp="other"),
        ],
        [[0], [1]],
    ),
    Case(
        "flapping alert stays one incident",
        [
            ev("gpu_high_util", 0, pod=P1, node=N1, fp="gpu"),
            ev("gpu_high_util", 3, pod=P1, node=N1, fp="gpu", status="resolved"),
            ev("gpu_high_util", 7, pod=P1, node=N1, fp="gpu", name="f2"),
            ev("gpu_high_util", 10, pod=P1, node=N1, fp="gpu", status="resolved", name="r2"),
            ev("gpu_high_util", 14, pod=P1, node=N1, fp="gpu", name="f3"),
        ],
        [[0, 1, 2, 3, 4]],
        [0],
    ),
    Case(
        "resolved overtaking its firing still joins the same incident",
        [
            ev("high_queue_depth", 9, model="whisper-small", fp="q", status="resolved", received=9),
            ev("high_queue_depth", 0, model="whisper-small", fp="q", received=9.5),
        ],
        [[0, 1]],
        [1],
    ),
]


CASES.append(
    Case(
        "an alert healed once and firing again goes to the open node failure, not its old incident",
        [
            ev("model_load_failed", 0, pod=P1, node=N1, model="whisper-small", source="log"),
            ev("high_error_rate", 1, pod=P1, node=N1, model="whisper-small", fp="err"),
            ev("high_error_rate", 8, pod=P1, node=N1, model="whisper-small", fp="err", status="resolved"),
            ev("node_not_ready", 30, node=N1, source="k8s-event"),
            ev("high_error_rate", 31, pod=P1, node=N1, model="whisper-small", fp="err", name="again"),
        ],
        [[0, 1, 2], [3, 4]],
        [0, 3],
    )
)


CASES.append(
    Case(
        "an alert whose resolution was lost does not pull in a new episode hours later",
        [
            ev("triton_crash", 0, pod=P1, node=N1, source="k8s-event"),
            ev("high_error_rate", 1, pod=P1, node=N1, fp="err"),
            ev("triton_crash", 300, pod=P1, node=N1, source="k8s-event", name="later", fp="crash2"),
            ev("high_error_rate", 301, pod=P1, node=N1, fp="err", name="again"),
        ],
        [[0, 1], [2, 3]],
        [0, 2],
    )
)


CASES.append(
    Case(
        "GPU saturation and a queue build-up of another model on the same node stay apart",
        [
            ev("gpu_high_util", 0, pod=P2, node=N1, fp="gpu"),
            ev("high_queue_depth", 2, pod=P1, node=N1, model="whisper-small"),
            ev("gpu_high_util", 3, pod=P2, node=N1, fp="gpu", status="resolved"),
        ],
        [[0, 2], [1]],
        [0, 1],
    )
)


CASES.append(
    Case(
        "two pods OOM-killed on one node twenty minutes apart are two incidents",
        [
            ev("pod_oom", 0, node=N1, source="k8s-event", name="oom-a"),
            ev("triton_crash", 0.1, pod=P1, node=N1, source="k8s-event"),
            ev("pod_oom", 8, node=N1, source="k8s-event", name="oom-b", fp="node-oom-b"),
            ev("triton_crash", 8.1, pod=P2, node=N1, source="k8s-event"),
            ev("high_error_rate", 9, pod=P2, node=N1, model="resnet50"),
        ],
        [[0, 1], [2, 3, 4]],
        [0, 2],
    )
)


def run(events: list[Event]) -> tuple[Correlator, dict[str, str]]:
    corr = Correlator(default_config(), MemoryRepo())
    placed: dict[str, str] = {}
    for e in events:
        corr.tick(e.received_at)
        for msg in corr.process(e, e.received_at).messages:
            if msg.incident_id and msg.event.id == e.id:
                placed[e.id] = msg.incident_id
    # merges may have moved earlier events: resolve through the repo
    for e in events:
        iid = corr.repo.incident_of(e.id)
        if iid:
            placed[e.id] = iid
    return corr, placed


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rules(case: Case) -> None:
    corr, placed = run(case.events)
    got = {}
    for i, e in enumerate(case.events):
        got.setdefault(placed.get(e.id), []).append(i)
    assert sorted(got.values()) == sorted(case.groups)
    for group, root in zip(case.groups, case.roots, strict=False):
        inc = corr.repo.get(placed[case.events[group[0]].id])
        assert inc is not None
        assert inc.root(corr.chains).event_id == case.events[root].id


def test_root_cause_on_a_timestamp_tie_follows_the_chain_not_arrival_order():
    """An OOM kill and the crash loop it causes, stamped the same second, in either arrival order:
    the OOM kill is the root, and the title lists kinds in chain order."""
    from eventmgmt.config import default_config
    from eventmgmt.correlate.engine import Correlator
    from eventmgmt.correlate.repo import MemoryRepo

    pod = "triton-resnet50-68kxfnbbb2-wbq4j"
    for order in (("triton_crash", "pod_oom"), ("pod_oom", "triton_crash")):
        corr = Correlator(default_config(), MemoryRepo())
        snap = None
        for kind in order:
            snap = corr.process(ev(kind, 0, pod=pod, fp=kind), at(0)).messages[-1].incident
        assert snap is not None and snap.root_kind == "pod_oom", order
        assert snap.title.startswith("pod_oom → triton_crash"), snap.title


def test_pods_of_one_model_on_different_nodes_are_one_incident_only_when_they_begin_together():
    from eventmgmt.config import default_config
    from eventmgmt.correlate.engine import Correlator
    from eventmgmt.correlate.repo import MemoryRepo

    def run(gap: float) -> set[str]:
        corr = Correlator(default_config(), MemoryRepo())
        ids = set()
        for i in range(4):
            e = ev(
                "model_load_failed",
                i * gap,
                pod=f"triton-gpt2-xl-8qjhxpknt7-{'bcdfg'[i] * 5}",
                node=f"gpu-node-{i}",
                model="gpt2-xl",
                source="log",
                fp=f"l{i}",
            )
            ids.add(corr.process(e, at(i * gap)).messages[-1].incident_id)
        return ids

    assert len(run(0.5)) == 1  # a fleet outage: every replica fails within two minutes
    assert len(run(30)) == 4  # the same failure half an hour apart each time: four problems
