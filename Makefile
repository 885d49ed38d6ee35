# FleetVision: one entry for setup, demo, tests, benchmarks and lint.
# `make demo` and `make test` work on a fresh machine: they create .venv and install on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help setup check-java check-python demo test test-fast bench lint clean docs pack-env

help:
	@echo "make demo   - set up, generate an inventory, register starter models, score full + incremental"
	@echo "make test   - set up, ruff + the whole pytest suite (what CI runs)"
	@echo "make bench  - benchmarks; results as JSON under benchmarks/results/"
	@echo "make bench-peers - the job vs Ray Data, Daft, predict_batch_udf (own venv): benchmarks/results/peers.json"
	@echo "make bench-cost - full runs at ~1k/10k/50k photos and incremental runs at 1/5/10% churn (hours): cost_vs_work.json"
	@echo "make lint   - ruff + hadolint on the Dockerfile"
	@echo "make setup  - only create .venv and install the pinned stack"
	@echo "make pack-env - the wheel + its dependencies packed for executors: dist/fleetvision-env.tar.gz"

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' || { \
	  echo "FleetVision needs Python 3.11 (found: $$($(PYTHON) --version 2>&1))."; \
	  echo "Install it (e.g. 'apt-get install python3.11 python3.11-venv' or pyenv) or run 'make PYTHON=/path/to/python3.11'."; \
	  exit 1; }

check-java:
	@command -v java >/dev/null 2>&1 || { \
	  echo "Java 17 is required by Spark and was not found on PATH."; \
	  echo "Install it: 'apt-get install -y openjdk-17-jre-headless' (Debian/Ubuntu), or set JAVA_HOME and PATH."; \
	  exit 1; }
	@v=$$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1); \
	if [ "$$v" != "17" ] && [ "$$v" != "21" ]; then \
	  echo "Spark 4.0 needs Java 17 (or 21); found Java '$$v'. Install openjdk-17 and point JAVA_HOME at it."; exit 1; fi

$(STAMP): pyproject.toml | check-python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: check-java $(STAMP)

# For standalone and YARN clusters (docs/runbook.md, *Running on a cluster*):
#   spark-submit --archives dist/fleetvision-env.tar.gz#env --conf spark.pyspark.python=./env/bin/python ...
# Installs the pinned stack from the package index into a fresh venv (minutes; about 1 GB to download).
pack-env: setup
	PYTHON=$(PYTHON) VENV_PACK=$(BIN)/venv-pack BUILD_PYTHON=$(BIN)/python bash scripts/pack_env.sh

demo: setup
	bash scripts/demo.sh

# TEST_WORKERS=0 runs the suite in one process (e.g. to debug with -x or --pdb).
TEST_WORKERS ?= 2
test: setup
	$(BIN)/ruff check src tests jobs benchmarks
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/pytest -m "not slow and not integration" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/bench_decode.py
	$(BIN)/python benchmarks/bench_big_photos.py
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_listing_stage.py
	$(BIN)/python benchmarks/bench_model_cost.py
	$(BIN)/python benchmarks/bench_model_memory.py
	$(BIN)/python benchmarks/bench_real_dev.py

# The job against Ray Data, Daft and predict_batch_udf on the same photos and fused model (issue 11).
# Ray and Daft need pyarrow >= 15 and numpy 2: their own venv, pinned in benchmarks/peers/requirements.txt.
PEERS_VENV := benchmarks/peers/.venv
BENCH_PEERS_ARGS ?=
$(PEERS_VENV)/.installed: benchmarks/peers/requirements.txt | check-python
	@test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet --upgrade "pip==26.3"
	$(PEERS_VENV)/bin/python -m pip install --quiet -r benchmarks/peers/requirements.txt
	@touch $@

.PHONY: bench-peers bench-cost gpu-check-prepare
# Full runs by inventory size and incremental runs by churn rate; BENCH_COST_ARGS="--listings 40,80,160" for minutes.
BENCH_COST_ARGS ?=
bench-cost: setup
	$(BIN)/python benchmarks/bench_cost_vs_work.py $(BENCH_COST_ARGS)

bench-peers: setup $(PEERS_VENV)/.installed
	PYTHONPATH=src:benchmarks/peers $(BIN)/python benchmarks/bench_peers.py $(BENCH_PEERS_ARGS)

# build/gpu_check/ for scripts/gpu_check.sh on a lent accelerator (docs/runbook.md, *GPU check*)
gpu-check-prepare: setup
	PYTHON=$(BIN)/python bash scripts/gpu_check.sh --prepare

lint: setup
	$(BIN)/ruff check src tests jobs benchmarks
	$(BIN)/ruff format --check src tests jobs benchmarks || true
	$(BIN)/hadolint Dockerfile

clean:
	rm -rf warehouse artifacts reports mlflow.db mlartifacts spark-warehouse derby.log .pytest_cache

docs: setup
	$(BIN)/python scripts/update_docs.py
