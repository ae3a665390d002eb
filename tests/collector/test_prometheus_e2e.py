"""End to end with real parts: Prometheus (Debian package) scrapes the Triton simulator with the
mission's rule loaded; its Alertmanager (Debian package) posts to our ingest; the collector queries
the same Prometheus. Both paths must end in one high-error-rate incident in the embedded runtime."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import yaml

from eventmgmt.clock import utcnow
from eventmgmt.collector import CollectorConfig, Rule, run_once
from eventmgmt.collector.service import prometheus_client_for
from eventmgmt.collector.state import CollectorState
from eventmgmt.simulator import TritonSimulator
from eventmgmt.simulator import serve as serve_metrics
from eventmgmt.simulator.metrics import Target
from tests.support.incidents import wait_drained
from tests.support.procs import alertmanager, prometheus
from tests.support.serve import serve

POD = "triton-resnet50-68kxfnbbb2-wbq4j"
# The mission's example rule; `for: 5m` shortened for the test, the rate window too.
RULE = {
    "alert": "TritonHighErrorRate",
    "expr": "rate(nv_inference_request_failure[15s]) > 0.01",
    "for": "3s",
    "labels": {"severity": "critical"},
    "annotations": {"summary": "Triton error rate above 0.01/s"},
}


def until(what, timeout: float = 60.0, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def test_alertmanager_and_collector_paths_end_in_one_incident(tmp_path):
    sim = TritonSimulator([Target(model="resnet50", pod=POD, namespace="inference")], "healthy")
    metrics, _ = serve_metrics(sim)
    scrape = [
        {
            "job_name": "triton",
            "static_configs": [
                {
                    "targets": [f"127.0.0.1:{metrics.server_address[1]}"],
                    "labels": {"pod": POD, "namespace": "inference"},
                }
            ],
        }
    ]
    home = tmp_path / "home"
    home.mkdir()
    try:
        with (
            serve(home, {"EVENTMGMT_INGEST_TOKEN": "t0ken"}) as api,
            alertmanager(tmp_path / "am", api + "/ingest/alertmanager", token="t0ken") as am_url,
            prometheus(tmp_path / "prom", scrape, [RULE], alertmanager=am_url.removeprefix("http://")) as prom_url,
        ):
            until(lambda: httpx.get(prom_url + "/api/v1/query", params={"query": "up"}).json()["data"]["result"])
            sim.set_scenario("error_spike")
            # Path 1: Prometheus fires the rule, Alertmanager posts its webhook to ingest
            incident = until(
                lambda: next(
                    (
                        i
                        for i in httpx.get(api + "/api/incidents").json()["incidents"]
                        if i["root_kind"] == "high_error_rate"
                    ),
                    None,
                ),
                timeout=90,
            )
            assert incident["resources"]["models"] == ["resnet50"] and incident["severity"] == "critical"
            # Path 2: the collector evaluates against the same Prometheus and its events join it
            prom = prometheus_client_for(prom_url)
            cfg = CollectorConfig(
                kubernetes=False,
                rules=[
                    Rule(
                        name="TritonHighErrorRate",
                        severity="critical",
                        expr="sum by (model, version, pod, namespace) (rate(nv_inference_request_failure[15s])) > 0.01",
                        **{"for": timedelta(0)},
                    )
                ],
            )
            result = run_once(utcnow(), cfg, CollectorState(), prom, None)
            assert [e.signal for e in result.events] == ["TritonHighErrorRate"] and not result.errors
            ev = result.events[0]
            assert ev.resources.model == "resnet50" and ev.resources.pod == POD
            r = httpx.post(
                api + "/ingest/cloudevent",
                headers={"Authorization": "Bearer t0ken"},
                json={
                    "specversion": "1.0",
                    "id": ev.id,
                    "source": "//collector",
                    "type": ev.signal,
                    "data": {
                        "summary": ev.summary,
                        "pod": POD,
                        "namespace": "inference",
                        "model": "resnet50",
                        "labels": {"class": "alert", "severity": "critical"},
                    },
                },
            )
            assert r.status_code == 202
            with httpx.Client(base_url=api, timeout=30) as http:
                wait_drained(http)
            detail = httpx.get(api + f"/api/incidents/{incident['id']}").json()
            sources = {e["source"] for e in detail["events"]}
            assert {"alertmanager", "cloudevent"} <= sources
            assert all(e["kind"] == "high_error_rate" for e in detail["events"])
            # Path 3: an embedded runtime whose scheduled collector reads that Prometheus by itself
            conf = tmp_path / "collector.yaml"
            conf.write_text(
                yaml.safe_dump(
                    {
                        "collector": {
                            "kubernetes": False,
                            "rules": [
                                {
                                    "name": "TritonHighErrorRate",
                                    "severity": "critical",
                                    "for": "2s",
                                    "expr": "sum by (model, version, pod, namespace) (rate(nv_inference_request_failure[15s])) > 0.01",
                                }
                            ],
                        }
                    }
                )
            )
            home2 = tmp_path / "home2"
            home2.mkdir()
            env = {"EVENTMGMT_PROMETHEUS_URL": prom_url, "EVENTMGMT_COLLECT_EVERY": "1", "EVENTMGMT_CONFIG": str(conf)}
            with serve(home2, env) as api2:
                inc2 = until(
                    lambda: next(
                        (
                            i
                            for i in httpx.get(api2 + "/api/incidents").json()["incidents"]
                            if i["root_kind"] == "high_error_rate"
                        ),
                        None,
                    ),
                    timeout=60,
                )
                events = httpx.get(api2 + f"/api/incidents/{inc2['id']}").json()["events"]
                assert {e["source"] for e in events} == {"collector"}
                assert events[0]["resources"]["pod"] == POD and events[0]["started_at"]
                sim.set_scenario("healthy")  # the rate falls back: the collector emits the resolution
                until(
                    lambda: any(
                        e["status"] == "resolved"
                        for e in httpx.get(api2 + f"/api/incidents/{inc2['id']}").json()["events"]
                    ),
                    timeout=60,
                )
    finally:
        metrics.shutdown()


def test_collector_reports_an_unreachable_prometheus_without_crashing():
    from tests.support.serve import free_port

    prom = prometheus_client_for(f"http://127.0.0.1:{free_port()}", timeout=2)
    result = run_once(utcnow(), CollectorConfig(kubernetes=False), CollectorState(), prom, None)
    assert "prometheus" in result.errors
    assert [e.signal for e in result.events] == ["CollectorError"]
