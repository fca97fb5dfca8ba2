# Two commands on a fresh machine: `make demo` and `make test`. Everything else is set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= runs/quickstart

.PHONY: setup demo test lint typecheck compile bench clean
BENCH  := .venv-bench

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch that lies on this machine's disk (a plain `torch` pulls a CUDA build)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.installed
	$(BIN)/fedledger run examples/quickstart.toml --out $(OUT) --overwrite
	$(BIN)/fedledger audit $(OUT)
	@echo "results: $(OUT)/metrics.csv $(OUT)/summary.json $(OUT)/accuracy.png"

test: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy src
	$(BIN)/pytest -q

# benchmarks that compare with Flower run in their own venv (flwr pins typer/rich versions)
$(BENCH)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/pip install -q --upgrade pip
	$(BENCH)/bin/pip install -q torch==2.13.0
	$(BENCH)/bin/pip install -q -e '.[bench]'
	touch $@

bench: $(BENCH)/.installed $(VENV)/.installed
	$(BENCH)/bin/python benchmarks/aggregation.py
	$(BIN)/python benchmarks/ledger_overhead.py
	$(BIN)/python benchmarks/netsim_speed.py

compile: node_modules/.installed
	node scripts/compile.js

clean:
	rm -rf $(VENV) $(BENCH) node_modules runs .pytest_cache .mypy_cache
