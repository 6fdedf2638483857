"""The emulated device: a 1x1 mesh with a lock-step L1 and DRAM allocator, trace capture and
command queues.

Allocation is lock-step like tt-metal's: a buffer takes the same address range on every bank of
its buffer type (all DRAM channels, or the L1 of every worker core), sized by the bank that stores
the most. Each buffer type is one first-fit address space of `bank_size` bytes, so fragmentation
and out-of-memory behave as on the device.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field

from ttgen.devices import DEFAULT_DEVICE, DeviceProfile, get_device
from ttgen.emu.errors import fatal, require
from ttgen.emu.types import BufferType, CoreCoord

__all__ = ["Arch", "MeshDevice", "MeshShape", "close_device", "open_device"]

DEFAULT_L1_SMALL_SIZE = 0
DEFAULT_TRACE_REGION_SIZE = 0
DEFAULT_WORKER_L1_SIZE = 0

DEVICE_ENV = "TTGEN_EMU_DEVICE"


class Arch(enum.Enum):
    WORMHOLE_B0 = 2
    BLACKHOLE = 3


class MeshShape:
    def __init__(self, *dims):
        if len(dims) == 1 and not isinstance(dims[0], int):
            dims = tuple(dims[0])
        self._dims = tuple(int(d) for d in dims)

    def __iter__(self):
        return iter(self._dims)

    def __getitem__(self, i):
        return self._dims[i]

    def __len__(self):
        return len(self._dims)

    def mesh_size(self) -> int:
        n = 1
        for d in self._dims:
            n *= d
        return n

    def __eq__(self, other):
        return tuple(self) == tuple(other)

    def __repr__(self):
        return f"MeshShape({list(self._dims)})"


@dataclass
class _AddressSpace:
    """One buffer type's lock-step address space: first-fit over [0, bank_size), from the bottom, or
    from the top (L1, as tt-metal allocates it: circular buffers grow up from the bottom and must
    not reach the lowest L1 buffer)."""

    kind: str
    num_banks: int
    bank_size: int
    alignment: int
    top_down: bool = False
    blocks: dict[int, int] = field(default_factory=dict)  # start → size

    def allocate(self, per_bank: int, total: int) -> int:
        size = -(-per_bank // self.alignment) * self.alignment
        if self.top_down:
            top = self.bank_size
            for start in sorted(self.blocks, reverse=True):
                if top - (start + self.blocks[start]) >= size:
                    break
                top = start
            cursor = top - size
            fits = cursor >= 0
        else:
            cursor = 0
            for start in sorted(self.blocks):
                if start - cursor >= size:
                    break
                cursor = start + self.blocks[start]
            fits = cursor + size <= self.bank_size
        if not fits:
            raise fatal(
                f"Out of Memory: Not enough space to allocate {total} B {self.kind} buffer across "
                f"{self.num_banks} banks, where each bank needs to store {size} B, but bank size is "
                f"{self.bank_size} B (allocated: {self.used} B, free: {self.bank_size - self.used} B)"
            )
        self.blocks[cursor] = size
        return cursor

    def free(self, address: int) -> None:
        self.blocks.pop(address, None)

    @property
    def used(self) -> int:
        return sum(self.blocks.values())

    @property
    def lowest(self) -> int:
        """The lowest allocated offset (bank_size when nothing is allocated)."""
        return min(self.blocks, default=self.bank_size)


class MeshDevice:
    """A single emulated chip presented as a 1x1 mesh, as `ttnn.open_device` returns it."""

    def __init__(self, profile: DeviceProfile, *, device_id: int, l1_small_size: int,
                 trace_region_size: int, num_command_queues: int, worker_l1_size: int):  # fmt: skip
        require(
            num_command_queues in (1, 2),
            lambda: f"num_command_queues must be 1 or 2, got {num_command_queues}",
        )
        self.profile = profile
        self._id = device_id
        self.l1_small_size = l1_small_size
        self.trace_region_size = trace_region_size
        self.num_command_queues = num_command_queues
        l1_bank = profile.l1_bank_size - l1_small_size
        if worker_l1_size:
            l1_bank = min(l1_bank, worker_l1_size)
        self._spaces = {
            BufferType.DRAM: _AddressSpace("DRAM", profile.dram_banks, profile.dram_bank_size, profile.dram_alignment),
            BufferType.L1: _AddressSpace("L1", profile.num_compute_cores, l1_bank, profile.l1_alignment, top_down=True),
        }  # fmt: skip
        self._open = True
        # Trace state: the op list being captured, captured traces, and whether one is replaying.
        self.capturing: list | None = None
        self.capture_cq: int | None = None
        self.traces: dict[int, list] = {}
        self.replaying = False
        self._next_trace_id = 0
        self._events = 0
        # Program cache: on by default in 0.81.1; one entry per distinct program (op, input specs,
        # attributes) the device has compiled (ttgen.emu.ops._op.device_op adds them).
        self.program_cache: set = set()
        self.program_cache_enabled = True

    # --- queries, as the real MeshDevice answers them
    def id(self) -> int:
        return self._id

    def arch(self) -> Arch:
        return Arch.BLACKHOLE if self.profile.arch == "blackhole" else Arch.WORMHOLE_B0

    def compute_with_storage_grid_size(self) -> CoreCoord:
        return CoreCoord(*self.profile.compute_grid)

    def dram_grid_size(self) -> CoreCoord:
        return CoreCoord(self.profile.dram_banks, 1)

    def get_num_devices(self) -> int:
        return 1

    @property
    def shape(self) -> MeshShape:
        return MeshShape(1, 1)

    def num_dram_channels(self) -> int:
        return self.profile.dram_banks

    def is_open(self) -> bool:
        return self._open

    # --- program cache
    def num_program_cache_entries(self) -> int:
        return len(self.program_cache)

    def enable_program_cache(self) -> None:
        self.program_cache_enabled = True

    def disable_and_clear_program_cache(self) -> None:
        self.program_cache_enabled = False
        self.program_cache.clear()

    def clear_program_cache(self) -> None:
        self.program_cache.clear()

    # --- allocator
    def num_banks(self, buffer_type: BufferType) -> int:
        return self._space(buffer_type).num_banks

    def _space(self, buffer_type: BufferType) -> _AddressSpace:
        require(self._open, "Device is closed")
        kind = BufferType.L1 if buffer_type == BufferType.L1_SMALL else buffer_type
        require(kind in self._spaces, lambda: f"Unsupported buffer type {buffer_type}")
        return self._spaces[kind]

    def allocate(self, buffer_type: BufferType, per_bank: int, total: int) -> int:
        return self._space(buffer_type).allocate(per_bank, total)

    def free(self, buffer_type: BufferType, address: int) -> None:
        if self._open:
            self._space(buffer_type).free(address)

    def l1_buffers_low(self) -> int:
        """Offset of the lowest live L1 buffer above the allocatable base: static circular buffers,
        which grow up from that base, must end below it."""
        return self._space(BufferType.L1).lowest

    def bytes_allocated_per_bank(self, buffer_type: BufferType) -> int:
        return self._space(buffer_type).used

    def bank_size(self, buffer_type: BufferType) -> int:
        return self._space(buffer_type).bank_size

    def __repr__(self):
        return f"MeshDevice(emulated {self.profile.name}, id={self._id}, shape=[1, 1])"


def _profile_from_env() -> DeviceProfile:
    name = os.environ.get(DEVICE_ENV, DEFAULT_DEVICE)
    try:
        return get_device(name)
    except KeyError as exc:
        raise fatal(f"{DEVICE_ENV}: {exc.args[0]}") from None


def open_device(*, device_id, l1_small_size=DEFAULT_L1_SMALL_SIZE,
                trace_region_size=DEFAULT_TRACE_REGION_SIZE, num_command_queues=1,
                dispatch_core_config=None, worker_l1_size=DEFAULT_WORKER_L1_SIZE) -> MeshDevice:  # fmt: skip
    """Open the emulated chip named by $TTGEN_EMU_DEVICE (default n150)."""
    require(
        device_id == 0, lambda: f"Device {device_id} is not available: the emulator has one chip"
    )
    return MeshDevice(
        _profile_from_env(),
        device_id=device_id,
        l1_small_size=l1_small_size,
        trace_region_size=trace_region_size,
        num_command_queues=num_command_queues,
        worker_l1_size=worker_l1_size,
    )


def close_device(device: MeshDevice) -> None:
    require(device.capturing is None, "Cannot close a device while a trace capture is active")
    device._open = False


def open_mesh_device(mesh_shape=None, l1_small_size=0, trace_region_size=0, num_command_queues=1,
                     dispatch_core_config=None, offset=None, physical_device_ids=(),
                     worker_l1_size=0) -> MeshDevice:  # fmt: skip
    if mesh_shape is not None:
        require(
            MeshShape(mesh_shape).mesh_size() == 1,
            lambda: f"the emulator has one chip; cannot open a {mesh_shape} mesh",
        )
    return open_device(device_id=0, l1_small_size=l1_small_size,
                       trace_region_size=trace_region_size, num_command_queues=num_command_queues,
                       worker_l1_size=worker_l1_size)  # fmt: skip


def close_mesh_device(mesh_device: MeshDevice) -> None:
    close_device(mesh_device)
