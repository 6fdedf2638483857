"""Normalisation and softmax: rms_norm, layer_norm (interleaved or sharded program config), softmax.

Statistics are computed in fp32; the normalised value is rounded to the dest format (bf16 unless
`fp32_dest_acc_en`) before the weight multiply, and the result to the output dtype."""

from __future__ import annotations

import math

import torch

from ttgen.devices.rules import (
    check_sharded_norm,
    interleaved_rms_norm_cb_bytes,
    sharded_rms_norm_cb_bytes,
)
from ttgen.emu.errors import require, rules
from ttgen.emu.ops._op import (
    check_program_cbs,
    check_tile,
    device_op,
    launch,
    make_tensor,
    on_device,
    reserve_output,
)
from ttgen.emu.scalars import scalar
from ttgen.emu.tensor import Tensor
from ttgen.emu.types import (
    DataType,
    LayerNormDefaultProgramConfig,
    LayerNormShardedMultiCoreProgramConfig,
    Layout,
    MathFidelity,
    TensorMemoryLayout,
    WormholeComputeKernelConfig,
    num_cores_to_corerangeset,
)

__all__ = ["layer_norm", "rms_norm", "softmax"]

_DEFAULT_NORM_KERNEL = WormholeComputeKernelConfig(
    math_fidelity=MathFidelity.HiFi4, fp32_dest_acc_en=False
)


def _vector(t: Tensor | None, width: int, name: str) -> torch.Tensor | None:
    """A norm weight/bias as a [width] vector: TILE [..., width] or ROW_MAJOR sticks [..., width/32, 32]."""
    if t is None:
        return None
    on_device(t, name)
    values = t.values().float()
    if t.layout == Layout.ROW_MAJOR:
        require(
            values.shape[-1] == 32,
            lambda: (
                f"{name}: a ROW_MAJOR {name} must be [..., W/32, 32] sticks, got {list(t.shape)}"
            ),
        )
    flat = values.reshape(-1)
    require(
        flat.numel() == width,
        lambda: f"{name}: {flat.numel()} values do not match the normalised width {width}",
    )
    return flat


def _validate_sharded(pc: LayerNormShardedMultiCoreProgramConfig, x: Tensor, out_mc) -> None:
    mc = x.memory_config()
    require(x.is_sharded(), "LayerNormShardedMultiCoreProgramConfig needs a sharded input")
    require(
        mc.memory_layout in (TensorMemoryLayout.WIDTH_SHARDED, TensorMemoryLayout.BLOCK_SHARDED),
        lambda: f"sharded norm input must be WIDTH or BLOCK sharded, got {mc.memory_layout.name}",
    )
    full, g = x.device().compute_with_storage_grid_size(), pc.compute_with_storage_grid_size
    box = mc.shard_spec.grid.bounding_box()
    with rules():
        check_sharded_norm(
            block_w=pc.block_w, block_h=pc.block_h, subblock_w=pc.subblock_w, shard=tuple(mc.shard_spec.shape),
            grid=(g.x, g.y), compute_grid=(full.x, full.y),
            shard_box=(box.end.x + 1, box.end.y + 1),
        )  # fmt: skip
    require(out_mc.is_sharded(), "a sharded norm writes a sharded output")
    if pc.inplace:
        require(out_mc == mc, "an inplace sharded norm needs the output memory config of its input")


def _check_sharded_rms_norm_cbs(pc, x: Tensor, kernel) -> None:
    """The circular buffers of a sharded rms_norm of one tile row with a weight (measured model of
    the real program; see devices/rules.py) must fit next to the reserved L1."""
    spec = x.memory_config().shard_spec
    total = sharded_rms_norm_cb_bytes(
        block_w=pc.block_w, num_cores=spec.num_cores(), fp32_dest_acc_en=kernel.fp32_dest_acc_en
    )
    check_program_cbs(x.device(), total, spec.grid.bounding_box())


def _check_interleaved_rms_norm_cbs(x: Tensor, kernel) -> None:
    """The multi-core interleaved rms_norm holds whole rows in circular buffers: a wide row
    overflows L1 (measured model of the real program; see devices/rules.py)."""
    device = x.device()
    grid = device.compute_with_storage_grid_size()
    total = interleaved_rms_norm_cb_bytes(
        width_tiles=x.padded_shape[-1] // 32, fp32_dest_acc_en=kernel.fp32_dest_acc_en
    )
    cores = min(math.prod(x.padded_shape[:-1]) // 32, grid.x * grid.y)
    check_program_cbs(
        device, total, num_cores_to_corerangeset(cores, grid, row_wise=True).bounding_box()
    )


def _norm(
    kind, x, epsilon, weight, bias, residual, memory_config, program_config, compute_kernel_config
):
    on_device(x)
    check_tile(x, f"{kind} input")
    kernel = compute_kernel_config or _DEFAULT_NORM_KERNEL
    out_mc = memory_config if memory_config is not None else x.memory_config()
    sharded = isinstance(program_config, LayerNormShardedMultiCoreProgramConfig)
    if sharded:
        _validate_sharded(program_config, x, out_mc)
    else:
        require(
            program_config is None or isinstance(program_config, LayerNormDefaultProgramConfig),
            lambda: f"unsupported norm program config {type(program_config).__name__}",
        )
        require(
            not x.is_sharded(),
            lambda: f"{kind}: a sharded input needs LayerNormShardedMultiCoreProgramConfig",
        )
    # the output exists before the program's circular buffers are placed (they must not reach it)
    out = reserve_output(x.shape, x.dtype, x.layout, x.device(), out_mc)
    modelled = kind == "rms_norm" and weight is not None and x.dtype == DataType.BFLOAT16
    if modelled and residual is None:
        if not sharded:
            _check_interleaved_rms_norm_cbs(x, kernel)
        elif weight.layout == Layout.ROW_MAJOR and program_config.block_h == 1:
            _check_sharded_rms_norm_cbs(program_config, x, kernel)
    if residual is not None:
        on_device(residual, "residual_input_tensor")
    width = x.shape[-1]
    for t, name in ((weight, "weight"), (bias, "bias")):
        if t is not None:
            _vector(t, width, name)
    fp32_dest = kernel.fp32_dest_acc_en
    eps = scalar(float(epsilon))

    def run() -> None:
        v = x.values().float()
        if residual is not None:
            v = v + residual.values().float()
        if kind == "rms_norm":
            normed = v * torch.rsqrt((v * v).mean(-1, keepdim=True) + eps)
        else:
            normed = (v - v.mean(-1, keepdim=True)) * torch.rsqrt(
                v.var(-1, unbiased=False, keepdim=True) + eps
            )
        if not fp32_dest:
            normed = normed.bfloat16().float()
        if weight is not None:
            normed = normed * _vector(weight, width, "weight")
        if bias is not None:
            normed = normed + _vector(bias, width, "bias")
        make_tensor(normed, x.dtype, x.layout, out=out)

    launch(run)
    return out


@device_op
def rms_norm(input_tensor, *, epsilon=1e-12, weight=None, bias=None, residual_input_tensor=None,
             memory_config=None, program_config=None, compute_kernel_config=None) -> Tensor:  # fmt: skip
    return _norm("rms_norm", input_tensor, epsilon, weight, bias, residual_input_tensor, memory_config,
                 program_config, compute_kernel_config)  # fmt: skip


@device_op
def layer_norm(input_tensor, *, epsilon=1e-12, weight=None, bias=None, residual_input_tensor=None,
               memory_config=None, program_config=None, compute_kernel_config=None, recip_tensor=None) -> Tensor:  # fmt: skip
    return _norm("layer_norm", input_tensor, epsilon, weight, bias, residual_input_tensor, memory_config,
                 program_config, compute_kernel_config)  # fmt: skip


@device_op
def softmax(
    input_tensor, dim=-1, *, memory_config=None, compute_kernel_config=None, numeric_stable=True
) -> Tensor:
    on_device(input_tensor)
    out = torch.softmax(input_tensor.values().float(), dim)
    return make_tensor(out, input_tensor.dtype, input_tensor.layout, device=input_tensor.device(),
                       memory_config=memory_config or input_tensor.memory_config())  # fmt: skip
