# btc — developer targets. `make test` and `make demo` work on a fresh clone: they call `setup`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

demo: setup
	$(BIN)/btc demo --out demo-output

lint: setup
	$(BIN)/ruff check btc tests benchmarks

bench: setup
	$(BIN)/python benchmarks/run_cpu.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
