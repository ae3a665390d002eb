"""`eventmgmt serve`: the embedded runtime on waitress, until SIGTERM or SIGINT."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from ..logjson import log_json
from ..settings import Settings
from .app import Runtime, build_runtime, create_app
from .correlation_process import CorrelationProcess

log = logging.getLogger("eventmgmt")

# NOTE: waitress's defaults let 100 idle connections (connection_limit) shut everyone else out, each
# for up to 120 s (channel_timeout, checked every cleanup_interval): /healthz timed out and the pod
# was restarted by its own probe. Idle or half-open connections cost a socket, not a thread; 1,000
# are cheap, and one idle 30 s is closed within 40. select() cannot watch a descriptor above 1023,
# so past a few hundred connections waitress must poll().
WAITRESS: dict[str, Any] = {
    "threads": 8,
    "recv_bytes": 256 * 1024,
    "ident": "eventmgmt",
    "connection_limit": 1000,
    "channel_timeout": 30,
    "cleanup_interval": 10,
    "asyncore_use_poll": True,
}
SWITCH_INTERVAL = 0.0002
# How long past the drain deadline (and past the 5 s waitress gives requests in flight) the process
# may take to stop before it ends itself: a request thread or a sink stuck must not hold it forever.
EXIT_GRACE_SECONDS = 5.0


def serve(host: str, port: int, settings: Settings | None = None) -> None:
    """Serve until SIGTERM or SIGINT; then stop taking requests (those in flight get up to 5 s), route
    what is queued within `drain_seconds` of the signal, and return. What route had not told a receiver
    by then is owed in the state store and sent after the next start."""
    from waitress.server import create_server

    # NOTE: a thread waiting for the interpreter lock gets it after at most this long. A webhook is
    # handed between threads four times (waitress's loop, a worker, back to the loop), and while
    # the drain correlates between two deliveries each hand-over waited up to the interval: with
    # 4 ms between webhooks, 200 us instead of 1 ms answered them about a fifth sooner (12 of 14
    # alternating runs faster, p50 6.5 vs 7.8 ms), and the drain correlated as fast (medians 3,195
    # vs 3,190 alerts/s). It also lets the route worker page while a burst is being taken.
    sys.setswitchinterval(SWITCH_INTERVAL)
    settings = settings or Settings()
    rt = build_runtime(settings, role="accept" if settings.correlate_process else "all")
    # NOTE: a storm webhook is tens to thousands of kilobytes; read in 256 KiB instead of waitress's
    # 8 KiB, the event loop passes over it (and the interpreter lock) a few times, not dozens: about
    # 10-25% more 100-alert webhooks a second (measured, alternating runs).
    server = create_server(create_app(rt, host), host=host, port=port, **WAITRESS)
    # NOTE: what start-up built (modules, schemas, mappers) lives as long as the process; frozen,
    # the collector's full passes skip it. Unfrozen, a full pass in a storm held the GIL 100-250 ms
    # (measured), stalling the request that triggered it and every other.
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
    rt.start_ticker()
    line = started(rt, host, port)
    log_json(log, line.pop("severity"), line.pop("message"), **line)
    stopped = _stop_on_signals()
    try:
        server.run()  # NOTE: waitress ends its loop on the SystemExit the handler raises
    finally:
        signalled = stopped.get("at", time.monotonic())
        _exit_by(max(signalled + rt.settings.drain_seconds, signalled + 5.0) + EXIT_GRACE_SECONDS)
        server.close()
        drain_before_exit(rt, signalled + rt.settings.drain_seconds)
        rt.stop()


def started(rt: Runtime, host: str, port: int) -> dict[str, Any]:
    """The start-up line: where to look, who may write, who gets paged."""
    router = rt.router
    url = f"http://{host}:{port}"
    s = rt.settings
    return {
        "severity": "INFO",
        "message": f"eventmgmt serving on {url}: dashboard {url}/, webhooks {url}/ingest/<source>, metrics {url}/metrics",
        "home": str(s.home),
        "state": "PostgreSQL" if s.database_url else "SQLite",
        "writes": (
            "bearer token required"
            if s.ingest_token
            else "no token: webhooks from whoever reaches this port, dashboard actions from same-origin pages "
            "on this machine (set EVENTMGMT_INGEST_TOKEN)"
        ),
        "reads": "bearer token required" if s.read_token else "open",
        "receivers": sorted(router.receivers) if router is not None else [],
        "group_wait_s": router.group_wait.total_seconds() if router is not None else None,
        "max_backlog": s.max_backlog,
        "correlation": (
            f"own process, pid {rt.drainer.pid}" if isinstance(rt.drainer, CorrelationProcess) else "in this process"
        ),
    }


def _stop_on_signals() -> dict[str, float]:
    """SIGTERM and SIGINT end `serve` once; a second signal acts as if none was handled."""
    stopped: dict[str, float] = {}

    def handler(signum: int, _frame: Any) -> None:
        stopped["at"] = time.monotonic()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        log_json(log, "INFO", f"{signal.Signals(signum).name}: stopping")
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stopped


def _exit_by(deadline: float) -> None:
    """End the process at `deadline` (time.monotonic()) if it is still here: what route had not sent
    is owed in the state store and sent after the next start, as after a crash."""

    def watchdog() -> None:
        time.sleep(max(0.0, deadline - time.monotonic()))
        log_json(log, "ERROR", "not stopped by the drain deadline and its grace: exiting now")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(1)

    threading.Thread(target=watchdog, name="eventmgmt-exit", daemon=True).start()


def drain_before_exit(rt: Runtime, deadline: float) -> None:
    # NOTE: correlation stops after the delivery in hand (what is still queued is durable and drained
    # after the next start), so route's drain sees every incident stored before the exit.
    rt.drainer.close(max(0.0, deadline - time.monotonic()))
    worker = rt.route_worker
    if worker is None or rt.router is None:
        return
    started_at = time.monotonic()
    # NOTE: a first page held back by the group wait would otherwise go out only a group wait after
    # the next start, or never if there is none: send them now, the oldest first, while the worker
    # routes what is queued (paging at once from here on).
    held = rt.router.release_all(deadline)
    drained = worker.close(max(0.0, deadline - time.monotonic()))
    message = "route drained" if drained else "route not drained by the deadline: the rest is sent after the next start"
    log_json(log, "INFO", message, seconds=round(time.monotonic() - started_at, 2), held_first_pages=held)
