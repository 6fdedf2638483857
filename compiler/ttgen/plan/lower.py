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


def _at(spec_op: OpSpec | None) -> str:
    """`file:line: ` of the spec's entry for an op, when the spec has one."""
    return f"{spec_op.loc}: " if spec_op is not None else ""


@dataclass
class Lowering:
    spec: Spec
    device: DeviceProfile
    facts: ModelFacts
    precision: PrecisionSpec
    prefill_seq_lens: tuple[int, ...]
    prefill_grid: tuple[int, int] = BASELINE_PREFILL_GRID  # capped by the device grid
    k_grid_target: int = BASELINE_K_GRID_TARGET
    # the traced graphs by mode, for lowerings that prove a property of a captured value
    graphs: dict | None = None
    # where the blocks sit (the model kind's layout record), for lowerings that compose blocks
    layout: object | None = None

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
            raise PlanError(f"{self.precision.loc}: precision preset '{self.precision.name}' has no "
                            f"fidelity for '{key}' (an op of the spec's rules names it)")  # fmt: skip
        c = self.spec.compute_config(fid[key])
        return ComputeCfg(
            c.name, c.math_fidelity, c.math_approx_mode, c.fp32_dest_acc_en, c.packer_l1_acc
        )

    def weight_dtype(self, group: str) -> str:
        weights = dict(self.precision.weights)
        if group not in weights:
            raise PlanError(
                f"{self.precision.loc}: precision preset '{self.precision.name}' has no dtype for weight '{group}'"
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

    def _override(self, pc: ProgCfg, fields: dict, spec_op: OpSpec | None = None) -> ProgCfg:
        if not fields:
            return pc
        known = {k for k, _ in pc.fields}
        unknown = set(fields) - known
        if unknown:
            raise PlanError(
                f"{_at(spec_op)}program config field(s) {sorted(unknown)} do not exist in a {pc.kind} config"
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
                  const: Const | None = None, op: str = "ttnn.to_memory_config") -> str:  # fmt: skip
        """`ttnn.to_memory_config` (or `op`, e.g. `ttnn.reshard` between sharded layouts) unless `src`
        already has `memory` (then the real op returns its input, and the program passes the value
        on). Returns the name holding the result."""
        t = b.tensor(src)
        if t.memory == memory:
            return src
        cfg = const or Const(f"{out.upper()}_MEMCFG", memory)
        b.call(
            name,
            op,
            [Ref(src), cfg],
            outs=(out,),
            out=replace(t, memory=memory),
        )
        return out

    def layer_inputs(self, seq_len: int | None = None) -> dict[str, TensorPlan]:
        """What a decoder layer and its attention take besides the block's own state, as the
        embedding, the rotary setup and the model make them: decode (seq_len None) the residual,
        the positions, the per-user rotation tables, the transformation matrix and the page table
        if paged; prefill one user's sequence and the tables' first `seq_len` rows."""
        f, rows, target = self.facts, self.batch, self.spec.target
        if seq_len is None:
            heads = height_sharded(TILE, f.head_dim, rows, self.grid)
            inputs = {
                "x": self.t((1, 1, rows, f.dim), memory=self.residual_mem()),
                "current_pos": self.t((rows,), "int32", DRAM, "ROW_MAJOR"),
                "cos": self.t((1, rows, 1, f.head_dim), "bfloat16", heads),
                "sin": self.t((1, rows, 1, f.head_dim), "bfloat16", heads),
                "trans_mat": self.t((1, 1, TILE * rows, TILE), "bfloat16", height_sharded(TILE, TILE, rows, self.grid)),
            }  # fmt: skip
        else:
            inputs = {
                "x": self.t((1, 1, seq_len, f.dim)),
                "cos": self.t((1, 1, seq_len, f.head_dim), "bfloat16"),
                "sin": self.t((1, 1, seq_len, f.head_dim), "bfloat16"),
                "trans_mat": self.t((1, 1, TILE, TILE), "bfloat16"),
            }
        if target.kv_cache == "paged":
            blocks = target.max_seq_len // target.block_size
            inputs["page_table"] = self.t((rows, blocks), "int32", DRAM, "ROW_MAJOR")
        return inputs

    # ------------------------------------------------------------------ matmuls
    def decode_matmul(self, b: ProgramBuilder, name: str, spec_op, x: str, w: WeightPlan, out: str,
                      out_dtype=None, activation=None, role: str | None = None) -> OpPlan:  # fmt: skip
        """A DRAM-sharded decode matmul on a width-sharded activation. The call asks for
        L1_WIDTH_SHARDED output and the op places it: on the first ceil(N / per_core_N) cores of
        the device grid (the planned output's memory config; the ttnn lane compares it)."""
        kind, fields = self._choice(spec_op, "decode", "dram_sharded")
        if kind != "dram_sharded":
            raise PlanError(
                f"{_at(spec_op)}decode op {name}: program '{kind}' is not supported for decode matmuls (use dram_sharded)"
            )
        compute = self.compute(spec_op.fidelity_key("decode") if spec_op else None)
        xt = b.tensor(x)
        k, n = xt.shape[-1], w.shape[-1]
        cores = xt.memory.num_cores
        pc = self._override(
            dram_sharded_matmul(self.batch, k, n, cores, activation), fields, spec_op
        )
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
                f"{_at(spec_op)}prefill op {name}: program '{kind}' is not supported for prefill matmuls (use 2d)"
            )
        cap = fields.pop("rows", None)  # the spec's row-chunk cap (tt-transformers' prefill cutoff)
        if cap is not None:
            if cap % TILE:
                raise PlanError(
                    f"{_at(spec_op)}prefill op {name}: rows {cap} is not a multiple of {TILE}"
                )
            if cap < seq and seq % cap:
                raise PlanError(
                    f"{_at(spec_op)}prefill op {name}: rows {cap} does not divide seq_len {seq}"
                )
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
                pc = self._override(pc, fields, spec_op)
                if (
                    cb_matmul(pc, x.dtype, w.dtype, out_dtype, compute, False, False) <= budget
                    or fields
                ):
                    best = pc
                    break
            if best is None:
                if m_chunk <= 128:
                    raise PlanError(
                        f"{_at(spec_op)}prefill op {name}: no 2D matmul config fits L1 ({budget} B per core) for K={k}, N={n}"
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
        self, name: str, sources, k: int, n: int, group: str, transform: tuple
    ) -> WeightPlan:
        return WeightPlan(name, tuple(sources), transform, (k, n), self.weight_dtype(group), "TILE",
                          dram_weight_memcfg(k, n, self.device.dram_banks), per_layer=True)  # fmt: skip

    @staticmethod
    def state(weights) -> dict[str, TensorPlan]:
        return {w.name: TensorPlan(w.shape, w.dtype, w.layout, w.memory) for w in weights}

    # ------------------------------------------------------------------ templates
    def lower(self, rule: Rule, matches, decode_matches=()):
        """(weights, ((mode, ops), ...), ((mode, signature), ...)) of one rule's module."""
        from ttgen.blocks import get_block

        weights, programs = get_block(rule.template).lower(
            self, rule, matches, tuple(decode_matches)
        )
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
            raise PlanError(f"{rule.loc}: rule {rule.name}: weights.{key} come from different parameters per instance: "
                            f"{sorted(map(str, found))}")  # fmt: skip
        return found.pop()

    @staticmethod
    def consume(matches, *names: str) -> None:
        """Captures the block implements without reading a value: the tensors its program takes as
        parameters, the buffers its own tables replace."""
        for m in matches:
            for n in names:
                m.get(n)

    def spec_op(self, rule: Rule, name: str) -> OpSpec | None:
        return next((o for o in rule.ops if o.name == name), None)

    def prefill_variants(self, build) -> list[OpPlan]:
        """The prefill program at every planned length: `build(seq_len)` → ops."""
        return [op for s in self.prefill_seq_lens for op in build(s)]

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
