"""Tensor creation, host/device transfer, layout and data-movement ops (ttnn/operations/core.py and
data_movement in ttnn 0.81.1)."""

from __future__ import annotations

import builtins
import math
import os
from pathlib import Path

import torch

from ttgen.emu.device import MeshDevice
from ttgen.emu.errors import fatal, require
from ttgen.emu.ops._op import (
    accepts,
    check_tile,
    device_op,
    launch,
    make_tensor,
    on_device,
    overloaded,
    reserve_output,
)
from ttgen.emu.tensor import Shape, Tensor, padded_shape_of
from ttgen.emu.types import (
    DRAM_MEMORY_CONFIG,
    BufferType,
    CoreCoord,
    CoreRange,
    CoreRangeSet,
    DataType,
    Layout,
    MemoryConfig,
    ShardOrientation,
    ShardSpec,
    TensorMemoryLayout,
)

__all__ = [
    "as_tensor", "clone", "concat", "copy_host_to_device_tensor", "deallocate", "fold", "from_device",
    "from_torch", "get_memory_config", "interleaved_to_sharded", "pad", "permute", "reallocate", "reshape",
    "reshard", "sharded_to_interleaved",
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
            host = Tensor._make(
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
    return Tensor._make(tensor._data.clone(), tensor.dtype, tensor.layout, tensor.shape, device=device,
                  memory_config=memory_config or DRAM_MEMORY_CONFIG)  # fmt: skip


def from_device(tensor: Tensor, blocking=True, *, queue_id=None) -> Tensor:
    on_device(tensor)
    _no_host_io_in_capture(tensor.device(), "from_device")
    tensor.check_alive()
    return Tensor._make(tensor._data.clone(), tensor.dtype, tensor.layout, tensor.shape)


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
    # the device operation it runs (and the program-cache entry it shares with a direct call)
    if memory_config.is_sharded() and not tensor.is_sharded():
        return _interleaved_to_sharded(tensor, memory_config, dtype, False, None)
    if tensor.is_sharded() and not memory_config.is_sharded():
        return sharded_to_interleaved(tensor, memory_config, dtype)
    return _moved(tensor, memory_config, dtype)


@device_op
def _typecast(input_tensor: Tensor, dtype, memory_config) -> Tensor:
    # host tensors are converted on the host, as the real op does
    if dtype.is_block_float or input_tensor.dtype.is_block_float:
        check_tile(input_tensor, "typecast input with a block-float dtype")
    values = input_tensor.values()
    if values.is_floating_point() and not dtype.is_float:
        values = values.trunc()
        if dtype == DataType.UINT32:
            values = values.clamp(0, 2**32 - 1)
    return _rebuild(input_tensor, values, dtype=dtype, memory_config=memory_config, moved=False)


_typecast.program = "typecast"


@accepts(dtype=DataType)
def _typecast_to(input_tensor: Tensor, dtype, *, memory_config=None, output_tensor=None, sub_core_grids=None) -> Tensor:  # fmt: skip
    return _typecast(input_tensor, dtype, memory_config)


@accepts(input_dtype=DataType, output_dtype=DataType)
def _typecast_from_to(input_tensor: Tensor, input_dtype, output_dtype, *, memory_config=None, output_tensor=None,
                      sub_core_grids=None) -> Tensor:  # fmt: skip
    require(
        input_dtype == input_tensor.dtype,
        lambda: f"typecast: input dtype {input_dtype} does not match tensor {input_tensor.dtype}",
    )
    return _typecast(input_tensor, output_dtype, memory_config)


typecast = overloaded("typecast", _typecast_to, _typecast_from_to)


@device_op
def _reshape_device(input_tensor, shape, memory_config):
    return _rearranged(input_tensor, shape, lambda v: v.reshape(shape), memory_config)


def _reshape(input_tensor: Tensor, shape, padded, memory_config) -> Tensor:
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
    if padded is not None:
        padded = [int(s) for s in padded]
        require(
            list(padded_shape_of(tuple(shape), input_tensor.layout)) == padded,
            lambda: f"reshape: padded shape {padded} is not the tile padding of {shape}",
        )
    if shape == list(input_tensor.shape) and memory_config in (None, input_tensor.memory_config()):
        return input_tensor  # as the real op: the same tensor (deallocating one deallocates both)
    if input_tensor.device() is None:
        return _rebuild(input_tensor, input_tensor.values().reshape(shape))
    return _reshape_device(input_tensor, shape, memory_config)


@accepts(shape=(Shape, list, tuple))
def _reshape_to(input_tensor: Tensor, shape, *, memory_config=None, pad_value=None, reshape_tile_mode=None,
                sub_core_grids=None, skip_padding_fill=False) -> Tensor:  # fmt: skip
    """`reshape(t, shape)`; -1 infers one dimension."""
    return _reshape(input_tensor, shape, None, memory_config)


@accepts(logical_shape=(Shape, list, tuple), padded_shape=(Shape, list, tuple))
def _reshape_padded(input_tensor: Tensor, logical_shape, padded_shape, *, memory_config=None, pad_value=None,
                    reshape_tile_mode=None, sub_core_grids=None, skip_padding_fill=False) -> Tensor:  # fmt: skip
    return _reshape(input_tensor, logical_shape, padded_shape, memory_config)


# the first and third overloads (ttnn.Shape, a sequence of ints) are one here: Shape is a tuple
reshape = overloaded("reshape", _reshape_to, _reshape_padded)


def unsqueeze_to_4D(tensor: Tensor) -> Tensor:
    shape = list(tensor.shape)
    require(len(shape) <= 4, lambda: f"unsqueeze_to_4D: rank {len(shape)} > 4")
    return reshape(tensor, [1] * (4 - len(shape)) + shape)


@device_op
def _permute(input_tensor: Tensor, dims, memory_config) -> Tensor:
    dims = [d % len(input_tensor.shape) for d in dims]
    require(
        sorted(dims) == list(range(len(input_tensor.shape))),
        lambda: f"permute: {dims} is not a permutation",
    )
    if dims == sorted(dims) and memory_config in (None, input_tensor.memory_config()):
        return input_tensor  # the identity permutation returns its input, as the real op does
    shape = [input_tensor.shape[d] for d in dims]
    return _rearranged(input_tensor, shape, lambda v: v.permute(dims).contiguous(), memory_config)


_permute.program = "permute"


def _permute_kw(input_tensor: Tensor, dims, *, memory_config=None, pad_value=0.0) -> Tensor:
    return _permute(input_tensor, dims, memory_config)


def _permute_pad(input_tensor: Tensor, dims, pad_value=0.0) -> Tensor:
    return _permute(input_tensor, dims, None)


permute = overloaded("permute", _permute_kw, _permute_pad)


@device_op
def _transpose(input_tensor: Tensor, dim1: int, dim2: int, memory_config) -> Tensor:
    shape = list(input_tensor.shape)
    require(
        -len(shape) <= dim1 < len(shape) and -len(shape) <= dim2 < len(shape),
        lambda: f"transpose: dims ({dim1}, {dim2}) out of range for rank {len(shape)}",
    )
    shape[dim1], shape[dim2] = shape[dim2], shape[dim1]
    return _rearranged(
        input_tensor, shape, lambda v: v.transpose(dim1, dim2).contiguous(), memory_config
    )


_transpose.program = "transpose"


def _transpose_kw(input_tensor: Tensor, dim1: int, dim2: int, *, memory_config=None, pad_value=0.0) -> Tensor:  # fmt: skip
    return _transpose(input_tensor, dim1, dim2, memory_config)


def _transpose_pad(input_tensor: Tensor, dim1: int, dim2: int, pad_value=0.0) -> Tensor:
    return _transpose(input_tensor, dim1, dim2, None)


transpose = overloaded("transpose", _transpose_kw, _transpose_pad)


@device_op
def _slice(input_tensor: Tensor, starts, ends, slice_step, memory_config, output_tensor) -> Tensor:
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


_slice.program = "slice"


def _ints(t: Tensor) -> list[int]:
    return [int(v) for v in t.values().reshape(-1).tolist()]


@accepts(starts=Tensor, ends=Tensor)
def _slice_tensors(input_tensor: Tensor, starts, ends, slice_step=None, *, memory_config=None, output_tensor=None,
                   pad_value=None, slice_dim=None, num_devices=None, sub_core_grids=None) -> Tensor:  # fmt: skip
    """Starts and ends held in (uint32) tensors."""
    return _slice(
        input_tensor, _ints(starts), _ints(ends), slice_step, memory_config, output_tensor
    )


@accepts(starts=(list, tuple), ends=(list, tuple), steps=(list, tuple))
def _slice_steps(input_tensor: Tensor, starts, ends, steps, *, memory_config=None, output_tensor=None,
                 pad_value=None, sub_core_grids=None) -> Tensor:  # fmt: skip
    return _slice(input_tensor, starts, ends, steps, memory_config, output_tensor)


@accepts(slice_start=(list, tuple), slice_end=(list, tuple))
def _slice_range(input_tensor: Tensor, slice_start, slice_end, slice_step=None, *, memory_config=None,
                 output_tensor=None, pad_value=None, sub_core_grids=None) -> Tensor:  # fmt: skip
    return _slice(input_tensor, slice_start, slice_end, slice_step, memory_config, output_tensor)


slice = overloaded("slice", _slice_tensors, _slice_steps, _slice_range)  # noqa: A001 - ttnn's name


@device_op
def _pad(input_tensor: Tensor, pairs, value, memory_config) -> Tensor:
    require(all(b >= 0 and a >= 0 for b, a in pairs), lambda: f"pad: negative padding {pairs}")
    flat = [v for b, a in reversed(pairs) for v in (b, a)]
    out = torch.nn.functional.pad(input_tensor.values(), flat, value=float(value))
    return _rebuild(input_tensor, out, memory_config=memory_config, moved=False)


_pad.program = "pad"


def _pad_pairs(input_tensor: Tensor, padding, value, *, use_multicore=True, memory_config=None,
               sub_core_grids=None) -> Tensor:  # fmt: skip
    """`pad(t, [(before, after), ...], value)`: the pairs of the last dims."""
    pairs = [tuple(int(v) for v in p) for p in padding]
    pairs = [(0, 0)] * (len(input_tensor.shape) - len(pairs)) + pairs
    return _pad(input_tensor, pairs, value, memory_config)


def _four_ints(value) -> bool:
    """What 0.81.1's pad binds for output_padded_shape and input_tensor_start: std::array<uint32_t, 4>
    (its signature text says Sequence[int]; a 3-element list is "incompatible function arguments")."""
    return (
        isinstance(value, (list, tuple))
        and len(value) == 4
        and all(isinstance(v, int) for v in value)
    )


@accepts(output_padded_shape=_four_ints, input_tensor_start=_four_ints)
def _pad_to_shape(input_tensor: Tensor, output_padded_shape, input_tensor_start, value, *, use_multicore=True,
                  memory_config=None, sub_core_grids=None) -> Tensor:  # fmt: skip
    pairs = [(int(s), int(o) - int(s) - n) for o, s, n
             in zip(output_padded_shape, input_tensor_start, input_tensor.shape, strict=True)]  # fmt: skip
    return _pad(input_tensor, pairs, value, memory_config)


pad = overloaded("pad", _pad_pairs, _pad_to_shape)


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
def fold(input, stride_h, stride_w, use_transpose_as_fold=False, output_shape=None, padding=[0, 0], grid_size=None,  # noqa: B006
         override_memory_config=None, collapse_output=False) -> Tensor:  # fmt: skip
    """NHWC space-to-depth: each stride_h x stride_w neighbourhood at (h * stride_h, w * stride_w)
    becomes one stick at (h, w), its elements in (dy, dx, c) order: [N, H / sh, W / sw, C * sh * sw]
    (collapse_output: [1, 1, N * H / sh * W / sw, C * sh * sw]), row-major, in the input's memory."""
    x = input
    on_device(x)
    require(not use_transpose_as_fold, "fold: use_transpose_as_fold is not emulated")
    require(output_shape is None and grid_size is None and override_memory_config is None,
            "fold: output_shape, grid_size and override_memory_config are not emulated")  # fmt: skip
    require(list(padding) in ([0, 0], [0, 0, 0, 0]), "fold: padding is not emulated")
    require(not x.is_sharded(), "fold: sharded inputs are not emulated (interleaved inputs only)")
    require(len(x.shape) == 4, lambda: f"fold: input must be [N, H, W, C], got {list(x.shape)}")
    n, h, w, c = (int(d) for d in x.shape)
    require(h % stride_h == 0,
            lambda: f"Fold: logical H ({h}) must be divisible by stride_h ({stride_h})")  # fmt: skip
    require(w % stride_w == 0,
            lambda: f"Fold: logical W ({w}) must be divisible by stride_w ({stride_w})")  # fmt: skip
    out_dtype = x.dtype if x.dtype in (DataType.FLOAT32, DataType.UINT16) else DataType.BFLOAT16
    folded = [n, h // stride_h, w // stride_w, c * stride_h * stride_w]
    shape = [1, 1, n * folded[1] * folded[2], folded[3]] if collapse_output else folded
    out = reserve_output(shape, out_dtype, Layout.ROW_MAJOR, x.device(), x.memory_config())

    def run() -> None:
        v = x.values().reshape(n, h // stride_h, stride_h, w // stride_w, stride_w, c)
        v = v.permute(0, 1, 3, 2, 4, 5).reshape(shape)
        make_tensor(v, out_dtype, Layout.ROW_MAJOR, out=out, source=x.dtype)

    launch(run)
    return out


@device_op
def reshard(input_tensor: Tensor, output_memory_config: MemoryConfig, output_tensor=None) -> Tensor:
    """A sharded tensor moved to another sharded layout (grid, shard shape or strategy)."""
    on_device(input_tensor)
    require(output_tensor is None, "reshard: output_tensor is not emulated")
    require(input_tensor.is_sharded(), "reshard: input tensor must be sharded")
    require(output_memory_config.is_sharded(), "reshard: output memory config must be sharded")
    require(
        output_memory_config.shard_spec is not None,
        "reshard: output memory config needs a shard spec",
    )
    return _moved(input_tensor, output_memory_config)


@device_op
def reallocate(tensor: Tensor, memory_config=None) -> Tensor:
    """The tensor copied into a new buffer (the allocator's lowest free address: defragmenting L1);
    the input is deallocated."""
    on_device(tensor)
    out = _moved(tensor, memory_config)
    tensor.deallocate()
    return out


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
def _interleaved_to_sharded(input_tensor: Tensor, sharded_memory_config, output_dtype, keep_l1_aligned,
                            preallocated_output) -> Tensor:  # fmt: skip
    on_device(input_tensor)
    require(
        not input_tensor.is_sharded(), "interleaved_to_sharded: input tensor must be interleaved"
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


_interleaved_to_sharded.program = "interleaved_to_sharded"


@accepts(
    grid=(CoreCoord, CoreRangeSet),
    shard_scheme=TensorMemoryLayout,
    shard_orientation=ShardOrientation,
)
def _i2s_grid(input_tensor: Tensor, grid, shard_shape, shard_scheme, shard_orientation, output_dtype=None, *,
              keep_l1_aligned=False) -> Tensor:  # fmt: skip
    """A grid (a CoreCoord is the rectangle of that size from (0, 0)), the shard shape, the scheme
    and the orientation; the output is in L1."""
    if isinstance(grid, CoreCoord):
        grid = CoreRangeSet({CoreRange(CoreCoord(0, 0), CoreCoord(grid.x - 1, grid.y - 1))})
    mc = MemoryConfig(
        shard_scheme, BufferType.L1, ShardSpec(grid, list(shard_shape), shard_orientation)
    )
    return _interleaved_to_sharded(input_tensor, mc, output_dtype, keep_l1_aligned, None)


@accepts(sharded_memory_config=MemoryConfig)
def _i2s_memory_config(input_tensor: Tensor, sharded_memory_config, output_dtype=None, *, keep_l1_aligned=False,
                       preallocated_output=None) -> Tensor:  # fmt: skip
    return _interleaved_to_sharded(input_tensor, sharded_memory_config, output_dtype, keep_l1_aligned,
                                   preallocated_output)  # fmt: skip


interleaved_to_sharded = overloaded("interleaved_to_sharded", _i2s_grid, _i2s_memory_config)


# --------------------------------------------------------------------------- ttnn.Tensor's API


def get_memory_config(arg: Tensor, /) -> MemoryConfig | None:
    """The memory config of a device tensor; None for a host tensor."""
    return arg.memory_config()


@accepts(arg=Tensor)
def _tensor_copy(arg: Tensor) -> Tensor:
    """Another tensor with the same values, layout and placement."""
    arg.check_alive()
    return Tensor._make(arg._data.clone(), arg.dtype, arg.layout, arg.shape, device=arg.device(),
                        memory_config=arg.memory_config())  # fmt: skip


def _from_list(data, shape, data_type, layout, device, memory_config, pad_value) -> Tensor:
    values = torch.tensor(list(data), dtype=torch.float32 if data_type.is_float else torch.int64)
    require(
        values.numel() == math.prod(shape),
        lambda: f"Tensor: {values.numel()} values do not fill the shape {list(shape)}",
    )
    return from_torch(values.reshape(list(shape)), data_type, layout=layout, device=device,
                      memory_config=memory_config, pad_value=pad_value or None)  # fmt: skip


_NONE = type(None)  # custom tiles are not emulated: `tile` must be None


@accepts(data=(list, tuple), data_type=DataType, layout=Layout, tile=_NONE)
def _tensor_from_list_host(data, shape, data_type, layout, tile=None, pad_value=0.0) -> Tensor:
    """A flat list of values with its shape, dtype and layout, on the host."""
    return _from_list(data, shape, data_type, layout, None, None, pad_value)


@accepts(
    data=(list, tuple), data_type=DataType, layout=Layout, device=(MeshDevice, _NONE), tile=_NONE
)
def _tensor_from_list(
    data, shape, data_type, layout, device=None, tile=None, pad_value=0.0
) -> Tensor:
    """The same on `device` (DRAM interleaved) when given."""
    return _from_list(data, shape, data_type, layout, device, None, pad_value)


@accepts(data=(list, tuple), data_type=DataType, layout=Layout, device=MeshDevice, memory_config=MemoryConfig,
         tile=_NONE)  # fmt: skip
def _tensor_from_list_placed(data, shape, data_type, layout, device, memory_config, tile=None, pad_value=0.0) -> Tensor:  # fmt: skip
    return _from_list(data, shape, data_type, layout, device, memory_config, pad_value)


@accepts(tensor=torch.Tensor)
def _tensor_from_torch(tensor, data_type=None, device=None, layout=None, mem_config=None, tile=None, cq_id=None,
                       pad_value=None, mesh_mapper=None, preserve_nan_values=False, col_tilize=False,
                       enable_bfloat_opt=False) -> Tensor:  # fmt: skip
    """A torch tensor (row-major unless `layout`), as from_torch converts it."""
    return from_torch(tensor, data_type, tile=tile, pad_value=pad_value, layout=layout, device=device,
                      memory_config=mem_config, mesh_mapper=mesh_mapper, cq_id=cq_id,
                      preserve_nan_values=preserve_nan_values, col_tilize=col_tilize,
                      enable_bfloat_opt=enable_bfloat_opt)  # fmt: skip


# ttnn.Tensor(...): the real binding's overloads, in its order (its float- and int-data forms of the
# list constructors are one alternative each here: the values are converted by data_type)
tensor_constructor = overloaded("Tensor", _tensor_copy, _tensor_from_list_host, _tensor_from_list,
                                _tensor_from_list_placed, _tensor_from_torch)  # fmt: skip


@accepts(target_layout=Layout)
def _to_layout_method(self: Tensor, target_layout) -> Tensor:
    return to_layout(self, target_layout)


def _to_device_method(self: Tensor, device, mem_config=None, cq_id=None) -> Tensor:
    return to_device(self, device, mem_config)


tensor_to = overloaded("to", _to_layout_method, _to_device_method)


def _normalised_slices(tensor: Tensor, slices) -> list[builtins.slice]:
    if not isinstance(slices, tuple):
        slices = (slices,)
    rank = len(tensor.shape)
    if any(s is Ellipsis for s in slices):
        at = slices.index(Ellipsis)
        slices = slices[:at] + (builtins.slice(None),) * (rank - len(slices) + 1) + slices[at + 1 :]
    require(
        len(slices) <= rank, lambda: f"Tensor.__getitem__: {len(slices)} indices for rank {rank}"
    )
    out = []
    for s, n in zip(
        slices + (builtins.slice(None),) * (rank - len(slices)), tensor.shape, strict=True
    ):
        if isinstance(s, int):  # an index keeps its dimension, as ttnn's slicing does
            s = s % n
            s = builtins.slice(s, s + 1)
        if not isinstance(s, builtins.slice):
            raise TypeError(f"Invalid slice object: {s!r}")
        out.append(builtins.slice(*s.indices(n)))
    return out


def tensor_getitem(tensor: Tensor, slices) -> Tensor:
    if slices is Ellipsis:
        return clone(tensor) if tensor.device() is not None else _rebuild(tensor, tensor.values())
    index = _normalised_slices(tensor, slices)
    if tensor.device() is not None:
        return _slice(tensor, [i.start for i in index], [i.stop for i in index], [i.step for i in index],
                      None, None)  # fmt: skip
    return _rebuild(tensor, tensor.values()[tuple(index)].contiguous())
