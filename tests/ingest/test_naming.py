"""The workload a pod's name says it belongs to: a Deployment's pods carry its ReplicaSet's hash and
a random suffix, a StatefulSet's an ordinal; a DaemonSet's or Job's pods, and hashes, name none."""

from __future__ import annotations

import pytest

from eventmgmt.naming import deployment_of_pod


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("triton-bert-large-7f9c6d8b4-x2kq9", "triton-bert-large"),
        ("triton-llama-3-8b-0", "triton-llama-3-8b"),  # StatefulSet ordinal 0
        ("phi3-mini-37", "phi3-mini"),
        ("vllm-worker-120", "vllm-worker"),
        ("node-exporter-x2kq9", None),  # DaemonSet: no hash, a random suffix
        ("triton-0a3f9c", None),
        ("triton-01", None),  # not an ordinal: ordinals have no leading zero
        ("inference", None),
        (None, None),
    ],
)
def test_the_workload_of_a_pod(pod: str | None, workload: str | None) -> None:
    assert deployment_of_pod(pod) == workload
