"""Jobs the embedded runtime runs on its own threads: the collector (when Prometheus is configured)
and retention (archive tiers and the state store's ageing, as the policy says)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ..logjson import log_json

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ..config import Config

log = logging.getLogger("eventmgmt")


class Every:
    """Runs `job` every `seconds` on a daemon thread (first after `first` seconds) until closed;
    a failed run is logged and the next one happens as planned."""

    def __init__(self, name: str, job: Callable[[], object], seconds: float, first: float | None = None) -> None:
        self.job = job
        self.name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop,
            args=(seconds, seconds if first is None else first),
            name=f"eventmgmt-{name}",
            daemon=True,
        )
        self._thread.start()

    def _loop(self, seconds: float, first: float) -> None:
        wait = first
        while not self._stop.wait(wait):
            wait = seconds
            try:
                self.job()
            except Exception:
                log.exception("%s run failed", self.name)

    def close(self, timeout: float = 10.0) -> None:
        """Stop, and wait up to `timeout` for a run in hand: a stopped runtime's archive job had
        still written a file after its archive was closed (its home then removed under it)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


def retention_job(archive: str, engine: Engine, config: Config, clock: Callable[[], datetime]) -> Callable[[], None]:
    """One retention pass: archive partitions moved or deleted, then the state store aged out. Both
    are idempotent, so a pass cut short by a restart is finished by the next."""
    from ..archive.policy import retention_config
    from ..archive.retention import age_out_state, run_retention

    policy = retention_config(config.section("retention"))

    def run() -> None:
        now = clock()
        report = run_retention(archive, policy, now)
        state = age_out_state(engine, policy, now)
        if report.moved or report.deleted or any(state.values()):
            log_json(
                log,
                "INFO",
                "retention pass",
                stage="retention",
                moved=len(report.moved),
                deleted=len(report.deleted),
                held=len(report.held),
                state_deleted={k: v for k, v in state.items() if v},
            )

    return run
