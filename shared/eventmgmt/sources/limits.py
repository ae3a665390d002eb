"""Bounds on what one delivery may make us store: records per delivery, labels per record, the length
of each label, and resource names (to Kubernetes' own 253 characters). A record over a bound is kept, cut down with a marker, so
a sender's bug (a label holding a whole stack trace, a pod name of a megabyte, thousands of labels)
costs neither memory nor a page nobody can read; only a delivery with more records than the bound
is refused (413), as a body over its size limit is."""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Resources

# NOTE: labels an incident is built from stay when a record has too many; the rest go in name order.
_KEEP_FIRST = (
    "alertname",
    "severity",
    "cluster",
    "namespace",
    "node",
    "pod",
    "container",
    "deployment",
    "model",
    "model_name",
    "version",
    "gpu",
    "job",
    "instance",
    "reason",
    "type",
    "level",
    "class",
)
DROPPED = "labels_dropped"
TRUNCATED = "labels_truncated"
SIGNAL_TRUNCATED = "signal_truncated"


@dataclass(frozen=True)
class Limits:
    # NOTE: above the 20,000-alert webhooks Alertmanager sends for one group in a storm.
    max_records: int = 50_000
    max_labels: int = 128
    max_label_chars: int = 4096


DEFAULT = Limits()


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… (+{len(text) - limit:,} characters)"


def bound_labels(labels: dict[str, str], limits: Limits) -> dict[str, str]:
    """`labels`, or a copy cut to the bounds: at most `max_labels` (the ones correlation reads first)
    plus a count of the dropped, each name and value at most `max_label_chars` plus a marker, and
    the names of the cut ones."""
    n = limits.max_label_chars
    long = [k for k, v in labels.items() if len(v) > n or len(k) > n]
    if len(labels) <= limits.max_labels and not long:
        return labels
    names = list(labels)
    if len(names) > limits.max_labels:
        first = [k for k in _KEEP_FIRST if k in labels]
        rest = sorted(k for k in names if k not in set(first))
        names = (first + rest)[: limits.max_labels]
    out = {clip(k, n): clip(labels[k], n) for k in names}
    if len(labels) > len(names):
        out[DROPPED] = str(len(labels) - len(names))
    cut = [k for k in long if k in names]
    if cut:
        out[TRUNCATED] = clip(",".join(sorted(cut)), n)
    return out


# NOTE: an alert's name (the event's signal, and the kind and incident title made from it): far above
# any real alertname, far below a name that would make one incident's JSON hundreds of kilobytes.
SIGNAL_CHARS = 256


def bound_signal(signal: str, labels: dict[str, str]) -> tuple[str, dict[str, str]]:
    """`signal` cut, marker included, to SIGNAL_CHARS, and `labels` with its full length under
    `signal_truncated` when it was cut (as `labels_truncated` names the labels cut)."""
    if len(signal) <= SIGNAL_CHARS:
        return signal, labels
    return _fit(signal, SIGNAL_CHARS), {**labels, SIGNAL_TRUNCATED: str(len(signal))}


# NOTE: Kubernetes names are at most 253 characters (a DNS subdomain), and the store's resource
# columns are as wide: a longer name would fail the insert on PostgreSQL, and the delivery with it.
RESOURCE_CHARS = 253


def bound_resources(resources: Resources) -> Resources:
    """Resource names cut, marker included, to RESOURCE_CHARS."""
    fields = resources.__dict__
    if all(v is None or len(v) <= RESOURCE_CHARS for v in fields.values()):
        return resources
    return Resources(**{k: (None if v is None else _fit(v, RESOURCE_CHARS)) for k, v in fields.items()})


def _fit(text: str, total: int) -> str:
    if len(text) <= total:
        return text
    # NOTE: the marker's own length counted with the longest count it can say, so the whole fits
    return clip(text, total - len(f"… (+{len(text):,} characters)"))
