"""Compute ops vs torch goldens: bf16 results PCC ≥ 0.9999 against fp32 torch on well-conditioned
inputs, plus each op's input rules."""

import pytest
import torch

from ttgen import emu as ttnn

from .conftest import pcc


def _dev(x, device, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, mc=None):
    return ttnn.from_torch(
        x, dtype=dtype, layout=layout, device=device, memory_config=mc or ttnn.DRAM_MEMORY_CONFIG
    )


@pytest.fixture
def xy():
    g = torch.Generator().manual_seed(0)
    return torch.randn(1, 1, 64, 128, generator=g), torch.randn(1, 1, 64, 128, generator=g)


def test_binary_ops(device, xy):
    x, y = xy
    a, b = _dev(x, device), _dev(y, device)
    assert pcc(ttnn.to_torch(ttnn.add(a, b)), x + y) >= 0.9999
    assert pcc(ttnn.to_torch(ttnn.subtract(a, b)), x - y) >= 0.9999
    assert pcc(ttnn.to_torch(ttnn.mul(a, b)), x * y) >= 0.9999
    assert pcc(ttnn.to_torch(a + b), x + y) >= 0.9999
    assert ttnn.mul is ttnn.multiply


def test_mul_with_silu_input_activation(device, xy):
    x, y = xy
    out = ttnn.mul(
        _dev(x, device),
        _dev(y, device),
        input_tensor_a_activations=[ttnn.UnaryOpType.SILU],
        dtype=ttnn.bfloat8_b,
    )
    assert out.dtype == ttnn.bfloat8_b
    assert pcc(ttnn.to_torch(out), torch.nn.functional.silu(x) * y) >= 0.999


def test_broadcast_add(device):
    x, row = torch.randn(1, 1, 64, 64), torch.randn(1, 1, 1, 64)
    assert pcc(ttnn.to_torch(ttnn.add(_dev(x, device), _dev(row, device))), x + row) >= 0.9999
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        ttnn.add(_dev(x, device), _dev(torch.randn(1, 1, 3, 64), device))


def test_unary(device, xy):
    x, _ = xy
    assert pcc(ttnn.to_torch(ttnn.silu(_dev(x, device))), torch.nn.functional.silu(x)) >= 0.9999
    assert pcc(ttnn.to_torch(ttnn.gelu(_dev(x, device))), torch.nn.functional.gelu(x)) >= 0.9999
    assert pcc(ttnn.to_torch(ttnn.softmax(_dev(x, device), -1)), torch.softmax(x, -1)) >= 0.9999


def test_rms_norm_with_row_major_weight_sticks(device, xy):
    x, _ = xy
    w = torch.rand(128) + 0.5
    weight = ttnn.from_torch(
        w.reshape(1, 1, 4, 32),
        dtype=ttnn.bfloat16,
        device=device,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )
    out = ttnn.rms_norm(_dev(x, device), epsilon=1e-5, weight=weight)
    ref = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w
    assert pcc(ttnn.to_torch(out), ref) >= 0.9999
    with pytest.raises(RuntimeError, match="do not match the normalised width"):
        bad = ttnn.from_torch(
            torch.ones(1, 1, 2, 32),
            dtype=ttnn.bfloat16,
            device=device,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
        )
        ttnn.rms_norm(_dev(x, device), weight=bad)


def test_layer_norm(device, xy):
    x, _ = xy
    w, b = torch.rand(128), torch.rand(128)
    tw = _dev(w.reshape(1, 128), device)
    tb = _dev(b.reshape(1, 128), device)
    out = ttnn.layer_norm(_dev(x, device), epsilon=1e-5, weight=tw, bias=tb)
    assert pcc(ttnn.to_torch(out), torch.nn.functional.layer_norm(x, (128,), w, b, 1e-5)) >= 0.9999


def test_sharded_rms_norm_program_config(device):
    x = torch.randn(1, 1, 32, 256)
    mc = ttnn.create_sharded_memory_config(
        (1, 1, 32, 256), ttnn.CoreGrid(y=1, x=8), ttnn.ShardStrategy.WIDTH
    )
    xs = ttnn.interleaved_to_sharded(_dev(x, device), mc)
    pc = ttnn.LayerNormShardedMultiCoreProgramConfig(
        compute_with_storage_grid_size=(8, 1), subblock_w=1, block_h=1, block_w=1, inplace=False
    )
    out = ttnn.rms_norm(xs, epsilon=1e-5, program_config=pc, memory_config=mc)
    assert out.memory_config() == mc
    assert (
        pcc(ttnn.to_torch(out), x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)) >= 0.9999
    )
    bad = ttnn.LayerNormShardedMultiCoreProgramConfig(
        compute_with_storage_grid_size=(8, 1), subblock_w=1, block_h=1, block_w=2, inplace=False
    )
    with pytest.raises(RuntimeError, match="block_w"):
        ttnn.rms_norm(xs, program_config=bad, memory_config=mc)
    # no program config: the one tt-metal derives from the shard spec (8x1, block_w 1), the same result
    default = ttnn.rms_norm(xs, epsilon=1e-5)
    assert default.memory_config() == xs.memory_config()
    assert torch.equal(ttnn.to_torch(default), ttnn.to_torch(out))


def test_embedding(device):
    table = torch.randn(100, 64)
    ids = torch.randint(0, 100, (1, 32))
    w = ttnn.from_torch(
        table, dtype=ttnn.bfloat16, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG
    )
    t = ttnn.from_torch(
        ids, dtype=ttnn.uint32, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG
    )
    out = ttnn.embedding(t, w, layout=ttnn.TILE_LAYOUT)
    assert out.layout == ttnn.TILE_LAYOUT and list(out.shape) == [1, 32, 64]
    assert torch.equal(ttnn.to_torch(out), table.to(torch.bfloat16)[ids])
    bad_ids = ttnn.from_torch(
        torch.full((1, 32), 100),
        dtype=ttnn.uint32,
        device=device,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )
    with pytest.raises(RuntimeError, match="out of range"):
        ttnn.embedding(bad_ids, w)
    # a TILE-layout table is accepted too (the real 0.81.1 does; found by the ttnn lane)
    assert torch.equal(
        ttnn.to_torch(ttnn.embedding(t, _dev(table, device))), ttnn.to_torch(ttnn.embedding(t, w))
    )


def test_argmax_topk_plus_one(device):
    x = torch.randn(1, 1, 32, 256)
    rm = _dev(x, device, layout=ttnn.ROW_MAJOR_LAYOUT)
    am = ttnn.argmax(rm, dim=-1)
    assert am.dtype == ttnn.uint32 and torch.equal(
        ttnn.to_torch(am).long(), x.to(torch.bfloat16).argmax(-1)
    )
    with pytest.raises(RuntimeError, match="ROW_MAJOR"):
        ttnn.argmax(_dev(x, device), dim=-1)
    values, indices = ttnn.topk(_dev(x, device), k=8)
    ref_v, ref_i = torch.topk(x.to(torch.bfloat16).float(), 8)
    assert torch.equal(ttnn.to_torch(values).float(), ref_v) and torch.equal(
        ttnn.to_torch(indices).long(), ref_i
    )
    pos = ttnn.from_torch(
        torch.tensor([3, -1, 7], dtype=torch.int32),
        device=device,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )
    ttnn.plus_one(pos, skip_negative_entries=True)
    assert ttnn.to_torch(pos).tolist() == [4, -1, 8]
