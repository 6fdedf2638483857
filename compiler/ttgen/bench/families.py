"""Parity of every causal-LM family on its tiny preset, measured by the generated tests themselves.

    python -m ttgen.bench.families [--families llama,qwen3]

For each family: a tiny checkpoint of its preset with non-trivial weights (no parameter constant),
`ttgen emit specs/llama.yaml --checkpoint` into a scratch folder, then the package's own parity
tests on the emulator (`pytest -s`); the figures are the ones those tests print — the worst decode
PCC over the spec's decode steps and teacher forcing top-1 / top-5 — and whether every test passed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ttgen.console import report_console

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "specs" / "llama.yaml"
# what a tiny preset leaves out that the family's math has (Mistral's window)
EXTRA = {"mistral": {"sliding_window": 48, "use_sliding_window": True}}


def measure(family: str, work: Path) -> dict:
    from ttgen.cli import main
    from ttgen.models.checkpoint import save_tiny_checkpoint

    ckpt = save_tiny_checkpoint(family, work / f"ckpt_{family}", **EXTRA.get(family, {}))
    package = work / f"gen_{family}"
    start = time.perf_counter()
    if (
        main(
            ["emit", str(SPEC), "--checkpoint", str(ckpt), "--seq-len", "64", "--out", str(package)]
        )
        != 0
    ):
        return {"family": family, "error": "emit failed"}
    emit_s = time.perf_counter() - start
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--ttnn=emu",
                           str(package)], capture_output=True, text=True, cwd=work)  # fmt: skip
    out = proc.stdout
    pcc = re.search(r"worst PCC ([0-9.]+)", out)
    tf = re.search(r"top-1 ([0-9.]+), top-5 ([0-9.]+)", out)
    passed = re.search(r"(\d+) passed", out)
    return {
        "family": family,
        "tests": f"{passed.group(1) if passed else 0} passed"
        + ("" if proc.returncode == 0 else ", FAILED"),
        "decode_pcc": float(pcc.group(1)) if pcc else None,
        "top1": float(tf.group(1)) if tf else None,
        "top5": float(tf.group(2)) if tf else None,
        "emit_s": emit_s,
    }


def main(argv: list[str] | None = None) -> int:
    from rich.table import Table

    from ttgen.models.registry import FAMILIES

    parser = argparse.ArgumentParser(
        prog="python -m ttgen.bench.families", description=__doc__.splitlines()[0]
    )
    causal = [f.name for f in FAMILIES.values() if f.model_kind == "causal_lm"]
    parser.add_argument(
        "--families",
        default=",".join(causal),
        help=f"comma-separated (default: {','.join(causal)})",
    )
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            rows.append(measure(family, Path(tmp)))
    table = Table("family", "generated tests (emulator)", "decode worst PCC", "teacher forcing top-1",
                  "top-5", "emit s", title="tiny presets, own non-trivial weights, specs/llama.yaml")  # fmt: skip
    for r in rows:
        if "error" in r:
            table.add_row(r["family"], r["error"], "", "", "", "")
            continue

        def fmt(v, digits):
            return "-" if v is None else f"{v:.{digits}f}"

        table.add_row(r["family"], r["tests"], fmt(r["decode_pcc"], 4), fmt(r["top1"], 3), fmt(r["top5"], 3),
                      f"{r['emit_s']:.1f}")  # fmt: skip
    report_console().print(table)
    return 0 if all("error" not in r and "FAILED" not in r["tests"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
