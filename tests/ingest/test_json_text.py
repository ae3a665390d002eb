"""jsontext.loads reads JSON as json.loads does: the same values, the same refusals."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventmgmt import jsontext

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5), max_leaves=40
)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0 are equal but not the same)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(values, st.booleans())
def test_what_json_writes_is_read_back_alike(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert same(jsontext.loads(text.encode()), json.loads(text))
    assert same(jsontext.loads(text), json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":NaN,"b":-Infinity}',  # json reads these; pydantic-core refuses them
        b'{"a":1e400,"b":-1e400,"c":1e-400}',
        b'{"a":123456789012345678901234567890,"b":-98765432109876543210}',
        b'{"a":"\\ud800 lone","b":"\\udfff"}',
        b'\xef\xbb\xbf{"a":1}',
        '{"a":"\u00e9"}'.encode("utf-16"),
        '{"a":"\u00e9"}'.encode("utf-32-le"),
        b"[" * 300 + b"]" * 300,  # deeper than pydantic-core reads (200)
        b'{"a":1,"a":2}',
        b'  {"a":"\\u0000"}\n',
    ],
)
def test_edge_cases_read_as_json_reads_them(text: bytes) -> None:
    assert same(jsontext.loads(text), json.loads(text))


@pytest.mark.parametrize(
    "text", [b'{"a":1}{"b":2}', b"", b"{", b'{"a":"\xff"}', b"[" * 5000 + b"]" * 5000, b"\x00", b"nul"]
)
def test_what_json_refuses_is_refused_with_its_error(text: bytes) -> None:
    with pytest.raises((ValueError, RecursionError)) as ours:
        jsontext.loads(text)
    with pytest.raises((ValueError, RecursionError)) as theirs:
        json.loads(text)
    assert type(ours.value) is type(theirs.value)
