"""Rich tables (and an optional PNG) for `ttgen perf`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from ttgen.console import report_console
from ttgen.errors import TtgenError
from ttgen.perf.model import PerfReport

__all__ = [
    "VIT_PUBLISHED",
    "plot_report",
    "print_calibration",
    "print_forward_report",
    "print_report",
]

# tt-metal's published ViT-base (vit-base-patch16-224) throughput, images/s (vit.md §7): held out —
# the device parameters are fitted to tt-transformers' LLM rows only, never to these.
VIT_PUBLISHED = {
    ("n150", 8): (("models/README demo, trace + 2 CQs", 1370), ("CI gate, end to end, trace + 2 CQs", 1470)),
    ("p150", 10): (("models/README and CI gate, trace + 2 CQs", 3700),),
}  # fmt: skip


def _table(title: str, groups, total: float) -> Table:
    table = Table(
        "op group",
        "count",
        "time ms",
        "share",
        "DRAM MB",
        "GFLOP",
        "bound",
        title=title,
        title_justify="left",
    )
    for g in sorted(groups, key=lambda g: -g.time_s):
        table.add_row(g.group, str(g.count), f"{g.time_s * 1e3:.3f}", f"{g.time_s / total:5.1%}", f"{g.dram_bytes / 1e6:.1f}",
                      f"{g.flops / 1e9:.2f}", g.bound)  # fmt: skip
    return table


def print_report(report: PerfReport, label: str, console: Console | None = None) -> None:
    console = console or report_console()
    console.print(
        f"[bold]{label}[/] on {report.device}: decode {report.batch} user(s) at context {report.context}, prefill {report.prefill_len} tokens"
    )
    console.print(
        _table(f"prefill ({report.prefill_len} tokens, eager)", report.prefill, report.ttft_s)
    )
    console.print(
        _table(f"decode step ({report.batch} user(s), traced)", report.decode, report.decode_step_s)
    )
    console.print(
        f"TTFT {report.ttft_s * 1e3:.1f} ms; decode {report.decode_step_s * 1e3:.2f} ms per step = "
        f"[bold]{report.tokens_per_s_per_user:.1f} tokens/s/user[/]; DRAM roofline {report.roofline_s * 1e3:.2f} ms "
        f"(weights + KV per token at peak bandwidth), {report.roofline_fraction:.0%} of it reached"
    )


def print_forward_report(report, plan, label: str, console: Console | None = None) -> None:
    console = console or report_console()
    console.print(f"[bold]{label}[/] on {report.device}: a forward of {report.batch} images")
    console.print(
        _table(f"forward ({report.batch} images, traced)", report.traced, report.traced_s)
    )
    console.print(
        f"forward {report.traced_s * 1e3:.2f} ms traced = [bold]{report.images_per_s:,.0f} images/s[/]; "
        f"eager {report.eager_s * 1e3:.2f} ms = {report.eager_images_per_s:,.0f} images/s"
    )
    published = (
        VIT_PUBLISHED.get((report.device, report.batch))
        if plan.source == "vit-base-patch16-224"
        else None
    )
    if published:
        table = Table("published (tt-metal, sharded bfloat8_b ViT)", "images/s", "predicted here", "error",
                      title=f"held-out check: {plan.source} on {report.device}, batch {report.batch}, precision "
                            f"{plan.precision} (the cost model was not fitted to these)", title_justify="left")  # fmt: skip
        for what, rate in published:
            table.add_row(
                what,
                f"{rate:,}",
                f"{report.images_per_s:,.0f}",
                f"{report.images_per_s / rate - 1:+.0%}",
            )
        console.print(table)
        sharded = any(op.output.memory.sharded for m in plan.modules for op in m.ops_for("forward"))
        if not sharded:
            console.print(
                "this plan keeps activations DRAM-interleaved (the scores of every head go through DRAM); "
                "tt-metal's keeps them block- and height-sharded in L1: the error above is mostly the plans' "
                "difference, not the cost model's"
            )


def print_calibration(rows, console: Console | None = None) -> None:
    console = console or report_console()
    table = Table("model", "device", "predicted t/s/u", "published t/s/u", "error", "predicted TTFT ms", "published TTFT ms",
                  title="calibration: performance mode, batch 1, context 256 (tt-transformers PERF.md)")  # fmt: skip
    for row, report in rows:
        err = report.tokens_per_s_per_user / row.tokens_per_s_per_user - 1
        table.add_row(row.preset, row.device, f"{report.tokens_per_s_per_user:.1f}", f"{row.tokens_per_s_per_user}",
                      f"{err:+.0%}", f"{report.ttft_s * 1e3:.0f}", "-" if row.ttft_ms is None else f"{row.ttft_ms:.0f}")  # fmt: skip
    console.print(table)


def plot_report(report: PerfReport, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TtgenError("--plot needs matplotlib (pip install matplotlib)") from None
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, (mode, groups) in zip(
        axes, (("prefill", report.prefill), ("decode", report.decode)), strict=True
    ):
        ordered = sorted(groups, key=lambda g: g.time_s)
        ax.barh([g.group for g in ordered], [g.time_s * 1e3 for g in ordered])
        ax.set_title(f"{mode} time per op group (ms)")
    fig.tight_layout()
    fig.savefig(path)
