"""The ops of tt-metal's ViT (fold, split_query_key_value_and_split_heads, concatenate_heads, mul_,
reshard, reallocate, the string activations of linear) against torch goldens, and the rejections
the real 0.81.1 raises (probed on the mock device: shapes and messages)."""

import pytest
import torch

from ttgen import emu as ttnn


@pytest.fixture
def device():
    d = ttnn.open_device(device_id=0)
    yield d
    ttnn.close_device(d)


def _dev(
    x, device, layout=ttnn.TILE_LAYOUT, dtype=ttnn.bfloat16, memory_config=ttnn.DRAM_MEMORY_CONFIG
):
    return ttnn.from_torch(
        x, dtype=dtype, layout=layout, device=device, memory_config=memory_config
    )


@pytest.mark.parametrize("collapse", [False, True])
def test_fold_then_matmul_is_the_patch_convolution(device, collapse):
    """tt-metal's patch embedding: NHWC, [B, H, W / p, p * C], fold(p, 1), then one matmul with the
    conv weight permuted to (kh, kw, c) rows equals Conv2d(stride = kernel = p)."""
    torch.manual_seed(0)
    b, c, hw, p, hidden = 2, 4, 16, 4, 8
    pixels = torch.randn(b, c, hw, hw).bfloat16().float()
    conv = torch.randn(hidden, c, p, p).bfloat16().float()
    golden = (
        torch.nn.functional.conv2d(pixels, conv, stride=p).flatten(2).transpose(1, 2)
    )  # [B, N, hidden]
    host = pixels.permute(0, 2, 3, 1).reshape(b, hw, hw // p, p * c)
    folded = ttnn.fold(_dev(host, device, ttnn.ROW_MAJOR_LAYOUT), p, 1, collapse_output=collapse)
    n = (hw // p) ** 2
    expected = [1, 1, b * n, p * p * c] if collapse else [b, hw // p, hw // p, p * p * c]
    assert list(folded.shape) == expected and folded.layout == ttnn.ROW_MAJOR_LAYOUT
    rows = ttnn.to_torch(folded).float().reshape(b, n, p * p * c)
    weight = conv.permute(2, 3, 1, 0).reshape(p * p * c, hidden)
    torch.testing.assert_close(rows @ weight, golden, rtol=1e-4, atol=1e-4)


def test_fold_rejects_a_height_the_stride_does_not_divide(device):
    x = _dev(torch.zeros(2, 30, 4, 8), device, ttnn.ROW_MAJOR_LAYOUT)
    with pytest.raises(RuntimeError, match=r"logical H \(30\) must be divisible by stride_h \(8\)"):
        ttnn.fold(x, 8, 1)


def test_fold_output_is_bf16_row_major_in_the_inputs_memory(device):
    x = _dev(
        torch.zeros(2, 32, 4, 32), device, memory_config=ttnn.L1_MEMORY_CONFIG
    )  # a tiled input
    out = ttnn.fold(x, 8, 1)
    assert out.layout == ttnn.ROW_MAJOR_LAYOUT and out.dtype == ttnn.bfloat16
    assert out.memory_config() == ttnn.L1_MEMORY_CONFIG and list(out.shape) == [2, 4, 4, 256]


@pytest.mark.parametrize("seq", [17, 32, 197])
def test_split_heads_and_concatenate_heads(device, seq):
    torch.manual_seed(1)
    b, heads, d = 2, 4, 32
    qkv = torch.randn(b, seq, 3 * heads * d).bfloat16()
    q, k, v = ttnn.transformer.split_query_key_value_and_split_heads(
        _dev(qkv, device), num_heads=heads
    )
    golden = [
        t.reshape(b, seq, heads, d).transpose(1, 2) for t in qkv.float().split(heads * d, dim=-1)
    ]
    assert list(k.shape) == [b, heads, d, seq]  # transpose_key: K comes ready for Q·Kᵀ
    assert list(q.padded_shape) == [b, heads, -(-seq // 32) * 32, d]
    for got, want in ((q, golden[0]), (k, golden[1].transpose(-1, -2)), (v, golden[2])):
        torch.testing.assert_close(ttnn.to_torch(got).float(), want, rtol=0, atol=0)
    merged = ttnn.transformer.concatenate_heads(q)
    assert list(merged.shape) == [b, seq, heads * d]
    torch.testing.assert_close(
        ttnn.to_torch(merged).float(), qkv.float()[..., : heads * d], rtol=0, atol=0
    )
    _, k2, _ = ttnn.transformer.split_query_key_value_and_split_heads(
        _dev(qkv, device), num_heads=heads, transpose_key=False
    )
    assert list(k2.shape) == [b, heads, seq, d]


def test_split_heads_rejections_are_the_real_ones(device):
    qkv = _dev(torch.zeros(2, 17, 384), device)
    with pytest.raises(RuntimeError, match="Invalid head size: 16"):
        ttnn.transformer.split_query_key_value_and_split_heads(qkv, num_heads=8)
    with pytest.raises(RuntimeError, match="expected 3 dimensions, but found 4"):
        ttnn.transformer.split_query_key_value_and_split_heads(
            _dev(torch.zeros(2, 1, 17, 384), device), num_heads=4
        )
    with pytest.raises(RuntimeError, match="must use TILE_LAYOUT"):
        ttnn.transformer.split_query_key_value_and_split_heads(
            _dev(torch.zeros(2, 17, 384), device, ttnn.ROW_MAJOR_LAYOUT), num_heads=4
        )
    with pytest.raises(
        RuntimeError, match="Head size must be a multiple of 32 but was found to be 16"
    ):
        ttnn.transformer.concatenate_heads(_dev(torch.zeros(2, 4, 17, 16), device))
    with pytest.raises(RuntimeError, match="Input tensor must have rank 4"):
        ttnn.transformer.concatenate_heads(_dev(torch.zeros(2, 17, 32), device))


def test_mul_in_place_and_the_padded_softmax(device):
    """Scores of 17 keys in 32-wide tiles: mul_ scales in place; the interleaved softmax masks the
    tile padding (tt-metal's mask_padded_data), so it equals torch's softmax over the 17 keys."""
    torch.manual_seed(2)
    scores = torch.randn(2, 4, 17, 17).bfloat16()
    t = _dev(scores, device)
    assert ttnn.mul_(t, 0.125) is t
    out = ttnn.softmax_in_place(t)
    golden = torch.softmax(scores.float() * 0.125, -1)
    torch.testing.assert_close(ttnn.to_torch(out).float(), golden, rtol=0.02, atol=4e-3)


@pytest.mark.parametrize(("activation", "approximate"), [("gelu", "none"), ("gelu_approx", "tanh")])
def test_linear_string_activation_gelu_is_exact_unless_approx(device, activation, approximate):
    torch.manual_seed(3)
    x, w = torch.randn(1, 32, 64).bfloat16(), (torch.randn(64, 64) / 8).bfloat16()
    out = ttnn.linear(_dev(x, device), _dev(w, device), activation=activation, dtype=ttnn.float32,
                      compute_kernel_config=ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi4,
                                                                             fp32_dest_acc_en=True))  # fmt: skip
    golden = torch.nn.functional.gelu(x.float() @ w.float(), approximate=approximate)
    other = torch.nn.functional.gelu(
        x.float() @ w.float(), approximate="tanh" if approximate == "none" else "none"
    )
    got = ttnn.to_torch(out).float()
    assert (got - golden).abs().max() < 1e-5 < (got - other).abs().max()


def test_reshard_and_reallocate(device):
    x = torch.randn(1, 1, 64, 256).bfloat16()
    width = ttnn.create_sharded_memory_config((64, 32), ttnn.CoreGrid(y=1, x=8), ttnn.ShardStrategy.WIDTH,
                                              use_height_and_width_as_shard_shape=True)  # fmt: skip
    block = ttnn.create_sharded_memory_config((32, 128), ttnn.CoreGrid(y=2, x=2), ttnn.ShardStrategy.BLOCK,
                                              use_height_and_width_as_shard_shape=True)  # fmt: skip
    sharded = ttnn.to_memory_config(_dev(x, device), width)
    moved = ttnn.reshard(sharded, block)
    assert moved.memory_config() == block
    torch.testing.assert_close(ttnn.to_torch(moved), x, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="input tensor must be sharded"):
        ttnn.reshard(_dev(x, device), block)
    again = ttnn.reallocate(moved)
    assert not moved.is_allocated()
    torch.testing.assert_close(ttnn.to_torch(again), x, rtol=0, atol=0)


def test_sharded_split_reads_head_groups_and_concatenate_heads_merges_them(device):
    """Block-sharded (one image per core row, whole head groups per core column): the split reads each
    group as q_h | k_h | v_h (create_qkv_heads; tt-metal's ViT fuses its weights that way) into
    height-sharded heads on the same cores; concatenate_heads puts each core's heads side by side."""
    torch.manual_seed(4)
    b, s, heads, d = 4, 64, 4, 32
    q, k, v = (torch.randn(b, s, heads, d).bfloat16() for _ in range(3))
    groups = torch.stack([q, k, v], dim=3).reshape(b, s, 3 * heads * d)  # per head: q | k | v
    mc = ttnn.create_sharded_memory_config((s, 3 * heads * d // 2), ttnn.CoreGrid(y=b, x=2), ttnn.ShardStrategy.BLOCK,
                                           use_height_and_width_as_shard_shape=True)  # fmt: skip
    x = _dev(groups, device, memory_config=mc)
    tq, tk, tv = ttnn.transformer.split_query_key_value_and_split_heads(
        x, num_heads=heads, memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG
    )
    assert tq.memory_config().memory_layout == ttnn.TensorMemoryLayout.HEIGHT_SHARDED
    assert list(tq.memory_config().shard_spec.shape) == [2 * s, d]  # two heads per core
    for got, want in (
        (tq, q.transpose(1, 2)),
        (tk, k.transpose(1, 2).transpose(-1, -2)),
        (tv, v.transpose(1, 2)),
    ):
        torch.testing.assert_close(ttnn.to_torch(got).float(), want.float(), rtol=0, atol=0)
    merged = ttnn.transformer.concatenate_heads(
        tq, memory_config=ttnn.L1_BLOCK_SHARDED_MEMORY_CONFIG
    )
    assert list(merged.memory_config().shard_spec.shape) == [s, 2 * d]
    torch.testing.assert_close(
        ttnn.to_torch(merged).float(), q.reshape(b, s, heads * d).float(), rtol=0, atol=0
    )
    with pytest.raises(RuntimeError, match="Output memory config layout must be HEIGHT_SHARDED"):
        ttnn.transformer.split_query_key_value_and_split_heads(
            x, num_heads=heads, memory_config=ttnn.DRAM_MEMORY_CONFIG
        )


def test_pad_to_a_shape_binds_four_integers_only(device):
    """0.81.1's output_padded_shape overload takes std::array<uint32_t, 4>: a rank-3 shape does not bind."""
    x = _dev(torch.zeros(8, 17, 128), device)
    with pytest.raises(TypeError, match="incompatible function arguments"):
        ttnn.pad(x, [8, 32, 128], [0, 0, 0], 0.0)
    assert list(ttnn.pad(x, [(0, 0), (0, 15), (0, 0)], 0.0).shape) == [8, 32, 128]
