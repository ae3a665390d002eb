"""`GET /metrics`: eventmgmt watched by the Prometheus it serves, in its text exposition format.

Every figure is read when Prometheus scrapes (a custom collector), from what the runtime keeps
anyway: ingest's counters, the durable queue, the state store, the route ledger and outbox. Nothing
is counted on the hot path for it. Counters restart from zero with the process except pages sent,
which the route ledger keeps; Prometheus' `rate()` and `increase()` handle both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from .. import __version__
from ..store.db import reader
from ..store.tables import IncidentRow

if TYPE_CHECKING:
    from .app import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def build_info() -> Metric:
    info = InfoMetricFamily("eventmgmt_build", "eventmgmt's version")
    info.add_metric([], {"version": __version__})
    return info


class RuntimeCollector:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        yield build_info()
        yield from self._ingest()
        yield from self._queue()
        yield from self._built()
        yield from incidents_gauge(self.rt.engine)
        yield from self._route()

    def _ingest(self) -> Iterator[Metric]:
        stats = self.rt.ingest.stats()
        families = (
            (
                "eventmgmt_events_accepted",
                "Events accepted, built and past the filters (on to correlation), by source.",
                "source",
                "accepted",
            ),
            ("eventmgmt_events_filtered", "Events dropped by an ingest filter, by filter.", "filter", "filtered"),
            (
                "eventmgmt_records_rejected",
                "Records refused alone (4xx) in a delivery, by source.",
                "source",
                "rejected_records",
            ),
            (
                "eventmgmt_deliveries_rejected",
                "Deliveries answered with an error, by HTTP status.",
                "status",
                "rejected",
            ),
        )
        for name, doc, label, key in families:
            fam = CounterMetricFamily(name, doc, labels=[label])
            for value, count in sorted(stats.get(key, {}).items()):
                fam.add_metric([value], count)
            yield fam

    def _queue(self) -> Iterator[Metric]:
        q = self.rt.queue.stats()
        yield GaugeMetricFamily(
            "eventmgmt_queue_backlog_events", "Events accepted and not yet correlated.", value=q["backlog_events"]
        )
        yield GaugeMetricFamily(
            "eventmgmt_queue_oldest_age_seconds",
            "Age of the oldest delivery waiting for correlation: the correlation lag.",
            value=q["oldest_age_s"] or 0.0,
        )
        yield GaugeMetricFamily(
            "eventmgmt_queue_max_backlog_events", "Backlog bound (503 past it).", value=self.rt.settings.max_backlog
        )
        yield GaugeMetricFamily(
            "eventmgmt_queue_dead_letters",
            "Deliveries correlation gave up on (GET /api/queue/dead-letters).",
            value=q["dead_letters"],
        )
        yield CounterMetricFamily(
            "eventmgmt_queue_refused",
            "Deliveries refused with 503 because the backlog was at its bound.",
            value=q["refused"],
        )
        yield CounterMetricFamily(
            "eventmgmt_correlation_yielded_seconds",
            "Time correlation stepped aside for ingest requests in flight.",
            value=self.rt.priority.paused_seconds,
        )
        yield CounterMetricFamily(
            "eventmgmt_correlation_restarts",
            "Times serve's correlating process died and was started again (its log says why).",
            value=self.rt.drainer.restarts,
        )
        yield CounterMetricFamily(
            "eventmgmt_memory_releases",
            "Times the drain gave memory back after a burst (page caches closed, freed heap trimmed).",
            value=self.rt.drainer.releases,
        )

    def _built(self) -> Iterator[Metric]:
        ahead, in_drain, restarts = self.rt.drainer.build_counts
        built = CounterMetricFamily(
            "eventmgmt_queued_rows_built",
            "Queued webhook rows whose events were built, by who built them: the build process ahead of "
            "the drain, or the drain itself (at rest, or with the build process down or off).",
            labels=["by"],
        )
        built.add_metric(["build_process"], ahead)
        built.add_metric(["drain"], in_drain)
        yield built
        yield CounterMetricFamily(
            "eventmgmt_build_process_restarts",
            "Times the correlating process's build process died or stalled and was started again.",
            value=restarts,
        )

    def _route(self) -> Iterator[Metric]:
        router = self.rt.router
        sent = CounterMetricFamily(
            "eventmgmt_notifications_sent",
            "States sent to receivers (pages, updates, resolves), by receiver.",
            labels=["receiver"],
        )
        waiting = GaugeMetricFamily(
            "eventmgmt_notifications_waiting",
            "States waiting in the outbox for a receiver that is down.",
            labels=["receiver"],
        )
        down = GaugeMetricFamily(
            "eventmgmt_receiver_down", "1 while a receiver has states waiting in its outbox.", labels=["receiver"]
        )
        if router is not None:
            totals = {name: 0 for name in router.receivers} | router.ledger.sent_by_receiver()
            outbox: dict[str, int] = {}
            for r in router.outbox():
                outbox[r["receiver"]] = outbox.get(r["receiver"], 0) + 1
            for name in sorted(totals):
                sent.add_metric([name], totals[name])
                waiting.add_metric([name], outbox.get(name, 0))
                down.add_metric([name], 1 if outbox.get(name) else 0)
        yield sent
        yield waiting
        yield down


def incidents_gauge(engine: Engine) -> Iterator[Metric]:
    fam = GaugeMetricFamily(
        "eventmgmt_incidents", "Incidents open or acknowledged, by status and severity.", labels=["status", "severity"]
    )
    query = (
        select(IncidentRow.status, IncidentRow.severity, func.count())
        .where(IncidentRow.status.in_(("open", "acknowledged")))
        .group_by(IncidentRow.status, IncidentRow.severity)
    )
    with Session(reader(engine)) as s:
        for status, severity, count in s.execute(query):
            fam.add_metric([status, severity], count)
    yield fam


def exposition(rt: Runtime) -> bytes:
    """eventmgmt's own figures, and the process's as every Prometheus client exports them
    (`process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`, `python_gc_*`,
    `python_info`): memory after a storm, and whether it comes back, is watched like any service's."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(rt))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return generate_latest(registry)
