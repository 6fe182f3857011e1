# hybridrec — the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
MANAGE := $(PY) manage.py
DEMO_DIR ?= demo
DEMO_USERS ?= 10000
DEMO_ITEMS ?= 2000
HOST ?= 127.0.0.1
PORT ?= 8000
# When make started: the demo logs its time to first answer from here.
STARTED_AT := $(shell date +%s.%N)
# The demo's own database, media and artifact root, so it never touches your registry.
DEMO_ENV = DATABASE_URL=sqlite:///$(abspath $(DEMO_DIR))/db.sqlite3 MEDIA_ROOT=$(abspath $(DEMO_DIR))/media \
	HYBRIDREC_ARTIFACT_ROOTS=$(abspath $(DEMO_DIR))/artifacts
# No byte-compiling of every installed file (imports compile what they use). pip's output becomes
# one progress line per package (deploy/pip-progress.awk), which also drops the warnings a pip
# config that lists index folders missing on this machine prints twice per package.
# Tests that start servers, a browser, Spark or an S3 API: `make test-slow` runs them.
SLOW_SUITES = slow or gunicorn or browser or multinode or spark or schemathesis or attack
PIP_INSTALL = $(PY) -m pip install --no-compile --disable-pip-version-check --progress-bar off
PIP_FILTER = 2>&1 | awk -f deploy/pip-progress.awk

.PHONY: install install-dev demo demo-data demo-reset-password test test-slow lint format serve worker bench bench-quick bench-serve soak attack clean-demo

$(PY):
	@echo "Creating $(VENV) and installing the requirements: about two minutes on a fresh machine"
	@$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(PY)
	@echo "Installing the runtime requirements (requirements.txt)"
	@$(PIP_INSTALL) -r requirements.txt $(PIP_FILTER)
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(PY)
	@echo "Installing the runtime and development requirements (requirements-dev.txt)"
	@$(PIP_INSTALL) -r requirements-dev.txt $(PIP_FILTER)
	@touch $@ $(VENV)/.runtime

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## demo: install, then in DEMO_DIR make demo data, train, evaluate and activate two CF versions and a CB
## one, print a login, a token and curl lines, and serve the API and admin (its own database and media).
demo: demo-data
	@$(DEMO_ENV) HYBRIDREC_STARTED_AT=$(STARTED_AT) COLLECTSTATIC=0 $(MAKE) --no-print-directory serve

# The static files are collected in the background while the demo trains (two cores, two jobs).
demo-data: install
	@mkdir -p $(DEMO_DIR)
	@echo "Demo: its own database, media and artifacts in $(DEMO_DIR)/ (DEMO_DIR); your db.sqlite3 and media/ are untouched."
	@$(MANAGE) collectstatic --noinput -v0 > $(DEMO_DIR)/collectstatic.log 2>&1 & collecting=$$!; \
	{ $(DEMO_ENV) $(MANAGE) migrate --noinput -v0 \
	  && $(DEMO_ENV) $(MANAGE) demo_setup $(DEMO_DIR)/data --users $(DEMO_USERS) --items $(DEMO_ITEMS) \
	  && $(DEMO_ENV) $(MANAGE) demo_user --base-url http://$(HOST):$(PORT) --password-file $(DEMO_DIR)/admin-password; }; \
	status=$$?; wait $$collecting || { cat $(DEMO_DIR)/collectstatic.log; exit 1; }; exit $$status

## demo-reset-password: a new password for the demo's superuser.
demo-reset-password: install
	@$(DEMO_ENV) $(MANAGE) demo_user --reset-password --base-url http://$(HOST):$(PORT) --password-file $(DEMO_DIR)/admin-password

## serve: collect static files, then the API and admin under gunicorn (GUNICORN_WORKERS, GUNICORN_THREADS, GUNICORN_BIND).
serve: install
	@if [ "$${COLLECTSTATIC:-1}" != 0 ]; then $(MANAGE) collectstatic --noinput -v0; fi
	@echo "Serving http://$${GUNICORN_BIND:-$(HOST):$(PORT)}/ (Ctrl-C stops it)"
	@GUNICORN_BIND=$${GUNICORN_BIND:-$(HOST):$(PORT)} $(VENV)/bin/gunicorn -c hybridrec/gunicorn.conf.py

## worker: a Celery worker with the embedded beat that sweeps stuck versions (needs CELERY_BROKER_URL).
worker: install
	$(VENV)/bin/celery -A hybridrec worker --beat --loglevel=INFO

## test: install the dev requirements, lint (ruff, mypy), run the whole suite.
test: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -m "not ($(SLOW_SUITES))"

## test-slow: the suites that start servers, browsers, Spark or S3 (CI runs them after `make test`).
test-slow: install-dev
	$(PY) -m pytest -m "$(SLOW_SUITES)"

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: the benchmark suite (python -m bench); rewrites docs/BENCHMARKS.md and docs/bench/. One part: python -m bench --only load
bench: install-dev
	$(PY) -m bench

## bench-quick: every part at tiny sizes, under 2 minutes (results in bench/out/quick/, docs/ untouched).
bench-quick: install-dev
	$(PY) -m bench --quick

## bench-serve: the serving parts only (requests, memory, swap, scaling).
bench-serve: install-dev
	$(PY) -m bench --only requests,memory,swap,scaling

## soak: SOAK_SECONDS (300) of mixed traffic against gunicorn, an activation every 30 s; fails on 5xx or memory growth.
soak: install-dev
	SOAK_SECONDS=$${SOAK_SECONDS:-300} $(PY) bench/soak.py

## attack: the red-team run: every hostile family through its doors on gunicorn over a throwaway PostgreSQL database.
attack: install-dev
	$(PY) -m bench.redteam

clean-demo:
	rm -rf $(DEMO_DIR)
