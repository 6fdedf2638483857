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

from ttgen.devices.rules import MatmulShapes, check_matmul_program_config, dram_sharded_cb_bytes
from ttgen.emu.errors import fatal, require, rules
from ttgen.emu.ops._op import (
    check_program_cbs,
    check_tile,
    device_op,
    launch,
    make_tensor,
    on_device,
    reserve_output,
)
from ttgen.emu.ops.eltwise import _unary
from ttgen.emu.scalars import scalar
from ttgen.emu.tensor import Tensor
from ttgen.emu.types import (
    DRAM_MEMORY_CONFIG,
    BufferType,
    CoreCoord,
    CoreRange,
    CoreRangeSet,
    DataType,
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


def _truncate(x: torch.Tensor, mantissa_bits: int, have: int = 23) -> torch.Tensor:
    """Keep the top `mantissa_bits` explicit mantissa bits of each fp32 value (bit-masking). Values
    known to carry at most `have` bits (their dtype's) pass through untouched when they already fit."""
    if have <= mantissa_bits:
        return x
    mask = scalar(~((1 << (23 - mantissa_bits)) - 1), torch.int32)
    return (x.float().contiguous().view(torch.int32) & mask).view(torch.float32)


def fidelity_matmul(
    act: torch.Tensor,
    weight: torch.Tensor,
    fidelity: MathFidelity,
    fp32_acc: bool,
    weight_fields=None,
    *,
    act_bits: int = 23,
    weight_bits: int = 23,
) -> torch.Tensor:
    """act [..., M, K] (SrcB) @ weight [..., K, N] (SrcA) as the matrix engine computes it.

    `act_bits`/`weight_bits`: the explicit mantissa bits the operands' dtypes can hold (23 when
    unknown); only the fields a fidelity needs are cut, and only when they are narrower."""
    require(
        fidelity != MathFidelity.Invalid,
        "math_fidelity is Invalid: set it in the compute kernel config",
    )

    def srca(bits):  # the weight's 4-bit (hi) or 8-bit (all) field
        if weight_fields is not None:
            return weight_fields[0 if bits == 4 else 1]
        return _truncate(weight, bits, weight_bits)

    if fidelity == MathFidelity.LoFi:
        terms = [(_truncate(act, 6, act_bits), srca(4))]
    elif fidelity == MathFidelity.HiFi2:
        terms = [(_truncate(act, 6, act_bits), srca(8))]
    elif fidelity == MathFidelity.HiFi3:
        b_hi = _truncate(act, 6, act_bits)
        terms = [(b_hi, srca(8)), (_truncate(act, 10, act_bits) - b_hi, srca(4))]
    else:
        terms = [(_truncate(act, 10, act_bits), srca(8))]
    if fp32_acc:
        out = terms[0][0] @ terms[0][1]
        for x, w in terms[1:]:
            out = out + x @ w
        return out
    return _bf16_dest_accumulate(terms, act.shape[-1])


# a matmul with at least this much arithmetic runs on torch's intra-op threads (smaller ones are
# faster single-threaded on the emulating CPU; see ops._op.launch)
_PARALLEL_MIN_FLOPS = 128e6

_PARTIALS_BUDGET = 1 << 24  # float32 elements of K-tile partial products computed at once


def _bf16_dest_accumulate(terms, k: int) -> torch.Tensor:
    """Sum over 32-deep K tiles with the running sum rounded to bf16 after each tile (the dest
    register's format). Per-tile products are computed a batch of tiles at a time, then added in
    order."""
    kt = -(-k // 32)
    pad = kt * 32 - k
    tiled = []
    for x, w in terms:
        if pad:
            x = torch.nn.functional.pad(x, (0, pad))
            w = torch.nn.functional.pad(w, (0, 0, 0, pad))
        if w.dim() == 2:  # one weight for every row: a plain [Kt, rows, 32] @ [Kt, 32, N] bmm
            xs = x.reshape(-1, kt, 32).transpose(0, 1)  # [Kt, rows, 32]
            ws = w.reshape(kt, 32, w.shape[-1])  # [Kt, 32, N]
        else:
            xs = x.reshape(*x.shape[:-1], kt, 32).movedim(-2, 0)  # [Kt, ..., M, 32]
            ws = w.reshape(*w.shape[:-2], kt, 32, w.shape[-1]).movedim(-3, 0)  # [Kt, ..., 32, N]
            for _ in range(x.dim() - w.dim()):  # align a broadcast weight with the batch dims
                ws = ws.unsqueeze(1)
        tiled.append((xs, ws))
    out_elems = tiled[0][0][0].shape[:-1].numel() * tiled[0][1].shape[-1]
    step = max(1, _PARTIALS_BUDGET // max(1, out_elems))
    total = None
    for start in range(0, kt, step):
        end = min(kt, start + step)
        parts = torch.matmul(tiled[0][0][start:end], tiled[0][1][start:end])
        for xs, ws in tiled[1:]:
            parts += torch.matmul(xs[start:end], ws[start:end])
        for i in range(end - start):
            if total is None:
                total = parts[i].bfloat16()
            else:  # bf16 + fp32 is computed in fp32 and rounded once into the bf16 output
                torch.add(total, parts[i], out=total)
    out_shape = (*terms[0][0].shape[:-1], terms[0][1].shape[-1])
    return total.float().reshape(out_shape)


def _grid_set(cols: int, rows: int) -> CoreRangeSet:
    return CoreRangeSet([CoreRange(CoreCoord(0, 0), CoreCoord(cols - 1, rows - 1))])


_KINDS = {
    MatmulMultiCoreReuseProgramConfig: "reuse",
    MatmulMultiCoreReuseMultiCastProgramConfig: "2d",
    MatmulMultiCoreReuseMultiCast1DProgramConfig: "1d",
    MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig: "dram_sharded",
}


def _validate_program_config(
    pc, a: Tensor, b: Tensor, kernel, out_mc: MemoryConfig
) -> MemoryConfig:
    """Check `pc` against the operand shapes (shared rules); return the output memory config with
    its shard spec filled in as the op would."""
    kind = _KINDS.get(type(pc))
    require(kind is not None, lambda: f"Unsupported program config {type(pc).__name__}")
    device = a.device()
    pa, pb = a.padded_shape, b.padded_shape
    batch = math.prod(pa[:-2]) if len(pa) > 2 else 1
    mt_one, kt, nt = pa[-2] // 32, pa[-1] // 32, pb[-1] // 32
    a_mc = a.memory_config()
    in0_spec = (
        a_mc.shard_spec
        if a_mc.memory_layout == TensorMemoryLayout.WIDTH_SHARDED
        and a_mc.buffer_type == BufferType.L1
        else None
    )
    if kind == "dram_sharded":
        require(in0_spec is not None, "DRAM-sharded matmul: input A must be WIDTH_SHARDED in L1")
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
    shapes = MatmulShapes(
        mt=mt_one, kt=kt, nt=nt, batch=batch,
        in0_shard_kt=in0_spec.shape[1] // 32 if in0_spec else None,
        in0_cores=in0_spec.num_cores() if in0_spec else None,
    )  # fmt: skip
    full = device.compute_with_storage_grid_size()
    grid = getattr(pc, "compute_with_storage_grid_size", None)
    if kind == "2d" and a_mc.memory_layout == TensorMemoryLayout.BLOCK_SHARDED:
        # a block-sharded in0 is multicast from its shards: one shard per block of rows (0.81.1)
        shard_h, shard_w = (d // 32 for d in a_mc.shard_spec.shape)
        require(pc.per_core_M == shard_h,
                lambda: f"per_core_M == (shard_shape[0] / in0_tile.get_height()): per_core_M {pc.per_core_M}, "
                        f"shard height {shard_h} tiles")  # fmt: skip
        require(shard_w % pc.in0_block_w == 0,
                lambda: f"(shard_shape[1] / in0_tile.get_width()) % program_config.in0_block_w == 0: shard width "
                        f"{shard_w} tiles, in0_block_w {pc.in0_block_w}")  # fmt: skip
    with rules():
        check_matmul_program_config(
            kind, pc, shapes, dest=kernel.dest_tiles(), compute_grid=(full.x, full.y),
            grid=(grid.x, grid.y) if grid is not None else None,
        )  # fmt: skip
    if not (out_mc.is_sharded() and out_mc.shard_spec is None):
        return out_mc
    mt = mt_one * (batch if getattr(pc, "fuse_batch", True) else 1)
    if kind == "dram_sharded":
        # the output lives on the first ceil(N / per_core_N) cores of the device grid, row by row
        # (found by the ttnn lane: 384 columns at per_core_N 2 use cores 0-5 of row 0; 18 cores
        # on a P150 fill its 13-wide first row)
        shard = [mt_one * batch * 32, pc.per_core_N * 32]
        grid_set = num_cores_to_corerangeset(ceil_div(nt, pc.per_core_N), full, row_wise=True)
    elif kind == "2d":
        require(
            out_mc.memory_layout == TensorMemoryLayout.BLOCK_SHARDED,
            "2D multicast matmul: a sharded output must be BLOCK_SHARDED",
        )
        shard = [pc.per_core_M * 32, pc.per_core_N * 32]
        grid_set = _grid_set(ceil_div(nt, pc.per_core_N), ceil_div(mt, pc.per_core_M))
    elif kind == "reuse":
        # one block of per_core_M x per_core_N output tiles per core, on the program grid row by row
        blocks = ceil_div(mt_one * batch, pc.per_core_M) * ceil_div(nt, pc.per_core_N)
        require(blocks <= grid.x * grid.y,
                lambda: f"target_num_cores <= total_available_cores: {blocks} blocks of output on a "
                        f"{grid.x}x{grid.y} grid")  # fmt: skip
        shard = [pc.per_core_M * 32, pc.per_core_N * 32]
        grid_set = num_cores_to_corerangeset(blocks, grid, row_wise=True)
    elif kind == "1d":
        layout = (
            TensorMemoryLayout.WIDTH_SHARDED if pc.mcast_in0 else TensorMemoryLayout.HEIGHT_SHARDED
        )
        require(
            out_mc.memory_layout == layout,
            lambda: f"1D matmul: a sharded output must be {layout.name}",
        )
        if pc.mcast_in0:
            shard, used = [mt * 32, pc.per_core_N * 32], ceil_div(nt, pc.per_core_N)
        else:
            shard, used = [pc.per_core_M * 32, nt * 32], ceil_div(mt, pc.per_core_M)
        grid_set = num_cores_to_corerangeset(used, grid, row_wise=True)
    else:
        raise fatal(f"{type(pc).__name__}: a sharded output needs an explicit shard spec")
    return out_mc.with_shard_spec(ShardSpec(grid_set, shard, ShardOrientation.ROW_MAJOR))


def _check_dram_sharded_cbs(pc, a: Tensor, b: Tensor, kernel, out_dtype) -> None:
    """The circular buffers the DRAM-sharded program allocates on each reader core must fit."""
    device = a.device()
    profile, grid = device.profile, device.compute_with_storage_grid_size()
    total = dram_sharded_cb_bytes(
        kt=a.padded_shape[-1] // 32, nt=b.padded_shape[-1] // 32, in0_block_w=pc.in0_block_w,
        per_core_m=pc.per_core_M, dram_banks=profile.dram_banks, in0_tile=a.dtype.tile_bytes,
        w_tile=b.dtype.tile_bytes, out_tile=out_dtype.tile_bytes,
        fp32_dest_acc_en=kernel.fp32_dest_acc_en, packer_l1_acc=kernel.packer_l1_acc,
        out_is_bf16=out_dtype == DataType.BFLOAT16,
    )  # fmt: skip
    check_program_cbs(device, total, CoreRange(CoreCoord(0, 0), CoreCoord(grid.x - 1, grid.y - 1)))


def _weight_fields(b: Tensor, vb: torch.Tensor, transposed: bool):
    """SrcA's 4-bit and 8-bit mantissa fields of `b`, kept on the tensor while its storage is
    unchanged: weights are truncated once, not on every call."""
    cached = getattr(b, "_srca_fields", None)
    if cached is not None and cached[0] is b._data and cached[1] == transposed:
        return cached[2]
    bits = b.dtype.mantissa_bits
    fields = (_truncate(vb, 4, bits), _truncate(vb, 8, bits))
    b._srca_fields = (b._data, transposed, fields)
    return fields


def _matmul(a: Tensor, b: Tensor, bias, transpose_a, transpose_b, memory_config, dtype, program_config,
            activation, compute_kernel_config) -> Tensor:  # fmt: skip
    on_device(a, "input_tensor_a")
    on_device(b, "input_tensor_b")
    check_tile(a, "input_tensor_a")
    check_tile(b, "input_tensor_b")
    sa, sb = list(a.shape), list(b.shape)
    if transpose_a:
        sa[-2:] = sa[-1], sa[-2]
    if transpose_b:
        sb[-2:] = sb[-1], sb[-2]
    require(
        sa[-1] == sb[-2],
        lambda: (
            f"The width of the first tensor ({sa[-1]}) must be equal to the height of the second tensor ({sb[-2]})"
        ),
    )
    a_batch, b_batch = sa[:-2], sb[:-2]
    require(
        math.prod(b_batch) == 1 or b_batch == a_batch[len(a_batch) - len(b_batch) :],
        lambda: f"bmm: batch dims of input B {b_batch} must be 1 or match input A {a_batch}",
    )
    kernel = compute_kernel_config or _DEFAULT_MATMUL_KERNEL
    require(
        kernel.math_fidelity != MathFidelity.Invalid,
        "math_fidelity is Invalid: set it in the compute kernel config",
    )
    out_mc = memory_config if memory_config is not None else DRAM_MEMORY_CONFIG
    if program_config is not None:
        out_mc = _validate_program_config(program_config, a, b, kernel, out_mc)
    elif out_mc.is_sharded() and out_mc.shard_spec is None:
        raise fatal(
            "matmul: a sharded output memory config without a shard spec needs a program config"
        )
    out_dtype = dtype or a.dtype
    # the output exists before the program's circular buffers are placed (they must not reach it)
    out = reserve_output([*sa[:-1], sb[-1]], out_dtype, a.layout, a.device(), out_mc)
    if isinstance(program_config, MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig):
        _check_dram_sharded_cbs(program_config, a, b, kernel, out_dtype)
    n = sb[-1]
    if bias is not None:
        on_device(bias, "bias")
        check_tile(bias, "bias")
        bp = bias.padded_shape
        require(
            math.prod(bp[:-2]) == 1
            and bp[-2] == 32
            and bp[-1] == b.padded_shape[-1 if not transpose_b else -2],
            lambda: f"bias must be one tile row of width {n}, got padded shape {list(bp)}",
        )
    fused = getattr(program_config, "fused_activation", None)
    require(
        fused is None or activation is None,
        "matmul: give either activation or program_config.fused_activation",
    )
    unary = fused if fused is not None else activation
    fidelity, fp32_acc = kernel.math_fidelity, kernel.fp32_dest_acc_en
    shared_b = math.prod(b_batch) == 1

    def run() -> None:
        va, vb = a.values().float(), b.values().float()
        if transpose_a:
            va = va.transpose(-1, -2)
        if transpose_b:
            vb = vb.transpose(-1, -2)
        if shared_b:
            vb = vb.reshape(vb.shape[-2], vb.shape[-1])
        acc = fidelity_matmul(va, vb, fidelity, fp32_acc, _weight_fields(b, vb, transpose_b),
                              act_bits=a.dtype.mantissa_bits)  # fmt: skip
        if bias is not None:
            acc = acc + bias.values().float().reshape(-1)[:n]
            if not fp32_acc:
                acc = acc.bfloat16().float()
        if unary is not None:
            acc = _unary(unary, acc)
        # a bf16 dest already holds bf16 values: a bf16 output stores them as they are
        exact = DataType.BFLOAT16 if not fp32_acc and bias is None and unary is None else None
        make_tensor(acc, out_dtype, a.layout, out=out, source=exact)

    batch = math.prod(sa[:-2]) if len(sa) > 2 else 1
    launch(run, parallel=2 * batch * sa[-2] * sa[-1] * sb[-1] >= _PARALLEL_MIN_FLOPS)
    return out


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
