"""An operator's change (an acknowledgement, a resolution, a maintenance window's change record),
made in `serve`'s accepting process, handled once in the correlating process.

The accepting process queues each change durably and also sends it over the pipe to the child
(correlation_process.py): the pipe is immediate, even while the child drains a storm's backlog, but a
child that dies takes what is in its pipe with it (its threads can still hold the pipe open for a
moment after it is reported dead, so a send there does not fail). The queued copy reaches the same
child after the backlog, or the next child. Whichever copy comes first goes to route and archive;
the other is skipped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..incident import CorrelatedMessage
from ..transport.messages import decode_correlated, publish_messages

if TYPE_CHECKING:
    from cloudevents.http import CloudEvent

    from ..transport import Publisher

# NOTE: the durable queue's topic for these changes
OPERATOR_CHANGES = "operator-changes"
# NOTE: changes are an operator's clicks, a few a minute at most; this many cover hours of them
REMEMBER = 10_000

Key = tuple[str, str | None, str | None, int | None]


class OperatorChanges:
    def __init__(self, publisher: Publisher, before: Callable[[], None] | None = None) -> None:
        self.publisher = publisher
        # NOTE: run before a change is handed on (the maintenance windows are read again)
        self.before = before
        self._seen: dict[Key, None] = {}
        self._lock = threading.Lock()

    def handle(self, messages: list[CorrelatedMessage]) -> None:
        """The messages not handled before, to route and archive (the CORRELATED topic)."""
        with self._lock:
            fresh = [m for m in messages if self._first_time(m)]
        if not fresh:
            return
        if self.before is not None:
            self.before()
        publish_messages(self.publisher, fresh)

    def handle_encoded(self, ce: CloudEvent) -> None:
        self.handle(decode_correlated(ce, OPERATOR_CHANGES))

    def _first_time(self, m: CorrelatedMessage) -> bool:
        key = (
            m.event.id,
            m.incident_id,
            m.action.value if m.action else None,
            m.incident.version if m.incident else None,
        )
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > REMEMBER:
            del self._seen[next(iter(self._seen))]
        return True
