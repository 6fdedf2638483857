"""Model facts from the matches: head geometry from captured view shapes and weight shapes, eps
from the norms, bias and sliding window from captures. The HF config is consulted only for what
the graph cannot show (RoPE frequencies live in a buffer with no values on the meta device)."""

from __future__ import annotations

import networkx as nx

from ttgen.errors import TtgenError
from ttgen.match import MatchResult
from ttgen.plan.types import ModelFacts

__all__ = ["PlanError", "model_facts", "param_shapes"]


class PlanError(TtgenError):
    """A plan that cannot be made valid for the target: the message names the op, mode and numbers."""


def param_shapes(g: nx.DiGraph) -> dict[str, tuple[int, ...]]:
    return {
        a["param"]: tuple(a["outputs"][0]["shape"])
        for _, a in g.nodes(data=True)
        if a["opcode"] == "placeholder" and a.get("kind") in ("parameter", "buffer")
    }


def _only(values: set, what: str):
    if len(values) != 1:
        raise PlanError(
            f"{what} differs between layers ({sorted(values, key=str)}); per-layer geometry is not supported"
        )
    return next(iter(values))


def model_facts(result: MatchResult, g: nx.DiGraph, config: dict) -> ModelFacts:
    shapes = param_shapes(g)
    from ttgen.blocks import get_block

    by_rule: dict[str, list] = {}  # by the role each match's block kind fills
    for m in result.matches:
        by_rule.setdefault(get_block(m.template).slot, []).append(m)
    for needed in ("attention", "mlp", "embedding", "lm_head", "rms_norm"):
        if needed not in by_rule:
            raise PlanError(
                f"no '{needed}' match in the {result.mode} graph: the spec's rules do not cover this model"
            )
    attn = by_rule["attention"]
    head_dim = _only({m["q_view"][-1] for m in attn}, "head_dim")
    wq = _only({shapes[m["w_q"]] for m in attn}, "query projection shape")
    wk = _only({shapes[m["w_k"]] for m in attn}, "key projection shape")
    wg = _only({shapes[m["w_gate"]] for m in by_rule["mlp"]}, "gate projection shape")
    emb = by_rule["embedding"][0]
    lm = by_rule["lm_head"][0]
    vocab, dim = shapes[lm["w_lm_head"]]
    windows = {
        m.get("sliding_window") for m in result.matches if m.get("sliding_window") is not None
    }
    rope = dict(config.get("rope_parameters") or {})
    theta = float(rope.pop("rope_theta", config.get("rope_theta", 10000.0)))
    return ModelFacts(
        dim=dim,
        n_layers=len(attn),
        n_heads=wq[0] // head_dim,
        n_kv_heads=wk[0] // head_dim,
        head_dim=head_dim,
        hidden_dim=wg[0],
        vocab_size=vocab,
        norm_eps=_only({m["eps"] for m in by_rule["rms_norm"]}, "RMSNorm eps"),
        attn_scale=_only({m["scale"] for m in attn}, "attention scale"),
        rope_theta=theta,
        rope_scaling=tuple(sorted((k, v) for k, v in rope.items() if v is not None)),
        max_position_embeddings=int(config.get("max_position_embeddings", 0)),
        qkv_bias=any(m.get("b_q") is not None for m in attn),
        sliding_window=_only(windows, "sliding window") if windows else None,
        tied_embeddings=emb["w_embedding"] == lm["w_lm_head"],
    )
