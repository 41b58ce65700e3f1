# berakhlak — nightly BerAKHLAK index pipeline.
# Two commands on a fresh clone:  make aggregate YEAR=2024   and   make test

YEAR       ?= 2024
CONFIG     ?= config/berakhlak.toml
INPUT      ?=
MASTER     ?=
WAREHOUSE  ?=
QUARANTINE ?=
THREADS    ?=

CARGO   ?= cargo
PYTHON  ?= python3
VENV    := .venv
BIN     := target/release/berakhlak
DEBUG_BIN := target/debug/berakhlak

RUN_FLAGS = --year $(YEAR) --config $(CONFIG) \
	$(if $(INPUT),--input $(INPUT)) $(if $(MASTER),--master $(MASTER)) \
	$(if $(WAREHOUSE),--warehouse $(WAREHOUSE)) $(if $(QUARANTINE),--quarantine $(QUARANTINE)) \
	$(if $(THREADS),--threads $(THREADS))

.DEFAULT_GOAL := help
.PHONY: help build aggregate validate recover test test-rust test-python venv lint samples bench clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  Variables: YEAR=$(YEAR) CONFIG=$(CONFIG) INPUT= MASTER= WAREHOUSE= QUARANTINE= THREADS="

build: ## Build the release binary
	$(CARGO) build --release --locked

aggregate: build ## Run the pipeline for YEAR (INPUT=, WAREHOUSE=, CONFIG= override the config)
	$(BIN) aggregate $(RUN_FLAGS)

validate: build ## Read and check YEAR's dumps, print the report, publish nothing
	$(BIN) validate $(RUN_FLAGS)

recover: build ## Finish or roll back an interrupted publish (WAREHOUSE= or the config's)
	$(BIN) recover --config $(CONFIG) $(if $(WAREHOUSE),--warehouse $(WAREHOUSE))

test: test-rust test-python ## Run every test (Rust unit + integration, then DuckDB/pyarrow interop)

test-rust:
	$(CARGO) build --locked
	$(CARGO) test --locked

$(VENV)/.installed: tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

venv: $(VENV)/.installed ## Create the Python venv the interop tests use (pinned versions)

test-python: $(VENV)/.installed
	$(CARGO) build --locked
	BERAKHLAK_BIN=$(CURDIR)/$(DEBUG_BIN) $(VENV)/bin/python -m pytest -q tests/python

lint: ## rustfmt and clippy, as CI expects them
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

samples: build ## Regenerate data-samples/ (deterministic)
	rm -rf data-samples/2023 data-samples/2024
	$(BIN) generate --year 2023 --out data-samples/2023 --respondents 10000 --seed 2023 --files 3 --format csv --vary-delimiters
	$(BIN) generate --year 2024 --out data-samples/2024 --respondents 10000 --seed 2024 --files 4 --format mixed --vary-delimiters --gzip

bench: build venv ## Benchmark aggregate side by side with DuckDB at 1M and 5M responses (BENCH_SIZES=, BENCH_RUNS=)
	bench/run.sh

clean: ## Remove build outputs, the local warehouse and quarantine
	$(CARGO) clean
	rm -rf warehouse quarantine $(VENV)
