"""Which regular expressions are safe to run on what senders write, decided from the pattern alone.

Python's `re` backtracks and has no time bound, and no linear-time engine is a dependency here, so
patterns that can backtrack badly are refused up front: a repeat inside a repeat (`(a+)+`), an
alternation inside a repeat (`(a|ab)*`), backreferences, more than a few unbounded repeats in a
row (`.*a.*a.*a` is cubic), and sequences of bounded ones that multiply to as much (`a?` forty
times is 2**40 ways to split a value, `a{0,64}` eight times 65**8, `(a|aa)` thirty times 2**30).
What is left runs in at most quadratic time in the length of the value, which the caller bounds
(enrich matches maintenance windows against at most MATCH_CLIP characters)."""

from __future__ import annotations

import importlib
import re
from typing import Any

# NOTE: the parser `re` itself uses (`re._parser` from Python 3.11, which the project requires;
# typeshed has no stubs for it, and `sre_parse` is deprecated).
c: Any = importlib.import_module("re._constants")
parser: Any = importlib.import_module("re._parser")

MAX_PATTERN = 256
LARGE_REPEAT = 64  # a bounded repeat above this counts as unbounded
MATCH_CLIP = 1024  # characters of a value a guarded pattern is matched against
# NOTE: the ways a pattern may split a value, multiplied over its variable repeats (an unbounded one
# counts MATCH_CLIP, `a{2,5}` 4) and alternations (one per branch): at most this many times the
# MATCH_CLIP ** 2 that two unbounded repeats make (MATCH_CLIP for a search).
WAYS_SLACK = 2

_REPEATS = {c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", c.MAX_REPEAT)}


def unsafe_reason(pattern: str, *, search: bool = False) -> str | None:
    """Why `pattern` could take too long on a hostile value, or None. A `search` (rather than a full
    match) already scans once, so it may hold one unbounded repeat fewer."""
    if len(pattern) > MAX_PATTERN:
        return f"longer than {MAX_PATTERN} characters"
    try:
        tree = parser.parse(pattern)
    except re.error as err:
        return f"not a regular expression: {err}"
    state = {"unbounded": 0, "ways": 1}
    reason = _walk(list(tree), False, state)
    limit = 1 if search else 2
    if reason is None and state["unbounded"] > limit:
        reason = f"more than {limit} unbounded repeats (like .* or +) can backtrack for a long time"
    if reason is None and state["ways"] > WAYS_SLACK * MATCH_CLIP**limit:
        reason = (
            "too many optional or variable parts in a row (like a? forty times, or a{0,64} eight times): "
            "they can split a value in so many ways that backtracking takes minutes"
        )
    return reason


def _walk(items: list[tuple[Any, Any]], inside: bool, state: dict[str, int]) -> str | None:
    """`inside` is true within a repeat that can run more than once."""
    for op, av in items:
        reason = None
        if op in _REPEATS:
            lo, hi, sub = av
            if hi == c.MAXREPEAT or hi > LARGE_REPEAT:
                state["unbounded"] += 1
            if hi != lo:
                state["ways"] *= min(hi - lo + 1, MATCH_CLIP)
            if inside and hi != lo:
                return "a repeat inside a repeat (like (a+)+) can backtrack exponentially"
            reason = _walk(list(sub), inside or hi > 1, state)
        elif op is c.BRANCH:
            if inside:
                return "an alternation inside a repeat (like (a|ab)*) can backtrack exponentially"
            state["ways"] *= max(1, len(av[1]))
            for branch in av[1]:
                reason = reason or _walk(list(branch), inside, state)
        elif op is c.SUBPATTERN:
            reason = _walk(list(av[3]), inside, state)
        elif op in (c.ASSERT, c.ASSERT_NOT):
            reason = _walk(list(av[1]), inside, state)
        elif op in (c.GROUPREF, c.GROUPREF_EXISTS):
            return "backreferences are not allowed"
        elif op is getattr(c, "ATOMIC_GROUP", None):
            reason = _walk(list(av), inside, state)
        if reason:
            return reason
    return None
