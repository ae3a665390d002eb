"""A throwaway PostgreSQL schema on the machine's server (127.0.0.1:5432, trust auth, database test),
and a private server a test may stop and restart."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

PG_URL = os.environ.get("EVENTMGMT_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def schema_url(schema: str) -> str:
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def unavailable(reason: str) -> None:
    """Skip a test whose PostgreSQL is missing on a developer's machine; fail it in CI (`CI=true`),
    where a silent skip would hide that the concurrency and restart guarantees went untested."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def pg_schema() -> Iterator[str]:
    """Yields a URL whose connections use a fresh schema; drops it afterwards. Skips without a server."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(text(f"CREATE SCHEMA {schema}"))
    except OperationalError as err:
        admin.dispose()
        unavailable(f"PostgreSQL not reachable at {PG_URL}: {err.__class__.__name__}")
    try:
        yield schema_url(schema)
    finally:
        with admin.connect() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def state_engine(backend: str, folder: Path) -> Iterator[Any]:
    """An engine on a fresh store with every table: an SQLite file in `folder` ("sqlite"), or a
    throwaway schema of the machine's PostgreSQL ("postgresql")."""
    from eventmgmt.store import ensure_schema, make_engine

    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{folder / 'state.db'}" if backend == "sqlite" else stack.enter_context(pg_schema())
        engine = make_engine(url)
        stack.callback(engine.dispose)
        ensure_schema(engine)
        yield engine


class PrivateServer:
    """A PostgreSQL server of the test's own (initdb into a temporary directory, its own port), so a
    test may stop and restart it without touching the machine's shared server."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(_bindir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            # NOTE: PostgreSQL refuses to run as root; the Debian package's user owns the server.
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", opts, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


def _bindir() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not versions:
        unavailable("PostgreSQL server binaries (initdb) not installed")
    return versions[-1].parent


@contextmanager
def private_server(port: int) -> Iterator[PrivateServer]:
    root = Path(tempfile.mkdtemp(prefix="eventmgmt-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PrivateServer(root, port)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def run_instances(url: str, worker: Callable[..., None], shares: list[list[Any]]) -> tuple[list[Any], list[Any]]:
    """Run `worker(url, share, barrier)` in one spawned process per share (correlate instances that
    start together at the barrier); once all exited 0, the stored event rows and the incidents that
    were not merged away."""
    import multiprocessing as mp

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from eventmgmt.store import make_engine
    from eventmgmt.store.tables import EventRow, IncidentRow

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(shares))
    procs = [ctx.Process(target=worker, args=(url, share, barrier)) for share in shares]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    engine = make_engine(url)
    try:
        with Session(engine) as s:
            rows = list(s.scalars(select(EventRow)))
            incidents = [i for i in s.scalars(select(IncidentRow)) if i.status != "merged"]
    finally:
        engine.dispose()
    return rows, incidents
