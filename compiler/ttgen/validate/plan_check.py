"""The planned program against a recorded run of the generated code (ttgen.validate.drive_generated):
every ttnn call a module's forward method made must be the next call of its planned program, and
each output's shape, dtype, layout and memory config must be the planned one. On the real ttnn this
checks the plan itself against the package that validates it, not only against the emulator."""

from __future__ import annotations

from pathlib import Path

from ttgen.plan.types import EmitPlan, OpPlan, TensorPlan

__all__ = ["compare_with_plan", "phase_mode", "planned_spec"]


def phase_mode(phase: str) -> str:
    """The planned mode a recorded phase runs: "prefill 128" → prefill, "decode step 0" → decode,
    "forward" and the trace phases of an image classifier → forward."""
    for mode in ("prefill", "decode"):
        if phase.startswith(mode):
            return mode
    return "forward"


def planned_spec(t: TensorPlan) -> dict:
    """A planned tensor in drive_generated.tensor_spec's form."""
    spec = {"shape": list(t.shape), "dtype": t.dtype.upper(), "layout": t.layout,
            "memory": t.memory.layout, "buffer": t.memory.buffer}  # fmt: skip
    if t.memory.sharded:
        spec["shard"] = list(t.memory.shard)
        spec["grid"] = [list(r) for r in t.memory.ranges]
        spec["orientation"] = t.memory.orientation
    return spec


def _programs(plan: EmitPlan, mode: str) -> dict[str, dict[int | None, list[OpPlan]]]:
    """site ("mlp.forward_decode") → its planned ttnn calls per prefill variant."""
    from ttgen.blocks import get_block

    sites: dict[str, dict[int | None, list[OpPlan]]] = {}
    for m in plan.modules:
        block = get_block(m.template)
        sig = m.signature(mode)
        if not block.module or sig is None:
            continue
        variants: dict[int | None, list[OpPlan]] = {}
        for op in m.program(mode):
            if op.call.is_ttnn:
                variants.setdefault(op.seq_len, []).append(op)
        sites[f"{Path(block.module).stem}.{sig.method}"] = variants
    return sites


def _agrees(record: dict, op: OpPlan) -> bool:
    return record["outputs"] == [planned_spec(t) for t in op.outputs]


def compare_with_plan(plan: EmitPlan, records: list[dict], phase: str) -> tuple[int, str | None]:
    """(calls compared in `phase`, the first disagreement). Phases: "prefill N", "decode step N"."""
    # each invocation runs the variant its first call's output fits (a prefill at N rows also runs
    # the final norm on one tile row)
    mode = phase_mode(phase)
    sites = _programs(plan, mode)
    cursor: dict[str, tuple[list[OpPlan], int]] = {}  # site → (the invocation's program, next op)
    compared = 0
    for rec in (r for r in records if r["phase"] == phase):
        variants = sites.get(rec["site"])
        if variants is None:
            continue  # model-level code (slicing, host copies): not a module program
        ops, i = cursor.get(rec["site"], (None, 0))
        if ops is None or i >= len(ops):  # a new invocation: the variant its first call ran
            fits = [
                v
                for v in variants.values()
                if v and v[0].call.fn == f"ttnn.{rec['op']}" and _agrees(rec, v[0])
            ]
            if not fits:
                planned = "; ".join(
                    f"{k}: {[planned_spec(t) for t in v[0].outputs]}" for k, v in variants.items()
                )
                return (
                    compared,
                    f"{rec['site']}: {rec['op']} gave {rec['outputs']}, planned {planned}",
                )
            ops, i = fits[0], 0
        while i < len(ops) and ops[i].call.fn != f"ttnn.{rec['op']}" and not ops[i].call.outs:
            i += 1  # an in-place call that returned no device tensor (nothing recorded)
        if i >= len(ops) or ops[i].call.fn != f"ttnn.{rec['op']}":
            return compared, f"{rec['site']}: ran {rec['op']}, the program's next call is " + (
                ops[i].call.fn if i < len(ops) else "none")  # fmt: skip
        if not _agrees(rec, ops[i]):
            return compared, (f"{rec['site']} op {ops[i].name} ({rec['op']}): real "
                              f"{rec['outputs']}, planned {[planned_spec(t) for t in ops[i].outputs]}")  # fmt: skip
        cursor[rec["site"]] = (ops, i + 1)
        compared += 1
    return compared, None
