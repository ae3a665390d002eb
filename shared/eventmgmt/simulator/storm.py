"""Seeded generators of realistic traffic with its truth: a storm (every pod of many models failing in
the same minute) and a whole day of captures in which routine traffic and several incidents mix.

Pure: everything comes from `random.Random(seed)` and the times passed in. Nothing reads the clock,
the network or a file (the command line writes what it is asked to write).

    python -m eventmgmt.simulator.storm day --seed 7 --out DIR        # DIR/captures.jsonl, DIR/truth.json
    python -m eventmgmt.simulator.storm storm --models 20 --pods 100 --batch 100 --out storm.jsonl

Wire formats follow what the sources send: Alertmanager webhook v4 (alerts grouped by alertname, sent
after `for`, group_wait and group_interval), core/v1 and events.k8s.io/v1 Events as an exporter posts
them, audit.k8s.io/v1 EventLists from the audit webhook backend, Fluent Bit records carrying Triton's
glog lines. The truth has the scenarios' format (`events`, `roots`, `root_alternatives`, `groups`).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

# --- vocabulary ---------------------------------------------------------------------------------

# The alphabet Kubernetes uses for pod-template hashes and generated name suffixes.
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_HEX = "0123456789abcdef"
_SUFFIX = "abcdefghijkmnpqrstuvwxyz0123456789"
ZERO_TIME = "0001-01-01T00:00:00Z"
NODEPOOL_LABEL = "label_cloud_google_com_gke_nodepool"

MODEL_VOCABULARY = (
    "resnet50",
    "bert-large",
    "whisper-small",
    "whisper-large",
    "yolov8",
    "gpt2-xl",
    "llama-3-8b",
    "llama-3-70b",
    "mixtral-8x7b",
    "mistral-7b",
    "t5-base",
    "clip-vit",
    "sdxl-turbo",
    "e5-large",
    "bge-reranker",
    "densenet121",
    "efficientnet-b4",
    "wav2vec2",
    "phi-3-mini",
    "gemma-2-9b",
    "qwen2-7b",
    "deberta-v3",
    "vit-base",
    "falcon-7b",
)
POOLS = ("gpu-pool", "a100-pool", "h100-pool", "l4-pool", "a10g-pool", "t4-pool", "inference-pool")
CLUSTERS = ("inference-prod", "ml-serving", "genai-prod", "triton-eu", "inference-us", "serving-prod")
NAMESPACES = ("inference", "serving", "triton", "ml-inference", "models")
PEOPLE = ("alice@example.com", "bob@example.com", "oncall-sre@example.com", "priya@example.com", "chen@example.com")
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
RS_CONTROLLER_USER = "system:serviceaccount:kube-system:replicaset-controller"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:24.08-py3"
# The user agents of the clients the audit log sees.
KUBECTL_UA = "kubectl/v1.30.2 (linux/amd64) kubernetes/39683505"
KUBELET_UA = "kubelet/v1.30.2 (linux/amd64) kubernetes/39683505"
CONTROLLER_MANAGER_UA = "kube-controller-manager/v1.30.2"
HPA_UA = f"{CONTROLLER_MANAGER_UA} (linux/amd64) kubernetes/39683505/{HPA_USER}"
RS_CONTROLLER_UA = f"{CONTROLLER_MANAGER_UA} (linux/amd64) kubernetes/39683505/{RS_CONTROLLER_USER}"

# The mission's causal chains, cause first, as defaults.yaml states them (a test checks they agree).
# The root cause of a group is the earliest firing event of the earliest step of the chain that
# explains all of its kinds.
CHAINS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    (
        "pod_oom",
        (
            ("pod_oom", "triton_crash", "pod_crash_loop", "process_crash"),
            ("model_unavailable", "pod_not_ready"),
            ("high_error_rate",),
            ("reduced_capacity",),
        ),
    ),
    (
        "node_drain",
        (
            ("node_drain",),
            ("pod_eviction", "pod_stop", "pod_delete"),
            ("reduced_capacity", "pod_unschedulable", "pod_not_ready"),
            ("model_unavailable",),
            ("high_error_rate",),
            ("node_uncordon",),
        ),
    ),
    (
        "bad_rollout",
        (
            ("deployment_change",),
            ("model_load_failed", "triton_crash", "pod_crash_loop", "process_crash", "pod_oom"),
            ("model_unavailable", "pod_not_ready"),
            ("high_error_rate",),
            ("reduced_capacity",),
        ),
    ),
    ("model_load_failed", (("model_load_failed",), ("model_unavailable", "pod_not_ready"), ("high_error_rate",))),
    (
        "node_not_ready",
        (
            ("node_not_ready", "node_pressure", "gpu_xid_error"),
            ("pod_not_ready", "pod_eviction"),
            ("model_unavailable",),
            ("high_error_rate", "reduced_capacity"),
        ),
    ),
    ("gpu_saturation", (("gpu_high_util", "gpu_memory_high"), ("high_error_rate",))),
    ("queue_depth", (("high_queue_depth",), ("high_error_rate",))),
)
# Events of the root's chain step this close after it are acceptable root causes too.
ROOT_TIE = timedelta(seconds=60)

LOAD_FAILURES = (
    "Internal: unable to create TensorRT engine: out of memory",
    "Internal: failed to load TensorRT plan: serialization version mismatch (expected 232, got 228)",
    "Invalid argument: model input 'INPUT__0' has 3 dims but config.pbtxt expects 4",
    "Not found: unable to load shared library: libnvinfer_plugin.so.10: cannot open shared object file",
    "Internal: onnx runtime error 6: Non-zero status code returned while running Conv node",
    "Unavailable: failed to download model repository from gs://models-{cluster}/{model}/{version}: 403 Forbidden",
)


# --- small helpers -------------------------------------------------------------------------------


def _ms(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _us(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _s(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _trunc_ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def _trunc_s(t: datetime) -> datetime:
    return t.replace(microsecond=0)


def _glog(sev: str, t: datetime, where: str, msg: str) -> str:
    """A line as Triton prints it through glog: `E1107 08:12:49.123456 1 model_lifecycle.cc:654] ...`."""
    return f"{sev}{t:%m%d %H:%M:%S}.{t.microsecond:06d} 1 {where}] {msg}"


def _parse_time(value: datetime | str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def alert_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: FNV-1a 64 over sorted name/value pairs, 0xff apart."""
    h = 0xCBF29CE484222325
    for name in sorted(labels):
        for b in name.encode() + b"\xff" + labels[name].encode() + b"\xff":
            h ^= b
            h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


class _Rand(random.Random):
    """random.Random with the names and durations the generators draw."""

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.choice(alphabet) for _ in range(n))

    def hexs(self, n: int) -> str:
        return self.chars(_HEX, n)

    def uid(self) -> str:
        return str(uuid.UUID(int=self.getrandbits(128), version=4))

    def secs(self, lo: float, hi: float) -> timedelta:
        return timedelta(microseconds=round(self.uniform(lo, hi) * 1e6))

    def mins(self, lo: float, hi: float) -> timedelta:
        return self.secs(lo * 60, hi * 60)

    def ip(self) -> str:
        return f"10.{self.randrange(0, 256)}.{self.randrange(0, 256)}.{self.randrange(2, 255)}"

    def model_names(self, n: int) -> list[str]:
        """`n` distinct model names: a vocabulary word and a random suffix (`llama-3-8b-q7k`)."""
        bases = self.sample(MODEL_VOCABULARY, min(n, len(MODEL_VOCABULARY)))
        while len(bases) < n:
            bases.append(self.choice(MODEL_VOCABULARY))
        out: list[str] = []
        for base in bases:
            name = f"{base}-{self.chars(_SUFFIX, self.randint(2, 4))}"
            while name in out or name.endswith("-"):
                name = f"{base}-{self.chars(_SUFFIX, self.randint(2, 4))}"
            out.append(name)
        return out

    def node_names(self, cluster: str, pool: str, n: int, taken: set[str]) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            name = f"gke-{cluster}-{pool}-{self.hexs(4)}"
            if name not in taken:
                taken.add(name)
                out.append(name)
        return out


def _pod_names(rng: _Rand, deployment: str, n: int, standard: bool = True) -> tuple[str, list[str]]:
    """(pod-template hash, pod names) of a Deployment: <deployment>-<hash of 8-10>-<5>, all from
    Kubernetes' alphabet. Non-standard names (a StatefulSet's ordinals, a hand-rolled controller's
    hex hash) are what some clusters have; nothing can be derived from them."""
    rs_hash = rng.chars(K8S_ALPHABET, rng.randint(8, 10))
    names: list[str] = []
    seen: set[str] = set()
    style = rng.choice(("ordinal", "hex")) if not standard else "deployment"
    hex_hash = rng.hexs(8)
    for i in range(n):
        while True:
            if style == "deployment":
                name = f"{deployment}-{rs_hash}-{rng.chars(K8S_ALPHABET, 5)}"
            elif style == "ordinal":
                name = f"{deployment}-{i}"
            else:
                name = f"{deployment}-{hex_hash}-{i:04d}"
            if name not in seen:
                break
        seen.add(name)
        names.append(name)
    return rs_hash, names


# --- Alertmanager ---------------------------------------------------------------------------------


def am_alert(
    labels: dict[str, str],
    annotations: dict[str, str],
    starts: datetime,
    ends: datetime | None = None,
    generator: str = "http://prometheus-k8s.monitoring:9090",
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook carries it; resolved when `ends` is given."""
    return {
        "status": "resolved" if ends is not None else "firing",
        "labels": dict(sorted(labels.items())),
        "annotations": dict(sorted(annotations.items())),
        "startsAt": _ms(starts),
        "endsAt": _ms(ends) if ends is not None else ZERO_TIME,
        "generatorURL": f"{generator}/graph?g0.expr={labels.get('alertname', '')}&g0.tab=1",
        "fingerprint": alert_fingerprint(labels),
    }


def webhook_body(
    alerts: Sequence[dict[str, Any]],
    receiver: str = "event-ingest",
    external_url: str = "http://alertmanager.monitoring:9093",
) -> dict[str, Any]:
    """A webhook v4 payload for alerts of one group (grouped by alertname when they share one)."""
    names = sorted({a["labels"].get("alertname", "") for a in alerts})
    group = {"alertname": names[0]} if len(names) == 1 else {}
    common = dict(alerts[0]["labels"])
    common_ann = dict(alerts[0]["annotations"])
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
        common_ann = {k: v for k, v in common_ann.items() if a["annotations"].get(k) == v}
    key = ",".join(f'{k}="{v}"' for k, v in group.items())
    return {
        "receiver": receiver,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "alerts": list(alerts),
        "groupLabels": group,
        "commonLabels": common,
        "commonAnnotations": common_ann,
        "externalURL": external_url,
        "version": "4",
        "groupKey": '{}/{severity=~"critical|warning"}:{' + key + "}",
        "truncatedAlerts": 0,
    }


def webhooks(alerts: Sequence[dict[str, Any]], batch: int) -> list[dict[str, Any]]:
    """Pack alerts into webhook v4 bodies of at most `batch` alerts, one alertname per body (as
    Alertmanager grouped by alertname sends them), alertnames in the order they first appear."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    by_name: dict[str, list[dict[str, Any]]] = {}
    for a in alerts:
        by_name.setdefault(a["labels"].get("alertname", ""), []).append(a)
    out = []
    for group in by_name.values():
        for i in range(0, len(group), batch):
            out.append(webhook_body(group[i : i + batch]))
    return out


def _crash_loop_annotations(namespace: str, pod: str) -> dict[str, str]:
    """What kube-prometheus' KubePodCrashLooping says of a Triton container."""
    return {
        "summary": "Pod is crash looping.",
        "description": f'Pod {namespace}/{pod} (triton) is in waiting state (reason: "CrashLoopBackOff").',
    }


def _storm_crash_alert(base: dict[str, str], starts: datetime) -> dict[str, Any]:
    labels = {
        "alertname": "KubePodCrashLooping",
        **base,
        "container": "triton",
        "job": "kube-state-metrics",
        "severity": "warning",
    }
    return am_alert(labels, _crash_loop_annotations(base["namespace"], base["pod"]), starts)


def _storm_error_alert(base: dict[str, str], model: str, deployment: str, starts: datetime) -> dict[str, Any]:
    labels = {
        "alertname": "TritonHighErrorRate",
        **base,
        "model": model,
        "job": "triton-metrics",
        "service": deployment,
        "severity": "critical",
        "version": "1",
    }
    annotations = {"summary": "Triton high error rate", "description": f"{model} on {base['pod']} fails requests"}
    return am_alert(labels, annotations, starts)


def storm_alerts(
    models: int | Sequence[str],
    pods_per_model: int,
    starts: datetime | str,
    *,
    seed: int = 0,
    namespace: str = "serving",
    cluster: str | None = None,
    nodes: int | None = None,
    standard_names: bool = True,
) -> list[dict[str, Any]]:
    """A storm: every pod of every model crash-looping (`KubePodCrashLooping`: pod, node, namespace,
    container) and erroring (`TritonHighErrorRate`: pod, node, namespace, model), all starting within
    the minute from `starts`. Alerts come grouped by alertname, as Alertmanager sends them.

    `models` is a count (names are drawn from the vocabulary with random suffixes) or the names.
    Pods spread over `nodes` GPU nodes (eight GPUs each by default). With `standard_names=False` the
    pods have names nothing can be derived from (StatefulSet ordinals, a hex hash)."""
    rng = _Rand(seed)
    t0 = _parse_time(starts)
    names = rng.model_names(models) if isinstance(models, int) else list(models)
    cluster = cluster or rng.choice(CLUSTERS)
    pool = rng.choice(POOLS)
    total = len(names) * pods_per_model
    node_names = rng.node_names(cluster, pool, nodes or max(1, math.ceil(total / 8)), set())
    crash: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    k = 0
    for model in names:
        deployment = f"triton-{model}"
        _, pods = _pod_names(rng, deployment, pods_per_model, standard_names)
        for pod in pods:
            node = node_names[k % len(node_names)]
            k += 1
            base = {"cluster": f"gke-{cluster}", "namespace": namespace, "pod": pod, "node": node}
            crash.append(_storm_crash_alert(base, t0 + rng.secs(0, 59.9)))
            errors.append(_storm_error_alert(base, model, deployment, t0 + rng.secs(0, 59.9)))
    return crash + errors


def _capture_id(rng: _Rand, n: int) -> str:
    return f"c{n:06d}-{rng.hexs(6)}"


def storm_captures(
    alerts: Sequence[dict[str, Any]], batch: int, *, seed: int = 0, received: datetime | None = None
) -> list[dict[str, Any]]:
    """The storm's webhooks as captures: Alertmanager sends them after `for` (1 m) and group_wait
    (30 s), a few milliseconds apart."""
    rng = _Rand(seed + 1)
    latest = max(_parse_time(a["startsAt"]) for a in alerts)
    at = received or latest + timedelta(seconds=90)
    out = []
    for n, body in enumerate(webhooks(alerts, batch), 1):
        at = at + rng.secs(0.005, 0.060)
        out.append({"id": _capture_id(rng, n), "received_at": _ms(at), "source": "alertmanager", "body": body})
    return out


# --- a day: the pieces ------------------------------------------------------------------------


@dataclass(eq=False)
class _Problem:
    """One real problem: one truth group."""

    kind: str
    start: datetime
    summary: str
    resources: set[str] = field(default_factory=set)
    end: datetime | None = None
    recurrence_of: _Problem | None = None
    gid: str = ""


@dataclass(eq=False)
class _Item:
    """One event inside a delivery, as the truth sees it."""

    problem: _Problem | None
    cls: str
    kind: str
    at: datetime  # event time as its parser reads it (an alert: startsAt firing, endsAt resolved)
    firing: bool = True
    ref: str = ""


@dataclass(eq=False)
class _Delivery:
    received: datetime
    source: str
    body: Any
    items: list[_Item]
    seq: int


@dataclass(eq=False)
class _Alert:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts: datetime
    for_: timedelta
    ends: datetime | None
    problem: _Problem | None
    kind: str
    cls: str = "alert"


@dataclass(eq=False)
class _Model:
    name: str
    deployment: str
    rs_hash: str
    pool: str
    replicas: int
    big: bool = False


@dataclass(eq=False)
class _Pod:
    name: str
    model: _Model
    node: str
    uid: str
    created: datetime
    deleted: datetime | None = None

    def alive(self, t: datetime) -> bool:
        return self.created <= t and (self.deleted is None or t < self.deleted)


@dataclass(frozen=True)
class _EventNote:
    """What a Kubernetes event says, whichever API version carries it."""

    reason: str
    message: str
    etype: str
    component: str
    host: str | None
    count: int
    first: datetime | None


def _v1_event(obj: dict[str, Any], t: datetime, note: _EventNote, meta: dict[str, Any]) -> dict[str, Any]:
    """An events.k8s.io/v1 Event (microseconds, the object it regards, the deprecated core fields)."""
    component, host = note.component, note.host
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {**meta, "creationTimestamp": _s(note.first or t)},
        "eventTime": _us(t),
        "reportingController": f"k8s.io/{component}" if component in ("kubelet", "kernel-monitor") else component,
        "reportingInstance": f"{component}-{host}" if host else "",
        "action": note.reason,
        "reason": note.reason,
        "note": note.message,
        "type": note.etype,
        "regarding": obj,
        "deprecatedSource": {"component": component, "host": host} if host else {"component": component},
        "deprecatedCount": note.count,
    }


@dataclass(frozen=True)
class _AuditTarget:
    """The object an audited request is about, as its objectRef and request URI name it."""

    resource: str
    name: str
    namespace: str | None
    subresource: str | None
    api_group: str | None

    def ref(self) -> dict[str, Any]:
        ref: dict[str, Any] = {"resource": self.resource, "apiVersion": "v1"}
        if self.name:
            ref["name"] = self.name  # a list or watch names no object
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.api_group:
            ref["apiGroup"] = self.api_group
        if self.subresource:
            ref["subresource"] = self.subresource
        return ref

    def uri(self, verb: str) -> str:
        prefix = f"/apis/{self.api_group}/v1" if self.api_group else "/api/v1"
        where = f"/namespaces/{self.namespace}" if self.namespace else ""
        uri = prefix + where + f"/{self.resource}" + (f"/{self.name}" if self.name else "")
        if verb == "watch":
            uri += "?watch=true"
        if self.subresource:
            uri += f"/{self.subresource}"
        return uri


def _user_groups(user: str) -> list[str]:
    """The groups the API server puts a person or a service account in."""
    if not user.startswith("system:"):
        return ["system:authenticated"]
    return ["system:serviceaccounts", "system:authenticated"]


class _Owners(NamedTuple):
    """What scales a model's pods: its autoscaler, its Deployment and the Deployment's ReplicaSet."""

    autoscaler: dict[str, Any]
    deployment: dict[str, Any]
    replicaset: dict[str, Any]


@dataclass
class GeneratedDay:
    """A generated day: its captures, its truth, and what the generator meant (for tests and
    diagnosis): the kind intended for every event, and each group's story."""

    captures: list[dict[str, Any]]
    truth: dict[str, Any]
    kinds: dict[str, str]
    problems: list[dict[str, Any]]


class _Day:
    MARGIN = timedelta(minutes=40)

    def __init__(self, seed: int, start: datetime, hours: float, controller_pod_deletes: bool = False) -> None:
        self.controller_pod_deletes = controller_pod_deletes
        self.rng = _Rand(seed)
        rng = self.rng
        self.start = start
        self.end = start + timedelta(hours=hours)
        self.cluster = rng.choice(CLUSTERS)
        self.cluster_label = f"gke-{self.cluster}"
        self.ns = rng.choice(NAMESPACES)
        self.deliveries: list[_Delivery] = []
        self.alerts: list[_Alert] = []
        self.problems: list[_Problem] = []
        self._seq = count()
        # Alertmanager and Prometheus rules of this cluster
        self.group_wait = timedelta(seconds=rng.choice((10, 30)))
        self.group_interval = timedelta(seconds=rng.choice((30, 60, 120, 300)))
        self.crash_for = timedelta(seconds=rng.choice((0, 30, 60)))
        self.pod_alert_node = rng.random() < 0.5  # rules that join kube_pod_info to label pod alerts with their node
        self.oom_alertname = rng.choice(("KubernetesContainerOomKiller", "KubePodOOMKilled", "ContainerOOMKilled"))
        self.error_alertname = rng.choice(("TritonHighErrorRate", "TritonHighErrorRate", "TritonInferenceFailureRate"))
        self.unavailable_alertname = rng.choice(("TritonModelUnavailable", "TritonModelNotReady"))
        self.v1_share = rng.choice((0.0, 0.2, 0.5))
        self.cordoned: dict[str, tuple[datetime, datetime | None]] = {}
        self.reserved: dict[str, _Problem] = {}
        self._fleet()

    # --- the cluster -----------------------------------------------------------------------------
    def _fleet(self) -> None:
        rng = self.rng
        pools = rng.sample(POOLS, 3)
        names = rng.model_names(rng.randint(8, 11))
        self.models: list[_Model] = []
        for i, name in enumerate(names):
            big = i < 2
            replicas = rng.randint(12, 40) if big else rng.randint(2, 6)
            pool = pools[i] if big else rng.choice(pools)
            rs_hash, _ = _pod_names(rng, f"triton-{name}", 0)
            self.models.append(_Model(name, f"triton-{name}", rs_hash, pool, replicas, big))
        self.pool_nodes: dict[str, list[str]] = {}
        taken: set[str] = set()
        for pool in pools:
            need = sum(m.replicas for m in self.models if m.pool == pool)
            self.pool_nodes[pool] = rng.node_names(self.cluster, pool, max(3, math.ceil(need / 6) + 1), taken)
        self.node_pool = {n: p for p, nodes in self.pool_nodes.items() for n in nodes}
        self.pods: list[_Pod] = []
        born = self.start - timedelta(days=rng.randint(1, 9), minutes=rng.randint(0, 600))
        for m in self.models:
            for _ in range(m.replicas):
                self._new_pod(m, born)

    def _pod_name(self, m: _Model) -> str:
        taken = {p.name for p in self.pods}
        while True:
            name = f"{m.deployment}-{m.rs_hash}-{self.rng.chars(K8S_ALPHABET, 5)}"
            if name not in taken:
                return name

    def _new_pod(self, m: _Model, t: datetime, *, avoid: str | None = None) -> _Pod:
        """A pod of `m` placed on the least loaded schedulable node of its pool."""
        nodes = [n for n in self.pool_nodes[m.pool] if n != avoid and not self._cordoned(n, t)]
        load = {n: sum(1 for p in self.pods if p.node == n and p.alive(t)) for n in nodes}
        low = min(load.values())
        node = self.rng.choice(sorted(n for n in nodes if load[n] == low))
        pod = _Pod(self._pod_name(m), m, node, self.rng.uid(), t)
        self.pods.append(pod)
        return pod

    def _cordoned(self, node: str, t: datetime) -> bool:
        span = self.cordoned.get(node)
        return span is not None and span[0] <= t and (span[1] is None or t < span[1])

    def alive(self, t: datetime, model: _Model | None = None, node: str | None = None) -> list[_Pod]:
        return [
            p
            for p in self.pods
            if p.alive(t) and (model is None or p.model is model) and (node is None or p.node == node)
        ]

    # --- claims: which problems may overlap ------------------------------------------------------
    def free(
        self,
        keys: set[str],
        lo: datetime,
        hi: datetime,
        allow: Iterable[_Problem] = (),
        margin: timedelta | None = None,
    ) -> bool:
        """No problem touching any of `keys` comes within `margin` (40 minutes) of [lo, hi]."""
        allowed = set(allow)
        margin = self.MARGIN if margin is None else margin
        for p in self.problems:
            if p in allowed or not (p.resources & keys):
                continue
            end = p.end or p.start
            if lo < end + margin and p.start - margin < hi:
                return False
        return True

    def reserve(self, name: str, keys: set[str], t: datetime) -> None:
        """Hold resources for a problem planned at `t` (it is generated later, in time order)."""
        p = _Problem("reserved", t, name, set(keys), end=t + timedelta(minutes=40))
        self.reserved[name] = p
        self.problems.append(p)

    def release(self, name: str) -> None:
        p = self.reserved.pop(name, None)
        if p is not None:
            self.problems.remove(p)

    def busy_nodes(self, t: datetime) -> set[str]:
        """Nodes where a problem goes on around `t`: a problem at the same time stays off them."""
        out: set[str] = set()
        for p in self.problems:
            if p.start - timedelta(minutes=30) < t < (p.end or p.start) + timedelta(minutes=30):
                out |= {k[5:] for k in p.resources if k.startswith("node:")}
        return out

    def pick_pod(self, t: datetime, models: Sequence[_Model], hold: timedelta = timedelta(minutes=25)) -> _Pod | None:
        """A pod of one of `models` alive at `t`, off the nodes busy then, free of other problems for `hold`."""
        busy = self.busy_nodes(t)
        candidates = [p for m in models for p in self.alive(t, model=m) if p.node not in busy]
        self.rng.shuffle(candidates)
        for pod in candidates:
            keys = self.pod_keys([pod]) | {f"model:{pod.model.name}"}
            if self.free(keys, t - timedelta(minutes=5), t + hold):
                return pod
        return None

    @staticmethod
    def pod_keys(pods: Iterable[_Pod]) -> set[str]:
        keys: set[str] = set()
        for p in pods:
            keys |= {f"pod:{p.name}", f"node:{p.node}", f"deploy:{p.model.deployment}"}
        return keys

    # --- deliveries ------------------------------------------------------------------------------
    def deliver(self, received: datetime, source: str, body: Any, items: list[_Item]) -> None:
        self.deliveries.append(_Delivery(received, source, body, items, next(self._seq)))

    def _log_record(self, pod: _Pod, t: datetime, line: str) -> dict[str, Any]:
        m = pod.model
        return {
            "date": round(t.timestamp(), 6),
            "time": _ms(t),
            "stream": "stderr",
            "log": line,
            "kubernetes": {
                "pod_name": pod.name,
                "namespace_name": self.ns,
                "pod_id": pod.uid,
                "host": pod.node,
                "container_name": "triton",
                "labels": {
                    "app.kubernetes.io/name": "triton",
                    "app": m.deployment,
                    "model": m.name,
                    "pod-template-hash": m.rs_hash,
                },
                "docker_id": self.rng.hexs(64),
                "container_image": TRITON_IMAGE,
            },
        }

    def log(
        self,
        pod: _Pod,
        t: datetime,
        sev: str,
        where: str,
        msg: str,
        kind: str,
        problem: _Problem | None = None,
        cls: str = "info",
    ) -> None:
        """One Fluent Bit record carrying one Triton glog line."""
        line = _glog(sev, t, where, msg)
        self.deliver(
            t + self.rng.secs(0.3, 2.5),
            "log",
            self._log_record(pod, t, line),
            [_Item(problem, cls, kind, t)],
        )

    def log_batch(self, pod: _Pod, lines: list[tuple[datetime, str, str, str, str]]) -> None:
        """Routine lines of one pod posted together (Fluent Bit's http output sends an array)."""
        body = [self._log_record(pod, t, _glog(sev, t, where, msg)) for t, sev, where, msg, _ in lines]
        items = [_Item(None, "info", kind, t) for t, _, _, _, kind in lines]
        self.deliver(max(t for t, *_ in lines) + self.rng.secs(0.5, 3.0), "log", body, items)

    def _event_body(
        self, obj: dict[str, Any], t: datetime, note: _EventNote, v1: bool
    ) -> tuple[str, dict[str, Any], datetime]:
        """The event as an exporter posts it: its source, its body and the time its parser reads."""
        rng = self.rng
        ns = obj.get("namespace") or "default"
        meta = {"name": f"{obj['name']}.{rng.hexs(16)}", "namespace": ns, "uid": rng.uid()}
        if v1:
            return "k8s-event-v1", _v1_event(obj, t, note, meta), t
        return "k8s-event", self._core_event(obj, t, note, meta), _trunc_s(t)

    def _core_event(self, obj: dict[str, Any], t: datetime, note: _EventNote, meta: dict[str, Any]) -> dict[str, Any]:
        """A core/v1 Event (whole seconds, a count and the first time seen)."""
        rng = self.rng
        source: dict[str, Any] = {"component": note.component}
        if note.host:
            source["host"] = note.host
        return {
            "metadata": {
                **meta,
                "resourceVersion": str(rng.randrange(10**6, 10**8)),
                "creationTimestamp": _s(note.first or t),
            },
            "reason": note.reason,
            "message": note.message,
            "source": source,
            "firstTimestamp": _s(note.first or t),
            "lastTimestamp": _s(t),
            "count": note.count,
            "type": note.etype,
            "eventTime": None,
            "reportingComponent": note.component,
            "reportingInstance": note.host or "",
            "involvedObject": {**obj, "resourceVersion": str(rng.randrange(10**6, 10**8))},
            "clusterName": self.cluster_label,
        }

    def k8s_event(
        self,
        obj: dict[str, Any],
        t: datetime,
        reason: str,
        message: str,
        kind: str,
        *,
        problem: _Problem | None = None,
        cls: str = "info",
        etype: str = "Normal",
        component: str = "kubelet",
        host: str | None = None,
        count_: int = 1,
        first: datetime | None = None,
    ) -> None:
        v1 = self.rng.random() < self.v1_share
        note = _EventNote(reason, message, etype, component, host, count_, first)
        source, body, at = self._event_body(obj, t, note, v1)
        self.deliver(t + self.rng.secs(0.2, 2.0), source, body, [_Item(problem, cls, kind, at)])

    def pod_obj(self, pod: _Pod) -> dict[str, Any]:
        return {
            "kind": "Pod",
            "name": pod.name,
            "namespace": self.ns,
            "uid": pod.uid,
            "apiVersion": "v1",
            "fieldPath": "spec.containers{triton}",
        }

    def pod_ref(self, pod: _Pod) -> dict[str, Any]:
        """The pod itself, not its container: what the scheduler and the node controller name."""
        return {k: v for k, v in self.pod_obj(pod).items() if k != "fieldPath"}

    def owner_obj(self, kind: str, name: str, api_version: str) -> dict[str, Any]:
        """An object that manages pods in the namespace: a ReplicaSet, a Deployment, an autoscaler."""
        return {"kind": kind, "name": name, "namespace": self.ns, "uid": self.rng.uid(), "apiVersion": api_version}

    def node_obj(self, node: str) -> dict[str, Any]:
        return {"kind": "Node", "name": node, "uid": self.rng.uid(), "apiVersion": "v1"}

    def pod_event(self, pod: _Pod, t: datetime, reason: str, message: str, kind: str, **kw: Any) -> None:
        kw.setdefault("host", pod.node)
        self.k8s_event(self.pod_obj(pod), t, reason, message, kind, **kw)

    def audit_item(
        self,
        t: datetime,
        verb: str,
        resource: str,
        name: str,
        *,
        namespace: str | None = None,
        subresource: str | None = None,
        user: str,
        user_agent: str,
        request: Any = None,
        code: int = 200,
        api_group: str | None = None,
        stage: str = "ResponseComplete",
        level: str = "RequestResponse",
    ) -> dict[str, Any]:
        """One audit.k8s.io/v1 Event: `verb` on `resource` (`name` empty for a list or watch)."""
        target = _AuditTarget(resource, name, namespace, subresource, api_group)
        item: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": self.rng.uid(),
            "stage": stage,
            "requestURI": target.uri(verb),
            "verb": verb,
            "user": {"username": user, "groups": _user_groups(user)},
            "sourceIPs": [self.rng.ip()],
            "userAgent": user_agent,
            "objectRef": target.ref(),
            "requestReceivedTimestamp": _us(t - timedelta(milliseconds=8)),
            "stageTimestamp": _us(t),
            "annotations": {
                "authorization.k8s.io/decision": "allow",
                "authorization.k8s.io/reason": "RBAC: allowed by ClusterRoleBinding",
            },
        }
        if stage != "RequestReceived":
            item["responseStatus"] = {"metadata": {}, "code": code}
        if request is not None:
            item["requestObject"] = request
        return item

    def audit(self, entries: list[tuple[dict[str, Any], _Item]]) -> None:
        """One EventList as the audit webhook backend posts a batch."""
        items = [it for _, it in entries]
        body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": [e for e, _ in entries]}
        self.deliver(max(it.at for it in items) + self.rng.secs(0.4, 1.5), "k8s-audit", body, items)

    def alert(
        self,
        problem: _Problem | None,
        kind: str,
        labels: dict[str, str],
        annotations: dict[str, str],
        starts: datetime,
        for_: timedelta,
        ends: datetime | None,
    ) -> None:
        full = {"cluster": self.cluster_label, **labels}
        self.alerts.append(_Alert(full, annotations, _trunc_ms(starts), for_, ends and _trunc_ms(ends), problem, kind))

    def pod_alert_labels(self, pod: _Pod, *, model: bool) -> dict[str, str]:
        labels = {"namespace": self.ns, "pod": pod.name}
        if model:
            labels |= {
                "model": pod.model.name,
                "service": pod.model.deployment,
                "version": "1",
                "job": "triton-metrics",
            }
        else:
            labels |= {"container": "triton", "job": "kube-state-metrics"}
        if self.pod_alert_node:
            labels["node"] = pod.node
        return labels

    # --- the alerts a failing Triton pod, node or deployment raises --------------------------------
    def crash_alert(self, p: _Problem | None, pod: _Pod, starts: datetime, ends: datetime | None) -> None:
        labels = {"alertname": "KubePodCrashLooping", **self.pod_alert_labels(pod, model=False), "severity": "warning"}
        ann = {
            **_crash_loop_annotations(self.ns, pod.name),
            "runbook_url": "https://runbooks.prometheus-operator.dev/runbooks/kubernetes/kubepodcrashlooping",
        }
        self.alert(p, "triton_crash", labels, ann, starts, self.crash_for, ends)

    def unavailable_alert(self, p: _Problem | None, pod: _Pod, starts: datetime, ends: datetime | None) -> None:
        labels = {
            "alertname": self.unavailable_alertname,
            **self.pod_alert_labels(pod, model=True),
            "severity": "critical",
        }
        ann = {
            "summary": f"Model {pod.model.name} is not ready on {pod.name}",
            "runbook_url": f"https://runbooks.example.com/triton/{self.unavailable_alertname}",
        }
        self.alert(p, "model_unavailable", labels, ann, starts, timedelta(minutes=1), ends)

    def error_alert(self, p: _Problem | None, pod: _Pod, starts: datetime, ends: datetime | None) -> None:
        labels = {"alertname": self.error_alertname, **self.pod_alert_labels(pod, model=True), "severity": "critical"}
        ann = {
            "summary": "Triton high error rate",
            "runbook_url": f"https://runbooks.example.com/triton/{self.error_alertname}",
        }
        self.alert(p, "high_error_rate", labels, ann, starts, timedelta(minutes=5), ends)

    def oom_alert(self, p: _Problem, pod: _Pod, starts: datetime, ends: datetime) -> None:
        labels = {"alertname": self.oom_alertname, **self.pod_alert_labels(pod, model=False), "severity": "warning"}
        ann = {
            "summary": f"Container triton in pod {pod.name} has been OOMKilled",
            "description": f"Container triton in pod {pod.name} has been OOMKilled ({self.ns}/{pod.name})",
        }
        self.alert(p, "pod_oom", labels, ann, starts, timedelta(0), ends)

    def pod_not_ready_alert(self, p: _Problem, pod: _Pod, starts: datetime, ends: datetime) -> None:
        labels = {
            "alertname": "KubePodNotReady",
            "namespace": self.ns,
            "pod": pod.name,
            "job": "kube-state-metrics",
            "severity": "warning",
        }
        ann = {"summary": "Pod has been in a non-ready state for more than 1 minute."}
        self.alert(p, "pod_not_ready", labels, ann, starts, timedelta(minutes=1), ends)

    def node_not_ready_alert(self, p: _Problem, node: str, pool: str, starts: datetime, ends: datetime) -> None:
        labels = {
            "alertname": "KubeNodeNotReady",
            "node": node,
            NODEPOOL_LABEL: pool,
            "job": "kube-state-metrics",
            "severity": "warning",
        }
        ann = {"summary": "Node is not ready.", "description": f"{node} has been unready for more than 1 minute."}
        self.alert(p, "node_not_ready", labels, ann, starts, timedelta(minutes=1), ends)

    def replicas_short_alert(self, p: _Problem, deployment: str, starts: datetime, ends: datetime) -> None:
        labels = {
            "alertname": "KubeDeploymentReplicasMismatch",
            "deployment": deployment,
            "namespace": self.ns,
            "job": "kube-state-metrics",
            "severity": "warning",
        }
        ann = {"summary": "Deployment has not matched the expected number of replicas."}
        self.alert(p, "reduced_capacity", labels, ann, starts, timedelta(minutes=1), ends)

    # --- what Triton prints and the kubelet says of it ---------------------------------------------
    def log_loading(self, pod: _Pod, t: datetime) -> None:
        self.log(pod, t, "I", "model_lifecycle.cc:461", f"loading: {pod.model.name}:1", "model_loaded")

    def log_loaded(self, pod: _Pod, t: datetime) -> None:
        self.log(pod, t, "I", "model_lifecycle.cc:818", f"successfully loaded '{pod.model.name}'", "model_loaded")

    def model_reload(self, pod: _Pod, t: datetime, lo: float, hi: float) -> datetime:
        """Triton loading its model at `t` and done `lo` to `hi` seconds later (routine); returns when."""
        self.log_loading(pod, t)
        loaded = t + self.rng.secs(lo, hi)
        self.log_loaded(pod, loaded)
        return loaded

    def load_failed_message(self, m: _Model) -> str:
        """Why Triton fails to load `m`, as it says so."""
        reason = self.rng.choice(LOAD_FAILURES).format(cluster=self.cluster, model=m.name, version=1)
        return f"failed to load '{m.name}' version 1: {reason}"

    def log_load_failed(self, p: _Problem, pod: _Pod, t: datetime, message: str) -> None:
        self.log(pod, t, "E", "model_lifecycle.cc:654", message, "model_load_failed", p, "alert")

    def readiness_failed(self, p: _Problem, pod: _Pod, t: datetime) -> None:
        message = "Readiness probe failed: HTTP probe failed with statuscode: 400"
        self.pod_event(pod, t, "Unhealthy", message, "pod_not_ready", problem=p, cls="alert", etype="Warning")

    def back_off(self, p: _Problem, pod: _Pod, t: datetime, restarts: int = 1, first: datetime | None = None) -> None:
        """The kubelet backing off before restarting a crashed Triton container."""
        message = f"Back-off restarting failed container triton in pod {pod.name}_{self.ns}({pod.uid})"
        self.pod_event(
            pod,
            t,
            "BackOff",
            message,
            "triton_crash",
            problem=p,
            cls="alert",
            etype="Warning",
            count_=restarts,
            first=first,
        )

    def stop_container(self, pod: _Pod, t: datetime, p: _Problem | None = None) -> None:
        self.pod_event(pod, t, "Killing", "Stopping container triton", "pod_stop", problem=p, cls="change")

    def startup_logs(self, pod: _Pod, t: datetime) -> datetime:
        """What a Triton container prints while it starts and loads its model (routine)."""
        rng = self.rng
        t1 = t + rng.secs(1, 4)
        self.log_loading(pod, t1)
        if rng.random() < 0.3:
            self.log(
                pod,
                t1 + rng.secs(0.1, 0.5),
                "W",
                "pinned_memory_manager.cc:273",
                "Unable to allocate pinned system memory, pinned memory pool will not be available: "
                "CUDA driver version is insufficient for CUDA runtime version",
                "log",
            )
        t2 = t1 + rng.secs(5, 40)
        self.log_loaded(pod, t2)
        t3 = t2 + rng.secs(0.05, 0.4)
        for where, msg in (
            ("grpc_server.cc:2495", "Started GRPCInferenceService at 0.0.0.0:8001"),
            ("http_server.cc:4639", "Started HTTPService at 0.0.0.0:8000"),
            ("http_server.cc:320", "Started Metrics Service at 0.0.0.0:8002"),
        ):
            t3 += rng.secs(0.001, 0.05)
            self.log(pod, t3, "I", where, msg, "log")
        return t3

    def container_started(self, pod: _Pod, t: datetime, lo: float, hi: float) -> datetime:
        """Kubelet creating, then starting, the container from its pulled image; returns when started."""
        created = t + self.rng.secs(lo, hi)
        self.pod_event(pod, created, "Created", "Created container triton", "pod_lifecycle")
        started = created + self.rng.secs(lo, hi)
        self.pod_event(pod, started, "Started", "Started container triton", "pod_lifecycle")
        return started

    def container_restart(self, pod: _Pod, t: datetime) -> datetime:
        """Kubelet restarting the container (routine events), then Triton starting again."""
        self.pod_event(
            pod, t, "Pulled", f'Container image "{TRITON_IMAGE}" already present on machine', "pod_lifecycle"
        )
        return self.container_started(pod, t, 0.5, 1.5)

    def pod_start(self, pod: _Pod, t: datetime) -> datetime:
        """A new pod: scheduled, image pulled, started, model loaded (all routine). Returns when ready."""
        rng = self.rng
        self.k8s_event(
            self.owner_obj("ReplicaSet", f"{pod.model.deployment}-{pod.model.rs_hash}", "apps/v1"),
            t,
            "SuccessfulCreate",
            f"Created pod: {pod.name}",
            "pod_lifecycle",
            component="replicaset-controller",
        )
        t1 = t + rng.secs(0.05, 1.0)
        self.k8s_event(
            self.pod_ref(pod),
            t1,
            "Scheduled",
            f"Successfully assigned {self.ns}/{pod.name} to {pod.node}",
            "pod_lifecycle",
            component="default-scheduler",
        )
        t2 = t1 + rng.secs(0.5, 2)
        self.pod_event(pod, t2, "Pulling", f'Pulling image "{TRITON_IMAGE}"', "pod_lifecycle")
        pull = rng.uniform(20, 90)
        t3 = t2 + timedelta(seconds=pull)
        self.pod_event(
            pod,
            t3,
            "Pulled",
            f'Successfully pulled image "{TRITON_IMAGE}" in {pull:.3f}s ({pull + 0.2:.3f}s including waiting)',
            "pod_lifecycle",
        )
        return self.startup_logs(pod, self.container_started(pod, t3, 0.3, 1.0))

    # --- problems --------------------------------------------------------------------------------
    def new_problem(
        self, kind: str, t: datetime, summary: str, keys: set[str], recurrence_of: _Problem | None = None
    ) -> _Problem:
        p = _Problem(kind, t, summary, set(keys), recurrence_of=recurrence_of)
        self.problems.append(p)
        return p

    def fleet_outage(self, m: _Model, t0: datetime) -> _Problem:
        """Every replica of `m` fails to load its model within a minute, goes unavailable, some
        crash-loop, all error; fixed 14-35 minutes later."""
        rng = self.rng
        pods = self.alive(t0, model=m)
        nodes = sorted({p.node for p in pods})
        p = self.new_problem(
            "fleet_outage",
            t0,
            f"{m.name}: every replica ({len(pods)} pods on {len(nodes)} nodes) fails to load its model",
            self.pod_keys(pods) | {f"model:{m.name}"},
        )
        msg = self.load_failed_message(m)
        fixed = t0 + rng.mins(14, 35)
        crashers = set(rng.sample(range(len(pods)), round(len(pods) * rng.uniform(0.3, 0.7))))
        last = t0
        for i, pod in enumerate(pods):
            restarted = self._outage_replica(p, pod, t0, fixed, msg, crashing=i in crashers)
            if restarted is not None:
                last = max(last, restarted)
        p.end = max(fixed + timedelta(minutes=3), last)
        return p

    def _outage_replica(
        self, p: _Problem, pod: _Pod, t0: datetime, fixed: datetime, msg: str, *, crashing: bool
    ) -> datetime | None:
        """One replica's part in a fleet outage, until the fix is picked up: when it last restarted."""
        rng = self.rng
        tf = t0 + rng.secs(0, 55)
        self.log_load_failed(p, pod, tf, msg)
        restarted = None
        if crashing:
            restarted = self._load_crash_loop(p, pod, tf, fixed, msg)
            self.crash_alert(p, pod, tf + rng.secs(45, 120), fixed + rng.secs(20, 120))
        elif rng.random() < 0.5:
            self.readiness_failed(p, pod, tf + rng.secs(8, 30))
        self.unavailable_alert(p, pod, tf + rng.secs(5, 30), fixed + rng.secs(5, 60))
        self.error_alert(p, pod, tf + rng.secs(10, 45), fixed + rng.secs(30, 120))
        # the fix (a repaired model repository) is picked up: routine loading lines
        self.model_reload(pod, fixed + rng.secs(0, 60), 5, 30)
        return restarted

    def _load_crash_loop(self, p: _Problem, pod: _Pod, tf: datetime, fixed: datetime, msg: str) -> datetime | None:
        """Triton exits (strict model loading); the kubelet restarts it with growing back-off, up to four
        times before the fix. When it last failed again (None: no restart came before the fix)."""
        rng = self.rng
        backoff, t, restarts = 10.0, tf, 0
        last = None
        while restarts < 4:
            t = t + timedelta(seconds=backoff) + rng.secs(0.5, 2)
            if t > fixed - timedelta(minutes=1):
                break
            restarts += 1
            self.back_off(p, pod, t, restarts, first=_trunc_s(tf + timedelta(seconds=10)))
            t = t + rng.secs(1, 3)
            self.container_restart(pod, t)
            t = t + rng.secs(4, 20)
            self.log_load_failed(p, pod, t, msg)
            backoff = min(backoff * 2, 300)
            last = t
        return last

    def oom_cascade(self, pod: _Pod, t: datetime, recurrence_of: _Problem | None = None) -> _Problem:
        """The kernel OOM-kills Triton: crash loop, model unavailable, error rate; resolved 9-16 minutes later."""
        rng = self.rng
        p = self.new_problem(
            "pod_oom",
            t,
            f"{pod.name} OOM-killed on {pod.node}" + (" again" if recurrence_of else ""),
            self.pod_keys([pod]),
            recurrence_of,
        )
        self._oom_kill(p, pod, t)
        self._oom_restarts(p, pod, t)
        res = t + rng.mins(9, 16)
        self.oom_alert(p, pod, t + rng.secs(12, 20), res + rng.secs(0, 5))
        self.crash_alert(p, pod, t + rng.secs(18, 30), res + rng.secs(0, 5))
        self.unavailable_alert(p, pod, t + rng.secs(-12, 6), res + rng.secs(0, 20))
        self.error_alert(p, pod, t + rng.secs(15, 45), res + rng.secs(0, 20))
        p.end = res + timedelta(seconds=25)
        return p

    def _oom_kill(self, p: _Problem, pod: _Pod, t: datetime) -> None:
        """The event telling of the kill, where the cluster has one: an exporter's pod event, or
        node-problem-detector's kernel monitor on the node (the rest see only the alerts)."""
        rng = self.rng
        how = rng.random()
        if how < 0.2:
            # an exporter that turns the container's termination reason into a pod event
            self.pod_event(
                pod,
                t,
                "OOMKilled",
                "Container triton was OOM-killed (exit code 137)",
                "pod_oom",
                problem=p,
                cls="alert",
                etype="Warning",
            )
        elif how < 0.85:
            # node-problem-detector's kernel monitor, on the node
            pid = rng.randrange(1000, 60000)
            self.k8s_event(
                self.node_obj(pod.node),
                t,
                "OOMKilling",
                f"Killed process {pid} (tritonserver) total-vm:{rng.randrange(30, 90) * 10**6}kB, "
                f"anon-rss:{rng.randrange(20, 80) * 10**6}kB, file-rss:0kB, shmem-rss:65536kB, UID:0 "
                f"pgtables:182044kB oom_score_adj:999",
                "pod_oom",
                problem=p,
                cls="alert",
                etype="Warning",
                component="kernel-monitor",
                host=pod.node,
            )

    def _oom_restarts(self, p: _Problem, pod: _Pod, t: datetime) -> None:
        """The kubelet restarting the killed container after a back-off, a second time in half the cases."""
        rng = self.rng
        tb = t + rng.secs(1.5, 4)
        self.back_off(p, pod, tb)
        tr = self.container_restart(pod, tb + rng.secs(6, 12))
        self.startup_logs(pod, tr)
        if rng.random() < 0.5:
            tb2 = tb + rng.secs(40, 90)
            self.back_off(p, pod, tb2, 2, first=_trunc_s(tb))
            self.startup_logs(pod, self.container_restart(pod, tb2 + rng.secs(10, 20)))

    def node_drain(self, node: str, t: datetime) -> _Problem:
        """A person drains a node: cordon, evictions, pods stopped, deployments short of replicas until
        the replacements are ready; sometimes the node is uncordoned after its maintenance."""
        rng = self.rng
        pods = self.alive(t, node=node)
        user = rng.choice(PEOPLE)
        p = self.new_problem(
            "node_drain", t, f"{user} drains {node} ({len(pods)} pods)", self.pod_keys(pods) | {f"node:{node}"}
        )
        self._set_schedulable(p, node, t, user, cordon=True)
        uncordon_at = t + rng.mins(8, 14) if rng.random() < 0.5 else None
        self.cordoned[node] = (t, uncordon_at)
        last, ready = self._evict_all(p, node, pods, t + rng.secs(2, 6), user)
        for deployment, r in sorted(ready.items()):
            starts = t + rng.secs(15, 45)
            ends = max(r + rng.secs(10, 60), starts + timedelta(minutes=4))
            self.replicas_short_alert(p, deployment, starts, ends)
            last = max(last, ends)
        if uncordon_at is not None:
            self._set_schedulable(p, node, uncordon_at, user, cordon=False)
            last = max(last, uncordon_at)
        p.end = last + timedelta(minutes=1)
        return p

    def _set_schedulable(self, p: _Problem, node: str, t: datetime, user: str, *, cordon: bool) -> None:
        """A person cordons (or uncordons) `node` with kubectl: the audited patch, then the node's event."""
        kind = "node_drain" if cordon else "node_uncordon"
        reason = "NodeNotSchedulable" if cordon else "NodeSchedulable"
        request = {"spec": {"unschedulable": cordon}}
        item = self.audit_item(t, "patch", "nodes", node, user=user, user_agent=KUBECTL_UA, request=request)
        self.audit([(item, _Item(p, "change", kind, t))])
        self.k8s_event(
            self.node_obj(node),
            t + self.rng.secs(1, 6),
            reason,
            f"Node {node} status is now: {reason}",
            kind,
            problem=p,
            cls="change",
            host=node,
        )

    def _evict_all(
        self, p: _Problem, node: str, pods: list[_Pod], te: datetime, user: str
    ) -> tuple[datetime, dict[str, datetime]]:
        """kubectl evicting every pod of `node` from `te` on (audited four to a batch): each pod stops and
        a replacement starts on another node. When the last eviction was, and when each deployment
        has all its replacements ready."""
        rng = self.rng
        evictions: list[tuple[dict[str, Any], _Item]] = []
        ready: dict[str, datetime] = {}
        for pod in pods:
            te = te + rng.secs(0.2, 1.5)
            evictions.append((self._eviction(pod, te, user), _Item(p, "change", "pod_eviction", te)))
            tk = te + rng.secs(0.3, 1.5)
            self.stop_container(pod, tk, p)
            pod.deleted = tk + rng.secs(10, 30)
            new = self._new_pod(pod.model, te + rng.secs(0.5, 2), avoid=node)
            r = self.pod_start(new, new.created)
            ready[pod.model.deployment] = max(ready.get(pod.model.deployment, r), r)
        for i in range(0, len(evictions), 4):
            self.audit(evictions[i : i + 4])
        return te, ready

    def _eviction(self, pod: _Pod, t: datetime, user: str) -> dict[str, Any]:
        return self.audit_item(
            t,
            "create",
            "pods",
            pod.name,
            namespace=self.ns,
            subresource="eviction",
            user=user,
            user_agent=KUBECTL_UA,
            code=201,
            request={
                "kind": "Eviction",
                "apiVersion": "policy/v1",
                "metadata": {"name": pod.name, "namespace": self.ns},
            },
        )

    def nodepool_not_ready(self, pool: str, nodes: list[str], t: datetime) -> _Problem:
        """Several nodes of one pool go NotReady together (a zonal or driver problem): node alerts carry
        the pool label, their pods go not ready, some error; back 10-16 minutes later."""
        rng = self.rng
        pods = [pod for n in nodes for pod in self.alive(t, node=n)]
        p = self.new_problem(
            "node_not_ready",
            t,
            f"node pool {pool}: {len(nodes)} nodes NotReady ({len(pods)} pods)",
            self.pod_keys(pods) | {f"node:{n}" for n in nodes} | {f"pool:{pool}"},
        )
        back = t + rng.mins(10, 16)
        last = back
        for node in nodes:
            tn = t + rng.secs(0, 40)
            node_back = self._node_not_ready(p, pool, node, tn, back)
            for pod in self.alive(t, node=node):
                self._pod_on_unready_node(p, pod, tn, node_back)
                last = max(last, node_back + timedelta(minutes=2))
        p.end = last
        return p

    def _node_not_ready(self, p: _Problem, pool: str, node: str, tn: datetime, back: datetime) -> datetime:
        """`node` NotReady from `tn`, with its alert, until a minute or so after `back`: returns when."""
        rng = self.rng
        self.k8s_event(
            self.node_obj(node),
            tn,
            "NodeNotReady",
            f"Node {node} status is now: NodeNotReady",
            "node_not_ready",
            problem=p,
            cls="alert",
            component="node-controller",
        )
        node_back = back + rng.secs(0, 60)
        self.node_not_ready_alert(p, node, pool, tn + rng.secs(5, 30), node_back)
        self.k8s_event(
            self.node_obj(node),
            node_back - rng.secs(5, 20),
            "NodeReady",
            f"Node {node} status is now: NodeReady",
            "k8s_event",
            host=node,
        )
        return node_back

    def _pod_on_unready_node(self, p: _Problem, pod: _Pod, tn: datetime, node_back: datetime) -> None:
        """A pod of a node gone NotReady at `tn`: not ready, often alerted on, sometimes erroring."""
        rng = self.rng
        self.k8s_event(
            self.pod_ref(pod),
            tn + rng.secs(1, 6),
            "NodeNotReady",
            "Node is not ready",
            "pod_not_ready",
            problem=p,
            cls="alert",
            etype="Warning",
            component="node-controller",
        )
        if rng.random() < 0.6:
            self.pod_not_ready_alert(p, pod, tn + rng.secs(20, 60), node_back + rng.secs(5, 60))
        if rng.random() < 0.5:
            self.error_alert(p, pod, tn + rng.secs(15, 60), node_back + rng.secs(30, 120))

    def load_failure(self, pod: _Pod, t: datetime) -> _Problem:
        """One replica fails to load its model (a corrupt local cache): unavailable, erroring; fixed
        10-20 minutes later by a restart."""
        rng = self.rng
        m = pod.model
        p = self.new_problem("model_load_failed", t, f"{pod.name} fails to load {m.name}", self.pod_keys([pod]))
        self.log_load_failed(p, pod, t, self.load_failed_message(m))
        fixed = t + rng.mins(10, 20)
        self.unavailable_alert(p, pod, t + rng.secs(5, 30), fixed + rng.secs(5, 40))
        self.error_alert(p, pod, t + rng.secs(10, 40), fixed + rng.secs(20, 90))
        if rng.random() < 0.6:
            self.readiness_failed(p, pod, t + rng.secs(8, 25))
        self.startup_logs(pod, fixed)
        p.end = fixed + timedelta(minutes=2)
        return p

    # --- routine traffic -------------------------------------------------------------------------
    def quiet(self, keys: set[str], lo: datetime, hi: datetime, margin: timedelta = timedelta(minutes=5)) -> bool:
        """No problem touches `keys` around [lo, hi]: routine traffic steps around problems (a failing
        pod completes no requests, the HPA adds no pod where a problem is going on)."""
        return self.free(keys, lo, hi, margin=margin)

    def watchdog(self) -> None:
        rng = self.rng
        starts = _trunc_ms(self.start - rng.mins(60, 1200))
        labels = {
            "alertname": "Watchdog",
            "cluster": self.cluster_label,
            "prometheus": "monitoring/k8s",
            "severity": "none",
        }
        ann = {
            "summary": "An alert that should always be firing to certify that Alertmanager is working properly.",
            "description": "This is an alert meant to ensure that the entire alerting pipeline is functional.",
        }
        t = self.start + rng.secs(0, 300)
        while t < self.end:
            body = webhook_body([am_alert(labels, ann, starts)])
            self.deliver(t, "alertmanager", body, [_Item(None, "info", "watchdog", starts)])
            t += rng.secs(290, 310)

    def requests(self) -> None:
        """Per-request lines (verbose logging on a few pods): dropped at ingest."""
        rng = self.rng
        t = self.start + rng.secs(0, 60)
        rid = rng.randrange(10_000, 900_000)
        while t < self.end:
            pods = self.alive(t)
            pod = rng.choice(pods)
            if self.quiet({f"pod:{pod.name}"}, t, t):
                n = 1 if rng.random() < 0.7 else rng.randint(2, 4)
                lines = []
                tt = t
                for _ in range(n):
                    rid += rng.randint(1, 400)
                    msg = f"[request id: {rid}] Infer request for model '{pod.model.name}' version 1 completed"
                    lines.append((tt, "I", "infer_handler.cc:681", msg, "log"))
                    tt += rng.secs(0.01, 2)
                if n == 1:
                    self.log(pod, t, "I", "infer_handler.cc:681", lines[0][3], "log")
                else:
                    self.log_batch(pod, lines)
            t += rng.secs(15, 80)

    def repository_polls(self) -> None:
        """Triton polls its model repository: a changed config reloads the model on every replica.
        The first reload of the day comes before any problem (they start 45 minutes in), so every pod
        has been seen with its node, as the collector's view of the cluster would have it."""
        rng = self.rng
        for m in self.models:
            t = self.start + rng.mins(1, 25)
            first = True
            while t < self.end:
                pods = self.alive(t, model=m)
                keys = {f"deploy:{m.deployment}", f"model:{m.name}"}
                if first or self.quiet(keys, t - timedelta(minutes=5), t + timedelta(minutes=5)):
                    for pod in pods:
                        tl = self.model_reload(pod, t + rng.secs(0, 20), 2, 15)
                        if rng.random() < 0.5:
                            self.log(
                                pod,
                                tl + rng.secs(0.2, 2),
                                "I",
                                "model_lifecycle.cc:620",
                                f"successfully unloaded '{m.name}' version 1",
                                "model_unloaded",
                            )
                t += rng.mins(60, 180)
                first = False

    def autoscaling(self) -> None:
        """The HPA scales small models out and back in: routine events around the pods it adds."""
        rng = self.rng
        small = [m for m in self.models if not m.big]
        for m in rng.sample(small, min(len(small), rng.randint(3, 5))):
            t = self.start + rng.mins(10, 90)
            while t < self.end - timedelta(minutes=40):
                up = rng.randint(1, 3)
                down_at = t + rng.mins(25, 110)
                current = len(self.alive(t, model=m))
                # where the new pods would go, decided before committing anything
                trial = [n for n in self.pool_nodes[m.pool] if not self._cordoned(n, t)]
                keys = {f"deploy:{m.deployment}"} | {f"node:{n}" for n in trial}
                # NOTE: the pods it adds must not be on a node or of a deployment a problem touches while
                # they live (the problem's events were drawn without them), and the Killing of the
                # scale-in must not come near a drain of their node.
                if down_at < self.end and self.quiet(keys, t, down_at, margin=timedelta(minutes=20)):
                    self._scale(m, t, current, current + up, down_at)
                t = down_at + rng.mins(20, 120)

    def _scale(self, m: _Model, t: datetime, was: int, now: int, down_at: datetime) -> None:
        """The HPA scales `m` out from `was` to `now` replicas at `t`, and back in at `down_at`."""
        rng = self.rng
        owners = _Owners(
            self.owner_obj("HorizontalPodAutoscaler", m.deployment, "autoscaling/v2"),
            self.owner_obj("Deployment", m.deployment, "apps/v1"),
            self.owner_obj("ReplicaSet", f"{m.deployment}-{m.rs_hash}", "apps/v1"),
        )
        self._rescale(m, owners, t, was, now, "cpu resource utilization (percentage of request) above target")
        added = []
        for _ in range(now - was):
            pod = self._new_pod(m, t + rng.secs(0.3, 2))
            self.pod_start(pod, pod.created)
            added.append(pod)
        self._rescale(m, owners, down_at, now, was, "All metrics below target")
        for pod in added:
            self._scale_in(pod, owners.replicaset, down_at + rng.secs(0.3, 2))

    def _rescale(self, m: _Model, owners: _Owners, at: datetime, frm: int, to: int, why: str) -> None:
        """The HPA setting the replicas of `m` from `frm` to `to`: the audited scale, then its events."""
        rng = self.rng
        item = self.audit_item(
            at,
            "update",
            "deployments",
            m.deployment,
            namespace=self.ns,
            subresource="scale",
            api_group="apps",
            user=HPA_USER,
            user_agent=HPA_UA,
            request={"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": {"replicas": to}},
            level="Metadata",
        )
        self.audit([(item, _Item(None, "info", "scaling", at))])
        self.k8s_event(
            owners.autoscaler,
            at + rng.secs(0.01, 0.2),
            "SuccessfulRescale",
            f"New size: {to}; reason: {why}",
            "scaling",
            component="horizontal-pod-autoscaler",
        )
        verb = "up" if to > frm else "down"
        self.k8s_event(
            owners.deployment,
            at + rng.secs(0.05, 0.5),
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {owners.replicaset['name']} to {to} from {frm}",
            "scaling",
            component="deployment-controller",
        )

    def _scale_in(self, pod: _Pod, replicaset: dict[str, Any], td: datetime) -> None:
        """The ReplicaSet controller deleting a pod the HPA no longer wants at `td` (routine)."""
        rng = self.rng
        if self.controller_pod_deletes:
            # audit policies that record every write see the ReplicaSet controller delete the pod
            at = td - timedelta(milliseconds=20)
            item = self.audit_item(
                at,
                "delete",
                "pods",
                pod.name,
                namespace=self.ns,
                user=RS_CONTROLLER_USER,
                user_agent=RS_CONTROLLER_UA,
                level="Metadata",
            )
            self.audit([(item, _Item(None, "info", "pod_lifecycle", at))])
        self.k8s_event(
            replicaset,
            td,
            "SuccessfulDelete",
            f"Deleted pod: {pod.name}",
            "pod_lifecycle",
            component="replicaset-controller",
        )
        tk = td + rng.secs(0.1, 1)
        self.stop_container(pod, tk)
        self.log(pod, tk + rng.secs(0.1, 1), "I", "server.cc:305", "Waiting for in-flight requests to complete.", "log")
        pod.deleted = tk + rng.secs(5, 30)

    def audit_chatter(self) -> None:
        """What the audit webhook gets all day: controllers reading, kubelets renewing leases."""
        rng = self.rng
        t = self.start + rng.secs(0, 60)
        nodes = sorted(self.node_pool)
        while t < self.end:
            entries: list[tuple[dict[str, Any], _Item]] = []
            for _ in range(rng.randint(2, 6)):
                t += rng.secs(0.01, 0.5)
                node = rng.choice(nodes)
                r = rng.random()
                chatter = next(request for share, request in self._CHATTER if r < share)
                entries.append((chatter(self, t, node), _Item(None, "info", "audit", t)))
            self.audit(entries)
            t += rng.secs(30, 150)

    def _lease_renewal(self, t: datetime, node: str) -> dict[str, Any]:
        return self.audit_item(
            t,
            "update",
            "leases",
            node,
            namespace="kube-node-lease",
            api_group="coordination.k8s.io",
            user=f"system:node:{node}",
            user_agent=KUBELET_UA,
            level="Metadata",
        )

    def _pods_read(self, t: datetime, node: str) -> dict[str, Any]:
        return self.audit_item(
            t,
            self.rng.choice(("get", "list", "watch")),
            "pods",
            "",
            namespace=self.ns,
            user="system:serviceaccount:monitoring:kube-state-metrics",
            user_agent="kube-state-metrics/v2.13.0",
            level="Metadata",
        )

    def _pod_status(self, t: datetime, node: str) -> dict[str, Any]:
        pod = self.rng.choice(self.alive(t))  # a kubelet reporting on one of its pods, not on `node`
        return self.audit_item(
            t,
            "patch",
            "pods",
            pod.name,
            namespace=self.ns,
            subresource="status",
            user=f"system:node:{pod.node}",
            user_agent=KUBELET_UA,
            level="Metadata",
        )

    def _node_read(self, t: datetime, node: str) -> dict[str, Any]:
        return self.audit_item(
            t,
            "get",
            "nodes",
            node,
            user="system:serviceaccount:kube-system:node-controller",
            user_agent=CONTROLLER_MANAGER_UA,
            stage=self.rng.choice(("RequestReceived", "ResponseComplete")),
            level="Metadata",
        )

    # The audit chatter's requests and how often each comes: the first whose cumulative share is
    # above a draw from [0, 1).
    _CHATTER: ClassVar[tuple[tuple[float, Callable[[_Day, datetime, str], dict[str, Any]]], ...]] = (
        (0.35, _lease_renewal),
        (0.6, _pods_read),
        (0.8, _pod_status),
        (1.0, _node_read),
    )

    # --- Alertmanager ----------------------------------------------------------------------------
    def notify(self) -> None:
        """Alertmanager grouped by alertname: a new group waits group_wait, later changes go out on the
        group_interval ticks; each notification carries the alerts that changed since the last one."""
        rng = self.rng
        by_name: dict[str, list[tuple[datetime, int, _Alert, bool]]] = {}
        n = count()
        for a in self.alerts:
            name = a.labels["alertname"]
            ready = a.starts + a.for_ + rng.secs(0.1, 1.5)
            by_name.setdefault(name, []).append((ready, next(n), a, True))
            if a.ends is not None:
                ends = max(a.ends, ready + self.group_interval + self.group_wait + timedelta(seconds=5))
                a.ends = _trunc_ms(ends)
                by_name[name].append((a.ends + rng.secs(0.1, 1.5), next(n), a, False))
        for name in sorted(by_name):
            pending = sorted(by_name[name], key=lambda x: (x[0], x[1]))
            last: datetime | None = None
            firing: set[int] = set()
            i = 0
            while i < len(pending):
                ready = pending[i][0]
                if last is not None and firing:
                    ticks = max(1, math.ceil((ready - last) / self.group_interval))
                    send = last + ticks * self.group_interval
                else:
                    send = ready + self.group_wait
                j = i
                while j < len(pending) and pending[j][0] <= send:
                    j += 1
                batch: dict[int, tuple[_Alert, bool]] = {}
                for _, _, a, is_firing in pending[i:j]:
                    batch[id(a)] = (a, is_firing)  # the latest state of an alert wins
                    if is_firing:
                        firing.add(id(a))
                    else:
                        firing.discard(id(a))
                i = j
                entries = list(batch.values())
                rng.shuffle(entries)
                alerts, items = [], []
                for a, is_firing in entries:
                    alerts.append(am_alert(a.labels, a.annotations, a.starts, None if is_firing else a.ends))
                    at = a.starts if is_firing else a.ends
                    assert at is not None
                    items.append(_Item(a.problem, a.cls, a.kind, at, is_firing))
                self.deliver(send + rng.secs(0.02, 0.4), "alertmanager", webhook_body(alerts), items)
                last = send if firing else None

    # --- truth -----------------------------------------------------------------------------------
    def finish(self) -> GeneratedDay:
        """The captures in the order they arrive, and the truth of the problems they tell of."""
        captures, kinds = self._captures()
        members: dict[int, list[_Item]] = {}
        for d in self.deliveries:
            for it in d.items:
                if it.problem is not None:
                    members.setdefault(id(it.problem), []).append(it)
        roots: dict[int, tuple[_Item, list[_Item]]] = {}
        for p in self.problems:
            items = members.get(id(p), [])
            if items:
                roots[id(p)] = root_cause(items)
        ordered = sorted(
            (p for p in self.problems if id(p) in roots), key=lambda p: (roots[id(p)][0].at, roots[id(p)][0].ref)
        )
        for k, p in enumerate(ordered, 1):
            p.gid = f"g{k:03d}"
        problems = [_story(p, roots[id(p)][0], len(members[id(p)])) for p in ordered]
        return GeneratedDay(captures, self._truth(ordered, roots), kinds, problems)

    def _captures(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Every delivery as a capture, in the order received (each a millisecond after the one before
        at the least), with each item's reference set; and the kind meant for each reference."""
        self.deliveries.sort(key=lambda d: (d.received, d.seq))
        captures: list[dict[str, Any]] = []
        prev: datetime | None = None
        kinds: dict[str, str] = {}
        for n, d in enumerate(self.deliveries, 1):
            received = _trunc_ms(d.received)
            if prev is not None and received <= prev:
                received = prev + timedelta(milliseconds=1)
            prev = received
            cid = _capture_id(self.rng, n)
            captures.append({"id": cid, "received_at": _ms(received), "source": d.source, "body": d.body})
            for i, it in enumerate(d.items):
                it.ref = f"{cid}#{i}"
                kinds[it.ref] = it.kind
        return captures, kinds

    def _truth(self, ordered: list[_Problem], roots: dict[int, tuple[_Item, list[_Item]]]) -> dict[str, Any]:
        """The truth in the scenarios' format, of the problems numbered in `ordered`."""
        events: dict[str, dict[str, Any]] = {}
        for d in self.deliveries:
            for it in d.items:
                events[it.ref] = {"group": it.problem.gid if it.problem is not None else None, "cls": it.cls}
        groups: dict[str, dict[str, Any]] = {}
        for p in ordered:
            groups[p.gid] = {"kind": p.kind} | ({"recurrence_of": p.recurrence_of.gid} if p.recurrence_of else {})
        return {
            "events": events,
            "groups": groups,
            "root_alternatives": {p.gid: [a.ref for a in roots[id(p)][1]] for p in ordered},
            "roots": {p.gid: roots[id(p)][0].ref for p in ordered},
        }


def _story(p: _Problem, root: _Item, members: int) -> dict[str, Any]:
    """What the generator meant by one problem, for tests and diagnosis."""
    return {
        "group": p.gid,
        "kind": p.kind,
        "summary": p.summary,
        "start": _ms(p.start),
        "root": root.ref,
        "root_kind": root.kind,
        "members": members,
        "recurrence_of": p.recurrence_of.gid if p.recurrence_of else None,
    }


def root_cause(items: Sequence[_Item]) -> tuple[_Item, list[_Item]]:
    """The earliest firing event of the earliest step of the chain that explains every kind of the
    group (ties: the kind the step lists first), and the other events of that step within a minute."""
    kinds = {it.kind for it in items}
    best: tuple[int, int, tuple[tuple[str, ...], ...]] | None = None
    for order, (_, steps) in enumerate(CHAINS):
        rank = {k: i for i, step in enumerate(steps) for k in step}
        if kinds <= rank.keys():
            first = min(rank[k] for k in kinds)
            if best is None or (first, order) < (best[0], best[1]):
                best = (first, order, steps)
    steps = best[2] if best else ()
    place = {k: (i, j) for i, step in enumerate(steps) for j, k in enumerate(step)}
    cls_rank = {"change": 0, "alert": 1, "info": 2}

    def key(it: _Item) -> tuple[Any, ...]:
        step, within = place.get(it.kind, (len(place) + cls_rank.get(it.cls, 3), 0))
        return (step, not it.firing, it.at, within, it.ref)

    root = min(items, key=key)
    step = key(root)[0]
    alternatives = [
        it
        for it in sorted(items, key=key)
        if it is not root and it.firing and key(it)[0] == step and it.at - root.at <= ROOT_TIE
    ]
    return root, alternatives


# --- a day: the plan ----------------------------------------------------------------------------


def generated_day_detail(
    seed: int, *, start: datetime | str | None = None, hours: float = 10.0, controller_pod_deletes: bool = False
) -> GeneratedDay:
    """A day of captures with its truth and the generator's intent (see `generated_day`).

    `controller_pod_deletes` adds what an audit policy recording every write sees when the HPA scales
    in: the ReplicaSet controller deleting each pod (routine; off by default, see the tests)."""
    if hours < 8:
        raise ValueError("a generated day needs at least 8 hours for its incidents to stay apart")
    day = _Day(seed, _day_start(seed, start), hours, controller_pod_deletes)
    plan = _plan(day, hours)
    _reserve_outages(day, plan)
    _carry_out(day, plan)
    day.watchdog()
    day.requests()
    day.repository_polls()
    day.autoscaling()
    day.audit_chatter()
    day.notify()
    return day.finish()


def _day_start(seed: int, start: datetime | str | None) -> datetime:
    """`start`, or a morning of November or December 2026 drawn from the seed."""
    if start is not None:
        return _parse_time(start)
    pick = _Rand(seed ^ 0x5EED)
    return datetime(2026, 11, 2, tzinfo=UTC) + timedelta(
        days=pick.randrange(0, 60), hours=pick.randint(5, 9), minutes=pick.randrange(60)
    )


def _plan(day: _Day, hours: float) -> list[tuple[datetime, str]]:
    """When each of the day's problems is meant to start, in time order (see `generated_day`)."""
    rng, t0 = day.rng, day.start

    def after(lo: float, hi: float) -> datetime:
        return t0 + rng.mins(lo * 60, hi * 60)

    plan: list[tuple[datetime, str]] = []
    ta = after(0.75, 1.8)
    tb = ta + rng.mins(200, 270)
    plan += [(ta, "outage_a"), (tb, "outage_b")]
    plan += [(ta + rng.mins(-2, 4), "oom_near_a"), (tb + rng.mins(-2, 4), "oom_near_b")]
    plan.append((after(0.9, hours - 2.5), "recurrence"))
    plan.append((after(0.9, hours - 0.8), "drain"))
    tp = after(0.9, hours - 0.8)
    plan += [(tp, "pool"), (tp + rng.mins(-3, 3), "oom_near_pool")]
    # the outage models failing again on one pod, hours away from their outages
    late = ta + timedelta(minutes=230) < day.end - timedelta(minutes=30)
    plan.append((ta + rng.mins(150, 220) if late else ta - rng.mins(150, 200), "load_a"))
    plan.append((tb - rng.mins(130, 180), "oom_b"))
    plan += [(after(0.8, hours - 0.6), "oom") for _ in range(rng.randint(1, 2))]
    plan.sort(key=lambda x: x[0])
    return plan


def _reserve_outages(day: _Day, plan: list[tuple[datetime, str]]) -> None:
    """Hold each outage's deployment and pool from the start.

    NOTE: problems are generated in time order, so each sees the placement of its time (a drain
    moves pods); the outages are reserved first, so nothing earlier takes their deployment."""
    for t, what in plan:
        if what.startswith("outage"):
            m = day.models[0] if what == "outage_a" else day.models[1]
            day.reserve(
                what, {f"deploy:{m.deployment}", f"model:{m.name}"} | {f"node:{n}" for n in day.pool_nodes[m.pool]}, t
            )


def _carry_out(day: _Day, plan: list[tuple[datetime, str]]) -> None:
    """Generate each planned problem, in time order: at its time, or (all but the outages and the
    problems meant to coincide with another) within an hour of it where its resources are free."""
    rng = day.rng
    for t, what in plan:
        for attempt in range(12):
            when = t if attempt == 0 or what.startswith(("outage", "oom_near")) else t + rng.mins(-60, 60)
            when = min(max(when, day.start + timedelta(minutes=45)), day.end - timedelta(minutes=35))
            if _place(day, what, when):
                break


def _place(day: _Day, what: str, when: datetime) -> bool:
    """Try to put one planned problem at `when`; False when its resources are taken then."""
    place = _PLACES.get(what)
    if place is None:
        raise ValueError(f"unknown plan step {what!r}")
    return place(day, what, when)


def _place_outage(day: _Day, what: str, when: datetime) -> bool:
    day.release(what)
    m = day.models[0] if what == "outage_a" else day.models[1]
    pods = day.alive(when, model=m)
    if not day.free(day.pod_keys(pods) | {f"model:{m.name}"}, when, when + timedelta(minutes=40)):
        return False
    day.fleet_outage(m, when)
    return True


def _place_oom_near(day: _Day, what: str, when: datetime) -> bool:
    # at the same time as another problem, on other nodes and another model
    return _on_one_pod(day, when, day.models[2:], day.oom_cascade)


def _place_load_failure(day: _Day, what: str, when: datetime) -> bool:
    return _on_one_pod(day, when, day.models[:1], day.load_failure)


def _place_oom(day: _Day, what: str, when: datetime) -> bool:
    models = day.models[1:2] if what == "oom_b" else day.models[2:]
    return _on_one_pod(day, when, models, day.oom_cascade)


def _on_one_pod(
    day: _Day, when: datetime, models: Sequence[_Model], problem: Callable[[_Pod, datetime], _Problem]
) -> bool:
    pod = day.pick_pod(when, models)
    if pod is None:
        return False
    problem(pod, when)
    return True


def _place_recurrence(day: _Day, what: str, when: datetime) -> bool:
    # both episodes, and the quiet between them, must be free of other problems on the pod
    pod = day.pick_pod(when, day.models[2:], hold=timedelta(minutes=80))
    if pod is None:
        return False
    first = day.oom_cascade(pod, when)
    day.oom_cascade(pod, (first.end or when) + day.rng.mins(20, 40), recurrence_of=first)
    return True


def _place_drain(day: _Day, what: str, when: datetime) -> bool:
    nodes = sorted(day.node_pool)
    day.rng.shuffle(nodes)
    busy = day.busy_nodes(when)
    for node in nodes:
        if node in busy or day._cordoned(node, when) or len(day.pool_nodes[day.node_pool[node]]) < 3:
            continue
        pods = day.alive(when, node=node)
        if pods and day.free(day.pod_keys(pods) | {f"node:{node}"}, when, when + timedelta(minutes=20)):
            day.node_drain(node, when)
            return True
    return False


def _place_pool(day: _Day, what: str, when: datetime) -> bool:
    rng = day.rng
    pools = sorted(day.pool_nodes)
    rng.shuffle(pools)
    busy = day.busy_nodes(when)
    for pool in pools:
        candidates = [
            n for n in day.pool_nodes[pool] if n not in busy and not day._cordoned(n, when) and day.alive(when, node=n)
        ]
        if len(candidates) < 2:
            continue
        nodes = sorted(rng.sample(candidates, min(len(candidates), rng.randint(2, 4))))
        pods = [p for n in nodes for p in day.alive(when, node=n)]
        keys = day.pod_keys(pods) | {f"node:{n}" for n in nodes} | {f"pool:{pool}"}
        if day.free(keys, when, when + timedelta(minutes=20)):
            day.nodepool_not_ready(pool, nodes, when)
            return True
    return False


# Each step of the plan and how it is put in place. The two big models (the first two) have the
# outages; the others the OOM cascades, the recurrence and the problems that coincide with another.
_PLACES: dict[str, Callable[[_Day, str, datetime], bool]] = {
    "outage_a": _place_outage,
    "outage_b": _place_outage,
    "oom_near_a": _place_oom_near,
    "oom_near_b": _place_oom_near,
    "oom_near_pool": _place_oom_near,
    "recurrence": _place_recurrence,
    "drain": _place_drain,
    "pool": _place_pool,
    "load_a": _place_load_failure,
    "oom_b": _place_oom,
    "oom": _place_oom,
}


def generated_day(
    seed: int, *, start: datetime | str | None = None, hours: float = 10.0
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A day of captures (`{"id", "received_at", "source", "body"}`, `received_at` increasing) and its
    truth in the scenarios' format. Names, sizes and timings come from `seed`:

    - routine traffic that never belongs in an incident: Triton info and per-request logs, Normal
      Kubernetes events, the HPA scaling small models, audit chatter, Alertmanager's Watchdog;
    - two fleet-wide outages of one model each (every replica of a 12-40 replica deployment on several
      nodes fails to load its model within a minute, goes unavailable, some crash-loop, all error),
      hours apart, each with a pod OOM cascade on other nodes and another model at the same time;
    - pod OOM cascades (OOMKilling, OOM alert, crash loop, model unavailable, error rate, resolved);
    - a node drain (audit cordon, evictions, pods stopped, deployments short of replicas);
    - a node pool going NotReady (node alerts carrying the GKE node pool label, pods not ready),
      with an OOM elsewhere at the same time;
    - a recurrence: the same pod OOM-killed again 20-40 minutes after the first episode resolved;
    - the outage models failing again on one pod hours from their outages (separate groups).
    """
    day = generated_day_detail(seed, start=start, hours=hours)
    return day.captures, day.truth


# --- command line -------------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, separators=(",", ":")) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m eventmgmt.simulator.storm", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("day", help="a day of captures with its truth: DIR/captures.jsonl, DIR/truth.json")
    d.add_argument("--seed", type=int, required=True)
    d.add_argument("--out", required=True, help="directory to write")
    d.add_argument("--start", help="start of the day (ISO 8601, UTC); drawn from the seed by default")
    d.add_argument("--hours", type=float, default=10.0)
    s = sub.add_parser("storm", help="storm webhooks as captures (one webhook a line)")
    s.add_argument("--models", type=int, default=20)
    s.add_argument("--pods", type=int, default=100, help="pods per model")
    s.add_argument("--batch", type=int, default=100, help="alerts per webhook")
    s.add_argument("--out", required=True, help="captures file to write")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--start", default="2026-11-07T08:00:00Z", help="the minute the storm starts (ISO 8601)")
    s.add_argument("--nonstandard-names", action="store_true", help="pod names no deployment can be derived from")
    args = ap.parse_args(argv)
    if args.command == "day":
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        day = generated_day_detail(args.seed, start=args.start, hours=args.hours)
        _write_jsonl(out / "captures.jsonl", day.captures)
        (out / "truth.json").write_text(json.dumps(day.truth, indent=1, sort_keys=True) + "\n")
        print(
            f"{len(day.captures)} captures, {len(day.truth['events'])} events, {len(day.truth['groups'])} groups -> {out}"
        )
        for p in day.problems:
            print(f"  {p['group']} {p['start']} {p['kind']:<17} {p['members']:>4} events  {p['summary']}")
        return 0
    alerts = storm_alerts(args.models, args.pods, args.start, seed=args.seed, standard_names=not args.nonstandard_names)
    caps = storm_captures(alerts, args.batch, seed=args.seed)
    _write_jsonl(Path(args.out), caps)
    print(f"{len(alerts)} alerts in {len(caps)} webhooks -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
