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

.PHONY: install install-dev demo demo-data test lint format serve worker bench bench-serve soak clean-demo

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

## demo: install, migrate, make demo data, train, build and activate CF and CB bundles, serve the API.
demo: demo-data serve

demo-data: install
	$(MANAGE) migrate --noinput -v0
	$(MANAGE) make_demo_data $(DEMO_DIR)/data --users $(DEMO_USERS) --items $(DEMO_ITEMS)
	$(MANAGE) train_models --interactions $(DEMO_DIR)/data/interactions.csv --items $(DEMO_DIR)/data/items.csv \
		--out $(DEMO_DIR)/run
	$(MANAGE) bundle_models --cf-artifacts $(DEMO_DIR)/run/cf --cb-artifacts $(DEMO_DIR)/run/cb --activate
	$(MANAGE) list_models
	$(MANAGE) demo_user --base-url http://$(HOST):$(PORT)

## serve: the API and admin under gunicorn (GUNICORN_WORKERS, GUNICORN_THREADS, GUNICORN_BIND).
serve: install
	GUNICORN_BIND=$${GUNICORN_BIND:-$(HOST):$(PORT)} $(VENV)/bin/gunicorn -c hybridrec/gunicorn.conf.py

## worker: a Celery worker with the embedded beat that sweeps stuck versions (needs CELERY_BROKER_URL).
worker: install
	$(VENV)/bin/celery -A hybridrec worker --beat --loglevel=INFO

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
	$(PY) bench/serve.py

bench-serve: install-dev
	$(PY) bench/serve.py

## soak: SOAK_SECONDS (300) of mixed traffic against gunicorn, an activation every 30 s; fails on 5xx or memory growth.
soak: install-dev
	SOAK_SECONDS=$${SOAK_SECONDS:-300} $(PY) bench/soak.py

clean-demo:
	rm -rf $(DEMO_DIR)
