"""Model facts from the matches: each block kind reads its own captures into a typed record (head
geometry from captured view and weight shapes, eps, bias, the sliding window) and the model kind
assembles them. The HF config is consulted only for what the graph does not spell out (RoPE's theta
and scaling, which the rotary buffer's values only imply); scalar buffers' values (Gemma's
embedding scale) come from the trace."""

from __future__ import annotations

import networkx as nx

from ttgen.errors import TtgenError
from ttgen.match import MatchResult
from ttgen.plan.types import ModelFacts

__all__ = ["PlanError", "model_facts", "only", "param_shapes"]


class PlanError(TtgenError):
    """A plan that cannot be made valid for the target: the message names the op, mode and numbers."""


class ParamShapes(dict):
    """Parameter and buffer name → shape; `value(name)`: a scalar buffer's value, if it has one."""

    def __init__(self, shapes: dict, values: dict):
        super().__init__(shapes)
        self._values = values

    def value(self, name: str) -> float:
        if name not in self._values:
            raise PlanError(
                f"{name}: a scalar the trace holds no value for (a parameter on the meta device)"
            )
        return self._values[name]


def param_shapes(g: nx.DiGraph) -> ParamShapes:
    params = [a for _, a in g.nodes(data=True)
              if a["opcode"] == "placeholder" and a.get("kind") in ("parameter", "buffer")]  # fmt: skip
    return ParamShapes({a["param"]: tuple(a["outputs"][0]["shape"]) for a in params},
                       {a["param"]: a["value"] for a in params if "value" in a})  # fmt: skip


def only(values: set, what: str):
    """The one value every instance agrees on."""
    if len(values) != 1:
        raise PlanError(
            f"{what} differs between layers ({sorted(values, key=str)}); per-layer geometry is not supported"
        )
    return next(iter(values))


def model_facts(
    result: MatchResult, g: nx.DiGraph, config: dict, model_kind: str = "causal_lm"
) -> ModelFacts:
    """Each block kind's typed facts record, built from its own matches' captures (BlockKind.facts),
    then the model kind's ModelFacts assembled from those records and the HF config."""
    from ttgen.blocks import MODEL_KINDS, get_block

    shapes = param_shapes(g)
    by_role: dict[str, list] = {}
    for m in result.matches:
        by_role.setdefault(get_block(m.template).slot, []).append(m)
    records = {role: get_block(ms[0].template).facts(ms, shapes)
               for role, ms in by_role.items() if get_block(ms[0].template).facts}  # fmt: skip
    return MODEL_KINDS[model_kind].facts(records, config, result.mode)
