"""Run the simulator: python -m eventmgmt.simulator --port 8002 --scenario error_spike."""

from __future__ import annotations

import argparse

from .metrics import SCENARIOS, Target, TritonSimulator
from .server import serve


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m eventmgmt.simulator")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8002)
    ap.add_argument("--scenario", default="healthy", choices=sorted(SCENARIOS))
    ap.add_argument("--models", default="resnet50,bert-large")
    args = ap.parse_args()
    targets = [
        Target(model=m, pod=f"triton-{m}-0", gpu_uuid=f"GPU-{i:08d}-0000-4000-8000-000000000000", gpu_index=str(i))
        for i, m in enumerate(args.models.split(","))
    ]
    server, thread = serve(TritonSimulator(targets, args.scenario), args.host, args.port)
    print(f"serving Triton/DCGM metrics on http://{args.host}:{server.server_address[1]}/metrics ({args.scenario})")
    thread.join()


if __name__ == "__main__":
    main()
