"""tt-transformers' config formulas (models/tt_transformers/tt/model_config.py), generalised to the
device's grid and DRAM banks, plus the L1 circular-buffer estimates the planner budgets with."""

from __future__ import annotations

from ttgen.devices.rules import dest_tiles
from ttgen.plan.types import TILE, TILE_BYTES, ComputeCfg, MemCfg, ProgCfg

__all__ = [
    "cb_matmul", "dram_sharded_matmul", "dram_weight_memcfg", "k_grid_cores", "largest_divisor",
    "matmul_2d", "ranges_for", "width_sharded",
]  # fmt: skip


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def largest_divisor(n: int, at_most: int) -> int:
    return max(d for d in range(1, min(n, at_most) + 1) if n % d == 0)


def ranges_for(num_cores: int, grid: tuple[int, int]) -> tuple[tuple[int, int, int, int], ...]:
    """The first `num_cores` cores of the grid, row by row (ttnn.num_cores_to_corerangeset)."""
    gx = grid[0]
    rows, rem = divmod(num_cores, gx)
    out = []
    if rows:
        out.append((0, 0, gx - 1, rows - 1))
    if rem:
        out.append((0, rows, rem - 1, rows))
    return tuple(out)


def k_grid_cores(k_tiles: int, grid: tuple[int, int], target: int = 32) -> int:
    """tt-transformers `find_grid`: the core count dividing the K tiles that is closest to `target`
    (the larger on a tie) and forms a rectangle (a partial row, or whole rows) on at most 8x8 cores."""
    gx, gy = min(grid[0], 8), min(grid[1], 8)
    options = [n for n in range(1, gx * gy + 1) if k_tiles % n == 0 and (n <= gx or n % gx == 0)]
    return min(options, key=lambda n: (abs(n - target), -n))


def width_sharded(
    rows: int, width: int, cores: int, grid: tuple[int, int], buffer: str = "L1"
) -> MemCfg:
    return MemCfg("WIDTH_SHARDED", buffer, ranges_for(cores, grid), (rows, width // cores))


def height_sharded(rows_per_core: int, width: int, cores: int, grid: tuple[int, int]) -> MemCfg:
    return MemCfg("HEIGHT_SHARDED", "L1", ranges_for(cores, grid), (rows_per_core, width))


def dram_weight_memcfg(k: int, n: int, banks: int) -> MemCfg:
    """`create_dram_sharded_mem_config`: weight columns spread over every DRAM bank."""
    return MemCfg(
        "WIDTH_SHARDED", "DRAM", ((0, 0, banks - 1, 0),), (k, ceil_div(n, TILE * banks) * TILE)
    )


def dram_sharded_matmul(
    m: int, k: int, n: int, in0_cores: int, fused_activation: str | None = None
) -> ProgCfg:
    """`dram_matmul_config`: in0 width-sharded over `in0_cores`, weights streamed from DRAM."""
    kt_per_core = k // (TILE * in0_cores)
    return ProgCfg("dram_sharded", None, (
        ("in0_block_w", largest_divisor(kt_per_core, 8)),
        ("per_core_M", ceil_div(m, TILE)),
        ("per_core_N", ceil_div(n, TILE * in0_cores)),
        ("fused_activation", fused_activation),
    ))  # fmt: skip


def matmul_2d(m: int, k: int, n: int, grid: tuple[int, int], in0_block_w: int, dest: int,
              fuse_batch: bool = True, fused_activation: str | None = None) -> ProgCfg:  # fmt: skip
    """`matmul_config`: 2D multicast, out_subblock_h = 1, the widest subblock dividing per_core_N."""
    per_core_m = ceil_div(m, TILE * grid[1])
    per_core_n = ceil_div(n, TILE * grid[0])
    return ProgCfg("2d", grid, (
        ("in0_block_w", in0_block_w),
        ("out_subblock_h", 1),
        ("out_subblock_w", largest_divisor(per_core_n, dest)),
        ("out_block_h", per_core_m),
        ("out_block_w", per_core_n),
        ("per_core_M", per_core_m),
        ("per_core_N", per_core_n),
        ("transpose_mcast", False),
        ("fused_activation", fused_activation),
        ("fuse_batch", fuse_batch),
    ))  # fmt: skip


def cb_matmul(pc: ProgCfg, in0_dtype: str, w_dtype: str, out_dtype: str, compute: ComputeCfg,
              in0_sharded: bool, out_sharded: bool) -> int:  # fmt: skip
    """Circular-buffer bytes on one core: double-buffered in0 and in1 blocks, the output block and,
    with packer L1 accumulation or bf16 partials, an intermediate block. Sharded operands are their
    own buffers (counted with the tensor, not here)."""
    m, n, kb = pc.per_core_M, pc.per_core_N, pc.in0_block_w
    total = 2 * kb * n * TILE_BYTES[w_dtype]
    if not in0_sharded:
        total += 2 * kb * m * TILE_BYTES[in0_dtype]
    if not out_sharded:
        total += m * n * TILE_BYTES[out_dtype]
    if compute.packer_l1_acc or not compute.fp32_dest_acc_en:
        total += m * n * TILE_BYTES["float32" if compute.fp32_dest_acc_en else "bfloat16"]
    return total


def dest_for(compute: ComputeCfg | None) -> int:
    return dest_tiles(bool(compute and compute.fp32_dest_acc_en))
