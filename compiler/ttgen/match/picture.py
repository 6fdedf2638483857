"""`ttgen check --html FILE`: a picture of one layer's graph (layer 0 of the model's layer list), each
op coloured by the rule that covers it and the uncovered ones marked, with the bring-up report
beside it. One self-contained HTML file with an inline SVG: no browser-side code, no dependency."""

from __future__ import annotations

import html
from pathlib import Path

import networkx as nx

from ttgen.ir.graph import layer_list_path, layer_nodes, ordered_nodes
from ttgen.match.diagnose import NearMiss, short_op

__all__ = ["layer_picture"]

_PALETTE = ("#8dd3c7", "#bebada", "#80b1d3", "#fdb462", "#b3de69", "#fccde5", "#d9d9d9", "#bc80bd",
            "#ccebc5", "#ffed6f")  # fmt: skip
_UNCOVERED = "#fb8072"
_BOX_W, _BOX_H, _GAP_X, _GAP_Y = 150, 34, 40, 14


def _levels(sub: nx.DiGraph, order: dict[str, int]) -> dict[str, int]:
    level: dict[str, int] = {}
    for n in sorted(sub, key=order.get):
        level[n] = 1 + max((level[p] for p in sub.predecessors(n)), default=-1)
    return level


def layer_picture(g: nx.DiGraph, result, misses: list[NearMiss], title: str) -> str:
    """The HTML text."""
    nodes = layer_nodes(g, 0)
    layer = f"{layer_list_path(g) or 'model.layers'}.0"
    order = {n: i for i, n in enumerate(ordered_nodes(g))}
    sub = g.subgraph(nodes).copy()
    rule_of = {n: m.rule for m in result.matches for n in m.nodes}
    uncovered = set(result.uncovered)
    rules = sorted({rule_of[n] for n in nodes if n in rule_of})
    colour = {r: _PALETTE[i % len(_PALETTE)] for i, r in enumerate(rules)}
    level = _levels(sub, order)
    rows: dict[int, list[str]] = {}
    for n in sorted(nodes, key=order.get):
        rows.setdefault(level[n], []).append(n)
    pos = {}
    for lv, ns in rows.items():
        for i, n in enumerate(ns):
            pos[n] = (20 + i * (_BOX_W + _GAP_X), 20 + lv * (_BOX_H + _GAP_Y))
    width = 40 + max((len(ns) for ns in rows.values()), default=1) * (_BOX_W + _GAP_X)
    height = 40 + (max(rows, default=0) + 1) * (_BOX_H + _GAP_Y)
    svg = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" font-size="11">'
    ]
    for a, b in sub.edges():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        svg.append(
            f'<line x1="{x1 + _BOX_W / 2}" y1="{y1 + _BOX_H}" x2="{x2 + _BOX_W / 2}" y2="{y2}" stroke="#888"/>'
        )
    for n in nodes:
        x, y = pos[n]
        attrs = g.nodes[n]
        bad = n in uncovered
        fill = _UNCOVERED if bad else colour.get(rule_of.get(n), "#ffffff")
        tip = html.escape(f"{n}: {attrs['op']} in {attrs['module'] or '<root>'}"
                          + (f" — {rule_of[n]}" if n in rule_of else " — uncovered"))  # fmt: skip
        svg.append(f'<g><title>{tip}</title><rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="4" '
                   f'fill="{fill}" stroke="{"#b00" if bad else "#555"}" stroke-width="{3 if bad else 1}"/>'
                   f'<text x="{x + 6}" y="{y + 14}">{html.escape(short_op(attrs["op"]))[:22]}</text>'
                   f'<text x="{x + 6}" y="{y + 28}" fill="#333">{html.escape(attrs["module"].removeprefix(layer + "."))[:22]}</text></g>')  # fmt: skip
    svg.append("</svg>")
    legend = (
        "".join(
            f'<li><span style="background:{c}">&nbsp;&nbsp;&nbsp;</span> {html.escape(r)}</li>'
            for r, c in colour.items()
        )
        + f'<li><span style="background:{_UNCOVERED}">&nbsp;&nbsp;&nbsp;</span> uncovered</li>'
    )
    report = "".join(
        f"<tr><td>{html.escape(m.module or '<root>')}</td><td>{html.escape(m.rule or '-')}"
        f"{' (' + html.escape(m.pattern) + ')' if m.pattern else ''}</td><td><code>{html.escape(m.expected)}</code></td>"
        f"<td><code>{html.escape(m.found)}</code></td><td>{html.escape(m.reason)}</td></tr>"
        for m in misses
    )
    n_bad = len([n for n in nodes if n in uncovered])
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} td,th{{border:1px solid #ccc;padding:3px 6px;text-align:left}}
table{{border-collapse:collapse}} ul{{list-style:none;padding:0}} li{{display:inline-block;margin-right:14px}}</style>
</head><body>
<h2>{html.escape(title)}</h2>
<p>{html.escape(layer)}: {len(nodes)} ops, {n_bad} uncovered (red). Hover an op for its node, module and rule.</p>
<ul>{legend}</ul>
{"".join(svg)}
<h3>Bring-up report: where the closest rule stopped matching</h3>
<table><tr><th>module</th><th>closest rule (pattern)</th><th>expected</th><th>found</th><th>why</th></tr>{report}</table>
</body></html>
"""


def write_picture(path: Path, text: str) -> None:
    from ttgen.trace.trace import check_writable

    check_writable(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
