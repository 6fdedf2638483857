"""ttgen.emu — a strict CPU emulator of the TTNN subset ttgen's templates use, as a drop-in `ttnn`.

Same names, parameters and defaults as ttnn 0.81.1; numerics follow the documented hardware
algorithms (bf16 rounding, bit-exact block floats, matmul fidelity passes, bf16/fp32 destination
accumulation); validators reject what the real ops reject, with TT_FATAL-like RuntimeErrors; a
lock-step allocator raises out-of-memory as the device does. `install()` makes `import ttnn` load
it; generated code never imports it by name.
"""

from __future__ import annotations

import sys

from ttgen.emu import experimental, transformer
from ttgen.emu.device import (
    DEFAULT_L1_SMALL_SIZE,
    DEFAULT_TRACE_REGION_SIZE,
    DEFAULT_WORKER_L1_SIZE,
    Arch,
    MeshDevice,
    MeshShape,
    close_device,
    close_mesh_device,
    open_device,
    open_mesh_device,
)
from ttgen.emu.mesh import (
    ConcatMesh2dToTensor,
    ConcatMeshToTensor,
    ReplicateTensorToMesh,
    ShardTensor2dMesh,
    ShardTensorToMesh,
    concat_mesh_to_tensor_composer,
    replicate_tensor_to_mesh_mapper,
    shard_tensor_to_mesh_mapper,
)
from ttgen.emu.ops.core import (
    as_tensor,
    clone,
    concat,
    copy_host_to_device_tensor,
    deallocate,
    fold,
    from_device,
    from_torch,
    get_memory_config,
    interleaved_to_sharded,
    pad,
    permute,
    reallocate,
    reshape,
    reshard,
    sharded_to_interleaved,
    slice,
    tilize,
    to_device,
    to_layout,
    to_memory_config,
    to_torch,
    transpose,
    typecast,
    unsqueeze_to_4D,
    untilize,
)
from ttgen.emu.ops.eltwise import add, gelu, mul, mul_, multiply, silu, sub, subtract
from ttgen.emu.ops.experimental import fill_cache, update_cache
from ttgen.emu.ops.matmul import linear, matmul
from ttgen.emu.ops.misc import argmax, embedding, plus_one, topk
from ttgen.emu.ops.norm import (
    layer_norm,
    rms_norm,
    scale_mask_softmax,
    scale_mask_softmax_in_place,
    softmax,
    softmax_in_place,
)
from ttgen.emu.ops.trace import (
    begin_trace_capture,
    end_trace_capture,
    event_synchronize,
    execute_trace,
    record_event,
    release_trace,
    synchronize_device,
    wait_for_event,
)
from ttgen.emu.tensor import Shape, StorageType, Tensor
from ttgen.emu.types import (
    DRAM_MEMORY_CONFIG,
    L1_BLOCK_SHARDED_MEMORY_CONFIG,
    L1_HEIGHT_SHARDED_MEMORY_CONFIG,
    L1_MEMORY_CONFIG,
    L1_WIDTH_SHARDED_MEMORY_CONFIG,
    BufferType,
    CoreCoord,
    CoreGrid,
    CoreRange,
    CoreRangeSet,
    DataType,
    LayerNormDefaultProgramConfig,
    LayerNormShardedMultiCoreProgramConfig,
    Layout,
    MathFidelity,
    MatmulMultiCoreReuseMultiCast1DProgramConfig,
    MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig,
    MatmulMultiCoreReuseMultiCastProgramConfig,
    MatmulMultiCoreReuseProgramConfig,
    MemoryConfig,
    SDPAProgramConfig,
    ShardOrientation,
    ShardSpec,
    ShardStrategy,
    SoftmaxDefaultProgramConfig,
    SoftmaxShardedMultiCoreProgramConfig,
    TensorMemoryLayout,
    UnaryOpType,
    UnaryWithParam,
    WormholeComputeKernelConfig,
    create_sharded_memory_config,
    init_device_compute_kernel_config,
    num_cores_to_corerangeset,
)

__version__ = "0.81.1+ttgen.emu"
EMULATED = True

bfloat16 = DataType.BFLOAT16
float32 = DataType.FLOAT32
uint32 = DataType.UINT32
int32 = DataType.INT32
uint16 = DataType.UINT16
uint8 = DataType.UINT8
bfloat8_b = DataType.BFLOAT8_B
bfloat4_b = DataType.BFLOAT4_B

ROW_MAJOR_LAYOUT = Layout.ROW_MAJOR
TILE_LAYOUT = Layout.TILE
TILE_SIZE = 32


def get_arch_name() -> str:
    from ttgen.emu.device import _profile_from_env

    return _profile_from_env().arch


def is_trace_capture_active(device) -> bool:
    return device.capturing is not None


def memory_usage(device) -> dict[str, int]:
    """Emulator extension (not a ttnn API): bytes allocated per bank, per buffer type."""
    return {
        "dram_per_bank": device.bytes_allocated_per_bank(BufferType.DRAM),
        "l1_per_bank": device.bytes_allocated_per_bank(BufferType.L1),
    }


from ttgen.emu import golden as _golden  # noqa: E402

get_golden_function = _golden.get_golden_function
_golden.attach_goldens(sys.modules[__name__], transformer, experimental)


def install() -> None:
    """Make `import ttnn` (and ttnn.experimental / ttnn.transformer) resolve to the emulator."""
    module = sys.modules[__name__]
    sys.modules["ttnn"] = module
    sys.modules["ttnn.experimental"] = experimental
    sys.modules["ttnn.transformer"] = transformer
