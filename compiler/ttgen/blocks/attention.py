"""GQA attention with interleaved-pair RoPE, a paged or static KV cache, SDPA (tt-transformers attention.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ttgen.blocks import BlockKind, register_block
from ttgen.devices.rules import interleaved_rms_norm_cb_bytes
from ttgen.plan import weights as W
from ttgen.plan.facts import PlanError, only
from ttgen.plan.formulas import (
    height_sharded,
    ranges_for,
)
from ttgen.plan.lower import DRAM, L1, Lowering
from ttgen.plan.types import (
    TILE,
    TILE_BYTES,
    Const,
    Lit,
    MemCfg,
    ProgCfg,
    Ref,
    Signature,
    WeightPlan,
)


@dataclass(frozen=True)
class AttentionFacts:
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    scale: float
    qkv_bias: bool
    qk_norm_eps: float | None = None  # the eps of an RMSNorm of q and k before RoPE, if any
    qk_norm_per_head: bool = True  # per head (Qwen3), or all heads at once (OLMo 2)
    qk_norm_offset: float = 0.0  # the QK-norm scales by (offset + w): Gemma 3's 1, folded at load


def facts(matches, shapes) -> AttentionFacts:
    head_dim = only({m["q_view"][-1] for m in matches}, "head_dim")
    if all(
        m.get("w_qkv") is not None for m in matches
    ):  # one fused projection, split by slices (Phi-3)
        q_end = only({m["q_end"] for m in matches}, "fused q rows")
        k_end = only({m["k_end"] for m in matches}, "fused k rows")
        wq, wk = (q_end,), (k_end - q_end,)
    else:
        wq = only({shapes[m["w_q"]] for m in matches}, "query projection shape")
        wk = only({shapes[m["w_k"]] for m in matches}, "key projection shape")
    rotary = {m.get("rotary_dim") for m in matches} - {None}
    if rotary and only(rotary, "rotary dim") != head_dim:
        raise PlanError(
            f"partial rotary (RoPE on {only(rotary, 'rotary dim')} of {head_dim} head dims) is not supported"
        )
    qk_norm = {m.get("w_q_norm") is not None and m.get("w_k_norm") is not None for m in matches}
    if only(qk_norm, "QK-norm") != any(
        m.get("w_q_norm") is not None or m.get("w_k_norm") is not None for m in matches
    ):
        raise PlanError("a per-head norm on only one of q and k is not supported")
    eps = only({m["qk_eps"] for m in matches}, "QK-norm eps") if only(qk_norm, "QK-norm") else None
    per_head = True
    if eps is not None:  # the norm weights' width says what they normalise: one head, or all heads
        widths = only(
            {(shapes[m["w_q_norm"]], shapes[m["w_k_norm"]]) for m in matches}, "QK-norm widths"
        )
        if widths not in (((head_dim,), (head_dim,)), ((wq[0],), (wk[0],))):
            raise PlanError(f"QK-norm weights of {widths[0]} and {widths[1]} fit neither one head ({head_dim}) "
                            f"nor the q and k projections ({wq[0]}, {wk[0]})")  # fmt: skip
        per_head = widths == ((head_dim,), (head_dim,))
    offset = only(
        {float(m.get("qk_weight_offset") or 0.0) for m in matches}, "QK-norm weight offset"
    )
    return AttentionFacts(len(matches), wq[0] // head_dim, wk[0] // head_dim, head_dim,
                          only({m["scale"] for m in matches}, "attention scale"),
                          any(m.get("b_q") is not None for m in matches), eps, per_head, offset)  # fmt: skip


def lower(lw: Lowering, rule, matches, decode_matches):
    f, rows = lw.facts, lw.batch
    paged = lw.spec.target.kv_cache == "paged"
    q_rows, kv_rows = f.n_heads * f.head_dim, f.n_kv_heads * f.head_dim
    fused = lw.sources(rule, matches, "wqkv_fused")
    if fused is not None:  # Phi-3's qkv_proj: its q, k and v row blocks, split at load
        qkv_sources, q, k, v = (
            fused,
            *(
                W.slice_(W.source(0), 0, a, b)
                for a, b in (
                    (0, q_rows),
                    (q_rows, q_rows + kv_rows),
                    (q_rows + kv_rows, q_rows + 2 * kv_rows),
                )
            ),
        )
    else:
        qkv_sources, q, k, v = (
            lw.sources(rule, matches, "wqkv"),
            W.source(0),
            W.source(1),
            W.source(2),
        )
    weights = [
        lw.matmul_weight("wqkv", qkv_sources, f.dim, f.qkv_size, "wqkv", W.concat(
            [W.transpose(W.rope_pairs(q, "N_HEADS")), W.transpose(W.rope_pairs(k, "N_KV_HEADS")),
             W.transpose(v)])),
        lw.matmul_weight("wo", lw.sources(rule, matches, "wo"), f.n_heads * f.head_dim, f.dim, "wo",
                         W.scaled(W.transpose(W.source(0)), f.residual_multiplier)),
    ]  # fmt: skip
    lw.consume(matches, "x", "cos", "sin")
    # HF's static cache buffers and the positions it writes at: TTNN's KV cache replaces them
    lw.consume(decode_matches, "k_cache", "v_cache", "cache_pos")
    for m in matches:
        view = tuple(m["kv_view"])
        if (
            m["half"] != f.head_dim // 2
            or view[-1] != f.head_dim
            or view[-2] not in (-1, f.n_kv_heads)
        ):
            raise PlanError(f"{rule.loc}: rule {rule.name} at {m.module}: rotate-half at {m['half']} and "
                            f"k/v view {m['kv_view']} do not fit {f.n_kv_heads} KV heads of {f.head_dim}")  # fmt: skip
    sources = lw.sources(rule, matches, "bqkv")
    if sources is not None:
        # decode adds the bias to every user row: expanded once at load, not broadcast in the trace
        bias = W.concat(
            [
                W.rope_pairs(W.source(0), "N_HEADS"),
                W.rope_pairs(W.source(1), "N_KV_HEADS"),
                W.source(2),
            ]
        )
        weights += [
            WeightPlan("bqkv_decode", sources, W.rows(bias, rows), (1, 1, rows, f.qkv_size), "bfloat16", "TILE",
                       DRAM, per_layer=True),
            WeightPlan("bqkv_prefill", sources, W.unsqueeze(bias), (1, f.qkv_size), "bfloat16", "TILE", DRAM,
                       per_layer=True),
        ]  # fmt: skip
    qk_norm = f.qk_norm_eps is not None
    per_head = qk_norm and f.qk_norm_per_head
    if qk_norm:  # → sticks, in the heads' interleaved RoPE pair order: [HEAD_DIM], or all heads'
        for which, heads in (("q_norm", "N_HEADS"), ("k_norm", "N_KV_HEADS")):
            width, n = (
                ("HEAD_DIM", f.head_dim)
                if per_head
                else (f"{heads} * HEAD_DIM", getattr(f, heads.lower()) * f.head_dim)
            )
            src = W.add(W.source(0), f.qk_norm_offset)
            weights.append(WeightPlan(which, lw.sources(rule, matches, which),
                                      W.reshape(W.rope_pairs(src, "1" if per_head else heads),
                                                ("1", "1", f"{width} // 32", "32")),
                                      (1, 1, n // TILE, TILE), lw.weight_dtype("norm"), "ROW_MAJOR", DRAM,
                                      per_layer=True))  # fmt: skip
    else:
        for which in ("q_norm", "k_norm"):
            lw.sources(rule, matches, which)  # absent: the captures are optional
    norm_op = lw.spec_op(rule, "qk_norm")
    qk_eps = Const("QK_NORM_EPS", f.qk_norm_eps) if qk_norm else None
    wqkv, wo = weights[0], weights[1]
    kv_dtype = lw.precision.kv_cache
    cache = lw.t(lw.kv_cache_shape(), kv_dtype)
    state = lw.state(weights) | {"k_cache": cache, "v_cache": cache}
    heads_mem = lw.layer_inputs()["cos"].memory  # q, k and v are one user per core, as the tables
    sdpa_op = lw.spec_op(rule, "sdpa")
    sdpa_compute_d = lw.compute(sdpa_op.fidelity_key("decode"))
    sdpa_compute_p = lw.compute(sdpa_op.fidelity_key("prefill"))
    scale = Const("ATTN_SCALE", f.attn_scale, shared=True)
    n_heads = {"num_heads": Const("N_HEADS", f.n_heads, shared=True),
               "num_kv_heads": Const("N_KV_HEADS", f.n_kv_heads, shared=True)}  # fmt: skip
    window = (
        {"sliding_window_size": Const("SLIDING_WINDOW", f.sliding_window, shared=True)}
        if f.sliding_window
        else {}
    )
    page = {"page_table": Ref("page_table")} if paged else {}

    # decode
    params = lw.layer_inputs()
    b = lw.builder(params, state)
    lw.decode_matmul(b, "qkv", lw.spec_op(rule, "qkv"), "x", wqkv, "xqkv")
    b.call("qkv_interleaved", "ttnn.sharded_to_interleaved", [Ref("xqkv"), Const("L1", L1)], outs=("xqkv_l1",),
           out=lw.t((1, 1, rows, f.qkv_size), memory=L1))  # fmt: skip
    heads_in = "xqkv_l1"
    if sources is not None:
        b.call("qkv_bias", "ttnn.add", [Ref("xqkv_l1"), Ref("self.bqkv_decode")], {"memory_config": Const("L1", L1)},
               outs=("xqkv_biased",), out=lw.t((1, 1, rows, f.qkv_size), memory=L1))  # fmt: skip
        heads_in = "xqkv_biased"
    if qk_norm and not per_head:
        heads_in = _norm_projections(
            lw, b, heads_in, "DECODE_BATCH", L1, Const("L1", L1), norm_op, "decode", qk_eps
        )
    q_t = lw.t((1, rows, f.n_heads, f.head_dim), memory=heads_mem)
    kv_t = lw.t((1, rows, f.n_kv_heads, f.head_dim), memory=heads_mem)
    b.call("create_heads", "ttnn.experimental.nlp_create_qkv_heads_decode", [Ref(heads_in)],
           n_heads | {"memory_config": Lit("ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG")}, outs=("q", "k", "v"),
           out=(q_t, kv_t, kv_t))  # fmt: skip
    rope_in = {"q": "q", "k": "k"}
    # rms_norm takes the heads interleaved in L1, the decode rotary them height-sharded
    if per_head:
        compute = lw.compute(norm_op.fidelity_key("decode") if norm_op else None)
        for which, t in (("q", q_t), ("k", kv_t)):
            flat = lw.to_memory(
                b, f"{which}_heads_to_l1", which, f"{which}_l1", L1, Const("L1", L1)
            )
            b.call(f"{which}_norm", "ttnn.rms_norm", [Ref(flat)],
                   {"epsilon": qk_eps, "weight": Ref(f"self.{which}_norm"), "compute_kernel_config": lw.compute_const(compute)},
                   outs=(f"{which}_normed_l1",), out=replace(t, memory=L1), compute=compute)  # fmt: skip
            rope_in[which] = lw.to_memory(b, f"{which}_normed_to_heads", f"{which}_normed_l1", f"{which}_normed",
                                          heads_mem, Const("ROPE_HEADS_MEMCFG", heads_mem))  # fmt: skip
    for which, t in (("q", q_t), ("k", kv_t)):
        b.call(f"rope_{which}", "ttnn.experimental.rotary_embedding_llama",
               [Ref(rope_in[which]), Ref("cos"), Ref("sin"), Ref("trans_mat")], {"is_decode_mode": Lit("True")},
               outs=(f"{which}_rot",), out=t)  # fmt: skip
    for which, value in (("k", "k_rot"), ("v", "v")):
        b.call(f"update_{which}", "ttnn.experimental.paged_update_cache", [Ref(f"self.{which}_cache"), Ref(value)],
               {"update_idxs_tensor": Ref("current_pos")} | page)  # fmt: skip
    sdpa_pc = ProgCfg("sdpa", (min(8, lw.grid[0]), min(8, lw.grid[1])),
                      (("q_chunk_size", 0), ("k_chunk_size", 0), ("exp_approx_mode", False)))  # fmt: skip
    sdpa_fn = ("ttnn.transformer.paged_scaled_dot_product_attention_decode" if paged
               else "ttnn.transformer.scaled_dot_product_attention_decode")  # fmt: skip
    b.call("sdpa", sdpa_fn, [Ref("q_rot"), Ref("self.k_cache"), Ref("self.v_cache"), *([Ref("page_table")] if paged else [])],
           {"cur_pos_tensor": Ref("current_pos"), "scale": scale, **window,
            "program_config": Const("SDPA_DECODE_PROGCFG", sdpa_pc),
            "compute_kernel_config": lw.compute_const(sdpa_compute_d), "memory_config": Const("DRAM", DRAM)},
           outs=("attn",), out=lw.t((1, rows, f.n_heads, f.head_dim)), program=sdpa_pc, compute=sdpa_compute_d,
           cb=2 * 2 * (256 // TILE) * (f.head_dim // TILE) * TILE_BYTES[kv_dtype],
           flops=4 * lw.users * f.n_heads * f.head_dim * lw.spec.target.max_seq_len)  # fmt: skip
    # nlp_concat_heads_decode wants its users on one core rectangle from (0, 0) (more ranges
    # mean sub-core grids): at most 8 columns, so 32 users form an 8x4 block on any device
    concat_in = height_sharded(TILE, f.head_dim, rows, (min(8, lw.grid[0]), lw.grid[1]))
    lw.to_memory(
        b,
        "heads_to_l1",
        "attn",
        "attn_sharded",
        concat_in,
        Const("HEADS_DECODE_MEMCFG", concat_in),
    )
    concat_mem = MemCfg("WIDTH_SHARDED", "L1", ranges_for(f.n_heads, lw.grid), (TILE, f.head_dim))
    b.call("concat_heads", "ttnn.experimental.nlp_concat_heads_decode", [Ref("attn_sharded")],
           {"num_heads": n_heads["num_heads"]}, outs=("attn_cat",),
           out=lw.t((1, 1, rows, f.n_heads * f.head_dim), memory=concat_mem))  # fmt: skip
    lw.decode_matmul(b, "wo", lw.spec_op(rule, "wo"), "attn_cat", wo, "out")
    out = lw.to_memory(b, "to_residual", "out", "residual", lw.residual_mem(), lw.residual_const())
    sig_d = Signature("forward_decode", tuple(params), (out,))
    decode = b.finish(sig_d)

    # prefill
    sig_p = Signature("forward_prefill", ("x", "cos", "sin", "trans_mat", "user_id", *(("page_table",) if paged else ())),
                      ("out",))  # fmt: skip
    bias = next((w for w in weights if w.name == "bqkv_prefill"), None)

    def prefill(s):
        p = lw.layer_inputs(s)
        b = lw.builder(p, state, s)
        qkv_cfg = lw.prefill_matmul_config("qkv", lw.spec_op(rule, "qkv"), p["x"], wqkv, s)
        if qkv_cfg[2] < s:
            lw.chunk_rows(b, "qkv_chunk", "x", qkv_cfg[2], "QKV_PREFILL_CHUNKS")
        lw.prefill_matmul(b, "qkv", lw.spec_op(rule, "qkv"), "x", wqkv, "xqkv", qkv_cfg, bias=bias)
        if qkv_cfg[2] < s:
            lw.unchunk_rows(b, "qkv_unchunk", "xqkv", "QKV_PREFILL_CHUNKS")
        heads_in = "xqkv"
        if qk_norm and not per_head:
            heads_in = _norm_projections(lw, b, heads_in, "seq_len", DRAM, Const("DRAM", DRAM), norm_op, "prefill",
                                         qk_eps)  # fmt: skip
        qp = lw.t((1, f.n_heads, s, f.head_dim))
        kp = lw.t((1, f.n_kv_heads, s, f.head_dim))
        b.call("create_heads", "ttnn.experimental.nlp_create_qkv_heads", [Ref(heads_in)],
               n_heads | {"transpose_k_heads": Lit("False"), "memory_config": Const("DRAM", DRAM)},
               outs=("q", "k", "v"), out=(qp, kp, kp))  # fmt: skip
        rope_in = {"q": "q", "k": "k"}
        if per_head:
            compute = lw.compute(norm_op.fidelity_key("prefill") if norm_op else None)
            for which, t in (("q", qp), ("k", kp)):
                b.call(f"{which}_norm", "ttnn.rms_norm", [Ref(which)],
                       {"epsilon": qk_eps, "weight": Ref(f"self.{which}_norm"),
                        "compute_kernel_config": lw.compute_const(compute)},
                       outs=(f"{which}_normed",), out=t, compute=compute)  # fmt: skip
                rope_in[which] = f"{which}_normed"
        for which, t in (("q", qp), ("k", kp)):
            b.call(f"rope_{which}", "ttnn.experimental.rotary_embedding_llama",
                   [Ref(rope_in[which]), Ref("cos"), Ref("sin"), Ref("trans_mat")], {"is_decode_mode": Lit("False")},
                   outs=(f"{which}_rot",), out=t)  # fmt: skip
        kv_cast = Const("KV_CACHE_DTYPE", f"ttnn.{kv_dtype}", shared=True)
        for which, src in (("k", "k_rot"), ("v", "v")):
            b.call(f"{which}_to_cache_dtype", "ttnn.typecast", [Ref(src), kv_cast], outs=(f"{which}_cached",),
                   out=replace(kp, dtype=kv_dtype))  # fmt: skip
        for which in ("k", "v"):
            if paged:
                b.call(f"fill_{which}", "ttnn.experimental.paged_fill_cache",
                       [Ref(f"self.{which}_cache"), Ref(f"{which}_cached"), Ref("page_table")],
                       {"batch_idx": Lit("user_id")})  # fmt: skip
            else:
                b.call(f"fill_{which}", "ttnn.fill_cache",
                       [Ref(f"self.{which}_cache"), Ref(f"{which}_cached"), Lit("user_id")])  # fmt: skip
        # SDPA takes q in the cache's dtype
        b.call("q_to_cache_dtype", "ttnn.typecast", [Ref("q_rot"), kv_cast], outs=("q_cached",),
               out=replace(qp, dtype=kv_dtype))  # fmt: skip
        chunk = min(256 if s >= 2048 else 64, s)
        sdpa_p = ProgCfg("sdpa", (min(8, lw.grid[0]), min(8, lw.grid[1])),
                         (("q_chunk_size", chunk), ("k_chunk_size", chunk), ("exp_approx_mode", False)))  # fmt: skip
        ct, ht = chunk // TILE, f.head_dim // TILE
        sdpa_cb = (2 * ct * ht * TILE_BYTES[kv_dtype] + 2 * 2 * ct * ht * TILE_BYTES[kv_dtype]
                   + ct * ct * TILE_BYTES["float32"] + 2 * ct * ht * TILE_BYTES["float32"])  # fmt: skip
        b.call("sdpa", "ttnn.transformer.scaled_dot_product_attention",
               [Ref("q_cached"), Ref("k_cached"), Ref("v_cached")],
               {"is_causal": Lit("True"), "scale": scale, **window,
                "program_config": Const("SDPA_PREFILL_PROGCFG", sdpa_p),
                "compute_kernel_config": lw.compute_const(sdpa_compute_p)},
               outs=("attn",), out=replace(qp, dtype=kv_dtype), program=sdpa_p, compute=sdpa_compute_p,
               cb=sdpa_cb, flops=2 * 2 * f.n_heads * s * s * f.head_dim // 2)  # fmt: skip
        b.call("concat_heads", "ttnn.experimental.nlp_concat_heads", [Ref("attn")],
               {"memory_config": Const("DRAM", DRAM)}, outs=("attn_cat",),
               out=lw.t((1, 1, s, f.n_heads * f.head_dim), kv_dtype))  # fmt: skip
        wo_cfg = lw.prefill_matmul_config("wo", lw.spec_op(rule, "wo"), b.tensor("attn_cat"), wo, s)
        if wo_cfg[2] < s:
            lw.chunk_rows(b, "wo_chunk", "attn_cat", wo_cfg[2], "WO_PREFILL_CHUNKS")
        lw.prefill_matmul(b, "wo", lw.spec_op(rule, "wo"), "attn_cat", wo, "out", wo_cfg)
        if wo_cfg[2] < s:
            lw.unchunk_rows(b, "wo_unchunk", "out", "WO_PREFILL_CHUNKS")
        return b.finish(sig_p)

    return weights, {"decode": (sig_d, decode), "prefill": (sig_p, lw.prefill_variants(prefill))}


def _norm_projections(
    lw: Lowering, b, src: str, rows: str, memory, mem: Const, norm_op, mode: str, eps: Const
) -> str:
    """OLMo 2's QK-norm: an RMSNorm over the whole q and the whole k projection (every head at
    once), before the heads are split. TTNN has no fused form: the fused QKV output is sliced into
    q, k and v, q and k are normalised over their full width, and the three are concatenated again
    for the head split (three slices, two norms and a concat per layer, in the plan)."""
    f = lw.facts
    t = b.tensor(src)
    n_rows = t.shape[-2]
    compute = lw.compute(norm_op.fidelity_key(mode) if norm_op else None)
    fp32 = bool(compute and compute.fp32_dest_acc_en)
    names = ("DECODE_BATCH",) if rows == "DECODE_BATCH" else ()
    ends = (("q", "N_HEADS * HEAD_DIM", f.n_heads), ("k", "(N_HEADS + N_KV_HEADS) * HEAD_DIM", f.n_kv_heads),
            ("v", "(N_HEADS + 2 * N_KV_HEADS) * HEAD_DIM", f.n_kv_heads))  # fmt: skip
    start, at = "0", 0
    for which, end, heads in ends:
        width = heads * f.head_dim
        consts = names + tuple(c for c in ("N_HEADS", "N_KV_HEADS", "HEAD_DIM") if c in start + end)
        b.call(f"{which}_slice", "ttnn.slice", [Ref(src), Lit(f"[0, 0, 0, {start}]", consts),
                                               Lit(f"[1, 1, {rows}, {end}]", consts)],
               {"memory_config": mem}, outs=(f"{which}_flat",), out=lw.t((1, 1, n_rows, width), memory=memory))  # fmt: skip
        if which != "v":
            b.call(f"{which}_norm", "ttnn.rms_norm", [Ref(f"{which}_flat")],
                   {"epsilon": eps, "weight": Ref(f"self.{which}_norm"), "memory_config": mem,
                    "compute_kernel_config": lw.compute_const(compute)},
                   outs=(f"{which}_normed",), out=lw.t((1, 1, n_rows, width), memory=memory), compute=compute,
                   weight=f"{which}_norm",
                   cb=interleaved_rms_norm_cb_bytes(width_tiles=width // TILE, fp32_dest_acc_en=fp32))  # fmt: skip
        start, at = end, at + width
    b.call("qkv_normed", "ttnn.concat", [(Ref("q_normed"), Ref("k_normed"), Ref("v_flat"))],
           {"dim": Lit("-1"), "memory_config": mem}, outs=("xqkv_normed",),
           out=lw.t((1, 1, n_rows, at), memory=memory))  # fmt: skip
    return "xqkv_normed"


BLOCK = register_block(
    BlockKind("attention", lower, facts=facts, skeleton="attention.py.j2", module="attention.py")
)
