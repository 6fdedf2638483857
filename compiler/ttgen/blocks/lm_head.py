"""LM head: DRAM-sharded matmuls over vocab splits that fit L1, gathered into one logits row (tt-transformers lm_head.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.blocks import BlockKind, register_block
from ttgen.plan import weights as W
from ttgen.plan.facts import PlanError
from ttgen.plan.formulas import ceil_div, dram_weight_memcfg, largest_divisor
from ttgen.plan.lower import L1, Lowering
from ttgen.plan.types import (
    TILE,
    TILE_BYTES,
    Const,
    Lit,
    Ref,
    Signature,
    WeightPlan,
)


def vocab_splits(lw: Lowering, cores: int, compute) -> list[int]:
    """Vocab columns per LM-head matmul: the fewest equal splits (multiples of 32 x cores
    columns) whose circular buffers (each DRAM bank's reader computes 1/banks of a split) and
    output shard fit in half of L1."""
    f = lw.facts
    unit = TILE * cores
    w_dtype, out_dtype = lw.weight_dtype("lm_head"), lw.precision.logits
    kt_core = f.dim // TILE // cores
    kb = largest_divisor(kt_core, 8)
    for n_splits in range(1, 129):
        width = ceil_div(ceil_div(f.vocab_size, n_splits), unit) * unit
        per_core_n = width // unit
        cbs = lw.dram_sharded_cbs(f.dim, width, kb, lw.act, w_dtype, out_dtype, compute)
        need = cbs + per_core_n * TILE_BYTES[out_dtype]
        if need <= lw.device.l1_bank_size // 2:
            widths = [width] * (n_splits - 1) + [f.vocab_size - width * (n_splits - 1)]
            if widths[-1] > 0:
                return widths
    raise PlanError(f"LM head: vocab {f.vocab_size} does not fit L1 even in 128 splits")


@dataclass(frozen=True)
class LmHeadFacts:
    weight: str  # the HF parameter
    shape: tuple[int, int]  # [vocab, dim]


def facts(matches, shapes) -> LmHeadFacts:
    (m,) = matches
    return LmHeadFacts(m["w_lm_head"], tuple(shapes[m["w_lm_head"]]))


def lower(lw: Lowering, rule, matches, decode_matches):
    f, rows = lw.facts, lw.batch
    spec_op = lw.spec_op(rule, "lm_head")
    (src,) = lw.sources(rule, matches, "lm_head", relative=False)
    lw.consume(matches, "x")
    cores = lw.residual_cores()
    splits = vocab_splits(
        lw, cores, lw.compute(spec_op.fidelity_key("decode") if spec_op else None)
    )
    weights, start = [], 0
    for i, width in enumerate(splits):
        weights.append(WeightPlan(f"weight_{i}", (src,), W.scaled(W.transpose(W.slice_(W.source(0), 0, start, start + width)), 1.0 / f.logits_scaling), (f.dim, width),
                                  lw.weight_dtype("lm_head"), "TILE",
                                  dram_weight_memcfg(f.dim, width, lw.device.dram_banks), per_layer=False))  # fmt: skip
        start += width
    state = lw.state(weights)
    logits_dtype = lw.precision.logits

    def splits_program(b, x: str):
        outs = []
        for i, w in enumerate(weights):
            role = "lm_head" if w.shape == weights[0].shape else "lm_head_last"
            lw.decode_matmul(
                b,
                f"lm_head_{i}",
                spec_op,
                x,
                w,
                f"split_{i}",
                out_dtype=logits_dtype,
                role=role,
            )
            name = f"logits_{i}" if len(weights) > 1 else "logits"
            b.call(f"lm_head_{i}_interleaved", "ttnn.sharded_to_interleaved", [Ref(f"split_{i}"), Const("L1", L1)],
                   outs=(name,), out=lw.t((1, 1, rows, w.shape[-1]), logits_dtype, L1))  # fmt: skip
            outs.append(name)
        if len(weights) > 1:
            b.call("concat", "ttnn.concat", [tuple(Ref(o) for o in outs)],
                   {"dim": Lit("-1"), "memory_config": Const("L1", L1)}, outs=("logits",),
                   out=lw.t((1, 1, rows, f.vocab_size), logits_dtype, L1))  # fmt: skip

    x = lw.t((1, 1, rows, f.dim), memory=lw.residual_mem())
    b = lw.builder({"x": x}, state)
    splits_program(b, "x")
    sig_d = Signature("forward_decode", ("x",), ("logits",))
    decode = b.finish(sig_d)
    sig_p = Signature("forward_prefill", ("x",), ("logits",))
    b = lw.builder({"x": lw.t((1, 1, TILE, f.dim))}, state)
    b.call("to_sharded", "ttnn.interleaved_to_sharded", [Ref("x"), lw.residual_const()], outs=("x_sharded",),
           out=x)  # fmt: skip
    splits_program(b, "x_sharded")
    prefill = b.finish(sig_p)
    return weights, {"decode": (sig_d, decode), "prefill": (sig_p, prefill)}


def context(module, plan) -> dict:
    splits, start = [], 0
    for w in module.weights:
        splits.append({"name": w.name, "start": start, "end": start + w.shape[-1]})
        start += w.shape[-1]
    return {"splits": splits}


BLOCK = register_block(
    BlockKind(
        "lm_head",
        lower,
        facts=facts,
        skeleton="lm_head.py.j2",
        module="lm_head.py",
        context=context,
    )
)
