# Attention Oracle Pipeline — every entry point an operator or CI needs.
# `make demo` runs the main job; `make test` runs the suite. Both do all set-up themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
PYTEST_ARGS ?=

.PHONY: setup up down status test test-faults lint format demo bench clean
.PHONY: up-cluster down-cluster up-secure down-secure

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

up: setup
	@bash infra/local/kafka.sh up
	@bash infra/local/postgres.sh up

down:
	@if [ -f .local/demo/api.pid ]; then kill "$$(cat .local/demo/api.pid)" 2>/dev/null || true; rm -f .local/demo/api.pid; fi
	@bash infra/local/kafka.sh down
	@bash infra/local/postgres.sh down

status: setup
	@bash infra/local/kafka.sh status; bash infra/local/postgres.sh status

# Cluster modes beside `make up`'s single plaintext broker (which they do not touch):
# three KRaft nodes on 127.0.0.1:29092/29094/29096 (RF 3, min.insync 2), or one node with a
# SASL_SSL listener (SCRAM + mutual TLS, throwaway CA) on 127.0.0.1:29192. Each prints where
# its client settings are: `set -a; source .local/kafka-cluster/client.env; set +a`.
up-cluster: setup
	@bash infra/local/kafka-cluster.sh up

down-cluster:
	@bash infra/local/kafka-cluster.sh down

up-secure: setup
	@bash infra/local/kafka-secure.sh up

down-secure:
	@bash infra/local/kafka-secure.sh down

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	@# every test module, the slow suites included, must at least import
	$(VENV)/bin/pytest --collect-only -q -p no:cacheprovider -m "" tests > /dev/null

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: setup up lint
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

test-faults: setup up
	$(VENV)/bin/pytest -m slow $(PYTEST_ARGS)

# The day run (RELIABILITY.md "Day"): its own 3-broker cluster and PostgreSQL, so it needs no
# `make up`. AOP_DAY_EVENTS (2,000,000) and AOP_DAY_RATE (1,000) set its size and pace.
.PHONY: soak-day
soak-day: setup
	nice -n 5 $(VENV)/bin/pytest -m soak_day -s -p no:cacheprovider tests/soak/test_day.py $(PYTEST_ARGS)

demo: setup up
	$(VENV)/bin/aop demo $(DEMO_ARGS)

bench: setup up
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: down down-cluster down-secure
	rm -rf .local $(VENV)

# Prometheus config and alert rules (promtool, from Debian's `prometheus` package or the
# Prometheus release tarball) and the Grafana dashboard JSON; the static checks of
# tests/integration/test_observability.py (metric names need a run: `make test`).
.PHONY: check-infra
check-infra: setup
	@$(PY) -m json.tool infra/grafana/dashboards/aop.json > /dev/null \
	  && echo "infra/grafana/dashboards/aop.json: valid JSON"
	@if command -v promtool > /dev/null; then \
	  promtool check config infra/prometheus/prometheus.yml && \
	  promtool check rules infra/prometheus/alerts.yml; \
	else \
	  echo "check-infra: promtool not found (apt-get install prometheus); skipping promtool checks"; \
	fi
	@# promtool test rules runs here, over the rules without their annotations
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit/test_alert_rules.py
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/integration/test_observability.py \
	  -k "promql or dashboard_loads or runbook_section or missing_from or scrapes_each"
