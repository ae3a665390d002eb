"""Names Kubernetes derives from each other, recovered without asking the API server."""

from __future__ import annotations

import re

# Deployment pods are named <deployment>-<pod-template-hash>-<5 chars>; the hash uses the
# "bcdfghjklmnpqrstvwxz2456789" alphabet and is 6 to 10 characters long.
_DEPLOYMENT_POD = re.compile(
    r"^(?P<deploy>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-[bcdfghjklmnpqrstvwxz2456789]{6,10}-[bcdfghjklmnpqrstvwxz2456789]{5}$"
)
# StatefulSet pods are named <statefulset>-<ordinal> (Triton deployed as a StatefulSet, KServe's
# multi-node workers, LeaderWorkerSets' pods): the set plays the deployment's part.
_STATEFULSET_POD = re.compile(r"^(?P<deploy>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-(0|[1-9][0-9]{0,5})$")
# Pods named by `generateName`: <owner>-<5 chars> (a DaemonSet's, a Job's, a bare ReplicaSet's, a
# CronJob's <cronjob>-<scheduled minute>-<5 chars>). The alphabet has no vowels and no 0, 1 or 3, so
# a name a person chose ("api-front", "triton-01") does not read as one.
_GENERATED_POD = re.compile(
    r"^(?P<deploy>[a-z0-9](?:[-a-z0-9]*?[a-z0-9])?)(?:-[0-9]{8,10})?-[bcdfghjklmnpqrstvwxz2456789]{5}$"
)
_REPLICASET = re.compile(r"^(?P<deploy>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-[bcdfghjklmnpqrstvwxz2456789]{6,10}$")


def deployment_of_pod(pod: str | None) -> str | None:
    """The workload a pod's name says it belongs to: its Deployment, StatefulSet, or the owner that
    generated its name (DaemonSet, Job, CronJob). It plays the deployment's part in correlation: the
    pods of one workload that fail together are one problem."""
    return controller_of_pod(pod) or generated_owner_of_pod(pod)


def controller_of_pod(pod: str | None) -> str | None:
    """The Deployment or StatefulSet a pod's name says it belongs to."""
    if not pod:
        return None
    m = _DEPLOYMENT_POD.match(pod) or _STATEFULSET_POD.match(pod)
    return m.group("deploy") if m else None


def generated_owner_of_pod(pod: str | None) -> str | None:
    """The owner whose `generateName` named the pod (a DaemonSet, Job, CronJob)."""
    m = _GENERATED_POD.match(pod) if pod else None
    return m.group("deploy") if m else None


def deployment_of_replicaset(rs: str | None) -> str | None:
    if not rs:
        return None
    m = _REPLICASET.match(rs)
    return m.group("deploy") if m else None


# A CronJob names each Job it creates <cronjob>-<scheduled minute>.
_CRONJOB_RUN = re.compile(r"^(?P<cronjob>[a-z0-9]([-a-z0-9]*[a-z0-9])?)-[0-9]{8,10}$")


def workload_of_owner(kind: str | None, name: str | None) -> str | None:
    """The workload a pod's controlling owner (its ownerReference, from the Kubernetes API) names: a
    ReplicaSet's Deployment, a CronJob's Job's CronJob, else the owner itself (StatefulSet,
    DaemonSet, Job, an operator's resource). Whatever the pod is called."""
    if not name:
        return None
    if kind == "ReplicaSet":
        return deployment_of_replicaset(name) or name
    if kind == "Job":
        m = _CRONJOB_RUN.match(name)
        return m.group("cronjob") if m else name
    return name
