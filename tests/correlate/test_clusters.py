"""Nothing joins or merges across clusters: the same model, namespace and pod names (a StatefulSet's
`triton-0`) recur in every cluster, and two clusters failing at once are two problems. An event that
names no cluster (a log line, an audit record) still joins by its resources."""

from __future__ import annotations

from eventmgmt.config import default_config
from eventmgmt.correlate.engine import Correlator
from eventmgmt.correlate.repo import MemoryRepo
from eventmgmt.model import Event, Resources

from .helpers import at, ev


def in_cluster(e: Event, cluster: str | None) -> Event:
    return e.model_copy(update={"resources": Resources(**{**e.resources.__dict__, "cluster": cluster})})


def test_the_same_names_failing_in_two_clusters_are_two_incidents() -> None:
    corr = Correlator(default_config(), MemoryRepo())
    ids = {}
    for i, cluster in enumerate(("prod-eu", "prod-us")):
        e = ev("model_unavailable", 0.1 * i, pod="triton-0", node=f"gpu-{cluster}", model="llama", fp=f"mu-{cluster}")
        ids[cluster] = corr.process(in_cluster(e, cluster), at(0.1 * i)).messages[-1].incident_id
    assert ids["prod-eu"] != ids["prod-us"]
    # NOTE: the error rate of each cluster joins its own cluster's incident
    for cluster in ("prod-eu", "prod-us"):
        e = ev("high_error_rate", 0.5, pod="triton-0", node=f"gpu-{cluster}", model="llama", fp=f"er-{cluster}")
        assert corr.process(in_cluster(e, cluster), at(0.5)).messages[-1].incident_id == ids[cluster]


def test_an_event_without_a_cluster_joins_but_ties_no_clusters_together() -> None:
    corr = Correlator(default_config(), MemoryRepo())
    ids = []
    for i, cluster in enumerate(("prod-eu", "prod-us")):
        e = ev("model_unavailable", 0.1 * i, pod=f"triton-{i}", node=f"gpu-{i}", model="llama", fp=f"mu-{i}")
        ids.append(corr.process(in_cluster(e, cluster), at(0.1 * i)).messages[-1].incident_id)
    assert ids[0] != ids[1]
    # NOTE: a Triton log line of the model, no cluster: related to both; joins one, merges nothing
    log = ev("model_load_failed", 0.3, pod="triton-0", node="gpu-0", model="llama", source="log", fp="log-1")
    out = corr.process(log, at(0.3)).messages
    assert out[-1].incident_id == ids[0]
    assert not any(m.action is not None and m.action.value == "merged" for m in out)
    assert {i.id for i in corr.repo.live()} == set(ids)  # type: ignore[attr-defined]
