# Two commands on a fresh machine: `make run` (embedded runtime) and `make test` (everything CI runs).
SHELL := /bin/bash
VENV := .venv
# The interpreter the venv is made with: the Cloud Functions runtime the bundles target (python312).
# PYTHON=/path/to/python3.12 overrides; otherwise python3.12 on PATH, else pyenv's newest 3.12.
PYTHON_VERSION := 3.12
ifndef PYTHON
PYTHON := $(shell for c in python$(PYTHON_VERSION) \
    "$$(pyenv root 2>/dev/null)/versions/$$(pyenv latest $(PYTHON_VERSION) 2>/dev/null)/bin/python$(PYTHON_VERSION)"; do \
    "$$c" -c '' >/dev/null 2>&1 && { echo "$$c"; break; }; done)
endif
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Named after the version, so a .venv of another one is checked (and made anew) on the next make.
STAMP := $(VENV)/.installed-py$(PYTHON_VERSION)
HOST ?= 127.0.0.1
PORT ?= 8080
# NOTE: bytecode is written (beside the sources, in git-ignored __pycache__ folders that infra/build.py
# leaves out of the functions), not switched off: without it every process compiled our ~120 modules
# again, 0.07 s of each start (each `serve`, its correlating process, each replay). A process started
# outside make with PYTHONDONTWRITEBYTECODE set still reads what make's runs wrote.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test lint typecheck outdated unit bench deps debs pg clean build run-emulator reliability

$(STAMP): requirements.txt shared/pyproject.toml
	@v="import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$(PYTHON_VERSION)'.split('.'))))"; \
	if [ -x $(PY) ] && ! $(PY) -c "$$v"; then echo "$(VENV) is not Python $(PYTHON_VERSION): making it anew"; rm -rf $(VENV); fi; \
	if [ ! -x $(PY) ]; then \
	  if [ -z "$(PYTHON)" ] || ! "$(PYTHON)" -c "$$v" 2>/dev/null; then \
	    echo "error: no Python $(PYTHON_VERSION) to make $(VENV) with (PYTHON='$(PYTHON)'; looked for python$(PYTHON_VERSION) on PATH, then in pyenv)." >&2; \
	    echo "  install it (pyenv install $(PYTHON_VERSION), or apt-get install python$(PYTHON_VERSION)-venv)" >&2; \
	    echo "  or name one: make PYTHON=/path/to/python$(PYTHON_VERSION) ..." >&2; exit 1; \
	  fi; \
	  echo "$(PYTHON) -m venv $(VENV)"; "$(PYTHON)" -m venv $(VENV); \
	fi
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e shared
	@# NOTE: our modules compiled once here, so a process started outside make (a replay, a benchmark)
	@# with PYTHONDONTWRITEBYTECODE set finds their bytecode too
	$(PY) -m compileall -q -j0 shared/eventmgmt
	touch $(STAMP)

deps: $(STAMP)

# Debian packages the integration tests need (Prometheus, Alertmanager, Go for the Pub/Sub fake).
DEBS := prometheus prometheus-alertmanager golang-go golang-google-cloud-dev chromium
debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

run: $(STAMP)
	$(VENV)/bin/eventmgmt serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check shared functions tests infra benchmarks
	$(VENV)/bin/ruff format --check shared functions tests infra benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy shared/eventmgmt

# The machine's PostgreSQL (127.0.0.1:5432, trust auth) must answer and hold the `test` database:
# started if it is stopped, the database created if it is missing.
pg:
	@pg_isready -q -h 127.0.0.1 -p 5432 || { command -v pg_ctlcluster >/dev/null && \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | tail -1) main start; } || true
	@psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null | grep -q 1 || \
	  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE test" 2>/dev/null || true

unit: $(STAMP) debs pg
	$(VENV)/bin/pytest -q tests

# Pins with newer releases on the package index, as warnings: exit 0 whatever it finds, and when the
# index does not answer (infra/outdated_pins.py). `make outdated STRICT=1` fails on a pin to move.
outdated: $(STAMP)
	$(PY) infra/outdated_pins.py $(if $(STRICT),--strict)

test: lint typecheck outdated unit

bench: $(STAMP) debs
	$(PY) -m benchmarks.run $(BENCH)
	$(PY) -m benchmarks.plots

# Disturbances, each checked for nothing lost, nothing duplicated, same incidents (docs/reliability.md).
reliability: $(STAMP) debs
	$(VENV)/bin/pytest -q tests/reliability tests/emulator tests/correlate/test_concurrency_pg.py \
	    tests/correlate/test_robustness.py tests/correlate/test_batches.py tests/route tests/archive tests/security \
	    tests/runtime/test_outbox_wiring.py tests/runtime/test_durable_queue.py

build: $(STAMP)
	$(PY) infra/build.py

# The emulator needs Go for the Pub/Sub fake, not Prometheus or Chromium.
run-emulator: $(STAMP)
	@$(MAKE) --no-print-directory debs DEBS="golang-go golang-google-cloud-dev"
	$(PY) -m eventmgmt.emulator.stack

clean:
	rm -rf $(VENV) .eventmgmt build
