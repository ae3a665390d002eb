"""The collector with its I/O: Prometheus via prometheus-api-client, the cluster via the kubernetes
client, state in a file, events classified and published to events-raw like ingest does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..classify import admit
from ..config import Config
from ..settings import Settings
from ..transport import Publisher
from ..transport.messages import publish_events
from ..transport.pipeline import RAW
from .collect import PromQL, RunResult, run_once
from .config import collector_config
from .state import StateFile


def prometheus_client_for(url: str, timeout: float = 10.0) -> PromQL:
    """PrometheusConnect with a bounded HTTP timeout and one retry: an unreachable Prometheus must
    turn into an error event quickly, not stall the scheduled run."""
    import requests
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    class TimeoutSession(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return super().request(*args, **kwargs)

    return PrometheusConnect(
        url=url, disable_ssl=True, session=TimeoutSession(), retry=Retry(total=1, backoff_factor=0.2)
    )


def kubernetes_client() -> Any | None:
    """CoreV1Api from in-cluster config or ~/.kube/config; None when neither exists."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, FileNotFoundError, TypeError):
            return None
    return client.CoreV1Api()


class Collector:
    def __init__(
        self,
        config: Config,
        publisher: Publisher,
        state: StateFile,
        prom: PromQL | None,
        core_v1: Any | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.cfg = collector_config(config.section("collector"))
        self.publisher = publisher
        self.state = state
        self.prom = prom
        self.core_v1 = core_v1
        self.clock = clock

    @classmethod
    def from_settings(
        cls, settings: Settings, config: Config, publisher: Publisher, clock: Callable[[], datetime]
    ) -> Collector:
        prom = prometheus_client_for(settings.prometheus_url) if settings.prometheus_url else None
        cfg = collector_config(config.section("collector"))
        core = kubernetes_client() if cfg.kubernetes else None
        state = StateFile(str(settings.home / "collector-state.json"))
        return cls(config, publisher, state, prom, core, clock)

    def run(self) -> RunResult:
        """One scheduled run. State is saved only after every event is published: a publish failure
        raises, and the next run emits the same transitions again (same ids, so no duplicates)."""
        state = self.state.load()
        result = run_once(self.clock(), self.cfg, state, self.prom, self.core_v1)
        kept, _ = admit(result.events, self.config)
        publish_events(self.publisher, RAW, kept, {"source": "collector"})
        self.state.save(state)
        return result
