"""`make validate-ttnn`: the real ttnn 0.81.1 (Python 3.12 venv, mock device) as the oracle.

The venv is built once under $TTGEN_CACHE/ttnn-lane (default ~/.cache/ttgen): pyenv's 3.12
interpreter, ttnn==0.81.1, torch (2.14.1, the release the local index carries for 3.12) and this
project (editable, no dependencies), plus the inert RISC-V toolchain stand-in
(ttgen.validate.toolchain) that lets `open_device` JIT-build on a mock cluster. Each oracle check
runs in a subprocess with a timeout, on a mock cluster descriptor kept as project data
(validate/clusters), with its own TT_METAL_CACHE.

Checks, each run on both the real package and the emulator: block-float host packing (bit for
bit), host conversions, the API (signatures and device attributes by introspection), opening
every mock cluster, rejection parity (invalid calls and valid controls), and the generated
models on mock N150 and P150 (every op through the real validators; output specs compared op by
op; the planner's L1 estimate against the real peak L1 per op group). One table is printed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ttgen.console import report_console
from ttgen.errors import TtgenError

__all__ = ["Row", "blockfloat_battery", "ensure_lane", "main", "run_oracle"]

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


def repo_root() -> Path | None:
    root = HERE.parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def ensure_lane(status=lambda _m: None) -> Path:
    """The lane's python, building the venv on first use; the project and the toolchain stand-in
    are (re)installed whenever they are missing."""
    venv = lane_dir() / "venv"
    python = venv / "bin" / "python"
    marker = venv / ".ttgen-ready"
    if not marker.is_file():
        status(f"building the ttnn {TTNN_VERSION} lane in {venv} (once, a few minutes)")
        subprocess.run([_python312(), "-m", "venv", str(venv)], check=True)
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", f"ttnn=={TTNN_VERSION}", f"torch=={TORCH_312}"],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise TtgenError(
                f"cannot install ttnn=={TTNN_VERSION} / torch=={TORCH_312} for Python 3.12: {last}"
            )
        marker.write_text("ok\n")
    site = next(iter(sorted((venv / "lib").glob("python3.12/site-packages"))), None)
    if site is None or not (site / "ttnn").is_dir():
        raise TtgenError(f"{venv}: no ttnn package; delete the folder to rebuild the lane")
    root = repo_root()
    if root is None:
        raise TtgenError("the ttnn lane needs a source checkout of ttgen (pyproject.toml)")
    marker = site / "ttgen-lane-source.txt"  # not a .pth: its lines would join sys.path
    # the editable install points at one checkout: reinstall when the lane serves another
    if not marker.is_file() or marker.read_text().splitlines()[1:2] != [str(root)]:
        status(f"installing ttgen from {root} into the lane (editable, no dependencies)")
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(root)],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            raise TtgenError(f"cannot install ttgen into the lane: {proc.stderr.strip()[-300:]}")
        marker.write_text(f"# ttgen installed by the ttnn lane from\n{root}\n")
    install_toolchain(site, python)
    return python


def install_toolchain(site: Path, python: Path) -> None:
    """The inert `riscv-tt-elf-g++` where tt-metal looks for SFPI (rewritten when it changed)."""
    target = site / "ttnn" / "runtime" / "sfpi" / "compiler" / "bin" / "riscv-tt-elf-g++"
    text = f"#!{python}\n" + (HERE / "toolchain.py").read_text()
    if target.is_file() and target.read_text() == text:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(0o755)


def _cluster_descriptor(device: str) -> Path:
    """A copy of the project's mock descriptor in the lane's cache: tt-metal writes generated
    fabric files next to the descriptor it is given, and the source tree must stay clean."""
    src = HERE / "clusters" / f"{device}.yaml"
    dst = lane_dir() / "clusters" / device / f"{device}.yaml"
    if not dst.is_file() or dst.read_text() != src.read_text():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    return dst


def run_oracle(python: Path, script: str, *args: str, device: str = "n150", timeout: int = 600,
               allow_crash: bool = False) -> subprocess.CompletedProcess:  # fmt: skip
    """Run a lane script (a file of this folder) under the real ttnn on a mock `device`."""
    env = dict(os.environ)
    env["TT_METAL_MOCK_CLUSTER_DESC_PATH"] = str(_cluster_descriptor(device))
    env["TT_METAL_CACHE"] = str(lane_dir() / "tt-metal-cache")
    env["TT_LOGGER_LEVEL"] = "error"
    env.pop("PYTHONPATH", None)
    try:
        # tt-metal writes generated/watcher and generated/fabric under the working directory
        work = lane_dir() / "work"
        work.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [str(python), str(HERE / script), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=work,
        )
    except subprocess.TimeoutExpired:
        raise TtgenError(f"oracle {script} timed out after {timeout} s") from None
    if proc.returncode != 0 and not allow_crash:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise TtgenError(f"oracle {script} failed:\n{tail}")
    return proc


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


@dataclass
class Row:
    """One line of the lane's table."""

    section: str
    check: str
    real: str
    emulator: str
    agree: bool | None  # None: informational
    l1: str = ""


def api_check(python: Path) -> list[Row]:
    """Signatures of every emulator function and class, and the device's attributes, against the
    installed real package by introspection."""
    import json

    from ttgen import emu
    from ttgen.emu.conformance import DEVIATIONS, ENUMS, EXTENSIONS, compare, public_api

    ours = {q: o for q, n, o in public_api(emu) if n not in EXTENSIONS}
    with tempfile.TemporaryDirectory() as tmp:
        names, out = Path(tmp) / "names.json", Path(tmp) / "api.json"
        names.write_text(json.dumps({"callables": sorted(ours), "enums": list(ENUMS)}))
        run_oracle(python, "oracle_api.py", str(names), str(out))
        real = json.loads(out.read_text())
    same, differ, deviations = 0, [], 0
    for qualified, obj in ours.items():
        entry = real["callables"].get(qualified, {"exists": False})
        if not entry.get("exists") or "error" in entry:
            differ.append(f"{qualified}: {entry.get('error', 'missing in the real package')}")
        elif qualified in DEVIATIONS:
            deviations += 1
        elif not (problems := compare(qualified, obj, entry)):
            same += 1
        else:
            differ.extend(problems)
    rows = [Row("API", f"signatures of {len(ours)} emulated functions and classes, overload by overload", "introspected",
                f"{same} identical, {deviations} listed deviations"
                + (f", differ: {', '.join(differ)}" if differ else ""), not differ)]  # fmt: skip
    enum_extra = {
        e: sorted(set(getattr(emu, e).__members__) - set(real["enums"][e])) for e in ENUMS
    }
    enum_extra = {e: m for e, m in enum_extra.items() if m}
    rows.append(Row("API", f"members of {len(ENUMS)} enums", "introspected",
                    "all exist" if not enum_extra else f"not in ttnn: {enum_extra}", not enum_extra))  # fmt: skip
    device_attrs = set(real["device_attributes"])
    vendored = set(
        json.loads((HERE.parent / "emu" / "api" / "mesh_device-0.81.1.json").read_text())[
            "attributes"
        ]
    )
    rows.append(Row("API", "MeshDevice attributes (generated code may use only these)",
                    f"{len(device_attrs)} attributes",
                    "vendored list current" if vendored == device_attrs else
                    f"vendored list differs: {sorted(vendored ^ device_attrs)}", vendored == device_attrs))  # fmt: skip
    return rows


def extend_manifest(python: Path, names: list[str]) -> list[str]:
    """Add callables the vendored manifest lacks, introspected from the installed wheel in the
    manifest's own format (classes: names starting with a capital)."""
    import json

    path = HERE.parent / "emu" / "api" / "ttnn-0.81.1.json"
    data = json.loads(path.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "names.json", Path(tmp) / "api.json"
        src.write_text(json.dumps({"callables": names, "enums": []}))
        run_oracle(python, "oracle_api.py", str(src), str(out))
        real = json.loads(out.read_text())["callables"]
    added = []
    for name in names:
        entry = real[name]
        if not entry.get("exists") or "error" in entry:
            raise TtgenError(
                f"--extend-manifest: {name}: {entry.get('error', 'not in the installed ttnn')}"
            )
        entry |= {"source": "ttgen's ttnn lane: oracle_api.py introspection of the installed 0.81.1 wheel "
                            "(nanobind __nb_signature__ / inspect.signature)", "confidence": "read"}  # fmt: skip
        section = "classes" if name.split(".")[-1][:1].isupper() else "functions"
        data[section][name] = entry
        added.append(name)
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    return added


def golden_check(python: Path) -> list[Row]:
    """Ops with a real golden function: the golden (torch, from the real package) vs the emulator's
    op on bf16 operands with HiFi4 / fp32 accumulation. Agreement: PCC >= 0.9999 and the largest
    error within 2^-6 of the largest golden magnitude (a couple of bf16 output roundings)."""
    from ttgen import emu
    from ttgen.validate.golden_cases import CASES, inputs, run_emulator

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "golden.npz"
        run_oracle(python, "oracle_golden.py", str(out))
        golden = dict(np.load(out))
    t = inputs(torch)
    dev = emu.open_device(device_id=0)
    rows = []
    try:
        for name in CASES:
            ours = run_emulator(emu, torch, name, t, dev).double()
            theirs = torch.from_numpy(golden[name]).double()
            if ours.shape != theirs.shape:
                rows.append(Row("golden functions", name, f"golden {list(theirs.shape)}",
                                f"shape {list(ours.shape)}", False))  # fmt: skip
                continue
            a, b = ours.flatten(), theirs.flatten()
            pcc = float(torch.corrcoef(torch.stack([a, b]))[0, 1]) if not torch.equal(a, b) else 1.0
            err = float((a - b).abs().max())
            scale = float(b.abs().max())
            rows.append(Row("golden functions", name, "ttnn.get_golden_function",
                            f"PCC {pcc:.6f}, max |diff| {err:.3g} ({err / scale:.2%} of max)",
                            pcc >= 0.9999 and err <= scale / 64))  # fmt: skip
    finally:
        emu.close_device(dev)
    from ttgen.validate.golden_cases import run_golden

    for (
        name
    ) in CASES:  # the emulator's own golden functions (ttnn.get_golden_function) vs the real ones
        ours = run_golden(emu, torch, name, t).double().flatten()
        theirs = torch.from_numpy(golden[name]).double().flatten()
        same = ours.shape == theirs.shape and float((ours - theirs).abs().max()) <= 1e-5 * float(
            theirs.abs().max()
        )
        rows.append(Row("golden functions", f"emulator get_golden_function({name})", "real golden",
                        "equal" if same else "differs", same))  # fmt: skip
    return rows


def cluster_check(python: Path) -> list[Row]:
    """open_device / open_mesh_device on every mock cluster (the toolchain stand-in at work)."""
    rows = []
    for cluster, expect in (("n150", "1 chip, 8x8"), ("n300", "2 chips, 8x8"), ("p150", "1 chip, 13x10"),
                            ("t3k", "8 chips, 8x8")):  # fmt: skip
        proc = run_oracle(python, "oracle_device.py", cluster, device=cluster, timeout=300)
        got = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "?"
        rows.append(Row("devices", f"open the mock {cluster}", got, "-", got == expect))
    return rows


def trace_probe(python: Path) -> Row:
    """Whether the mock device can capture a Metal trace at all (one ttnn.add)."""
    proc = run_oracle(python, "oracle_trace.py", timeout=300, allow_crash=True)
    if proc.returncode == 0 and "replayed" in proc.stdout:
        real = "captures and replays"
    elif proc.returncode < 0:
        real = (
            f"cannot: the mock dispatcher dies (signal {-proc.returncode}) capturing one ttnn.add"
        )
    else:
        real = f"cannot: exit {proc.returncode}"
    return Row("trace", "Metal trace capture on the mock device", real,
               "generated tests capture and replay (make test-generated)", None)  # fmt: skip


def rejection_parity(python: Path, device: str = "n150") -> list[Row]:
    """Invalid calls (and valid controls) on both: the verdicts must agree, or the emulator is
    stricter for a listed reason."""
    import json

    from ttgen import emu
    from ttgen.validate.rejection_cases import CASES, EMULATOR_STRICTER, run_case

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cases.json"
        run_oracle(python, "oracle_cases.py", str(out), device=device)
        real = json.loads(out.read_text())
    os.environ["TTGEN_EMU_DEVICE"] = device
    dev = emu.open_device(device_id=0)
    rows = []
    try:
        for case in CASES:
            ours = run_case(case, emu, torch, dev)
            theirs = real[case.name]
            agree = ours["verdict"] == theirs["verdict"]
            note = ""
            if not agree and case.name in EMULATOR_STRICTER and ours["verdict"] == "rejects":
                agree, note = True, f" (stricter: {EMULATOR_STRICTER[case.name]})"
            kind = "valid" if case.valid else "invalid"
            rows.append(Row(f"parity: {case.area}", f"[{kind}] {case.name}",
                            f"{theirs['verdict']}: {theirs['message']}".rstrip(": "),
                            f"{ours['verdict']}: {ours['message']}".rstrip(": ") + note, agree))  # fmt: skip
    finally:
        emu.close_device(dev)
    return rows


def program_cache_check(python: Path) -> Row:
    """num_program_cache_entries() after each step of the same sequence, real vs emulator."""
    import json

    from ttgen import emu
    from ttgen.validate.rejection_cases import program_cache_counts

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "counts.json"
        run_oracle(python, "oracle_program_cache.py", str(out))
        real = [tuple(c) for c in json.loads(out.read_text())]
    dev = emu.open_device(device_id=0)
    try:
        ours = program_cache_counts(emu, torch, dev)
    finally:
        emu.close_device(dev)
    show = lambda counts: " ".join(str(n) for _, n in counts)  # noqa: E731
    return Row("device API", f"num_program_cache_entries() along {len(real)} steps", show(real), show(ours),
               real == ours)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    import argparse

    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(
        prog="python -m ttgen.validate.lane", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="skip the generated models")
    parser.add_argument(
        "--runs", metavar="TEXT", help="only the generated-model runs whose label holds TEXT"
    )
    parser.add_argument("--extend-manifest", nargs="+", metavar="NAME",
                        help="introspect these ttnn names in the installed wheel and add them to the "
                             "vendored API manifest (compiler/ttgen/emu/api), then exit")  # fmt: skip
    args = parser.parse_args(argv)
    if args.extend_manifest:
        added = extend_manifest(ensure_lane(), args.extend_manifest)
        print(f"manifest: {', '.join(added)} added from the installed ttnn 0.81.1")
        return 0
    err = Console(stderr=True, log_path=False)
    rows: list[Row] = []
    started = time.perf_counter()
    try:
        with err.status("ttnn lane") as status:
            python = ensure_lane(status.update)
            status.update("block floats: real host packer vs emulator")
            for name, dtype, same, diff in blockfloat_battery(python):
                rows.append(Row("block floats", f"{name} {dtype}", "reference packer",
                                "bit-exact" if same else f"differs (max {diff:g})", same))  # fmt: skip
            status.update("host conversions: real vs emulator")
            for key, real, ours, agree in host_battery(python):
                rows.append(Row("host conversions", key, real, ours, agree))
            status.update("golden functions vs emulator ops")
            rows += golden_check(python)
            status.update("API introspection")
            rows += api_check(python)
            status.update("opening the mock clusters")
            rows += cluster_check(python)
            status.update("rejection parity")
            rows += rejection_parity(python)
            status.update("program cache")
            rows.append(program_cache_check(python))
            status.update("Metal trace on the mock device")
            rows.append(trace_probe(python))
            if not args.quick:
                from ttgen.validate.generated_check import generated_rows

                rows += generated_rows(python, status.update, only=args.runs)
    except TtgenError as exc:
        print(f"validate-ttnn: error: {exc}", file=sys.stderr)
        return 2
    table = Table("section", "check", "real ttnn 0.81.1 (mock)", "emulator", "planner L1 / real L1 (per core)",
                  title="ttgen vs the real ttnn 0.81.1", show_lines=False)  # fmt: skip
    mark = {True: "", False: "[red]✗ [/]", None: ""}
    for r in rows:
        table.add_row(r.section, r.check, r.real, mark[r.agree] + r.emulator, r.l1)
    report_console().print(table)
    checked = [r for r in rows if r.agree is not None]
    failed = [r for r in checked if not r.agree]
    parity = [r for r in rows if r.section.startswith("parity")]
    invalid = [r for r in parity if r.check.startswith("[invalid]")]
    print(
        f"{len(checked) - len(failed)}/{len(checked)} checks agree; rejection parity: {len(invalid)} invalid "
        f"calls + {len(parity) - len(invalid)} valid controls; {time.perf_counter() - started:.0f} s"
    )
    for r in failed:
        print(f"DISAGREE: {r.section}: {r.check}: real {r.real!r}, emulator {r.emulator!r}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
