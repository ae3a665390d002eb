"""The folder list is the architecture: route and archive consume correlated messages and need
nothing of correlate or enrich (so their function bundles stay small and their changes local)."""

from __future__ import annotations

import json
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


def test_the_store_knows_no_stage_and_creates_the_tables_of_those_imported(tmp_path):
    """The store is the lowest floor: it loads no stage's module (a stage's tables register on its
    Base by being imported), and `ensure_schema` still creates every table of the stages loaded."""
    code = (
        "import json, sys\n"
        "from sqlalchemy import inspect\n"
        "from eventmgmt.store import ensure_schema, make_engine\n"
        f"engine = make_engine('sqlite:///{tmp_path}/a.db')\n"
        "ensure_schema(engine)\n"
        "loaded = sorted(m for m in sys.modules if m.startswith(('eventmgmt.route', 'eventmgmt.dashboard')))\n"
        "before = set(inspect(engine).get_table_names())\n"
        "import eventmgmt.route.ledger, eventmgmt.dashboard.windows\n"
        "ensure_schema(engine)\n"
        "added = set(inspect(engine).get_table_names()) - before\n"
        "print(json.dumps([loaded, sorted(before), sorted(added)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded, before, added = json.loads(out)
    assert loaded == [], f"the store loads {loaded}"
    assert {"events", "incidents"} <= set(before) and "route_ledger" not in before
    assert {"route_ledger", "route_pending", "maintenance_windows"} <= set(added)


def test_a_runtime_that_serves_no_http_loads_no_web_framework(tmp_path):
    """The correlating process builds the whole pipeline but answers no request: Flask, werkzeug and
    jinja (about 20 MiB a process) stay out of it."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from eventmgmt.settings import Settings\n"
        "from eventmgmt.runtime.app import build_runtime\n"
        "from eventmgmt.runtime import correlation_process, serving\n"
        f"rt = build_runtime(Settings(home=Path({str(tmp_path)!r}), correlate_process=False), role='all')\n"
        "rt.stop()\n"
        "web = sorted({m.split('.')[0] for m in sys.modules} & {'flask', 'werkzeug', 'jinja2', 'waitress'})\n"
        "print(','.join(web))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"loads {out.stdout.strip()}"
