# The two front-door commands: `make run` (an emulated MCS V2G session end to end) and
# `make test` (lint, types and the whole test suite). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,plot,backend]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/mcscomm session --trace session.jsonl
	$(BIN)/mcscomm plot session.jsonl -o session.png

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -n 2

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python tools/bench.py --quick

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .hypothesis
