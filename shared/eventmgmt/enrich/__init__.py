"""Enrich: response matrix, topology, maintenance windows."""

from .enricher import enrich
from .maintenance import active_window
from .topology import TopologyGraph

__all__ = ["TopologyGraph", "active_window", "enrich"]
