"""Normalisation and softmax: rms_norm, layer_norm (interleaved or sharded program config), softmax.

Statistics are computed in fp32; the normalised value is rounded to the dest format (bf16 unless
`fp32_dest_acc_en`) before the weight multiply, and the result to the output dtype."""

from __future__ import annotations

import math

import torch

from ttgen.devices.rules import (
    check_sharded_norm,
    interleaved_layer_norm_cb_bytes,
    interleaved_rms_norm_cb_bytes,
    sharded_rms_norm_cb_bytes,
)
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
from ttgen.emu.scalars import scalar
from ttgen.emu.tensor import Tensor
from ttgen.emu.types import (
    CoreCoord,
    DataType,
    LayerNormDefaultProgramConfig,
    LayerNormShardedMultiCoreProgramConfig,
    Layout,
    MathFidelity,
    SoftmaxDefaultProgramConfig,
    SoftmaxShardedMultiCoreProgramConfig,
    TensorMemoryLayout,
    WormholeComputeKernelConfig,
    num_cores_to_corerangeset,
)

__all__ = [
    "layer_norm",
    "rms_norm",
    "scale_mask_softmax",
    "scale_mask_softmax_in_place",
    "softmax",
    "softmax_in_place",
]

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


def _check_interleaved_norm_cbs(x: Tensor, kernel, kind: str = "rms_norm") -> None:
    """The multi-core interleaved norms hold whole rows in circular buffers: a wide row overflows
    L1 (measured models of the real programs; see devices/rules.py)."""
    device = x.device()
    grid = device.compute_with_storage_grid_size()
    model = interleaved_rms_norm_cb_bytes if kind == "rms_norm" else interleaved_layer_norm_cb_bytes
    total = model(width_tiles=x.padded_shape[-1] // 32, fp32_dest_acc_en=kernel.fp32_dest_acc_en)
    cores = min(math.prod(x.padded_shape[:-1]) // 32, grid.x * grid.y)
    check_program_cbs(
        device, total, num_cores_to_corerangeset(cores, grid, row_wise=True).bounding_box()
    )


def default_sharded_norm_config(x: Tensor) -> LayerNormShardedMultiCoreProgramConfig:
    """The program config tt-metal derives from a sharded input's shard spec when none is given:
    the shard grid's bounding box, one tile per subblock, one shard per core, not in place."""
    spec = x.memory_config().shard_spec
    box = spec.grid.bounding_box()
    return LayerNormShardedMultiCoreProgramConfig(
        compute_with_storage_grid_size=CoreCoord(box.end.x - box.start.x + 1, box.end.y - box.start.y + 1),
        subblock_w=1, block_h=spec.shape[0] // 32, block_w=spec.shape[1] // 32, inplace=False,
    )  # fmt: skip


def _norm(
    kind, x, epsilon, weight, bias, residual, memory_config, program_config, compute_kernel_config
):
    on_device(x)
    check_tile(x, f"{kind} input")
    kernel = compute_kernel_config or _DEFAULT_NORM_KERNEL
    out_mc = memory_config if memory_config is not None else x.memory_config()
    if out_mc.is_sharded() and out_mc.shard_spec is None and x.is_sharded():
        out_mc = out_mc.with_shard_spec(x.memory_config().shard_spec)  # the input's shards
    if program_config is None and x.is_sharded():
        program_config = default_sharded_norm_config(x)
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
            _check_interleaved_norm_cbs(x, kernel)
        elif weight.layout == Layout.ROW_MAJOR and program_config.block_h == 1:
            _check_sharded_rms_norm_cbs(program_config, x, kernel)
    layer_norm_modelled = (kind == "layer_norm" and weight is not None and bias is not None and residual is None
                           and x.dtype == DataType.BFLOAT16 and weight.layout == Layout.ROW_MAJOR)  # fmt: skip
    if layer_norm_modelled and not sharded:
        _check_interleaved_norm_cbs(x, kernel, "layer_norm")
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


DEFAULT_SOFTMAX_PROGRAM = SoftmaxDefaultProgramConfig()  # the in-place softmaxes' default


def _softmax_values(x: Tensor, dim: int, scale, mask: Tensor | None) -> torch.Tensor:
    """softmax(x * scale + mask) in fp32. A row-major mask [B, 1, W/32, 32] is one row of W values
    for every row; an interleaved tile mask of one row is added to every row, one of one tile row
    (32 rows) to every tile row of the input; a sharded mask has the input's shape."""
    v = x.values().float()
    if scale is not None:
        v = v * float(scalar(float(scale)))
    if mask is not None:
        m = mask.values().float()
        if mask.layout == Layout.ROW_MAJOR:
            m = m.reshape(m.shape[0], 1, 1, -1)[..., : v.shape[-1]]
        elif not mask.is_sharded() and m.shape[-2] == 32 and v.shape[-2] > 32:
            m = m.repeat(
                *([1] * (m.dim() - 2)), v.shape[-2] // 32, 1
            )  # tile row r: mask row r % 32
        try:
            v = v + m
        except RuntimeError:
            fatal(
                f"softmax: the mask {list(mask.shape)} does not broadcast to the input {list(x.shape)}"
            )
    return torch.softmax(v, dim)


def _check_softmax_input(x: Tensor, what: str) -> None:
    on_device(x)
    require(x.layout == Layout.TILE, f"{what}: Inputs to softmax must be tilized")
    require(
        x.dtype in (DataType.FLOAT32, DataType.BFLOAT16, DataType.BFLOAT8_B),
        lambda: (
            f"{what}: Input tensor must be FLOAT32, BFLOAT16, or BFLOAT8_B, got: {x.dtype.name}"
        ),
    )


def _check_mask(x: Tensor, mask: Tensor | None, scale, program_config, what: str) -> None:
    if mask is None:
        require(scale is None, f"{what}: Scale value must not be set when mask is not present")
        return
    on_device(mask, "mask")
    shape, mshape = x.padded_shape, mask.padded_shape
    if mask.is_sharded():
        require(mask.layout == Layout.TILE, f"{what}: Sharded mask must have TILE layout")
        require(
            tuple(mshape) == tuple(shape),
            f"{what}: Sharded mask shape must match input tensor shape",
        )
        return
    if mask.layout == Layout.ROW_MAJOR:
        expected = (mshape[0], 1, shape[-1] // 32, 32)
        require(tuple(mshape) == expected, lambda: f"{what}: Non-sharded mask shape must match expected shape {list(expected)}, got {list(mshape)}")  # fmt: skip
    else:
        rows = mask.shape[-2]
        require(rows in (1, 32), lambda: f"{what}: Mask height must be 1 or input tensor tile height (32), got: "
                f"{rows}. A full causal mask is not accepted here")  # fmt: skip
    for i in range(1, len(shape) - 2):
        require(mshape[i] == 1, f"{what}: Non-sharded mask intermediate dimensions must be 1")
    if isinstance(program_config, SoftmaxDefaultProgramConfig):
        require(
            shape[0] == mshape[0],
            lambda: (
                f"{what}: Input and mask batch sizes must match, got {list(shape)} for input and {list(mshape)} for mask"
            ),
        )


def _check_sharded_softmax(x: Tensor, pc: SoftmaxShardedMultiCoreProgramConfig, what: str) -> None:
    shape = x.padded_shape
    m, k = math.prod(shape) // shape[-1], shape[-1]
    require(x.is_sharded(), f"{what}: SoftmaxShardedMultiCoreProgramConfig needs a sharded input")
    require(m % 32 == 0, f"{what}: M must be divisible by tile height.")
    require(k % 32 == 0, f"{what}: K must be divisible by tile width.")
    require(
        pc.subblock_w > 0 and pc.block_w % pc.subblock_w == 0,
        f"{what}: block_w must be divisible by subblock_w.",
    )
    spec = x.memory_config().shard_spec
    require(
        pc.block_w * 32 == spec.shape[1],
        lambda: (
            f"{what}: block_w ({pc.block_w}) must match the shard width in tiles ({spec.shape[1] // 32}). "
            f"Shard shape is {list(spec.shape)} with tile width 32."
        ),
    )
    require(
        pc.block_w * 32 == shape[-1], f"{what}: shard width must equal to input tensor shape[3]!"
    )
    g = pc.compute_with_storage_grid_size
    require(
        pc.block_w * pc.block_h > 0 and m * k // (pc.block_w * pc.block_h * 1024) == g.x * g.y,
        lambda: (
            f"{what}: number of shards must equal to number of cores. M = {m}, K = {k}, block_w = "
            f"{pc.block_w}, block_h = {pc.block_h}, num_cores = {g.x * g.y}"
        ),
    )
    require(
        tuple(spec.shape) == (pc.block_h * 32, pc.block_w * 32),
        lambda: (
            f"{what}: the input's shard shape {list(spec.shape)} is not block_h x block_w tiles "
            f"({pc.block_h * 32} x {pc.block_w * 32})"
        ),
    )


def _softmax_in_place(what, x, dim, scale, mask, program_config) -> Tensor:
    """The in-place softmaxes: the result overwrites `x` (the same tensor is returned)."""
    _check_softmax_input(x, what)
    require(
        isinstance(
            program_config, (SoftmaxDefaultProgramConfig, SoftmaxShardedMultiCoreProgramConfig)
        ),
        lambda: f"{what}: unsupported program config {type(program_config).__name__}",
    )
    require(dim in (-1, len(x.shape) - 1), f"{what}: only the last dimension is supported in place")
    _check_mask(x, mask, scale, program_config, what)
    if isinstance(program_config, SoftmaxShardedMultiCoreProgramConfig):
        _check_sharded_softmax(x, program_config, what)

    def run() -> None:
        make_tensor(_softmax_values(x, -1, scale, mask), x.dtype, x.layout, out=x)

    launch(run)
    return x


@device_op
def softmax(
    input_tensor, dim=-1, *, memory_config=None, compute_kernel_config=None, numeric_stable=True
) -> Tensor:
    on_device(input_tensor)
    out = torch.softmax(input_tensor.values().float(), dim)
    return make_tensor(out, input_tensor.dtype, input_tensor.layout, device=input_tensor.device(),
                       memory_config=memory_config or input_tensor.memory_config())  # fmt: skip


@device_op
def softmax_in_place(input_tensor, dim=-1, *, program_config=DEFAULT_SOFTMAX_PROGRAM,
                     compute_kernel_config=None, numeric_stable=True) -> Tensor:  # fmt: skip
    return _softmax_in_place("softmax_in_place", input_tensor, dim, None, None, program_config)


@device_op
def scale_mask_softmax(input_tensor, scale=None, mask=None, *, memory_config=None, is_causal_mask=False,
                       compute_kernel_config=None, numeric_stable=True) -> Tensor:  # fmt: skip
    """softmax(x * scale + mask) over the last dim into a new tensor (interleaved program)."""
    _check_softmax_input(input_tensor, "scale_mask_softmax")
    _check_mask(input_tensor, mask, scale, SoftmaxDefaultProgramConfig(), "scale_mask_softmax")
    out = reserve_output(input_tensor.shape, input_tensor.dtype, Layout.TILE, input_tensor.device(),
                         memory_config or input_tensor.memory_config())  # fmt: skip

    def run() -> None:
        make_tensor(
            _softmax_values(input_tensor, -1, scale, mask), input_tensor.dtype, Layout.TILE, out=out
        )

    launch(run)
    return out


@device_op
def scale_mask_softmax_in_place(input_tensor, scale=None, mask=None, *, program_config=DEFAULT_SOFTMAX_PROGRAM,
                                is_causal_mask=False, compute_kernel_config=None, numeric_stable=False) -> Tensor:  # fmt: skip
    return _softmax_in_place(
        "scale_mask_softmax_in_place", input_tensor, -1, scale, mask, program_config
    )
