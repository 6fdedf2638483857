"""Per-template lowering: the TTNN op sequence of each module in each mode, with every config fixed.

The op sequences follow tt-transformers (attention.py, mlp.py, decoder.py, lm_head.py, rope.py):
DRAM-sharded matmuls on width-sharded L1 activations in decode, 2D-multicast matmuls on DRAM
interleaved activations in prefill. Decode runs `max_batch` users (padded to one tile row);
prefill runs one user at each planned sequence length."""

from __future__ import annotations

from dataclasses import dataclass, replace

from ttgen.devices import DeviceProfile
from ttgen.devices.rules import (
    dram_sharded_cb_bytes,
    interleaved_rms_norm_cb_bytes,
    sharded_rms_norm_cb_bytes,
)
from ttgen.plan.facts import PlanError
from ttgen.plan.formulas import (
    cb_matmul,
    ceil_div,
    dest_for,
    dram_sharded_matmul,
    dram_weight_memcfg,
    height_sharded,
    k_grid_cores,
    largest_divisor,
    matmul_2d,
    ranges_for,
    width_sharded,
)
from ttgen.plan.types import (
    TILE,
    TILE_BYTES,
    ComputeCfg,
    MemCfg,
    ModelFacts,
    OpPlan,
    ProgCfg,
    TensorPlan,
    WeightPlan,
    decode_rows,
    tensor_bytes,
)
from ttgen.spec.schema import OpSpec, PrecisionSpec, Rule, Spec

__all__ = ["Lowering"]

DRAM = MemCfg("INTERLEAVED", "DRAM")
_GATHER = {"ttnn.embedding"}
_SCATTER = {
    "ttnn.experimental.paged_update_cache",
    "ttnn.experimental.paged_fill_cache",
    "ttnn.fill_cache",
}
L1 = MemCfg("INTERLEAVED", "L1")
BASELINE_PREFILL_GRID = (8, 8)  # tt-transformers' prefill grid; larger grids are not tuned there
BASELINE_K_GRID_TARGET = 32  # tt-transformers' find_grid aims at 32 cores for decode activations


def _tensor_bytes(t: TensorPlan) -> int:
    return tensor_bytes(t.shape, t.dtype, t.layout)


def _l1_on_core(t: TensorPlan) -> int:
    """Bytes of `t` on its busiest L1 core (0 if it lives in DRAM)."""
    mem = t.memory
    if mem.buffer != "L1":
        return 0
    if mem.sharded:
        sh, sw = mem.shard
        return (
            (sh // TILE) * (sw // TILE) * TILE_BYTES[t.dtype] if t.layout == "TILE" else sh * sw * 2
        )
    return ceil_div(_tensor_bytes(t), 64 * 2048) * 2048  # interleaved pages over the cores


@dataclass
class Lowering:
    spec: Spec
    device: DeviceProfile
    facts: ModelFacts
    precision: PrecisionSpec
    prefill_seq_lens: tuple[int, ...]
    prefill_grid: tuple[int, int] = BASELINE_PREFILL_GRID  # capped by the device grid
    k_grid_target: int = BASELINE_K_GRID_TARGET

    # ------------------------------------------------------------------ shared pieces
    @property
    def grid(self) -> tuple[int, int]:
        return self.device.compute_grid

    @property
    def batch(self) -> int:
        """Rows of every decode tensor on device (already a tile multiple)."""
        return decode_rows(self.spec.target.max_batch)

    @property
    def users(self) -> int:
        """Users actually decoded (FLOPs and cost count these; padding rows are skipped)."""
        return self.spec.target.max_batch

    @property
    def act(self) -> str:
        return self.precision.activations

    def compute(self, key: str | None) -> ComputeCfg | None:
        if key is None:
            return None
        fid = dict(self.precision.fidelity)
        if key not in fid:
            raise PlanError(f"precision preset '{self.precision.name}' has no fidelity for '{key}'")
        c = self.spec.compute_config(fid[key])
        return ComputeCfg(
            c.name, c.math_fidelity, c.math_approx_mode, c.fp32_dest_acc_en, c.packer_l1_acc
        )

    def weight_dtype(self, group: str) -> str:
        weights = dict(self.precision.weights)
        if group not in weights:
            raise PlanError(
                f"precision preset '{self.precision.name}' has no dtype for weight '{group}'"
            )
        return weights[group]

    def residual_cores(self) -> int:
        return k_grid_cores(self.facts.dim // TILE, self.grid, self.k_grid_target)

    def residual_mem(self) -> MemCfg:
        return width_sharded(self.batch, self.facts.dim, self.residual_cores(), self.act_grid)

    @property
    def act_grid(self) -> tuple[int, int]:
        """Decode activations are width-sharded over rectangles at most 8 cores wide (tt-transformers'
        find_grid), so a core count such as 32 is one 8x4 range on a 13-wide Blackhole grid too."""
        return (min(8, self.grid[0]), self.grid[1])

    def t(self, shape, dtype=None, memory=DRAM, layout="TILE") -> TensorPlan:
        return TensorPlan(tuple(shape), dtype or self.act, layout, memory)

    def op(self, name, ttnn, inputs, output, **kw) -> OpPlan:
        if ttnn in _GATHER:  # reads the looked-up rows, not the table
            dram = (
                2 * _tensor_bytes(output)
                if output.memory.buffer == "DRAM"
                else _tensor_bytes(output)
            )
        elif (
            ttnn in _SCATTER
        ):  # writes (read-modify-write) the tiles of the new rows, not the cache
            dram = 2 * _tensor_bytes(replace(inputs[1], dtype=output.dtype))
        else:
            dram = sum(_tensor_bytes(x) for x in (*inputs, output) if x.memory.buffer == "DRAM")
        l1 = sum(_l1_on_core(x) for x in (*inputs, output)) + kw.pop("cb", 0)
        return OpPlan(name, ttnn, tuple(inputs), output, l1_per_core=l1, dram_bytes=dram, **kw)

    def _choice(self, spec_op: OpSpec | None, mode: str, default: str):
        choice = spec_op.program_for(mode) if spec_op else None
        kind = default if choice is None or choice.kind == "auto" else choice.kind
        return kind, dict(choice.fields) if choice else {}

    def _override(self, pc: ProgCfg, fields: dict) -> ProgCfg:
        if not fields:
            return pc
        known = {k for k, _ in pc.fields}
        unknown = set(fields) - known
        if unknown:
            raise PlanError(
                f"program config field(s) {sorted(unknown)} do not exist in a {pc.kind} config"
            )
        return replace(pc, fields=tuple((k, fields.get(k, v)) for k, v in pc.fields))

    # ------------------------------------------------------------------ matmuls
    def decode_matmul(
        self, name, spec_op, x: TensorPlan, w: WeightPlan, n: int, out_dtype=None, activation=None
    ) -> OpPlan:
        """A DRAM-sharded decode matmul on a width-sharded activation."""
        kind, fields = self._choice(spec_op, "decode", "dram_sharded")
        if kind != "dram_sharded":
            raise PlanError(
                f"decode op {name}: program '{kind}' is not supported for decode matmuls (use dram_sharded)"
            )
        compute = self.compute(spec_op.fidelity_key("decode") if spec_op else None)
        k = x.shape[-1]
        cores = x.memory.num_cores
        pc = self._override(dram_sharded_matmul(self.batch, k, n, cores, activation), fields)
        # the output lives on the first ceil(N / per_core_N) cores of the device grid
        out_mem = MemCfg(
            "WIDTH_SHARDED",
            "L1",
            ranges_for(ceil_div(n, TILE * pc.per_core_N), self.grid),
            (x.memory.shard[0], pc.per_core_N * TILE),
        )
        out = self.t((*x.shape[:-1], n), out_dtype or self.act, out_mem)
        cb = self.dram_sharded_cbs(k, n, pc.in0_block_w, x.dtype, w.dtype, out.dtype, compute)
        w_t = self.t(w.shape, w.dtype, w.memory)
        return self.op(name, "ttnn.linear", (x, w_t), out, program=pc, compute=compute, weight=w.name, cb=cb,
                       flops=2 * self.users * k * n)  # fmt: skip

    def prefill_matmul(self, name, spec_op, x: TensorPlan, w: WeightPlan, n: int, seq: int, out_dtype=None,
                       activation=None, bias: WeightPlan | None = None, rows: int | None = None) -> OpPlan:  # fmt: skip
        """A 2D-multicast prefill matmul; the largest in0_block_w (and, if needed, the largest row
        chunk) whose circular buffers fit in L1 next to nothing else. A row chunk below `seq` runs the
        input as [1, seq / chunk, chunk, K] (tt-transformers' long-prefill reshape): the program
        config covers one chunk and does not fuse the batch. `rows` caps the chunk (a module whose
        matmuls share one reshaped input)."""
        kind, fields = self._choice(spec_op, "prefill", "2d")
        if kind != "2d":
            raise PlanError(
                f"prefill op {name}: program '{kind}' is not supported for prefill matmuls (use 2d)"
            )
        cap = fields.pop("rows", None)  # the spec's row-chunk cap (tt-transformers' prefill cutoff)
        if cap is not None:
            if cap % TILE:
                raise PlanError(f"prefill op {name}: rows {cap} is not a multiple of {TILE}")
            if cap < seq and seq % cap:
                raise PlanError(f"prefill op {name}: rows {cap} does not divide seq_len {seq}")
            rows = min(rows or seq, cap)
        compute = self.compute(spec_op.fidelity_key("prefill") if spec_op else None)
        k = x.shape[-1]
        grid = (min(self.grid[0], self.prefill_grid[0]), min(self.grid[1], self.prefill_grid[1]))
        budget = self.device.l1_bank_size
        out_dtype = out_dtype or self.act
        m_chunk, best = rows or seq, None
        while best is None:
            for kb in sorted((d for d in range(1, 9) if (k // TILE) % d == 0), reverse=True):
                pc = matmul_2d(
                    m_chunk,
                    k,
                    n,
                    grid,
                    kb,
                    dest_for(compute),
                    fuse_batch=m_chunk == seq,
                    fused_activation=activation,
                )
                pc = self._override(pc, fields)
                if (
                    cb_matmul(pc, x.dtype, w.dtype, out_dtype, compute, False, False) <= budget
                    or fields
                ):
                    best = pc
                    break
            if best is None:
                if m_chunk <= 128:
                    raise PlanError(
                        f"prefill op {name}: no 2D matmul config fits L1 ({budget} B per core) for K={k}, N={n}"
                    )
                m_chunk //= 2
        cb = cb_matmul(best, x.dtype, w.dtype, out_dtype, compute, False, False)
        out = self.t((*x.shape[:-1], n), out_dtype)
        inputs = [x, self.t(w.shape, w.dtype, w.memory)] + (
            [self.t(bias.shape, bias.dtype, bias.memory)] if bias else []
        )
        return self.op(name, "ttnn.linear", inputs, out, program=best, compute=compute, weight=w.name, cb=cb,
                       flops=2 * seq * k * n, seq_len=seq, m_chunk=None if m_chunk == seq else m_chunk)  # fmt: skip

    # ------------------------------------------------------------------ weights
    def matmul_weight(
        self, name: str, sources, k: int, n: int, group: str, transform: str
    ) -> WeightPlan:
        return WeightPlan(name, tuple(sources), transform, (k, n), self.weight_dtype(group), "TILE",
                          dram_weight_memcfg(k, n, self.device.dram_banks), per_layer=True)  # fmt: skip

    # ------------------------------------------------------------------ templates
    def lower(
        self, rule: Rule, matches
    ) -> tuple[tuple[WeightPlan, ...], tuple[tuple[str, tuple[OpPlan, ...]], ...]]:
        fn = getattr(self, f"_lower_{rule.template}")
        weights, ops = fn(rule, matches)
        return tuple(weights), tuple(
            (mode, tuple(ops[mode])) for mode in ("prefill", "decode") if mode in ops
        )

    def _spec_op(self, rule: Rule, name: str) -> OpSpec | None:
        return next((o for o in rule.ops if o.name == name), None)

    def _lower_none(self, rule, matches):
        return [], {}

    def _lower_embedding(self, rule, matches):
        f = self.facts
        src = matches[0]["w_embedding"]
        w = WeightPlan("embedding", (src,), "embedding", (f.vocab_size, f.dim), self.weight_dtype("embedding"),
                       "ROW_MAJOR", DRAM, per_layer=False)  # fmt: skip
        wt = self.t(w.shape, w.dtype, DRAM, "ROW_MAJOR")
        ops = {"decode": [], "prefill": []}
        tok = self.t((1, self.batch), "uint32", DRAM, "ROW_MAJOR")
        emb = self.t((1, self.batch, f.dim), w.dtype)
        ops["decode"] = [
            self.op("embed", "ttnn.embedding", (tok, wt), emb),
            self.op("reshape", "ttnn.reshape", (emb,), self.t((1, 1, self.batch, f.dim), w.dtype)),
            self.op("to_residual", "ttnn.to_memory_config", (self.t((1, 1, self.batch, f.dim)),),
                    self.t((1, 1, self.batch, f.dim), memory=self.residual_mem())),
        ]  # fmt: skip
        for s in self.prefill_seq_lens:
            toks = self.t((1, s), "uint32", DRAM, "ROW_MAJOR")
            ops["prefill"] += [
                self.op(
                    "embed", "ttnn.embedding", (toks, wt), self.t((1, s, f.dim), w.dtype), seq_len=s
                ),
                self.op(
                    "reshape",
                    "ttnn.reshape",
                    (self.t((1, s, f.dim)),),
                    self.t((1, 1, s, f.dim)),
                    seq_len=s,
                ),
            ]
        return [w], ops

    def _lower_rotary_setup(self, rule, matches):
        f, b = self.facts, self.batch
        seq = self.spec.target.max_seq_len
        cores = b
        weights = [
            WeightPlan("cos", (), "rope_cos", (1, 1, seq, f.head_dim), "bfloat16", "TILE", DRAM, per_layer=False),
            WeightPlan("sin", (), "rope_sin", (1, 1, seq, f.head_dim), "bfloat16", "TILE", DRAM, per_layer=False),
            WeightPlan("cos_rows", (), "rope_cos", (seq, f.head_dim), "bfloat16", "ROW_MAJOR", DRAM, per_layer=False),
            WeightPlan("sin_rows", (), "rope_sin", (seq, f.head_dim), "bfloat16", "ROW_MAJOR", DRAM, per_layer=False),
            WeightPlan("trans_mat_prefill", (), "rope_transformation", (1, 1, TILE, TILE), "bfloat16", "TILE", DRAM, per_layer=False),
            WeightPlan("trans_mat_decode", (), "rope_transformation", (1, 1, TILE * b, TILE), "bfloat16", "TILE",
                       height_sharded(TILE, TILE, cores, self.grid), per_layer=False),
        ]  # fmt: skip
        idx = self.t((1, b), "uint32", DRAM, "ROW_MAJOR")
        rows = self.t((seq, f.head_dim), "bfloat16", DRAM, "ROW_MAJOR")
        sharded = self.t(
            (1, b, 1, f.head_dim), "bfloat16", height_sharded(TILE, f.head_dim, cores, self.grid)
        )
        decode = []
        for which in ("cos", "sin"):
            decode += [
                self.op(f"{which}_lookup", "ttnn.embedding", (idx, rows), self.t((1, b, f.head_dim), "bfloat16")),
                self.op(f"{which}_reshape", "ttnn.reshape", (self.t((1, b, f.head_dim), "bfloat16"),), self.t((1, 1, b, f.head_dim), "bfloat16")),
                self.op(f"{which}_transpose", "ttnn.transpose", (self.t((1, 1, b, f.head_dim), "bfloat16"),), self.t((1, b, 1, f.head_dim), "bfloat16")),
                self.op(f"{which}_shard", "ttnn.interleaved_to_sharded", (self.t((1, b, 1, f.head_dim), "bfloat16"),), sharded),
            ]  # fmt: skip
        prefill = []
        for s in self.prefill_seq_lens:
            full = self.t((1, 1, seq, f.head_dim), "bfloat16")
            for which in ("cos", "sin"):
                prefill.append(
                    self.op(
                        f"{which}_slice",
                        "ttnn.slice",
                        (full,),
                        self.t((1, 1, s, f.head_dim), "bfloat16"),
                        seq_len=s,
                    )
                )
        return weights, {"decode": decode, "prefill": prefill}

    def _norm_weight(self, rule, matches) -> WeightPlan:
        srcs = sorted({m["weight"] for m in matches})
        per_layer = any(m.layer is not None for m in matches)
        return WeightPlan("norm", tuple(srcs), "norm_sticks", (1, 1, self.facts.dim // TILE, TILE),
                          self.weight_dtype("norm"), "ROW_MAJOR", DRAM, per_layer=per_layer)  # fmt: skip

    def _lower_rms_norm(self, rule, matches):
        f = self.facts
        w = self._norm_weight(rule, matches)
        compute = self.compute(
            self._spec_op(rule, "norm").fidelity_key("decode")
            if self._spec_op(rule, "norm")
            else None
        )
        mem = self.residual_mem()
        cores = mem.num_cores
        block_w = f.dim // TILE // cores
        gx = min(cores, self.act_grid[0])
        pc = ProgCfg("norm_sharded", (gx, ceil_div(cores, gx)), (
            ("subblock_w", largest_divisor(block_w, 4)),
            ("block_h", ceil_div(self.batch, TILE)),
            ("block_w", block_w),
            ("inplace", False),
        ))  # fmt: skip
        x = self.t((1, 1, self.batch, f.dim), memory=mem)
        wt = self.t(w.shape, w.dtype, DRAM, "ROW_MAJOR")
        decode = [self.op("norm", "ttnn.rms_norm", (x, wt), x, program=pc, compute=compute, weight="norm",
                          cb=sharded_rms_norm_cb_bytes(
                              block_w=block_w, num_cores=cores,
                              fp32_dest_acc_en=bool(compute and compute.fp32_dest_acc_en)))]  # fmt: skip
        prefill = []
        for s in self.prefill_seq_lens:
            xs = self.t((1, 1, s, f.dim))
            prefill.append(self.op("norm", "ttnn.rms_norm", (xs, wt), xs, compute=compute, weight="norm", seq_len=s,
                                   cb=interleaved_rms_norm_cb_bytes(
                                       width_tiles=f.dim // TILE,
                                       fp32_dest_acc_en=bool(compute and compute.fp32_dest_acc_en))))  # fmt: skip
        return [w], {"decode": decode, "prefill": prefill}

    def _lower_attention(self, rule, matches):
        f, b = self.facts, self.batch
        layer = "model.layers.{layer}.self_attn"
        weights = [
            self.matmul_weight(
                "wqkv",
                [f"{layer}.{p}_proj.weight" for p in "qkv"],
                f.dim,
                f.qkv_size,
                "wqkv",
                "fuse_qkv",
            ),
            self.matmul_weight(
                "wo", [f"{layer}.o_proj.weight"], f.n_heads * f.head_dim, f.dim, "wo", "transpose"
            ),
        ]
        if f.qkv_bias:
            weights.append(WeightPlan("bqkv", tuple(f"{layer}.{p}_proj.bias" for p in "qkv"), "fuse_qkv_bias",
                                      (1, 1, b, f.qkv_size), "bfloat16", "TILE", DRAM, per_layer=True))  # fmt: skip
            weights.append(WeightPlan("bqkv_prefill", tuple(f"{layer}.{p}_proj.bias" for p in "qkv"), "fuse_qkv_bias",
                                      (1, f.qkv_size), "bfloat16", "TILE", DRAM, per_layer=True))  # fmt: skip
        wqkv, wo = weights[0], weights[1]
        kv = self.kv_cache_shape()
        kv_dtype = self.precision.kv_cache
        cache = self.t(kv, kv_dtype)
        heads_mem = height_sharded(TILE, f.head_dim, b, self.grid)
        sdpa_compute_d = self.compute(self._spec_op(rule, "sdpa").fidelity_key("decode"))
        sdpa_compute_p = self.compute(self._spec_op(rule, "sdpa").fidelity_key("prefill"))

        # decode
        x = self.t((1, 1, b, f.dim), memory=self.residual_mem())
        qkv = self.decode_matmul("qkv", self._spec_op(rule, "qkv"), x, wqkv, f.qkv_size)
        flat = self.t((1, 1, b, f.qkv_size), memory=L1)
        q = self.t((1, b, f.n_heads, f.head_dim), memory=heads_mem)
        k = self.t((1, b, f.n_kv_heads, f.head_dim), memory=heads_mem)
        cos = self.t((1, b, 1, f.head_dim), "bfloat16", heads_mem)
        trans = self.t((1, 1, TILE * b, TILE), "bfloat16", height_sharded(TILE, TILE, b, self.grid))
        pos = self.t((b,), "int32", DRAM, "ROW_MAJOR")
        sdpa_pc = ProgCfg("sdpa", (min(8, self.grid[0]), min(8, self.grid[1])),
                          (("q_chunk_size", 0), ("k_chunk_size", 0), ("exp_approx_mode", False)))  # fmt: skip
        sdpa_out = self.t((1, b, f.n_heads, f.head_dim), memory=DRAM)
        # nlp_concat_heads_decode wants its users on one core rectangle from (0, 0) (more ranges
        # mean sub-core grids): at most 8 columns, so 32 users form an 8x4 block on any device
        concat_in_mem = height_sharded(TILE, f.head_dim, b, (min(8, self.grid[0]), self.grid[1]))
        heads_out = self.t((1, b, f.n_heads, f.head_dim), memory=concat_in_mem)
        concat_mem = MemCfg(
            "WIDTH_SHARDED", "L1", ranges_for(f.n_heads, self.grid), (TILE, f.head_dim)
        )
        concat = self.t((1, 1, b, f.n_heads * f.head_dim), memory=concat_mem)
        wo_op = self.decode_matmul("wo", self._spec_op(rule, "wo"), concat, wo, f.dim)
        k_chunk_cb = 2 * 2 * (256 // TILE) * (f.head_dim // TILE) * TILE_BYTES[kv_dtype]
        decode = [
            qkv,
            self.op("qkv_interleaved", "ttnn.sharded_to_interleaved", (qkv.output,), flat),
        ]
        if f.qkv_bias:
            decode.append(
                self.op(
                    "qkv_bias", "ttnn.add", (flat, self.t((1, 1, b, f.qkv_size), "bfloat16")), flat
                )
            )
        decode += [
            self.op("create_heads", "ttnn.experimental.nlp_create_qkv_heads_decode", (flat,), q),
            self.op("rope_q", "ttnn.experimental.rotary_embedding_llama", (q, cos, cos, trans), q),
            self.op("rope_k", "ttnn.experimental.rotary_embedding_llama", (k, cos, cos, trans), k),
            self.op("update_k", "ttnn.experimental.paged_update_cache", (cache, k, pos), cache),
            self.op("update_v", "ttnn.experimental.paged_update_cache", (cache, k, pos), cache),
            self.op("sdpa", "ttnn.transformer.scaled_dot_product_attention_decode", (q, cache, cache, pos), sdpa_out,
                    program=sdpa_pc, compute=sdpa_compute_d, cb=k_chunk_cb,
                    flops=4 * self.users * f.n_heads * f.head_dim * self.spec.target.max_seq_len),
            self.op("heads_to_l1", "ttnn.to_memory_config", (sdpa_out,), heads_out),
            self.op("concat_heads", "ttnn.experimental.nlp_concat_heads_decode", (heads_out,), concat),
            wo_op,
            self.op("to_residual", "ttnn.to_memory_config", (wo_op.output,), self.t(wo_op.output.shape, memory=self.residual_mem())),
        ]  # fmt: skip

        # prefill
        prefill = []
        bias = weights[3] if f.qkv_bias else None
        for s in self.prefill_seq_lens:
            xs = self.t((1, 1, s, f.dim))
            qkv_p = self.prefill_matmul(
                "qkv", self._spec_op(rule, "qkv"), xs, wqkv, f.qkv_size, s, bias=bias
            )
            qp = self.t((1, f.n_heads, s, f.head_dim))
            kp = self.t((1, f.n_kv_heads, s, f.head_dim))
            kc = self.t((1, f.n_kv_heads, s, f.head_dim), kv_dtype)
            qc = self.t((1, f.n_heads, s, f.head_dim), kv_dtype)
            cos_p = self.t((1, 1, s, f.head_dim), "bfloat16")
            trans_p = self.t((1, 1, TILE, TILE), "bfloat16")
            chunk = 256 if s >= 2048 else 64
            chunk = min(chunk, s)
            sdpa_p = ProgCfg("sdpa", (min(8, self.grid[0]), min(8, self.grid[1])),
                             (("q_chunk_size", chunk), ("k_chunk_size", chunk), ("exp_approx_mode", False)))  # fmt: skip
            ct = chunk // TILE
            ht = f.head_dim // TILE
            sdpa_cb = (2 * ct * ht * TILE_BYTES[kv_dtype] + 2 * 2 * ct * ht * TILE_BYTES[kv_dtype]
                       + ct * ct * TILE_BYTES["float32"] + 2 * ct * ht * TILE_BYTES["float32"])  # fmt: skip
            attn = self.t((1, f.n_heads, s, f.head_dim), kv_dtype)
            cat = self.t((1, 1, s, f.n_heads * f.head_dim), kv_dtype)
            prefill += [
                qkv_p,
                self.op("create_heads", "ttnn.experimental.nlp_create_qkv_heads", (qkv_p.output,), qp, seq_len=s),
                self.op("rope_q", "ttnn.experimental.rotary_embedding_llama", (qp, cos_p, cos_p, trans_p), qp, seq_len=s),
                self.op("rope_k", "ttnn.experimental.rotary_embedding_llama", (kp, cos_p, cos_p, trans_p), kp, seq_len=s),
                self.op("k_to_cache_dtype", "ttnn.typecast", (kp,), kc, seq_len=s),
                self.op("v_to_cache_dtype", "ttnn.typecast", (kp,), kc, seq_len=s),
                self.op("fill_k", "ttnn.experimental.paged_fill_cache", (cache, kc), cache, seq_len=s),
                self.op("fill_v", "ttnn.experimental.paged_fill_cache", (cache, kc), cache, seq_len=s),
                self.op("q_to_cache_dtype", "ttnn.typecast", (qp,), qc, seq_len=s),
                self.op("sdpa", "ttnn.transformer.scaled_dot_product_attention", (qc, kc, kc), attn, program=sdpa_p,
                        compute=sdpa_compute_p, cb=sdpa_cb, seq_len=s, flops=2 * 2 * f.n_heads * s * s * f.head_dim // 2),
                self.op("concat_heads", "ttnn.experimental.nlp_concat_heads", (attn,), cat, seq_len=s),
                self.prefill_matmul("wo", self._spec_op(rule, "wo"), cat, wo, f.dim, s),
            ]  # fmt: skip
        return weights, {"decode": decode, "prefill": prefill}

    def _lower_mlp(self, rule, matches):
        f, b = self.facts, self.batch
        layer = "model.layers.{layer}.mlp"
        w1 = self.matmul_weight(
            "w1", [f"{layer}.gate_proj.weight"], f.dim, f.hidden_dim, "w1", "transpose"
        )
        w3 = self.matmul_weight(
            "w3", [f"{layer}.up_proj.weight"], f.dim, f.hidden_dim, "w3", "transpose"
        )
        w2 = self.matmul_weight(
            "w2", [f"{layer}.down_proj.weight"], f.hidden_dim, f.dim, "w2", "transpose"
        )
        x = self.t((1, 1, b, f.dim), memory=self.residual_mem())
        ff1 = self.decode_matmul("ff1", self._spec_op(rule, "ff1"), x, w1, f.hidden_dim)
        ff3 = self.decode_matmul("ff3", self._spec_op(rule, "ff3"), x, w3, f.hidden_dim)
        gated = self.t(ff1.output.shape, "bfloat8_b", ff1.output.memory)
        c2 = k_grid_cores(f.hidden_dim // TILE, self.grid, self.k_grid_target)
        ff2_in = self.t(
            ff1.output.shape,
            "bfloat8_b",
            width_sharded(b, f.hidden_dim, c2, self.act_grid),
        )
        ff2 = self.decode_matmul("ff2", self._spec_op(rule, "ff2"), ff2_in, w2, f.dim)
        decode = [
            ff1, ff3,
            self.op("gate_mul", "ttnn.mul", (ff1.output, ff3.output), gated, flops=2 * self.users * f.hidden_dim),
            self.op("to_ff2_input", "ttnn.to_memory_config", (gated,), ff2_in),
            ff2,
            self.op("to_residual", "ttnn.to_memory_config", (ff2.output,), self.t(ff2.output.shape, memory=self.residual_mem())),
        ]  # fmt: skip
        prefill = []
        for s in self.prefill_seq_lens:
            xs = self.t((1, 1, s, f.dim))
            g = self.t((1, 1, s, f.hidden_dim), "bfloat8_b")

            def matmuls(rows, s=s, xs=xs, g=g):
                return (self.prefill_matmul("ff1", self._spec_op(rule, "ff1"), xs, w1, f.hidden_dim, s, rows=rows),
                        self.prefill_matmul("ff3", self._spec_op(rule, "ff3"), xs, w3, f.hidden_dim, s, rows=rows),
                        self.prefill_matmul("ff2", self._spec_op(rule, "ff2"), g, w2, f.dim, s, rows=rows))  # fmt: skip

            p1, p3, p2 = matmuls(None)
            rows = min(op.m_chunk or s for op in (p1, p3, p2))
            if rows < s:  # one reshape of the MLP's input serves all three: one chunk size
                p1, p3, p2 = matmuls(rows)
            prefill += [
                p1,
                p3,
                self.op("gate_mul", "ttnn.mul", (p1.output, p3.output), g, seq_len=s),
                p2,
            ]
        return [w1, w3, w2], {"decode": decode, "prefill": prefill}

    def _lower_decoder(self, rule, matches):
        f, b = self.facts, self.batch
        x = self.t((1, 1, b, f.dim), memory=self.residual_mem())
        decode = [
            self.op("attn_residual", "ttnn.add", (x, x), x),
            self.op("mlp_residual", "ttnn.add", (x, x), x),
        ]
        prefill = []
        for s in self.prefill_seq_lens:
            xs = self.t((1, 1, s, f.dim))
            prefill += [self.op("attn_residual", "ttnn.add", (xs, xs), xs, seq_len=s),
                        self.op("mlp_residual", "ttnn.add", (xs, xs), xs, seq_len=s)]  # fmt: skip
        return [], {"decode": decode, "prefill": prefill}

    def _lower_lm_head(self, rule, matches):
        f, b = self.facts, self.batch
        spec_op = self._spec_op(rule, "lm_head")
        src = matches[0]["w_lm_head"]
        cores = self.residual_cores()
        splits = self.lm_head_splits(
            cores, self.compute(spec_op.fidelity_key("decode") if spec_op else None)
        )
        weights, decode = [], []
        x = self.t((1, 1, b, f.dim), memory=self.residual_mem())
        start = 0
        outs = []
        for i, width in enumerate(splits):
            w = WeightPlan(f"lm_head_{i}", (src,), f"vocab_slice:{start}:{start + width}", (f.dim, width),
                           self.weight_dtype("lm_head"), "TILE", dram_weight_memcfg(f.dim, width, self.device.dram_banks),
                           per_layer=False)  # fmt: skip
            weights.append(w)
            mm = self.decode_matmul(
                f"lm_head_{i}", spec_op, x, w, width, out_dtype=self.precision.logits
            )
            out = self.t((1, 1, b, width), self.precision.logits, L1)
            decode += [
                mm,
                self.op(
                    f"lm_head_{i}_interleaved", "ttnn.sharded_to_interleaved", (mm.output,), out
                ),
            ]
            outs.append(out)
            start += width
        logits = self.t((1, 1, b, f.vocab_size), self.precision.logits, L1)
        if len(splits) > 1:
            decode.append(self.op("concat", "ttnn.concat", tuple(outs), logits))
        prefill = [
            self.op("to_sharded", "ttnn.interleaved_to_sharded", (self.t((1, 1, TILE, f.dim)),), x)
        ] + decode
        return weights, {"decode": decode, "prefill": prefill}

    # ------------------------------------------------------------------ sizes
    def dram_sharded_cbs(self, k: int, n: int, in0_block_w: int, in0_dtype: str, w_dtype: str, out_dtype: str,
                         compute: ComputeCfg | None) -> int:  # fmt: skip
        """Circular-buffer bytes per core of a DRAM-sharded decode matmul (the real program's)."""
        return dram_sharded_cb_bytes(
            kt=k // TILE, nt=ceil_div(n, TILE), in0_block_w=in0_block_w,
            per_core_m=self.batch // TILE, dram_banks=self.device.dram_banks,
            in0_tile=TILE_BYTES[in0_dtype], w_tile=TILE_BYTES[w_dtype], out_tile=TILE_BYTES[out_dtype],
            fp32_dest_acc_en=bool(compute and compute.fp32_dest_acc_en),
            packer_l1_acc=bool(compute and compute.packer_l1_acc),
            out_is_bf16=out_dtype == "bfloat16",
        )  # fmt: skip

    def lm_head_splits(self, cores: int, compute: ComputeCfg | None) -> list[int]:
        """Vocab columns per LM-head matmul: the fewest equal splits (multiples of 32 x cores
        columns) whose circular buffers (each DRAM bank's reader computes 1/banks of a split) and
        output shard fit in half of L1."""
        f = self.facts
        unit = TILE * cores
        w_dtype, out_dtype = self.weight_dtype("lm_head"), self.precision.logits
        kt_core = f.dim // TILE // cores
        kb = largest_divisor(kt_core, 8)
        for n_splits in range(1, 129):
            width = ceil_div(ceil_div(f.vocab_size, n_splits), unit) * unit
            per_core_n = width // unit
            cbs = self.dram_sharded_cbs(f.dim, width, kb, self.act, w_dtype, out_dtype, compute)
            need = cbs + per_core_n * TILE_BYTES[out_dtype]
            if need <= self.device.l1_bank_size // 2:
                widths = [width] * (n_splits - 1) + [f.vocab_size - width * (n_splits - 1)]
                if widths[-1] > 0:
                    return widths
        raise PlanError(f"LM head: vocab {f.vocab_size} does not fit L1 even in 128 splits")

    def kv_cache_shape(self) -> tuple[int, ...]:
        t, f = self.spec.target, self.facts
        if t.kv_cache == "paged":
            return (
                t.max_batch * t.max_seq_len // t.block_size,
                f.n_kv_heads,
                t.block_size,
                f.head_dim,
            )
        return (decode_rows(t.max_batch), f.n_kv_heads, t.max_seq_len, f.head_dim)
