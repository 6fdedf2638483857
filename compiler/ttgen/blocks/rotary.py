"""Rotary embedding setup: cos/sin tables and the transformation matrix; per-mode position lookups."""

from __future__ import annotations

from ttgen.blocks import BlockKind, register_block
from ttgen.plan.facts import PlanError
from ttgen.plan.lower import DRAM, Lowering
from ttgen.plan.types import (
    TILE,
    Const,
    Lit,
    Ref,
    Signature,
    WeightPlan,
)

ROPE_TYPES = ("default", "linear", "llama3")  # frequency schemes the skeleton computes


def lower(lw: Lowering, rule, matches, decode_matches):
    f, b_rows = lw.facts, lw.batch
    seq = lw.spec.target.max_seq_len
    # the tables are computed from the config's rope parameters (ModelFacts), not read from HF's
    # inv_freq buffer; HF multiplies cos and sin by attention_scaling, which must then be 1
    lw.consume(matches, "inv_freq", "positions", "angles")
    rope_type = dict(f.rope_scaling).get("rope_type", "default")
    if rope_type not in ROPE_TYPES:
        raise PlanError(f"{rule.loc}: rule {rule.name}: rope_type '{rope_type}' is not supported "
                        f"(supported: {', '.join(ROPE_TYPES)})")  # fmt: skip
    for m in matches:
        if m["attention_scaling"] != 1.0:
            raise PlanError(f"{rule.loc}: rule {rule.name} at {m.module}: RoPE attention_scaling "
                            f"{m['attention_scaling']} (rope type {dict(f.rope_scaling).get('rope_type')}) is not supported")  # fmt: skip
    decode_inputs = lw.layer_inputs()  # what the layers take: one user's row per core
    weights = [
        WeightPlan("cos", (), ("computed", "rope_cos"), (1, 1, seq, f.head_dim), "bfloat16", "TILE", DRAM, per_layer=False),
        WeightPlan("sin", (), ("computed", "rope_sin"), (1, 1, seq, f.head_dim), "bfloat16", "TILE", DRAM, per_layer=False),
        WeightPlan("cos_rows", (), ("computed", "rope_cos"), (seq, f.head_dim), "bfloat16", "ROW_MAJOR", DRAM, per_layer=False),
        WeightPlan("sin_rows", (), ("computed", "rope_sin"), (seq, f.head_dim), "bfloat16", "ROW_MAJOR", DRAM, per_layer=False),
        WeightPlan("trans_mat_prefill", (), ("computed", "rope_transformation"), (1, 1, TILE, TILE), "bfloat16", "TILE", DRAM, per_layer=False),
        WeightPlan("trans_mat_decode", (), ("computed", "rope_transformation"), (1, 1, TILE * b_rows, TILE), "bfloat16", "TILE",
                   decode_inputs["trans_mat"].memory, per_layer=False),
    ]  # fmt: skip
    state = lw.state(weights)
    sharded = decode_inputs["cos"].memory
    b = lw.builder({"rot_idxs": lw.t((1, b_rows), "uint32", DRAM, "ROW_MAJOR")}, state)
    for which in ("cos", "sin"):
        rows = lw.t((1, b_rows, f.head_dim), "bfloat16")
        b.call(f"{which}_lookup", "ttnn.embedding", [Ref("rot_idxs"), Ref(f"self.{which}_rows")],
               {"layout": Lit("ttnn.TILE_LAYOUT"), "memory_config": Const("DRAM", DRAM)},
               outs=(f"{which}_rows",), out=rows)  # fmt: skip
        b.call(f"{which}_reshape", "ttnn.reshape", [Ref(f"{which}_rows"), Lit("[1, 1, DECODE_BATCH, HEAD_DIM]", ("DECODE_BATCH", "HEAD_DIM"))],
               outs=(f"{which}_rows",), out=lw.t((1, 1, b_rows, f.head_dim), "bfloat16"), view=True)  # fmt: skip
        b.call(f"{which}_transpose", "ttnn.transpose", [Ref(f"{which}_rows"), Lit("1"), Lit("2")],
               outs=(f"{which}_per_user",), out=lw.t((1, b_rows, 1, f.head_dim), "bfloat16"))  # fmt: skip
        b.call(f"{which}_shard", "ttnn.interleaved_to_sharded",
               [Ref(f"{which}_per_user"), Const("ROT_MATS_DECODE_MEMCFG", sharded)], outs=(which,),
               out=lw.t((1, b_rows, 1, f.head_dim), "bfloat16", sharded))  # fmt: skip
    sig_d = Signature("decode_rot_mats", ("rot_idxs",), ("cos", "sin"))
    decode = b.finish(sig_d)
    sig_p = Signature("prefill_rot_mats", ("seq_len",), ("cos", "sin"))

    def prefill(s):
        b = lw.builder({}, state, s)
        for which in ("cos", "sin"):
            b.call(f"{which}_slice", "ttnn.slice",
                   [Ref(f"self.{which}"), Lit("[0, 0, 0, 0]"), Lit("[1, 1, seq_len, HEAD_DIM]", ("HEAD_DIM",))],
                   outs=(which,), out=lw.t((1, 1, s, f.head_dim), "bfloat16"))  # fmt: skip
        return b.finish(sig_p)

    return weights, {"decode": (sig_d, decode), "prefill": (sig_p, lw.prefill_variants(prefill))}


def context(module, plan) -> dict:
    scaling = dict(plan.facts.rope_scaling)
    return {
        "rope_type": scaling.get("rope_type", "default"),
        "theta": plan.facts.rope_theta,
        "factor": scaling.get("factor"),
        "low_freq_factor": scaling.get("low_freq_factor"),
        "high_freq_factor": scaling.get("high_freq_factor"),
        "original_max_position_embeddings": scaling.get("original_max_position_embeddings"),
    }


BLOCK = register_block(
    BlockKind("rotary_setup", lower, skeleton="rope.py.j2", module="rope.py", context=context)
)
