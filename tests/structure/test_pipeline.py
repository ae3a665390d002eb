"""The pipeline is declared once (transport/pipeline.py): no other module names a topic itself, so a
renamed or added topic cannot leave a runner wired the old way (issue 11)."""

from __future__ import annotations

import re
from pathlib import Path

from eventmgmt.transport.pipeline import STAGES, TOPICS, subscribers
from eventmgmt.transport.pubsub import SUBSCRIPTIONS

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "eventmgmt"
DECLARATION = PACKAGE / "transport" / "pipeline.py"


def test_no_module_but_the_declaration_spells_a_topic() -> None:
    spelled = re.compile("|".join(rf"""["']{re.escape(t)}["']""" for t in TOPICS))
    offenders = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != DECLARATION
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line)
    ]
    assert not offenders, offenders


def test_every_runner_subscribes_as_declared() -> None:
    assert SUBSCRIPTIONS == {t: subscribers(t) for t in TOPICS}
    assert {s.name for s in STAGES if s.topic in TOPICS} == {fn for fns in SUBSCRIPTIONS.values() for fn in fns}
    # each stage publishes to the topic that triggers the next, and the chain ends at events-correlated
    published = [s.publishes for s in STAGES if s.publishes]
    assert published == [t for t in TOPICS if t != TOPICS[0]]
