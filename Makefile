# archplan — two commands set everything up on a fresh machine:
#   make run    install, migrate, load the bundled price snapshot, serve on http://127.0.0.1:8000
#   make test   install what the tests need (PostgreSQL, Chromium, validators) and run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
export ARCHPLAN_DATABASE_URL ?= sqlite:///$(CURDIR)/var/archplan.db
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

VENDOR_FILES := static/vendor/htmx/htmx.min.js static/vendor/pico/pico.min.css \
	static/vendor/chartjs/chart.umd.js static/vendor/mermaid/mermaid.min.js \
	static/vendor/swagger-ui/swagger-ui-bundle.js static/vendor/swagger-ui/swagger-ui.css

.PHONY: help setup run test system-deps assets validators migrate load-prices lint bench bench-load clean

help:
	@echo "make run     set up (venv, assets, migrations, bundled prices) and serve on http://$(HOST):$(PORT)"
	@echo "make setup   the installing half of 'make run'"
	@echo "make test    install test dependencies (PostgreSQL, Chromium, validators) and run every test"
	@echo "make bench   solver benchmarks; figures go to docs/benchmarks.md"

$(UV):
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.base-installed: $(UV) requirements/base.txt pyproject.toml
	[ -x $(PY) ] || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(PY) --require-hashes requirements/base.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	rm -f $(VENV)/.dev-installed
	touch $@

$(VENV)/.dev-installed: $(UV) requirements/dev.txt pyproject.toml
	[ -x $(PY) ] || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --python $(PY) --require-hashes requirements/dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	rm -f $(VENV)/.base-installed
	touch $@

# Validators with dependency sets of their own, each in its own environment.
.venv-checkov/.installed: $(UV) requirements/tools/checkov.txt
	[ -x .venv-checkov/bin/python ] || $(UV) venv --quiet --python $(PYTHON) .venv-checkov
	$(UV) pip sync --quiet --python .venv-checkov/bin/python --require-hashes requirements/tools/checkov.txt
	touch $@

.venv-airflow/.installed: $(UV) requirements/tools/airflow.txt
	[ -x .venv-airflow/bin/python ] || $(UV) venv --quiet --python $(PYTHON) .venv-airflow
	$(UV) pip sync --quiet --python .venv-airflow/bin/python --require-hashes requirements/tools/airflow.txt
	touch $@

validators: .venv-checkov/.installed .venv-airflow/.installed

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

assets: node_modules/.package-lock.json
	@mkdir -p static/vendor/htmx static/vendor/pico static/vendor/chartjs static/vendor/mermaid static/vendor/swagger-ui
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx/
	cp node_modules/@picocss/pico/css/pico.min.css static/vendor/pico/
	cp node_modules/chart.js/dist/chart.umd.js static/vendor/chartjs/
	cp node_modules/mermaid/dist/mermaid.min.js static/vendor/mermaid/
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css static/vendor/swagger-ui/

migrate:
	$(VENV)/bin/archplan db upgrade

load-prices:
	$(VENV)/bin/archplan pricing import --bundled --if-empty

setup: $(VENV)/.base-installed assets migrate load-prices

run: setup
	$(VENV)/bin/archplan serve --host $(HOST) --port $(PORT)

# System packages the tests use, installed only when missing (Debian).
system-deps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ! [ -x /usr/bin/chromium ]; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			postgresql chromium fonts-liberation >/dev/null; \
	fi

# Tests run in parallel (pytest-xdist, one process per core, at most 4); PYTEST_WORKERS=0 runs them in one.
PYTEST_WORKERS ?= auto
test: system-deps $(VENV)/.dev-installed assets validators
	$(VENV)/bin/pytest -p no:cacheprovider -n $(PYTEST_WORKERS) --maxprocesses 4 $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(VENV)/bin/ruff check app tests

bench: $(VENV)/.dev-installed
	$(PY) bench/solver.py --write docs/benchmarks.md

# Load while solves run: the app on a throw-away PostgreSQL server; figures go to docs/benchmarks.md.
bench-load: system-deps $(VENV)/.dev-installed
	$(PY) bench/load.py --write docs/benchmarks.md

clean:
	rm -rf $(VENV) .venv-checkov .venv-airflow .tools node_modules static/vendor var
