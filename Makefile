# One task runner: the README and .ci/run use these targets verbatim.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv from PATH, else the copy pip installs on first use (a fresh machine has only python3).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen --no-sync
HOME_DIR := $(or $(CHURN_RETRAIN_HOME),$(or $(XDG_STATE_HOME),$(HOME)/.local/state)/churn-retrain)
MLFLOW_PORT ?= 5000
PREFECT_PORT ?= 4200

.PHONY: help install run test test-fast lint typecheck check bench mlflow-ui prefect-ui clean-state \
	status rollback simulate bench-decision promotion-lock

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.venv/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: .venv/.installed ## create .venv from the lock file (uv sync --frozen)

run: install ## retrain for this month on generated data (ARGS="--period 2026-01 --data PATH" to change)
	$(RUN) churn-retrain run $(ARGS)

test: install ## the whole test suite, real servers and real data included
	$(RUN) pytest $(PYTEST_ARGS)

test-fast: install ## unit tests only (no real-CSV training, no servers)
	$(RUN) pytest -m "not slow" $(PYTEST_ARGS)

lint: install ## ruff
	$(RUN) ruff check flows tasks tests benchmarks
	$(RUN) ruff format --check flows tasks tests benchmarks

typecheck: install ## mypy on flows/ and tasks/
	$(RUN) mypy

check: lint typecheck test ## everything CI runs

bench: install ## stage times and AUC of a retrain on the real Telco CSV
	$(RUN) python benchmarks/bench_retrain.py

bench-decision: install ## promotion rates of our rule vs point estimates, real Telco CSV (~5 min)
	$(RUN) python benchmarks/bench_decision.py $(ARGS)

status: install ## the champion, its scores and the promotion history
	$(RUN) churn-retrain status $(ARGS)

rollback: install ## move the champion back to the previous one (ARGS="--to 3" for a named version)
	$(RUN) churn-retrain rollback $(ARGS)

simulate: install ## a year of generated months with drift through the real flow, plotted
	$(RUN) churn-retrain simulate $(ARGS)

MODEL_NAME ?= $(or $(CHURN_RETRAIN_MODEL_NAME),telco-churn)
PROMOTION_LOCK := churn-retrain-promote-$(MODEL_NAME)
# Against PREFECT_API_URL; without one, the local Prefect database the CLI uses.
PREFECT_LOCAL := PREFECT_HOME="$(or $(PREFECT_HOME),$(HOME_DIR)/prefect)"
promotion-lock: install ## create the promotion lock (Prefect global concurrency limit, 1 slot)
	$(PREFECT_LOCAL) $(RUN) prefect gcl inspect $(PROMOTION_LOCK) >/dev/null 2>&1 \
		|| $(PREFECT_LOCAL) $(RUN) prefect gcl create $(PROMOTION_LOCK) --limit 1

mlflow-ui: install ## MLflow UI on the local state (http://127.0.0.1:$(MLFLOW_PORT))
	$(RUN) mlflow ui --backend-store-uri "sqlite:///$(HOME_DIR)/mlflow.db" \
		--host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1

prefect-ui: install ## Prefect server and UI on the local state (http://127.0.0.1:$(PREFECT_PORT))
	PREFECT_HOME="$(HOME_DIR)/prefect" $(RUN) prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

clean-state: ## delete the local state (MLflow store, registry, Prefect DB) under $(HOME_DIR)
	rm -rf "$(HOME_DIR)"
