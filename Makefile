# ttgen — set-up, tests, demo, benchmarks. `make demo` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test test-generated emit demo lint bench clean

setup: $(STAMP)

# torch first: 2.13.0 is a CPU wheel on local disk; any other torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

test: setup
	$(BIN)/python -m pytest -q -m "not slow" tests

# The committed generated models: their parity tests against HF (on the emulator unless real
# ttnn is importable), after checking that a fresh emission reproduces them byte for byte.
test-generated: setup
	$(BIN)/python -m pytest -q tests/emit/test_emit.py -k committed_tree
	$(BIN)/python -m pytest -q generated

emit: setup
	$(BIN)/ttgen emit specs/llama.yaml

demo: setup
	$(BIN)/ttgen trace llama --preset tiny --mode both

lint: setup
	$(BIN)/ruff check compiler tests generated
	$(BIN)/ruff format --check compiler tests

bench: setup
	$(BIN)/python -m ttgen.bench.trace
	$(BIN)/python -m ttgen.bench.emu
	$(BIN)/python -m ttgen.bench.generated

clean:
	rm -rf $(VENV) traces .pytest_cache .ruff_cache
