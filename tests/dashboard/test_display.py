"""The pages' wording helpers: incident headlines, short node names, clipping between words, axis ticks."""

from __future__ import annotations

from eventmgmt.dashboard.display import chain_kinds, clip_words, headline, kind_title, short_names
from eventmgmt.dashboard.svg import hbars, ticks

KNOWN = {"pod_oom", "triton_crash", "model_unavailable", "high_error_rate", "node_drain", "pod_eviction"}


def test_a_headline_names_the_chain_in_words_the_model_and_the_node() -> None:
    inc = {
        "title": "pod_oom → triton_crash → model_unavailable → high_error_rate: resnet50 (pod p, node n-3f0c)",
        "root_kind": "triton_crash",
        "resources": {"models": ["resnet50"], "nodes": ["gke-inference-prod-gpu-pool-3f0c"], "pods": ["p"]},
        "resource_counts": {"models": 1, "nodes": 1, "pods": 1},
    }
    h = headline(inc, KNOWN)
    assert h["what"] == "Pod OOM → Triton crash → model unavailable → high error rate"
    assert h["where"] == ["resnet50"] and h["node"] == "gke-inference-prod-gpu-pool-3f0c"
    wide = {**inc, "resource_counts": {"models": 3, "nodes": 4, "pods": 9}}
    h = headline(wide, KNOWN)
    assert h["where"] == ["resnet50 +2", "9 pods"] and h["node"] is None and h["nodes"] == 4
    assert kind_title("node_drain") == "Node drain" and kind_title("gpu_high_util") == "GPU high utilisation"


def test_a_chain_is_read_from_the_title_only_when_every_kind_in_it_is_known() -> None:
    storm = "resnet50: node drained on 2 pods (1 nodes) · node_drain → pod_eviction"
    assert chain_kinds(storm, "node_drain", KNOWN) == ["node_drain", "pod_eviction"]
    # a sender's model name with an arrow in it is not a chain
    assert chain_kinds("gpu_high_util: a → b (pod x)", "gpu_high_util", KNOWN) == ["gpu_high_util"]
    assert chain_kinds("", "pod_oom", KNOWN) == ["pod_oom"]


def test_node_names_are_shortened_to_a_tail_no_other_shares() -> None:
    short = short_names(
        [
            "gke-inference-prod-gpu-pool-3f0c",
            "gke-inference-prod-gpu-pool-efc6",
            "gke-a-pool-1-abcd",
            "gke-b-pool-1-abcd",
        ]
    )
    assert short["gke-inference-prod-gpu-pool-3f0c"] == "…3f0c"
    assert short["gke-a-pool-1-abcd"] == "…a-pool-1-abcd"
    assert short_names(["node-1"]) == {"node-1": "node-1"}  # a tail under 4 characters says too little


def test_text_is_clipped_between_words() -> None:
    summary = "Back-off restarting failed container triton in pod triton-resnet50-68kxfnbbb2-twkpk_inference(75a89294)"
    assert clip_words(summary, 70) == summary  # the pod name ends within the slack: kept whole
    assert clip_words(summary, 50) == "Back-off restarting failed container triton in pod …"  # else left out
    long = "Killed process 14096 (tritonserver) total-vm:80000000kB, anon-rss:60000000kB, " + "x" * 80 + " tail"
    clipped = clip_words(long, 90)
    assert clipped.endswith("anon-rss:60000000kB …") and "x" not in clipped
    assert clip_words("y" * 300, 50) == "y" * 50 + " …"


def test_axis_ticks_are_round_and_cover_the_top() -> None:
    assert ticks(35) == [0, 10, 20, 30, 40]
    assert ticks(1) == [0, 1] and ticks(6) == [0, 2, 4, 6] and ticks(444)[-1] >= 444


def test_hbars_escape_their_labels_and_share_one_label_column() -> None:
    html = hbars([("<b>x</b>", 3), ("alertmanager · reduced_capacity", 1)])
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.startswith('<div class="hbars" style="display:grid;grid-template-columns:')
