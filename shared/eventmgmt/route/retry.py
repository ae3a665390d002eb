"""Whether and when to retry a delivery: decided here, once, for every sink (as Alertmanager does)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx


class DeliveryError(Exception):
    """A delivery that failed for good (4xx other than 429) or ran out of attempts."""

    def __init__(self, message: str, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


@dataclass
class Retrier:
    max_attempts: int = 5
    base_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep)

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = response.headers.get("retry-after")
            if after:
                try:
                    return min(float(after), self.max_backoff_seconds)
                except ValueError:
                    pass
        return min(self.base_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)

    def send(self, do: Callable[[], httpx.Response], what: str) -> httpx.Response:
        """Calls `do` until a 2xx; retries 429, 5xx and connection errors with backoff; gives up at once
        on any other status. Raises DeliveryError (retryable tells the caller whether to redeliver)."""
        last: str = ""
        status: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            response: httpx.Response | None = None
            try:
                response = do()
            except httpx.TransportError as err:
                last, status = f"{type(err).__name__}: {err}", None
            else:
                if response.is_success:
                    return response
                status = response.status_code
                last = f"HTTP {status}: {response.text[:300]}"
                if not retryable(status):
                    raise DeliveryError(f"{what}: {last}", status, retryable=False)
            if attempt < self.max_attempts:
                self.sleep(self.delay(attempt, response))
        raise DeliveryError(f"{what}: gave up after {self.max_attempts} attempts: {last}", status, retryable=True)
