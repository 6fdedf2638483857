"""Plan values → the Python expressions generated code uses (formatting only: no decisions)."""

from __future__ import annotations

from ttgen.plan.types import ComputeCfg, MemCfg, ProgCfg

__all__ = [
    "compute_expr",
    "const_expr",
    "dtype_expr",
    "layout_expr",
    "mem_expr",
    "text",
    "prog_expr",
    "weight_expr",
]

_LAYOUT = {"TILE": "ttnn.TILE_LAYOUT", "ROW_MAJOR": "ttnn.ROW_MAJOR_LAYOUT"}


def dtype_expr(dtype: str) -> str:
    return f"ttnn.{dtype}"


def layout_expr(layout: str) -> str:
    return _LAYOUT[layout]


def _core_range_set(ranges) -> str:
    items = ", ".join(
        f"ttnn.CoreRange(ttnn.CoreCoord({x0}, {y0}), ttnn.CoreCoord({x1}, {y1}))"
        for x0, y0, x1, y1 in ranges
    )
    return f"ttnn.CoreRangeSet({{{items}}})"


def mem_expr(mem: MemCfg) -> str:
    if not mem.sharded:
        return f"ttnn.{mem.buffer}_MEMORY_CONFIG"
    spec = f"ttnn.ShardSpec({_core_range_set(mem.ranges)}, [{mem.shard[0]}, {mem.shard[1]}], ttnn.ShardOrientation.{mem.orientation})"
    return f"ttnn.MemoryConfig(ttnn.TensorMemoryLayout.{mem.layout}, ttnn.BufferType.{mem.buffer}, {spec})"


def _activation(value) -> str:
    """A fused activation of a matmul program config: "SILU", or "GELU" (exact: the parameter is
    ttnn's fast-and-approximate flag, 0 as ttnn's own "gelu" string gives)."""
    if value is None:
        return "None"
    if value == "GELU":
        return "ttnn.UnaryWithParam(ttnn.UnaryOpType.GELU, 0.0)"
    return f"ttnn.UnaryWithParam(ttnn.UnaryOpType.{value})"


def prog_expr(pc: ProgCfg) -> str:
    f = dict(pc.fields)
    grid = f"({pc.grid[0]}, {pc.grid[1]})" if pc.grid else None
    if pc.kind == "dram_sharded":
        return (
            "ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig("
            f"in0_block_w={f['in0_block_w']}, per_core_M={f['per_core_M']}, per_core_N={f['per_core_N']}, "
            f"fused_activation={_activation(f['fused_activation'])})"
        )
    if pc.kind == "2d":
        return (
            "ttnn.MatmulMultiCoreReuseMultiCastProgramConfig("
            f"compute_with_storage_grid_size={grid}, in0_block_w={f['in0_block_w']}, "
            f"out_subblock_h={f['out_subblock_h']}, out_subblock_w={f['out_subblock_w']}, "
            f"out_block_h={f['out_block_h']}, out_block_w={f['out_block_w']}, "
            f"per_core_M={f['per_core_M']}, per_core_N={f['per_core_N']}, transpose_mcast={f['transpose_mcast']}, "
            f"fused_activation={_activation(f['fused_activation'])}, fuse_batch={f['fuse_batch']})"
        )
    if pc.kind == "reuse":
        return (
            "ttnn.MatmulMultiCoreReuseProgramConfig("
            f"compute_with_storage_grid_size={grid}, in0_block_w={f['in0_block_w']}, "
            f"out_subblock_h={f['out_subblock_h']}, out_subblock_w={f['out_subblock_w']}, "
            f"per_core_M={f['per_core_M']}, per_core_N={f['per_core_N']})"
        )
    if pc.kind == "sdpa":
        return (
            f"ttnn.SDPAProgramConfig(compute_with_storage_grid_size={grid}, q_chunk_size={f['q_chunk_size']}, "
            f"k_chunk_size={f['k_chunk_size']}, exp_approx_mode={f['exp_approx_mode']})"
        )
    if pc.kind == "softmax_sharded":
        return (
            f"ttnn.SoftmaxShardedMultiCoreProgramConfig(compute_with_storage_grid_size={grid}, "
            f"subblock_w={f['subblock_w']}, block_h={f['block_h']}, block_w={f['block_w']})"
        )
    if pc.kind == "norm_sharded":
        return (
            f"ttnn.LayerNormShardedMultiCoreProgramConfig(compute_with_storage_grid_size={grid}, "
            f"subblock_w={f['subblock_w']}, block_h={f['block_h']}, block_w={f['block_w']}, inplace={f['inplace']})"
        )
    raise ValueError(f"no expression for program config kind {pc.kind}")


def compute_expr(c: ComputeCfg) -> str:
    return (
        f"ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.{c.math_fidelity}, "
        f"math_approx_mode={c.math_approx_mode}, fp32_dest_acc_en={c.fp32_dest_acc_en}, packer_l1_acc={c.packer_l1_acc})"
    )


def const_expr(value) -> str:
    """The expression of a program constant (a config, a shape, a number)."""
    if isinstance(value, MemCfg):
        return mem_expr(value)
    if isinstance(value, ProgCfg):
        return prog_expr(value)
    if isinstance(value, ComputeCfg):
        return compute_expr(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(const_expr(v) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float)):
        return repr(value)
    raise ValueError(f"no expression for constant {value!r}")


def weight_expr(transform: tuple, source) -> str:
    """The torch expression of a typed weight transform (ttgen.plan.weights); `source(i)` spells
    the i-th source tensor. The one place that turns transforms into code."""

    def r(e) -> str:
        op = e[0]
        if op == "source":
            return source(e[1])
        if op == "transpose":
            return f"{r(e[1])}.T"
        if op == "concat":
            return f"torch.cat([{', '.join(r(p) for p in e[1])}], dim={e[2]})"
        if op == "rope_pairs":
            return f"to_interleaved_pairs({r(e[1])}, {e[2]})"
        if op == "slice":
            _, inner, dim, start, end = e
            return (
                f"{r(inner)}[{start}:{end}]"
                if dim == 0
                else f"{r(inner)}.narrow({dim}, {start}, {end - start})"
            )
        if op == "reshape":
            return f"{r(e[1])}.reshape({', '.join(e[2])})"
        if op == "rows":
            return f"{r(e[1])}.expand({e[2]}, -1)[None, None].contiguous()"
        if op == "unsqueeze":
            return f"{r(e[1])}[None]"
        if op == "add":
            return f"({r(e[1])} + {e[2]!r})"
        if op == "scale":
            return f"({r(e[1])} * {e[2]!r})"
        if op == "pad":
            return f"pad_to({r(e[1])}, {e[2]}, {e[3]})"
        if op == "permute":
            return f"{r(e[1])}.permute({', '.join(map(str, e[2]))})"
        if op == "expand":
            return f"{r(e[1])}.expand({', '.join(map(str, e[2]))}).contiguous()"
        raise ValueError(f"no expression for weight transform {op!r}")

    return r(transform)


def text(value) -> str:
    """Free text (a file name, a checkpoint folder's name) for a docstring or a comment: newlines,
    other unprintable characters, quotes and backslashes are escaped, so it cannot end the comment
    or the string it is in."""

    def escape(c: str) -> str:
        if c in '"\\':
            return "\\" + c
        return c if c.isprintable() else repr(c)[1:-1]

    return "".join(escape(c) for c in str(value))
