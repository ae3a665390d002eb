"""The real `kubernetes` client against a loopback server answering as the API server does."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubernetes import client

from eventmgmt.collector import CollectorConfig, run_once
from eventmgmt.collector.state import CollectorState
from tests.correlate.helpers import at

PODS = {
    "kind": "PodList",
    "apiVersion": "v1",
    "metadata": {"resourceVersion": "1"},
    "items": [
        {
            "metadata": {
                "name": "triton-llama-7c9d8f6b5d-x2x4z",
                "namespace": "serving",
                # NOTE: an owner its name does not give, so the workload read is the API's
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "llama-predictor-5d8b7c9f6",
                        "uid": "u1",
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "nodeName": "ip-10-0-1-17",
                "containers": [{"name": "triton", "image": "nvcr.io/nvidia/tritonserver"}],
            },
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {
                        "name": "triton",
                        "ready": False,
                        "restartCount": 4,
                        "image": "i",
                        "imageID": "",
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                        "lastState": {
                            "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-07T08:00:00Z"}
                        },
                    }
                ],
            },
        }
    ],
}
NODES = {
    "kind": "NodeList",
    "apiVersion": "v1",
    "metadata": {"resourceVersion": "1"},
    "items": [
        {
            "metadata": {"name": "ip-10-0-1-17"},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]},
        }
    ],
}


def test_real_client_reads_pods_and_nodes():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = {"/api/v1/pods": PODS, "/api/v1/nodes": NODES}.get(self.path.split("?")[0])
            data = json.dumps(body or {"kind": "Status", "code": 404}).encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conf = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
        core = client.CoreV1Api(client.ApiClient(conf))
        events = run_once(at(0), CollectorConfig(rules=[]), CollectorState(), None, core).events
    finally:
        server.shutdown()
    got = {(e.signal, e.resources.pod, e.resources.node) for e in events}
    pod, node = "triton-llama-7c9d8f6b5d-x2x4z", "ip-10-0-1-17"
    assert got == {
        ("ContainerOOMKilled", pod, node),
        ("CrashLoopBackOff", pod, node),
        ("KubePodNotReady", pod, node),
        ("KubeNodeNotReady", None, node),
        ("NodeUnschedulable", None, node),
    }
    assert {e.resources.deployment for e in events if e.resources.pod} == {"llama-predictor"}
    oom = next(e for e in events if e.signal == "ContainerOOMKilled")
    assert oom.occurred_at.isoformat().startswith("2026-11-07T08:00:00")
