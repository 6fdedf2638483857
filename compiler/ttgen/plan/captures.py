"""Nothing captured is dropped: after planning, every capture of every match was read by the facts
or a block's lowering, or the spec lists it under the rule's `ignore:` with a reason; and every
parameter inside a matched module is one of the match's captures. Otherwise the plan fails naming
the rule, the capture and the module path, before any code is written."""

from __future__ import annotations

from ttgen.match import MatchResult, capture_name
from ttgen.plan.facts import PlanError
from ttgen.spec.schema import Spec

__all__ = ["check_captures"]


def _describe(value, g) -> str:
    if isinstance(value, str) and value in g.nodes:
        return g.nodes[value].get("name", value)
    return repr(value)


def check_captures(spec: Spec, matches: dict[str, MatchResult], graphs: dict, reads: set) -> None:
    rules = {r.name: r for r in spec.rules}
    for mode, result in matches.items():
        g = graphs[mode]
        params = {a["param"]: n for n, a in g.nodes(data=True)
                  if a["opcode"] == "placeholder" and a.get("kind") in ("parameter", "buffer")}  # fmt: skip
        for m in result.matches:
            rule = rules[m.rule]
            ignored = dict(rule.ignore)
            where = f"{rule.loc}: rule {rule.name} at {m.module or '<root>'} ({mode})"
            captured = set()
            for key, value in m.captures:
                name = capture_name(key)
                if isinstance(value, str) and value in params:
                    captured.add(value)
                if (m.rule, name) in reads or name in ignored:
                    continue
                node = isinstance(value, str) and value in g.nodes
                kind = "@" if isinstance(value, str) and value in params else ("%" if node else "$")
                shown = value if kind == "@" else _describe(value, g)
                raise PlanError(
                    f"{where}: capture {kind}{name} ({shown}) is not consumed by the "
                    f"'{rule.template}' block and the rule does not list it under ignore: the "
                    "generated code would silently drop it"
                )
            for n in m.nodes:
                a = g.nodes[n]
                index = all(o["dtype"] in ("int64", "int32", "bool") for o in a["outputs"])
                if (
                    a["opcode"] == "placeholder"
                    and a.get("param") in params
                    and a["param"] not in captured
                    and not index
                ):  # integer buffers are cache bookkeeping, not weights
                    raise PlanError(
                        f"{where}: parameter {a['param']} is used inside the module but no pattern "
                        "of the rule captures it: the generated code would not load it"
                    )
