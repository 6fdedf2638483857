"""Per-template lowering: the program of each module in each mode (ttgen.plan.program): the TTNN
calls that will run, over named values, with every config fixed.

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
from ttgen.plan.program import ProgramBuilder, ttnn_dtype
from ttgen.plan.types import (
    TILE,
    TILE_BYTES,
    ComputeCfg,
    Const,
    Lit,
    MemCfg,
    ModelFacts,
    OpPlan,
    ProgCfg,
    Ref,
    Signature,
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
ROPE_TYPES = ("default", "linear", "llama3")  # frequency schemes the rotary block computes
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

    def op(self, name, ttnn, inputs, output, extra_outputs=(), **kw) -> OpPlan:
        if not ttnn.startswith("ttnn."):  # a sub-module's program: its own ops are counted there
            return OpPlan(
                name, ttnn, tuple(inputs), output, extra_outputs=tuple(extra_outputs), **kw
            )
        outputs = (output, *extra_outputs)
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
            dram = sum(_tensor_bytes(x) for x in (*inputs, *outputs) if x.memory.buffer == "DRAM")
        l1 = sum(_l1_on_core(x) for x in (*inputs, *outputs)) + kw.pop("cb", 0)
        return OpPlan(name, ttnn, tuple(inputs), output, l1_per_core=l1, dram_bytes=dram,
                      extra_outputs=tuple(extra_outputs), **kw)  # fmt: skip

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

    # ------------------------------------------------------------------ program pieces
    def builder(self, params: dict, state: dict, seq_len: int | None = None) -> ProgramBuilder:
        return ProgramBuilder(self, params, state, seq_len)

    def compute_const(self, c: ComputeCfg | None) -> Const:
        return Const(f"COMPUTE_{c.name.upper()}", c, shared=True)

    def residual_const(self) -> Const:
        return Const("RESIDUAL_MEMCFG", self.residual_mem(), shared=True)

    def to_memory(self, b: ProgramBuilder, name: str, src: str, out: str, memory: MemCfg,
                  const: Const | None = None) -> str:  # fmt: skip
        """`ttnn.to_memory_config` unless `src` already has `memory` (then the real op returns its
        input, and the program passes the value on). Returns the name holding the result."""
        t = b.tensor(src)
        if t.memory == memory:
            return src
        cfg = const or Const(f"{out.upper()}_MEMCFG", memory)
        b.call(
            name,
            "ttnn.to_memory_config",
            [Ref(src), cfg],
            outs=(out,),
            out=replace(t, memory=memory),
        )
        return out

    # ------------------------------------------------------------------ matmuls
    def decode_matmul(self, b: ProgramBuilder, name: str, spec_op, x: str, w: WeightPlan, out: str,
                      out_dtype=None, activation=None, role: str | None = None) -> OpPlan:  # fmt: skip
        """A DRAM-sharded decode matmul on a width-sharded activation. The call asks for
        L1_WIDTH_SHARDED output and the op places it: on the first ceil(N / per_core_N) cores of
        the device grid (the planned output's memory config; the ttnn lane compares it)."""
        kind, fields = self._choice(spec_op, "decode", "dram_sharded")
        if kind != "dram_sharded":
            raise PlanError(
                f"decode op {name}: program '{kind}' is not supported for decode matmuls (use dram_sharded)"
            )
        compute = self.compute(spec_op.fidelity_key("decode") if spec_op else None)
        xt = b.tensor(x)
        k, n = xt.shape[-1], w.shape[-1]
        cores = xt.memory.num_cores
        pc = self._override(dram_sharded_matmul(self.batch, k, n, cores, activation), fields)
        out_mem = MemCfg(
            "WIDTH_SHARDED",
            "L1",
            ranges_for(ceil_div(n, TILE * pc.per_core_N), self.grid),
            (xt.memory.shard[0], pc.per_core_N * TILE),
        )
        out_t = self.t((*xt.shape[:-1], n), out_dtype or self.act, out_mem)
        cb = self.dram_sharded_cbs(k, n, pc.in0_block_w, xt.dtype, w.dtype, out_t.dtype, compute)
        kwargs = {
            "program_config": Const(f"{(role or name).upper()}_DECODE_PROGCFG", pc),
            "memory_config": Lit("ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG"),
            "compute_kernel_config": self.compute_const(compute),
            "dtype": ttnn_dtype(out_t.dtype),
        }
        return b.call(name, "ttnn.linear", [Ref(x), Ref(f"self.{w.name}")], kwargs, outs=(out,), out=out_t,
                      program=pc, compute=compute, weight=w.name, cb=cb, flops=2 * self.users * k * n)  # fmt: skip

    def prefill_matmul_config(self, name, spec_op, x: TensorPlan, w: WeightPlan, seq: int, out_dtype=None,
                              activation=None, rows: int | None = None):  # fmt: skip
        """A 2D-multicast prefill matmul; the largest in0_block_w (and, if needed, the largest row
        chunk) whose circular buffers fit in L1 next to nothing else. A row chunk below `seq` runs the
        input as [1, seq / chunk, chunk, K] (tt-transformers' long-prefill reshape): the program
        config covers one chunk and does not fuse the batch. `rows` caps the chunk (a module whose
        matmuls share one reshaped input). Returns (program, compute, row chunk, circular buffers)."""
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
        k, n = x.shape[-1], w.shape[-1]
        grid = (min(self.grid[0], self.prefill_grid[0]), min(self.grid[1], self.prefill_grid[1]))
        budget = self.device.l1_bank_size
        out_dtype = out_dtype or self.act
        m_chunk, best = rows or seq, None
        while best is None:
            for kb in sorted((d for d in range(1, 9) if (k // TILE) % d == 0), reverse=True):
                pc = matmul_2d(m_chunk, k, n, grid, kb, dest_for(compute), fuse_batch=m_chunk == seq,
                               fused_activation=activation)  # fmt: skip
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
        return (
            best,
            compute,
            m_chunk,
            cb_matmul(best, x.dtype, w.dtype, out_dtype, compute, False, False),
        )

    def prefill_matmul(self, b: ProgramBuilder, name: str, spec_op, x: str, w: WeightPlan, out: str,
                       config, out_dtype=None, bias: WeightPlan | None = None, role: str | None = None) -> OpPlan:  # fmt: skip
        """The call of a planned prefill matmul (`config` from prefill_matmul_config)."""
        pc, compute, m_chunk, cb = config
        xt = b.tensor(x)
        seq = b.seq_len
        out_t = self.t((*xt.shape[:-1], w.shape[-1]), out_dtype or self.act)
        args = [Ref(x), Ref(f"self.{w.name}")]
        kwargs = {"bias": Ref(f"self.{bias.name}")} if bias else {}
        kwargs |= {
            "program_config": Const(f"{(role or name).upper()}_PREFILL_PROGCFG", pc),
            "memory_config": Const("DRAM", DRAM),
            "compute_kernel_config": self.compute_const(compute),
            "dtype": ttnn_dtype(out_t.dtype),
        }
        return b.call(name, "ttnn.linear", args, kwargs, outs=(out,), out=out_t, program=pc, compute=compute,
                      weight=w.name, cb=cb, flops=2 * seq * xt.shape[-1] * w.shape[-1],
                      m_chunk=None if m_chunk == seq else m_chunk)  # fmt: skip

    def chunk_rows(self, b: ProgramBuilder, name: str, x: str, rows: int, table: str) -> None:
        """Run `x` ([1, 1, seq, K]) as [1, seq / rows, rows, K]: a view, for the seq_lens of `table`."""
        t = b.tensor(x)
        shape = (1, b.seq_len // rows, rows, t.shape[-1])
        b.call(name, "ttnn.reshape", [Ref(x), Const(table, shape)], outs=(x,), out=replace(t, shape=shape),
               view=True, guard=table)  # fmt: skip

    def unchunk_rows(self, b: ProgramBuilder, name: str, x: str, table: str) -> None:
        t = b.tensor(x)
        shape = (1, 1, b.seq_len, t.shape[-1])
        b.call(name, "ttnn.reshape", [Ref(x), Lit("[1, 1, seq_len, -1]")], outs=(x,),
               out=replace(t, shape=shape), view=True, guard=table)  # fmt: skip

    # ------------------------------------------------------------------ weights
    def matmul_weight(
        self, name: str, sources, k: int, n: int, group: str, transform: str
    ) -> WeightPlan:
        return WeightPlan(name, tuple(sources), transform, (k, n), self.weight_dtype(group), "TILE",
                          dram_weight_memcfg(k, n, self.device.dram_banks), per_layer=True)  # fmt: skip

    @staticmethod
    def state(weights) -> dict[str, TensorPlan]:
        return {w.name: TensorPlan(w.shape, w.dtype, w.layout, w.memory) for w in weights}

    # ------------------------------------------------------------------ templates
    def lower(self, rule: Rule, matches, decode_matches=()):
        """(weights, ((mode, ops), ...), ((mode, signature), ...)) of one rule's module."""
        fn = getattr(self, f"_lower_{rule.template}")
        self.decode_matches = tuple(decode_matches)
        weights, programs = fn(rule, matches)
        ops = tuple((mode, tuple(o)) for mode, (_, o) in programs.items())
        sigs = tuple((mode, sig) for mode, (sig, _) in programs.items())
        return tuple(weights), ops, sigs

    def sources(
        self, rule: Rule, matches, key: str, relative: bool = True
    ) -> tuple[str, ...] | None:
        """The HF parameters behind the rule's weight `key` (its `weights:` entry names the
        captures), as paths relative to the matched module; None when no match captured them
        (an optional capture such as a bias). Every instance must agree."""
        caps = dict(rule.weights).get(key)
        if caps is None:
            raise PlanError(
                f"{rule.loc}: rule {rule.name}: the '{rule.template}' block needs weights.{key}"
            )
        found = set()
        for m in matches:
            values = [m.get(c) for c in caps]
            if all(v is None for v in values):
                found.add(None)
                continue
            if any(v is None for v in values):
                raise PlanError(f"{rule.loc}: rule {rule.name} at {m.module}: weights.{key} captures "
                                f"{list(caps)} are only partly present")  # fmt: skip
            prefix = f"{m.module}." if m.module and relative else ""
            found.add(tuple(v.removeprefix(prefix) for v in values))
        if len(found) != 1:
            raise PlanError(f"rule {rule.name}: weights.{key} come from different parameters per instance: "
                            f"{sorted(map(str, found))}")  # fmt: skip
        return found.pop()

    @staticmethod
    def consume(matches, *names: str) -> None:
        """Captures the block implements without reading a value: the tensors its program takes as
        parameters, the buffers its own tables replace."""
        for m in matches:
            for n in names:
                m.get(n)

    def _spec_op(self, rule: Rule, name: str) -> OpSpec | None:
        return next((o for o in rule.ops if o.name == name), None)

    def _prefill(self, build) -> list[OpPlan]:
        """The prefill program at every planned length: `build(seq_len)` → ops."""
        return [op for s in self.prefill_seq_lens for op in build(s)]

    def _lower_none(self, rule, matches):
        return [], {}

    def _lower_embedding(self, rule, matches):
        f = self.facts
        (src,) = self.sources(rule, matches, "embedding", relative=False)
        self.consume(matches, "tokens")
        w = WeightPlan("weight", (src,), "embedding", (f.vocab_size, f.dim), self.weight_dtype("embedding"),
                       "ROW_MAJOR", DRAM, per_layer=False)  # fmt: skip
        state = self.state([w])

        def embed(b, rows: int, shape_code: Lit):
            b.call("embed", "ttnn.embedding", [Ref("tokens"), Ref("self.weight")],
                   {"layout": Lit("ttnn.TILE_LAYOUT"), "memory_config": Const("DRAM", DRAM)}, outs=("x",),
                   out=self.t((1, rows, f.dim), w.dtype))  # fmt: skip
            b.call("reshape", "ttnn.reshape", [Ref("x"), shape_code], outs=("x",),
                   out=self.t((1, 1, rows, f.dim), w.dtype), view=True)  # fmt: skip

        b = self.builder({"tokens": self.t((1, self.batch), "uint32", DRAM, "ROW_MAJOR")}, state)
        embed(b, self.batch, Lit("[1, 1, DECODE_BATCH, DIM]", ("DECODE_BATCH", "DIM")))
        out = self.to_memory(
            b, "to_residual", "x", "residual", self.residual_mem(), self.residual_const()
        )
        sig_d = Signature("forward_decode", ("tokens",), (out,))
        decode = b.finish(sig_d)

        sig_p = Signature("forward_prefill", ("tokens",), ("x",))

        def prefill(s):
            b = self.builder({"tokens": self.t((1, s), "uint32", DRAM, "ROW_MAJOR")}, state, s)
            embed(b, s, Lit("[1, 1, tokens.shape[-1], DIM]", ("DIM",)))
            return b.finish(sig_p)

        return [w], {"decode": (sig_d, decode), "prefill": (sig_p, self._prefill(prefill))}

    def _lower_rotary_setup(self, rule, matches):
        f, b_rows = self.facts, self.batch
        seq = self.spec.target.max_seq_len
        cores = b_rows
        # the tables are computed from the config's rope parameters (ModelFacts), not read from HF's
        # inv_freq buffer; HF multiplies cos and sin by attention_scaling, which must then be 1
        self.consume(matches, "inv_freq", "positions", "angles")
        rope_type = dict(f.rope_scaling).get("rope_type", "default")
        if rope_type not in ROPE_TYPES:
            raise PlanError(f"{rule.loc}: rule {rule.name}: rope_type '{rope_type}' is not supported "
                            f"(supported: {', '.join(ROPE_TYPES)})")  # fmt: skip
        for m in matches:
            if m["attention_scaling"] != 1.0:
                raise PlanError(f"{rule.loc}: rule {rule.name} at {m.module}: RoPE attention_scaling "
                                f"{m['attention_scaling']} (rope type {dict(f.rope_scaling).get('rope_type')}) is not supported")  # fmt: skip
        weights = [
            WeightPlan("cos", (), "rope_cos", (1, 1, seq, f.head_dim), "bfloat16", "TILE", DRAM, per_layer=False),
            WeightPlan("sin", (), "rope_sin", (1, 1, seq, f.head_dim), "bfloat16", "TILE", DRAM, per_layer=False),
            WeightPlan("cos_rows", (), "rope_cos", (seq, f.head_dim), "bfloat16", "ROW_MAJOR", DRAM, per_layer=False),
            WeightPlan("sin_rows", (), "rope_sin", (seq, f.head_dim), "bfloat16", "ROW_MAJOR", DRAM, per_layer=False),
            WeightPlan("trans_mat_prefill", (), "rope_transformation", (1, 1, TILE, TILE), "bfloat16", "TILE", DRAM, per_layer=False),
            WeightPlan("trans_mat_decode", (), "rope_transformation", (1, 1, TILE * b_rows, TILE), "bfloat16", "TILE",
                       height_sharded(TILE, TILE, cores, self.grid), per_layer=False),
        ]  # fmt: skip
        state = self.state(weights)
        sharded = height_sharded(TILE, f.head_dim, cores, self.grid)
        b = self.builder({"rot_idxs": self.t((1, b_rows), "uint32", DRAM, "ROW_MAJOR")}, state)
        for which in ("cos", "sin"):
            rows = self.t((1, b_rows, f.head_dim), "bfloat16")
            b.call(f"{which}_lookup", "ttnn.embedding", [Ref("rot_idxs"), Ref(f"self.{which}_rows")],
                   {"layout": Lit("ttnn.TILE_LAYOUT"), "memory_config": Const("DRAM", DRAM)},
                   outs=(f"{which}_rows",), out=rows)  # fmt: skip
            b.call(f"{which}_reshape", "ttnn.reshape", [Ref(f"{which}_rows"), Lit("[1, 1, DECODE_BATCH, HEAD_DIM]", ("DECODE_BATCH", "HEAD_DIM"))],
                   outs=(f"{which}_rows",), out=self.t((1, 1, b_rows, f.head_dim), "bfloat16"), view=True)  # fmt: skip
            b.call(f"{which}_transpose", "ttnn.transpose", [Ref(f"{which}_rows"), Lit("1"), Lit("2")],
                   outs=(f"{which}_per_user",), out=self.t((1, b_rows, 1, f.head_dim), "bfloat16"))  # fmt: skip
            b.call(f"{which}_shard", "ttnn.interleaved_to_sharded",
                   [Ref(f"{which}_per_user"), Const("ROT_MATS_DECODE_MEMCFG", sharded)], outs=(which,),
                   out=self.t((1, b_rows, 1, f.head_dim), "bfloat16", sharded))  # fmt: skip
        sig_d = Signature("decode_rot_mats", ("rot_idxs",), ("cos", "sin"))
        decode = b.finish(sig_d)
        sig_p = Signature("prefill_rot_mats", ("seq_len",), ("cos", "sin"))

        def prefill(s):
            b = self.builder({}, state, s)
            for which in ("cos", "sin"):
                b.call(f"{which}_slice", "ttnn.slice",
                       [Ref(f"self.{which}"), Lit("[0, 0, 0, 0]"), Lit("[1, 1, seq_len, HEAD_DIM]", ("HEAD_DIM",))],
                       outs=(which,), out=self.t((1, 1, s, f.head_dim), "bfloat16"))  # fmt: skip
            return b.finish(sig_p)

        return weights, {"decode": (sig_d, decode), "prefill": (sig_p, self._prefill(prefill))}

    def _norm_weight(self, rule, matches) -> WeightPlan:
        srcs = self.sources(rule, matches, "norm")
        self.consume(matches, "x")
        per_layer = any(m.layer is not None for m in matches)
        return WeightPlan("weight", srcs, "norm_sticks", (1, 1, self.facts.dim // TILE, TILE),
                          self.weight_dtype("norm"), "ROW_MAJOR", DRAM, per_layer=per_layer)  # fmt: skip

    def _lower_rms_norm(self, rule, matches):
        f = self.facts
        w = self._norm_weight(rule, matches)
        state = self.state([w])
        spec_op = self._spec_op(rule, "norm")
        compute = self.compute(spec_op.fidelity_key("decode") if spec_op else None)
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
        eps = Const("NORM_EPS", f.norm_eps, shared=True)
        fp32 = bool(compute and compute.fp32_dest_acc_en)
        x = self.t((1, 1, self.batch, f.dim), memory=mem)
        b = self.builder({"x": x}, state)
        b.call("norm", "ttnn.rms_norm", [Ref("x")], {
            "epsilon": eps, "weight": Ref("self.weight"), "program_config": Const("NORM_DECODE_PROGCFG", pc),
            "memory_config": self.residual_const(), "compute_kernel_config": self.compute_const(compute),
        }, outs=("out",), out=x, program=pc, compute=compute, weight="weight",
            cb=sharded_rms_norm_cb_bytes(block_w=block_w, num_cores=cores, fp32_dest_acc_en=fp32))  # fmt: skip
        sig_d = Signature("forward_decode", ("x",), ("out",))
        decode = b.finish(sig_d)
        sig_p = Signature("forward_prefill", ("x",), ("out",))

        def prefill(s):
            xs = self.t((1, 1, s, f.dim))
            b = self.builder({"x": xs}, state, s)
            b.call("norm", "ttnn.rms_norm", [Ref("x")], {
                "epsilon": eps, "weight": Ref("self.weight"), "memory_config": Const("DRAM", DRAM),
                "compute_kernel_config": self.compute_const(compute),
            }, outs=("out",), out=xs, compute=compute, weight="weight",
                cb=interleaved_rms_norm_cb_bytes(width_tiles=f.dim // TILE, fp32_dest_acc_en=fp32))  # fmt: skip
            return b.finish(sig_p)

        return [w], {"decode": (sig_d, decode), "prefill": (sig_p, self._prefill(prefill))}

    def _lower_attention(self, rule, matches):
        f, rows = self.facts, self.batch
        paged = self.spec.target.kv_cache == "paged"
        weights = [
            self.matmul_weight("wqkv", self.sources(rule, matches, "wqkv"), f.dim, f.qkv_size, "wqkv", "fuse_qkv"),
            self.matmul_weight("wo", self.sources(rule, matches, "wo"), f.n_heads * f.head_dim, f.dim, "wo", "transpose"),
        ]  # fmt: skip
        self.consume(matches, "x", "cos", "sin")
        # HF's static cache buffers and the positions it writes at: TTNN's KV cache replaces them
        self.consume(self.decode_matches, "k_cache", "v_cache", "cache_pos")
        for m in matches:
            view = tuple(m["kv_view"])
            if (
                m["half"] != f.head_dim // 2
                or view[-1] != f.head_dim
                or view[-2] not in (-1, f.n_kv_heads)
            ):
                raise PlanError(f"{rule.loc}: rule {rule.name} at {m.module}: rotate-half at {m['half']} and "
                                f"k/v view {m['kv_view']} do not fit {f.n_kv_heads} KV heads of {f.head_dim}")  # fmt: skip
        sources = self.sources(rule, matches, "bqkv")
        if sources is not None:
            weights += [
                WeightPlan("bqkv_decode", sources, "fuse_qkv_bias", (1, 1, rows, f.qkv_size), "bfloat16", "TILE",
                           DRAM, per_layer=True),
                WeightPlan("bqkv_prefill", sources, "fuse_qkv_bias", (1, f.qkv_size), "bfloat16", "TILE", DRAM,
                           per_layer=True),
            ]  # fmt: skip
        wqkv, wo = weights[0], weights[1]
        kv_dtype = self.precision.kv_cache
        cache = self.t(self.kv_cache_shape(), kv_dtype)
        state = self.state(weights) | {"k_cache": cache, "v_cache": cache}
        heads_mem = height_sharded(TILE, f.head_dim, rows, self.grid)
        sdpa_op = self._spec_op(rule, "sdpa")
        sdpa_compute_d = self.compute(sdpa_op.fidelity_key("decode"))
        sdpa_compute_p = self.compute(sdpa_op.fidelity_key("prefill"))
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
        params = {
            "x": self.t((1, 1, rows, f.dim), memory=self.residual_mem()),
            "current_pos": self.t((rows,), "int32", DRAM, "ROW_MAJOR"),
            "cos": self.t((1, rows, 1, f.head_dim), "bfloat16", heads_mem),
            "sin": self.t((1, rows, 1, f.head_dim), "bfloat16", heads_mem),
            "trans_mat": self.t((1, 1, TILE * rows, TILE), "bfloat16", height_sharded(TILE, TILE, rows, self.grid)),
        }  # fmt: skip
        if paged:
            params["page_table"] = self.t((rows, self.spec.target.max_seq_len // self.spec.target.block_size),
                                          "int32", DRAM, "ROW_MAJOR")  # fmt: skip
        b = self.builder(params, state)
        self.decode_matmul(b, "qkv", self._spec_op(rule, "qkv"), "x", wqkv, "xqkv")
        b.call("qkv_interleaved", "ttnn.sharded_to_interleaved", [Ref("xqkv"), Const("L1", L1)], outs=("xqkv_l1",),
               out=self.t((1, 1, rows, f.qkv_size), memory=L1))  # fmt: skip
        heads_in = "xqkv_l1"
        if sources is not None:
            b.call("qkv_bias", "ttnn.add", [Ref("xqkv_l1"), Ref("self.bqkv_decode")], {"memory_config": Const("L1", L1)},
                   outs=("xqkv_biased",), out=self.t((1, 1, rows, f.qkv_size), memory=L1))  # fmt: skip
            heads_in = "xqkv_biased"
        q_t = self.t((1, rows, f.n_heads, f.head_dim), memory=heads_mem)
        kv_t = self.t((1, rows, f.n_kv_heads, f.head_dim), memory=heads_mem)
        b.call("create_heads", "ttnn.experimental.nlp_create_qkv_heads_decode", [Ref(heads_in)],
               n_heads | {"memory_config": Lit("ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG")}, outs=("q", "k", "v"),
               out=(q_t, kv_t, kv_t))  # fmt: skip
        for which, t in (("q", q_t), ("k", kv_t)):
            b.call(f"rope_{which}", "ttnn.experimental.rotary_embedding_llama",
                   [Ref(which), Ref("cos"), Ref("sin"), Ref("trans_mat")], {"is_decode_mode": Lit("True")},
                   outs=(f"{which}_rot",), out=t)  # fmt: skip
        for which, value in (("k", "k_rot"), ("v", "v")):
            b.call(f"update_{which}", "ttnn.experimental.paged_update_cache", [Ref(f"self.{which}_cache"), Ref(value)],
                   {"update_idxs_tensor": Ref("current_pos")} | page)  # fmt: skip
        sdpa_pc = ProgCfg("sdpa", (min(8, self.grid[0]), min(8, self.grid[1])),
                          (("q_chunk_size", 0), ("k_chunk_size", 0), ("exp_approx_mode", False)))  # fmt: skip
        sdpa_fn = ("ttnn.transformer.paged_scaled_dot_product_attention_decode" if paged
                   else "ttnn.transformer.scaled_dot_product_attention_decode")  # fmt: skip
        b.call("sdpa", sdpa_fn, [Ref("q_rot"), Ref("self.k_cache"), Ref("self.v_cache"), *([Ref("page_table")] if paged else [])],
               {"cur_pos_tensor": Ref("current_pos"), "scale": scale, **window,
                "program_config": Const("SDPA_DECODE_PROGCFG", sdpa_pc),
                "compute_kernel_config": self.compute_const(sdpa_compute_d), "memory_config": Const("DRAM", DRAM)},
               outs=("attn",), out=self.t((1, rows, f.n_heads, f.head_dim)), program=sdpa_pc, compute=sdpa_compute_d,
               cb=2 * 2 * (256 // TILE) * (f.head_dim // TILE) * TILE_BYTES[kv_dtype],
               flops=4 * self.users * f.n_heads * f.head_dim * self.spec.target.max_seq_len)  # fmt: skip
        # nlp_concat_heads_decode wants its users on one core rectangle from (0, 0) (more ranges
        # mean sub-core grids): at most 8 columns, so 32 users form an 8x4 block on any device
        concat_in = height_sharded(TILE, f.head_dim, rows, (min(8, self.grid[0]), self.grid[1]))
        self.to_memory(
            b,
            "heads_to_l1",
            "attn",
            "attn_sharded",
            concat_in,
            Const("HEADS_DECODE_MEMCFG", concat_in),
        )
        concat_mem = MemCfg(
            "WIDTH_SHARDED", "L1", ranges_for(f.n_heads, self.grid), (TILE, f.head_dim)
        )
        b.call("concat_heads", "ttnn.experimental.nlp_concat_heads_decode", [Ref("attn_sharded")],
               {"num_heads": n_heads["num_heads"]}, outs=("attn_cat",),
               out=self.t((1, 1, rows, f.n_heads * f.head_dim), memory=concat_mem))  # fmt: skip
        self.decode_matmul(b, "wo", self._spec_op(rule, "wo"), "attn_cat", wo, "out")
        out = self.to_memory(
            b, "to_residual", "out", "residual", self.residual_mem(), self.residual_const()
        )
        sig_d = Signature("forward_decode", tuple(params), (out,))
        decode = b.finish(sig_d)

        # prefill
        sig_p = Signature("forward_prefill", ("x", "cos", "sin", "trans_mat", "user_id", *(["page_table"] if paged else [])),
                          ("out",))  # fmt: skip
        bias = weights[3] if sources is not None else None

        def prefill(s):
            p = {
                "x": self.t((1, 1, s, f.dim)),
                "cos": self.t((1, 1, s, f.head_dim), "bfloat16"),
                "sin": self.t((1, 1, s, f.head_dim), "bfloat16"),
                "trans_mat": self.t((1, 1, TILE, TILE), "bfloat16"),
            }
            if paged:
                p["page_table"] = params["page_table"]
            b = self.builder(p, state, s)
            qkv_cfg = self.prefill_matmul_config("qkv", self._spec_op(rule, "qkv"), p["x"], wqkv, s)
            if qkv_cfg[2] < s:
                self.chunk_rows(b, "qkv_chunk", "x", qkv_cfg[2], "QKV_PREFILL_CHUNKS")
            self.prefill_matmul(
                b, "qkv", self._spec_op(rule, "qkv"), "x", wqkv, "xqkv", qkv_cfg, bias=bias
            )
            if qkv_cfg[2] < s:
                self.unchunk_rows(b, "qkv_unchunk", "xqkv", "QKV_PREFILL_CHUNKS")
            qp = self.t((1, f.n_heads, s, f.head_dim))
            kp = self.t((1, f.n_kv_heads, s, f.head_dim))
            b.call("create_heads", "ttnn.experimental.nlp_create_qkv_heads", [Ref("xqkv")],
                   n_heads | {"transpose_k_heads": Lit("False"), "memory_config": Const("DRAM", DRAM)},
                   outs=("q", "k", "v"), out=(qp, kp, kp))  # fmt: skip
            for which, t in (("q", qp), ("k", kp)):
                b.call(f"rope_{which}", "ttnn.experimental.rotary_embedding_llama",
                       [Ref(which), Ref("cos"), Ref("sin"), Ref("trans_mat")], {"is_decode_mode": Lit("False")},
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
            sdpa_p = ProgCfg("sdpa", (min(8, self.grid[0]), min(8, self.grid[1])),
                             (("q_chunk_size", chunk), ("k_chunk_size", chunk), ("exp_approx_mode", False)))  # fmt: skip
            ct, ht = chunk // TILE, f.head_dim // TILE
            sdpa_cb = (2 * ct * ht * TILE_BYTES[kv_dtype] + 2 * 2 * ct * ht * TILE_BYTES[kv_dtype]
                       + ct * ct * TILE_BYTES["float32"] + 2 * ct * ht * TILE_BYTES["float32"])  # fmt: skip
            b.call("sdpa", "ttnn.transformer.scaled_dot_product_attention",
                   [Ref("q_cached"), Ref("k_cached"), Ref("v_cached")],
                   {"is_causal": Lit("True"), "scale": scale, **window,
                    "program_config": Const("SDPA_PREFILL_PROGCFG", sdpa_p),
                    "compute_kernel_config": self.compute_const(sdpa_compute_p)},
                   outs=("attn",), out=replace(qp, dtype=kv_dtype), program=sdpa_p, compute=sdpa_compute_p,
                   cb=sdpa_cb, flops=2 * 2 * f.n_heads * s * s * f.head_dim // 2)  # fmt: skip
            b.call("concat_heads", "ttnn.experimental.nlp_concat_heads", [Ref("attn")],
                   {"memory_config": Const("DRAM", DRAM)}, outs=("attn_cat",),
                   out=self.t((1, 1, s, f.n_heads * f.head_dim), kv_dtype))  # fmt: skip
            wo_cfg = self.prefill_matmul_config(
                "wo", self._spec_op(rule, "wo"), b.tensor("attn_cat"), wo, s
            )
            if wo_cfg[2] < s:
                self.chunk_rows(b, "wo_chunk", "attn_cat", wo_cfg[2], "WO_PREFILL_CHUNKS")
            self.prefill_matmul(b, "wo", self._spec_op(rule, "wo"), "attn_cat", wo, "out", wo_cfg)
            if wo_cfg[2] < s:
                self.unchunk_rows(b, "wo_unchunk", "out", "WO_PREFILL_CHUNKS")
            return b.finish(sig_p)

        return weights, {"decode": (sig_d, decode), "prefill": (sig_p, self._prefill(prefill))}

    def _lower_mlp(self, rule, matches):
        f, rows = self.facts, self.batch
        w1 = self.matmul_weight(
            "w1", self.sources(rule, matches, "w1"), f.dim, f.hidden_dim, "w1", "transpose"
        )
        w3 = self.matmul_weight(
            "w3", self.sources(rule, matches, "w3"), f.dim, f.hidden_dim, "w3", "transpose"
        )
        w2 = self.matmul_weight(
            "w2", self.sources(rule, matches, "w2"), f.hidden_dim, f.dim, "w2", "transpose"
        )
        self.consume(matches, "x")
        state = self.state([w1, w3, w2])
        gate_dtype = self.precision.mlp_gate
        silu = {
            "input_tensor_a_activations": Lit("[ttnn.UnaryOpType.SILU]"),
            "dtype": ttnn_dtype(gate_dtype),
        }

        b = self.builder({"x": self.t((1, 1, rows, f.dim), memory=self.residual_mem())}, state)
        ff1 = self.decode_matmul(b, "ff1", self._spec_op(rule, "ff1"), "x", w1, "w1_out")
        self.decode_matmul(b, "ff3", self._spec_op(rule, "ff3"), "x", w3, "w3_out")
        gated = replace(ff1.output, dtype=gate_dtype)
        b.call("gate_mul", "ttnn.mul", [Ref("w1_out"), Ref("w3_out")],
               silu | {"memory_config": Const("FF1_FF3_DECODE_OUTPUT_MEMCFG", ff1.output.memory)}, outs=("w2_in",),
               out=gated, flops=2 * self.users * f.hidden_dim)  # fmt: skip
        c2 = k_grid_cores(f.hidden_dim // TILE, self.grid, self.k_grid_target)
        ff2_in = width_sharded(rows, f.hidden_dim, c2, self.act_grid)
        x2 = self.to_memory(
            b,
            "to_ff2_input",
            "w2_in",
            "w2_in_sharded",
            ff2_in,
            Const("FF2_INPUT_DECODE_MEMCFG", ff2_in),
        )
        self.decode_matmul(b, "ff2", self._spec_op(rule, "ff2"), x2, w2, "w2_out")
        out = self.to_memory(
            b, "to_residual", "w2_out", "out", self.residual_mem(), self.residual_const()
        )
        sig_d = Signature("forward_decode", ("x",), (out,))
        decode = b.finish(sig_d)
        sig_p = Signature("forward_prefill", ("x",), ("out",))

        def prefill(s):
            xs = self.t((1, 1, s, f.dim))
            b = self.builder({"x": xs}, state, s)
            gx = self.t((1, 1, s, f.hidden_dim), gate_dtype)

            def configs(rows=None):
                return [self.prefill_matmul_config(n, self._spec_op(rule, n), x, w, s, rows=rows)
                        for n, x, w in (("ff1", xs, w1), ("ff3", xs, w3), ("ff2", gx, w2))]  # fmt: skip

            c1, c3, c2 = configs()
            chunk = min(c[2] for c in (c1, c3, c2))
            if chunk < s:  # one reshape of the MLP's input serves all three: one chunk size
                c1, c3, c2 = configs(chunk)
                self.chunk_rows(b, "chunk", "x", chunk, "PREFILL_CHUNKS")
            self.prefill_matmul(b, "ff1", self._spec_op(rule, "ff1"), "x", w1, "w1_out", c1)
            self.prefill_matmul(b, "ff3", self._spec_op(rule, "ff3"), "x", w3, "w3_out", c3)
            b.call("gate_mul", "ttnn.mul", [Ref("w1_out"), Ref("w3_out")], silu | {"memory_config": Const("DRAM", DRAM)},
                   outs=("w2_in",), out=replace(b.tensor("w1_out"), dtype=gate_dtype))  # fmt: skip
            self.prefill_matmul(b, "ff2", self._spec_op(rule, "ff2"), "w2_in", w2, "out", c2)
            if chunk < s:
                self.unchunk_rows(b, "unchunk", "out", "PREFILL_CHUNKS")
            return b.finish(sig_p)

        return [w1, w3, w2], {"decode": (sig_d, decode), "prefill": (sig_p, self._prefill(prefill))}

    def _lower_decoder(self, rule, matches):
        f, rows = self.facts, self.batch
        paged = self.spec.target.kv_cache == "paged"
        extra = ("page_table",) if paged else ()
        # the two residual adds, each of a sub-block's input and its update (the pre-norm layer)
        self.consume(matches, "residual", "update")

        def program(b, mode, attn_args, out_memory: Const):
            x = b.tensor("x")
            sub = f"forward_{mode}"
            b.call(
                "attention_norm", f"self.attention_norm.{sub}", [Ref("x")], outs=("attn_in",), out=x
            )
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
            b.call(
                "feed_forward", f"self.feed_forward.{sub}", [Ref("ff_in")], outs=("ff_out",), out=x
            )
            b.call("mlp_residual", "ttnn.add", [Ref("h"), Ref("ff_out")], {"memory_config": out_memory},
                   outs=("out",), out=x)  # fmt: skip

        d_params = {"x": self.t((1, 1, rows, f.dim), memory=self.residual_mem()),
                    "current_pos": self.t((rows,), "int32", DRAM, "ROW_MAJOR"),
                    "cos": self.t((1, rows, 1, f.head_dim), "bfloat16"), "sin": self.t((1, rows, 1, f.head_dim), "bfloat16"),
                    "trans_mat": self.t((1, 1, TILE * rows, TILE), "bfloat16")}  # fmt: skip
        if paged:
            d_params["page_table"] = self.t((rows, 1), "int32", DRAM, "ROW_MAJOR")
        b = self.builder(d_params, {})
        program(
            b,
            "decode",
            [Ref(n) for n in ("current_pos", "cos", "sin", "trans_mat", *extra)],
            self.residual_const(),
        )
        sig_d = Signature("forward_decode", tuple(d_params), ("out",), consumes=("x",))
        decode = b.finish(sig_d)
        sig_p = Signature("forward_prefill", ("x", "cos", "sin", "trans_mat", "user_id", *extra), ("out",),
                          consumes=("x",))  # fmt: skip

        def prefill(s):
            p = {"x": self.t((1, 1, s, f.dim)), "cos": self.t((1, 1, s, f.head_dim), "bfloat16"),
                 "sin": self.t((1, 1, s, f.head_dim), "bfloat16"), "trans_mat": self.t((1, 1, TILE, TILE), "bfloat16")}  # fmt: skip
            if paged:
                p["page_table"] = d_params["page_table"]
            b = self.builder(p, {}, s)
            args = [
                Ref("cos"),
                Ref("sin"),
                Ref("trans_mat"),
                Lit("user_id"),
                *(Ref(n) for n in extra),
            ]
            program(b, "prefill", args, Const("DRAM", DRAM))
            return b.finish(sig_p)

        return [], {"decode": (sig_d, decode), "prefill": (sig_p, self._prefill(prefill))}

    def _lower_lm_head(self, rule, matches):
        f, rows = self.facts, self.batch
        spec_op = self._spec_op(rule, "lm_head")
        (src,) = self.sources(rule, matches, "lm_head", relative=False)
        self.consume(matches, "x")
        cores = self.residual_cores()
        splits = self.lm_head_splits(
            cores, self.compute(spec_op.fidelity_key("decode") if spec_op else None)
        )
        weights, start = [], 0
        for i, width in enumerate(splits):
            weights.append(WeightPlan(f"weight_{i}", (src,), f"vocab_slice:{start}:{start + width}", (f.dim, width),
                                      self.weight_dtype("lm_head"), "TILE",
                                      dram_weight_memcfg(f.dim, width, self.device.dram_banks), per_layer=False))  # fmt: skip
            start += width
        state = self.state(weights)
        logits_dtype = self.precision.logits

        def splits_program(b, x: str):
            outs = []
            for i, w in enumerate(weights):
                role = "lm_head" if w.shape == weights[0].shape else "lm_head_last"
                self.decode_matmul(
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
                       outs=(name,), out=self.t((1, 1, rows, w.shape[-1]), logits_dtype, L1))  # fmt: skip
                outs.append(name)
            if len(weights) > 1:
                b.call("concat", "ttnn.concat", [tuple(Ref(o) for o in outs)],
                       {"dim": Lit("-1"), "memory_config": Const("L1", L1)}, outs=("logits",),
                       out=self.t((1, 1, rows, f.vocab_size), logits_dtype, L1))  # fmt: skip

        x = self.t((1, 1, rows, f.dim), memory=self.residual_mem())
        b = self.builder({"x": x}, state)
        splits_program(b, "x")
        sig_d = Signature("forward_decode", ("x",), ("logits",))
        decode = b.finish(sig_d)
        sig_p = Signature("forward_prefill", ("x",), ("logits",))
        b = self.builder({"x": self.t((1, 1, TILE, f.dim))}, state)
        b.call("to_sharded", "ttnn.interleaved_to_sharded", [Ref("x"), self.residual_const()], outs=("x_sharded",),
               out=x)  # fmt: skip
        splits_program(b, "x_sharded")
        prefill = b.finish(sig_p)
        return weights, {"decode": (sig_d, decode), "prefill": (sig_p, prefill)}

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
