"""Enums, core coordinates, memory configs, compute kernel configs and program configs.

Names, constructor parameters and defaults follow ttnn 0.81.1 (see the API manifest). Validation
that depends on a tensor or a device lives with the ops; what can be checked from a config alone is
checked at construction, as the real nanobind classes do.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from ttgen.emu.errors import fatal, require

__all__ = [
    "BufferType", "CoreCoord", "CoreGrid", "CoreRange", "CoreRangeSet", "DataType", "Layout",
    "MathFidelity", "MemoryConfig", "ShardOrientation", "ShardSpec", "ShardStrategy",
    "TensorMemoryLayout", "UnaryOpType", "UnaryWithParam", "WormholeComputeKernelConfig",
]  # fmt: skip


class DataType(enum.Enum):
    BFLOAT16 = 0
    FLOAT32 = 1
    UINT32 = 2
    BFLOAT8_B = 3
    BFLOAT4_B = 4
    UINT8 = 5
    UINT16 = 6
    INT32 = 7
    FP8_E4M3 = 8
    INT8 = 9
    INVALID = 10

    @property
    def is_block_float(self) -> bool:
        return self in (DataType.BFLOAT8_B, DataType.BFLOAT4_B)

    @property
    def is_float(self) -> bool:
        return self in (DataType.BFLOAT16, DataType.FLOAT32, DataType.BFLOAT8_B, DataType.BFLOAT4_B)

    @property
    def mantissa_bits(self) -> int:
        """Explicit fp32 mantissa bits a stored value of this float dtype can carry: the emulator keeps
        values exactly representable, so truncating to at least this many bits changes nothing.
        Block floats hold a sign and a (bits - 1)-bit magnitude, one bit of which is the leading one."""
        return _MANTISSA_BITS[self]

    @property
    def tile_bytes(self) -> int:
        """Bytes of one 32x32 tile (block floats: 64 shared exponents + mantissas)."""
        return _TILE_BYTES[self]

    @property
    def element_bytes(self) -> int:
        """Bytes per element in ROW_MAJOR layout."""
        require(not self.is_block_float, f"{self.name} has no row-major element size")
        return _TILE_BYTES[self] // 1024


_MANTISSA_BITS = {
    DataType.FLOAT32: 23, DataType.BFLOAT16: 7, DataType.BFLOAT8_B: 6, DataType.BFLOAT4_B: 2,
}  # fmt: skip

_TILE_BYTES = {
    DataType.BFLOAT16: 2048, DataType.FLOAT32: 4096, DataType.UINT32: 4096, DataType.INT32: 4096,
    DataType.UINT16: 2048, DataType.UINT8: 1024, DataType.INT8: 1024, DataType.FP8_E4M3: 1024,
    DataType.BFLOAT8_B: 1088, DataType.BFLOAT4_B: 576,
}  # fmt: skip


class Layout(enum.Enum):
    ROW_MAJOR = 0
    TILE = 1
    INVALID = 2


class TensorMemoryLayout(enum.Enum):
    INTERLEAVED = 0
    HEIGHT_SHARDED = 2
    WIDTH_SHARDED = 3
    BLOCK_SHARDED = 4
    ND_SHARDED = 5


class BufferType(enum.Enum):
    DRAM = 0
    L1 = 1
    L1_SMALL = 3
    TRACE = 4


class ShardOrientation(enum.Enum):
    ROW_MAJOR = 0
    COL_MAJOR = 1


class ShardStrategy(enum.Enum):
    HEIGHT = 1
    WIDTH = 2
    BLOCK = 3


class MathFidelity(enum.Enum):
    LoFi = 0
    HiFi2 = 2
    HiFi3 = 3
    HiFi4 = 4
    Invalid = 255

    @property
    def passes(self) -> int:
        return {"LoFi": 1, "HiFi2": 2, "HiFi3": 3, "HiFi4": 4}[self.name]


class UnaryOpType(enum.Enum):
    RELU = 0
    SILU = 1
    GELU = 2


class ThrottleLevel(enum.Enum):
    NO_THROTTLE = 0


class UnaryWithParam:
    """A fused activation: `UnaryWithParam(UnaryOpType.SILU)` or with parameters."""

    def __init__(self, op_type, /, *params):
        if not isinstance(op_type, UnaryOpType):
            raise TypeError(f"UnaryWithParam: expected a UnaryOpType, got {op_type!r}")
        self._op_type = op_type
        self._params = [float(p) for p in params]

    op_type = property(lambda self: self._op_type)
    params = property(lambda self: list(self._params))

    def __eq__(self, other):
        return isinstance(other, UnaryWithParam) and (self._op_type, self._params) == (
            other._op_type,
            other._params,
        )

    def __repr__(self):
        return f"UnaryWithParam({self._op_type}, {self._params})"


# --------------------------------------------------------------------------- cores and grids


class CoreCoord:
    """A core position: x is the column, y is the row. Positional-only, as in ttnn."""

    __slots__ = ("_x", "_y")

    def __init__(self, arg0, arg1=None, /):
        if arg1 is None:
            arg0, arg1 = arg0
        self._x, self._y = int(arg0), int(arg1)

    x = property(lambda self: self._x)
    y = property(lambda self: self._y)

    def __eq__(self, other):
        return isinstance(other, CoreCoord) and (self._x, self._y) == (other._x, other._y)

    def __hash__(self):
        return hash((self._x, self._y))

    def __repr__(self):
        return f"(x={self._x},y={self._y})"


class CoreRange:
    """An inclusive rectangle of cores."""

    def __init__(self, start: CoreCoord, end: CoreCoord):
        require(
            end.x >= start.x and end.y >= start.y,
            f"Invalid core range for start: {start}, end: {end}",
        )
        self._start, self._end = start, end

    start = property(lambda self: self._start)
    end = property(lambda self: self._end)

    def grid_size(self) -> CoreCoord:
        return CoreCoord(self._end.x - self._start.x + 1, self._end.y - self._start.y + 1)

    def num_cores(self) -> int:
        g = self.grid_size()
        return g.x * g.y

    def cores(self) -> list[CoreCoord]:
        return [
            CoreCoord(x, y)
            for y in range(self._start.y, self._end.y + 1)
            for x in range(self._start.x, self._end.x + 1)
        ]

    def __eq__(self, other):
        return isinstance(other, CoreRange) and (self._start, self._end) == (
            other._start,
            other._end,
        )

    def __hash__(self):
        return hash((self._start, self._end))

    def __repr__(self):
        return f"[{self._start} - {self._end}]"


class CoreRangeSet:
    """A set of non-overlapping core ranges."""

    def __init__(self, core_ranges):
        ranges = sorted(core_ranges, key=lambda r: (r.start.y, r.start.x))
        seen: set[CoreCoord] = set()
        for r in ranges:
            cores = set(r.cores())
            require(
                not (cores & seen), f"Cannot create CoreRangeSet with overlapping ranges {ranges}"
            )
            seen |= cores
        self._ranges = tuple(ranges)

    def ranges(self) -> list[CoreRange]:
        return list(self._ranges)

    def num_cores(self) -> int:
        return sum(r.num_cores() for r in self._ranges)

    def bounding_box(self) -> CoreRange:
        xs0 = min(r.start.x for r in self._ranges)
        ys0 = min(r.start.y for r in self._ranges)
        xs1 = max(r.end.x for r in self._ranges)
        ys1 = max(r.end.y for r in self._ranges)
        return CoreRange(CoreCoord(xs0, ys0), CoreCoord(xs1, ys1))

    def cores(self, row_wise: bool = True) -> list[CoreCoord]:
        cores = [c for r in self._ranges for c in r.cores()]
        key = (lambda c: (c.y, c.x)) if row_wise else (lambda c: (c.x, c.y))
        return sorted(cores, key=key)

    def __eq__(self, other):
        return isinstance(other, CoreRangeSet) and set(self._ranges) == set(other._ranges)

    def __hash__(self):
        return hash(frozenset(self._ranges))

    def __repr__(self):
        return f"CoreRangeSet({list(self._ranges)})"


class CoreGrid:
    """A grid of `y` rows by `x` columns. Keyword-only, as in ttnn."""

    def __init__(self, *, x: int, y: int):
        self._x, self._y = int(x), int(y)

    x = property(lambda self: self._x)
    y = property(lambda self: self._y)
    num_cores = property(lambda self: self._x * self._y)

    def __eq__(self, other):
        return isinstance(other, CoreGrid) and (self._x, self._y) == (other._x, other._y)

    def __repr__(self):
        return f"ttnn.CoreGrid(x={self._x}, y={self._y})"


# --------------------------------------------------------------------------- memory configs


class ShardSpec:
    def __init__(
        self, grid: CoreRangeSet, shard_shape, shard_orientation=ShardOrientation.ROW_MAJOR
    ):
        if not isinstance(grid, CoreRangeSet):
            raise TypeError(f"ShardSpec: grid must be a CoreRangeSet, got {type(grid).__name__}")
        shape = [int(s) for s in shard_shape]
        require(len(shape) == 2, f"shard shape must be 2D, got {shape}")
        require(shape[0] > 0 and shape[1] > 0, f"shard shape must be positive, got {shape}")
        self.grid = grid
        self.shape = shape
        self.orientation = shard_orientation

    def num_cores(self) -> int:
        return self.grid.num_cores()

    def __eq__(self, other):
        return isinstance(other, ShardSpec) and (self.grid, list(self.shape), self.orientation) == (
            other.grid,
            list(other.shape),
            other.orientation,
        )

    def __repr__(self):
        return (
            f"ShardSpec(grid={self.grid}, shape={self.shape}, orientation={self.orientation.name})"
        )


class MemoryConfig:
    def __init__(
        self,
        memory_layout: TensorMemoryLayout = TensorMemoryLayout.INTERLEAVED,
        buffer_type: BufferType = BufferType.DRAM,
        shard_spec: ShardSpec | None = None,
    ):
        if memory_layout == TensorMemoryLayout.INTERLEAVED:
            require(shard_spec is None, "Interleaved memory config cannot have a shard spec")
        self._memory_layout = memory_layout
        self._buffer_type = buffer_type
        self._shard_spec = shard_spec

    memory_layout = property(lambda self: self._memory_layout)
    buffer_type = property(lambda self: self._buffer_type)
    shard_spec = property(lambda self: self._shard_spec)
    nd_shard_spec = property(lambda self: None)

    @property
    def interleaved(self) -> bool:
        return self._memory_layout == TensorMemoryLayout.INTERLEAVED

    def is_sharded(self) -> bool:
        return not self.interleaved

    def with_shard_spec(self, shard_spec: ShardSpec) -> MemoryConfig:
        return MemoryConfig(self._memory_layout, self._buffer_type, shard_spec)

    def __eq__(self, other):
        return isinstance(other, MemoryConfig) and (
            self._memory_layout,
            self._buffer_type,
            self._shard_spec,
        ) == (other._memory_layout, other._buffer_type, other._shard_spec)

    def __hash__(self):
        return hash((self._memory_layout, self._buffer_type))

    def __repr__(self):
        return (
            f"MemoryConfig(memory_layout={self._memory_layout.name}, "
            f"buffer_type={self._buffer_type.name}, shard_spec={self._shard_spec})"
        )


DRAM_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.INTERLEAVED, BufferType.DRAM)
L1_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.INTERLEAVED, BufferType.L1)
L1_HEIGHT_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.HEIGHT_SHARDED, BufferType.L1)
L1_WIDTH_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.WIDTH_SHARDED, BufferType.L1)
L1_BLOCK_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.BLOCK_SHARDED, BufferType.L1)


# --------------------------------------------------------------------------- compute configs


@dataclass
class WormholeComputeKernelConfig:
    math_fidelity: MathFidelity = MathFidelity.Invalid
    math_approx_mode: bool = True
    fp32_dest_acc_en: bool = False
    packer_l1_acc: bool = False
    dst_full_sync_en: bool = False
    throttle_level: ThrottleLevel = ThrottleLevel.NO_THROTTLE

    def __init__(
        self,
        *,
        math_fidelity=MathFidelity.Invalid,
        math_approx_mode=True,
        fp32_dest_acc_en=False,
        packer_l1_acc=False,
        dst_full_sync_en=False,
        throttle_level=ThrottleLevel.NO_THROTTLE,
    ):
        self.math_fidelity = math_fidelity
        self.math_approx_mode = math_approx_mode
        self.fp32_dest_acc_en = fp32_dest_acc_en
        self.packer_l1_acc = packer_l1_acc
        self.dst_full_sync_en = dst_full_sync_en
        self.throttle_level = throttle_level

    def dest_tiles(self) -> int:
        """Dest register tiles available to one subblock (get_dest_reg_count for 32x32 tiles)."""
        tiles = 16
        if not self.dst_full_sync_en:
            tiles //= 2
        if self.fp32_dest_acc_en:
            tiles //= 2
        return tiles


def init_device_compute_kernel_config(
    arch,
    device_kernel_config=None,
    *,
    math_fidelity=MathFidelity.LoFi,
    math_approx_mode=True,
    fp32_dest_acc_en=False,
    packer_l1_acc=False,
    dst_full_sync_en=False,
    throttle_level=ThrottleLevel.NO_THROTTLE,
):
    if device_kernel_config is not None:
        return device_kernel_config
    return WormholeComputeKernelConfig(
        math_fidelity=math_fidelity,
        math_approx_mode=math_approx_mode,
        fp32_dest_acc_en=fp32_dest_acc_en,
        packer_l1_acc=packer_l1_acc,
        dst_full_sync_en=dst_full_sync_en,
        throttle_level=throttle_level,
    )


# --------------------------------------------------------------------------- program configs


def _grid(value) -> CoreCoord:
    if isinstance(value, CoreCoord):
        return value
    if isinstance(value, CoreGrid):
        return CoreCoord(value.x, value.y)
    return CoreCoord(*value)


def _positive(config: str, **fields: int) -> None:
    for name, value in fields.items():
        require(value is not None and value > 0, f"{config}: {name} must be > 0, got {value}")


def _unary_param(value):
    """A program config's fused activation as nanobind converts it: a UnaryOpType, or a pair
    (op, float | int | bool) such as (GELU, True), becomes a UnaryWithParam."""
    if value is None or isinstance(value, UnaryWithParam):
        return value
    if isinstance(value, UnaryOpType):
        return UnaryWithParam(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and isinstance(value[0], UnaryOpType):
        return UnaryWithParam(value[0], float(value[1]))
    raise TypeError(
        f"fused_activation: expected a UnaryWithParam, a UnaryOpType or (UnaryOpType, value), got {value!r}"
    )


@dataclass
class MatmulMultiCoreReuseProgramConfig:
    compute_with_storage_grid_size: CoreCoord
    in0_block_w: int
    out_subblock_h: int
    out_subblock_w: int
    per_core_M: int
    per_core_N: int
    allowed_worker_cores: object = None

    def __init__(self, *, compute_with_storage_grid_size, in0_block_w, out_subblock_h,
                 out_subblock_w, per_core_M, per_core_N, allowed_worker_cores=None):  # fmt: skip
        self.compute_with_storage_grid_size = _grid(compute_with_storage_grid_size)
        self.in0_block_w, self.out_subblock_h, self.out_subblock_w = (
            in0_block_w,
            out_subblock_h,
            out_subblock_w,
        )
        self.per_core_M, self.per_core_N = per_core_M, per_core_N
        self.allowed_worker_cores = allowed_worker_cores
        self.fused_activation = None


@dataclass
class MatmulMultiCoreReuseMultiCastProgramConfig:
    compute_with_storage_grid_size: CoreCoord
    in0_block_w: int
    out_subblock_h: int
    out_subblock_w: int
    out_block_h: int
    out_block_w: int
    per_core_M: int
    per_core_N: int
    transpose_mcast: bool
    fused_activation: UnaryWithParam | None = None
    fuse_batch: bool = True
    allowed_worker_cores: object = None

    def __init__(self, *, compute_with_storage_grid_size, in0_block_w, out_subblock_h,
                 out_subblock_w, out_block_h=None, out_block_w=None, per_core_M, per_core_N,
                 transpose_mcast, fused_activation=None, fuse_batch=True,
                 allowed_worker_cores=None):  # fmt: skip
        self.compute_with_storage_grid_size = _grid(compute_with_storage_grid_size)
        self.in0_block_w, self.out_subblock_h, self.out_subblock_w = (
            in0_block_w,
            out_subblock_h,
            out_subblock_w,
        )
        self.out_block_h = per_core_M if out_block_h is None else out_block_h
        self.out_block_w = per_core_N if out_block_w is None else out_block_w
        self.per_core_M, self.per_core_N = per_core_M, per_core_N
        self.transpose_mcast, self.fused_activation, self.fuse_batch = (
            transpose_mcast,
            _unary_param(fused_activation),
            fuse_batch,
        )
        self.allowed_worker_cores = allowed_worker_cores


@dataclass
class MatmulMultiCoreReuseMultiCast1DProgramConfig:
    compute_with_storage_grid_size: CoreCoord
    in0_block_w: int
    out_subblock_h: int
    out_subblock_w: int
    out_block_h: int
    out_block_w: int
    per_core_M: int
    per_core_N: int
    fuse_batch: bool
    fused_activation: UnaryWithParam | None
    mcast_in0: bool
    gather_in0: bool = False
    hop_cores: dict = field(default_factory=dict)
    num_global_cb_receivers: int = 1
    untilize_out: bool = False
    allowed_worker_cores: object = None
    stream_in1: bool = False

    def __init__(self, *, compute_with_storage_grid_size, in0_block_w, out_subblock_h,
                 out_subblock_w, out_block_h=None, out_block_w=None, per_core_M, per_core_N,
                 fuse_batch, fused_activation=None, mcast_in0, gather_in0=False, hop_cores=None,
                 num_global_cb_receivers=1, untilize_out=False, allowed_worker_cores=None,
                 stream_in1=False):  # fmt: skip
        self.compute_with_storage_grid_size = _grid(compute_with_storage_grid_size)
        self.in0_block_w, self.out_subblock_h, self.out_subblock_w = (
            in0_block_w,
            out_subblock_h,
            out_subblock_w,
        )
        self.out_block_h = per_core_M if out_block_h is None else out_block_h
        self.out_block_w = per_core_N if out_block_w is None else out_block_w
        self.per_core_M, self.per_core_N = per_core_M, per_core_N
        self.fuse_batch, self.fused_activation, self.mcast_in0 = (
            fuse_batch,
            _unary_param(fused_activation),
            mcast_in0,
        )
        self.gather_in0, self.hop_cores = gather_in0, hop_cores or {}
        self.num_global_cb_receivers, self.untilize_out = num_global_cb_receivers, untilize_out
        self.allowed_worker_cores, self.stream_in1 = allowed_worker_cores, stream_in1


@dataclass
class MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig:
    in0_block_w: int
    per_core_M: int
    per_core_N: int
    fused_activation: UnaryWithParam | None = None
    num_workers_per_dram_bank: int = 1

    def __init__(self, *, in0_block_w, per_core_M, per_core_N, fused_activation=None,
                 num_workers_per_dram_bank=1):  # fmt: skip
        self.in0_block_w, self.per_core_M, self.per_core_N = in0_block_w, per_core_M, per_core_N
        self.fused_activation, self.num_workers_per_dram_bank = (
            fused_activation,
            num_workers_per_dram_bank,
        )


@dataclass
class SDPAProgramConfig:
    compute_with_storage_grid_size: CoreCoord
    q_chunk_size: int
    k_chunk_size: int
    exp_approx_mode: bool | None = None
    sub_core_grids: object = None
    max_cores_per_head_batch: int = 16
    max_k_splits: int = 1
    matmul_math_fidelity: MathFidelity | None = None
    segmented_accumulation: bool = False

    def __init__(self, *, compute_with_storage_grid_size, sub_core_grids=None, q_chunk_size,
                 k_chunk_size, exp_approx_mode=None, max_cores_per_head_batch=16, max_k_splits=1,
                 matmul_math_fidelity=None, segmented_accumulation=False):  # fmt: skip
        self.compute_with_storage_grid_size = _grid(compute_with_storage_grid_size)
        self.sub_core_grids, self.q_chunk_size, self.k_chunk_size = (
            sub_core_grids,
            q_chunk_size,
            k_chunk_size,
        )
        self.exp_approx_mode, self.max_cores_per_head_batch = (
            exp_approx_mode,
            max_cores_per_head_batch,
        )
        self.max_k_splits, self.matmul_math_fidelity = max_k_splits, matmul_math_fidelity
        self.segmented_accumulation = segmented_accumulation


@dataclass
class LayerNormShardedMultiCoreProgramConfig:
    compute_with_storage_grid_size: CoreCoord
    subblock_w: int
    block_h: int
    block_w: int
    inplace: bool
    legacy_reduction: bool = False
    legacy_rsqrt: bool = False
    use_welford: bool = False

    def __init__(self, *, compute_with_storage_grid_size, subblock_w, block_h, block_w, inplace,
                 legacy_reduction=False, legacy_rsqrt=False, use_welford=False):  # fmt: skip
        self.compute_with_storage_grid_size = _grid(compute_with_storage_grid_size)
        self.subblock_w, self.block_h, self.block_w, self.inplace = (
            subblock_w,
            block_h,
            block_w,
            inplace,
        )
        self.legacy_reduction, self.legacy_rsqrt, self.use_welford = (
            legacy_reduction,
            legacy_rsqrt,
            use_welford,
        )


@dataclass
class LayerNormDefaultProgramConfig:
    legacy_reduction: bool = False
    legacy_rsqrt: bool = False
    use_welford: bool = False

    def __init__(self, *, legacy_reduction=False, legacy_rsqrt=False, use_welford=False):
        self.legacy_reduction, self.legacy_rsqrt, self.use_welford = (
            legacy_reduction,
            legacy_rsqrt,
            use_welford,
        )


class SoftmaxDefaultProgramConfig:
    """The interleaved softmax program (all cores, rows split between them)."""

    def __eq__(self, other):
        return isinstance(other, SoftmaxDefaultProgramConfig)

    def __hash__(self):
        return hash(type(self))

    def __repr__(self):
        return "SoftmaxDefaultProgramConfig()"


@dataclass
class SoftmaxShardedMultiCoreProgramConfig:
    """The sharded in-place softmax: one shard of block_h x block_w tiles per core of the grid."""

    compute_with_storage_grid_size: CoreCoord
    subblock_w: int
    block_h: int
    block_w: int

    def __init__(self, *, compute_with_storage_grid_size, subblock_w, block_h, block_w):
        self.compute_with_storage_grid_size = _grid(compute_with_storage_grid_size)
        self.subblock_w, self.block_h, self.block_w = subblock_w, block_h, block_w


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def round_up(a: int, b: int) -> int:
    return ceil_div(a, b) * b


def num_cores_to_corerangeset(
    target_num_cores: int, grid_size, row_wise: bool = False
) -> CoreRangeSet:
    """The first `target_num_cores` cores of `grid_size`, row by row (or column by column)."""
    grid = _grid(grid_size)
    require(
        0 < target_num_cores <= grid.x * grid.y,
        f"Target number of cores {target_num_cores} is greater than total number of available cores "
        f"{grid.x * grid.y}",
    )
    ranges = []
    if row_wise:
        full_rows, rem = divmod(target_num_cores, grid.x)
        if full_rows:
            ranges.append(CoreRange(CoreCoord(0, 0), CoreCoord(grid.x - 1, full_rows - 1)))
        if rem:
            ranges.append(CoreRange(CoreCoord(0, full_rows), CoreCoord(rem - 1, full_rows)))
    else:
        full_cols, rem = divmod(target_num_cores, grid.y)
        if full_cols:
            ranges.append(CoreRange(CoreCoord(0, 0), CoreCoord(full_cols - 1, grid.y - 1)))
        if rem:
            ranges.append(CoreRange(CoreCoord(full_cols, 0), CoreCoord(full_cols, rem - 1)))
    return CoreRangeSet(ranges)


def create_sharded_memory_config(
    shape,
    core_grid,
    strategy: ShardStrategy,
    orientation: ShardOrientation | None = None,
    use_height_and_width_as_shard_shape: bool = False,
) -> MemoryConfig:
    """An L1 sharded memory config; the tensor is flattened to [prod(all but last), last]."""
    orientation = orientation or ShardOrientation.ROW_MAJOR
    if isinstance(core_grid, CoreGrid):
        grid = CoreRangeSet(
            [CoreRange(CoreCoord(0, 0), CoreCoord(core_grid.x - 1, core_grid.y - 1))]
        )
        rows, cols = core_grid.y, core_grid.x
    elif isinstance(core_grid, CoreRange):
        grid = CoreRangeSet([core_grid])
        size = core_grid.grid_size()
        rows, cols = size.y, size.x
    elif isinstance(core_grid, CoreRangeSet):
        grid = core_grid
        size = core_grid.bounding_box().grid_size()
        rows, cols = size.y, size.x
    else:
        raise fatal(f"create_sharded_memory_config: unsupported core_grid {core_grid!r}")
    shape = list(shape)
    if use_height_and_width_as_shard_shape:
        shard = [int(shape[-2]), int(shape[-1])]
    else:
        height, width = math.prod(shape[:-1]), shape[-1]
        ncores = grid.num_cores()
        if strategy == ShardStrategy.HEIGHT:
            shard = [ceil_div(height, ncores), width]
        elif strategy == ShardStrategy.WIDTH:
            shard = [height, ceil_div(width, ncores)]
        else:
            if orientation == ShardOrientation.COL_MAJOR:
                rows, cols = cols, rows
            shard = [ceil_div(height, rows), ceil_div(width, cols)]
    layout = {
        ShardStrategy.HEIGHT: TensorMemoryLayout.HEIGHT_SHARDED,
        ShardStrategy.WIDTH: TensorMemoryLayout.WIDTH_SHARDED,
        ShardStrategy.BLOCK: TensorMemoryLayout.BLOCK_SHARDED,
    }[strategy]
    return MemoryConfig(layout, BufferType.L1, ShardSpec(grid, shard, orientation))
