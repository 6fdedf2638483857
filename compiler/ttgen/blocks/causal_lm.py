"""The causal-LM model kind's layout: where each block sits in the HF module tree, read from the
matches (their module paths and graph order), never from HF names written in the compiler.

A decoder layer holds, in graph order, a norm, the attention, a norm and the MLP (the pre-norm
layer); the model holds the embedding, the rotary setup, the layers, a final norm and the LM head.
A model whose matches do not line up that way is refused with the layer that differs."""

from __future__ import annotations

from ttgen.plan.facts import PlanError
from ttgen.plan.types import ModelFacts, ModelLayout

__all__ = ["causal_lm_facts", "causal_lm_layout", "causal_lm_lowering", "causal_lm_plan_fields"]

ROLES_WITH_FACTS = ("embedding", "rms_norm", "attention", "mlp", "lm_head")


def causal_lm_facts(records: dict, config: dict, mode: str) -> ModelFacts:
    """ModelFacts from the blocks' records (each built from its own captures) and the HF config."""
    for role in ROLES_WITH_FACTS:
        if role not in records:
            raise PlanError(
                f"no '{role}' match in the {mode} graph: the spec's rules do not cover this model"
            )
    attn, emb, lm = records["attention"], records["embedding"], records["lm_head"]
    if emb.shape != lm.shape:
        raise PlanError(
            f"embedding {list(emb.shape)} and LM head {list(lm.shape)} disagree on [vocab, dim]"
        )
    glue = records.get("none")
    rope = dict(config.get("rope_parameters") or {})
    if rope and all(isinstance(v, dict) for v in rope.values()):  # per layer type (Gemma 3)
        types = sorted(set(config.get("layer_types") or ()))
        if len(types) != 1 or types[0] not in rope:
            raise PlanError(f"RoPE parameters per layer type ({', '.join(sorted(rope))}) for layers of types "
                            f"{types}: one rotary table per layer type is not supported yet")  # fmt: skip
        rope = dict(rope[types[0]])
    theta = float(rope.pop("rope_theta", config.get("rope_theta", 10000.0)))
    return ModelFacts(
        dim=lm.shape[1],
        n_layers=attn.n_layers,
        n_heads=attn.n_heads,
        n_kv_heads=attn.n_kv_heads,
        head_dim=attn.head_dim,
        hidden_dim=records["mlp"].hidden_dim,
        vocab_size=lm.shape[0],
        norm_eps=records["rms_norm"].eps,
        attn_scale=attn.scale,
        rope_theta=theta,
        rope_scaling=tuple(sorted((k, v) for k, v in rope.items() if v is not None)),
        max_position_embeddings=int(config.get("max_position_embeddings", 0)),
        qkv_bias=attn.qkv_bias,
        sliding_window=glue.sliding_window if glue else None,
        tied_embeddings=emb.weight == lm.weight,
        qk_norm_eps=attn.qk_norm_eps,
        qk_norm_per_head=attn.qk_norm_per_head,
        qk_norm_offset=attn.qk_norm_offset,
        mlp_activation=records["mlp"].activation,
        norm_weight_offset=records["rms_norm"].weight_offset,
        embedding_multiplier=(glue.embedding_multiplier if glue else 1.0) * emb.scale,
        residual_multiplier=records["decoder"].residual_multiplier if "decoder" in records else 1.0,
        logits_scaling=glue.logits_scaling if glue else 1.0,
    )


def causal_lm_lowering(spec, profile, facts: ModelFacts, preset, options):
    """The lowering toolkit for a decoder: prefill at the planned lengths, decode for the batch."""
    from ttgen.plan.lower import Lowering
    from ttgen.plan.planner import prefill_lengths

    target = spec.target
    if target.max_seq_len > facts.max_position_embeddings:
        raise PlanError(
            f"target max_seq_len {target.max_seq_len} exceeds the model's {facts.max_position_embeddings} positions"
        )
    return Lowering(spec, profile, facts, preset, prefill_lengths(target.max_seq_len), options.prefill_grid,
                    options.k_grid_target)  # fmt: skip


def causal_lm_plan_fields(lowering, spec, preset) -> dict:
    """The plan's decoder-only parts: prefill lengths, the decode residual's memory, the KV cache."""
    from ttgen.plan.types import KVCachePlan, tensor_bytes

    if preset.kv_cache is None:
        raise PlanError(
            f"{preset.loc}: precision_presets.{preset.name}: missing required key 'kv_cache' (the KV cache's dtype)"
        )
    target, f = spec.target, lowering.facts
    kv_shape = lowering.kv_cache_shape()
    kv_bytes = 2 * f.n_layers * tensor_bytes(kv_shape, preset.kv_cache)
    return {
        "prefill_seq_lens": lowering.prefill_seq_lens,
        "residual_memory": lowering.residual_mem(),
        "kv_cache": KVCachePlan(
            target.kv_cache,
            preset.kv_cache,
            target.block_size,
            target.max_batch,
            target.max_seq_len,
            kv_shape,
            kv_bytes,
        ),  # fmt: skip
    }


# A decoder layer is two residual sub-layers, attention then MLP; each is its core block with an
# optional norm before it (pre-norm: Llama) and after it (post-norm: OLMo 2; both: Gemma's sandwich).
SUBLAYERS = (
    ("attention", ("attention_norm", "attention", "attention_post_norm")),
    ("mlp", ("ff_norm", "feed_forward", "ff_post_norm")),
)
NORM_SLOT = "rms_norm"


def _produced_by(graph, node: str, block: set[str]) -> bool:
    """`node` is an output of `block`'s nodes, directly or through data movement (eval dropout)."""
    from ttgen.match.matcher import neutral

    while node not in block:
        attrs = graph.nodes[node]
        if not neutral(attrs) or len(attrs["inputs"]) != 1:
            return False
        node = attrs["inputs"][0]
    return True


def decoder_roles(layer, children, graph) -> tuple[str, ...]:
    """The roles of a decoder layer's blocks, read from its dataflow: the layer's residual adds cut
    it into sub-layers (graph order), each holds [norm] core [norm], and each add's update must be
    the output of its sub-layer's last block."""
    adds = sorted(
        graph.nodes[n]["index"] for n in layer.nodes if graph.nodes[n]["op"] == "aten.add.Tensor"
    )
    updates = {v for k, v in layer.captures if k.split(".")[0] in ("update", "scaled_update")}
    shape = "[norm] attention [norm] + residual, then [norm] MLP [norm] + residual"
    if len(adds) != len(SUBLAYERS):
        raise PlanError(
            f"decoder layer {layer.module}: {len(adds)} residual adds; a causal_lm layer is {shape}"
        )
    roles, start = [], 0
    for (core, (pre, core_role, post)), end in zip(SUBLAYERS, adds, strict=True):
        part = [c for c in children if start < c.first < end]
        slots = [c.slot for c in part]
        if core not in slots or slots.count(core) != 1:
            raise PlanError(f"decoder layer {layer.module}: a residual sub-layer holds {slots} in graph order; "
                            f"a causal_lm layer is {shape}")  # fmt: skip
        at = slots.index(core)
        before, after = slots[:at], slots[at + 1 :]
        if len(before) > 1 or len(after) > 1 or any(s != NORM_SLOT for s in before + after):
            raise PlanError(f"decoder layer {layer.module}: a residual sub-layer holds {slots} in graph order; "
                            f"a causal_lm layer is {shape}")  # fmt: skip
        if not any(_produced_by(graph, u, set(part[-1].match.nodes)) for u in updates):
            raise PlanError(f"decoder layer {layer.module}: the residual add after {part[-1].name} does not add "
                            f"its output (a causal_lm layer is {shape})")  # fmt: skip
        roles += [pre] * len(before) + [core_role] + [post] * len(after)
        start = end
    if len(roles) != len(children):
        stray = [c.name for c in children if c.first > adds[-1]]
        raise PlanError(
            f"decoder layer {layer.module}: {stray} after its last residual add; a causal_lm layer is {shape}"
        )
    return tuple(roles)


def check_one_attention_mask(result, graph) -> None:
    """Every layer's attention must read the same kind of mask: the sliding-window one (whose
    window the glue captures and SDPA is given) or the plain causal one. Layers of different types
    (Qwen2's max_window_layers, Gemma's alternation) would otherwise all get the one window."""
    import networkx as nx

    from ttgen.blocks import get_block

    windows = [n for m in result.matches if m.get("sliding_window") is not None for n in m.nodes
               if graph.nodes[n]["op"] == "aten.gt.Tensor" and m["key_pos"] in graph.nodes[n]["inputs"]]  # fmt: skip
    if not windows:
        return
    attentions = [m for m in result.matches if get_block(m.template).slot == "attention"]
    kinds = {m.module: any(nx.has_path(graph, w, m["mask"]) for w in windows) for m in attentions}
    if len(set(kinds.values())) > 1:
        sliding = sorted(k for k, v in kinds.items() if v)
        full = sorted(k for k, v in kinds.items() if not v)
        raise PlanError(f"per-layer attention types are not supported yet: {', '.join(sliding)} read the "
                        f"sliding-window mask, {', '.join(full)} the full causal mask")  # fmt: skip


def causal_lm_layout(result, graph) -> ModelLayout:
    from ttgen.blocks.layout import place_blocks

    check_one_attention_mask(result, graph)
    placed = place_blocks(
        result, graph, kind="causal_lm", layer_slot="decoder", assign=decoder_roles
    )
    return ModelLayout(
        embedding=placed.one("embedding"),
        rotary_setup=placed.one("rotary_setup"),
        final_norm=placed.one("rms_norm"),
        lm_head=placed.one("lm_head"),
        layers=placed.layers,
        layer_children=placed.layer_children,
    )
