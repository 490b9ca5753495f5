# The two commands a newcomer needs: `make up` and `make test`. Everything they install is here.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The UI (frontend/): npm packages from its committed lock file, and its static build, which the
# Serve ingress serves at / (ray_apps/serving/ui.py). Node.js >= 20.19 and npm come with the machine.
FRONTEND := frontend
NPM_STAMP := $(FRONTEND)/node_modules/.installed
UI_BUILD := $(FRONTEND)/build/index.html
UI_SOURCES := $(shell find $(FRONTEND)/src $(FRONTEND)/static -type f 2>/dev/null) $(FRONTEND)/svelte.config.js $(FRONTEND)/vite.config.ts

.PHONY: up down status test lint unit integration bench install system clean help ui generate

help:
	@echo "make up      install everything and start the local stack (rtml up)"
	@echo "make test    install everything and run all tests (starts and stops its own services)"
	@echo "make down    stop the local stack"
	@echo "make bench   run the benchmarks against a fresh test stack"
	@echo "make generate  write what is generated from the code (OpenAPI copy, UI types, chart enum)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "rtml needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,cluster]'
	touch $@

system:
	bash scripts/install-system.sh
	bash scripts/install-tools.sh   # helm, terraform for tests/k8s (cached)

$(NPM_STAMP): $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	cd $(FRONTEND) && npm ci --no-audit --no-fund
	touch $@

$(UI_BUILD): $(NPM_STAMP) $(UI_SOURCES)
	cd $(FRONTEND) && npm run build

ui: $(UI_BUILD)

# What is generated from the code and committed (tests fail when a copy is stale): the API's
# OpenAPI document and the UI's API types from it, the chart's use-case enum from the specs.
generate: $(STAMP) $(NPM_STAMP)
	$(BIN)/python -m ray_apps.serving.openapi > $(FRONTEND)/src/lib/api/openapi.json
	cd $(FRONTEND) && npm run gen:api
	$(BIN)/python -m kuberay.chart_schema

install: system $(STAMP) $(NPM_STAMP)

up: install ui
	$(BIN)/rtml up

down:
	$(BIN)/rtml down

status:
	$(BIN)/rtml status

# The habits first (seconds), then the UI's unit tests, then every Python test.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install ui lint
	cd $(FRONTEND) && npm test
	$(BIN)/python -m pytest tests

unit: install
	$(BIN)/python -m pytest tests/unit

integration: install
	$(BIN)/python -m pytest tests/integration

bench: install
	$(BIN)/python bench/producer_throughput.py

clean:
	rm -rf .rtml .rtml-test $(VENV) *.egg-info $(FRONTEND)/node_modules $(FRONTEND)/build $(FRONTEND)/.svelte-kit
