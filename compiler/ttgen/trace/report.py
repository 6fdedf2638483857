"""Rich rendering of a trace summary for the terminal."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from ttgen.console import report_console
from ttgen.trace.summary import summarize
from ttgen.trace.trace import ModelTrace

__all__ = ["print_summary"]


def _compress(ops: tuple[str, ...]) -> list[tuple[str, int]]:
    """Run-length encode consecutive repeats, dropping the `aten.` prefix and `.default` overload."""
    runs: list[tuple[str, int]] = []
    for op in ops:
        short = op.removeprefix("aten.").removesuffix(".default")
        if runs and runs[-1][0] == short:
            runs[-1] = (short, runs[-1][1] + 1)
        else:
            runs.append((short, 1))
    return runs


def print_summary(trace: ModelTrace, path: Path, console: Console | None = None) -> None:
    console = console or report_console()
    meta = trace.meta
    source = meta["checkpoint"] or f"preset {meta['preset']}"
    console.print(
        f"[bold]{meta['model']}[/] ({meta['hf_class']}, {source}) · batch {meta['batch']} · "
        f"seq_len {meta['seq_len']} → {path}"
    )
    for mode, g in trace.graphs.items():
        s = summarize(g)
        console.rule(
            f"{mode}: {s.num_nodes} nodes, {s.num_ops} ops, {s.num_parameters:,} parameters"
        )
        modules = Table("module class", "count", title="modules", title_justify="left")
        for cls, count in s.module_classes:
            modules.add_row(cls, str(count))
        ops = Table("op", "count", title="op histogram", title_justify="left")
        for op, count in s.op_histogram:
            ops.add_row(op.removeprefix("aten."), str(count))
        grid = Table.grid(padding=(0, 4))
        grid.add_row(modules, ops)
        console.print(grid)
        seq = " → ".join(f"{op}×{n}" if n > 1 else op for op, n in _compress(s.layer_ops))
        console.print(f"[bold]{s.layer_path}[/] ({len(s.layer_ops)} ops): {seq}")
