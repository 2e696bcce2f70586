# One task runner: the README and .ci/run use these targets verbatim.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv from PATH, else the copy pip installs on first use (a fresh machine has only python3).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
RUN := $(UV) run --frozen --no-sync
HOME_DIR := $(or $(CHURN_RETRAIN_HOME),$(or $(XDG_STATE_HOME),$(HOME)/.local/state)/churn-retrain)
MLFLOW_PORT ?= 5000
PREFECT_PORT ?= 4200

.PHONY: help install run test test-fast test-integration lint typecheck check bench mlflow-ui clean-state \
	prefect-server deploy worker bench-scale validate automation \
	source status rollback prune simulate bench-sources bench-cold-run bench-cold-starts bench-decision promotion-lock bench-models \
	bench-learning-curve bench-months

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

test: install ## the whole test suite: the unit tier, then the integration tier (real servers, real data)
	$(RUN) pytest tests/unit $(XDIST) $(PYTEST_ARGS)
	$(RUN) pytest tests/integration $(XDIST) $(PYTEST_ARGS)

test-fast: install ## the unit tier: tests/unit (no server, no process, no real-CSV training)
	$(RUN) pytest tests/unit $(XDIST) $(PYTEST_ARGS)

test-integration: install ## the integration tier: tests/integration (real Prefect, MLflow, PostgreSQL, CSV)
	$(RUN) pytest tests/integration $(XDIST) $(PYTEST_ARGS)

lint: install ## ruff
	$(RUN) ruff check cli flows tasks tests benchmarks
	$(RUN) ruff format --check cli flows tasks tests benchmarks

typecheck: install ## mypy on cli/, flows/ and tasks/
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

bench-scale: install ## whole retrain on generated 1M/10M/100M-row months (streamed to Parquet; ARGS="--months-dir DIR" keeps and reuses them), scoring the 100M; 1M/10M validation; 10M scoring (~55 min)
	$(RUN) python benchmarks/bench_scale.py $(ARGS)
	$(RUN) python benchmarks/bench_validate_stream.py
	$(RUN) python benchmarks/bench_score_parquet.py

bench-sources: install ## a 2M-row month as CSV vs Parquet: load time, peak memory, whole retrain (ARGS="--rows 200000")
	$(RUN) python benchmarks/bench_sources.py $(ARGS)

bench-cold-run: install ## a cold monthly run (real CSV, existing champion) and validate against a bare import of the stack, 5 pairs, ratios (~5 min)
	$(RUN) python benchmarks/bench_cold_run.py $(ARGS)

bench-cold-starts: install ## 100 cold `churn-retrain run` starts in a row: any start-up crash? (ARGS="--runs 20")
	$(RUN) python benchmarks/bench_cold_starts.py $(ARGS)

bench-decision: install ## promotion rates of our rule vs point estimates, by metric, real Telco CSV (~7 min)
	$(RUN) python benchmarks/bench_decision.py $(ARGS)

bench-months: install ## the rule over 20 years of generated months: promotions on noise, months to catch a real change (~15 min; ARGS=--quick: ~2)
	$(RUN) python benchmarks/bench_months.py $(ARGS)

bench-learning-curve: install ## challenger AUC and training s against training rows, the cap marked; PNG in the state dir (~5 min; ARGS="--seeds 42 1 7 --compare-rows 700000": ~16)
	$(RUN) python benchmarks/bench_learning_curve.py $(ARGS)

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
	# Its runs inherit its environment: their persisted results go under the state dir too.
	PREFECT_RESULTS_LOCAL_STORAGE_PATH="$(or $(PREFECT_RESULTS_LOCAL_STORAGE_PATH),$(PREFECT_LOCAL_STORAGE_PATH),$(HOME_DIR)/prefect/storage)" \
		$(RUN) prefect worker start --pool churn-retrain

# The notification block the automations (and CHURN_RETRAIN_ALERT_BLOCK) send through: a webhook
# receiving {"text": subject and body}, as Slack's, Mattermost's and Rocket.Chat's do. The URL is
# kept in the block's secrets, and the recipe is not echoed (a Slack webhook URL is a secret).
.PHONY: alert-block
alert-block: export PREFECT_API_URL ?= http://127.0.0.1:$(PREFECT_PORT)/api
alert-block: install ## save the webhook block alerts go through, custom-webhook/NAME (URL=https://hooks.slack.com/... NAME=churn-alerts)
	@test -n "$(URL)" || { echo 'usage: make alert-block URL=https://hooks.slack.com/services/... [NAME=churn-alerts]' >&2; exit 2; }
	@ALERT_URL='$(URL)' ALERT_NAME='$(or $(NAME),churn-alerts)' $(RUN) python -c 'import os; \
	from prefect.blocks.notifications import CustomWebhookNotificationBlock as Webhook; \
	name, api = os.environ["ALERT_NAME"], os.environ["PREFECT_API_URL"]; \
	Webhook(name=name, url="{{url}}", secrets={"url": os.environ["ALERT_URL"]}, json_data={"text": "{{subject}}\n{{body}}"}).save(name, overwrite=True); \
	print(f"saved custom-webhook/{name} on {api}")'

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

.PHONY: test-races
test-races: install ## every promotion race 10 times: one state dir, one remote MLflow, one Prefect server, two CLI runs (~25 min)
	CHURN_RETRAIN_RACES=10 $(RUN) pytest tests/integration/test_races.py tests/integration/test_lease.py $(PYTEST_ARGS)

.PHONY: test-kill-matrix
test-kill-matrix: install ## every stage x SIGKILL/SIGTERM, of a CLI run and of a deployment run (~25 min)
	CHURN_RETRAIN_KILL_MATRIX=all $(RUN) pytest tests/integration/test_kill.py tests/integration/test_kill_deployment.py -k "stage" $(PYTEST_ARGS)

# --- Production profile: PostgreSQL (README: Production profile: PostgreSQL) -------------------
# Both servers keep their databases in one PostgreSQL 15 cluster under the state dir, on
# 127.0.0.1 only (password auth over TCP; the socket sits in PG_DIR, mode 700). `make run`
# keeps its embedded SQLite. As root, the cluster runs as the user postgres (initdb refuses
# root), so PG_DIR must be reachable by it: not under /root (CHURN_RETRAIN_HOME=/var/lib/...).
PG_PORT ?= 5433
PG_DIR ?= $(HOME_DIR)/postgres
ifndef PG_BIN
PG_BIN := $(or $(shell pg_config --bindir 2>/dev/null),/usr/lib/postgresql/15/bin)
endif
PG_AS := $(if $(filter 0,$(shell id -u)),runuser -u postgres --)
PG_CTL := $(PG_AS) "$(PG_BIN)/pg_ctl" -D "$(PG_DIR)/data"
# Read when the command runs, so make never prints the password.
PG_AUTH = churn:$$(cat "$(PG_DIR)/password")@127.0.0.1:$(PG_PORT)
ARTIFACTS ?= $(HOME_DIR)/mlflow-pg/artifacts
.PHONY: postgres postgres-stop prefect-server-pg mlflow-server-pg

postgres: ## PostgreSQL on 127.0.0.1:$(PG_PORT) with databases prefect and mlflow, cluster under the state dir
	@test -x "$(PG_BIN)/initdb" || { echo 'no initdb in $(PG_BIN): set PG_BIN=/usr/lib/postgresql/15/bin' >&2; exit 2; }
	@mkdir -p "$(PG_DIR)" && chmod 700 "$(PG_DIR)" $(if $(PG_AS),&& chown postgres: "$(PG_DIR)")
	@$(PG_AS) test -w "$(PG_DIR)" || { echo 'the user postgres cannot reach $(PG_DIR): as root, set CHURN_RETRAIN_HOME (or PG_DIR) outside /root' >&2; exit 2; }
	@test -f "$(PG_DIR)/data/PG_VERSION" || { \
		$(PG_AS) sh -c 'umask 077 && python3 -c "import secrets; print(secrets.token_hex(16))" > "$(PG_DIR)/password"' \
		&& $(PG_AS) "$(PG_BIN)/initdb" -D "$(PG_DIR)/data" -U churn -E UTF8 --auth-local=trust \
			--auth-host=scram-sha-256 --pwfile="$(PG_DIR)/password" >"$(PG_DIR)/initdb.log"; }
	@$(PG_CTL) status >/dev/null 2>&1 || $(PG_CTL) -l "$(PG_DIR)/server.log" -w -t 60 start \
		-o "-p $(PG_PORT) -k $(PG_DIR) -c listen_addresses=127.0.0.1"
	@for db in prefect mlflow; do \
		$(PG_AS) "$(PG_BIN)/psql" -h "$(PG_DIR)" -p $(PG_PORT) -U churn -d postgres -tAc \
			"SELECT 1 FROM pg_database WHERE datname = '$$db'" | grep -q 1 \
		|| $(PG_AS) "$(PG_BIN)/createdb" -h "$(PG_DIR)" -p $(PG_PORT) -U churn $$db || exit 1; \
	done
	@echo "PostgreSQL on 127.0.0.1:$(PG_PORT), user churn, password in $(PG_DIR)/password, log $(PG_DIR)/server.log"

postgres-stop: ## stop the profile's PostgreSQL (its data stays under the state dir)
	@if $(PG_CTL) status >/dev/null 2>&1; then $(PG_CTL) -m fast -w -t 60 stop; else echo 'PostgreSQL is not running'; fi

prefect-server-pg: install ## Prefect server + UI on 127.0.0.1:$(PREFECT_PORT), its database in the profile's PostgreSQL
	@test -r "$(PG_DIR)/password" || { echo 'no cluster under $(PG_DIR): run `make postgres` first' >&2; exit 2; }
	mkdir -p "$(HOME_DIR)/prefect"
	PREFECT_API_DATABASE_CONNECTION_URL="postgresql+asyncpg://$(PG_AUTH)/prefect" \
	PREFECT_HOME="$(HOME_DIR)/prefect" PREFECT_SERVER_API_PORT=$(PREFECT_PORT) \
	PREFECT_UI_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api PREFECT_UI_URL=http://127.0.0.1:$(PREFECT_PORT) \
		$(RUN) prefect server start --host 127.0.0.1 --port $(PREFECT_PORT)

mlflow-server-pg: install ## MLflow server on 127.0.0.1:$(MLFLOW_PORT), runs and registry in PostgreSQL (ARTIFACTS=dir or s3://bucket/path)
	@test -r "$(PG_DIR)/password" || { echo 'no cluster under $(PG_DIR): run `make postgres` first' >&2; exit 2; }
	$(if $(filter s3://%,$(ARTIFACTS)),,mkdir -p "$(ARTIFACTS)")
	MLFLOW_BACKEND_STORE_URI="postgresql+psycopg://$(PG_AUTH)/mlflow" MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
		$(RUN) mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
		--serve-artifacts --artifacts-destination "$(ARTIFACTS)"
