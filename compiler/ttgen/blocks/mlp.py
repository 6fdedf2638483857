"""Gated MLP (SwiGLU, or GeGLU: Gemma): DRAM-sharded decode matmuls, 2D-multicast prefill matmuls in shared row chunks (tt-transformers mlp.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ttgen.blocks import BlockKind, register_block
from ttgen.plan import weights as W
from ttgen.plan.facts import PlanError, only
from ttgen.plan.formulas import (
    k_grid_cores,
    width_sharded,
)
from ttgen.plan.lower import DRAM, Lowering
from ttgen.plan.program import ttnn_dtype
from ttgen.plan.types import (
    TILE,
    Const,
    Lit,
    Ref,
    Signature,
)

# the gate's activation → the UnaryWithParam ttnn.mul fuses on its first input (GELU's parameter:
# 1.0 the fast approximation — tanh in the emulator —, 0.0 the exact erf form)
GATE_ACTIVATIONS = {
    "silu": "ttnn.UnaryOpType.SILU",
    "gelu_tanh": "ttnn.UnaryWithParam(ttnn.UnaryOpType.GELU, 1.0)",
    "gelu": "ttnn.UnaryWithParam(ttnn.UnaryOpType.GELU, 0.0)",
}


@dataclass(frozen=True)
class MlpFacts:
    hidden_dim: int
    activation: str = "silu"  # of the gate: silu (SwiGLU), gelu_tanh or gelu (GeGLU)


def facts(matches, shapes) -> MlpFacts:
    approx = only({m.get("gelu_approximate") for m in matches}, "the gate's activation")
    activation = {None: "silu", "tanh": "gelu_tanh", "none": "gelu"}.get(approx)
    if activation is None:
        raise PlanError(f"GELU approximate={approx!r} is not supported (exact or tanh)")
    if all(m.get("w_gate_up") is not None for m in matches):  # gate and up fused (Phi-3)
        return MlpFacts(
            only({shapes[m["w_gate_up"]] for m in matches}, "gate/up projection shape")[0] // 2,
            activation,
        )
    return MlpFacts(
        only({shapes[m["w_gate"]] for m in matches}, "gate projection shape")[0], activation
    )


def lower(lw: Lowering, rule, matches, decode_matches):
    f, rows = lw.facts, lw.batch
    fused = lw.sources(rule, matches, "w13_fused")
    if fused is not None:  # Phi-3's gate_up_proj: gate rows first, up rows second, split at load
        h = f.hidden_dim
        (s1, t1), (s3, t3) = (
            (fused, W.slice_(W.source(0), 0, 0, h)),
            (fused, W.slice_(W.source(0), 0, h, 2 * h)),
        )
    else:
        (s1, t1), (s3, t3) = (
            (lw.sources(rule, matches, "w1"), W.source(0)),
            (lw.sources(rule, matches, "w3"), W.source(0)),
        )
    w1 = lw.matmul_weight("w1", s1, f.dim, f.hidden_dim, "w1", W.transpose(t1))
    w3 = lw.matmul_weight("w3", s3, f.dim, f.hidden_dim, "w3", W.transpose(t3))
    w2 = lw.matmul_weight(
        "w2",
        lw.sources(rule, matches, "w2"),
        f.hidden_dim,
        f.dim,
        "w2",
        W.scaled(W.transpose(W.source(0)), f.residual_multiplier),
    )
    lw.consume(matches, "x")
    state = lw.state([w1, w3, w2])
    gate_dtype = lw.precision.mlp_gate
    silu = {
        "input_tensor_a_activations": Lit(f"[{GATE_ACTIVATIONS[lw.facts.mlp_activation]}]"),
        "dtype": ttnn_dtype(gate_dtype),
    }

    b = lw.builder({"x": lw.t((1, 1, rows, f.dim), memory=lw.residual_mem())}, state)
    ff1 = lw.decode_matmul(b, "ff1", lw.spec_op(rule, "ff1"), "x", w1, "w1_out")
    lw.decode_matmul(b, "ff3", lw.spec_op(rule, "ff3"), "x", w3, "w3_out")
    gated = replace(ff1.output, dtype=gate_dtype)
    b.call("gate_mul", "ttnn.mul", [Ref("w1_out"), Ref("w3_out")],
           silu | {"memory_config": Const("FF1_FF3_DECODE_OUTPUT_MEMCFG", ff1.output.memory)}, outs=("w2_in",),
           out=gated, flops=2 * lw.users * f.hidden_dim)  # fmt: skip
    c2 = k_grid_cores(f.hidden_dim // TILE, lw.grid, lw.k_grid_target)
    ff2_in = width_sharded(rows, f.hidden_dim, c2, lw.act_grid)
    x2 = lw.to_memory(
        b,
        "to_ff2_input",
        "w2_in",
        "w2_in_sharded",
        ff2_in,
        Const("FF2_INPUT_DECODE_MEMCFG", ff2_in),
    )
    lw.decode_matmul(b, "ff2", lw.spec_op(rule, "ff2"), x2, w2, "w2_out")
    out = lw.to_memory(b, "to_residual", "w2_out", "out", lw.residual_mem(), lw.residual_const())
    sig_d = Signature("forward_decode", ("x",), (out,))
    decode = b.finish(sig_d)
    sig_p = Signature("forward_prefill", ("x",), ("out",))

    def prefill(s):
        xs = lw.t((1, 1, s, f.dim))
        b = lw.builder({"x": xs}, state, s)
        gx = lw.t((1, 1, s, f.hidden_dim), gate_dtype)

        def configs(rows=None):
            return [lw.prefill_matmul_config(n, lw.spec_op(rule, n), x, w, s, rows=rows)
                    for n, x, w in (("ff1", xs, w1), ("ff3", xs, w3), ("ff2", gx, w2))]  # fmt: skip

        c1, c3, c2 = configs()
        chunk = min(c[2] for c in (c1, c3, c2))
        if chunk < s:  # one reshape of the MLP's input serves all three: one chunk size
            c1, c3, c2 = configs(chunk)
            lw.chunk_rows(b, "chunk", "x", chunk, "PREFILL_CHUNKS")
        lw.prefill_matmul(b, "ff1", lw.spec_op(rule, "ff1"), "x", w1, "w1_out", c1)
        lw.prefill_matmul(b, "ff3", lw.spec_op(rule, "ff3"), "x", w3, "w3_out", c3)
        b.call("gate_mul", "ttnn.mul", [Ref("w1_out"), Ref("w3_out")], silu | {"memory_config": Const("DRAM", DRAM)},
               outs=("w2_in",), out=replace(b.tensor("w1_out"), dtype=gate_dtype))  # fmt: skip
        lw.prefill_matmul(b, "ff2", lw.spec_op(rule, "ff2"), "w2_in", w2, "out", c2)
        if chunk < s:
            lw.unchunk_rows(b, "unchunk", "out", "PREFILL_CHUNKS")
        return b.finish(sig_p)

    return [w1, w3, w2], {
        "decode": (sig_d, decode),
        "prefill": (sig_p, lw.prefill_variants(prefill)),
    }


BLOCK = register_block(BlockKind("mlp", lower, facts=facts, skeleton="mlp.py.j2", module="mlp.py"))
