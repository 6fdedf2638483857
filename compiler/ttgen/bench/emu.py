"""Emulator throughput: block-float packing of a Llama-3.1-8B MLP weight (4096 x 14336).

    python -m ttgen.bench.emu [--repeat 3]

Prints the median time of the bit-exact bfp8/bfp4 round trip next to a plain torch bf16 cast of the
same tensor, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from ttgen.console import report_console


def _median(fn, repeat: int) -> float:
    fn()  # warm-up: allocator and thread pool
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from rich.table import Table

    from ttgen.emu.blockfloat import quantize

    weight = torch.randn(4096, 14336, generator=torch.Generator().manual_seed(0))
    cast = _median(lambda: weight.to(torch.bfloat16), args.repeat)
    table = Table(
        "conversion", "time (s)", "× bf16 cast", "goal", title="4096 x 14336 weight, host packing"
    )
    table.add_row("torch bf16 cast", f"{cast:.3f}", "1.0", "")
    for name, bits in (("bfloat8_b", 8), ("bfloat4_b", 4)):
        t = _median(lambda bits=bits: quantize(weight, bits), args.repeat)
        table.add_row(name, f"{t:.3f}", f"{t / cast:.1f}", "≤ 2 s" if bits == 8 else "")
    report_console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
