"""Real Prometheus and Alertmanager (Debian packages) on free loopback ports in a temp dir."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.serve import free_port, stop

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"


def need(binary: str) -> None:
    if not shutil.which(binary):
        pytest.skip(f"{binary} is not installed (make debs installs the Debian package)")


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


@contextmanager
def process(args: list[str], ready_url: str, log: Path) -> Iterator[subprocess.Popen]:
    out = log.open("w")
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready_url, proc, log)
        yield proc
    finally:
        stop(proc)
        out.close()


@contextmanager
def prometheus(
    workdir: Path, scrape: list[dict], rules: list[dict], alertmanager: str | None = None, interval: str = "1s"
) -> Iterator[str]:
    need(PROMETHEUS)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (workdir / "rules.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "triton", "interval": interval, "rules": rules}]})
    )
    cfg = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(workdir / "rules.yml")],
        "scrape_configs": scrape,
    }
    if alertmanager:
        cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    url = f"http://127.0.0.1:{port}"
    args = [
        PROMETHEUS,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with process(args, url + "/-/ready", workdir / "prometheus.log"):
        yield url


@contextmanager
def alertmanager(
    workdir: Path,
    webhook_url: str,
    token: str | None = None,
    group_by: list[str] | None = None,
    group_wait: str = "1s",
    group_interval: str = "1s",
) -> Iterator[str]:
    """Alertmanager whose one route sends every group to `webhook_url` (group_by `...` unless
    `group_by` is given)."""
    need(ALERTMANAGER)
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    hook: dict = {"url": webhook_url, "send_resolved": True}
    if token:
        hook["http_config"] = {"authorization": {"type": "Bearer", "credentials": token}}
    cfg = {
        "route": {
            "receiver": "eventmgmt",
            "group_by": group_by or ["..."],
            "group_wait": group_wait,
            "group_interval": group_interval,
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "eventmgmt", "webhook_configs": [hook]}],
    }
    (workdir / "alertmanager.yml").write_text(yaml.safe_dump(cfg))
    url = f"http://127.0.0.1:{port}"
    args = [
        ALERTMANAGER,
        f"--config.file={workdir / 'alertmanager.yml'}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    with process(args, url + "/-/ready", workdir / "alertmanager.log"):
        yield url
