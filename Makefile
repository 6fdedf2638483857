# ttgen — set-up, tests, demo, benchmarks. `make demo` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup test test-generated demo lint bench clean

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

# Parity tests of the committed generated models (none are emitted yet: the emit stage is next).
test-generated: setup
	@if ls generated/*/tests >/dev/null 2>&1; then \
		$(BIN)/python -m pytest -q generated; \
	else \
		echo "test-generated: no generated models under generated/ yet"; \
	fi

demo: setup
	$(BIN)/ttgen trace llama --preset tiny --mode both

lint: setup
	$(BIN)/ruff check compiler tests
	$(BIN)/ruff format --check compiler tests

bench: setup
	$(BIN)/python -m ttgen.bench.trace
	$(BIN)/python -m ttgen.bench.emu

clean:
	rm -rf $(VENV) traces .pytest_cache .ruff_cache
