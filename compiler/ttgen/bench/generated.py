"""Generated-code benchmarks, measured in one run:

1. `ttgen emit` for the llama-3.1-8b preset (trace on meta + plan + render), wall time;
2. decode of the committed generated/llama (tiny preset) on the emulator — a replayed trace step
   for MAX_BATCH users — against HF eager decode with a KV cache for the same users.

    python -m ttgen.bench.generated [--steps 20]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _emit_time(preset: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ttgen.cli", "emit", "specs/llama.yaml", "--preset", preset, "--out", tmp],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return time.perf_counter() - start


def _decode_times(steps: int) -> tuple[float, float, int]:
    from ttgen import emu

    emu.install()
    sys.path.insert(0, str(Path("generated").resolve()))
    pkg = importlib.import_module("llama")
    model_mod = importlib.import_module("llama.model")
    gen_mod = importlib.import_module("llama.generator")
    conf = importlib.import_module("llama.tests.conftest")
    import transformers

    torch.manual_seed(0)
    config = transformers.LlamaConfig(**conf.HF_CONFIG)
    config._attn_implementation = "sdpa"
    hf = transformers.LlamaForCausalLM(config).eval()
    import ttnn

    device = ttnn.open_device(device_id=0, trace_region_size=64 << 20)
    model = model_mod.Transformer(device, {k: v.detach() for k, v in hf.state_dict().items()})
    generator = gen_mod.Generator(model, use_trace=True)
    batch = importlib.import_module("llama.model_config").MAX_BATCH
    prompt_len = 16
    prompts = torch.randint(0, config.vocab_size, (batch, prompt_len))
    generator.prefill(list(prompts))
    tokens = torch.zeros(batch, dtype=torch.int64)
    tt_times = []
    for step in range(steps + 1):  # the first step compiles and captures the trace
        start = time.perf_counter()
        generator.decode(tokens, torch.full((batch,), prompt_len + step, dtype=torch.int64))
        tt_times.append(time.perf_counter() - start)
    generator.release()
    ttnn.close_device(device)

    hf_times = []
    with torch.no_grad():
        out = hf(input_ids=prompts, use_cache=True)
        cache = out.past_key_values
        for _ in range(steps + 1):
            start = time.perf_counter()
            out = hf(input_ids=tokens[:, None], cache=cache, use_cache=True)
            hf_times.append(time.perf_counter() - start)
            cache = out.past_key_values
    _ = pkg
    return statistics.median(tt_times[1:]), statistics.median(hf_times[1:]), batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rich.console import Console
    from rich.table import Table

    emit_s = _emit_time("llama-3.1-8b")
    tt, hf, batch = _decode_times(args.steps)
    table = Table("measure", "value", "goal", title="generated code")
    table.add_row("ttgen emit, llama-3.1-8b (trace + plan + render)", f"{emit_s:.2f} s", "≤ 15 s")
    table.add_row(
        f"emulator decode step, tiny, {batch} users (trace replay)", f"{tt * 1e3:.1f} ms", ""
    )
    table.add_row(f"HF eager decode step, tiny, {batch} users (KV cache)", f"{hf * 1e3:.1f} ms", "")
    table.add_row("ratio emulator / HF per token", f"{tt / hf:.2f}", "≤ 3")
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
