"""Token embedding: a row gather from the table, as the residual stream."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.blocks import BlockKind, register_block
from ttgen.plan import weights as W
from ttgen.plan.lower import DRAM, Lowering
from ttgen.plan.types import (
    Const,
    Lit,
    Ref,
    Signature,
    WeightPlan,
)


@dataclass(frozen=True)
class EmbeddingFacts:
    weight: str  # the HF parameter
    shape: tuple[int, int]  # [vocab, dim]
    scale: float = (
        1.0  # the lookup scaled by a scalar buffer (Gemma's sqrt(hidden)); folded at load
    )


def facts(matches, shapes) -> EmbeddingFacts:
    (m,) = matches
    scale = m.get("embed_scale")
    return EmbeddingFacts(m["w_embedding"], tuple(shapes[m["w_embedding"]]),
                          shapes.value(scale) if scale is not None else 1.0)  # fmt: skip


def lower(lw: Lowering, rule, matches, decode_matches):
    f = lw.facts
    (src,) = lw.sources(rule, matches, "embedding", relative=False)
    lw.consume(matches, "tokens")
    w = WeightPlan("weight", (src,), W.scaled(W.source(0), f.embedding_multiplier), (f.vocab_size, f.dim), lw.weight_dtype("embedding"),
                   "ROW_MAJOR", DRAM, per_layer=False)  # fmt: skip
    state = lw.state([w])

    def embed(b, rows: int, shape_code: Lit):
        b.call("embed", "ttnn.embedding", [Ref("tokens"), Ref("self.weight")],
               {"layout": Lit("ttnn.TILE_LAYOUT"), "memory_config": Const("DRAM", DRAM)}, outs=("x",),
               out=lw.t((1, rows, f.dim), w.dtype))  # fmt: skip
        b.call("reshape", "ttnn.reshape", [Ref("x"), shape_code], outs=("x",),
               out=lw.t((1, 1, rows, f.dim), w.dtype), view=True)  # fmt: skip

    b = lw.builder({"tokens": lw.t((1, lw.batch), "uint32", DRAM, "ROW_MAJOR")}, state)
    embed(b, lw.batch, Lit("[1, 1, DECODE_BATCH, DIM]", ("DECODE_BATCH", "DIM")))
    out = lw.to_memory(b, "to_residual", "x", "residual", lw.residual_mem(), lw.residual_const())
    sig_d = Signature("forward_decode", ("tokens",), (out,))
    decode = b.finish(sig_d)

    sig_p = Signature("forward_prefill", ("tokens",), ("x",))

    def prefill(s):
        b = lw.builder({"tokens": lw.t((1, s), "uint32", DRAM, "ROW_MAJOR")}, state, s)
        embed(b, s, Lit("[1, 1, tokens.shape[-1], DIM]", ("DIM",)))
        return b.finish(sig_p)

    return [w], {"decode": (sig_d, decode), "prefill": (sig_p, lw.prefill_variants(prefill))}


BLOCK = register_block(
    BlockKind("embedding", lower, facts=facts, skeleton="embedding.py.j2", module="embedding.py")
)
