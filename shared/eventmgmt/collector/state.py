"""What the collector saw last run: pending and firing conditions, so it emits only changes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import fsspec


@dataclass
class Condition:
    signal: str
    labels: dict[str, str]
    since: datetime
    firing: bool = False
    stateful: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "labels": self.labels,
            "since": self.since.isoformat(),
            "firing": self.firing,
            "stateful": self.stateful,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Condition:
        return cls(d["signal"], d["labels"], datetime.fromisoformat(d["since"]), d["firing"], d.get("stateful", True))


@dataclass
class CollectorState:
    conditions: dict[str, Condition] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"conditions": {k: c.to_json() for k, c in self.conditions.items()}}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CollectorState:
        return cls({k: Condition.from_json(v) for k, v in d.get("conditions", {}).items()})


class StateFile:
    """The state as one JSON object at an fsspec URL (a local file, or gs:// for the function)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def load(self) -> CollectorState:
        try:
            with fsspec.open(self.url, "r") as f:
                return CollectorState.from_json(json.load(f))
        except FileNotFoundError:
            return CollectorState()

    def save(self, state: CollectorState) -> None:
        fs, path = fsspec.core.url_to_fs(self.url)
        parent = path.rsplit("/", 1)[0]
        if parent:
            fs.makedirs(parent, exist_ok=True)
        tmp = path + ".tmp"
        with fs.open(tmp, "w") as f:
            json.dump(state.to_json(), f)
        fs.mv(tmp, path)
