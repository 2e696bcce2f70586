# One task runner: the README and .ci/run use these targets verbatim.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv from PATH, else the copy pip installs on first use (a fresh machine has only python3).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen --no-sync
HOME_DIR := $(or $(CHURN_RETRAIN_HOME),$(or $(XDG_STATE_HOME),$(HOME)/.local/state)/churn-retrain)
MLFLOW_PORT ?= 5000
PREFECT_PORT ?= 4200

.PHONY: help install run test test-fast lint typecheck check bench mlflow-ui clean-state \
	prefect-server deploy worker bench-scale validate automation \
	source status rollback prune simulate bench-sources bench-cold-starts bench-decision promotion-lock bench-models

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.venv/.installed: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: .venv/.installed ## create .venv from the lock file (uv sync --frozen)

run: install ## retrain for this month on generated data (ARGS="--period 2026-01 --data PATH" for real data)
	$(RUN) churn-retrain run --data generated $(ARGS)

validate: install ## check a snapshot with the data gate, no training (ARGS="--data PATH --period 2026-01")
	$(RUN) churn-retrain validate $(ARGS)

automation: install ## create the failed-run alert and unresponsive-run automations on PREFECT_API_URL (BLOCK=TYPE/NAME)
	@test -n "$(BLOCK)" || { echo 'usage: make automation BLOCK=slack-webhook/churn-alerts' >&2; exit 2; }
	$(RUN) churn-retrain automation --block "$(BLOCK)"

# Two pytest workers (this machine has 2 cores); a file's tests stay on one worker so its
# module-scoped servers start once. XDIST="" runs serially.
XDIST ?= -n 2 --dist loadfile

test: install ## the whole test suite, real servers and real data included
	$(RUN) pytest $(XDIST) $(PYTEST_ARGS)

test-fast: install ## unit tests only (no real-CSV training, no servers), about a minute
	$(RUN) pytest -m "not slow" $(XDIST) $(PYTEST_ARGS)

lint: install ## ruff
	$(RUN) ruff check flows tasks tests benchmarks
	$(RUN) ruff format --check flows tasks tests benchmarks

typecheck: install ## mypy on flows/ and tasks/
	$(RUN) mypy

check: lint typecheck test ## everything CI runs

bench: install ## retrain stage times and AUC (real CSV), gate and 1M-row validation/scoring, Prefect overhead
	$(RUN) python benchmarks/bench_retrain.py
	$(RUN) python benchmarks/bench_models.py --seeds 42
	$(RUN) python benchmarks/bench_gate.py
	$(RUN) python benchmarks/bench_throughput.py
	$(RUN) python benchmarks/bench_overhead.py

bench-models: install ## quality per second of candidate model sets on the real CSV, 3 seeds (~3 min)
	$(RUN) python benchmarks/bench_models.py

bench-scale: install ## the whole retrain on generated months of 7k, 70k and 700k rows (minutes)
	$(RUN) python benchmarks/bench_scale.py

bench-sources: install ## a 2M-row month as CSV vs Parquet: load time, peak memory, whole retrain (ARGS="--rows 200000")
	$(RUN) python benchmarks/bench_sources.py $(ARGS)

bench-cold-starts: install ## 100 cold `churn-retrain run` starts in a row: any start-up crash? (ARGS="--runs 20")
	$(RUN) python benchmarks/bench_cold_starts.py $(ARGS)

bench-decision: install ## promotion rates of our rule vs point estimates, real Telco CSV (~5 min)
	$(RUN) python benchmarks/bench_decision.py $(ARGS)

status: install ## the champion, its scores and the promotion history
	$(RUN) churn-retrain status $(ARGS)

rollback: install ## move the champion back to the previous one (ARGS="--to-version 3" for a named version)
	$(RUN) churn-retrain rollback $(ARGS)

prune: install ## delete registered versions never promoted and older than 6 months (ARGS="--older-than-months 12 --dry-run")
	$(RUN) churn-retrain prune $(ARGS)

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

clean-state: ## delete the local state (MLflow store, registry, Prefect DB) under $(HOME_DIR)
	rm -rf "$(HOME_DIR)"

# --- Prefect server deployments (see prefect.yaml) ---------------------------------------------
# Only the server-side targets talk to a server: `make run` must keep its temporary one.
deploy worker automation source: export PREFECT_API_URL ?= http://127.0.0.1:$(PREFECT_PORT)/api

prefect-server: install ## a local Prefect server + UI on 127.0.0.1:$(PREFECT_PORT), SQLite under the state dir
	mkdir -p "$(HOME_DIR)/prefect"
	# The UI calls the API at PREFECT_UI_API_URL (4200 unless told) and links use PREFECT_UI_URL.
	PREFECT_HOME="$(HOME_DIR)/prefect" PREFECT_SERVER_API_PORT=$(PREFECT_PORT) \
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api PREFECT_UI_URL=http://127.0.0.1:$(PREFECT_PORT) \
		$(RUN) prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

deploy: install ## work pool, queue and the deployments of prefect.yaml on $PREFECT_API_URL (DATA=location DATA_TABLE=table)
	$(RUN) prefect work-pool inspect churn-retrain >/dev/null 2>&1 \
		|| $(RUN) prefect work-pool create churn-retrain --type process
	$(RUN) prefect work-queue inspect retrain --pool churn-retrain >/dev/null 2>&1 \
		|| $(RUN) prefect work-queue create retrain --pool churn-retrain --limit 1
	$(RUN) prefect --no-prompt deploy --all
	$(if $(DATA),$(RUN) churn-retrain source --data '$(DATA)' $(if $(DATA_TABLE),--source.table '$(DATA_TABLE)'),$(RUN) churn-retrain source)

source: install ## show or set the data location scheduled runs read (ARGS="--data s3://bucket/{period}.parquet")
	$(RUN) churn-retrain source $(ARGS)

worker: install ## a process worker for the churn-retrain pool (runs from this checkout)
	$(RUN) prefect worker start --pool churn-retrain

# A local MLflow server with basic auth, to try remote tracking (README: Remote tracking).
MLFLOW_SERVER_PORT ?= 5001
MLFLOW_SERVER_DIR := $(HOME_DIR)/mlflow-server
.PHONY: mlflow-server
mlflow-server: install ## MLflow server with basic auth on 127.0.0.1:$(MLFLOW_SERVER_PORT) (MLFLOW_AUTH_ADMIN_PASSWORD=...)
	@test -n "$$MLFLOW_AUTH_ADMIN_PASSWORD" || { echo 'set MLFLOW_AUTH_ADMIN_PASSWORD (12+ characters): the password of its user "admin"' >&2; exit 2; }
	@mkdir -p "$(MLFLOW_SERVER_DIR)"
	@printf '[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///%s/basic_auth.db\nadmin_username = admin\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\nauth_cache_ttl_seconds = 60\n' \
		"$(MLFLOW_SERVER_DIR)" > "$(MLFLOW_SERVER_DIR)/basic_auth.ini"
	MLFLOW_AUTH_CONFIG_PATH="$(MLFLOW_SERVER_DIR)/basic_auth.ini" MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
	MLFLOW_FLASK_SERVER_SECRET_KEY="$${MLFLOW_FLASK_SERVER_SECRET_KEY:-$$(python3 -c 'import secrets; print(secrets.token_hex(16))')}" \
		$(RUN) mlflow server --app-name basic-auth --host 127.0.0.1 --port $(MLFLOW_SERVER_PORT) --workers 1 \
		--backend-store-uri "sqlite:///$(MLFLOW_SERVER_DIR)/mlflow.db" \
		--artifacts-destination "$(MLFLOW_SERVER_DIR)/artifacts"

.PHONY: bench-tracking
bench-tracking: install ## how long an unreachable tracking server keeps a run waiting (ARGS=--with-mlflow-defaults)
	$(RUN) python benchmarks/bench_tracking.py $(ARGS)

.PHONY: test-kill-matrix
test-kill-matrix: install ## every stage x SIGKILL/SIGTERM, of a CLI run and of a deployment run (~25 min)
	CHURN_RETRAIN_KILL_MATRIX=all $(RUN) pytest tests/test_kill.py tests/test_kill_deployment.py -k "stage" $(PYTEST_ARGS)
