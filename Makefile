# Blueprint: the two commands are `make run` and `make test`; the rest are helpers.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
# uv is the one on PATH, else the private copy `make setup` installs under var/tools.
ifeq ($(shell command -v uv 2>/dev/null),)
export PATH := $(CURDIR)/var/tools/bin:$(PATH)
endif
# Compose: `docker compose` (v2) when the Docker CLI has it, else docker-compose (v1, which is
# what Debian 12 packages).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
ROLES ?= planner,operator
PYTEST_ARGS ?=

.PHONY: help setup run token test lint typecheck pytest bench up down fmt chaos fresh-debian-check \
	newman perf-report

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-20s %s\n", $$1, $$2}'

OBS ?=
OBS_FLAG = $(if $(filter 1 true yes,$(OBS)),--obs)

setup:  ## install what is missing (apt packages, uv, the Python workspace); OBS=1: Prometheus too
	@bash infra/scripts/setup.sh $(OBS_FLAG)

run: setup  ## the whole platform on this machine, gateway at http://localhost:8080; OBS=1 adds Prometheus and Alertmanager
	@$(UV) run --frozen python -m blueprint_stack run $(OBS_FLAG)

token:  ## print a dev JWT: make token ROLES=planner,operator [ORG=<uuid>] [USER_ID=<uuid>]
	@$(UV) run --frozen python -m blueprint_stack token --roles "$(ROLES)" \
		$(if $(ORG),--org "$(ORG)") $(if $(USER_ID),--user-id "$(USER_ID)")

test: OBS = 1
test: setup lint typecheck pytest  ## the whole suite: lint, types, tests against real services (and Prometheus)

lint:  ## ruff: the rules, and the format
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

fmt:  ## ruff autofix, then the format
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

typecheck:  ## mypy on the libraries and services
	$(UV) run --frozen mypy libs/servicekit/src libs/contracts/src template-svc/src task-svc/src qc-svc/src notify-svc/src infra/src clients/cli/src

pytest:  ## the tests (all packages and the end-to-end suite); fails if nothing ran
	@bash infra/scripts/pytest.sh $(PYTEST_ARGS)

bench:  ## benchmarks: print throughput and latency figures (tests/perf)
	@bash infra/scripts/setup.sh --bench
	@for b in tests/perf/bench_*.py; do echo "== $$b"; $(UV) run --frozen python "$$b" || exit 1; done

ITER ?= 1
DELAY ?= 60
newman:  ## the Postman collection against `make run`'s gateway: make newman ITER=50 [DELAY=60 ms between requests]
	@$(UV) run --frozen python tests/postman/run_newman.py --iterations $(ITER) --delay-request $(DELAY)

TOP ?= 10
perf-report:  ## pg_stat_statements of `make run`: top statements per service by time and by calls [RESET=1]
	@$(UV) run --frozen python -m blueprint_stack.perf_report --top $(TOP) $(if $(RESET),--reset)

FUZZ_EXAMPLES ?= 40
chaos: setup  ## faults under load then a check that nothing was lost (CHAOS_SECONDS=600), long fuzzing (FUZZ_EXAMPLES=40 per role and operation), webhooks with 1,000 events under worker kills and 2,000 in per-subject order, 200 e-mail notifications under worker kills, a 100-project batch migration with its worker killed
	@$(UV) run --frozen python -m tests.chaos
	@BLUEPRINT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(UV) run --frozen pytest -q -p no:cacheprovider \
		tests/e2e/test_api_fuzz_e2e.py tests/e2e/test_api_stateful_e2e.py
	@WEBHOOK_CHAOS_EVENTS=1000 WEBHOOK_ORDER_EVENTS=2000 $(UV) run --frozen pytest -q -s -p no:cacheprovider \
		tests/e2e/test_webhooks_chaos_e2e.py tests/e2e/test_webhooks_order_e2e.py
	@NOTIFICATION_CHAOS_JOBS=200 NOTIFICATION_CHAOS_KILLS=5 $(UV) run --frozen pytest -q -s -p no:cacheprovider \
		tests/e2e/test_notifications_chaos_e2e.py
	@BLUEPRINT_MIGRATION_EXAMPLES=2000 $(UV) run --frozen pytest -q -p no:cacheprovider task-svc/tests/unit/test_migration_planning.py
	@MIGRATION_CHAOS_PROJECTS=100 $(UV) run --frozen pytest -q -s -p no:cacheprovider task-svc/tests/integration/test_migration_batch_chaos.py

up:  ## the platform with docker compose, plus Prometheus, Grafana, Loki, Alloy, OTel Collector
	$(COMPOSE) up --build

down:  ## stop what `make up` started
	$(COMPOSE) down

fresh-debian-check:  ## (slow, root) setup + `make run` smoke test in a fresh Debian 12 chroot
	@bash infra/scripts/fresh-debian-check.sh $(CHECK_ARGS)
