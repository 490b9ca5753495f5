# The two commands a newcomer needs: `make up` and `make test`. Everything they install is here.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up down status test unit integration bench install system clean help

help:
	@echo "make up      install everything and start the local stack (rtml up)"
	@echo "make test    install everything and run all tests (starts and stops its own services)"
	@echo "make down    stop the local stack"
	@echo "make bench   run the benchmarks against a fresh test stack"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "rtml needs Python 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

system:
	bash scripts/install-system.sh

install: system $(STAMP)

up: install
	$(BIN)/rtml up

down:
	$(BIN)/rtml down

status:
	$(BIN)/rtml status

test: install
	$(BIN)/python -m pytest tests

unit: install
	$(BIN)/python -m pytest tests/unit

integration: install
	$(BIN)/python -m pytest tests/integration

bench: install
	$(BIN)/python bench/producer_throughput.py

clean:
	rm -rf .rtml .rtml-test $(VENV) *.egg-info
