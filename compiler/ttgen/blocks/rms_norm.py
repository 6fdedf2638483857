"""RMSNorm: sharded in decode (LayerNormShardedMultiCoreProgramConfig), interleaved in prefill."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.blocks import BlockKind, register_block
from ttgen.devices.rules import interleaved_rms_norm_cb_bytes, sharded_rms_norm_cb_bytes
from ttgen.plan import weights as W
from ttgen.plan.facts import only
from ttgen.plan.formulas import (
    ceil_div,
    largest_divisor,
)
from ttgen.plan.lower import DRAM, Lowering
from ttgen.plan.types import (
    TILE,
    Const,
    ProgCfg,
    Ref,
    Signature,
    WeightPlan,
)


@dataclass(frozen=True)
class NormFacts:
    eps: float
    weight_offset: float = 0.0  # the norm scales by (offset + w): Gemma's 1


def facts(matches, shapes) -> NormFacts:
    offset = only({float(m.get("weight_offset") or 0.0) for m in matches}, "RMSNorm weight offset")
    return NormFacts(only({m["eps"] for m in matches}, "RMSNorm eps"), offset)


def _norm_weight(lw: Lowering, rule, matches) -> WeightPlan:
    srcs = lw.sources(rule, matches, "norm")
    lw.consume(matches, "x")
    per_layer = any(m.layer is not None for m in matches)
    w = W.add(W.source(0), lw.facts.norm_weight_offset)
    return WeightPlan("weight", srcs, W.reshape(w, ("1", "1", "DIM // 32", "32")), (1, 1, lw.facts.dim // TILE, TILE),
                      lw.weight_dtype("norm"), "ROW_MAJOR", DRAM, per_layer=per_layer)  # fmt: skip


def lower(lw: Lowering, rule, matches, decode_matches):
    f = lw.facts
    w = _norm_weight(lw, rule, matches)
    state = lw.state([w])
    spec_op = lw.spec_op(rule, "norm")
    compute = lw.compute(spec_op.fidelity_key("decode") if spec_op else None)
    mem = lw.residual_mem()
    cores = mem.num_cores
    block_w = f.dim // TILE // cores
    gx = min(cores, lw.act_grid[0])
    pc = ProgCfg("norm_sharded", (gx, ceil_div(cores, gx)), (
        ("subblock_w", largest_divisor(block_w, 4)),
        ("block_h", ceil_div(lw.batch, TILE)),
        ("block_w", block_w),
        ("inplace", False),
    ))  # fmt: skip
    eps = Const("NORM_EPS", f.norm_eps, shared=True)
    fp32 = bool(compute and compute.fp32_dest_acc_en)
    x = lw.t((1, 1, lw.batch, f.dim), memory=mem)
    b = lw.builder({"x": x}, state)
    b.call("norm", "ttnn.rms_norm", [Ref("x")], {
        "epsilon": eps, "weight": Ref("self.weight"), "program_config": Const("NORM_DECODE_PROGCFG", pc),
        "memory_config": lw.residual_const(), "compute_kernel_config": lw.compute_const(compute),
    }, outs=("out",), out=x, program=pc, compute=compute, weight="weight",
        cb=sharded_rms_norm_cb_bytes(block_w=block_w, num_cores=cores, fp32_dest_acc_en=fp32))  # fmt: skip
    sig_d = Signature("forward_decode", ("x",), ("out",))
    decode = b.finish(sig_d)
    sig_p = Signature("forward_prefill", ("x",), ("out",))

    def prefill(s):
        xs = lw.t((1, 1, s, f.dim))
        b = lw.builder({"x": xs}, state, s)
        b.call("norm", "ttnn.rms_norm", [Ref("x")], {
            "epsilon": eps, "weight": Ref("self.weight"), "memory_config": Const("DRAM", DRAM),
            "compute_kernel_config": lw.compute_const(compute),
        }, outs=("out",), out=xs, compute=compute, weight="weight",
            cb=interleaved_rms_norm_cb_bytes(width_tiles=f.dim // TILE, fp32_dest_acc_en=fp32))  # fmt: skip
        return b.finish(sig_p)

    # the model runs its final norm on the tile row of the last prompt token only (as tt-transformers
    # does before the LM head): one more variant, at 32 rows
    variants = lw.prefill_variants(prefill) + (
        [] if TILE in lw.prefill_seq_lens else list(prefill(TILE))
    )
    return [w], {"decode": (sig_d, decode), "prefill": (sig_p, variants)}


def context(module, plan) -> dict:
    return {"instances": ", ".join(sorted({p.rsplit(".", 1)[-1] for p in module.instances}))}


BLOCK = register_block(
    BlockKind(
        "rms_norm",
        lower,
        facts=facts,
        skeleton="rmsnorm.py.j2",
        module="rmsnorm.py",
        context=context,
    )
)
