# Tinkerbell developer entry points (GNU make). Works from a fresh clone:
# `make test` installs the venv and firebase-tools itself.
#
#   make up | down | status   the local stack (dev ports: SPEC §7)
#   make demo                 the stack, then the command-line demo
#   make check-gemini         check the configured Gemini (key, or Vertex AI) and models
#   make smoke                end to end: deployed (deploy.sh's output) or the local stack
#   make lint                 ruff check, ruff format --check, mypy
#   make test                 a separate stack on ports +10000, lint, pytest, stack down
#   make screenshots          refresh the README's screenshots (docs/screenshots/)
#   make load                 the load model (bench/load.py) on its own stack, ports +2000

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

# Fast settings for the test stack: short Gemini deadlines and retries, and Pub/Sub
# redelivery within seconds. shared/settings.py refuses a lease shorter than the
# worst case of one attempt: the PDF upload (7 chunks x 1 s + 2 s to become ACTIVE)
# + the strategy call (2 x 6 s + 0.1 s of retry delay) + the image call (3 x 6 s +
# 0.25 s) + 5 progress writes it may wait for (1 s each) + 2 checkpoints, leaving the
# shared PDF's record and the outcome (2 s each) = 52.35 s, hence 53: a short lease
# makes the crash test (tests/integration/test_delivery_faults.py) take over within
# about 53 s.
# The 6 s deadlines stay above the stand-in latencies the tests inject (up to 5 s);
# the stand-in answers 504 past a request's X-Server-Timeout, as Gemini does.
# The redelivery backoff (1 s doubling to 5 s) over MAX_DELIVERY_ATTEMPTS=24 spans
# 107 s: longer than the lease plus one attempt (105.35 s), so a message outlives a
# crashed attempt's takeover (SPEC §4).
# Webhooks: 3 attempts 1 s apart, each cut at 2 s (tests/integration/test_webhooks.py).
# MAX_TASK_ATTEMPTS=3: Gemini failing forever costs 3 attempts of 2 strategy calls.
# The project-wide caps are far above what the suite submits (its 300-task test):
# tests/integration/test_quotas.py races them with caps of its own.
TEST_SETTINGS := GEMINI_STRATEGY_TIMEOUT_S=6 GEMINI_IMAGE_TIMEOUT_S=6 \
	GEMINI_STRATEGY_MAX_ATTEMPTS=2 GEMINI_MAX_ATTEMPTS=3 GEMINI_RETRY_INITIAL_DELAY_S=0.05 \
	GEMINI_RETRY_MAX_DELAY_S=0.2 GEMINI_RETRY_JITTER_S=0.05 GEMINI_UPLOAD_TIMEOUT_S=1 \
	FILE_ACTIVE_TIMEOUT_S=2 OUTCOME_WRITE_TIMEOUT_S=2 PROGRESS_WRITE_TIMEOUT_S=1 LEASE_SECONDS=53 MAX_TASK_ATTEMPTS=3 \
	ACK_DEADLINE_SECONDS=60 RETRY_MIN_BACKOFF_S=1 RETRY_MAX_BACKOFF_S=5 MAX_DELIVERY_ATTEMPTS=24 \
	MAX_TASKS_PER_MINUTE=5000 MAX_TASKS_IN_FLIGHT=5000 DAILY_BUDGET_EUR=1000000 \
	DAILY_BUDGET_PER_USER_EUR=1000000 DAILY_BUDGET_PER_ANONYMOUS_USER_EUR=1000000 \
	'WEBHOOK_RETRY_SCHEDULE_S=[1,1]' WEBHOOK_TIMEOUT_S=2

PYTHON ?= python3.11
# `make test TEST_STACK=test3 PYTEST_ARGS=tests/integration/test_x.py` runs a
# second test stack beside the first (ports +12000) on a subset of the tests.
TEST_STACK ?= test
PYTEST_ARGS ?=
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.requirements-installed
NODE_STAMP := node_modules/.package-lock.json

WEB_BUNDLE := web/dist/app.js
.PHONY: help venv node_modules web deps up down status demo check-gemini smoke check-deploy lint test \
	chromium screenshots load

help:
	@echo "make up | down | status | demo | lint | test   (see the Makefile header)"

# The venv is (re)installed only when a requirements file changed.
$(VENV_STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
		|| { echo "$(VENV) must use Python 3.11 (remove it and set PYTHON=...)" >&2; exit 1; }
	@echo "installing requirements-dev.txt into $(VENV) (log: $(VENV)/pip-install.log)"
	@$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt \
		> $(VENV)/pip-install.log 2>&1 || { tail -n 30 $(VENV)/pip-install.log >&2; exit 1; }
	@touch $@

venv: $(VENV_STAMP)

# npm writes node_modules/.package-lock.json on every install: a fresh stamp.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

node_modules: $(NODE_STAMP)

# The web app's bundle (esbuild, ~2 s; web/dist/ is gitignored).
$(WEB_BUNDLE): $(NODE_STAMP) web/build.mjs $(wildcard web/src/*.js)
	npm run --silent build:web

web: $(WEB_BUNDLE)

# pip and npm install side by side (a fresh clone: ~70 s and ~155 s one after the
# other, ~185 s together), then the bundle.
deps:
	@$(MAKE) --no-print-directory -j2 venv node_modules
	@$(MAKE) --no-print-directory web

up: deps
	@$(PY) -m dev.stack up
	@eval "$$($(PY) -m dev.stack env)"; node web/build.mjs --config-only

down:
	@$(PY) -m dev.stack down

status:
	@$(PY) -m dev.stack status

demo: up
	@eval "$$($(PY) -m dev.stack env)"; $(PY) -m cli.demo

# Does the configured Gemini reach the configured models? Lists the models the key can
# use (on Vertex AI, GEMINI_BACKEND=vertex: looks the two ids up), then one
# schema+url_context call and one image call (docs/gemini.md).
check-gemini: venv
	@$(PY) -m cli.check_gemini

# A deployed project end to end (deploy.sh's SUBMIT_URL, STATUS_URL, FIREBASE_API_KEY,
# GOOGLE_CLOUD_PROJECT from the environment or SMOKE_ARGS=--env-file FILE), or the
# local stack without them: sign-up, submit, listener, preview, 404, cancel (cli/smoke.py).
smoke: venv
	@$(PY) -m cli.smoke $(SMOKE_ARGS)

# A deployed project's IAM and indexes, read-only, by the audits the rehearsal runs
# (PROJECT=... [REGION=...]; infra/check_deploy.py, docs/deploy.md).
check-deploy: venv
	@$(PY) -m infra.check_deploy

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared functions main.py cli dev
	$(VENV)/bin/shellcheck infra/*.sh tests/run_suite.sh

# Every Python process of the run (the stack's functions, the CLI, pytest) records the
# Firestore queries our code sends (tests/query_log/sitecustomize.py), for the index
# coverage test (tests/infra/test_index_coverage.py), which therefore runs after the rest.
# The test stacks always use the Gemini stand-in (the tests inject faults and check
# its marked output) through the Developer API (tests/integration/test_vertex.py
# switches its own process to Vertex AI), and are always stopped, whatever failed.
# Lint runs beside the tests. The whole suite (no PYTEST_ARGS) runs in parts on the
# stacks test, test2 and test4 (tests/run_suite.sh, tests/conftest.py);
# with PYTEST_ARGS, pytest runs them on TEST_STACK alone. pytest's exit 5 (no test
# collected) is a failure too: a green run must have run tests.
TEST_WORKERS ?= 2
WHOLE_SUITE := $(if $(PYTEST_ARGS),,$(filter test,$(TEST_STACK)))

test: deps chromium
	@export $(TEST_SETTINGS) PY=$(PY) TEST_WORKERS=$(TEST_WORKERS); \
	mkdir -p .stack; export TINKERBELL_QUERY_LOG=$(CURDIR)/.stack/$(TEST_STACK)-queries.jsonl; \
	rm -f "$$TINKERBELL_QUERY_LOG"; \
	export PYTHONPATH=$(CURDIR)/tests/query_log$${PYTHONPATH:+:$$PYTHONPATH}; \
	unset GEMINI_API_KEY GEMINI_BASE_URL GEMINI_BACKEND GEMINI_VERTEX_PROJECT GEMINI_VERTEX_LOCATION \
		GEMINI_API_VERSION; \
	( $(MAKE) lint > .stack/$(TEST_STACK)-lint.log 2>&1 ) & lint_pid=$$!; \
	tests=0; \
	if [ -n "$(WHOLE_SUITE)" ]; then tests/run_suite.sh || tests=$$?; \
	else \
		( trap '$(PY) -m dev.stack down --name $(TEST_STACK)' EXIT; \
		$(PY) -m dev.stack up --name $(TEST_STACK) && \
		eval "$$($(PY) -m dev.stack env --name $(TEST_STACK))" && \
		$(PY) -m pytest $(PYTEST_ARGS) ) || tests=$$?; \
		if [ $$tests -eq 5 ]; then echo "make test: pytest collected no tests" >&2; fi; \
	fi; \
	lint=0; wait $$lint_pid || lint=$$?; cat .stack/$(TEST_STACK)-lint.log; \
	if [ $$lint -ne 0 ]; then echo "make test: lint failed" >&2; fi; \
	if [ $$tests -ne 0 ]; then echo "make test: tests failed" >&2; fi; \
	[ $$lint -eq 0 ] && [ $$tests -eq 0 ]

# The browser tests launch TB_CHROMIUM, else Debian's Chromium at /usr/bin/chromium
# (tests/e2e/conftest.py; never a browser download). That path is what is checked, not
# PATH: when it is missing, Debian's `chromium` is installed with apt when this user may
# (root, or sudo without a password), else the exact command is printed. A TB_CHROMIUM
# that is missing is an error (apt cannot put a browser there).
DEBIAN_CHROMIUM := /usr/bin/chromium
chromium:
	@browser="$${TB_CHROMIUM:-$(DEBIAN_CHROMIUM)}"; \
	[ -f "$$browser" ] && [ -x "$$browser" ] && exit 0; \
	if [ -n "$${TB_CHROMIUM:-}" ]; then \
		echo "TB_CHROMIUM=$$TB_CHROMIUM is not an executable file: the browser tests launch it" >&2; exit 1; fi; \
	if [ "$$(id -u)" -eq 0 ]; then apt_get="apt-get"; \
	elif sudo -n true 2>/dev/null; then apt_get="sudo apt-get"; \
	else echo "make test needs Chromium for the browser tests: sudo apt-get install -y chromium" \
		"(Debian; elsewhere set TB_CHROMIUM to a Chromium binary)" >&2; exit 1; fi; \
	echo "installing Chromium for the browser tests ($$apt_get install -y chromium)"; \
	$$apt_get update -qq && DEBIAN_FRONTEND=noninteractive $$apt_get install -y -qq chromium >/dev/null; \
	{ [ -f "$$browser" ] && [ -x "$$browser" ]; } || { echo "apt-get installed chromium, but $$browser is still missing" \
		"(not Debian?): set TB_CHROMIUM to a Chromium binary" >&2; exit 1; }

# The README's screenshots (docs/screenshots/*.png), from the browser tests on a test
# stack; `make test` leaves them alone.
screenshots:
	@$(MAKE) test PYTEST_ARGS="tests/e2e/test_web_strategy.py -k test_pictures_match_the_task_document" \
		TINKERBELL_SCREENSHOTS=$(CURDIR)/docs/screenshots

# The load model (bench/load.py, bench/README.md) on a stack of its own ("bench"), whose
# functions log every Firestore RPC (bench/firestore_log); caps high enough to let the
# load in, and a worker that runs as many tasks at once as the load keeps in flight.
# `make load LOAD_ARGS="--rate 20 --seconds 120"`.
LOAD_ARGS ?= --rate 20 --seconds 120
LOAD_SETTINGS := MAX_TASKS_PER_MINUTE=100000 MAX_TASKS_IN_FLIGHT=100000 \
	DAILY_BUDGET_EUR=10000000 DAILY_BUDGET_PER_USER_EUR=10000000 \
	DAILY_BUDGET_PER_ANONYMOUS_USER_EUR=10000000 \
	STACK_WORKER_CONCURRENCY=512 PYTHONPATH=bench/firestore_log \
	TINKERBELL_FIRESTORE_LOG=$(CURDIR)/.stack/bench/rpc-log
load: deps
	@rm -rf .stack/bench/rpc-log
	@$(LOAD_SETTINGS) $(PY) -m dev.stack up --name bench
	@status=0; $(PY) -m bench.load --stack bench $(LOAD_ARGS) || status=$$?; \
		$(PY) -m dev.stack down --name bench; exit $$status
