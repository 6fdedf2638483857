"""Tensor creation, host/device transfer, layout and data-movement ops (ttnn/operations/core.py and
data_movement in ttnn 0.81.1)."""

from __future__ import annotations

import builtins
import math
import os
from pathlib import Path

import torch

from ttgen.emu.errors import fatal, require
from ttgen.emu.ops._op import (
    check_tile,
    device_op,
    launch,
    make_tensor,
    on_device,
    reserve_output,
)
from ttgen.emu.tensor import Tensor, padded_shape_of
from ttgen.emu.types import (
    DRAM_MEMORY_CONFIG,
    BufferType,
    DataType,
    Layout,
    MemoryConfig,
    ShardSpec,
    TensorMemoryLayout,
)

__all__ = [
    "as_tensor", "clone", "concat", "copy_host_to_device_tensor", "deallocate", "from_device",
    "from_torch", "interleaved_to_sharded", "pad", "permute", "reshape", "sharded_to_interleaved",
    "slice", "tilize", "to_device", "to_layout", "to_memory_config", "to_torch", "transpose",
    "typecast", "unsqueeze_to_4D", "untilize",
]  # fmt: skip

_FROM_TORCH_DTYPE = {
    torch.float32: DataType.FLOAT32,
    torch.bfloat16: DataType.BFLOAT16,
    torch.int32: DataType.INT32,
    torch.uint8: DataType.UINT8,
}
_TO_TORCH_DTYPE = {
    DataType.FLOAT32: torch.float32, DataType.BFLOAT16: torch.bfloat16,
    DataType.BFLOAT8_B: torch.float32, DataType.BFLOAT4_B: torch.float32,
    DataType.UINT32: torch.uint32, DataType.INT32: torch.int32, DataType.UINT16: torch.int32,
    DataType.UINT8: torch.uint8, DataType.INT8: torch.int8,
}  # fmt: skip


def _no_host_io_in_capture(device, what: str) -> None:
    if device is not None and device.capturing is not None:
        raise fatal(f"{what} is not allowed while a trace is being captured (host I/O in a trace)")


def _rebuild(tensor: Tensor, values: torch.Tensor, *, dtype=None, layout=None, memory_config=None,
             pad_value: float = 0.0, moved: bool = True) -> Tensor:  # fmt: skip
    """A new tensor like `tensor` (same device) holding `values`: `tensor`'s own values rearranged
    (`moved`), or new values (pad's fill, typecast's truncation) that need rounding to the dtype."""
    device = tensor.device()
    mc = memory_config if memory_config is not None else tensor.memory_config()
    return make_tensor(
        values, dtype or tensor.dtype, layout or tensor.layout,
        device=device, memory_config=mc if device is not None else None, pad_value=pad_value,
        source=tensor.dtype if moved else None,
    )  # fmt: skip


def _moved(tensor: Tensor, memory_config: MemoryConfig | None, dtype=None) -> Tensor:
    """`tensor`'s tiles (padding included) copied into a new buffer with `memory_config`, as the data
    movement ops do; a dtype change goes through the values."""
    if dtype not in (None, tensor.dtype):
        return _rebuild(tensor, tensor.values(), dtype=dtype, memory_config=memory_config)
    out = reserve_output(tensor.shape, tensor.dtype, tensor.layout, tensor.device(),
                         memory_config or tensor.memory_config())  # fmt: skip

    def run() -> None:
        out._data = tensor.padded_values().clone()

    launch(run)
    return out


def _rearranged(tensor: Tensor, shape, rearrange, memory_config=None) -> Tensor:
    """A device op's output of logical `shape` holding `rearrange(tensor's values)`: its values moved,
    stored as they are (block floats are repacked: moved elements change exponent groups)."""
    out = reserve_output(shape, tensor.dtype, tensor.layout, tensor.device(),
                         memory_config if memory_config is not None else tensor.memory_config())  # fmt: skip

    def run() -> None:
        make_tensor(rearrange(tensor.values()), tensor.dtype, tensor.layout, out=out,
                    source=tensor.dtype)  # fmt: skip

    launch(run)
    return out


# --------------------------------------------------------------------------- host <-> device


def from_torch(tensor, dtype=None, *, spec=None, tile=None, pad_value=None, layout=None, device=None,
               memory_config=None, mesh_mapper=None, cq_id=None, preserve_nan_values=False,
               col_tilize=False, enable_bfloat_opt=False) -> Tensor:  # fmt: skip
    require(spec is None, "from_torch: TensorSpec is not emulated; pass dtype/layout/memory_config")
    require(tile is None, "from_torch: custom tile shapes are not emulated")
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"from_torch: expected a torch.Tensor, got {type(tensor).__name__}")
    if dtype is None:
        require(
            tensor.dtype in _FROM_TORCH_DTYPE,
            lambda: f"from_torch: unsupported torch dtype {tensor.dtype}; pass dtype=",
        )
        dtype = _FROM_TORCH_DTYPE[tensor.dtype]
    layout = layout or Layout.ROW_MAJOR
    if dtype.is_block_float:
        require(
            layout == Layout.TILE,
            lambda: f"Tile layout is required for tensor of type {dtype.name}",
        )
    require(
        not col_tilize or dtype.is_block_float,
        "col_tilize is only supported for block-float dtypes",
    )
    if memory_config is not None:
        require(
            device is not None,
            "from_torch: device must be specified when memory_config is specified",
        )
    _no_host_io_in_capture(device, "from_torch(device=...)")
    if device is not None:
        memory_config = memory_config or DRAM_MEMORY_CONFIG
    values = tensor.detach()
    if values.is_floating_point():
        values = values.float()
    return make_tensor(values, dtype, layout, device=device, memory_config=memory_config,
                       pad_value=pad_value or 0.0, col_tilize=col_tilize)  # fmt: skip


def to_torch(tensor: Tensor, dtype=None, *, torch_rank=None, mesh_composer=None, device=None,
             cq_id=None) -> torch.Tensor:  # fmt: skip
    _no_host_io_in_capture(tensor.device(), "to_torch of a device tensor")
    values = tensor.values().to(_TO_TORCH_DTYPE[tensor.dtype])
    if torch_rank is not None:
        while values.dim() > torch_rank:
            require(
                values.shape[0] == 1,
                f"to_torch: cannot squeeze a dim of size {values.shape[0]} to rank {torch_rank}",
            )
            values = values.squeeze(0)
    if dtype is not None:
        values = values.to(dtype)
    return values.clone()


def _cache_path(cache_file_name, dtype: DataType, layout: Layout) -> Path:
    return Path(f"{cache_file_name}_dtype_{dtype.name}_layout_{layout.name}.tensorbin")


def as_tensor(tensor, dtype=None, *, layout=Layout.ROW_MAJOR, device=None, memory_config=None,
              cache_file_name=None, preprocess=None, mesh_mapper=None, cache_dump_mode=None) -> Tensor:  # fmt: skip
    """`from_torch` with an on-disk cache: the host tensor is stored once and loaded on later calls
    (the emulator's own .tensorbin format; real ttnn files are flatbuffers)."""
    if device is not None:
        require(
            memory_config is not None, "as_tensor: memory_config is required when device is set"
        )
    if cache_file_name is None:
        t = preprocess(tensor) if preprocess else tensor
        return from_torch(t, dtype, layout=layout, device=device, memory_config=memory_config)
    dtype = dtype or _FROM_TORCH_DTYPE.get(tensor.dtype, DataType.FLOAT32)
    path = _cache_path(cache_file_name, dtype, layout)
    host = None
    if path.is_file():
        try:
            blob = torch.load(path, weights_only=True)
            host = Tensor(
                blob["data"], DataType[blob["dtype"]], Layout[blob["layout"]], blob["shape"]
            )
        except Exception:  # noqa: BLE001 - a stale or corrupt cache entry is rebuilt
            host = None
    if host is None:
        t = preprocess(tensor) if preprocess else tensor
        host = from_torch(t, dtype, layout=layout)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        torch.save(
            {
                "data": host._data,
                "dtype": dtype.name,
                "layout": layout.name,
                "shape": list(host.shape),
            },
            tmp,
        )
        os.replace(tmp, path)
    if device is None:
        return host
    return to_device(host, device, memory_config)


def to_device(tensor: Tensor, device, memory_config=None, *, queue_id=None) -> Tensor:
    if tensor.device() is not None:
        require(tensor.device() is device, "to_device: tensor is on another device")
        return tensor
    _no_host_io_in_capture(device, "to_device")
    return Tensor(tensor._data.clone(), tensor.dtype, tensor.layout, tensor.shape, device=device,
                  memory_config=memory_config or DRAM_MEMORY_CONFIG)  # fmt: skip


def from_device(tensor: Tensor, blocking=True, *, queue_id=None) -> Tensor:
    on_device(tensor)
    _no_host_io_in_capture(tensor.device(), "from_device")
    tensor.check_alive()
    return Tensor(tensor._data.clone(), tensor.dtype, tensor.layout, tensor.shape)


def copy_host_to_device_tensor(host_tensor: Tensor, device_tensor: Tensor, cq_id=None) -> None:
    """Overwrite a persistent device tensor in place (the way trace inputs are refreshed)."""
    require(
        host_tensor.device() is None, "copy_host_to_device_tensor: source must be a host tensor"
    )
    on_device(device_tensor, "destination")
    _no_host_io_in_capture(device_tensor.device(), "copy_host_to_device_tensor")
    device_tensor.check_alive()
    require(
        (host_tensor.shape, host_tensor.dtype, host_tensor.layout)
        == (device_tensor.shape, device_tensor.dtype, device_tensor.layout),
        lambda: (
            f"copy_host_to_device_tensor: host {host_tensor} does not match device {device_tensor}"
        ),
    )
    device_tensor._data = host_tensor._data.clone()


def deallocate(tensor: Tensor, force=True) -> None:
    tensor.deallocate(force)


# --------------------------------------------------------------------------- layout and memory


@device_op
def _to_layout_device(tensor, layout, dtype, memory_config, pad_value):
    return _rebuild(tensor, tensor.values(), dtype=dtype, layout=layout, memory_config=memory_config,
                    pad_value=pad_value)  # fmt: skip


def to_layout(
    tensor: Tensor, layout, dtype=None, memory_config=None, sub_core_grids=None, pad_value=0.0
) -> Tensor:
    out_dtype = dtype or tensor.dtype
    if out_dtype.is_block_float:
        require(
            layout == Layout.TILE,
            lambda: f"Tile layout is required for tensor of type {out_dtype.name}",
        )
    if layout == tensor.layout and dtype in (None, tensor.dtype) and memory_config is None:
        return tensor
    if tensor.device() is None:
        return make_tensor(tensor.values(), out_dtype, layout, pad_value=pad_value)
    return _to_layout_device(tensor, layout, dtype, memory_config, pad_value)


@device_op
def to_memory_config(
    tensor: Tensor, memory_config: MemoryConfig, dtype=None, output_tensor=None
) -> Tensor:
    on_device(tensor)
    if memory_config == tensor.memory_config() and dtype in (None, tensor.dtype):
        return tensor  # the real op returns its input: deallocating one deallocates both
    return _moved(tensor, memory_config, dtype)


@device_op
def typecast(
    input_tensor: Tensor, dtype, *args, memory_config=None, output_tensor=None, sub_core_grids=None
) -> Tensor:
    if args:  # typecast(input, input_dtype, output_dtype)
        require(
            dtype == input_tensor.dtype,
            lambda: f"typecast: input dtype {dtype} does not match tensor {input_tensor.dtype}",
        )
        (dtype,) = args
    # host tensors are converted on the host, as the real op does
    if dtype.is_block_float or input_tensor.dtype.is_block_float:
        check_tile(input_tensor, "typecast input with a block-float dtype")
    values = input_tensor.values()
    if values.is_floating_point() and not dtype.is_float:
        values = values.trunc()
        if dtype == DataType.UINT32:
            values = values.clamp(0, 2**32 - 1)
    return _rebuild(input_tensor, values, dtype=dtype, memory_config=memory_config, moved=False)


@device_op
def _reshape_device(input_tensor, shape, memory_config):
    return _rearranged(input_tensor, shape, lambda v: v.reshape(shape), memory_config)


def reshape(input_tensor: Tensor, shape, *args, memory_config=None, pad_value=None,
            reshape_tile_mode=None, sub_core_grids=None, skip_padding_fill=False) -> Tensor:  # fmt: skip
    """`reshape(t, shape)` or `reshape(t, logical_shape, padded_shape)`."""
    shape = [int(s) for s in shape]
    volume = input_tensor.volume()
    if shape.count(-1) == 1:
        known = math.prod(s for s in shape if s != -1)
        require(
            known and volume % known == 0,
            lambda: f"reshape: cannot infer -1 in {shape} for volume {volume}",
        )
        shape[shape.index(-1)] = volume // known
    require(shape.count(-1) == 0, lambda: f"reshape: at most one -1 is allowed, got {shape}")
    require(
        math.prod(shape) == volume,
        lambda: f"reshape: the volume of {shape} does not match {list(input_tensor.shape)}",
    )
    if args:
        padded = [int(s) for s in args[0]]
        require(
            list(padded_shape_of(tuple(shape), input_tensor.layout)) == padded,
            lambda: f"reshape: padded shape {padded} is not the tile padding of {shape}",
        )
    if shape == list(input_tensor.shape) and memory_config in (None, input_tensor.memory_config()):
        return input_tensor  # as the real op: the same tensor (deallocating one deallocates both)
    if input_tensor.device() is None:
        return _rebuild(input_tensor, input_tensor.values().reshape(shape))
    return _reshape_device(input_tensor, shape, memory_config)


def unsqueeze_to_4D(tensor: Tensor) -> Tensor:
    shape = list(tensor.shape)
    require(len(shape) <= 4, lambda: f"unsqueeze_to_4D: rank {len(shape)} > 4")
    return reshape(tensor, [1] * (4 - len(shape)) + shape)


@device_op
def permute(input_tensor: Tensor, dims, *args, memory_config=None, pad_value=0.0) -> Tensor:
    dims = [d % len(input_tensor.shape) for d in dims]
    require(
        sorted(dims) == list(range(len(input_tensor.shape))),
        lambda: f"permute: {dims} is not a permutation",
    )
    if dims == sorted(dims) and memory_config in (None, input_tensor.memory_config()):
        return input_tensor  # the identity permutation returns its input, as the real op does
    shape = [input_tensor.shape[d] for d in dims]
    return _rearranged(input_tensor, shape, lambda v: v.permute(dims).contiguous(), memory_config)


@device_op
def transpose(
    input_tensor: Tensor, dim1: int, dim2: int, *args, memory_config=None, pad_value=0.0
) -> Tensor:
    shape = list(input_tensor.shape)
    require(
        -len(shape) <= dim1 < len(shape) and -len(shape) <= dim2 < len(shape),
        lambda: f"transpose: dims ({dim1}, {dim2}) out of range for rank {len(shape)}",
    )
    shape[dim1], shape[dim2] = shape[dim2], shape[dim1]
    return _rearranged(
        input_tensor, shape, lambda v: v.transpose(dim1, dim2).contiguous(), memory_config
    )


@device_op
def slice(input_tensor: Tensor, starts, ends, slice_step=None, *, memory_config=None, output_tensor=None,
          pad_value=None, slice_dim=None, num_devices=None, sub_core_grids=None) -> Tensor:  # fmt: skip
    shape = list(input_tensor.shape)
    require(
        len(starts) == len(ends) == len(shape),
        lambda: f"slice: starts/ends must have rank {len(shape)}",
    )
    steps = list(slice_step) if slice_step is not None else [1] * len(shape)
    index = []
    for d, (s, e, st) in enumerate(zip(starts, ends, steps, strict=True)):
        s, e = int(s), int(e)
        require(
            0 <= s < e <= shape[d] and st > 0,
            f"slice: invalid range [{s}:{e}:{st}] for dim {d} of size {shape[d]}",
        )
        index.append(builtins.slice(s, e, st))
    if (
        [(i.start, i.stop, i.step) for i in index] == [(0, n, 1) for n in shape]
        and memory_config in (None, input_tensor.memory_config())
        and output_tensor is None
    ):
        return input_tensor  # a full slice returns its input, as the real op does
    out = input_tensor.values()[tuple(index)].contiguous()
    mc = memory_config or input_tensor.memory_config()
    if mc is not None and mc.is_sharded():
        mc = DRAM_MEMORY_CONFIG if memory_config is None else mc
    return _rebuild(input_tensor, out, memory_config=mc)


@device_op
def pad(input_tensor: Tensor, padding, value, *args, use_multicore=True, memory_config=None,
        sub_core_grids=None) -> Tensor:  # fmt: skip
    """`pad(t, [(before, after), ...], value)` or `pad(t, output_padded_shape, input_tensor_start, value)`."""
    shape = list(input_tensor.shape)
    if args:  # (output_padded_shape, input_tensor_start, value)
        out_shape, start, value = padding, value, args[0]
        pairs = [
            (int(s), int(o) - int(s) - n) for o, s, n in zip(out_shape, start, shape, strict=True)
        ]
    else:
        pairs = [tuple(int(v) for v in p) for p in padding]
        pairs = [(0, 0)] * (len(shape) - len(pairs)) + pairs
    require(all(b >= 0 and a >= 0 for b, a in pairs), lambda: f"pad: negative padding {pairs}")
    flat = [v for b, a in reversed(pairs) for v in (b, a)]
    out = torch.nn.functional.pad(input_tensor.values(), flat, value=float(value))
    return _rebuild(input_tensor, out, memory_config=memory_config, moved=False)


@device_op
def concat(
    tensors, dim=0, *, memory_config=None, output_tensor=None, groups=1, sub_core_grids=None
) -> Tensor:
    require(len(tensors) > 0, "concat: needs at least one tensor")
    first = tensors[0]
    rank = len(first.shape)
    dim = dim % rank
    for t in tensors[1:]:
        require(
            t.dtype == first.dtype and t.layout == first.layout,
            "concat: all tensors must share dtype and layout",
        )
        require(
            len(t.shape) == rank
            and all(
                a == b
                for i, (a, b) in enumerate(zip(t.shape, first.shape, strict=True))
                if i != dim
            ),
            f"concat: shapes {list(first.shape)} and {list(t.shape)} differ outside dim {dim}",
        )
    require(groups == 1, "concat: groups > 1 is not emulated")
    out = torch.cat([t.values() for t in tensors], dim)
    if memory_config is None and first.is_sharded():
        memory_config = DRAM_MEMORY_CONFIG
    return _rebuild(first, out, memory_config=memory_config)


@device_op
def clone(input: Tensor, *, dtype=None, memory_config=None, compute_kernel_config=None) -> Tensor:
    on_device(input)
    return _rebuild(input, input.values(), dtype=dtype, memory_config=memory_config)


@device_op
def tilize(input_tensor: Tensor, *, memory_config=None, dtype=None, use_multicore=True, use_low_perf=False,
           tile=None, sub_core_grids=None) -> Tensor:  # fmt: skip
    on_device(input_tensor)
    require(input_tensor.layout == Layout.ROW_MAJOR, "tilize: input must be ROW_MAJOR")
    shape = list(input_tensor.shape)
    require(
        len(shape) >= 2 and shape[-1] % 32 == 0 and shape[-2] % 32 == 0,
        lambda: (
            f"tilize: input shape {shape} must be a multiple of the tile size in its last two dims"
        ),
    )
    return _rebuild(
        input_tensor,
        input_tensor.values(),
        dtype=dtype,
        layout=Layout.TILE,
        memory_config=memory_config,
    )


@device_op
def untilize(
    input_tensor: Tensor, *, memory_config=None, use_multicore=True, sub_core_grids=None
) -> Tensor:
    on_device(input_tensor)
    check_tile(input_tensor, "untilize input")
    require(
        not input_tensor.dtype.is_block_float,
        lambda: f"untilize: {input_tensor.dtype.name} input is not supported",
    )
    return _rebuild(
        input_tensor, input_tensor.values(), layout=Layout.ROW_MAJOR, memory_config=memory_config
    )


@device_op
def sharded_to_interleaved(input_tensor: Tensor, memory_config=None, output_dtype=None) -> Tensor:
    on_device(input_tensor)
    require(input_tensor.is_sharded(), "sharded_to_interleaved: input tensor must be sharded")
    mc = memory_config or DRAM_MEMORY_CONFIG
    require(mc.interleaved, "sharded_to_interleaved: output memory config must be interleaved")
    return _moved(input_tensor, mc, output_dtype)


@device_op
def interleaved_to_sharded(input_tensor: Tensor, sharded_memory_config, output_dtype=None, *args,
                           keep_l1_aligned=False, preallocated_output=None) -> Tensor:  # fmt: skip
    """`(t, sharded_memory_config[, output_dtype])` or `(t, grid, shard_shape, shard_scheme,
    shard_orientation[, output_dtype])`."""
    on_device(input_tensor)
    require(
        not input_tensor.is_sharded(), "interleaved_to_sharded: input tensor must be interleaved"
    )
    if not isinstance(sharded_memory_config, MemoryConfig):
        grid, shard_shape = sharded_memory_config, output_dtype
        scheme, orientation = args[0], args[1]
        output_dtype = args[2] if len(args) > 2 else None
        layout = (
            scheme
            if isinstance(scheme, TensorMemoryLayout)
            else TensorMemoryLayout[f"{scheme.name}_SHARDED"]
        )
        sharded_memory_config = MemoryConfig(
            layout, BufferType.L1, ShardSpec(grid, shard_shape, orientation)
        )
    require(
        sharded_memory_config.is_sharded(),
        "interleaved_to_sharded: output memory config must be sharded",
    )
    require(
        sharded_memory_config.shard_spec is not None,
        "interleaved_to_sharded: output memory config needs a shard spec",
    )
    return _moved(input_tensor, sharded_memory_config, output_dtype)
