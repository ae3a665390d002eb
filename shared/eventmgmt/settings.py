"""Environment variables, read in one place. Explicit arguments always win over these."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HOME = "EVENTMGMT_HOME"
CONFIG = "EVENTMGMT_CONFIG"
DATABASE_URL = "EVENTMGMT_DATABASE_URL"
ARCHIVE_URL = "EVENTMGMT_ARCHIVE_URL"
INGEST_TOKEN = "EVENTMGMT_INGEST_TOKEN"
BACKFILL_TOKEN = "EVENTMGMT_BACKFILL_TOKEN"
READ_TOKEN = "EVENTMGMT_READ_TOKEN"
ALLOWED_HOSTS = "EVENTMGMT_ALLOWED_HOSTS"
ALLOWED_ORIGINS = "EVENTMGMT_ALLOWED_ORIGINS"
MAX_BODY_BYTES = "EVENTMGMT_MAX_BODY_BYTES"
MAX_BACKLOG = "EVENTMGMT_MAX_BACKLOG"
QUEUE_SYNC = "EVENTMGMT_QUEUE_SYNC"
MAX_RECORDS = "EVENTMGMT_MAX_RECORDS"
MAX_LABELS = "EVENTMGMT_MAX_LABELS"
MAX_LABEL_CHARS = "EVENTMGMT_MAX_LABEL_CHARS"
RECORD_PATH = "EVENTMGMT_RECORD"
CLUSTER = "EVENTMGMT_CLUSTER"
TRANSPORT = "EVENTMGMT_TRANSPORT"
PROJECT = "GOOGLE_CLOUD_PROJECT"
DASHBOARD_URL = "EVENTMGMT_DASHBOARD_URL"
PROMETHEUS_URL = "EVENTMGMT_PROMETHEUS_URL"
COLLECT_EVERY = "EVENTMGMT_COLLECT_EVERY"
PAGERDUTY_ROUTING_KEY = "EVENTMGMT_PAGERDUTY_ROUTING_KEY"
PAGERDUTY_URL = "EVENTMGMT_PAGERDUTY_URL"
SLACK_WEBHOOK_URL = "EVENTMGMT_SLACK_WEBHOOK_URL"
WEBHOOK_URL = "EVENTMGMT_WEBHOOK_URL"
CHANGE_WEBHOOK_URL = "EVENTMGMT_CHANGE_WEBHOOK_URL"
DRAIN_SECONDS = "EVENTMGMT_DRAIN_SECONDS"
RETENTION_EVERY = "EVENTMGMT_RETENTION_EVERY"
GROUP_WAIT_SECONDS = "EVENTMGMT_GROUP_WAIT_SECONDS"
CORRELATE_PROCESS = "EVENTMGMT_CORRELATE_PROCESS"
BUILD_PROCESS = "EVENTMGMT_BUILD_PROCESS"

# The default receivers' URLs and keys; a routing configuration may name further variables.
SINK_VARIABLES = (PAGERDUTY_URL, PAGERDUTY_ROUTING_KEY, SLACK_WEBHOOK_URL, WEBHOOK_URL, CHANGE_WEBHOOK_URL)


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _float_or_none(value: str | None) -> float | None:
    return None if value is None else float(value)


def _flag(name: str) -> bool:
    """On unless set to 0, false, no or off."""
    return (_env(name, "1") or "1").lower() not in ("0", "false", "no", "off")


def _list(name: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in (_env(name) or "").split(",") if x.strip())


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(_env(HOME, "./.eventmgmt") or "./.eventmgmt"))
    config_path: str | None = field(default_factory=lambda: _env(CONFIG))
    database_url: str | None = field(default_factory=lambda: _env(DATABASE_URL))
    archive_url: str | None = field(default_factory=lambda: _env(ARCHIVE_URL))
    ingest_token: str | None = field(default_factory=lambda: _env(INGEST_TOKEN))
    # NOTE: only a sender holding this token may date its deliveries (`X-Received-At`): a backfill
    # of old captures. Nobody may date one ahead of the server's clock.
    backfill_token: str | None = field(default_factory=lambda: _env(BACKFILL_TOKEN))
    # NOTE: reads (API, dashboard pages, ingest stats) are open unless this is set; then a reader
    # presents it, or the ingest token, as a bearer token or as the password of HTTP Basic.
    read_token: str | None = field(default_factory=lambda: _env(READ_TOKEN))
    # NOTE: Host names answered besides loopback names, IP literals and the bound host (DNS
    # rebinding); "*" answers any, ".example.com" any name under example.com.
    allowed_hosts: tuple[str, ...] = field(default_factory=lambda: _list(ALLOWED_HOSTS))
    # NOTE: origins other than the server's own whose pages may write (a proxy's public origin).
    allowed_origins: tuple[str, ...] = field(default_factory=lambda: _list(ALLOWED_ORIGINS))
    # NOTE: 16 MiB: one Alertmanager webhook of 20,000 alerts is about 4.5-6 MB.
    max_body_bytes: int = field(default_factory=lambda: int(_env(MAX_BODY_BYTES, str(16 * 1024 * 1024)) or 0))
    # NOTE: events accepted and not yet correlated (embedded runtime); past it ingest answers 503.
    max_backlog: int = field(default_factory=lambda: int(_env(MAX_BACKLOG, "200000") or 0))
    # NOTE: when a 202 is durable (embedded queue): `full` syncs each delivery to disk before the
    # answer (it survives a power cut); `normal` hands it to the OS (it survives kill -9 and OOM
    # kills, not a power cut or kernel crash), about 0.2-0.4 ms less per delivery.
    queue_sync: str = field(default_factory=lambda: (_env(QUEUE_SYNC, "full") or "full").lower())
    # NOTE: records per delivery (413 above), labels per record and characters per label or
    # resource name (cut with a marker above): sources/limits.py.
    max_records: int = field(default_factory=lambda: int(_env(MAX_RECORDS, "50000") or 0))
    max_labels: int = field(default_factory=lambda: int(_env(MAX_LABELS, "128") or 0))
    max_label_chars: int = field(default_factory=lambda: int(_env(MAX_LABEL_CHARS, "4096") or 0))
    # NOTE: overrides `routing.group_wait_seconds` of the configuration when set.
    group_wait_seconds: float | None = field(default_factory=lambda: _float_or_none(_env(GROUP_WAIT_SECONDS)))
    record_path: str | None = field(default_factory=lambda: _env(RECORD_PATH))
    cluster: str | None = field(default_factory=lambda: _env(CLUSTER))
    transport: str = field(default_factory=lambda: _env(TRANSPORT, "inprocess") or "inprocess")
    project: str = field(default_factory=lambda: _env(PROJECT, "local") or "local")
    dashboard_url: str = field(default_factory=lambda: _env(DASHBOARD_URL, "http://127.0.0.1:8080") or "")
    prometheus_url: str | None = field(default_factory=lambda: _env(PROMETHEUS_URL))
    collect_every: float = field(default_factory=lambda: float(_env(COLLECT_EVERY, "30") or 30))
    # NOTE: on SIGTERM `serve` stops taking requests and routes what is queued for at most this long;
    # what is left is owed in the state store and sent after the next start.
    drain_seconds: float = field(default_factory=lambda: float(_env(DRAIN_SECONDS, "10") or 10))
    # NOTE: `eventmgmt serve` runs retention (archive tiers, the state store's ageing) this often, in
    # seconds; 0 leaves it to `eventmgmt retention run` on a schedule of the operator's.
    retention_every: float = field(default_factory=lambda: float(_env(RETENTION_EVERY, "3600") or 0))
    # NOTE: `serve` correlates in a second process, so that a storm being correlated does not slow
    # taking the next webhook (runtime/correlation_process.py); 0 keeps both in one process.
    correlate_process: bool = field(default_factory=lambda: _flag(CORRELATE_PROCESS))
    # NOTE: the correlating process builds queued webhooks' events in a third process, ahead of its
    # drain, on a machine of more than one core (runtime/build_ahead.py); 0 builds them in the drain.
    build_process: bool = field(default_factory=lambda: _flag(BUILD_PROCESS))

    def sink_variables(self, names: Iterable[str] = ()) -> dict[str, str]:
        """The receivers' URLs and keys: the default sinks' variables and `names` (those a routing
        configuration gives its receivers), the ones set."""
        found = {name: _env(name) for name in (*SINK_VARIABLES, *names)}
        return {name: value for name, value in found.items() if value is not None}

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'state.db'}"

    @property
    def queue_path(self) -> Path:
        """The embedded runtime's durable queue of accepted deliveries (always a local SQLite file)."""
        return self.home / "queue.db"

    @property
    def archive(self) -> str:
        return self.archive_url or str(self.home / "archive")
