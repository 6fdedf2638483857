"""`ttgen plan` tables: per mode, every op with shapes, dtype, memory, program and compute configs,
L1 per core and DRAM traffic, and the totals."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ttgen.console import report_console
from ttgen.plan.types import EmitPlan

__all__ = ["print_plan"]

GB = 1e9


def _shape(shape) -> str:
    return "x".join(map(str, shape))


def print_plan(
    plan: EmitPlan, *, seq_len: int | None = None, console: Console | None = None
) -> None:
    console = console or report_console()
    f = plan.facts
    seq = seq_len or max(plan.prefill_seq_lens, default=0)
    console.print(
        f"[bold]{plan.spec_path}[/] → {plan.family} {plan.source} on [bold]{plan.device}[/] ({plan.arch}, grid "
        f"{plan.compute_grid[0]}x{plan.compute_grid[1]}, {plan.dram_banks} DRAM banks), precision {plan.precision}"
    )
    if plan.kv_cache is not None:
        console.print(
            f"dim {f.dim}, {f.n_layers} layers, {f.n_heads} heads / {f.n_kv_heads} KV heads x {f.head_dim}, ffn "
            f"{f.hidden_dim}, vocab {f.vocab_size}, eps {f.norm_eps}, qkv bias {f.qkv_bias}, sliding window "
            f"{f.sliding_window}; batch {plan.max_batch}, max seq {plan.max_seq_len}, {plan.kv_cache.kind} KV cache"
        )
    else:
        console.print(
            f"image {f.image_size}x{f.image_size}x{f.channels}, patch {f.patch_size} ({f.tokens} tokens), dim {f.dim}, "
            f"{f.n_layers} layers, {f.n_heads} heads x {f.head_dim}, mlp {f.hidden_dim}, {f.n_classes} classes, "
            f"eps {f.norm_eps}; batch {plan.max_batch}"
        )
        for note in _classifier_notes(plan):
            console.print(f"[dim]{note}[/]")
    totals = {}
    for mode in plan.modes:
        title = f"{mode}" + (
            f" (seq_len {seq}; planned {', '.join(map(str, plan.prefill_seq_lens))})"
            if mode == "prefill"
            else f" (batch {plan.max_batch})"
        )
        table = Table("module", "op", "ttnn", "output", "dtype", "memory", "program", "compute", "L1 B/core", "DRAM B",
                      title=title, title_justify="left")  # fmt: skip
        peak, dram = 0, 0
        for m in plan.modules:
            n = len(m.instances)
            for op in m.ops_for(mode):
                if mode == "prefill" and op.seq_len not in (None, seq):
                    continue
                program = op.program.describe() if op.program else ""
                if op.m_chunk:
                    program += f" rows/{op.m_chunk}"
                compute = (
                    f"{op.compute.math_fidelity}{' fp32' if op.compute.fp32_dest_acc_en else ''}"
                    if op.compute
                    else ""
                )
                table.add_row(
                    f"{m.template}" + (f" x{n}" if n > 1 else ""), op.name, op.ttnn.removeprefix("ttnn."), _shape(op.output.shape),
                    op.output.dtype, op.output.memory.describe(), program, compute, f"{op.l1_per_core:,}", f"{op.dram_bytes * n:,}",
                )  # fmt: skip
                peak = max(peak, op.l1_per_core)
                dram += op.dram_bytes * n
        console.print(table)
        totals[mode] = (peak, dram)
    kv = plan.kv_cache.bytes_total if plan.kv_cache else 0
    cache = f" + KV cache {kv / GB:.3f} GB" if plan.kv_cache else ""
    console.print(
        f"DRAM: weights {plan.dram_weight_bytes / GB:.3f} GB{cache} "
        f"= {(plan.dram_weight_bytes + kv) / GB:.3f} GB of {plan.dram_capacity_bytes / GB:.2f} GB"
    )
    unit = {"prefill": "pass", "decode": "token", "forward": "batch"}
    for mode, (peak, dram) in totals.items():
        console.print(
            f"{mode}: peak L1 {peak:,} B per core; DRAM traffic {dram / GB:.4f} GB per {unit.get(mode, 'pass')}"
        )


def _classifier_notes(plan: EmitPlan) -> list[str]:
    """Where the plan's math and tt-metal's ViT differ, read from the plan's ops."""
    ops = [op for m in plan.modules for op in m.ops_for("forward")]
    scores = next((op for op in ops if op.name == "scores"), None)
    notes = []
    if scores is not None:
        seq, tokens = scores.output.shape[-1], plan.facts.tokens
        if seq > tokens:
            notes.append(f"the sequence is padded {tokens} -> {seq}: the {seq - tokens} padded keys are masked in the "
                         "softmax (HF's math; tt-metal's sharded ViT lets them in)")  # fmt: skip
        else:
            notes.append(
                f"the sequence keeps its {tokens} tokens; the interleaved softmax masks the keys' tile padding"
            )
    gelu = [
        op
        for op in ops
        if op.program is not None and dict(op.program.fields).get("fused_activation") == "GELU"
    ]
    if gelu:
        notes.append(
            "FC1 fuses the exact (erf) GELU, HF's (tt-metal's sharded ViT may fuse the approximate one)"
        )
    return notes


def print_candidates(
    best, baseline, candidates, new_tokens: int = 128, console: Console | None = None
) -> None:
    console = console or report_console()
    table = Table("options", "TTFT ms", "decode ms/step", f"TTFT + {new_tokens} steps ms", "", title="plan --optimize",
                  title_justify="left")  # fmt: skip
    for c in candidates:
        if c.plan is None:
            table.add_row(c.options.describe(), "-", "-", "-", f"invalid: {c.error[:80]}")
            continue
        mark = "chosen" if c is best else ("baseline (tt-transformers)" if c is baseline else "")
        table.add_row(c.options.describe(), f"{c.ttft_s * 1e3:.2f}", f"{c.decode_step_s * 1e3:.3f}",
                      f"{c.score(new_tokens) * 1e3:.1f}", mark)  # fmt: skip
    console.print(table)
    gain = baseline.score(new_tokens) / best.score(new_tokens) - 1
    if best is baseline or gain <= 0:
        console.print("no valid option beats the tt-transformers baseline here")
    else:
        console.print(
            f"chosen: {best.options.describe()}: TTFT {baseline.ttft_s * 1e3:.2f} → {best.ttft_s * 1e3:.2f} ms, decode "
            f"{baseline.decode_step_s * 1e3:.3f} → {best.decode_step_s * 1e3:.3f} ms/step; {gain:.1%} faster over "
            f"TTFT + {new_tokens} tokens than the baseline"
        )
