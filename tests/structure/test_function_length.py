"""One place for each decision (issue 11): no function in shared/eventmgmt runs over 50 lines, counted
from its `def` to its last line, docstring included (ast's end_lineno - lineno + 1), so that each does
one thing and can be read whole.

ALLOWED names the functions still over the limit while they wait to be split. The list only shrinks:
a function that is split must come off it, or the second test fails."""

from __future__ import annotations

import ast
from pathlib import Path

LIMIT = 50
REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "shared" / "eventmgmt"

# (module path from the repository root, function name) of each function still over LIMIT.
ALLOWED: frozenset[tuple[str, str]] = frozenset()


def _long_functions() -> dict[tuple[str, str], list[tuple[int, int]]]:
    """Every function and method over LIMIT lines: (module path, name) -> [(line, length), ...]."""
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50, f"found only {len(files)} modules under {PACKAGE}"
    found: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for path in files:
        module = path.relative_to(REPO).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > LIMIT:
                    found.setdefault((module, node.name), []).append((node.lineno, length))
    return found


def test_no_function_is_over_the_limit() -> None:
    too_long = sorted(
        f"{module}:{line} {name} ({length} lines)"
        for (module, name), places in _long_functions().items()
        if (module, name) not in ALLOWED
        for line, length in places
    )
    assert not too_long, f"functions over {LIMIT} lines (split them into helpers that each do one thing):\n" + (
        "\n".join(too_long)
    )


def test_allowed_functions_are_still_over_the_limit() -> None:
    """An entry whose function was split (or renamed, or moved) comes off ALLOWED."""
    stale = sorted(ALLOWED - _long_functions().keys())
    assert not stale, f"no longer over {LIMIT} lines, take them off ALLOWED: {stale}"
