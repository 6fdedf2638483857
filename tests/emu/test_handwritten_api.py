"""What hand-written TTNN code uses besides the ops ttgen's templates emit: every overload of an
op, the program cache, golden functions, the Tensor API and the softmax family — each checked
against what 0.81.1 does (probed on the real package; the lane repeats the validity cases)."""

import pytest
import torch

from ttgen import emu as ttnn


@pytest.fixture
def device():
    d = ttnn.open_device(device_id=0)
    yield d
    ttnn.close_device(d)


def _dev(x, device, layout=ttnn.TILE_LAYOUT, dtype=ttnn.bfloat16):
    return ttnn.from_torch(
        x, dtype=dtype, layout=layout, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG
    )


def _width_sharded(cores=8, width=32):
    return ttnn.create_sharded_memory_config((32, width), ttnn.CoreGrid(y=1, x=cores), ttnn.ShardStrategy.WIDTH,
                                             use_height_and_width_as_shard_shape=True)  # fmt: skip


# ------------------------------------------------------------------ overloads


def test_interleaved_to_sharded_every_overload(device):
    x = _dev(torch.randn(1, 1, 32, 256), device)
    crs = ttnn.CoreRangeSet({ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(7, 0))})
    by_mc = ttnn.interleaved_to_sharded(x, _width_sharded())
    by_coord = ttnn.interleaved_to_sharded(x, ttnn.CoreCoord(8, 1), [32, 32], ttnn.TensorMemoryLayout.WIDTH_SHARDED,
                                           ttnn.ShardOrientation.ROW_MAJOR)  # fmt: skip
    by_keywords = ttnn.interleaved_to_sharded(x, grid=crs, shard_shape=[32, 32],
                                              shard_scheme=ttnn.TensorMemoryLayout.WIDTH_SHARDED,
                                              shard_orientation=ttnn.ShardOrientation.ROW_MAJOR)  # fmt: skip
    for t in (by_coord, by_keywords):
        assert t.memory_config() == by_mc.memory_config()
        assert torch.equal(ttnn.to_torch(t), ttnn.to_torch(by_mc))
    with pytest.raises(TypeError, match="incompatible function arguments"):
        ttnn.interleaved_to_sharded(x, "not a grid", [32, 32])


def test_overloads_by_keyword(device):
    x = _dev(torch.randn(1, 1, 32, 64), device)
    assert list(ttnn.slice(x, slice_start=[0, 0, 0, 0], slice_end=[1, 1, 32, 32]).shape) == [
        1,
        1,
        32,
        32,
    ]
    assert list(ttnn.slice(x, [0, 0, 0, 0], [1, 1, 32, 64], [1, 1, 1, 2]).shape) == [1, 1, 32, 32]
    starts = ttnn.from_torch(torch.tensor([0, 0, 0, 32]), dtype=ttnn.uint32)
    ends = ttnn.from_torch(torch.tensor([1, 1, 32, 64]), dtype=ttnn.uint32)
    assert list(ttnn.slice(x, starts, ends).shape) == [1, 1, 32, 32]
    with pytest.raises(
        TypeError
    ):  # sequences by the tensor overload's names and no steps: no overload binds
        ttnn.slice(x, starts=[0, 0, 0, 0], ends=[1, 1, 32, 32])
    assert (
        ttnn.typecast(x, input_dtype=ttnn.bfloat16, output_dtype=ttnn.float32).dtype == ttnn.float32
    )
    assert list(ttnn.reshape(x, logical_shape=[1, 32, 64], padded_shape=[1, 32, 64]).shape) == [
        1,
        32,
        64,
    ]
    assert list(ttnn.permute(x, [0, 1, 3, 2], 0.0).shape) == [1, 1, 64, 32]
    assert list(ttnn.transpose(x, 2, 3, 0.0).shape) == [1, 1, 64, 32]
    padded = ttnn.pad(
        x, output_padded_shape=[1, 1, 64, 64], input_tensor_start=[0, 0, 0, 0], value=0.0
    )
    assert list(padded.shape) == [1, 1, 64, 64]


# ------------------------------------------------------------------ program cache


def test_program_cache_counts_distinct_programs_as_0811_does(device):
    """The counts probed on the real 0.81.1 (mock N150): 0 at open, one per distinct program; a
    to_memory_config to a sharded config runs the interleaved_to_sharded program."""
    x = _dev(torch.randn(1, 1, 32, 256), device)
    assert device.num_program_cache_entries() == 0  # from_torch runs no program
    ttnn.add(x, x)
    ttnn.add(x, x)
    assert device.num_program_cache_entries() == 1
    ttnn.multiply(x, x)
    assert device.num_program_cache_entries() == 2
    xs = ttnn.to_memory_config(x, _width_sharded())
    assert device.num_program_cache_entries() == 3
    ttnn.interleaved_to_sharded(x, ttnn.CoreCoord(8, 1), [32, 32], ttnn.TensorMemoryLayout.WIDTH_SHARDED,
                                ttnn.ShardOrientation.ROW_MAJOR)  # fmt: skip
    assert device.num_program_cache_entries() == 3  # the same program as the to_memory_config
    ttnn.add(xs, xs)  # another input spec: another program
    assert device.num_program_cache_entries() == 4
    device.disable_and_clear_program_cache()
    ttnn.add(x, x)
    assert device.num_program_cache_entries() == 0
    device.enable_program_cache()
    ttnn.add(x, x)
    assert device.num_program_cache_entries() == 1
    device.clear_program_cache()
    assert device.num_program_cache_entries() == 0


def test_trace_replay_adds_no_program(device):
    d = ttnn.open_device(device_id=0, trace_region_size=1 << 20)
    try:
        x = _dev(torch.randn(1, 1, 32, 64), d)
        ttnn.add(x, x)  # compiled before capture, as real code warms up
        tid = ttnn.begin_trace_capture(d, cq_id=0)
        y = ttnn.add(x, x)
        ttnn.end_trace_capture(d, tid, cq_id=0)
        before = d.num_program_cache_entries()
        ttnn.execute_trace(d, tid, cq_id=0, blocking=True)
        assert d.num_program_cache_entries() == before == 1
        ttnn.release_trace(d, tid)
        del y
    finally:
        ttnn.close_device(d)


# ------------------------------------------------------------------ golden functions


def test_golden_functions(device):
    x = torch.randn(2, 64)
    w = torch.rand(64) + 0.5
    expect = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    assert torch.allclose(
        ttnn.get_golden_function(ttnn.rms_norm)(x, w, epsilon=1e-5), expect, atol=1e-6
    )
    assert torch.allclose(ttnn.get_golden_function(ttnn.softmax)(x), torch.softmax(x, -1))
    mask = torch.zeros(2, 64)
    mask[:, 32:] = -1e9
    got = ttnn.get_golden_function(ttnn.scale_mask_softmax)(x, 0.5, mask)
    assert torch.allclose(got, torch.softmax(x * 0.5 + mask, -1))
    assert ttnn.get_golden_function(ttnn.mul) is ttnn.get_golden_function(ttnn.multiply)
    assert torch.equal(ttnn.get_golden_function(ttnn.add)(x, x), x + x)
    with pytest.raises(RuntimeError, match="does not have a golden function"):
        ttnn.get_golden_function(ttnn.experimental.nlp_concat_heads)


# ------------------------------------------------------------------ Tensor API


def test_tensor_api(device):
    values = torch.randn(4, 64)
    host = ttnn.from_torch(values, dtype=ttnn.bfloat16)
    assert ttnn.get_memory_config(host) is None and host.layout == ttnn.ROW_MAJOR_LAYOUT
    on_device = host.to(device)
    assert on_device.storage_type() == ttnn.StorageType.DEVICE
    assert ttnn.get_memory_config(on_device) == ttnn.DRAM_MEMORY_CONFIG
    assert host.to(ttnn.TILE_LAYOUT).layout == ttnn.TILE_LAYOUT
    assert host.to(device, ttnn.L1_MEMORY_CONFIG).memory_config() == ttnn.L1_MEMORY_CONFIG
    back = on_device.cpu()
    assert back.storage_type() == ttnn.StorageType.HOST
    assert torch.equal(ttnn.to_torch(back), values.bfloat16())
    tiled = _dev(torch.randn(1, 1, 5, 7), device)
    assert list(tiled.padded_shape) == [1, 1, 32, 32] and tiled.dtype == ttnn.bfloat16
    # slicing: host and device, steps, an int index keeps its dimension (as ttnn's does)
    assert torch.equal(ttnn.to_torch(host[1:3]), values.bfloat16()[1:3])
    dev4 = _dev(torch.arange(2 * 64 * 64, dtype=torch.float32).reshape(1, 2, 64, 64), device)
    part = dev4[:, 1, 0:32, ::2]
    assert list(part.shape) == [1, 1, 32, 32]
    assert torch.equal(ttnn.to_torch(part).float(), ttnn.to_torch(dev4).float()[:, 1:2, 0:32, ::2])
    assert list(dev4[...].shape) == [1, 2, 64, 64]


def test_tensor_constructors(device):
    t = ttnn.Tensor(torch.ones(2, 32), ttnn.bfloat16)
    assert (
        list(t.shape) == [2, 32] and t.layout == ttnn.ROW_MAJOR_LAYOUT and t.dtype == ttnn.bfloat16
    )
    flat = ttnn.Tensor([float(i) for i in range(64)], [2, 32], ttnn.float32, ttnn.ROW_MAJOR_LAYOUT)
    assert torch.equal(ttnn.to_torch(flat), torch.arange(64, dtype=torch.float32).reshape(2, 32))
    placed = ttnn.Tensor(
        [1.0] * 1024, [32, 32], ttnn.bfloat16, ttnn.TILE_LAYOUT, device, ttnn.L1_MEMORY_CONFIG
    )
    assert placed.memory_config() == ttnn.L1_MEMORY_CONFIG and placed.layout == ttnn.TILE_LAYOUT
    copy = ttnn.Tensor(flat)
    assert torch.equal(ttnn.to_torch(copy), ttnn.to_torch(flat))
    with pytest.raises(RuntimeError, match="do not fill the shape"):
        ttnn.Tensor([1.0] * 3, [2, 32], ttnn.float32, ttnn.ROW_MAJOR_LAYOUT)


# ------------------------------------------------------------------ norms and softmax


def test_sharded_layer_norm_without_program_config(device):
    x = torch.randn(1, 1, 32, 256)
    xs = ttnn.to_memory_config(_dev(x, device), _width_sharded())
    w = torch.rand(256) + 0.5
    wt = ttnn.from_torch(w.reshape(1, 1, 8, 32), dtype=ttnn.bfloat16, device=device,
                         memory_config=ttnn.DRAM_MEMORY_CONFIG)  # fmt: skip
    out = ttnn.layer_norm(xs, epsilon=1e-5, weight=wt)
    assert out.memory_config() == xs.memory_config()
    expect = torch.nn.functional.layer_norm(x, (256,), w.bfloat16().float(), eps=1e-5)
    assert (
        torch.corrcoef(torch.stack([ttnn.to_torch(out).float().flatten(), expect.flatten()]))[0, 1]
        > 0.9999
    )


def test_softmax_family(device):
    x = torch.randn(1, 1, 64, 256)
    mask = torch.where(
        torch.rand(1, 1, 32, 256) < 0.3, -1e9, 0.0
    )  # one tile row, for every tile row
    xt, mt = _dev(x, device), _dev(mask, device)
    out = ttnn.scale_mask_softmax(xt, 0.125, mt)
    expect = torch.softmax(
        x.bfloat16().float() * 0.125 + mask.bfloat16().float().repeat(1, 1, 2, 1), -1
    )
    assert (ttnn.to_torch(out).float() - expect).abs().max() < 1e-2
    assert out is not xt
    same = ttnn.softmax_in_place(xt)
    assert same is xt  # in place: the input tensor holds the result
    assert (ttnn.to_torch(xt).float() - torch.softmax(x.bfloat16().float(), -1)).abs().max() < 1e-2
    with pytest.raises(RuntimeError, match="Mask height must be 1 or input tensor tile height"):
        ttnn.scale_mask_softmax(xt, 0.125, _dev(torch.zeros(1, 1, 64, 256), device))
    row = ttnn.scale_mask_softmax(
        _dev(x, device), 1.0, _dev(mask[:, :, :1], device)
    )  # one row for all rows
    assert (
        ttnn.to_torch(row).float() - torch.softmax(x.bfloat16().float() + mask[:, :, :1], -1)
    ).abs().max() < 1e-2
    with pytest.raises(RuntimeError, match="Scale value must not be set when mask is not present"):
        ttnn.scale_mask_softmax(_dev(x, device), 0.5)
    with pytest.raises(RuntimeError, match="must be tilized"):
        ttnn.softmax_in_place(_dev(x, device, layout=ttnn.ROW_MAJOR_LAYOUT))


def test_sharded_softmax_in_place(device):
    """Height-sharded attention scores, one 32x256 shard per core on 2 cores."""
    x = torch.randn(1, 1, 64, 256)
    mc = ttnn.create_sharded_memory_config((32, 256), ttnn.CoreGrid(y=1, x=2), ttnn.ShardStrategy.HEIGHT,
                                           use_height_and_width_as_shard_shape=True)  # fmt: skip
    xs = ttnn.to_memory_config(_dev(x, device), mc)
    pc = ttnn.SoftmaxShardedMultiCoreProgramConfig(compute_with_storage_grid_size=(2, 1), subblock_w=8, block_h=1,
                                                   block_w=8)  # fmt: skip
    out = ttnn.scale_mask_softmax_in_place(xs, program_config=pc)
    assert out is xs and out.memory_config() == mc
    assert (ttnn.to_torch(out).float() - torch.softmax(x.bfloat16().float(), -1)).abs().max() < 1e-2
    bad = ttnn.SoftmaxShardedMultiCoreProgramConfig(compute_with_storage_grid_size=(2, 1), subblock_w=3, block_h=1,
                                                    block_w=8)  # fmt: skip
    with pytest.raises(RuntimeError, match="block_w must be divisible by subblock_w"):
        ttnn.softmax_in_place(xs, program_config=bad)
    wrong_grid = ttnn.SoftmaxShardedMultiCoreProgramConfig(compute_with_storage_grid_size=(4, 1), subblock_w=8,
                                                           block_h=1, block_w=8)  # fmt: skip
    with pytest.raises(RuntimeError, match="number of shards must equal to number of cores"):
        ttnn.softmax_in_place(xs, program_config=wrong_grid)
    narrow = ttnn.SoftmaxShardedMultiCoreProgramConfig(compute_with_storage_grid_size=(2, 1), subblock_w=4,
                                                       block_h=1, block_w=4)  # fmt: skip
    with pytest.raises(
        RuntimeError, match=r"block_w \(4\) must match the shard width in tiles \(8\)"
    ):
        ttnn.softmax_in_place(xs, program_config=narrow)
