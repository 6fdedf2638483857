"""The emulated tensor: logical vs padded shape, TILE vs ROW_MAJOR, host vs device storage,
values held exactly as the dtype can represent them, a device buffer, and deallocation.

Values live in `_data`, a torch tensor of the *padded* shape for TILE (padding is real data: matmul
reads it) and of the logical shape for ROW_MAJOR. Float dtypes are stored as float32 holding values
exactly representable in the dtype (bf16-rounded, block-float quantized); integer dtypes as int64.
"""

from __future__ import annotations

import enum
import math

import torch

from ttgen.devices.rules import check_shard
from ttgen.emu import blockfloat
from ttgen.emu.errors import fatal, require, rules
from ttgen.emu.types import (
    BufferType,
    DataType,
    Layout,
    MemoryConfig,
    ShardOrientation,
    TensorMemoryLayout,
    ceil_div,
    round_up,
)

__all__ = ["Shape", "StorageType", "Tensor", "quantize_to", "tile_pad"]

TILE = 32


class StorageType(enum.Enum):
    HOST = 0
    DEVICE = 1


class Shape(tuple):
    """A tensor shape; equal to a list or tuple of the same dims."""

    def __new__(cls, dims):
        return super().__new__(cls, (int(d) for d in dims))

    @property
    def rank(self) -> int:
        return len(self)

    def __eq__(self, other):
        return isinstance(other, (list, tuple)) and tuple(self) == tuple(other)

    def __hash__(self):
        return tuple.__hash__(self)

    def __repr__(self):
        return f"Shape({list(self)})"


_INT_RANGE = {
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.UINT8: (0, 255),
    DataType.INT8: (-128, 127),
}


def quantize_to(values: torch.Tensor, dtype: DataType, *, col_tilize: bool = False) -> torch.Tensor:
    """Values as `dtype` stores them (float32 or int64 torch). Block floats need a last dim that is a
    multiple of 16 (they are TILE-only, so callers pass tile-padded data)."""
    if dtype == DataType.FLOAT32:
        return values.float()
    if dtype == DataType.BFLOAT16:
        return values.bfloat16().float()
    if dtype.is_block_float:
        return blockfloat.quantize(
            values.float(),
            blockfloat.MANTISSA_BITS[dtype.name.lower()],
            col_tilize=col_tilize,
        )
    if dtype in _INT_RANGE:
        if values.is_floating_point():
            values = values.trunc()
        return values.to(torch.int64)
    raise fatal(f"Unsupported data type {dtype.name}")


def tile_pad(data: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Pad the last two dims up to multiples of 32 (rank < 2 is treated as [1, W])."""
    if data.dim() < 2:
        data = data.reshape(1, -1) if data.dim() == 1 else data.reshape(1, 1)
    h, w = data.shape[-2], data.shape[-1]
    ph, pw = round_up(max(h, 1), TILE) - h, round_up(max(w, 1), TILE) - w
    if ph or pw:
        data = torch.nn.functional.pad(data, (0, pw, 0, ph), value=value)
    return data


def padded_shape_of(logical: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
    if layout != Layout.TILE:
        return tuple(logical)
    dims = list(logical) if len(logical) >= 2 else [1] * (2 - len(logical)) + list(logical)
    dims[-1] = round_up(max(dims[-1], 1), TILE)
    dims[-2] = round_up(max(dims[-2], 1), TILE)
    return tuple(dims)


class Tensor:
    """A ttnn tensor: made by from_torch and the ops, or by ttnn.Tensor's constructors (a torch
    tensor, a flat list with shape, dtype and layout, or another tensor)."""

    def __init__(self, *args, **kwargs):
        from ttgen.emu.ops.core import tensor_constructor

        made = tensor_constructor(*args, **kwargs)
        self._init(made._data, made.dtype, made.layout, made.shape)
        if made.device() is not None:  # the constructor's buffer becomes this tensor's
            self._device, self._memory_config = made._device, made._memory_config
            self._address, made._address = made._address, None

    @staticmethod
    def _constructors():
        from ttgen.emu.ops.core import tensor_constructor

        return tensor_constructor.overloads

    @classmethod
    def _make(cls, data: torch.Tensor, dtype: DataType, layout: Layout, logical_shape, *,
              device=None, memory_config: MemoryConfig | None = None) -> Tensor:  # fmt: skip
        """The emulator's own constructor: `data` is the padded storage."""
        t = cls.__new__(cls)
        t._init(data, dtype, layout, logical_shape, device=device, memory_config=memory_config)
        return t

    def _init(self, data: torch.Tensor, dtype: DataType, layout: Layout, logical_shape, *,
              device=None, memory_config: MemoryConfig | None = None) -> None:  # fmt: skip
        self._data = data
        self._dtype = dtype
        self._layout = layout
        self._logical = Shape(logical_shape)
        self._padded = Shape(padded_shape_of(tuple(self._logical), layout))
        self._device = device
        self._memory_config = memory_config if device is not None else None
        self._address: int | None = None
        self._deallocated = False
        self._traced = False
        if device is not None:
            self._allocate()

    # --- metadata
    @property
    def shape(self) -> Shape:
        return self._logical

    def logical_shape(self) -> Shape:
        return self._logical

    @property
    def padded_shape(self) -> Shape:
        return self._padded

    @property
    def dtype(self) -> DataType:
        return self._dtype

    def get_dtype(self) -> DataType:
        return self._dtype

    @property
    def layout(self) -> Layout:
        return self._layout

    def get_layout(self) -> Layout:
        return self._layout

    def device(self):
        return self._device

    def storage_type(self) -> StorageType:
        return StorageType.DEVICE if self._device is not None else StorageType.HOST

    def memory_config(self) -> MemoryConfig | None:
        return self._memory_config

    def is_sharded(self) -> bool:
        return self._memory_config is not None and self._memory_config.is_sharded()

    def is_allocated(self) -> bool:
        return not self._deallocated

    def volume(self) -> int:
        return math.prod(self._logical)

    def __repr__(self):
        where = "host" if self._device is None else repr(self._memory_config)
        return f"ttnn.Tensor(shape={list(self._logical)}, dtype={self._dtype.name}, layout={self._layout.name}, {where})"

    # --- storage
    def values(self) -> torch.Tensor:
        """The logical values (padding removed), for the emulator's own use."""
        self.check_alive()
        data = self._data
        logical = self._logical
        if logical == data.shape:  # no padding to remove
            return data
        if self._layout == Layout.TILE:
            if len(logical) < 2:
                data = data.reshape(-1)[: math.prod(logical)] if logical else data.reshape(-1)[:1]
                return data.reshape(logical)
            data = data[..., : logical[-2], : logical[-1]]
        return data.reshape(logical)

    def padded_values(self) -> torch.Tensor:
        self.check_alive()
        return self._data

    def check_alive(self) -> None:
        if self._deallocated and not (self._device is not None and self._device.replaying):
            raise fatal("Tensor is deallocated: it cannot be used after ttnn.deallocate")

    # --- device buffer
    def buffer_bytes(self) -> tuple[int, int]:
        """(bytes per bank, total bytes) of this tensor's device buffer."""
        mc, device = self._memory_config, self._device
        padded = self.padded_shape
        if self._layout == Layout.TILE:
            page = self._dtype.tile_bytes
            height = math.prod(padded[:-1])
            pages = height // TILE * (padded[-1] // TILE)
        else:
            page = padded[-1] * self._dtype.element_bytes if padded else self._dtype.element_bytes
            pages = math.prod(padded[:-1]) if len(padded) > 1 else 1
        total = pages * page
        if mc.interleaved:
            banks = device.num_banks(mc.buffer_type)
            return ceil_div(pages, banks) * page, total
        shard_h, shard_w = mc.shard_spec.shape
        if self._layout == Layout.TILE:
            per_bank = (shard_h // TILE) * (shard_w // TILE) * page
        else:
            per_bank = shard_h * shard_w * self._dtype.element_bytes
        return per_bank, total

    def _allocate(self) -> None:
        if self._device.replaying:  # a replayed trace reuses buffers validated at capture
            return
        validate_placement(self, self._memory_config, self._device)
        per_bank, total = self.buffer_bytes()
        self._address = self._device.allocate(self._memory_config.buffer_type, per_bank, total)

    def _release(self) -> None:
        if self._address is not None and self._device is not None:
            self._device.free(self._memory_config.buffer_type, self._address)
            self._address = None

    def deallocate(self, force: bool = True) -> None:
        if self._device is None:
            return
        self._release()
        self._deallocated = True
        self.__dict__.pop("_srca_fields", None)  # op-side caches of this storage
        self.__dict__.pop("_rotary_trans", None)
        if not self._traced:
            self._data = None

    def __del__(self):
        try:
            self._release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # --- conversions and views, as ttnn binds them on Tensor
    def to(self, *args, **kwargs) -> Tensor:
        """`to(device, mem_config=None, cq_id=None)` or `to(target_layout)`."""
        from ttgen.emu.ops.core import tensor_to

        return tensor_to(self, *args, **kwargs)

    def cpu(self, blocking: bool = True, cq_id=None) -> Tensor:
        from ttgen.emu.ops.core import from_device

        return from_device(self, blocking) if self._device is not None else self

    def to_torch(self) -> torch.Tensor:
        from ttgen.emu.ops.core import to_torch

        return to_torch(self)

    def logical_volume(self) -> int:
        return self.volume()

    def element_size(self) -> int:
        return self._dtype.element_bytes

    def __getitem__(self, slices) -> Tensor:
        """Basic slicing (ints, slices with steps, an Ellipsis), as ttnn.Tensor.__getitem__: a
        device tensor through ttnn.slice, a host tensor on the host."""
        from ttgen.emu.ops.core import tensor_getitem

        return tensor_getitem(self, slices)

    # --- operators, as ttnn binds them
    def __add__(self, other):
        from ttgen.emu.ops.eltwise import add

        return add(self, other)

    def __sub__(self, other):
        from ttgen.emu.ops.eltwise import subtract

        return subtract(self, other)

    def __mul__(self, other):
        from ttgen.emu.ops.eltwise import multiply

        return multiply(self, other)


def physical_2d(tensor_shape, layout: Layout) -> tuple[int, int]:
    padded = padded_shape_of(tuple(tensor_shape), layout)
    if len(padded) == 1:
        return 1, padded[0]
    return math.prod(padded[:-1]), padded[-1]


def validate_placement(tensor: Tensor, mc: MemoryConfig, device) -> None:
    """The checks tt-metal's tensor/buffer constructors make for a memory config on a device."""
    require(mc is not None, "A device tensor needs a memory config")
    if tensor.dtype.is_block_float:
        require(
            tensor.layout == Layout.TILE,
            lambda: f"Tile layout is required for tensor of type {tensor.dtype.name}",
        )
    if mc.interleaved:
        return
    require(mc.memory_layout != TensorMemoryLayout.ND_SHARDED, "ND sharding is not emulated")
    spec = mc.shard_spec
    require(
        spec is not None,
        lambda: f"Sharded memory config {mc.memory_layout.name} needs a shard spec",
    )
    height, width = physical_2d(tensor.shape, tensor.layout)
    bbox = spec.grid.bounding_box()
    size = bbox.grid_size()
    grid = device.compute_with_storage_grid_size()
    with rules():
        check_shard(
            memory_layout=mc.memory_layout.name, buffer_type=mc.buffer_type.name, height=height, width=width,
            shard=tuple(spec.shape), tile_layout=tensor.layout == Layout.TILE, grid_end=(bbox.end.x, bbox.end.y),
            grid_size=(size.x, size.y), num_cores=spec.num_cores(),
            row_major=spec.orientation == ShardOrientation.ROW_MAJOR, compute_grid=(grid.x, grid.y),
            dram_banks=device.num_banks(BufferType.DRAM),
        )  # fmt: skip
