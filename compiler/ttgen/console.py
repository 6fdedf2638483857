"""The console reports print to: the terminal's width on a terminal; printed to a pipe or a file, wide
enough that no table cell is cut ("llama-3.…") — the text is for reading in full or for grep."""

from __future__ import annotations

from rich.console import Console

__all__ = ["report_console"]

PIPE_WIDTH = 1000


def report_console() -> Console:
    probe = Console()
    return probe if probe.is_terminal else Console(width=PIPE_WIDTH)
