"""Model facts from the matches: each block kind reads its own captures into a typed record (head
geometry from captured view and weight shapes, eps, bias, the sliding window) and the model kind
assembles them. The HF config is consulted only for what the graph cannot show (RoPE frequencies
live in a buffer with no values on the meta device)."""

from __future__ import annotations

import networkx as nx

from ttgen.errors import TtgenError
from ttgen.match import MatchResult
from ttgen.plan.types import ModelFacts

__all__ = ["PlanError", "model_facts", "only", "param_shapes"]


class PlanError(TtgenError):
    """A plan that cannot be made valid for the target: the message names the op, mode and numbers."""


def param_shapes(g: nx.DiGraph) -> dict[str, tuple[int, ...]]:
    return {
        a["param"]: tuple(a["outputs"][0]["shape"])
        for _, a in g.nodes(data=True)
        if a["opcode"] == "placeholder" and a.get("kind") in ("parameter", "buffer")
    }


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
