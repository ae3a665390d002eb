"""The folder list is the architecture: route and archive consume correlated messages and need
nothing of correlate or enrich (so their function bundles stay small and their changes local)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["eventmgmt.route", "eventmgmt.archive"])
def test_consumers_of_correlated_messages_import_no_correlate_or_enrich(package):
    code = (
        f"import sys, {package}\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('eventmgmt.correlate', 'eventmgmt.enrich')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{package} loads {out.stdout.strip()}"
