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

# `make gpu-bench [STEP=name,…] [GPU=0] [FORCE=1]`: what a lent GPU measures (issue 17), one
# result JSON per step under benchmarks/results/ (benchmarks/gpu_bench.py --list). No `setup`: the
# GPU machine has no package index, so btc runs from the tree; the script installs the carried
# wheels (.whl/: imutils, and pytest where the image lacks it) without an index into its work folder.
# GPU=0 runs the same steps at tiny sizes on the CPU into a temporary folder (CI's smoke run);
# BENCH_RESULTS / BENCH_WORK choose the result and work folders.
GPU_PYTHON := $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))
STEP ?= all
.PHONY: gpu-bench
gpu-bench:
	GPU=$(GPU) FORCE=$(FORCE) PYTHONPATH=.$${PYTHONPATH:+:$$PYTHONPATH} \
		$(GPU_PYTHON) benchmarks/gpu_bench.py --step $(STEP) \
		$(if $(BENCH_RESULTS),--results $(BENCH_RESULTS)) $(if $(BENCH_WORK),--work $(BENCH_WORK))
