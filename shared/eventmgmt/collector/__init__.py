"""Collector: Triton and GPU metrics through Prometheus, state through the Kubernetes API."""

from .collect import RunResult, run_once
from .config import CollectorConfig, Rule, collector_config
from .service import Collector

__all__ = ["Collector", "CollectorConfig", "Rule", "RunResult", "collector_config", "run_once"]
