"""Tensor creation, transfer, layout and data-movement ops vs torch."""

import pytest
import torch

from ttgen import emu as ttnn


def _dev(x, device, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, mc=None):
    return ttnn.from_torch(
        x, dtype=dtype, layout=layout, device=device, memory_config=mc or ttnn.DRAM_MEMORY_CONFIG
    )


def test_round_trip_dtypes(device):
    x = torch.randn(2, 40, 72)
    assert torch.equal(ttnn.to_torch(_dev(x, device, ttnn.float32)), x)
    assert torch.equal(ttnn.to_torch(_dev(x, device)), x.to(torch.bfloat16))
    assert ttnn.to_torch(_dev(x, device)).dtype == torch.bfloat16
    ids = torch.randint(0, 1000, (1, 32))
    t = ttnn.from_torch(
        ids, dtype=ttnn.uint32, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG
    )
    assert torch.equal(ttnn.to_torch(t).long(), ids)


def test_logical_and_padded_shape(device):
    t = _dev(torch.randn(1, 1, 5, 70), device)
    assert t.shape == [1, 1, 5, 70] and t.padded_shape == [1, 1, 32, 96]
    r = ttnn.from_torch(torch.randn(1, 1, 5, 70))
    assert r.layout == ttnn.ROW_MAJOR_LAYOUT and r.padded_shape == [1, 1, 5, 70]
    assert r.storage_type() == ttnn.StorageType.HOST and t.storage_type() == ttnn.StorageType.DEVICE


def test_from_torch_memory_config_needs_device():
    with pytest.raises(RuntimeError, match="device must be specified"):
        ttnn.from_torch(torch.ones(2, 2), memory_config=ttnn.DRAM_MEMORY_CONFIG)


def test_to_layout_round_trip_and_padding(device):
    x = torch.randn(3, 50)
    t = ttnn.to_layout(ttnn.from_torch(x, dtype=ttnn.bfloat16), ttnn.TILE_LAYOUT)
    assert t.padded_shape == [32, 64]
    assert t.padded_values()[3:, :].abs().sum() == 0 and t.padded_values()[:, 50:].abs().sum() == 0
    back = ttnn.to_layout(t, ttnn.ROW_MAJOR_LAYOUT)
    assert torch.equal(ttnn.to_torch(back), x.to(torch.bfloat16))


def test_data_movement_matches_torch(device):
    x = torch.randn(2, 3, 64, 32)
    t = _dev(x, device)
    xb = x.to(torch.bfloat16)
    assert torch.equal(ttnn.to_torch(ttnn.reshape(t, [2, 3, 32, 64])), xb.reshape(2, 3, 32, 64))
    assert torch.equal(ttnn.to_torch(ttnn.reshape(t, [6, -1])), xb.reshape(6, -1))
    assert torch.equal(ttnn.to_torch(ttnn.permute(t, (0, 2, 1, 3))), xb.permute(0, 2, 1, 3))
    assert torch.equal(ttnn.to_torch(ttnn.transpose(t, 1, 2)), xb.transpose(1, 2))
    assert torch.equal(
        ttnn.to_torch(ttnn.slice(t, [0, 1, 32, 0], [1, 3, 64, 32])), xb[0:1, 1:3, 32:64]
    )
    assert torch.equal(ttnn.to_torch(ttnn.concat([t, t], dim=3)), torch.cat([xb, xb], 3))
    padded = ttnn.pad(t, [(0, 0), (0, 0), (0, 32), (0, 0)], 0.0)
    assert torch.equal(ttnn.to_torch(padded), torch.nn.functional.pad(xb, (0, 0, 0, 32)))
    assert torch.equal(ttnn.to_torch(ttnn.clone(t)), xb)
    assert list(ttnn.unsqueeze_to_4D(_dev(torch.randn(32, 32), device)).shape) == [1, 1, 32, 32]


def test_reshape_volume_mismatch(device):
    with pytest.raises(RuntimeError, match="volume"):
        ttnn.reshape(_dev(torch.randn(32, 32), device), [33, 32])


def test_typecast(device):
    x = torch.randn(1, 1, 32, 64) * 10
    t = _dev(x, device, ttnn.float32)
    assert torch.equal(ttnn.to_torch(ttnn.typecast(t, ttnn.bfloat16)), x.to(torch.bfloat16))
    u = ttnn.typecast(_dev(x.abs(), device, ttnn.float32), ttnn.uint32)
    assert torch.equal(ttnn.to_torch(u).long(), x.abs().trunc().long())
    b8 = ttnn.typecast(t, ttnn.bfloat8_b)
    assert b8.dtype == ttnn.bfloat8_b and torch.equal(
        ttnn.to_torch(b8),
        ttnn.to_torch(ttnn.from_torch(x, dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT)),
    )


def test_tilize_untilize(device):
    x = torch.randn(1, 1, 64, 64)
    rm = _dev(x, device, layout=ttnn.ROW_MAJOR_LAYOUT)
    tiled = ttnn.tilize(rm)
    assert tiled.layout == ttnn.TILE_LAYOUT
    assert ttnn.untilize(tiled).layout == ttnn.ROW_MAJOR_LAYOUT
    with pytest.raises(RuntimeError, match="multiple of the tile size"):
        ttnn.tilize(_dev(torch.randn(1, 1, 5, 64), device, layout=ttnn.ROW_MAJOR_LAYOUT))
    with pytest.raises(RuntimeError, match="BFLOAT8_B input is not supported"):
        ttnn.untilize(_dev(x, device, ttnn.bfloat8_b))


def test_as_tensor_cache_is_written_then_reused(device, tmp_path):
    x = torch.randn(64, 64)
    name = tmp_path / "w"
    t = ttnn.as_tensor(x, ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT, device=device,
                       memory_config=ttnn.DRAM_MEMORY_CONFIG, cache_file_name=name)  # fmt: skip
    path = tmp_path / "w_dtype_BFLOAT8_B_layout_TILE.tensorbin"
    assert path.is_file()
    # the second call loads the cache: a different source tensor does not change the result
    again = ttnn.as_tensor(torch.zeros(64, 64), ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT, device=device,
                           memory_config=ttnn.DRAM_MEMORY_CONFIG, cache_file_name=name)  # fmt: skip
    assert torch.equal(ttnn.to_torch(again), ttnn.to_torch(t))
    with pytest.raises(RuntimeError, match="memory_config is required"):
        ttnn.as_tensor(x, ttnn.bfloat16, device=device)


def test_deallocate_then_use_raises(device):
    t = _dev(torch.randn(32, 32), device)
    ttnn.deallocate(t)
    assert not t.is_allocated()
    with pytest.raises(RuntimeError, match="deallocated"):
        ttnn.add(t, t)
    with pytest.raises(RuntimeError, match="deallocated"):
        ttnn.to_torch(t)


def test_copy_host_to_device_tensor(device):
    persistent = _dev(torch.zeros(1, 32), device, ttnn.float32)
    ttnn.copy_host_to_device_tensor(
        ttnn.from_torch(torch.ones(1, 32), dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT), persistent
    )
    assert ttnn.to_torch(persistent).sum() == 32
    with pytest.raises(RuntimeError, match="does not match"):
        ttnn.copy_host_to_device_tensor(
            ttnn.from_torch(torch.ones(1, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT),
            persistent,
        )


def test_sharded_round_trip(device):
    x = torch.randn(1, 1, 32, 256)
    t = _dev(x, device)
    mc = ttnn.create_sharded_memory_config(
        (1, 1, 32, 256), ttnn.CoreGrid(y=1, x=8), ttnn.ShardStrategy.WIDTH
    )
    assert mc.shard_spec.shape == [32, 32]
    s = ttnn.interleaved_to_sharded(t, mc)
    assert s.is_sharded() and s.memory_config() == mc
    back = ttnn.sharded_to_interleaved(s, ttnn.L1_MEMORY_CONFIG)
    assert torch.equal(ttnn.to_torch(back), x.to(torch.bfloat16))
    with pytest.raises(RuntimeError, match="must be sharded"):
        ttnn.sharded_to_interleaved(t)
    with pytest.raises(RuntimeError, match="must be interleaved"):
        ttnn.interleaved_to_sharded(s, mc)
