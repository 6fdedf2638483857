"""TTNN validity rules on plain numbers, shared by the emulator (which raises them as TT_FATAL
RuntimeErrors) and the planner (which reports them with the op and mode). One implementation of
each rule; the messages follow tt-metal's wording where it is known.

Units: shapes in elements, M/K/N and blocks in tiles of 32 unless a name says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "RuleViolation", "check_matmul_program_config", "check_shard", "check_sharded_norm",
    "check_sdpa_chunks", "dest_tiles", "MatmulShapes",
]  # fmt: skip

TILE = 32


class RuleViolation(ValueError):
    """A TTNN rule that a call or a plan breaks; the message names the rule and the numbers."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise RuleViolation(message)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def dest_tiles(fp32_dest_acc_en: bool, dst_full_sync_en: bool = False) -> int:
    """Dest register tiles available to one output subblock (get_dest_reg_count, 32x32 tiles)."""
    tiles = 16
    if not dst_full_sync_en:
        tiles //= 2
    if fp32_dest_acc_en:
        tiles //= 2
    return tiles


# --------------------------------------------------------------------------- sharding


def check_shard(*, memory_layout: str, buffer_type: str, height: int, width: int, shard: tuple[int, int],
                tile_layout: bool, grid_end: tuple[int, int], grid_size: tuple[int, int], num_cores: int,
                row_major: bool, compute_grid: tuple[int, int], dram_banks: int) -> None:  # fmt: skip
    """A sharded buffer of physical size `height x width` (all dims but the last folded into the
    height, tile-padded for TILE), split into `shard` over a core grid whose bounding box ends at
    `grid_end` (x, y) and spans `grid_size` (x, y)."""
    sh, sw = shard
    _require(sh > 0 and sw > 0, f"shard shape must be positive, got {list(shard)}")
    if tile_layout:
        _require(
            sh % TILE == 0 and sw % TILE == 0,
            f"Physical shard shape ({sh}, {sw}) must be tile {{32, 32}} sized!",
        )
    if buffer_type == "DRAM":
        _require(
            grid_end[0] < dram_banks and grid_end[1] == 0,
            f"DRAM shard grid ending at {grid_end} exceeds the {dram_banks} DRAM banks",
        )
    else:
        _require(
            grid_end[0] < compute_grid[0] and grid_end[1] < compute_grid[1],
            f"Shard grid ending at core {grid_end} is outside the compute grid {compute_grid[0]}x{compute_grid[1]}",
        )
    if memory_layout == "HEIGHT_SHARDED":
        _require(
            sw == width, f"Shard width {sw} must match physical width {width} for height sharding"
        )
        n = _ceil(height, sh)
        _require(
            n <= num_cores,
            f"Number of shards along height {n} must not exceed number of cores {num_cores}",
        )
    elif memory_layout == "WIDTH_SHARDED":
        _require(
            sh == height,
            f"Shard height {sh} must match physical height {height} for width sharding",
        )
        n = _ceil(width, sw)
        _require(
            n <= num_cores,
            f"Number of shards along width {n} must not exceed number of cores {num_cores}",
        )
    elif memory_layout == "BLOCK_SHARDED":
        rows, cols = (grid_size[1], grid_size[0]) if row_major else (grid_size[0], grid_size[1])
        nh, nw = _ceil(height, sh), _ceil(width, sw)
        _require(
            nh <= rows,
            f"Number of shards along height {nh} must not exceed number of rows {rows} for block sharding",
        )
        _require(
            nw <= cols,
            f"Number of shards along width {nw} must not exceed number of columns {cols} for block sharding",
        )
    else:
        raise RuleViolation(f"unsupported sharded memory layout {memory_layout}")


# --------------------------------------------------------------------------- matmul


@dataclass(frozen=True)
class MatmulShapes:
    """Operand sizes of one matmul in tiles, as the program config sees them."""

    mt: int  # padded M of one batch / 32
    kt: int
    nt: int
    batch: int = 1
    in0_shard_kt: int | None = None  # DRAM-sharded: width of one in0 shard, in tiles
    in0_cores: int | None = None  # DRAM-sharded: cores holding in0


def check_matmul_program_config(kind: str, pc, s: MatmulShapes, *, dest: int, compute_grid: tuple[int, int],
                                grid: tuple[int, int] | None = None) -> None:  # fmt: skip
    """`kind` is one of reuse, 2d, 1d, dram_sharded; `pc` has the ttnn program-config fields and
    `grid` is its compute_with_storage_grid_size (x, y) (not used by DRAM-sharded configs)."""
    for field in ("in0_block_w", "per_core_M", "per_core_N"):
        value = getattr(pc, field)
        _require(value is not None and value > 0, f"{field} must be > 0, got {value}")
    _require(
        s.kt % pc.in0_block_w == 0,
        f"K ({s.kt}) must be divisible by in0_block_w ({pc.in0_block_w})",
    )
    m_total = s.mt * s.batch
    if s.in0_shard_kt is not None and kind != "dram_sharded":
        _require(
            s.in0_shard_kt % pc.in0_block_w == 0,
            f"in0 shard width ({s.in0_shard_kt} tiles) must be divisible by in0_block_w ({pc.in0_block_w})",
        )
    if kind == "dram_sharded":
        _require(
            s.in0_shard_kt is not None, "DRAM-sharded matmul: input A must be WIDTH_SHARDED in L1"
        )
        _require(
            s.in0_shard_kt % pc.in0_block_w == 0,
            f"DRAM-sharded matmul: in0 shard width ({s.in0_shard_kt} tiles) must be divisible by in0_block_w ({pc.in0_block_w})",
        )
        _require(
            pc.per_core_M >= m_total,
            f"per_core_M ({pc.per_core_M}) * 32 must cover M ({m_total * TILE})",
        )
        _require(
            _ceil(s.nt, pc.per_core_N) <= s.in0_cores,
            f"DRAM-sharded matmul: N ({s.nt} tiles) / per_core_N ({pc.per_core_N}) needs more than the {s.in0_cores} in0 cores",
        )
        return
    gx, gy = grid
    _require(
        0 < gx <= compute_grid[0] and 0 < gy <= compute_grid[1],
        f"compute_with_storage_grid_size ({gx}, {gy}) exceeds the device grid ({compute_grid[0]}, {compute_grid[1]})",
    )
    h, w = pc.out_subblock_h, pc.out_subblock_w
    _require(
        h * w <= dest,
        f"out_subblock_w {w} times out_subblock_h {h} needs to be at most {dest} to fit in hardware",
    )
    if w != pc.per_core_N:
        _require(
            h == 1,
            f"out_subblock_h must be 1 when out_subblock_w ({w}) != per_core_N ({pc.per_core_N})",
        )
    if kind == "reuse":
        _require(
            pc.per_core_M % h == 0,
            f"per_core_M ({pc.per_core_M}) must be divisible by out_subblock_h ({h})",
        )
        _require(
            pc.per_core_N % w == 0,
            f"per_core_N ({pc.per_core_N}) must be divisible by out_subblock_w ({w})",
        )
        return
    bh, bw = pc.out_block_h, pc.out_block_w
    _require(bh % h == 0, f"out_block_h ({bh}) must be divisible by out_subblock_h ({h})")
    _require(bw % w == 0, f"out_block_w ({bw}) must be divisible by out_subblock_w ({w})")
    _require(
        pc.per_core_M % bh == 0,
        f"per_core_M ({pc.per_core_M}) must be divisible by out_block_h ({bh})",
    )
    _require(
        pc.per_core_N % bw == 0,
        f"per_core_N ({pc.per_core_N}) must be divisible by out_block_w ({bw})",
    )
    mt = s.mt * (s.batch if pc.fuse_batch else 1)
    if kind == "2d":
        rows, cols = (gx, gy) if pc.transpose_mcast else (gy, gx)
        _require(
            pc.per_core_M * rows >= mt,
            f"per_core_M ({pc.per_core_M}) * grid rows ({rows}) must cover Mt ({mt})",
        )
        _require(
            pc.per_core_N * cols >= s.nt,
            f"per_core_N ({pc.per_core_N}) * grid columns ({cols}) must cover Nt ({s.nt})",
        )
    elif kind == "1d":
        cores = gx * gy
        if pc.mcast_in0:
            _require(
                pc.per_core_M >= mt,
                f"1D mcast_in0 matmul: per_core_M ({pc.per_core_M}) must cover Mt ({mt})",
            )
            used = _ceil(s.nt, pc.per_core_N)
            _require(
                used <= cores,
                f"1D matmul: Nt ({s.nt}) / per_core_N ({pc.per_core_N}) = {used} blocks exceed {cores} cores",
            )
        else:
            _require(
                pc.per_core_N >= s.nt,
                f"1D mcast_in1 matmul: per_core_N ({pc.per_core_N}) must cover Nt ({s.nt})",
            )
            used = _ceil(mt, pc.per_core_M)
            _require(
                used <= cores,
                f"1D matmul: Mt ({mt}) / per_core_M ({pc.per_core_M}) = {used} blocks exceed {cores} cores",
            )
    else:
        raise RuleViolation(f"unknown matmul program config kind {kind}")


# --------------------------------------------------------------------------- SDPA and norms


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _dram_sharded_subblock_n(per_core_n: int, fp32_dest_acc_en: bool) -> int:
    """The output width the DRAM-sharded kernel computes per core: its subblock width is widened
    (up to the dest size) to the fewest subblocks, padding per-core N to a subblock multiple."""
    limit = 4 if fp32_dest_acc_en else 8
    w = max(d for d in range(1, limit + 1) if per_core_n % d == 0)
    best_w, best_count = w, per_core_n // w
    if w < limit:
        for cand in range(w + 1, limit + 1):
            count = _ceil(per_core_n, cand)
            if count < best_count:
                best_w, best_count = cand, count
    return best_w * best_count


def dram_sharded_cb_bytes(*, kt: int, nt: int, in0_block_w: int, per_core_m: int, dram_banks: int,
                          in0_tile: int, w_tile: int, out_tile: int, fp32_dest_acc_en: bool,
                          packer_l1_acc: bool, out_is_bf16: bool) -> int:  # fmt: skip
    """Statically allocated circular-buffer bytes per core of a DRAM-sharded matmul (ttnn 0.81.1).
    Each DRAM bank's reader core computes ceil(N / banks) columns whatever per_core_N says: in1
    triple-buffered, in0 double-buffered, the output block, and a separate intermediate block when
    its format differs from the output's. Matches the real package's NO_DISPATCH measurements
    exactly (WH and BH; bf16/bfp8/bfp4 weights; fp32 and bf16 accumulation)."""
    n_sender = _ceil(nt, dram_banks)
    n_compute = _dram_sharded_subblock_n(n_sender, fp32_dest_acc_en)
    multi = kt // in0_block_w > 1
    in1 = n_sender * in0_block_w * (3 if multi else 1) * w_tile
    in0 = per_core_m * in0_block_w * (2 if multi else 1) * in0_tile
    out = per_core_m * n_compute * out_tile
    packer = packer_l1_acc and multi
    interm_fp32 = fp32_dest_acc_en
    interm_bf16 = packer and not fp32_dest_acc_en
    separate = interm_fp32 or (interm_bf16 and not out_is_bf16)
    interm = per_core_m * n_compute * (4096 if interm_fp32 else 2048) if separate else 0
    return in1 + in0 + out + interm


def interleaved_rms_norm_cb_bytes(*, width_tiles: int, fp32_dest_acc_en: bool) -> int:
    """Circular-buffer bytes per core of ttnn.rms_norm on an interleaved bf16 input with a weight
    (ttnn 0.81.1), independent of the row count: the row is processed in blocks of 8 tiles (4 with
    fp32 accumulation), several row-sized buffers plus a fixed set. An empirical model fitted to
    the real package's NO_DISPATCH measurements (the ttnn lane), exact on all ten probed shapes
    (width 256..4096, fp32 and bf16 accumulation); not derived from the kernel source."""
    block = 4 if fp32_dest_acc_en else 8
    wt = _ceil(width_tiles, block) * block
    per_tile, fixed = (4, 48) if fp32_dest_acc_en else (3, 46)
    return (per_tile * wt + fixed) * 2048


def interleaved_layer_norm_cb_bytes(*, width_tiles: int, fp32_dest_acc_en: bool) -> int:
    """Circular-buffer bytes per core of ttnn.layer_norm on an interleaved bf16 input with a
    row-major bf16 weight and bias (ttnn 0.81.1), independent of the row count: the row in blocks of
    4 tiles with fp32 accumulation (7 buffers per tile), 8 without (5 per tile), plus a fixed set.
    An empirical model fitted to the real package's NO_DISPATCH measurements (the ttnn lane), exact
    on all seventeen probed widths (64..3072, fp32 and bf16 accumulation: at 3072 with fp32 the real
    program overflows L1); not derived from the kernel source."""
    block = 4 if fp32_dest_acc_en else 8
    wt = _ceil(width_tiles, block) * block
    per_tile, fixed = (7, 52) if fp32_dest_acc_en else (5, 48)
    return (per_tile * wt + fixed) * 2048


def sharded_rms_norm_cb_bytes(*, block_w: int, num_cores: int, fp32_dest_acc_en: bool) -> int:
    """Circular-buffer bytes per core of ttnn.rms_norm with LayerNormShardedMultiCoreProgramConfig on
    a width-sharded bf16 input of one tile row (block_h 1, a decode residual) with a bf16 ROW_MAJOR
    weight (ttnn 0.81.1): a fixed set, a few block_w-tile buffers, and the cross-core reduction's
    partials, which grow with the number of cores. The sharded input and output live in their own
    buffers. An empirical model fitted to the real package's NO_DISPATCH measurements (the ttnn
    lane), exact on all twenty probes (widths 256..8192 over 8..32 cores, block_w 1..8, fp32 and
    bf16 accumulation); not derived from the kernel source."""
    if fp32_dest_acc_en:
        return (26 + 5 * block_w) * 2048 + num_cores * 512
    return (14 + 3 * block_w) * 2048 + num_cores * 256


def check_static_cbs(total: int, *, l1_bank_size: int, worker_l1_size: int, cores: str,
                     l1_buffers_low: int | None = None) -> None:  # fmt: skip
    """Circular buffers start at the base of a core's allocatable L1 (worker_l1_size -
    l1_bank_size bytes are reserved below it) and must end within the core's L1, and below the
    lowest live L1 buffer (`l1_buffers_low`, an offset above that base: L1 buffers are allocated
    from the top)."""
    base = worker_l1_size - l1_bank_size
    end = base + total
    _require(
        end <= worker_l1_size,
        f"Statically allocated dataflow buffers on core range {cores} grow to {end} B which is "
        f"beyond max L1 size of {worker_l1_size} B",
    )
    if l1_buffers_low is not None:
        _require(
            total <= l1_buffers_low,
            f"Statically allocated dataflow buffers clash with L1 buffers on core range {cores}. "
            f"L1 buffer allocated at {base + l1_buffers_low} and static dataflow buffer region "
            f"ends at {end}",
        )


def check_sdpa_chunks(q_chunk_size: int, k_chunk_size: int, seq_len: int | None, *, grid: tuple[int, int],
                      compute_grid: tuple[int, int]) -> None:  # fmt: skip
    """Prefill (`seq_len` given): tile-multiple chunks that divide the sequence. Decode: 0
    (automatic) or a tile multiple, and k_chunk_size a power of two.

    The real 0.81.1 prefill validator also accepts chunks that do not divide the sequence; ttgen
    keeps requiring it (tt-transformers always picks dividing chunks, and whether the kernels
    handle a partial last chunk cannot be checked without hardware)."""
    _require(
        grid[0] <= compute_grid[0] and grid[1] <= compute_grid[1],
        f"SDPA grid ({grid[0]}, {grid[1]}) exceeds the device grid ({compute_grid[0]}, {compute_grid[1]})",
    )
    for name, size in (("q_chunk_size", q_chunk_size), ("k_chunk_size", k_chunk_size)):
        if seq_len is None and size == 0:
            continue
        _require(
            size > 0 and size % TILE == 0,
            f"User provided {name} must be a positive multiple of 32, got {size}",
        )
        if seq_len is None and name == "k_chunk_size":
            _require(_pow2(size), f"User provided {name} must be power of 2, got: {size}")
        if seq_len is not None:
            _require(
                seq_len % size == 0, f"sequence length {seq_len} must be divisible by {name} {size}"
            )


def check_sharded_norm(*, block_w: int, block_h: int, subblock_w: int, shard: tuple[int, int],
                       grid: tuple[int, int], compute_grid: tuple[int, int],
                       shard_box: tuple[int, int] | None = None) -> None:  # fmt: skip
    """`shard_box`: the (columns, rows) of the input shard grid's bounding box."""
    _require(
        grid[0] <= compute_grid[0] and grid[1] <= compute_grid[1],
        f"norm grid ({grid[0]}, {grid[1]}) exceeds the device grid ({compute_grid[0]}, {compute_grid[1]})",
    )
    if shard_box is not None:
        _require(
            shard_box[0] <= grid[0] and shard_box[1] <= grid[1],
            f"shard_spec.grid size {shard_box[0]}x{shard_box[1]} does not fit within program_config "
            f"grid {grid[0]}x{grid[1]}",
        )
    sh, sw = shard
    _require(block_w * TILE == sw, f"block_w ({block_w}) * 32 must equal the shard width {sw}")
    _require(block_h * TILE == sh, f"block_h ({block_h}) * 32 must equal the shard height {sh}")
    _require(
        block_w % subblock_w == 0,
        f"block_w ({block_w}) must be divisible by subblock_w ({subblock_w})",
    )
    _require(subblock_w <= 8, f"subblock_w ({subblock_w}) must be at most 8")


def check_decode_heads(*, batch: int, head_dim: int) -> None:
    """nlp_create_qkv_heads_decode: at most one tile row of users, tile-aligned heads. (0.81.1 puts
    no limit on the number of query heads, and SDPA decode none on users or heads.)"""
    _require(batch <= TILE, f"decode batch {batch} exceeds {TILE}")
    _require(head_dim % TILE == 0, f"head_dim {head_dim} must be a multiple of the tile width 32")


def auto_decode_k_chunk(cache_len: int) -> int:
    """SDPA decode's k_chunk_size when none is given: the largest power of two dividing the cache
    length, at most 512; it must be a tile multiple."""
    i = 1
    while i < cache_len and cache_len % (1 << (i + 1)) == 0:
        i += 1
    chunk = min(512, 1 << i)
    _require(
        chunk % TILE == 0,
        f"Chunk size must be multiple of 32, but the maximum calculated k_chunk_size is: {chunk}",
    )
    return chunk


def check_rotary(*, head_dim: int, fp32_dest_acc_en: bool) -> None:
    _require(
        head_dim % TILE == 0 and head_dim <= 256,
        f"rotary_embedding_llama: head_dim {head_dim} must be a multiple of 32 and at most 256",
    )
    _require(
        not (head_dim > 128 and fp32_dest_acc_en),
        "rotary_embedding_llama: head_dim > 128 requires fp32_dest_acc_en=False",
    )
