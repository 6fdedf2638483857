"""Hardware profiles as data, shared by the planner, the cost model and the emulator."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources

import yaml

__all__ = ["DEFAULT_DEVICE", "DeviceProfile", "PerfParams", "device_names", "get_device"]

DEFAULT_DEVICE = "n150"


@dataclass(frozen=True)
class PerfParams:
    """Efficiencies and per-op costs of the analytic cost model (ttgen.perf)."""

    dram_efficiency: float
    compute_efficiency: float
    traced_op_us: float
    dispatch_op_us: float


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    arch: str  # wormhole_b0 | blackhole
    num_chips: int
    compute_grid: tuple[int, int]  # (x, y)
    tensix_cores: int
    clock_ghz: float
    l1_bank_size: int
    worker_l1_size: int
    l1_alignment: int
    dram_banks: int
    dram_bank_size: int
    dram_alignment: int
    dram_bandwidth_gbs: float
    perf: PerfParams

    @property
    def num_compute_cores(self) -> int:
        return self.compute_grid[0] * self.compute_grid[1]


def device_names() -> list[str]:
    files = resources.files("ttgen.devices").iterdir()
    return sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml"))


@functools.cache
def get_device(name: str = DEFAULT_DEVICE) -> DeviceProfile:
    if name not in device_names():
        raise KeyError(f"unknown device '{name}' (known: {', '.join(device_names())})")
    data = yaml.safe_load(resources.files("ttgen.devices").joinpath(f"{name}.yaml").read_text())
    data["compute_grid"] = tuple(data["compute_grid"])
    data["perf"] = PerfParams(**data["perf"])
    return DeviceProfile(**data)
