"""The enrich stage as a CloudEvent handler: decode, enrich, publish."""

from __future__ import annotations

from collections.abc import Callable

from cloudevents.http import CloudEvent

from ..config import Config, MaintenanceWindow
from ..model import Event
from ..transport import Publisher
from ..transport.messages import decode_events, publish_events
from ..transport.pipeline import ENRICHED
from .enricher import enrich
from .topology import TopologyGraph


class EnrichStage:
    def __init__(
        self,
        config: Config,
        publisher: Publisher,
        graph: TopologyGraph | None = None,
        windows: Callable[[], list[MaintenanceWindow]] | None = None,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self.graph = graph or TopologyGraph()
        self.windows = windows

    def handle(self, ce: CloudEvent) -> None:
        self.handle_batch([ce])

    def handle_batch(self, ces: list[CloudEvent]) -> None:
        """Messages published together (one webhook) are enriched and passed on together."""
        self.handle_events(decode_events("enrich", ces))

    def handle_events(self, events: list[Event]) -> None:
        windows = self.windows() if self.windows and events else None
        publish_events(self.publisher, ENRICHED, [enrich(ev, self.config, self.graph, windows) for ev in events])
