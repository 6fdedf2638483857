"""Generated-code benchmarks, measured in one run:

1. `ttgen emit` for the llama-3.1-8b preset (trace on meta + plan + render), wall time;
2. decode of the committed generated/llama (tiny preset) on the emulator — a replayed trace step
   for MAX_BATCH users — against HF eager decode with a KV cache for the same users, in
   alternating rounds (the ratio is the median of the rounds' ratios).

    python -m ttgen.bench.generated [--steps 10] [--rounds 6]
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

from ttgen.console import report_console


def _emit_time(preset: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ttgen.cli", "emit", "specs/llama.yaml", "--preset", preset, "--out", tmp],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return time.perf_counter() - start


def _decode_times(steps: int, rounds: int) -> tuple[float, float, float, int]:
    """Median step times (emulator, HF) and the median of per-round ratios. The two alternate in
    rounds of `steps` steps each, so a drift in the machine's speed reaches both alike."""
    from ttgen import emu

    emu.install()
    sys.path.insert(0, str(Path("generated").resolve()))
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
    position = prompt_len

    def tt_step() -> None:
        nonlocal position
        generator.decode(tokens, torch.full((batch,), position, dtype=torch.int64))
        position += 1

    with torch.no_grad():
        cache = hf(input_ids=prompts, use_cache=True).cache

        def hf_step() -> None:
            nonlocal cache
            cache = hf(input_ids=tokens[:, None], cache=cache, use_cache=True).cache

        tt_step()  # compiles and captures the trace
        hf_step()
        tt_times, hf_times, ratios = [], [], []
        for _ in range(rounds):
            tt_round = _timed(tt_step, steps)
            hf_round = _timed(hf_step, steps)
            tt_times += tt_round
            hf_times += hf_round
            ratios.append(statistics.median(tt_round) / statistics.median(hf_round))
    generator.release()
    ttnn.close_device(device)
    return (
        statistics.median(tt_times),
        statistics.median(hf_times),
        statistics.median(ratios),
        batch,
    )


def _timed(step, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="decode steps per round")
    parser.add_argument("--rounds", type=int, default=6, help="alternating emulator/HF rounds")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from rich.table import Table

    emit_s = _emit_time("llama-3.1-8b")
    tt, hf, ratio, batch = _decode_times(args.steps, args.rounds)
    table = Table("measure", "value", "goal", title="generated code")
    table.add_row("ttgen emit, llama-3.1-8b (trace + plan + render)", f"{emit_s:.2f} s", "≤ 15 s")
    table.add_row(
        f"emulator decode step, tiny, {batch} users (trace replay)", f"{tt * 1e3:.1f} ms", ""
    )
    table.add_row(f"HF eager decode step, tiny, {batch} users (KV cache)", f"{hf * 1e3:.1f} ms", "")
    table.add_row(
        f"ratio emulator / HF per token (median of {args.rounds} alternating rounds)",
        f"{ratio:.2f}",
        "≤ 3",
    )
    report_console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
