"""Handing freed heap back to the OS after a large delivery: glibc keeps freed arenas mapped, so a
20,000-alert webhook would otherwise leave the process hundreds of MB larger for good."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def trim() -> None:
    fn = _malloc_trim()
    if fn is not None:
        fn(0)
