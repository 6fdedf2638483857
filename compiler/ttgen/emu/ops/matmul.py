"""`ttnn.matmul` and `ttnn.linear`: shape contracts, program-config validation, math fidelity and
destination accumulation.

Fidelity (tech_reports/matrix_engine): the FPU multiplies SrcA (1 hidden + 4 mantissa bits per pass)
by SrcB (1 + 6 bits per pass); operands are *truncated* into those fields. in1 (the weights) goes to
SrcA and in0 (the activations) to SrcB; the source registers hold 10 mantissa bits. Per pass:
LoFi A_hi*B_hi; HiFi2 adds A_lo*B_hi; HiFi3 adds A_hi*B_lo; HiFi4 adds A_lo*B_lo.

Accumulation: with `fp32_dest_acc_en` partial sums stay fp32; otherwise the dest register holds
bf16, so the running sum is rounded to bf16 after every 32-deep K tile.
"""

from __future__ import annotations

import math

import torch

from ttgen.emu.errors import fatal, require
from ttgen.emu.ops._op import check_tile, device_op, make_tensor, on_device
from ttgen.emu.ops.eltwise import _unary
from ttgen.emu.tensor import Tensor
from ttgen.emu.types import (
    DRAM_MEMORY_CONFIG,
    BufferType,
    CoreCoord,
    CoreRange,
    CoreRangeSet,
    MathFidelity,
    MatmulMultiCoreReuseMultiCast1DProgramConfig,
    MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig,
    MatmulMultiCoreReuseMultiCastProgramConfig,
    MatmulMultiCoreReuseProgramConfig,
    MemoryConfig,
    ShardOrientation,
    ShardSpec,
    TensorMemoryLayout,
    WormholeComputeKernelConfig,
    ceil_div,
    num_cores_to_corerangeset,
)

__all__ = ["fidelity_matmul", "linear", "matmul"]

_DEFAULT_MATMUL_KERNEL = WormholeComputeKernelConfig(math_fidelity=MathFidelity.LoFi)


def _truncate(x: torch.Tensor, mantissa_bits: int) -> torch.Tensor:
    """Keep the top `mantissa_bits` explicit mantissa bits of each fp32 value (bit-masking)."""
    mask = ~((1 << (23 - mantissa_bits)) - 1)
    return (x.to(torch.float32).contiguous().view(torch.int32) & mask).view(torch.float32)


def fidelity_matmul(
    act: torch.Tensor, weight: torch.Tensor, fidelity: MathFidelity, fp32_acc: bool
) -> torch.Tensor:
    """act [..., M, K] (SrcB) @ weight [..., K, N] (SrcA) as the matrix engine computes it."""
    require(
        fidelity != MathFidelity.Invalid,
        "math_fidelity is Invalid: set it in the compute kernel config",
    )
    b_hi, b_all = _truncate(act, 6), _truncate(act, 10)
    a_hi, a_all = _truncate(weight, 4), _truncate(weight, 8)
    terms = {
        MathFidelity.LoFi: [(b_hi, a_hi)],
        MathFidelity.HiFi2: [(b_hi, a_all)],
        MathFidelity.HiFi3: [(b_hi, a_all), (b_all - b_hi, a_hi)],
        MathFidelity.HiFi4: [(b_all, a_all)],
    }[fidelity]
    if fp32_acc:
        return sum(x @ w for x, w in terms)
    k = act.shape[-1]
    acc = None
    for k0 in range(0, k, 32):
        part = sum(x[..., k0 : k0 + 32] @ w[..., k0 : k0 + 32, :] for x, w in terms)
        acc = part if acc is None else acc + part
        acc = acc.to(torch.bfloat16).to(torch.float32)
    return acc


def _validate_subblocks(name: str, pc, kernel: WormholeComputeKernelConfig) -> None:
    dest = kernel.dest_tiles()
    h, w = pc.out_subblock_h, pc.out_subblock_w
    require(
        h * w <= dest,
        f"out_subblock_w {w} times out_subblock_h {h} needs to be at most {dest} to fit in hardware",
    )
    if w != pc.per_core_N:
        require(
            h == 1,
            f"{name}: out_subblock_h must be 1 when out_subblock_w ({w}) != per_core_N ({pc.per_core_N})",
        )


def _check_grid(device, grid: CoreCoord) -> None:
    full = device.compute_with_storage_grid_size()
    require(
        0 < grid.x <= full.x and 0 < grid.y <= full.y,
        f"compute_with_storage_grid_size ({grid.x}, {grid.y}) exceeds the device grid ({full.x}, {full.y})",
    )


def _grid_set(cols: int, rows: int) -> CoreRangeSet:
    return CoreRangeSet([CoreRange(CoreCoord(0, 0), CoreCoord(cols - 1, rows - 1))])


def _validate_program_config(
    pc, a: Tensor, b: Tensor, kernel, out_mc: MemoryConfig
) -> MemoryConfig:
    """Check `pc` against the operand shapes; return the output memory config with its shard spec."""
    device = a.device()
    pa, pb = a.padded_shape, b.padded_shape
    batch = math.prod(pa[:-2]) if len(pa) > 2 else 1
    mt_one, kt, nt = pa[-2] // 32, pa[-1] // 32, pb[-1] // 32
    name = type(pc).__name__
    for field_name in ("in0_block_w", "per_core_M", "per_core_N"):
        value = getattr(pc, field_name)
        require(value is not None and value > 0, f"{name}: {field_name} must be > 0, got {value}")
    require(
        kt % pc.in0_block_w == 0, f"K ({kt}) must be divisible by in0_block_w ({pc.in0_block_w})"
    )
    mp_total = batch * pa[-2]
    needs_spec = out_mc.is_sharded() and out_mc.shard_spec is None

    if isinstance(pc, MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig):
        require(
            a.memory_config().memory_layout == TensorMemoryLayout.WIDTH_SHARDED
            and a.memory_config().buffer_type == BufferType.L1,
            "DRAM-sharded matmul: input A must be WIDTH_SHARDED in L1",
        )
        require(
            b.memory_config().memory_layout == TensorMemoryLayout.WIDTH_SHARDED
            and b.memory_config().buffer_type == BufferType.DRAM,
            "DRAM-sharded matmul: input B must be WIDTH_SHARDED in DRAM",
        )
        require(
            out_mc.memory_layout == TensorMemoryLayout.WIDTH_SHARDED
            and out_mc.buffer_type == BufferType.L1,
            "DRAM-sharded matmul: output must be WIDTH_SHARDED in L1",
        )
        a_spec = a.memory_config().shard_spec
        shard_kt = a_spec.shape[1] // 32
        require(
            shard_kt % pc.in0_block_w == 0,
            f"DRAM-sharded matmul: in0 shard width ({shard_kt} tiles) must be divisible by in0_block_w ({pc.in0_block_w})",
        )
        require(
            pc.per_core_M * 32 >= mp_total,
            f"per_core_M ({pc.per_core_M}) * 32 must cover M ({mp_total})",
        )
        ncores = a_spec.num_cores()
        require(
            ceil_div(nt, pc.per_core_N) <= ncores,
            f"DRAM-sharded matmul: N ({nt} tiles) / per_core_N ({pc.per_core_N}) needs more than the {ncores} in0 cores",
        )
        if needs_spec:
            return out_mc.with_shard_spec(
                ShardSpec(a_spec.grid, [mp_total, pc.per_core_N * 32], ShardOrientation.ROW_MAJOR)
            )
        return out_mc

    grid = pc.compute_with_storage_grid_size
    _check_grid(device, grid)
    _validate_subblocks(name, pc, kernel)

    if isinstance(pc, MatmulMultiCoreReuseProgramConfig):
        require(
            pc.per_core_M % pc.out_subblock_h == 0,
            f"per_core_M ({pc.per_core_M}) must be divisible by out_subblock_h ({pc.out_subblock_h})",
        )
        require(
            pc.per_core_N % pc.out_subblock_w == 0,
            f"per_core_N ({pc.per_core_N}) must be divisible by out_subblock_w ({pc.out_subblock_w})",
        )
        require(not needs_spec, f"{name}: a sharded output needs an explicit shard spec")
        return out_mc

    require(
        pc.out_block_h % pc.out_subblock_h == 0,
        f"out_block_h ({pc.out_block_h}) must be divisible by out_subblock_h ({pc.out_subblock_h})",
    )
    require(
        pc.out_block_w % pc.out_subblock_w == 0,
        f"out_block_w ({pc.out_block_w}) must be divisible by out_subblock_w ({pc.out_subblock_w})",
    )
    require(
        pc.per_core_M % pc.out_block_h == 0,
        f"per_core_M ({pc.per_core_M}) must be divisible by out_block_h ({pc.out_block_h})",
    )
    require(
        pc.per_core_N % pc.out_block_w == 0,
        f"per_core_N ({pc.per_core_N}) must be divisible by out_block_w ({pc.out_block_w})",
    )
    fuse = pc.fuse_batch
    mt = mt_one * (batch if fuse else 1)

    if isinstance(pc, MatmulMultiCoreReuseMultiCastProgramConfig):
        rows, cols = (grid.x, grid.y) if pc.transpose_mcast else (grid.y, grid.x)
        require(
            pc.per_core_M * rows >= mt,
            f"per_core_M ({pc.per_core_M}) * grid rows ({rows}) must cover Mt ({mt})",
        )
        require(
            pc.per_core_N * cols >= nt,
            f"per_core_N ({pc.per_core_N}) * grid columns ({cols}) must cover Nt ({nt})",
        )
        if needs_spec:
            require(
                out_mc.memory_layout == TensorMemoryLayout.BLOCK_SHARDED,
                "2D multicast matmul: a sharded output must be BLOCK_SHARDED",
            )
            grid_set = _grid_set(ceil_div(nt, pc.per_core_N), ceil_div(mt, pc.per_core_M))
            return out_mc.with_shard_spec(
                ShardSpec(
                    grid_set, [pc.per_core_M * 32, pc.per_core_N * 32], ShardOrientation.ROW_MAJOR
                )
            )
        return out_mc

    if isinstance(pc, MatmulMultiCoreReuseMultiCast1DProgramConfig):
        ncores = grid.x * grid.y
        if pc.mcast_in0:
            require(
                pc.per_core_M >= mt,
                f"1D mcast_in0 matmul: per_core_M ({pc.per_core_M}) must cover Mt ({mt})",
            )
            used = ceil_div(nt, pc.per_core_N)
            require(
                used <= ncores,
                f"1D matmul: Nt ({nt}) / per_core_N ({pc.per_core_N}) = {used} blocks exceed {ncores} cores",
            )
            shard = [mt * 32, pc.per_core_N * 32]
            layout = TensorMemoryLayout.WIDTH_SHARDED
        else:
            require(
                pc.per_core_N >= nt,
                f"1D mcast_in1 matmul: per_core_N ({pc.per_core_N}) must cover Nt ({nt})",
            )
            used = ceil_div(mt, pc.per_core_M)
            require(
                used <= ncores,
                f"1D matmul: Mt ({mt}) / per_core_M ({pc.per_core_M}) = {used} blocks exceed {ncores} cores",
            )
            shard = [pc.per_core_M * 32, nt * 32]
            layout = TensorMemoryLayout.HEIGHT_SHARDED
        if needs_spec:
            require(
                out_mc.memory_layout == layout, f"1D matmul: a sharded output must be {layout.name}"
            )
            grid_set = num_cores_to_corerangeset(used, grid, row_wise=True)
            return out_mc.with_shard_spec(ShardSpec(grid_set, shard, ShardOrientation.ROW_MAJOR))
        return out_mc

    raise fatal(f"Unsupported program config {name}")


def _matmul(a: Tensor, b: Tensor, bias, transpose_a, transpose_b, memory_config, dtype, program_config,
            activation, compute_kernel_config) -> Tensor:  # fmt: skip
    on_device(a, "input_tensor_a")
    on_device(b, "input_tensor_b")
    check_tile(a, "input_tensor_a")
    check_tile(b, "input_tensor_b")
    va, vb = a.values().to(torch.float32), b.values().to(torch.float32)
    if transpose_a:
        va = va.transpose(-1, -2)
    if transpose_b:
        vb = vb.transpose(-1, -2)
    require(
        va.shape[-1] == vb.shape[-2],
        f"The width of the first tensor ({va.shape[-1]}) must be equal to the height of the second tensor ({vb.shape[-2]})",
    )
    a_batch, b_batch = list(va.shape[:-2]), list(vb.shape[:-2])
    require(
        math.prod(b_batch) == 1 or b_batch == a_batch[len(a_batch) - len(b_batch) :],
        f"bmm: batch dims of input B {b_batch} must be 1 or match input A {a_batch}",
    )
    kernel = compute_kernel_config or _DEFAULT_MATMUL_KERNEL
    out_mc = memory_config if memory_config is not None else DRAM_MEMORY_CONFIG
    if program_config is not None:
        out_mc = _validate_program_config(program_config, a, b, kernel, out_mc)
    elif out_mc.is_sharded() and out_mc.shard_spec is None:
        raise fatal(
            "matmul: a sharded output memory config without a shard spec needs a program config"
        )
    if math.prod(b_batch) == 1:
        vb = vb.reshape(vb.shape[-2], vb.shape[-1])
    acc = fidelity_matmul(va, vb, kernel.math_fidelity, kernel.fp32_dest_acc_en)
    if bias is not None:
        on_device(bias, "bias")
        check_tile(bias, "bias")
        bp = bias.padded_shape
        require(
            math.prod(bp[:-2]) == 1
            and bp[-2] == 32
            and bp[-1] == b.padded_shape[-1 if not transpose_b else -2],
            f"bias must be one tile row of width {vb.shape[-1]}, got padded shape {list(bp)}",
        )
        acc = acc + bias.values().to(torch.float32).reshape(-1)[: vb.shape[-1]]
        if not kernel.fp32_dest_acc_en:
            acc = acc.to(torch.bfloat16).to(torch.float32)
    fused = getattr(program_config, "fused_activation", None)
    require(
        fused is None or activation is None,
        "matmul: give either activation or program_config.fused_activation",
    )
    if fused is not None or activation is not None:
        acc = _unary(fused if fused is not None else activation, acc)
    return make_tensor(acc, dtype or a.dtype, a.layout, device=a.device(), memory_config=out_mc)


@device_op
def matmul(input_tensor_a, input_tensor_b, *, transpose_a=False, transpose_b=False, memory_config=None,
           dtype=None, program_config=None, activation=None, compute_kernel_config=None, core_grid=None,
           output_tile=None, optional_output_tensor=None, global_cb=None, sub_device_id=None,
           prefetcher_pipes=()) -> Tensor:  # fmt: skip
    return _matmul(input_tensor_a, input_tensor_b, None, transpose_a, transpose_b, memory_config, dtype,
                   program_config, activation, compute_kernel_config)  # fmt: skip


@device_op
def linear(input_tensor_a, input_tensor_b, *, bias=None, transpose_a=False, transpose_b=False,
           memory_config=None, dtype=None, program_config=None, activation=None,
           compute_kernel_config=None, core_grid=None, output_tile=None, optional_output_tensor=None,
           global_cb=None, sub_device_id=None, prefetcher_pipes=(), in0_column_offset=None) -> Tensor:  # fmt: skip
    return _matmul(input_tensor_a, input_tensor_b, bias, transpose_a, transpose_b, memory_config, dtype,
                   program_config, activation, compute_kernel_config)  # fmt: skip
