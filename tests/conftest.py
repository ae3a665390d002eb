"""Suite-wide defaults."""

from __future__ import annotations

import os

# NOTE: the first page of an incident waits `routing.group_wait_seconds` (10 s by default) before it
# is sent. Tests about paging timing would each wait that long; they page at once unless they test
# the wait itself (tests/route/test_group_wait.py sets it), and servers they start inherit this.
os.environ.setdefault("EVENTMGMT_GROUP_WAIT_SECONDS", "0")
# NOTE: serve's own retention pass would age out test data dated by captures long past.
os.environ.setdefault("EVENTMGMT_RETENTION_EVERY", "0")
