# Everything runs from .venv, created on first use with the interpreter below.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTOS := $(shell find protos -name '*.proto' | sed 's|^protos/||' | sort)

.PHONY: install proto proto-check lint test test-slow test-all run bench faults clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Regenerate gen/ from protos/ (the generated code is committed).
proto: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

# Fails when gen/ is not what protos/ generates.
proto-check: proto
	@test -z "$$(git status --porcelain -- gen)" || \
		{ git status --porcelain -- gen; echo "gen/ is out of date: run 'make proto' and commit"; exit 1; }

lint: proto
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m grpc_tools.protoc --proto_path=protos --descriptor_set_in=build/validate.binpb \
		--include_imports --include_source_info -o build/contract.binpb $(PROTOS)
	cd protos && ../$(BIN)/buf format --diff --exit-code
	$(BIN)/buf lint build/contract.binpb --path isales

# The fast suite: every test but the whole benchmark and fault runs, on every core (about
# 4-5 minutes with PostgreSQL on 2 cores).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n auto $(PYTEST_ARGS)

# The benchmark once, shortened, the fault suite whole, servers killed mid-burst of changes
# (the change history's promises), and a replica restarted under load behind the gateway,
# judged by their tests: one at a time, since they load the machine (about 3 minutes with
# PostgreSQL).
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# Both, as CI runs them.
test-all: test test-slow

# A development setup: SQLite under var/, a demo tenant (VDN 1, skill queue 2)
# with freshly generated credentials, the gRPC server and the gateway.
run: $(STAMP)
	$(BIN)/python scripts/demo_seed.py var/demo-seed.toml
	$(BIN)/isales seed var/demo-seed.toml
	$(BIN)/isales serve

# Throughput, latency, CPU and memory against no-op baselines; writes bench/results.json.
bench: $(STAMP)
	$(BIN)/python -m bench

# Fault scenarios against real processes (kill -9, SIGTERM, idle connections; PostgreSQL
# stopped and frozen with ISALES_BENCH_DATABASE_URL); prints a table, fails on a broken promise.
faults: $(STAMP)
	$(BIN)/python -m bench.faults

clean:
	rm -rf build var .pytest_cache .mypy_cache .ruff_cache
