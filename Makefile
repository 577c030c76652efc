# Loa Phường — the two set-up commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The suite's tests are independent (free ports, their own data dirs): two workers halve `make test` on CI's 2 cores.
TEST_WORKERS ?= 2
# `make test` is the fast lane (≤ 5 min on 2 cores): every test but those marked `slow` (the long end-to-end runs:
# see [tool.pytest.ini_options] in pyproject.toml). `make test-all` runs every test; CI (.ci/run) runs it.
# worksteal: a worker that runs out of tests takes pending ones from the other, so one long test at the end does
# not leave a core idle.
PYTEST_ARGS ?= -q -n $(TEST_WORKERS) --dist worksteal

.PHONY: run test test-all test-parts fuzz lint schemas bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The demo's broker is Mosquitto with authentication and per-node ACLs (docs/protocol.md §14): installed with
# apt-get when we can (root + apt), otherwise stop with the one command to run.
run: $(STAMP)
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Mosquitto (the demo's MQTT broker)…"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mosquitto \
	      || { echo "error: could not install Mosquitto; run: sudo apt-get install -y mosquitto" >&2; exit 1; }; \
	  else \
	    echo "error: the demo needs Mosquitto; run: sudo apt-get install -y mosquitto" >&2; exit 1; \
	  fi; \
	fi
	$(BIN)/loaphuong demo

# The suite needs the real parts it tests against: Mosquitto (+ its clients, for the ACL tests), PostgreSQL (a
# throwaway cluster started by tests/pg.py), RabbitMQ (throwaway nodes started by tests/rabbitmq.py) and Chromium (pages driven by Playwright: no CSP violation). Installed with apt-get when we can (root + apt), otherwise stop
# with the one command to run.
TEST_PKGS_CHECK = \
	{ command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || echo mosquitto; \
	  command -v mosquitto_pub >/dev/null 2>&1 || echo mosquitto-clients; \
	  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || echo postgresql; \
	  [ -x /usr/bin/chromium ] || echo chromium; \
	  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || echo rabbitmq-server; }

test-parts:
	@need="$$($(TEST_PKGS_CHECK) | tr '\n' ' ')"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi; \
	  if [ "$$sudo" != none ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing what the suite needs: $$need"; \
	    $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$need \
	      || { echo "error: could not install them; run: sudo apt-get install -y $$need" >&2; exit 1; }; \
	  else \
	    echo "error: the tests need: $$need; run: sudo apt-get install -y $$need" >&2; exit 1; \
	  fi; \
	fi

test: $(STAMP) test-parts
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS) -m "not slow"

test-all: $(STAMP) test-parts
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

# The API fuzzer run long: schemathesis with many examples per operation and its stateful phase, against a live
# panel on its embedded Mosquitto (tests/fuzzing.py). `make test-all` runs the same with a few examples.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} FUZZ_PHASES=$${FUZZ_PHASES:-examples,coverage,fuzzing,stateful} \
	  $(BIN)/pytest -q tests/test_api_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check .

schemas: $(STAMP)
	$(BIN)/loaphuong schemas --write

# Every bench/bench_*.py; each writes its keys to bench/results.json and a row to docs/performance.md.
bench: $(STAMP)
	@set -e; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script; done

clean:
	rm -rf $(VENV) instance .pytest_cache
