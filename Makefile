# Front door of the county pipeline. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= $(CURDIR)/data
HOUSEHOLDS ?= 300
SEED ?= 42
# normal: the bureaus' usual shapes; high: every quirk the pipeline handles (multi-sheet, merged headers,
# .xls, 15-digit IDs, Excel serial dates, ...) plus files that must be rejected whole
MESSINESS ?= normal
# agreed: the roster in the layout agreed with the county; national: as the national monitoring system
# (全国防返贫监测信息系统) exports it (no income parts; see generator/datasets/national.py)
ROSTER_LAYOUT ?= agreed
# The county's calendar day (Asia/Shanghai) unless RUN_DATE=YYYY-MM-DD is given.
RUN_DATE ?= $(shell TZ=Asia/Shanghai date +%F)
PYTEST_ARGS ?=
# The installer itself is pinned too: a new uv may resolve the same files differently.
UV_VERSION := 0.13.9
# The Airflow pool bounding concurrent warehouse loads (the DAG's load task takes a slot).
export WAREHOUSE_LOAD_POOL ?= warehouse_loads
WAREHOUSE_LOAD_SLOTS ?= 2

export DATA_DIR
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DEFAULT_TIMEZONE := Asia/Shanghai
export GX_ANALYTICS_ENABLED := False
# A landing file is taken once unchanged this long (seconds) or when it has a .done marker.
export LANDING_STABLE_SECONDS ?= 10
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: help setup sample run test test-fast lint format bench bench-quick migrate migration expectations summary clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'
	@echo "Variables: DATA_DIR=$(DATA_DIR) WAREHOUSE_URL=$${WAREHOUSE_URL:-(SQLite under DATA_DIR)}"
	@echo "           RUN_DATE=$(RUN_DATE) HOUSEHOLDS=$(HOUSEHOLDS) SEED=$(SEED) ROSTER_LAYOUT=$(ROSTER_LAYOUT)"

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $@

setup: $(VENV)/.installed ## create the virtual environment with pinned dependencies

$(AIRFLOW_HOME)/.migrated: $(VENV)/.installed
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	$(BIN)/airflow pools set $(WAREHOUSE_LOAD_POOL) $(WAREHOUSE_LOAD_SLOTS) "concurrent warehouse loads" >> $(AIRFLOW_HOME)/db-migrate.log 2>&1
	touch $@

# --risk-scenarios: every warning rule's planted cases, and last income year's roster beside
# this year's, so that a first `make run` shows warnings, gaps and the income growth indicators
sample: setup ## generate a sample county into DATA_DIR (HOUSEHOLDS=, SEED=, RUN_DATE=, ROSTER_LAYOUT=)
	$(BIN)/python -m generator --data-dir $(DATA_DIR) --households $(HOUSEHOLDS) --seed $(SEED) \
	  --date $(RUN_DATE) --messiness $(MESSINESS) --roster-layout $(ROSTER_LAYOUT) --risk-scenarios

# A local HMAC secret for the person key, created once and never committed; production sets
# PERSON_KEY_SECRET or the Airflow connection county_person_key instead.
PERSON_KEY_FILE := $(AIRFLOW_HOME)/person-key.secret
$(PERSON_KEY_FILE):
	mkdir -p $(AIRFLOW_HOME)
	umask 077 && $(PYTHON) -c "import secrets; print(secrets.token_urlsafe(48))" > $@
	@echo "Created a local person-key secret in $@ (keep it: it keys every person in the warehouse)"

run: setup $(AIRFLOW_HOME)/.migrated $(PERSON_KEY_FILE) ## run the daily DAG end to end (on a sample county if DATA_DIR never held real files)
	@if $(BIN)/python -m transforms sample-allowed; then \
	  $(MAKE) --no-print-directory sample; \
	fi
	PERSON_KEY_SECRET=$${PERSON_KEY_SECRET:-$$(cat $(PERSON_KEY_FILE))} \
	  $(BIN)/airflow dags test county_daily $(RUN_DATE) > $(AIRFLOW_HOME)/last-run.log 2>&1 \
	  || (tail -n 60 $(AIRFLOW_HOME)/last-run.log; echo "DAG run failed; full log: $(AIRFLOW_HOME)/last-run.log"; exit 1)
	@echo "Airflow log of this run: $(AIRFLOW_HOME)/last-run.log"
	$(BIN)/python -m transforms summary

summary: setup ## print the summary of the latest run
	$(BIN)/python -m transforms summary

test: setup ## run the test suite (unit, DAG integrity, end-to-end on SQLite and PostgreSQL)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup ## run the tests without the slow end-to-end ones
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

lint: setup ## ruff check, ruff format --check, mypy and the import layers (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	PYTHONPATH=. $(BIN)/lint-imports

format: setup ## apply ruff's formatting and autofixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup ## benchmark every stage against the bare minimum (county scale and 10x; BENCH_ARGS=...)
	$(BIN)/python -m bench $(or $(BENCH_ARGS),--households 30000 --scale 1,10 --warehouse sqlite,postgres)

bench-quick: setup ## the same table in a few minutes: 10,000 households, SQLite, no 10x (BENCH_ARGS=...)
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

migrate: setup ## apply pending warehouse migrations to WAREHOUSE_URL (the DAG does it too)
	$(BIN)/python -m transforms migrate

migration: setup ## autogenerate a migration after changing the models or adding a contract (MESSAGE=...)
	@test -n "$(MESSAGE)" || (echo 'usage: make migration MESSAGE="add water bureau"'; exit 1)
	cd migrations && ../$(BIN)/alembic -c alembic.ini revision --autogenerate -m "$(MESSAGE)"
	$(BIN)/ruff check --fix -q migrations/versions && $(BIN)/ruff format -q migrations/versions

expectations: setup ## regenerate the GX expectation suites in expectations/ from contracts/
	$(BIN)/python -m transforms expectations

clean: ## remove generated data and the local Airflow home (keeps the venv)
	rm -rf $(DATA_DIR) $(AIRFLOW_HOME)
