# The two commands a new user runs are `make demo` and `make test` (README.md). Both set up what they need:
# .venv with the package and its dev extras, Debian packages when root, the Feast 0.9 SDK venv for compat tests.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FEAST09 := .venv-feast09
FEAST09_INSTALLER ?= tools/install-feast09-sdk.sh
PYTEST_ARGS ?=

export SPARK_LOCAL_IP := 127.0.0.1
export PROVENDER_FEAST09_VENV := $(abspath $(FEAST09))

.PHONY: help install system-deps jvm-deps keycloak feast09 test test-k8s k8s-parts test-unit test-integration test-compat lint format protos demo clean \
	bench bench-online bench-ingest bench-stream bench-retrieval
BENCH_ARGS ?=

help:
	@echo "make demo     bring up the platform locally (provender local up) and run the quickstart"
	@echo "make test     lint, check generated code, run the whole test suite"
	@echo "make protos   regenerate sdk/provender/proto from protos/"
	@echo "make bench    every benchmark (bench-online, bench-ingest, bench-retrieval, bench-stream); BENCH_ARGS=--quick for small data"
	@echo "make jvm-deps fetch Apache Kafka and Spark's Kafka source from Maven Central into .deps/ (test and demo do it)"
	@echo "make keycloak fetch Keycloak, the OIDC provider of the authentication tests, into .deps/ (test does it)"
	@echo "make test-k8s the chart and the k8s launcher on a real API server, Spark operator and kwok nodes, built"
	@echo "              from Go modules into .deps/ (cold: about 10 min of building; CI runs it after make test)"
	@echo "make lint | format | test-unit | test-integration | test-compat | clean"

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip>=24'
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(STAMP)

system-deps:
	@bash tools/system-deps.sh prometheus prometheus-pushgateway

jvm-deps:
	@bash tools/fetch-jvm-deps.sh

keycloak: $(STAMP)
	@$(BIN)/python tools/fetch_keycloak.py

# fsspec: a Feast 0.9 notebook reads its outputs with pandas from URLs (gcsfs, s3fs and file:// go through it).
$(FEAST09)/.installed:
	PYTHON=$(PYTHON) bash $(FEAST09_INSTALLER) $(FEAST09)
	$(FEAST09)/bin/pip install -q 'fsspec<2024'
	touch $@

feast09: $(FEAST09)/.installed

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

protos: $(STAMP)
	$(BIN)/python tools/gen_protos.py

test: $(STAMP) system-deps jvm-deps keycloak feast09 lint
	$(BIN)/pytest tests --ignore=tests/k8s --durations=30 $(PYTEST_ARGS)

# etcd, the control plane, helm, kwok and the Spark operator, from their Go modules (tools/k8s/*/go.mod).
k8s-parts:
	@bash tools/k8s/build.sh

# -rs: a part that could not be built skips its tests with the build's reason, printed here.
test-k8s: $(STAMP) system-deps k8s-parts
	$(BIN)/pytest tests/k8s -rs --durations=15 $(PYTEST_ARGS)

test-unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: $(STAMP) system-deps jvm-deps keycloak
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-compat: $(STAMP) system-deps jvm-deps feast09
	$(BIN)/pytest tests/compat $(PYTEST_ARGS)

demo: $(STAMP) system-deps jvm-deps
	eval "$$($(BIN)/provender local up --env)" && $(BIN)/python examples/quickstart.py
	@echo "The platform keeps running: '$(BIN)/provender local status' to check it, '$(BIN)/provender local down' to stop it."

bench: bench-online bench-ingest bench-stream bench-retrieval

bench-online: $(STAMP) system-deps
	$(BIN)/python bench/online/run.py $(BENCH_ARGS)

bench-ingest: $(STAMP) system-deps
	$(BIN)/python bench/ingest/run.py $(BENCH_ARGS)

bench-stream: $(STAMP) system-deps jvm-deps
	$(BIN)/python bench/stream/run.py $(BENCH_ARGS)

bench-retrieval: $(STAMP) system-deps
	$(BIN)/python bench/retrieval/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(FEAST09) .deps .pytest_cache .ruff_cache .hypothesis .provender
