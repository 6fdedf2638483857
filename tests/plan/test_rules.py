"""The shared TTNN rules (ttgen.devices.rules): each with a valid and an invalid case. The planner and
the emulator both call these, so each test guards both."""

from types import SimpleNamespace

import pytest

from ttgen.devices.rules import (
    MatmulShapes,
    RuleViolation,
    auto_decode_k_chunk,
    check_decode_heads,
    check_matmul_program_config,
    check_rotary,
    check_sdpa_chunks,
    check_shard,
    check_sharded_norm,
    dest_tiles,
    interleaved_rms_norm_cb_bytes,
    sharded_rms_norm_cb_bytes,
)

GRID = (8, 8)


def shard(**kw):
    args = dict(memory_layout="WIDTH_SHARDED", buffer_type="L1", height=32, width=256, shard=(32, 32), tile_layout=True,
                grid_end=(7, 0), grid_size=(8, 1), num_cores=8, row_major=True, compute_grid=GRID, dram_banks=12)  # fmt: skip
    args.update(kw)
    check_shard(**args)


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(shard=(32, 48)), "must be tile"),
        (dict(shard=(64, 32)), "Shard height 64 must match physical height 32"),
        (dict(num_cores=4, grid_end=(3, 0), grid_size=(4, 1)), "must not exceed number of cores 4"),
        (dict(grid_end=(8, 0)), "outside the compute grid"),
        (dict(buffer_type="DRAM", grid_end=(12, 0)), "DRAM banks"),
        (dict(memory_layout="HEIGHT_SHARDED", shard=(32, 128)), "Shard width 128 must match physical width 256"),
        (dict(memory_layout="BLOCK_SHARDED", height=128, shard=(32, 64), grid_end=(3, 1), grid_size=(4, 2), num_cores=8), "along height 4 must not exceed number of rows 2"),
    ],
)  # fmt: skip
def test_shard_rules(kw, message):
    shard()  # the valid base case
    with pytest.raises(RuleViolation, match=message):
        shard(**kw)


def pc2d(**kw):
    base = dict(in0_block_w=2, out_subblock_h=1, out_subblock_w=2, out_block_h=1, out_block_w=2, per_core_M=1,
                per_core_N=2, transpose_mcast=False, fuse_batch=True)  # fmt: skip
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize(
    "kw, dest, message",
    [
        (dict(in0_block_w=3), 8, r"K \(16\) must be divisible by in0_block_w \(3\)"),
        (
            dict(
                out_subblock_w=2,
                out_subblock_h=2,
                per_core_M=2,
                out_block_h=2,
                per_core_N=4,
                out_block_w=4,
            ),
            8,
            "out_subblock_h must be 1",
        ),
        (dict(out_subblock_w=8, per_core_N=8, out_block_w=8), 4, "needs to be at most 4"),
        (dict(per_core_N=1, out_block_w=1, out_subblock_w=1), 8, "must cover Nt"),
        (dict(per_core_M=0), 8, "per_core_M must be > 0"),
        (dict(out_block_w=3), 8, r"out_block_w \(3\) must be divisible by out_subblock_w"),
    ],
)
def test_2d_matmul_rules(kw, dest, message):
    shapes = MatmulShapes(mt=8, kt=16, nt=16)
    check_matmul_program_config("2d", pc2d(), shapes, dest=8, compute_grid=GRID, grid=(8, 8))
    with pytest.raises(RuleViolation, match=message):
        check_matmul_program_config(
            "2d", pc2d(**kw), shapes, dest=dest, compute_grid=GRID, grid=(8, 8)
        )
    with pytest.raises(RuleViolation, match="exceeds the device grid"):
        check_matmul_program_config("2d", pc2d(), shapes, dest=8, compute_grid=GRID, grid=(9, 8))


def test_dram_sharded_rules():
    pc = SimpleNamespace(in0_block_w=4, per_core_M=1, per_core_N=14)
    ok = MatmulShapes(mt=1, kt=128, nt=448, in0_shard_kt=4, in0_cores=32)
    check_matmul_program_config("dram_sharded", pc, ok, dest=8, compute_grid=GRID)
    with pytest.raises(RuleViolation, match="in0 shard width"):
        check_matmul_program_config(
            "dram_sharded",
            SimpleNamespace(in0_block_w=8, per_core_M=1, per_core_N=14),
            ok,
            dest=8,
            compute_grid=GRID,
        )
    with pytest.raises(RuleViolation, match="needs more than the 32 in0 cores"):
        check_matmul_program_config(
            "dram_sharded",
            SimpleNamespace(in0_block_w=4, per_core_M=1, per_core_N=13),
            ok,
            dest=8,
            compute_grid=GRID,
        )
    with pytest.raises(RuleViolation, match="WIDTH_SHARDED in L1"):
        check_matmul_program_config(
            "dram_sharded", pc, MatmulShapes(mt=1, kt=128, nt=448), dest=8, compute_grid=GRID
        )


def test_1d_matmul_rules():
    pc = SimpleNamespace(in0_block_w=2, out_subblock_h=1, out_subblock_w=1, out_block_h=1, out_block_w=1, per_core_M=1,
                         per_core_N=1, fuse_batch=True, mcast_in0=True)  # fmt: skip
    check_matmul_program_config(
        "1d", pc, MatmulShapes(mt=1, kt=16, nt=8), dest=8, compute_grid=GRID, grid=(8, 1)
    )
    # a width-sharded in0 feeds in0_block_w tiles from each core's shard (found by the ttnn lane)
    with pytest.raises(RuleViolation, match="in0 shard width \\(1 tiles\\)"):
        check_matmul_program_config(
            "1d", pc, MatmulShapes(mt=1, kt=16, nt=8, in0_shard_kt=1, in0_cores=16), dest=8,
            compute_grid=GRID, grid=(8, 1),
        )  # fmt: skip
    with pytest.raises(RuleViolation, match="blocks exceed 4 cores"):
        check_matmul_program_config(
            "1d", pc, MatmulShapes(mt=1, kt=16, nt=8), dest=8, compute_grid=GRID, grid=(4, 1)
        )


def test_sdpa_rules():
    check_sdpa_chunks(64, 64, 128, grid=(8, 8), compute_grid=GRID)
    check_sdpa_chunks(0, 0, None, grid=(8, 8), compute_grid=GRID)  # decode: automatic
    check_sdpa_chunks(96, 64, 192, grid=(8, 8), compute_grid=GRID)  # prefill: any tile multiple
    with pytest.raises(RuleViolation, match="power of 2"):
        check_sdpa_chunks(0, 96, None, grid=(8, 8), compute_grid=GRID)  # decode k chunk
    assert auto_decode_k_chunk(256) == 256 and auto_decode_k_chunk(4096) == 512
    with pytest.raises(RuleViolation, match="maximum calculated k_chunk_size is: 2"):
        auto_decode_k_chunk(250)
    for q, k, s, message in [
        (64, 64, 96, "divisible"),
        (16, 16, 128, "multiple of 32"),
        (0, 64, 128, "positive"),
    ]:
        with pytest.raises(RuleViolation, match=message):
            check_sdpa_chunks(q, k, s, grid=(8, 8), compute_grid=GRID)


def test_sharded_norm_rules():
    check_sharded_norm(
        block_w=4, block_h=1, subblock_w=4, shard=(32, 128), grid=(8, 4), compute_grid=GRID
    )
    with pytest.raises(RuleViolation, match="block_w"):
        check_sharded_norm(
            block_w=2, block_h=1, subblock_w=1, shard=(32, 128), grid=(8, 4), compute_grid=GRID
        )
    with pytest.raises(RuleViolation, match="subblock_w"):
        check_sharded_norm(
            block_w=4, block_h=1, subblock_w=3, shard=(32, 128), grid=(8, 4), compute_grid=GRID
        )


def test_decode_heads_and_rotary_rules():
    check_decode_heads(batch=32, head_dim=128)
    with pytest.raises(RuleViolation, match="head_dim 48"):
        check_decode_heads(batch=32, head_dim=48)
    with pytest.raises(RuleViolation, match="decode batch 33"):
        check_decode_heads(batch=33, head_dim=64)
    check_rotary(head_dim=256, fp32_dest_acc_en=False)
    with pytest.raises(RuleViolation, match="fp32_dest_acc_en=False"):
        check_rotary(head_dim=256, fp32_dest_acc_en=True)


def test_dest_tiles():
    assert (
        dest_tiles(False),
        dest_tiles(True),
        dest_tiles(False, True),
        dest_tiles(True, True),
    ) == (8, 4, 16, 8)


def test_interleaved_rms_norm_cbs_match_the_real_measurements():
    """NO_DISPATCH peak circular-buffer bytes per core that the real ttnn 0.81.1 allocated for
    rms_norm (bf16 input + weight, any row count) on a mock N150, 2026-11-28."""
    measured = {  # (width, fp32_dest_acc_en) -> bytes
        (256, False): 143360, (256, True): 163840, (576, False): 241664, (576, True): 262144,
        (1024, False): 290816, (1024, True): 360448, (2048, False): 487424, (2048, True): 622592,
        (4096, False): 880640, (4096, True): 1146880,
    }  # fmt: skip
    for (width, fp32), real in measured.items():
        got = interleaved_rms_norm_cb_bytes(width_tiles=width // 32, fp32_dest_acc_en=fp32)
        assert got == real, (width, fp32)


def test_sharded_rms_norm_cbs_match_the_real_measurements():
    """NO_DISPATCH circular-buffer bytes per core (peak total minus the output shard) that the real
    ttnn 0.81.1 allocated for a sharded rms_norm of one tile row with a bf16 ROW_MAJOR weight on a
    mock N150, 2026-11-28."""
    measured = {  # (width, cores, fp32_dest_acc_en) -> bytes
        (256, 8, True): 67584, (256, 8, False): 36864, (512, 8, True): 77824, (512, 8, False): 43008,
        (1024, 16, True): 81920, (1024, 16, False): 45056, (2048, 16, True): 102400,
        (2048, 16, False): 57344, (2048, 32, True): 90112, (2048, 32, False): 49152,
        (3072, 24, True): 106496, (3072, 24, False): 59392, (4096, 32, True): 110592,
        (4096, 32, False): 61440, (4096, 16, True): 143360, (4096, 16, False): 81920,
        (8192, 32, True): 151552, (8192, 32, False): 86016, (1536, 8, True): 118784,
        (1536, 8, False): 67584,
    }  # fmt: skip
    for (width, cores, fp32), real in measured.items():
        got = sharded_rms_norm_cb_bytes(
            block_w=width // 32 // cores, num_cores=cores, fp32_dest_acc_en=fp32
        )
        assert got == real, (width, cores, fp32)
