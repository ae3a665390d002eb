"""A Triton and DCGM metrics simulator for demos and tests."""

from .metrics import SCENARIOS, TritonSimulator
from .server import serve

__all__ = ["SCENARIOS", "TritonSimulator", "serve"]
