"""The block kinds of ViT image classifiers: their typed facts (read from their own captures) and
their programs, one mode (`forward`: a batch of images).

The op sequence is tt-metal's ViT (vit.md §3; models/demos/vit): the image prepared on the host
(NHWC, channels padded, [B, H, W / p, p * C]), `fold` and one matmul for the patch convolution, the
CLS row concatenated and the position embeddings added; per layer LayerNorm, a fused QKV linear,
`split_query_key_value_and_split_heads`, Q·Kᵀ, the scale (`mul_`), the softmax in place, P·V,
`concatenate_heads`, the output linear, the residual add, LayerNorm, FF1 with GELU fused, FF2 and
the second residual. Activations are DRAM-interleaved (tt-metal's interleaved ViT) with the
sequence at its logical length (197 for a 224 image): the interleaved softmax masks the tile
padding of the keys, so the attention is HF's exactly (tt-metal's sharded ViT pads to 224 and lets
the padded keys into the softmax). The fused GELU is the exact (erf) one, as HF's."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ttgen.blocks import BlockKind, register_block
from ttgen.devices.rules import interleaved_layer_norm_cb_bytes
from ttgen.plan import weights as W
from ttgen.plan.facts import PlanError, only
from ttgen.plan.formulas import cb_matmul, ceil_div, dest_for, largest_divisor, matmul_2d
from ttgen.plan.lower import DRAM, Lowering, _at
from ttgen.plan.program import ttnn_dtype
from ttgen.plan.types import (
    TILE,
    Const,
    Lit,
    MemCfg,
    ProgCfg,
    Ref,
    Signature,
    TensorPlan,
    WeightPlan,
)

__all__ = ["padded_channels"]

MODE = "forward"


@dataclass(frozen=True)
class VitEmbeddingFacts:
    patch_size: int  # the patch convolution's kernel = stride
    channels: int
    hidden: int
    tokens: int  # patches + CLS


@dataclass(frozen=True)
class LayerNormFacts:
    eps: float


@dataclass(frozen=True)
class VitAttentionFacts:
    n_layers: int
    n_heads: int
    head_dim: int
    scale: float
    bias: bool


@dataclass(frozen=True)
class GeluMlpFacts:
    hidden: int  # fc1's output width


@dataclass(frozen=True)
class ClassifierFacts:
    classes: int


def _embedding_facts(matches, shapes) -> VitEmbeddingFacts:
    stride = only({tuple(m["patch_stride"]) for m in matches}, "patch stride")
    if len(set(stride)) != 1:
        raise PlanError(f"non-square patches {list(stride)} are not supported")
    weight = only(
        {shapes[m["w_patch"]] for m in matches}, "patch projection shape"
    )  # [hidden, C, p, p]
    if tuple(weight[2:]) != tuple(stride):
        raise PlanError(
            f"patch kernel {list(weight[2:])} != stride {list(stride)}: overlapping patches"
        )
    tokens = only({shapes[m["position_embeddings"]][1] for m in matches}, "position embeddings")
    return VitEmbeddingFacts(stride[0], weight[1], weight[0], tokens)


def _norm_facts(matches, shapes) -> LayerNormFacts:
    return LayerNormFacts(only({m["eps"] for m in matches}, "LayerNorm eps"))


def _attention_facts(matches, shapes) -> VitAttentionFacts:
    head_dim = only({m["heads_view"][-1] for m in matches}, "head_dim")
    wq = only({shapes[m["w_q"]] for m in matches}, "query projection shape")
    return VitAttentionFacts(len(matches), wq[0] // head_dim, head_dim,
                             only({m["scale"] for m in matches}, "attention scale"),
                             any(m.get("b_q") is not None for m in matches))  # fmt: skip


def _mlp_facts(matches, shapes) -> GeluMlpFacts:
    return GeluMlpFacts(only({shapes[m["w_fc1"]][0] for m in matches}, "MLP width"))


def _classifier_facts(matches, shapes) -> ClassifierFacts:
    return ClassifierFacts(only({shapes[m["w_classifier"]][0] for m in matches}, "classes"))


def padded_channels(channels: int, patch: int) -> int:
    """Image channels padded as tt-metal pads RGB (3 → 4), and further until a patch's folded row
    (patch² · channels) fills whole tiles, so the patch matmul's K has no tile padding."""
    c = ceil_div(channels, 4) * 4
    while (patch * patch * c) % TILE:
        c += 4
    return c


# ---------------------------------------------------------------------------------- toolkit


def _weight(lw: Lowering, name: str, sources, transform, shape, group: str, per_layer: bool,
            layout: str = "TILE") -> WeightPlan:  # fmt: skip
    return WeightPlan(name, tuple(sources), transform, tuple(shape), lw.weight_dtype(group), layout, DRAM,
                      per_layer=per_layer)  # fmt: skip


def _bias(lw, name, sources, width, group, per_layer, parts=1) -> WeightPlan:
    """A linear's bias as one tile row [1, width] (q, k and v biases side by side when fused)."""
    t = W.concat([W.source(i) for i in range(parts)]) if parts > 1 else W.source(0)
    return _weight(lw, name, sources, W.unsqueeze(t), (1, width), group, per_layer)


def _program_fields(lw: Lowering, spec_op, name: str, kind: str, what: str) -> dict:
    """The spec's fields for op `name`'s program, which must be of `kind` (or auto)."""
    chosen, fields = lw._choice(spec_op, MODE, kind)
    if chosen != kind:
        raise PlanError(
            f"{_at(spec_op)}op {name}: program '{chosen}' is not supported for {what} (use {kind})"
        )
    return fields


def _matmul_kwargs(lw: Lowering, name: str, pc: ProgCfg, compute, memory, dtype: str,
                   bias: WeightPlan | None = None) -> dict:  # fmt: skip
    """A planned matmul's keyword arguments: bias, program config, memory config, compute, dtype."""
    kwargs = {"bias": Ref(f"self.{bias.name}")} if bias else {}
    return kwargs | {
        "program_config": Const(f"{name.upper()}_PROGCFG", pc),
        "memory_config": memory,
        "compute_kernel_config": lw.compute_const(compute) if compute else Lit("None"),
        "dtype": ttnn_dtype(dtype),
    }


def _linear_config(lw: Lowering, name: str, spec_op, x: TensorPlan, w: WeightPlan, out_dtype: str,
                   activation: str | None = None):  # fmt: skip
    """A 2D-multicast matmul over the batch's rows (fuse_batch): one block of output tiles per core of
    a grid no larger than the rows and columns it covers, the largest in0_block_w whose circular
    buffers fit L1. Returns (program, compute, circular-buffer bytes)."""
    fields = _program_fields(lw, spec_op, name, "2d", "ViT linears")
    compute = lw.compute(spec_op.fidelity_key(MODE) if spec_op else None)
    rows = x.shape[0] * ceil_div(x.shape[-2], TILE) * TILE  # batch x tile-padded sequence
    k, n = x.shape[-1], w.shape[-1]
    grid = (min(lw.grid[0], 8, ceil_div(n, TILE)), min(lw.grid[1], 8, rows // TILE))
    budget = lw.device.l1_bank_size
    for kb in sorted((d for d in range(1, 9) if (k // TILE) % d == 0), reverse=True):
        pc = lw._override(
            matmul_2d(rows, k, n, grid, kb, dest_for(compute), True, activation), fields, spec_op
        )
        cb = cb_matmul(pc, x.dtype, w.dtype, out_dtype, compute, False, False)
        if cb <= budget or fields:
            return pc, compute, cb
    raise PlanError(
        f"{_at(spec_op)}op {name}: no 2D matmul config fits L1 ({budget} B per core) for K={k}, N={n}"
    )


def _linear(lw: Lowering, b, name: str, spec_op, x: str, w: WeightPlan, bias: WeightPlan | None, out: str,
            out_dtype: str | None = None, activation: str | None = None):  # fmt: skip
    xt = b.tensor(x)
    out_dtype = out_dtype or lw.act
    pc, compute, cb = _linear_config(lw, name, spec_op, xt, w, out_dtype, activation)
    out_t = lw.t((*xt.shape[:-1], w.shape[-1]), out_dtype)
    kwargs = _matmul_kwargs(lw, name, pc, compute, Const("DRAM", DRAM), out_dtype, bias)
    rows = 1
    for d in xt.shape[:-1]:
        rows *= d
    return b.call(name, "ttnn.linear", [Ref(x), Ref(f"self.{w.name}")], kwargs, outs=(out,), out=out_t,
                  program=pc, compute=compute, weight=w.name, cb=cb, flops=2 * rows * xt.shape[-1] * w.shape[-1])  # fmt: skip


def _bmm_config(lw: Lowering, a: TensorPlan, b: TensorPlan, compute) -> ProgCfg:
    """MatmulMultiCoreReuseProgramConfig for a batched attention matmul: each core computes whole
    heads (per_core_M = the heads it holds x one head's row tiles, per_core_N = every column tile);
    heads are spread over the grid, several per core when there are more heads than cores."""
    heads = a.shape[0] * a.shape[1]
    mt, kt, nt = (
        ceil_div(a.shape[-2], TILE),
        ceil_div(a.shape[-1], TILE),
        ceil_div(b.shape[-1], TILE),
    )
    cores = lw.grid[0] * lw.grid[1]
    per_core = min(d for d in range(1, heads + 1) if heads % d == 0 and heads // d <= cores)
    w = largest_divisor(nt, dest_for(compute))
    return ProgCfg("reuse", lw.grid, (
        ("in0_block_w", largest_divisor(kt, 8)),
        ("out_subblock_h", 1),
        ("out_subblock_w", w),
        ("per_core_M", per_core * mt),
        ("per_core_N", nt),
    ))  # fmt: skip


def _bmm(lw: Lowering, b, name: str, spec_op, a: str, bt: str, out: str):
    at, btt = b.tensor(a), b.tensor(bt)
    fields = _program_fields(lw, spec_op, name, "reuse", "attention matmuls")
    compute = lw.compute(spec_op.fidelity_key(MODE) if spec_op else None)
    pc = lw._override(_bmm_config(lw, at, btt, compute), fields, spec_op)
    out_t = lw.t((*at.shape[:-1], btt.shape[-1]))
    kwargs = _matmul_kwargs(lw, name, pc, compute, Const("DRAM", DRAM), out_t.dtype)
    flops = 2 * at.shape[0] * at.shape[1] * at.shape[2] * at.shape[3] * btt.shape[-1]
    return b.call(name, "ttnn.matmul", [Ref(a), Ref(bt)], kwargs, outs=(out,), out=out_t, program=pc,
                  compute=compute, flops=flops)  # fmt: skip


def _seq(lw: Lowering) -> tuple[int, int]:
    f = lw.facts
    return lw.spec.target.max_batch, f.tokens


@dataclass(frozen=True)
class ShardedGeometry:
    """tt-metal's sharded ViT layout (vit.md §4): one image per core row; the hidden dim split over
    `cols` core columns (block-sharded activations, [S, D / cols] per core); the attention on
    `attn_cols` columns, whole heads per core (height-sharded q, k, v and scores)."""

    seq: int  # the sequence padded to whole tiles (197 → 224)
    rows: int  # core rows = images
    cols: int  # core columns of the block-sharded activations
    attn_cols: int  # core columns of the attention

    def block(self, width: int) -> MemCfg:
        """[batch, seq, width] block-sharded over rows x cols."""
        return MemCfg(
            "BLOCK_SHARDED",
            "L1",
            ((0, 0, self.cols - 1, self.rows - 1),),
            (self.seq, width // self.cols),
        )

    def attn_block(self, width: int) -> MemCfg:
        return MemCfg("BLOCK_SHARDED", "L1", ((0, 0, self.attn_cols - 1, self.rows - 1),),
                      (self.seq, width // self.attn_cols))  # fmt: skip

    def attn_height(self, rows: int, width: int) -> MemCfg:
        """[rows, width] (all heads' rows) height-sharded over the attention cores."""
        cores = self.rows * self.attn_cols
        return MemCfg(
            "HEIGHT_SHARDED",
            "L1",
            ((0, 0, self.attn_cols - 1, self.rows - 1),),
            (rows // cores, width),
        )


def sharded_geometry(lw: Lowering) -> ShardedGeometry | None:
    """The sharded layout for this model and target, None when the spec asks for DRAM-interleaved
    activations. Refuses (with the numbers) what the sharded layout cannot hold."""
    if lw.spec.target.activations != "sharded":
        return None
    f = lw.facts
    batch = lw.spec.target.max_batch
    gx, gy = lw.grid
    if batch > gy:
        raise PlanError(f"{lw.spec.target.loc}: target.activations sharded: {batch} images need {batch} core rows, "
                        f"{lw.device.name} has {gy} (tt-metal's sharded ViT runs one image per row); use a batch of "
                        f"at most {gy} or target.activations: interleaved")  # fmt: skip
    dt = f.dim // TILE
    cols = max(c for c in range(1, gx + 1) if dt % c == 0 and (f.hidden_dim // TILE) % c == 0)
    attn_cols = max(c for c in range(1, gx + 1) if f.n_heads % c == 0)
    return ShardedGeometry(ceil_div(f.tokens, TILE) * TILE, batch, cols, attn_cols)


def _sharded_linear(lw: Lowering, b, name: str, spec_op, x: str, w: WeightPlan, bias: WeightPlan | None, out: str,
                    out_mem: MemCfg, activation: str | None = None):  # fmt: skip
    """A 2D-multicast matmul from a block-sharded input to a block-sharded output on the same grid:
    per_core_M the shard's rows, in0_block_w the shard's width (tt-metal's ViT configs)."""
    fields = _program_fields(lw, spec_op, name, "2d", "ViT linears")
    compute = lw.compute(spec_op.fidelity_key(MODE) if spec_op else None)
    xt = b.tensor(x)
    shard_h, shard_w = (v // TILE for v in xt.memory.shard)
    x0, y0, x1, y1 = xt.memory.ranges[0]
    n = w.shape[-1]
    per_n = out_mem.shard[1] // TILE
    pc = lw._override(ProgCfg("2d", (x1 - x0 + 1, y1 - y0 + 1), (
        ("in0_block_w", largest_divisor(shard_w, 8)), ("out_subblock_h", 1),
        ("out_subblock_w", largest_divisor(per_n, dest_for(compute))), ("out_block_h", shard_h),
        ("out_block_w", per_n), ("per_core_M", shard_h), ("per_core_N", per_n), ("transpose_mcast", False),
        ("fused_activation", activation), ("fuse_batch", True),
    )), fields, spec_op)  # fmt: skip
    out_t = lw.t((*xt.shape[:-1], n), memory=out_mem)
    cb = cb_matmul(pc, xt.dtype, w.dtype, out_t.dtype, compute, True, True)
    kwargs = _matmul_kwargs(
        lw, name, pc, compute, Lit("ttnn.L1_BLOCK_SHARDED_MEMORY_CONFIG"), out_t.dtype, bias
    )
    rows = xt.shape[0] * xt.shape[1]
    return b.call(name, "ttnn.linear", [Ref(x), Ref(f"self.{w.name}")], kwargs, outs=(out,), out=out_t, program=pc,
                  compute=compute, weight=w.name, cb=cb, flops=2 * rows * xt.shape[-1] * n)  # fmt: skip


def _sharded_bmm(lw: Lowering, b, name: str, spec_op, a: str, bt: str, out: str, out_mem: MemCfg):
    """A reuse matmul over height-sharded heads: each core computes its own heads."""
    fields = _program_fields(lw, spec_op, name, "reuse", "attention matmuls")
    compute = lw.compute(spec_op.fidelity_key(MODE) if spec_op else None)
    at, btt = b.tensor(a), b.tensor(bt)
    x0, y0, x1, y1 = at.memory.ranges[0]
    kt, nt = at.shape[-1] // TILE, btt.shape[-1] // TILE
    per_m = at.memory.shard[0] // TILE
    pc = lw._override(ProgCfg("reuse", (x1 - x0 + 1, y1 - y0 + 1), (
        ("in0_block_w", largest_divisor(kt, 8)), ("out_subblock_h", 1),
        ("out_subblock_w", largest_divisor(nt, dest_for(compute))), ("per_core_M", per_m), ("per_core_N", nt),
    )), fields, spec_op)  # fmt: skip
    out_t = lw.t((*at.shape[:-1], btt.shape[-1]), memory=out_mem)
    kwargs = _matmul_kwargs(
        lw, name, pc, compute, Lit("ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG"), out_t.dtype
    )
    cb = cb_matmul(pc, at.dtype, btt.dtype, out_t.dtype, compute, True, True) if compute else 0
    flops = 2 * at.shape[0] * at.shape[1] * at.shape[2] * at.shape[3] * btt.shape[-1]
    return b.call(name, "ttnn.matmul", [Ref(a), Ref(bt)], kwargs, outs=(out,), out=out_t, program=pc,
                  compute=compute, cb=cb, flops=flops)  # fmt: skip


# ---------------------------------------------------------------------------------- lowerings


def _lower_embeddings(lw: Lowering, rule, matches, *_):
    f = lw.facts
    batch, tokens = _seq(lw)
    p, c, d = f.patch_size, f.channels, f.dim
    cp = padded_channels(c, p)
    k = p * p * cp
    patches = tokens - 1
    w_patch = _weight(lw, "w_patch", lw.sources(rule, matches, "patch"),
                      W.reshape(W.permute(W.pad(W.source(0), 1, cp), (2, 3, 1, 0)), (str(k), str(d))),
                      (k, d), "patch", False)  # fmt: skip
    b_patch = _bias(lw, "b_patch", lw.sources(rule, matches, "patch_bias"), d, "patch", False)
    # the embeddings are computed in bf16 (tt-metal's patch output is bf16 too) and handed to the
    # encoder in the activations' dtype; the CLS row is concatenated with the patches: bf16
    cls = replace(_weight(lw, "cls_token", lw.sources(rule, matches, "cls"), W.expand(W.source(0), (batch, 1, d)),
                          (batch, 1, d), "embeddings", False), dtype="bfloat16")  # fmt: skip
    pos = _weight(lw, "position_embeddings", lw.sources(rule, matches, "position"), W.source(0),
                  (1, tokens, d), "embeddings", False)  # fmt: skip
    lw.consume(matches, "pixel_values")
    weights = [w_patch, b_patch, cls, pos]
    side = f.image_size
    pixels = lw.t((batch, side, side // p, p * cp), "bfloat16", layout="ROW_MAJOR")
    b = lw.builder({"pixels": pixels}, lw.state(weights))
    folded = lw.t((batch, side // p, side // p, k), "bfloat16", layout="ROW_MAJOR")
    b.call(
        "fold",
        "ttnn.fold",
        [Ref("pixels"), Const("PATCH_SIZE", p, shared=True), Lit("1")],
        outs=("folded",),
        out=folded,
    )
    rows = lw.t((batch, patches, k), "bfloat16", layout="ROW_MAJOR")
    b.call("patch_rows", "ttnn.reshape", [Ref("folded"), Const("PATCH_ROWS_SHAPE", rows.shape)], outs=("folded",),
           out=rows, view=True)  # fmt: skip
    b.call("tilize", "ttnn.to_layout", [Ref("folded"), Lit("ttnn.TILE_LAYOUT")], outs=("patch_in",),
           out=replace(rows, layout="TILE"))  # fmt: skip
    _linear(
        lw,
        b,
        "patch",
        lw.spec_op(rule, "patch"),
        "patch_in",
        w_patch,
        b_patch,
        "patch_out",
        out_dtype="bfloat16",
    )
    seq = lw.t((batch, tokens, d), "bfloat16")
    b.call("cls_concat", "ttnn.concat", [(Ref("self.cls_token"), Ref("patch_out"))], {"dim": Lit("1"),
           "memory_config": Const("DRAM", DRAM)}, outs=("tokens",), out=seq)  # fmt: skip
    geo = sharded_geometry(lw)
    convert = lw.act != "bfloat16"
    b.call("position", "ttnn.add", [Ref("tokens"), Ref("self.position_embeddings")],
           {"memory_config": Const("DRAM", DRAM)}, outs=("embedded" if geo or convert else "out",), out=seq,
           flops=batch * tokens * d)  # fmt: skip
    if geo:  # the sequence padded to whole tiles (zeros), then block-sharded over the grid
        padded = lw.t((batch, geo.seq, d), "bfloat16")
        pairs = ((0, 0), (0, geo.seq - tokens), (0, 0))  # (before, after) per dim
        b.call("pad_tokens", "ttnn.pad", [Ref("embedded"), Const("TOKEN_PADDING", pairs), Lit("0.0")],
               outs=("padded",), out=padded)  # fmt: skip
        b.call("to_encoder", "ttnn.to_memory_config", [Ref("padded"), Const("ENCODER_MEMCFG", geo.block(d))],
               {"dtype": ttnn_dtype(lw.act)} if convert else {}, outs=("out",),
               out=replace(padded, memory=geo.block(d), dtype=lw.act))  # fmt: skip
    elif convert:
        b.call("to_encoder", "ttnn.typecast", [Ref("embedded"), ttnn_dtype(lw.act)], outs=("out",),
               out=replace(seq, dtype=lw.act))  # fmt: skip
    # the input stays: a trace refreshes it in place
    sig = Signature("forward", ("pixels",), ("out",))
    return weights, {MODE: (sig, b.finish(sig))}


def _lower_layer_norm(lw: Lowering, rule, matches, *_):
    f = lw.facts
    batch, tokens = _seq(lw)
    d = f.dim
    per_layer = any(m.layer is not None for m in matches)
    shape = ("1", "1", str(d // TILE), "32")
    weight = _weight(lw, "weight", lw.sources(rule, matches, "norm"), W.reshape(W.source(0), shape),
                     (1, 1, d // TILE, TILE), "norm", per_layer, "ROW_MAJOR")  # fmt: skip
    bias = _weight(lw, "bias", lw.sources(rule, matches, "norm_bias"), W.reshape(W.source(0), shape),
                   (1, 1, d // TILE, TILE), "norm", per_layer, "ROW_MAJOR")  # fmt: skip
    lw.consume(matches, "x")
    spec_op = lw.spec_op(rule, "norm")
    compute = lw.compute(spec_op.fidelity_key(MODE) if spec_op else None)
    geo = sharded_geometry(lw)
    if geo:
        x = lw.t((batch, geo.seq, d), memory=geo.block(d))
        b = lw.builder({"x": x}, lw.state([weight, bias]))
        block_w, block_h = x.memory.shard[1] // TILE, geo.seq // TILE
        pc = ProgCfg("norm_sharded", (geo.cols, geo.rows), (
            ("subblock_w", largest_divisor(block_w, dest_for(compute))), ("block_h", block_h), ("block_w", block_w),
            ("inplace", False),
        ))  # fmt: skip
        b.call("norm", "ttnn.layer_norm", [Ref("x")], {
            "epsilon": Const("NORM_EPS", f.norm_eps, shared=True), "weight": Ref("self.weight"), "bias": Ref("self.bias"),
            "memory_config": Lit("ttnn.L1_BLOCK_SHARDED_MEMORY_CONFIG"), "program_config": Const("NORM_PROGCFG", pc),
            "compute_kernel_config": lw.compute_const(compute) if compute else Lit("None"),
        }, outs=("out",), out=x, program=pc, compute=compute, flops=8 * batch * geo.seq * d)  # fmt: skip
        sig = Signature("forward", ("x",), ("out",))
        return [weight, bias], {MODE: (sig, b.finish(sig))}
    x = lw.t((batch, tokens, d))
    b = lw.builder({"x": x}, lw.state([weight, bias]))
    b.call("norm", "ttnn.layer_norm", [Ref("x")], {
        "epsilon": Const("NORM_EPS", f.norm_eps, shared=True), "weight": Ref("self.weight"), "bias": Ref("self.bias"),
        "memory_config": Const("DRAM", DRAM),
        "compute_kernel_config": lw.compute_const(compute) if compute else Lit("None"),
    }, outs=("out",), out=x, compute=compute, flops=8 * batch * tokens * d,
       cb=interleaved_layer_norm_cb_bytes(width_tiles=ceil_div(d, TILE),
                                          fp32_dest_acc_en=bool(compute and compute.fp32_dest_acc_en)))  # fmt: skip
    sig = Signature("forward", ("x",), ("out",))
    return [weight, bias], {MODE: (sig, b.finish(sig))}


def _require_every_key_visible(lw: Lowering, rule, matches) -> None:
    """The attention runs without HF's mask (its own masks only hide the tile padding): that is
    HF's math only if HF's mask hides nothing. It is index math (no graph input), so its value is
    computed here from the graph and must be all True."""
    from ttgen.ir.graph import evaluate_constant

    for m in matches:
        node = m.get("mask")
        if node is None:
            continue
        value = evaluate_constant(lw.graphs[MODE], node)
        if value is None:
            raise PlanError(f"{rule.loc}: rule {rule.name} at {m.module}: the attention mask depends on the inputs "
                            "(padding?): masked ViT attention is not supported")  # fmt: skip
        hides = (
            not bool(value.all()) if value.dtype.is_floating_point is False else bool(value.any())
        )
        if hides:
            raise PlanError(f"{rule.loc}: rule {rule.name} at {m.module}: HF's attention mask {list(value.shape)} "
                            "hides some keys; this attention attends to every key")  # fmt: skip


def _lower_attention(lw: Lowering, rule, matches, *_):
    f = lw.facts
    batch, tokens = _seq(lw)
    d, h, hd = f.dim, f.n_heads, f.head_dim
    if hd % TILE:
        raise PlanError(f"{rule.loc}: rule {rule.name}: head_dim {hd} is not a multiple of {TILE}: "
                        "ttnn.transformer.split_query_key_value_and_split_heads needs whole tiles per head")  # fmt: skip
    geo = sharded_geometry(lw)
    qkv_src = lw.sources(rule, matches, "wqkv")
    bias_src = lw.sources(rule, matches, "bqkv")
    if geo:  # head groups q_h | k_h | v_h, the order the sharded head split reads (tt-metal's ViT)
        per_head = (str(h), str(hd), str(d))
        fused = W.reshape(
            W.concat([W.reshape(W.source(i), per_head) for i in range(3)], dim=1),
            (str(3 * d), str(d)),
        )
        wqkv = _weight(lw, "wqkv", qkv_src, W.transpose(fused), (d, 3 * d), "wqkv", True)
        bqkv = _weight(lw, "bqkv", bias_src, W.reshape(W.concat([W.reshape(W.source(i), (str(h), str(hd)))
                                                                  for i in range(3)], dim=1), ("1", str(3 * d))),
                       (1, 3 * d), "wqkv", True) if bias_src else None  # fmt: skip
    else:
        wqkv = _weight(lw, "wqkv", qkv_src, W.concat([W.transpose(W.source(i)) for i in range(3)]), (d, 3 * d),
                       "wqkv", True)  # fmt: skip
        bqkv = _bias(lw, "bqkv", bias_src, 3 * d, "wqkv", True, parts=3) if bias_src else None
    wo = _weight(
        lw, "wo", lw.sources(rule, matches, "wo"), W.transpose(W.source(0)), (d, d), "wo", True
    )
    bo_src = lw.sources(rule, matches, "bo")
    bo = _bias(lw, "bo", bo_src, d, "wo", True) if bo_src else None
    lw.consume(matches, "x")
    _require_every_key_visible(lw, rule, matches)
    weights = [w for w in (wqkv, bqkv, wo, bo) if w is not None]
    if geo:
        return weights, {MODE: _sharded_attention(lw, rule, geo, weights, wqkv, bqkv, wo, bo)}
    x = lw.t((batch, tokens, d))
    b = lw.builder({"x": x}, lw.state(weights))
    _linear(lw, b, "qkv", lw.spec_op(rule, "qkv"), "x", wqkv, bqkv, "qkv")
    heads = lw.t((batch, h, tokens, hd))
    b.call("split_heads", "ttnn.transformer.split_query_key_value_and_split_heads", [Ref("qkv")],
           {"num_heads": Const("N_HEADS", h, shared=True), "memory_config": Const("DRAM", DRAM)},
           outs=("q", "k", "v"), out=(heads, lw.t((batch, h, hd, tokens)), heads))  # fmt: skip
    _bmm(lw, b, "scores", lw.spec_op(rule, "scores"), "q", "k", "scores")
    b.call("scale", "ttnn.mul_", [Ref("scores"), Const("ATTN_SCALE", f.attn_scale, shared=True)],
           flops=batch * h * tokens * tokens)  # fmt: skip
    b.call(
        "softmax", "ttnn.softmax_in_place", [Ref("scores")], flops=5 * batch * h * tokens * tokens
    )
    _bmm(lw, b, "context", lw.spec_op(rule, "context"), "scores", "v", "context")
    b.call("concat_heads", "ttnn.transformer.concatenate_heads", [Ref("context")],
           {"memory_config": Const("DRAM", DRAM)}, outs=("merged",), out=x)  # fmt: skip
    _linear(lw, b, "wo", lw.spec_op(rule, "wo"), "merged", wo, bo, "out")
    sig = Signature("forward", ("x",), ("out",))
    return weights, {MODE: (sig, b.finish(sig))}


def _sharded_attention(lw: Lowering, rule, geo: ShardedGeometry, weights, wqkv, bqkv, wo, bo):
    """tt-metal's sharded attention (vit.md §3): QKV on the main grid, resharded to whole head
    groups per core, split into height-sharded heads, Q·Kᵀ, the scaled softmax in place with a mask
    that hides the padded keys (so the math stays HF's: tt-metal lets them in), P·V, heads merged
    block-sharded and resharded back."""
    f = lw.facts
    batch, d, h, hd, s = lw.spec.target.max_batch, f.dim, f.n_heads, f.head_dim, geo.seq
    mask = WeightPlan("key_mask", (), ("computed", "key_padding_mask"), (1, 1, TILE, s), "bfloat16", "TILE", DRAM,
                      per_layer=False)  # fmt: skip
    weights.append(mask)
    b = lw.builder({"x": lw.t((batch, s, d), memory=geo.block(d))}, lw.state(weights))
    _sharded_linear(lw, b, "qkv", lw.spec_op(rule, "qkv"), "x", wqkv, bqkv, "qkv", geo.block(3 * d))
    qkv = lw.to_memory(
        b,
        "to_head_groups",
        "qkv",
        "qkv_groups",
        geo.attn_block(3 * d),
        Const("HEAD_GROUPS_MEMCFG", geo.attn_block(3 * d)),
        op="ttnn.reshard",
    )
    rows = batch * h * s
    q_mem, k_mem = geo.attn_height(rows, hd), geo.attn_height(batch * h * hd, s)
    b.call("split_heads", "ttnn.transformer.split_query_key_value_and_split_heads", [Ref(qkv)],
           {"num_heads": Const("N_HEADS", h, shared=True), "memory_config": Lit("ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG")},
           outs=("q", "k", "v"), out=(lw.t((batch, h, s, hd), memory=q_mem), lw.t((batch, h, hd, s), memory=k_mem),
                                      lw.t((batch, h, s, hd), memory=q_mem)))  # fmt: skip
    scores_mem = geo.attn_height(rows, s)
    _sharded_bmm(lw, b, "scores", lw.spec_op(rule, "scores"), "q", "k", "scores", scores_mem)
    st = s // TILE
    per_m = scores_mem.shard[0] // TILE
    smpc = ProgCfg("softmax_sharded", (geo.attn_cols, geo.rows), (
        ("subblock_w", largest_divisor(st, 8)), ("block_h", per_m), ("block_w", st),
    ))  # fmt: skip
    b.call("softmax", "ttnn.scale_mask_softmax_in_place", [Ref("scores"), Const("ATTN_SCALE", f.attn_scale, shared=True),
           Ref("self.key_mask")], {"program_config": Const("SOFTMAX_PROGCFG", smpc)}, program=smpc,
           flops=6 * batch * h * s * s)  # fmt: skip
    _sharded_bmm(lw, b, "context", lw.spec_op(rule, "context"), "scores", "v", "context", q_mem)
    merged = lw.t((batch, s, d), memory=geo.attn_block(d))
    b.call("concat_heads", "ttnn.transformer.concatenate_heads", [Ref("context")],
           {"memory_config": Lit("ttnn.L1_BLOCK_SHARDED_MEMORY_CONFIG")}, outs=("merged",), out=merged)  # fmt: skip
    m = lw.to_memory(
        b,
        "to_encoder",
        "merged",
        "merged_blocks",
        geo.block(d),
        Const("ENCODER_MEMCFG", geo.block(d)),
        op="ttnn.reshard",
    )
    _sharded_linear(lw, b, "wo", lw.spec_op(rule, "wo"), m, wo, bo, "out", geo.block(d))
    sig = Signature("forward", ("x",), ("out",))
    return sig, b.finish(sig)


def _lower_mlp(lw: Lowering, rule, matches, *_):
    f = lw.facts
    batch, tokens = _seq(lw)
    d, hidden = f.dim, f.hidden_dim
    fc1 = _weight(
        lw,
        "fc1",
        lw.sources(rule, matches, "fc1"),
        W.transpose(W.source(0)),
        (d, hidden),
        "fc1",
        True,
    )
    b1_src = lw.sources(rule, matches, "fc1_bias")
    b1 = _bias(lw, "fc1_bias", b1_src, hidden, "fc1", True) if b1_src else None
    fc2 = _weight(
        lw,
        "fc2",
        lw.sources(rule, matches, "fc2"),
        W.transpose(W.source(0)),
        (hidden, d),
        "fc2",
        True,
    )
    b2_src = lw.sources(rule, matches, "fc2_bias")
    b2 = _bias(lw, "fc2_bias", b2_src, d, "fc2", True) if b2_src else None
    lw.consume(matches, "x")
    weights = [w for w in (fc1, b1, fc2, b2) if w is not None]
    geo = sharded_geometry(lw)
    if geo:
        b = lw.builder({"x": lw.t((batch, geo.seq, d), memory=geo.block(d))}, lw.state(weights))
        _sharded_linear(lw, b, "fc1", lw.spec_op(rule, "fc1"), "x", fc1, b1, "hidden", geo.block(hidden),
                        activation="GELU")  # fmt: skip
        _sharded_linear(
            lw, b, "fc2", lw.spec_op(rule, "fc2"), "hidden", fc2, b2, "out", geo.block(d)
        )
        sig = Signature("forward", ("x",), ("out",))
        return weights, {MODE: (sig, b.finish(sig))}
    b = lw.builder({"x": lw.t((batch, tokens, d))}, lw.state(weights))
    _linear(lw, b, "fc1", lw.spec_op(rule, "fc1"), "x", fc1, b1, "hidden", activation="GELU")
    _linear(lw, b, "fc2", lw.spec_op(rule, "fc2"), "hidden", fc2, b2, "out")
    sig = Signature("forward", ("x",), ("out",))
    return weights, {MODE: (sig, b.finish(sig))}


def _lower_encoder_layer(lw: Lowering, rule, matches, *_):
    batch, tokens = _seq(lw)
    lw.consume(matches, "residual", "update")
    geo = sharded_geometry(lw)
    d = lw.facts.dim
    x = lw.t((batch, geo.seq, d), memory=geo.block(d)) if geo else lw.t((batch, tokens, d))
    b = lw.builder({"x": x}, {})
    dram = {
        "memory_config": Lit("ttnn.L1_BLOCK_SHARDED_MEMORY_CONFIG") if geo else Const("DRAM", DRAM)
    }
    b.call(
        "layernorm_before", "self.layernorm_before.forward", [Ref("x")], outs=("attn_in",), out=x
    )
    b.call("attention", "self.attention.forward", [Ref("attn_in")], outs=("attn_out",), out=x)
    b.call("attn_residual", "ttnn.add", [Ref("x"), Ref("attn_out")], dram, outs=("h",), out=x)
    b.call("layernorm_after", "self.layernorm_after.forward", [Ref("h")], outs=("mlp_in",), out=x)
    b.call("mlp", "self.mlp.forward", [Ref("mlp_in")], outs=("mlp_out",), out=x)
    b.call("mlp_residual", "ttnn.add", [Ref("h"), Ref("mlp_out")], dram, outs=("out",), out=x)
    sig = Signature("forward", ("x",), ("out",), consumes=("x",))
    return [], {MODE: (sig, b.finish(sig))}


def _lower_classifier(lw: Lowering, rule, matches, *_):
    f = lw.facts
    batch, tokens = _seq(lw)
    d, classes = f.dim, f.n_classes
    w = _weight(lw, "weight", lw.sources(rule, matches, "classifier"), W.transpose(W.source(0)), (d, classes),
                "classifier", False)  # fmt: skip
    b_src = lw.sources(rule, matches, "classifier_bias")
    bias = _bias(lw, "bias", b_src, classes, "classifier", False) if b_src else None
    lw.consume(matches, "x")
    weights = [x for x in (w, bias) if x is not None]
    geo = sharded_geometry(lw)
    x = lw.t((batch, geo.seq, d), memory=geo.block(d)) if geo else lw.t((batch, tokens, d))
    b = lw.builder({"x": x}, lw.state(weights))
    src = lw.to_memory(b, "to_dram", "x", "x_dram", DRAM, Const("DRAM", DRAM)) if geo else "x"
    b.call("cls_row", "ttnn.slice", [Ref(src), Const("CLS_START", (0, 0, 0)), Const("CLS_END", (batch, 1, d))],
           {"memory_config": Const("DRAM", DRAM)}, outs=("cls",), out=lw.t((batch, 1, d)))  # fmt: skip
    _linear(lw, b, "classifier", lw.spec_op(rule, "classifier"), "cls", w, bias, "logits",
            out_dtype=lw.precision.logits)  # fmt: skip
    sig = Signature("forward", ("x",), ("logits",))
    return weights, {MODE: (sig, b.finish(sig))}


for _name, _lower, _facts, _module in (
    ("vit_embeddings", _lower_embeddings, _embedding_facts, "embeddings.py"),
    ("layer_norm", _lower_layer_norm, _norm_facts, "layernorm.py"),
    ("vit_attention", _lower_attention, _attention_facts, "attention.py"),
    ("gelu_mlp", _lower_mlp, _mlp_facts, "mlp.py"),
    ("encoder_layer", _lower_encoder_layer, None, "encoder_layer.py"),
    ("classifier", _lower_classifier, _classifier_facts, "classifier.py"),
):
    register_block(
        BlockKind(_name, _lower, skeleton=f"vit/{_module}.j2", module=_module, facts=_facts)
    )
