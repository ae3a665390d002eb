"""Starts the local emulator stack: pstest, every function under functions-framework in its own
process, the push bridge, and the schedules (collector, retention, correlate tick, route outbox)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..transport import DEAD_LETTER_SUFFIX
from ..transport.pipeline import BY_NAME, STAGES
from .bridge import Bridge, Route
from .push import WARM_START_ENV

ROOT = Path(__file__).resolve().parents[3]
PSTEST_SRC = ROOT / "infra" / "pstest" / "main.go"
PSTEST_BIN = ROOT / "build" / "pstest"

# function name -> (target, signature type, topic it is triggered by)
FUNCTIONS: dict[str, tuple[str, str, str | None]] = {
    "ingest": ("ingest", "http", None),
    **{s.name: (s.name, "cloudevent", s.topic) for s in STAGES},
    "correlate-tick": ("correlate_tick", "http", None),
    "route-flush": ("route_flush", "http", None),
    "collector": ("collect", "http", None),
    "retention": ("retention", "http", None),
}
# The HTTP target each Pub/Sub-triggered function has for the bridge's batched pushes (push.py).
BATCH_TARGETS = {
    "enrich": "enrich_batch",
    "correlate": "correlate_batch",
    "route": "route_batch",
    "archive": "archive_batch",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_pstest() -> Path:
    """Compile Google's Pub/Sub fake from Debian's golang-google-cloud-dev (GOPATH mode, about 5 s)."""
    if PSTEST_BIN.exists() and PSTEST_BIN.stat().st_mtime >= PSTEST_SRC.stat().st_mtime:
        return PSTEST_BIN
    PSTEST_BIN.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GOPATH": "/usr/share/gocode",
        "GO111MODULE": "off",
        "GOCACHE": str(ROOT / "build" / "gocache"),
    }
    subprocess.run(["go", "build", "-o", str(PSTEST_BIN), str(PSTEST_SRC)], env=env, check=True, cwd=ROOT)
    return PSTEST_BIN


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port}")


@dataclass
class Stack:
    home: Path
    project: str = "local-emulator"
    database_url: str | None = None
    functions: list[str] = field(default_factory=lambda: ["ingest", "enrich", "correlate", "route", "archive"])
    extra_env: dict[str, str] = field(default_factory=dict)
    schedules: dict[str, float] = field(default_factory=dict)  # function -> seconds between calls
    max_attempts: int = 5
    backoff: float = 1.0
    ack_deadline: int = 60  # seconds; pstest accepts 10 at least
    # Messages a push (and events they hold, at most) to a function's batch target; 1 pushes one
    # message a request to its CloudEvent target, as Eventarc does.
    push_batch: int = 50
    push_events: int = 2000
    push_concurrency: int = 2  # pushes in flight to an unordered subscription's function
    # `eventmgmt serve --dashboard-only` on the stack's database and Pub/Sub, at ports["dashboard"]
    # (a free port unless given): the board, the read API, and acks published to events-correlated.
    dashboard: bool = False
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    pstest: subprocess.Popen | None = None
    emulator_host: str = ""
    bridge: Bridge | None = None
    routes: list[Route] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PUBSUB_EMULATOR_HOST": self.emulator_host,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "EVENTMGMT_TRANSPORT": "pubsub",
            "EVENTMGMT_HOME": str(self.home),
            "EVENTMGMT_DATABASE_URL": self.database_url or f"sqlite:///{self.home / 'state.db'}",
            WARM_START_ENV: "1",
            **self.extra_env,
        }

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self) -> Stack:
        self.home.mkdir(parents=True, exist_ok=True)
        binary = build_pstest()
        self.pstest = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.pstest.stdout is not None
        self.emulator_host = self.pstest.stdout.readline().strip()
        os.environ["PUBSUB_EMULATOR_HOST"] = self.emulator_host  # for this process's own clients
        from ..transport.pubsub import ensure_layout

        subs = ensure_layout(self.project, ack_deadline=self.ack_deadline)
        for name in self.functions:
            self.start_function(name)
        routes = []
        for name in self.functions:
            _, _, topic = FUNCTIONS[name]
            if topic:
                dl = f"projects/{self.project}/topics/{topic}{DEAD_LETTER_SUFFIX}"
                ordered = BY_NAME[name].ordered
                routes.append(
                    Route(
                        subs[name],
                        topic,
                        self.url(name),
                        dl,
                        ordered=ordered,
                        batch=self.push_batch if name in BATCH_TARGETS else 1,
                        batch_events=self.push_events,
                        concurrency=1 if ordered else self.push_concurrency,
                    )
                )
        self.routes = routes
        self.bridge = Bridge(self.project, routes, max_attempts=self.max_attempts, backoff=self.backoff)
        self.bridge.start()
        if self.dashboard:
            self.start_dashboard()
        for name, every in self.schedules.items():
            threading.Thread(target=self._schedule, args=(name, every), daemon=True, name=f"schedule-{name}").start()
        return self

    def start_function(self, name: str) -> None:
        target, signature, _ = FUNCTIONS[name]
        if self.push_batch > 1 and name in BATCH_TARGETS:
            target, signature = BATCH_TARGETS[name], "http"
        folder = name.split("-")[0]
        port = self._port(name)
        argv = [
            str(Path(sys.executable).parent / "functions-framework"),
            "--target",
            target,
            "--source",
            str(ROOT / "functions" / folder / "main.py"),
            "--signature-type",
            signature,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        self._launch(name, argv, port)

    def start_dashboard(self) -> None:
        port = self._port("dashboard")
        argv = [sys.executable, "-m", "eventmgmt.cli", "serve", "--dashboard-only", "--host", "127.0.0.1"]
        self._launch("dashboard", [*argv, "--port", str(port)], port)

    def _port(self, name: str) -> int:
        port = self.ports.get(name) or free_port()
        self.ports[name] = port
        return port

    def _launch(self, name: str, argv: list[str], port: int) -> None:
        """Starts one process of the stack, logging to `<home>/<name>.log`, and waits for its port."""
        log = (self.home / f"{name}.log").open("a")
        proc = subprocess.Popen(
            argv,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            # NOTE: functions-framework runs gunicorn workers; a process group lets us kill them all,
            # as a crashed instance takes its workers with it.
            start_new_session=True,
        )
        self.procs[name] = proc
        wait_port(port, proc)

    def kill(self, name: str) -> None:
        """SIGKILL the function's whole process group: a crash, mid-request if one is in flight."""
        proc = self.procs.pop(name)
        _signal_group(proc, signal.SIGKILL)
        proc.wait(10)

    def restart(self, name: str) -> None:
        if name in self.procs:
            self.kill(name)
        self.start_function(name)

    def restart_bridge(self, graceful: bool = True) -> int:
        """Replace the push bridge by a new one (a new subscriber). Graceful hands back what the old
        one had pulled; otherwise it is abandoned mid-batch, as a crash leaves it. Returns how many
        messages the old one had outstanding."""
        assert self.bridge is not None
        outstanding = self.bridge.stop(release=graceful)
        self.bridge = Bridge(self.project, self.routes, max_attempts=self.max_attempts, backoff=self.backoff)
        self.bridge.start(ordered_delay=0.0 if graceful or not outstanding else self.ack_deadline + 1.0)
        return outstanding

    def _schedule(self, name: str, every: float) -> None:
        while not self._stop.wait(every):
            try:
                httpx.post(self.url(name), timeout=120)
            except httpx.HTTPError:
                pass

    def wait_idle(self, quiet: float = 2.0, timeout: float = 120.0) -> None:
        """Until every subscription has been empty for `quiet` seconds."""
        assert self.bridge is not None
        deadline = time.monotonic() + timeout
        since = None
        while time.monotonic() < deadline:
            if all(e.is_set() for e in self.bridge.idle.values()):
                since = since or time.monotonic()
                if time.monotonic() - since >= quiet:
                    return
            else:
                since = None
            time.sleep(0.1)
        raise TimeoutError("the stack did not go idle")

    def stop(self) -> None:
        self._stop.set()
        if self.bridge is not None:
            self.bridge.stop()
        for name in list(self.procs):
            proc = self.procs.pop(name)
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
        if self.pstest is not None:
            self.pstest.terminate()
            self.pstest.wait(10)


def _fixed_port(variable: str, default: int) -> int:
    """The port `variable` names (or `default`); a taken one ends the start with the variable to change."""
    port = int(os.environ.get(variable, str(default)))
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise SystemExit(f"port {port} is taken: choose another with {variable}") from None
    return port


def main() -> None:
    """`make run-emulator`: the whole stack in the foreground until Ctrl-C."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # NOTE: not one line per push (issue 14)
    home = Path(os.environ.get("EVENTMGMT_HOME", ".eventmgmt-emulator")).resolve()
    schedules = {"correlate-tick": 15.0, "route-flush": 15.0, "retention": 3600.0}
    functions = ["ingest", "enrich", "correlate", "route", "archive", "correlate-tick", "route-flush", "retention"]
    if os.environ.get("EVENTMGMT_PROMETHEUS_URL"):
        functions.append("collector")
        schedules["collector"] = float(os.environ.get("EVENTMGMT_COLLECT_EVERY", "30"))
    # NOTE: the same ingest and dashboard addresses every start, so senders, scripts and bookmarks
    # keep pointing at them.
    port = _fixed_port("EVENTMGMT_EMULATOR_PORT", 8090)
    dashboard_port = _fixed_port("EVENTMGMT_EMULATOR_DASHBOARD_PORT", 8091)
    stack = Stack(
        home=home,
        functions=functions,
        schedules=schedules,
        ports={"ingest": port, "dashboard": dashboard_port},
        dashboard=True,
    )

    def stop_on(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # NOTE: SIGTERM too: the functions run in their own sessions

    signal.signal(signal.SIGTERM, stop_on)
    try:
        stack.start()
        print(
            f"Pub/Sub fake at {stack.emulator_host}; ingest at {stack.url('ingest')}/ingest; "
            f"dashboard at {stack.url('dashboard')}/ (API {stack.url('dashboard')}/api/incidents); logs in {home}",
            flush=True,
        )
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
