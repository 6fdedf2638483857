"""Rich tables (and an optional PNG) for `ttgen perf`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from ttgen.console import report_console
from ttgen.errors import TtgenError
from ttgen.perf.model import PerfReport

__all__ = ["plot_report", "print_calibration", "print_report"]


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
