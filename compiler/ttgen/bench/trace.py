"""`ttgen trace` vs a bare torch.export of the same model, as separate processes, in one run.

Both sides pay the same start-up (interpreter, torch and transformers imports, building the model on
the meta device). ttgen runs with TTGEN_TRACE_JOBS=1 here, one export after the other like the bare
side (by default it exports decode in a forked worker while it exports prefill). The `--no-stamp`
row exports every layer like the bare side, so its ratio is what ttgen adds (graph conversion,
summary, JSON); the other rows are ttgen as it runs, exporting three layers and stamping the rest.

    python -m ttgen.bench.trace [--preset llama-3.1-8b] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_BARE = """
import sys, torch
from ttgen.console import report_console
from ttgen.models import build_model, get_family
from ttgen.trace.export import export_decode, export_prefill
model, _ = build_model(get_family("llama"), preset=sys.argv[1])
seq_len = int(sys.argv[2])
with torch.no_grad():
    for mode in sys.argv[3].split(","):
        if mode == "prefill":
            export_prefill(model, 1, seq_len)
        else:
            export_decode(model, 1, seq_len)
"""


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "TTGEN_TRACE_JOBS": "1"})  # fmt: skip
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="llama-3.1-8b")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=2, help="runs per side; the median is used")
    args = parser.parse_args()

    from rich.table import Table

    table = Table(
        "mode", "ttgen trace (s)", "bare torch.export (s)", "ratio", "goal",
        title=f"trace overhead, llama --preset {args.preset}, seq_len {args.seq_len}",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for mode, modes, flags in (
            ("prefill", "prefill", []),
            ("both", "prefill,decode", []),
            ("both", "prefill,decode", ["--no-stamp"]),
        ):
            out = str(Path(tmp) / "t.json")
            ttgen = [sys.executable, "-m", "ttgen.cli", "trace", "llama", "--preset", args.preset,
                     "--seq-len", str(args.seq_len), "--mode", mode, "--out", out, "--quiet", *flags]  # fmt: skip
            bare = [sys.executable, "-c", _BARE, args.preset, str(args.seq_len), modes]
            t_ttgen, t_bare = [], []
            for _ in range(args.repeat):  # interleave so both sides see the same machine state
                t_ttgen.append(_timed(ttgen))
                t_bare.append(_timed(bare))
            a, b = statistics.median(t_ttgen), statistics.median(t_bare)
            table.add_row(
                " ".join([mode, *flags]), f"{a:.2f}", f"{b:.2f}", f"{a / b:.2f}", "≤ 1.50"
            )
    from ttgen.console import report_console

    report_console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
