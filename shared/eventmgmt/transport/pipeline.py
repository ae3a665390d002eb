"""The pipeline, declared once: the topics, which stage each topic triggers, what the stage publishes,
and whether its subscription delivers in order (per cluster, the ordering key). The embedded runtime,
the Pub/Sub layout, the emulator stack and the Terraform tests are built or checked from it."""

from __future__ import annotations

from dataclasses import dataclass

RAW = "events-raw"
ENRICHED = "events-enriched"
CORRELATED = "events-correlated"
TOPICS = (RAW, ENRICHED, CORRELATED)


@dataclass(frozen=True)
class Stage:
    name: str
    topic: str  # what triggers it
    publishes: str | None
    ordered: bool


STAGES = (
    # NOTE: enrich learns topology and correlate joins in event order, so their subscriptions are
    # ordered; route and archive are idempotent on incident versions and event ids.
    Stage("enrich", RAW, ENRICHED, ordered=True),
    Stage("correlate", ENRICHED, CORRELATED, ordered=True),
    Stage("route", CORRELATED, None, ordered=False),
    Stage("archive", CORRELATED, None, ordered=False),
)
BY_NAME = {s.name: s for s in STAGES}


def subscribers(topic: str) -> list[str]:
    """The stages a topic triggers, in pipeline order."""
    return [s.name for s in STAGES if s.topic == topic]
