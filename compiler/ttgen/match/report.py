"""Rich rendering of match coverage for `ttgen check`."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from rich.console import Console
from rich.table import Table

from ttgen.console import report_console

__all__ = ["print_coverage"]


def _facts(match) -> str:
    """The constants a match captured (eps, head geometry, window, ...), briefly."""
    shown = []
    for key, value in match.captures:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            shown.append(f"{key}={value}")
    return ", ".join(shown)


def print_coverage(analysis, console: Console | None = None) -> None:
    from ttgen.pipeline import compress_paths

    console = console or report_console()
    spec, meta = analysis.spec, analysis.trace.meta
    source = meta["checkpoint"] or f"preset {meta['preset']}"
    console.print(
        f"[bold]{spec.path}[/] (sha256 {spec.sha256[:12]}) on {meta['model']} {source} ({meta['hf_class']})"
    )
    table = Table(
        "rule",
        "template",
        *[f"{m} matches" for m in analysis.matches],
        "modules",
        "captured (first match)",
    )
    for rule in spec.rules:
        per_mode = [
            [m for m in r.matches if m.rule == rule.name] for r in analysis.matches.values()
        ]
        paths = compress_paths(
            sorted({m.module for ms in per_mode for m in ms}, key=lambda p: (len(p), p))
        )
        first = next((ms[0] for ms in per_mode if ms), None)
        table.add_row(rule.name, rule.template, *[str(len(ms)) for ms in per_mode], "\n".join(paths) or "-",
                      _facts(first) if first else "")  # fmt: skip
    console.print(table)
    for mode, result in analysis.matches.items():
        g = analysis.trace.graphs[mode]
        covered = sum(len(m.nodes) for m in result.matches)
        console.print(
            f"{mode}: {covered} nodes in {len(result.matches)} matches, {len(result.structural)} structural "
            f"(graph inputs, output, unread inputs), [{'green' if not result.uncovered else 'red'}]"
            f"{len(result.uncovered)} uncovered[/]"
        )
        if result.uncovered:
            groups: dict[str, Counter] = defaultdict(Counter)
            for n in result.uncovered:
                groups[g.nodes[n]["module"] or "<root>"][g.nodes[n]["op"]] += 1
            uncovered = Table(
                "module path", "op", "nodes", title=f"uncovered in {mode}", title_justify="left"
            )
            for path in sorted(groups):
                for op, count in sorted(groups[path].items()):
                    uncovered.add_row(path, op, str(count))
            console.print(uncovered)
            print_near_misses(analysis, mode, console)


def print_near_misses(analysis, mode: str, console: Console) -> None:
    """Per uncovered module (one per module list: layer 0 stands for the others): the rule that came
    closest and the first pattern node where it failed."""
    from ttgen.match.diagnose import near_misses
    from ttgen.pipeline import compress_paths

    g = analysis.trace.graphs[mode]
    misses = near_misses(analysis.spec, g, analysis.matches[mode])
    seen: dict[tuple, list] = {}
    for miss in misses:  # the same module of every layer, with the same verdict: one row
        key = (
            re.sub(r"(?<=\.)\d+(?=\.|$)", "*", miss.module),
            miss.rule,
            miss.expected,
            miss.reason,
        )
        seen.setdefault(key, []).append(miss)
    table = Table("module", "closest rule (pattern)", "expected", "found", "why",
                  title=f"bring-up report ({mode}): where the closest rule stopped matching", title_justify="left")  # fmt: skip
    for group in seen.values():
        first = group[0]
        where = (
            compress_paths([m.module for m in group])[0]
            if len(group) > 1
            else (first.module or "<root>")
        )
        rule = f"{first.rule} ({first.pattern})" if first.pattern else (first.rule or "-")
        table.add_row(where, rule, first.expected, first.found, first.reason)
    console.print(table)
