"""Pre-norm decoder layer: norm → attention → residual add, norm → MLP → residual add (tt-transformers decoder.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.blocks import BlockKind, register_block
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
    # the two residual adds, each of a sub-block's input and its update (the pre-norm layer)
    # (Granite's residual multiplier is folded into the attention's and the MLP's output weights)
    lw.consume(matches, "residual", "update", "scaled_update")

    def program(b, mode, attn_args, out_memory: Const):
        x = b.tensor("x")
        sub = f"forward_{mode}"
        b.call("attention_norm", f"self.attention_norm.{sub}", [Ref("x")], outs=("attn_in",), out=x)
        b.call(
            "attention",
            f"self.attention.{sub}",
            [Ref("attn_in"), *attn_args],
            outs=("attn_out",),
            out=x,
        )
        b.call("attn_residual", "ttnn.add", [Ref("x"), Ref("attn_out")], {"memory_config": out_memory},
               outs=("h",), out=x)  # fmt: skip
        b.call("ff_norm", f"self.ff_norm.{sub}", [Ref("h")], outs=("ff_in",), out=x)
        b.call("feed_forward", f"self.feed_forward.{sub}", [Ref("ff_in")], outs=("ff_out",), out=x)
        b.call("mlp_residual", "ttnn.add", [Ref("h"), Ref("ff_out")], {"memory_config": out_memory},
               outs=("out",), out=x)  # fmt: skip

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
