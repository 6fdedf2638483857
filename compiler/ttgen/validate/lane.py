"""`make validate-ttnn`: the real ttnn 0.81.1 (Python 3.12 venv, mock device) as the oracle.

The venv is built once under $TTGEN_CACHE/ttnn-lane (default ~/.cache/ttgen): pyenv's 3.12
interpreter, ttnn==0.81.1 and torch (2.14.1, the release the local index carries for 3.12). Each
oracle check runs in a subprocess with a timeout, on a mock cluster descriptor kept as project data.

Implemented so far: block floats — the emulator's host packing vs the real host packer, bit for
bit, on a battery of inputs. Not yet: API introspection, rejection parity, the generated code on
the mock device (see the issue's note)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from ttgen.errors import TtgenError

__all__ = ["blockfloat_battery", "ensure_lane", "main", "run_oracle"]

HERE = Path(__file__).resolve().parent
TTNN_VERSION = "0.81.1"
TORCH_312 = "2.14.1"


def lane_dir() -> Path:
    from ttgen.models.gguf import cache_root

    return cache_root() / "ttnn-lane"


def _python312() -> str:
    candidates = sorted(glob.glob(str(Path.home() / ".pyenv/versions/3.12.*/bin/python"))) + [
        shutil.which("python3.12") or ""
    ]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    raise TtgenError(
        "no Python 3.12 interpreter (pyenv 3.12.x or python3.12 on PATH): the ttnn lane needs one"
    )


def ensure_lane(status=lambda _m: None) -> Path:
    """The lane's python, building the venv on first use."""
    venv = lane_dir() / "venv"
    python = venv / "bin" / "python"
    marker = venv / ".ttgen-ready"
    if marker.is_file():
        return python
    status(f"building the ttnn {TTNN_VERSION} lane in {venv}")
    subprocess.run([_python312(), "-m", "venv", str(venv)], check=True)
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", f"ttnn=={TTNN_VERSION}", f"torch=={TORCH_312}"],
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise TtgenError(
            f"cannot install ttnn=={TTNN_VERSION} / torch=={TORCH_312} for Python 3.12: {last}"
        )
    marker.write_text("ok\n")
    return python


def run_oracle(
    python: Path, script: str, *args: str, device: str = "n150", timeout: int = 600
) -> None:
    env = dict(os.environ)
    env["TT_METAL_MOCK_CLUSTER_DESC_PATH"] = str(HERE / "clusters" / f"{device}.yaml")
    env["TT_METAL_CACHE"] = str(lane_dir() / "tt-metal-cache")
    env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run(
            [str(python), str(HERE / script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise TtgenError(f"oracle {script} timed out after {timeout} s") from None
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise TtgenError(f"oracle {script} failed:\n{tail}")


def battery() -> dict[str, np.ndarray]:
    """Inputs that exercise every branch of the packer."""
    g = torch.Generator().manual_seed(0)
    scales = torch.logspace(-8, 8, 64)
    ties = 1.0 + torch.arange(64, dtype=torch.float32) / 128  # halfway points of bfp8's 1/64 steps
    saturate = torch.full((32, 64), 1.9999999)
    saturate[:, ::16] = 1.0
    denormal = torch.full((32, 32), 1e-40)
    denormal[0, 0] = 1.0
    cases = {
        "random": torch.randn(64, 128, generator=g),
        "mixed_scales_per_row": torch.randn(32, 64, generator=g) * scales,
        "zeros_and_negative_zero": torch.zeros(32, 32).index_fill_(1, torch.arange(0, 32, 2), -0.0),
        "denormals": denormal,
        "ties": ties.repeat(32, 1),
        "saturation": saturate,
        "odd_shape_padding": torch.randn(3, 20, generator=g),
        "rank3": torch.randn(2, 40, 72, generator=g) * 100,
    }
    return {k: v.to(torch.float32).numpy() for k, v in cases.items()}


def blockfloat_battery(python: Path) -> list[tuple[str, str, bool, float]]:
    from ttgen import emu

    inputs = battery()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, **inputs)
        run_oracle(python, "oracle_blockfloat.py", str(src), str(dst))
        real = np.load(dst)
        rows = []
        for name, x in inputs.items():
            for dtype in ("bfloat8_b", "bfloat4_b"):
                ours = emu.to_torch(
                    emu.from_torch(
                        torch.from_numpy(x), dtype=getattr(emu, dtype), layout=emu.TILE_LAYOUT
                    )
                ).numpy()
                theirs = real[f"{name}:{dtype}"]
                same = ours.shape == theirs.shape and np.array_equal(
                    ours.view(np.uint32), theirs.view(np.uint32)
                )
                diff = (
                    float(np.abs(ours - theirs).max())
                    if ours.shape == theirs.shape
                    else float("inf")
                )
                rows.append((name, dtype, same, diff))
    return rows


def _describe(meta: dict) -> str:
    if "error" in meta:
        return "rejects"
    return f"{meta['dtype']} {meta['layout']} {meta['padded_shape']} → {meta['torch_dtype']}"


def host_battery(python: Path) -> list[tuple[str, str, str, bool]]:
    """Host conversions (from_torch / to_layout / typecast / to_torch) on both sides: metadata and
    values must agree, and so must rejections. Rows: (case, real, emulator, agree)."""
    import json

    from ttgen import emu
    from ttgen.validate.host_cases import CASES, run_case

    g = torch.Generator().manual_seed(1)
    inputs = {
        "floats": (torch.randn(2, 40, 72, generator=g) * 10).numpy(),
        "odd": torch.randn(3, 20, generator=g).numpy(),
        "ints": torch.randint(0, 1000, (1, 40), generator=g).to(torch.int32).numpy(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        src, meta_path, values_path = (
            Path(tmp) / "in.npz",
            Path(tmp) / "meta.json",
            Path(tmp) / "values.npz",
        )
        np.savez(src, **inputs)
        run_oracle(python, "oracle_host.py", str(src), str(meta_path), str(values_path))
        real_meta = json.loads(meta_path.read_text())
        real_values = np.load(values_path)
        rows = []
        for case in CASES:
            key = "|".join(case)
            real = real_meta[key]
            try:
                info, out = run_case(emu, torch, torch.from_numpy(inputs[case[0]]), *case[1:])
                ours_values = (
                    out.float().numpy()
                    if out.dtype != torch.uint32
                    else out.to(torch.int64).numpy()
                )
            except RuntimeError as exc:
                info, ours_values = {"error": str(exc).splitlines()[0][:200]}, None
            if "error" in real or "error" in info:
                agree = ("error" in real) == ("error" in info)
            else:
                theirs = real_values[key]
                agree = (
                    info == real
                    and ours_values.shape == theirs.shape
                    and np.array_equal(ours_values, theirs)
                )
            rows.append((key, _describe(real), _describe(info), agree))
    return rows


def main() -> int:
    from rich.console import Console
    from rich.table import Table

    err = Console(stderr=True, log_path=False)
    try:
        with err.status("ttnn lane") as status:
            python = ensure_lane(status.update)
            status.update("block floats: real host packer vs emulator")
            rows = blockfloat_battery(python)
            status.update("host conversions: real vs emulator")
            host = host_battery(python)
    except TtgenError as exc:
        print(f"validate-ttnn: error: {exc}", file=sys.stderr)
        return 2
    table = Table(
        "check",
        "dtype",
        "real ttnn 0.81.1 vs emulator",
        "max |diff|",
        title="block floats (host packing)",
    )
    for name, dtype, same, diff in rows:
        table.add_row(
            name, dtype, "[green]bit-exact[/]" if same else "[red]differs[/]", f"{diff:g}"
        )
    Console().print(table)
    host_table = Table(
        "case (input|dtype|layout|op)",
        "real ttnn 0.81.1",
        "emulator",
        "agree",
        title="host conversions",
    )
    for key, real, ours, agree in host:
        host_table.add_row(key, real, ours, "[green]yes[/]" if agree else "[red]no[/]")
    Console().print(host_table)
    return 0 if all(r[2] for r in rows) and all(r[3] for r in host) else 1


if __name__ == "__main__":
    sys.exit(main())
