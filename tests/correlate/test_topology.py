"""What the topology graph fills in: a pod's node, deployment and model from what other events said
of it, but no model for a pod seen serving several (its server-wide lines belong to none of them)."""

from __future__ import annotations

from eventmgmt.enrich import TopologyGraph
from eventmgmt.model import Resources

POD = "triton-ensemble-7f9c6d8b4-x2kq9"


def test_a_pods_model_and_node_are_filled_in_from_what_was_learned() -> None:
    graph = TopologyGraph()
    graph.learn(Resources(namespace="triton", pod=POD, node="gpu-1", model="bert"))
    filled = graph.fill(Resources(namespace="triton", pod=POD))
    assert (filled.node, filled.model) == ("gpu-1", "bert")


def test_a_pod_serving_several_models_gets_none_filled_in() -> None:
    graph = TopologyGraph()
    graph.learn(Resources(namespace="triton", pod=POD, node="gpu-1", model="bert"))
    graph.learn(Resources(namespace="triton", pod=POD, model="ensemble_model"))
    exit_line = graph.fill(Resources(namespace="triton", pod=POD))
    assert exit_line.model is None and exit_line.node == "gpu-1"
    # a line naming its model keeps it
    assert graph.fill(Resources(namespace="triton", pod=POD, model="bert")).model == "bert"
