"""Decoder layer: two residual sub-layers, attention then MLP, each its core block with the norms the
layout found around it — before (pre-norm: Llama, tt-transformers decoder.py), after (post-norm:
OLMo 2) or both (Gemma's sandwich) — and a residual add."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.blocks import BlockKind, register_block
from ttgen.blocks.causal_lm import SUBLAYERS
from ttgen.plan.lower import DRAM, Lowering
from ttgen.plan.types import (
    Const,
    Lit,
    Ref,
    Signature,
)


@dataclass(frozen=True)
class DecoderFacts:
    residual_multiplier: (
        float  # each residual update scaled by a constant before the add (Granite); 1 elsewhere
    )


def facts(matches, shapes) -> DecoderFacts:
    from ttgen.plan.facts import only

    values = {v for m in matches for k, v in m.captures if k.split(".")[0] == "residual_multiplier"}
    for m in matches:
        m.get("residual_multiplier")  # read (the two residual adds' captures, .0 and .1)
    return DecoderFacts(float(only(values, "residual multiplier")) if values else 1.0)


def lower(lw: Lowering, rule, matches, decode_matches):
    paged = lw.spec.target.kv_cache == "paged"
    extra = ("page_table",) if paged else ()
    # the two residual adds, each of a sub-layer's input and its update
    # (Granite's residual multiplier is folded into the attention's and the MLP's output weights)
    lw.consume(matches, "residual", "update", "scaled_update")
    present = {role for role, _ in lw.layout.layer_children}
    # per sub-layer: its roles' output values (norm in, core out, norm out) and its residual add
    values = (("attn_in", "attn_out", "attn_normed"), ("ff_in", "ff_out", "ff_normed"))
    adds = (("attn_residual", "h"), ("mlp_residual", "out"))

    def program(b, mode, attn_args, out_memory: Const):
        x = b.tensor("x")
        sub = f"forward_{mode}"
        stream = "x"
        for (_, roles), names, (add, out) in zip(SUBLAYERS, values, adds, strict=True):
            val = stream
            for role, name in zip(roles, names, strict=True):
                if role in present:
                    args = attn_args if role == "attention" else ()
                    b.call(role, f"self.{role}.{sub}", [Ref(val), *args], outs=(name,), out=x)
                    val = name
            b.call(add, "ttnn.add", [Ref(stream), Ref(val)], {"memory_config": out_memory},
                   outs=(out,), out=x)  # fmt: skip
            stream = out

    d_params = lw.layer_inputs()
    b = lw.builder(d_params, {})
    program(
        b,
        "decode",
        [Ref(n) for n in ("current_pos", "cos", "sin", "trans_mat", *extra)],
        lw.residual_const(),
    )
    sig_d = Signature("forward_decode", tuple(d_params), ("out",), consumes=("x",))
    decode = b.finish(sig_d)
    sig_p = Signature("forward_prefill", ("x", "cos", "sin", "trans_mat", "user_id", *extra), ("out",),
                      consumes=("x",))  # fmt: skip

    def prefill(s):
        p = lw.layer_inputs(s)
        b = lw.builder(p, {}, s)
        args = [
            Ref("cos"),
            Ref("sin"),
            Ref("trans_mat"),
            Lit("user_id"),
            *(Ref(n) for n in extra),
        ]
        program(b, "prefill", args, Const("DRAM", DRAM))
        return b.finish(sig_p)

    return [], {"decode": (sig_d, decode), "prefill": (sig_p, lw.prefill_variants(prefill))}


BLOCK = register_block(
    BlockKind("decoder", lower, facts=facts, skeleton="decoder.py.j2", module="decoder.py")
)
