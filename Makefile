# hybridrec — the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
DEMO_DIR ?= demo
DEMO_USERS ?= 20000
DEMO_ITEMS ?= 2000
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-dev demo test lint format serve worker bench clean-demo

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## demo: install, migrate, make demo data, build and activate CF and CB bundles, list them.
demo: install
	$(MANAGE) migrate --noinput -v0
	$(MANAGE) make_demo_data $(DEMO_DIR)/data --users $(DEMO_USERS) --items $(DEMO_ITEMS)
	$(MANAGE) bundle_models --cf-artifacts $(DEMO_DIR)/data/cf --cb-artifacts $(DEMO_DIR)/data/cb --activate
	$(MANAGE) list_models

## test: install the dev requirements, lint, run the whole suite.
test: install-dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install-dev
	$(PY) bench/bundle_load.py

clean-demo:
	rm -rf $(DEMO_DIR)
