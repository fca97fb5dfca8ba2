# Two commands on a fresh machine: `make demo` and `make test`. Everything else is set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
OUT    ?= runs/quickstart

.PHONY: setup demo test lint typecheck compile bench clean node constraints
BENCH  := .venv-bench

setup: $(VENV)/.installed node_modules/.installed

# torch first, from TORCH_INDEX when set (the CPU build: a plain PyPI `torch` is a CUDA build);
# on this machine `torch==2.13.0` finds the CPU wheel on its disk. Then the exact versions of
# constraints.txt (the ranges are in pyproject.toml).
TORCH         := torch==2.13.0
TORCH_INDEX   ?=
TORCH_INSTALL := $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_INSTALL)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	# [privacy]'s accountant: dp-accounting declares attrs<24, the lock has attrs 26 (it runs with
	# it: tests/test_privacy.py), so it goes in without its declared dependencies, then those
	$(BIN)/pip install -q --no-deps -c constraints.txt dp-accounting
	$(BIN)/pip install -q -c constraints.txt absl-py dm-tree
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

# benchmarks that compare with Flower run in their own venv, resolved from pyproject.toml's
# ranges without constraints.txt: flwr 1.35 caps typer < 0.21, rich < 15, packaging < 26
$(BENCH)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/pip install -q --upgrade pip
	$(BENCH)/bin/pip install -q $(TORCH_INSTALL)
	$(BENCH)/bin/pip install -q -e '.[bench]'
	touch $@

bench: $(BENCH)/.installed $(VENV)/.installed
	$(BENCH)/bin/python benchmarks/aggregation.py
	$(BIN)/python benchmarks/ledger_overhead.py
	$(BIN)/python benchmarks/netsim_speed.py

compile: node_modules/.installed
	node scripts/compile.js

# a Hardhat v2 node on 127.0.0.1 until Ctrl-C (PORT=8545 to choose the port; the URL is printed)
node: $(VENV)/.installed node_modules/.installed
	$(BIN)/fedledger chain $(if $(PORT),--port $(PORT))

# after upgrading the venv and passing `make test`: pin what it holds
constraints:
	$(BIN)/python scripts/constraints.py > constraints.txt

clean:
	rm -rf $(VENV) $(BENCH) node_modules runs .pytest_cache .mypy_cache
