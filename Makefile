# Two commands set everything up on a fresh machine:
#   make demo   - create .venv, install autodata, run the offline quick start
#   make test   - install dev dependencies and run lint + the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo demo-generate test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	$(BIN)/autodata run examples/quickstart.yaml --out runs/quickstart

demo-generate: $(VENV)/.installed
	$(BIN)/autodata generate examples/sim.yaml --input examples/prompts.jsonl --out runs/generate

# The trusted core (scoring and acceptance) must stay at 100 % line and branch coverage.
CORE_COV := --cov=autodata.judging.rubric --cov=autodata.judging.acceptance --cov-branch --cov-fail-under=100 --cov-report=term-missing

test: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_rubric.py tests/test_acceptance.py $(CORE_COV)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
