"""The bring-up report: for each module whose nodes no rule covers, the rule that came closest and
where its pattern stopped matching — "`tt.rms_norm` on model.layers.0.input_layernorm: expected
`mul(@weight, ...)`, found `mul(add(@weight, 1.0), ...)`" — so an engineer sees what to write.

The matcher itself runs unchanged; `engine.recording_misses` collects every point where a pattern
failed, and the deepest miss of each targeting rule is kept."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ttgen.match.engine import Miss, find_all, recording_misses
from ttgen.match.matcher import MatchResult, _glob
from ttgen.match.pattern import Any, Capture, Const, Op, Param, Ref

__all__ = ["NearMiss", "near_misses", "render_node", "render_pattern", "short_op"]


@dataclass(frozen=True)
class NearMiss:
    module: str  # a module instance holding uncovered nodes
    rule: str | None  # the rule that came closest (None: no rule targets the module)
    pattern: str | None
    progress: int
    expected: str
    found: str
    reason: str


def render_pattern(expr, focus=None, depth: int = 2) -> str:
    """A pattern expression as the spec writes it; with `focus`, only that argument of it in full."""
    if isinstance(expr, Param):
        return f"@{expr.name}{'?' if expr.optional else ''}"
    if isinstance(expr, Capture):
        return f"%{expr.name}"
    if isinstance(expr, Ref):
        return expr.name
    if isinstance(expr, Const):
        return f"${expr.name}"
    if isinstance(expr, Any):
        return "any(" + ", ".join(render_pattern(o, depth=depth - 1) for o in expr.options) + ")"
    if isinstance(expr, Op):
        if depth <= 0:
            return f"{expr.name}(...)"
        if focus is not None and not any(a is focus for a in expr.args):
            focus = None  # the miss is inside a `let` an argument names: show every argument
        args = [
            ("..." if focus is not None and a is not focus else render_pattern(a, depth=depth - 1))
            for a in expr.args
        ]
        kwargs = (
            [f"{k}={v.name if isinstance(v, Const) else v!r}" for k, v in expr.kwargs]
            if focus is None
            else []
        )
        return f"{expr.name}({', '.join(args + kwargs)})"
    return repr(expr)


def short_op(op: str) -> str:
    """`aten.add.Tensor` → `add`, as the pattern language names ops."""
    name = op.removeprefix("aten.")
    return name.split(".")[0] if "." in name else name


def render_node(g: nx.DiGraph, node: str, focus: str | None = None, depth: int = 2) -> str:
    """A graph node in the pattern language's terms: `op(inputs..., constant=value)`, parameters
    as `@name` (the last part of their path)."""
    attrs = g.nodes[node]
    if attrs["opcode"] == "placeholder":
        kind = attrs.get("kind")
        return (
            f"@{attrs['param'].rsplit('.', 1)[-1]}"
            if kind in ("parameter", "buffer")
            else f"%{node}"
        )
    if depth <= 0:
        return f"{short_op(attrs['op'])}(...)"
    args = [
        "..." if focus is not None and src != focus else render_node(g, src, depth=depth - 1)
        for src in attrs["inputs"]
    ]
    consts = [] if focus is not None else [
        f"{k}={v!r}" for k, v in attrs["constants"].items() if not isinstance(v, (list, dict)) or len(str(v)) < 24
    ][:3]  # fmt: skip
    return f"{short_op(attrs['op'])}({', '.join(args + consts)})"


def _describe(g: nx.DiGraph, miss: Miss) -> tuple[str, str]:
    if miss.parent is None:
        return render_pattern(miss.expr, depth=1), render_node(g, miss.node, depth=1)
    return render_pattern(miss.parent, focus=miss.expr), render_node(
        g, miss.parent_node, focus=miss.node
    )


def _targeted(spec, module: str) -> tuple[str, list]:
    """The module a rule targets for a node of `module`: itself, or its nearest ancestor that some
    rule's module glob matches (`model.layers.0.self_attn` for a node of its `k_proj`)."""
    probe = module
    while True:
        rules = [r for r in spec.rules if any(_glob(m).match(probe) for m in r.match.modules)]
        if rules and (probe or not module):
            return probe, rules
        if not probe:  # only the model's root glue rule is left: no rule is written for this module
            parts = module.split(".")
            layer = next((i for i, p in enumerate(parts) if p.isdigit()), None)
            return ".".join(parts[: layer + 2] if layer is not None else parts[:2]), []
        probe = probe.rpartition(".")[0]


def near_misses(spec, g: nx.DiGraph, result: MatchResult) -> list[NearMiss]:
    """One NearMiss per targeted module instance with uncovered op nodes, deepest modules first."""
    by_module: dict[str, list[str]] = {}
    targeting: dict[str, list] = {}
    for n in result.uncovered:
        attrs = g.nodes[n]
        if attrs["opcode"] != "call_function":
            continue
        module, rules = _targeted(spec, attrs["module"])
        by_module.setdefault(module, []).append(n)
        targeting[module] = rules
    out = []
    for module in sorted(by_module, key=lambda p: (-p.count("."), p)):
        nodes = by_module[module]
        if not targeting[module]:
            ops = ", ".join(sorted({short_op(g.nodes[n]["op"]) for n in nodes}))
            out.append(NearMiss(module, None, None, 0, "a rule whose module glob matches this path", ops,
                                "no rule targets it"))  # fmt: skip
            continue
        best: tuple[int, NearMiss] | None = None
        allowed = set(nodes)
        for rule in targeting[module]:
            for req in rule.match.require:
                if result.mode not in req.modes:
                    continue
                with recording_misses() as misses:
                    found = find_all(
                        spec.pattern(req.pattern).compiled, g, list(reversed(nodes)), allowed
                    )
                if (found and len(found) >= req.count) or not misses:
                    continue  # this requirement matches: its rule failed elsewhere (left-over ops)
                deepest = max(misses, key=lambda m: m.progress)
                expected, seen = _describe(g, deepest)
                near = NearMiss(
                    module, rule.name, req.pattern, deepest.progress, expected, seen, deepest.reason
                )
                if best is None or deepest.progress > best[0]:
                    best = (deepest.progress, near)
        if best is not None:
            out.append(best[1])
        else:
            left = sorted({g.nodes[n]["op"] for n in nodes})
            out.append(NearMiss(module, targeting[module][0].name, None, 0, "its patterns to explain every op",
                                ", ".join(left), "ops its patterns do not consume"))  # fmt: skip
    return out
