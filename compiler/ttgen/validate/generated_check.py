"""The generated models on the real ttnn 0.81.1 (mock N150 and P150) and on the emulator.

Each run emits a package for its device (max sequence 1024), then drives it on both backends with
ttgen.validate.drive_generated: weights loaded (zeros), prefill at 128 and 1024 tokens, three
decode steps. The real package must accept every op (its validators, allocator and program
factories run on the mock device); each op's output shape, dtype, layout and memory config must be
the emulator's, and every module call must be the next call of its planned program with the
planned output specs (ttgen.validate.plan_check); the planner's L1 estimate per op group is set against the real peak L1 per core
(NO_DISPATCH graph capture of each op).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ttgen.errors import TtgenError
from ttgen.validate.plan_check import compare_with_plan, phase_mode

__all__ = ["RUNS", "Run", "generated_rows"]

HERE = Path(__file__).resolve().parent
SPEC = "specs/llama.yaml"


@dataclass(frozen=True)
class Run:
    label: str
    preset: str
    devices: tuple[str, ...]
    num_layers: int | None = None
    precision: str | None = None
    batch: int | None = None
    spec_edit: tuple[str, str] | None = None  # (old, new) text replaced in the spec
    prefill: tuple[int, ...] = (128, 1024)
    timeout: int = 900
    emu_prefill: tuple[int, ...] | None = None  # the emulator's subset (None: all)
    spec: str = SPEC


VIT = "specs/vit.yaml"


RUNS = (
    Run("tiny", "tiny", ("n150", "p150")),
    Run(
        "tiny, static KV cache",
        "tiny",
        ("n150",),
        spec_edit=("kv_cache: {kind: paged, block_size: 32}", "kv_cache: {kind: static}"),
    ),  # fmt: skip
    Run(
        "tiny, prefill in 64-row chunks",
        "tiny",
        ("n150",),
        spec_edit=(
            "{prefill: 2d, decode: dram_sharded}",
            "{prefill: {kind: 2d, rows: 64}, decode: dram_sharded}",
        ),
        prefill=(128,),
    ),  # fmt: skip
    Run(
        "smollm2-135m (bf16, 4 users)", "smollm2-135m", ("n150", "p150"), precision="bf16", batch=4
    ),
    # the emulator computes 8B-wide prefill on the CPU: it checks 128 tokens; the real package
    # validates 1024 and 2048 (the MLP in 1024-row chunks) too
    Run(
        "llama-3.1-8b, first 2 of 32 layers",
        "llama-3.1-8b",
        ("n150", "p150"),
        num_layers=2,
        prefill=(128, 1024, 2048),
        emu_prefill=(128,),
    ),  # fmt: skip
    # Qwen3: QK-norm on the heads (ttnn.rms_norm in both modes, the decode heads through L1)
    Run(
        "qwen3-8b, first 2 of 36 layers",
        "qwen3-8b",
        ("n150", "p150"),
        num_layers=2,
        prefill=(128, 1024),
        emu_prefill=(128,),
    ),  # fmt: skip
    # Granite: its multipliers folded into the weights; Phi-3: fused projections split at load
    Run("granite-3.2-8b, first 2 of 40 layers", "granite-3.2-8b", ("n150", "p150"), num_layers=2,
        prefill=(128, 1024), emu_prefill=(128,)),
    Run("phi-3-mini-4k-instruct, first 2 of 32 layers", "phi-3-mini-4k-instruct", ("n150", "p150"), num_layers=2,
        prefill=(128, 1024), emu_prefill=(128,)),
    # OLMo 2: post-norm layers; the QK-norm over the whole projections (slices, norms, concat)
    Run("olmo-2-7b, first 2 of 32 layers", "olmo-2-7b", ("n150", "p150"), num_layers=2,
        prefill=(128, 1024), emu_prefill=(128,)),
    # Gemma: (1 + w) norms folded at load, the tanh GELU fused into the gate's mul, 256-wide heads
    Run("gemma-7b, first 2 of 28 layers", "gemma-7b", ("n150", "p150"), num_layers=2,
        prefill=(128, 1024), emu_prefill=(128,)),
    # Gemma 3: the (1 + w) per-head QK-norm, sandwich norms, a 512-token sliding window (its first
    # layers are all sliding-window; the 5:1 stack is not planned yet)
    Run("gemma-3-1b, first 2 of 26 layers", "gemma-3-1b", ("n150", "p150"), num_layers=2,
        prefill=(128, 1024), emu_prefill=(128,)),
    # ViT at full width, at tt-metal's published batch per device (vit.md §7): N150 8, P150 10
    Run("vit tiny", "tiny", ("n150",), spec=VIT),
    Run("vit-base-patch16-224, first 2 of 12 layers, batch 8", "vit-base-patch16-224", ("n150",), num_layers=2,
        batch=8, spec=VIT),
    Run("vit-base-patch16-224, first 2 of 12 layers, batch 10", "vit-base-patch16-224", ("p150",), num_layers=2,
        batch=10, spec=VIT),
    # tt-metal's precision: bfloat8_b weights and encoder activations, LoFi matmuls
    Run("vit-base-patch16-224 (performance: bfloat8_b), first 2 of 12 layers", "vit-base-patch16-224",
        ("n150", "p150"), num_layers=2, precision="performance", spec=VIT),
)  # fmt: skip


@dataclass
class Outcome:
    records: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    error: str | None = None


def _emit(run: Run, device: str, out: Path):
    """Emit the run's package for `device`; returns (plan, weight shapes)."""
    from ttgen.emit import emit
    from ttgen.models.registry import build_model, get_family
    from ttgen.pipeline import analyze
    from ttgen.plan import make_plan
    from ttgen.spec import load_spec

    root = HERE.parents[2]
    spec_path = root / run.spec
    if run.spec_edit:
        edited = out.parent / f"{out.name}-specs"
        import shutil

        shutil.copytree(root / "specs", edited)
        spec_path = edited / Path(run.spec).name
        text = spec_path.read_text()
        if run.spec_edit[0] not in text:
            raise TtgenError(f"lane run {run.label!r}: {run.spec_edit[0]!r} not in {run.spec}")
        spec_path.write_text(text.replace(*run.spec_edit))
    spec = load_spec(spec_path)
    analysis = analyze(spec, preset=run.preset, num_layers=run.num_layers)
    seq = max(run.prefill) if spec.model_kind == "causal_lm" else None
    plan = make_plan(
        analysis, device=device, precision=run.precision, max_batch=run.batch, max_seq_len=seq
    )
    emit(plan, out)
    from ttgen.pipeline import preset_family

    family = preset_family(get_family(spec.family), run.preset)
    model, _ = build_model(family, preset=run.preset, num_layers=run.num_layers)
    return plan, {k: list(v.shape) for k, v in model.state_dict().items()}


def _drive(python: Path, package: Path, weights: Path, device: str, *, real: bool, prefill, timeout: int) -> Outcome:  # fmt: skip
    from ttgen.validate.lane import run_oracle

    out = package.parent / f"{package.name}-{'real' if real else 'emu'}.json"
    args = [str(package), str(weights), str(out), "--prefill", ",".join(map(str, prefill))]
    if real:
        proc = run_oracle(python, "drive_generated.py", *args, "--l1", device=device, timeout=timeout,
                          allow_crash=True)  # fmt: skip
    else:
        env = dict(os.environ, TTGEN_EMU_DEVICE=device)
        try:
            proc = subprocess.run([sys.executable, str(HERE / "drive_generated.py"), *args, "--emu"],
                                  capture_output=True, text=True, timeout=timeout, env=env)  # fmt: skip
        except subprocess.TimeoutExpired:
            return Outcome(error=f"timed out after {timeout} s")
    if not out.is_file():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Outcome(error=f"exit {proc.returncode}: {tail[:200]}")
    data = json.loads(out.read_text())
    error = data.get("error")
    message = None
    if error:
        from ttgen.validate.rejection_cases import error_message

        message = f"{error['phase']} at {error['where']}: {error_message(error['message'])}"
    return Outcome(data["records"], data["timings"], message)


def _spec_text(s: dict) -> str:
    text = f"{s['shape']} {s['dtype']} {s['layout']}"
    if "memory" in s:
        text += f" {s['memory']} {s['buffer']}"
    if "shard" in s:
        text += f" shard {s['shard']} on {s['grid']}"
    return text


def _compare(real: Outcome, emu: Outcome, phase: str) -> tuple[int, str | None]:
    """(ops compared in `phase`, first difference)."""
    r = [x for x in real.records if x["phase"] == phase]
    e = [x for x in emu.records if x["phase"] == phase]
    for i, (a, b) in enumerate(zip(r, e, strict=False)):
        if a["op"] != b["op"]:
            return (
                i,
                f"op {i}: real ran {a['op']} at {a['site']}, emulator {b['op']} at {b['site']}",
            )
        if a["outputs"] != b["outputs"]:
            theirs = "; ".join(map(_spec_text, a["outputs"]))
            ours = "; ".join(map(_spec_text, b["outputs"]))
            return i, f"{a['op']} at {a['site']}: real {theirs} / emulator {ours}"
    if len(r) != len(e):
        return min(len(r), len(e)), f"real ran {len(r)} ops, emulator {len(e)}"
    return len(r), None


def _l1_by_group(plan, real: Outcome, seq_len: int) -> list[tuple[str, int, int]]:
    """(op group, planner estimate, real peak) per core, for every op group the real run measured:
    prefill at `seq_len` and decode, the largest op of the group on its busiest core."""
    from ttgen.blocks import get_block

    files = {
        Path(get_block(m.template).module).stem: m.template
        for m in plan.modules
        if get_block(m.template).module
    }
    measured: dict[tuple[str, str], int] = {}
    for rec in real.records:
        if "l1" not in rec or not (
            rec["phase"] in (f"prefill {seq_len}", "forward") or rec["phase"].startswith("decode")
        ):
            continue
        stem = rec["site"].split(".")[0]
        key = (files.get(stem, stem), phase_mode(rec["phase"]))
        measured[key] = max(measured.get(key, 0), rec["l1"]["total"])
    groups = []
    for module in plan.modules:
        for mode in plan.modes:
            ops = [o for o in module.ops_for(mode) if o.seq_len in (None, seq_len)]
            real_peak = measured.get((module.template, mode))
            if real_peak:
                groups.append(
                    (
                        f"{module.template} {mode}",
                        max((o.l1_per_core for o in ops), default=0),
                        real_peak,
                    )
                )
    return groups


def generated_rows(
    python: Path, status: Callable[[str], None] = lambda _m: None, only: str | None = None
):
    """`only`: the runs whose label contains it (all by default)."""
    from ttgen.validate.lane import Row

    rows = []
    for run in RUNS:
        if only and only not in run.label:
            continue
        for device in run.devices:
            name = f"{run.label} on {device}"
            with tempfile.TemporaryDirectory() as tmp:
                package = Path(tmp) / f"lane_{device}"
                status(f"{name}: emitting")
                plan, weights = _emit(run, device, package)
                weights_file = Path(tmp) / "weights.json"
                weights_file.write_text(json.dumps(weights))
                status(f"{name}: real ttnn on the mock {device}")
                real = _drive(python, package, weights_file, device, real=True, prefill=run.prefill,
                              timeout=run.timeout)  # fmt: skip
                status(f"{name}: emulator")
                emu = _drive(python, package, weights_file, device, real=False,
                             prefill=run.emu_prefill or run.prefill, timeout=run.timeout)  # fmt: skip
            if plan.model_kind == "causal_lm":
                phases = ["load weights", *(f"prefill {s}" for s in run.prefill),
                          *(f"decode step {i}" for i in range(3))]  # fmt: skip
            else:
                # one eager forward (a Metal trace cannot be captured on the mock: see trace_probe)
                phases = ["load weights", "forward"]
            if real.error or emu.error:
                rows.append(Row(f"generated: {run.label}", f"{device}: every phase",
                                f"FAILS {real.error}" if real.error else "valid",
                                f"FAILS {emu.error}" if emu.error else "runs", False))  # fmt: skip
            for phase in phases:
                n_real = sum(1 for r in real.records if r["phase"] == phase)
                if not n_real and not any(r["phase"] == phase for r in emu.records):
                    continue
                t_real, t_emu = real.timings.get(phase), emu.timings.get(phase)
                if (
                    run.emu_prefill
                    and plan.model_kind == "causal_lm"
                    and phase.startswith("prefill")
                    and int(phase.split()[1]) not in run.emu_prefill
                ):
                    rows.append(Row(f"generated: {run.label}", f"{device}: {phase}",
                                    f"valid: {n_real} ops" + (f" ({t_real:.1f} s)" if t_real is not None else ""),
                                    "not run (CPU time); compared at prefill "
                                    + ", ".join(map(str, run.emu_prefill)), not real.error))  # fmt: skip
                    continue
                compared, diff = _compare(real, emu, phase)
                rows.append(Row(
                    f"generated: {run.label}", f"{device}: {phase}",
                    f"valid: {n_real} ops" + (f" ({t_real:.1f} s)" if t_real is not None else ""),
                    (f"same specs, {compared} ops" if diff is None else f"DIFFERS after {compared} ops: {diff}")
                    + (f" ({t_emu:.1f} s)" if t_emu is not None else ""),
                    diff is None and not real.error and not emu.error,
                ))  # fmt: skip
            if not real.error:  # the plan itself against what the real package ran
                for phase in phases[1:]:
                    compared, diff = compare_with_plan(plan, real.records, phase)
                    if compared or diff:
                        rows.append(Row(f"plan: {run.label}", f"{device}: {phase}",
                                        f"planned specs, {compared} calls" if diff is None else f"DIFFERS: {diff[:300]}",
                                        "-", diff is None))  # fmt: skip
            seq_len = run.prefill[-1]
            for group, estimate, real_peak in _l1_by_group(plan, real, seq_len):
                if plan.model_kind != "causal_lm":
                    seq_len = None
                mode = group.split()[-1]
                rows.append(Row(f"L1: {run.label}", f"{device}: {group}" + (f" {seq_len}" if mode == "prefill" and seq_len else ""),
                                f"{real_peak / 1024:,.0f} KiB peak", "-", None,
                                f"{estimate / 1024:,.0f} / {real_peak / 1024:,.0f} KiB = {estimate / real_peak:.2f}"))  # fmt: skip
    return rows
