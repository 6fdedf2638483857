"""Memory configs, shard rules and the lock-step allocator."""

import pytest
import torch

from ttgen import emu as ttnn


def _grid(x, y):
    return ttnn.CoreRangeSet([ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(x - 1, y - 1))])


def _sharded(
    layout, grid, shape, buffer=ttnn.BufferType.L1, orientation=ttnn.ShardOrientation.ROW_MAJOR
):
    return ttnn.MemoryConfig(layout, buffer, ttnn.ShardSpec(grid, shape, orientation))


def _put(x, device, mc, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT):
    return ttnn.from_torch(x, dtype=dtype, layout=layout, device=device, memory_config=mc)


HS, WS, BS = (
    ttnn.TensorMemoryLayout.HEIGHT_SHARDED,
    ttnn.TensorMemoryLayout.WIDTH_SHARDED,
    ttnn.TensorMemoryLayout.BLOCK_SHARDED,
)


def test_valid_shardings(device):
    x = torch.randn(1, 1, 256, 256)
    _put(x, device, _sharded(HS, _grid(8, 1), [32, 256]))
    _put(x, device, _sharded(WS, _grid(8, 1), [256, 32]))
    _put(x, device, _sharded(BS, _grid(4, 2), [128, 64]))


@pytest.mark.parametrize(
    "layout, grid, shape, message",
    [
        (HS, (8, 1), [32, 48], r"Physical shard shape \(32, 48\) must be tile \{32, 32\} sized"),
        (HS, (8, 1), [32, 128], "Shard width 128 must match physical width 256"),
        (
            HS,
            (4, 1),
            [32, 256],
            "Number of shards along height 8 must not exceed number of cores 4",
        ),
        (WS, (8, 1), [128, 32], "Shard height 128 must match physical height 256"),
        (WS, (4, 1), [256, 32], "Number of shards along width 8 must not exceed number of cores 4"),
        (BS, (4, 2), [64, 64], "Number of shards along height 4 must not exceed number of rows 2"),
        (
            BS,
            (2, 4),
            [64, 64],
            "Number of shards along width 4 must not exceed number of columns 2",
        ),
        (HS, (9, 1), [32, 256], "outside the compute grid"),
    ],
)
def test_shard_rule_rejections(device, layout, grid, shape, message):
    with pytest.raises(RuntimeError, match=message):
        _put(torch.randn(1, 1, 256, 256), device, _sharded(layout, _grid(*grid), shape))


def test_sharded_config_needs_spec(device):
    with pytest.raises(RuntimeError, match="needs a shard spec"):
        _put(torch.randn(1, 1, 32, 32), device, ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG)


def test_dram_sharding_over_banks(device):
    w = torch.randn(256, 384)
    banks = device.dram_grid_size().x
    assert banks == 12
    _put(w, device, _sharded(WS, _grid(12, 1), [256, 32], ttnn.BufferType.DRAM), ttnn.bfloat8_b)
    with pytest.raises(RuntimeError, match="DRAM banks"):
        _put(w, device, _sharded(WS, _grid(13, 1), [256, 32], ttnn.BufferType.DRAM), ttnn.bfloat8_b)


def test_interleaved_allocation_is_lock_step_per_bank(device):
    before = ttnn.memory_usage(device)["dram_per_bank"]
    t = _put(
        torch.randn(1, 1, 32, 32 * 13), device, ttnn.DRAM_MEMORY_CONFIG
    )  # 13 bf16 tiles over 12 banks
    assert ttnn.memory_usage(device)["dram_per_bank"] - before == 2 * 2048
    ttnn.deallocate(t)
    assert ttnn.memory_usage(device)["dram_per_bank"] == before


def test_block_float_tile_sizes(device):
    l1 = ttnn.L1_MEMORY_CONFIG
    t = _put(torch.randn(1, 1, 32, 32 * 64), device, l1, ttnn.bfloat8_b)  # 64 tiles over 64 cores
    assert ttnn.memory_usage(device)["l1_per_bank"] == 1088
    ttnn.deallocate(t)
    t4 = _put(torch.randn(1, 1, 32, 32 * 64), device, l1, ttnn.bfloat4_b)
    assert ttnn.memory_usage(device)["l1_per_bank"] == 576
    del t4  # a tensor that goes away frees its buffer
    assert ttnn.memory_usage(device)["l1_per_bank"] == 0


def test_l1_out_of_memory(device):
    # 1,393,312 B per core on n150: an 8x8-core height-sharded tensor of 704 tiles (1,441,792 B) per core does not fit
    big = torch.zeros(1, 1, 64 * 32 * 22, 32 * 32)
    mc = _sharded(HS, _grid(8, 8), [32 * 22, 32 * 32])
    with pytest.raises(
        RuntimeError,
        match="Out of Memory: Not enough space to allocate .* L1 buffer across 64 banks",
    ):
        _put(big, device, mc)
    ok = _sharded(HS, _grid(8, 8), [32 * 10, 32 * 32])  # 320 tiles * 2048 B = 655,360 B per core
    a = _put(torch.zeros(1, 1, 64 * 320, 1024), device, ok)
    b = _put(torch.zeros(1, 1, 64 * 320, 1024), device, ok)
    with pytest.raises(RuntimeError, match="Out of Memory"):
        _put(torch.zeros(1, 1, 64 * 320, 1024), device, ok)
    ttnn.deallocate(a)
    _put(torch.zeros(1, 1, 64 * 320, 1024), device, ok)  # the freed range is reused
    del b


def test_dram_out_of_memory(device):
    # 12 GiB of DRAM: a 4096 x 14336 bf16 weight takes 112 MiB; 110 of them do not fit
    with pytest.raises(RuntimeError, match="Out of Memory.*DRAM buffer across 12 banks"):
        device.allocate(ttnn.BufferType.DRAM, 2**30 + 1, 12 * (2**30 + 1))


def test_num_cores_to_corerangeset():
    crs = ttnn.num_cores_to_corerangeset(10, ttnn.CoreCoord(8, 8), row_wise=True)
    assert crs.num_cores() == 10 and len(crs.ranges()) == 2
    col = ttnn.num_cores_to_corerangeset(10, ttnn.CoreCoord(8, 8), row_wise=False)
    assert col.bounding_box().grid_size() == ttnn.CoreCoord(2, 8)
    with pytest.raises(RuntimeError, match="greater than total number"):
        ttnn.num_cores_to_corerangeset(65, ttnn.CoreCoord(8, 8), row_wise=True)


def test_create_sharded_memory_config():
    hs = ttnn.create_sharded_memory_config(
        (1, 1, 256, 64), ttnn.CoreGrid(y=2, x=4), ttnn.ShardStrategy.HEIGHT
    )
    assert hs.shard_spec.shape == [32, 64] and hs.memory_layout == HS
    bs = ttnn.create_sharded_memory_config(
        (1, 1, 256, 256), ttnn.CoreGrid(y=2, x=4), ttnn.ShardStrategy.BLOCK
    )
    assert bs.shard_spec.shape == [128, 64]
    direct = ttnn.create_sharded_memory_config((64, 96), ttnn.CoreGrid(y=1, x=1), ttnn.ShardStrategy.WIDTH,
                                               use_height_and_width_as_shard_shape=True)  # fmt: skip
    assert direct.shard_spec.shape == [64, 96]


def test_config_object_rules():
    with pytest.raises(TypeError):
        ttnn.CoreGrid(8, 8)  # keyword-only, as in ttnn
    with pytest.raises(RuntimeError, match="overlapping"):
        ttnn.CoreRangeSet(
            [
                ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(1, 1)),
                ttnn.CoreRange(ttnn.CoreCoord(1, 1), ttnn.CoreCoord(2, 2)),
            ]
        )
    with pytest.raises(RuntimeError, match="cannot have a shard spec"):
        ttnn.MemoryConfig(
            ttnn.TensorMemoryLayout.INTERLEAVED,
            ttnn.BufferType.L1,
            ttnn.ShardSpec(_grid(1, 1), [32, 32]),
        )
    assert ttnn.WormholeComputeKernelConfig(fp32_dest_acc_en=True).dest_tiles() == 4


def test_blackhole_profile(monkeypatch):
    monkeypatch.setenv("TTGEN_EMU_DEVICE", "p150")
    dev = ttnn.open_device(device_id=0)
    assert dev.compute_with_storage_grid_size() == ttnn.CoreCoord(13, 10)
    assert dev.dram_grid_size().x == 8 and dev.arch() == ttnn.device.Arch.BLACKHOLE
    ttnn.close_device(dev)


def test_matmul_output_is_allocated_before_computing(device):
    """A 16 GiB output fails as DRAM out-of-memory at once, before any value is computed (the
    device allocates an op's outputs before dispatch)."""
    a = ttnn.from_torch(torch.randn(1, 1, 65536, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT,
                        device=device)  # fmt: skip
    b = ttnn.from_torch(torch.randn(1, 1, 32, 131072), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT,
                        device=device)  # fmt: skip
    with pytest.raises(
        RuntimeError, match="Out of Memory: Not enough space to allocate 17179869184 B DRAM"
    ):
        ttnn.matmul(a, b)


def test_l1_buffers_come_from_the_top_and_circular_buffers_must_stay_below(device):
    """L1 buffers are placed from the top of L1, a program's circular buffers from its base; an
    interleaved 4096-wide rms_norm (880,640 B of them) fits below 400 KB of live L1 buffers but
    clashes with 600 KB, with the real 0.81.1's numbers (ttnn lane, mock N150, 2026-11-28)."""

    def held(kb):
        tiles = kb * 1024 // 2048 * 64
        return _put(torch.zeros(1, 1, 32, tiles * 32), device, ttnn.L1_MEMORY_CONFIG)

    x = _put(torch.randn(1, 1, 128, 4096), device, ttnn.DRAM_MEMORY_CONFIG)
    w = _put(
        torch.ones(1, 1, 128, 32), device, ttnn.DRAM_MEMORY_CONFIG, layout=ttnn.ROW_MAJOR_LAYOUT
    )
    ck = ttnn.WormholeComputeKernelConfig(
        math_fidelity=ttnn.MathFidelity.HiFi2, fp32_dest_acc_en=False
    )
    first = held(200)
    assert device.l1_buffers_low() == device.bank_size(ttnn.BufferType.L1) - 200 * 1024
    ttnn.deallocate(first)
    with_400 = held(400)
    ttnn.rms_norm(x, epsilon=1e-5, weight=w, compute_kernel_config=ck)
    ttnn.deallocate(with_400)
    with_600 = held(600)
    with pytest.raises(
        RuntimeError, match="clash with L1 buffers .* allocated at 884736 .* ends at 986464"
    ):
        ttnn.rms_norm(x, epsilon=1e-5, weight=w, compute_kernel_config=ck)
    ttnn.deallocate(with_600)
