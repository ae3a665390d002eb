"""Property tests: whatever arrives, parsers raise nothing but InputError and ingest answers 202 or 4xx."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventmgmt.config import default_config
from eventmgmt.errors import InputError
from eventmgmt.ingest import IngestService
from eventmgmt.sources import SOURCES, ParseContext, parse
from eventmgmt.transport import RecordingPublisher

CTX = ParseContext("fuzz", datetime(2026, 11, 20, tzinfo=UTC))
PAYLOADS = Path(__file__).parent / "payloads"
REAL = [json.loads(p.read_text()) for p in sorted(PAYLOADS.glob("*.json"))]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
KEYS = [
    "alerts",
    "status",
    "labels",
    "startsAt",
    "endsAt",
    "fingerprint",
    "metadata",
    "involvedObject",
    "regarding",
    "reason",
    "items",
    "kind",
    "apiVersion",
    "verb",
    "auditID",
    "stage",
    "objectRef",
    "log",
    "kubernetes",
    "specversion",
    "id",
    "source",
    "type",
    "data",
    "time",
    "eventTime",
    "lastTimestamp",
    "count",
    "requestObject",
    "series",
    "note",
]
shaped = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.sampled_from(KEYS), children, max_size=6)
    ),
    max_leaves=30,
)


def mutate(value, path_choice: int, replacement):
    """Replace one node of a real payload, so the fuzzer explores near-valid inputs too."""
    nodes = []

    def walk(x, parent, key):
        nodes.append((parent, key))
        if isinstance(x, dict):
            for k, v in x.items():
                walk(v, x, k)
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, x, i)

    value = json.loads(json.dumps(value))
    walk(value, None, None)
    parent, key = nodes[path_choice % len(nodes)]
    if parent is None:
        return replacement
    parent[key] = replacement
    return value


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(source=st.sampled_from(SOURCES), body=st.one_of(json_values, shaped))
def test_parsers_raise_only_input_errors(source, body):
    try:
        parse(source, body, CTX)
    except InputError as err:
        assert 400 <= err.status < 500 and err.message


@FUZZ
@given(source=st.sampled_from(SOURCES), base=st.sampled_from(REAL), where=st.integers(0, 10_000), new=json_values)
def test_near_valid_payloads(source, base, where, new):
    try:
        parse(source, mutate(base, where, new), CTX)
    except InputError as err:
        assert 400 <= err.status < 500


@FUZZ
@given(
    body=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
    source=st.one_of(st.none(), st.sampled_from([*SOURCES, "bogus"])),
    ctype=st.sampled_from(["application/json", "text/plain", "", "application/cloudevents+json"]),
)
def test_service_answers_only_202_or_4xx(body, source, ctype):
    svc = IngestService(default_config(), RecordingPublisher(), lambda: CTX.received_at)
    resp = svc.handle(source, {"content-type": ctype} if ctype else {}, body)
    assert resp.status == 202 or 400 <= resp.status < 500
    if resp.status != 202:
        assert resp.body["error"]
