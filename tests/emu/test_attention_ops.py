"""Head split/concat, Llama rotary embedding, KV-cache ops and SDPA vs torch references."""

import pytest
import torch

from tests.emu.conftest import pcc
from ttgen import emu as ttnn

B, HQ, HKV, D = 4, 8, 2, 64


def _dev(x, device, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, mc=None):
    return ttnn.from_torch(
        x, dtype=dtype, layout=layout, device=device, memory_config=mc or ttnn.DRAM_MEMORY_CONFIG
    )


def _trans_mat() -> torch.Tensor:
    t = torch.zeros(32, 32)
    for i in range(16):
        t[2 * i, 2 * i + 1], t[2 * i + 1, 2 * i] = 1.0, -1.0
    return t


def _rope_tables(positions: torch.Tensor, d: int):
    freqs = 1.0 / 10000 ** (torch.arange(0, d, 2).float() / d)
    angles = positions.float()[:, None] * freqs[None]  # [S, d/2]
    cos = torch.cos(angles).repeat_interleave(2, -1)
    sin = torch.sin(angles).repeat_interleave(2, -1)
    return cos, sin, angles


def _rotate_complex(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Interleaved-pair rotation as complex multiplication: an independent golden."""
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).reshape(x.shape)


def test_create_and_concat_heads_decode(device):
    x = torch.randn(1, 1, B, (HQ + 2 * HKV) * D)
    xs = _dev(x, device, mc=ttnn.L1_MEMORY_CONFIG)
    q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(
        xs, num_heads=HQ, num_kv_heads=HKV, memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG
    )
    xb = x.to(torch.bfloat16)[0, 0]
    assert torch.equal(ttnn.to_torch(q), xb[:, : HQ * D].reshape(1, B, HQ, D))
    assert torch.equal(ttnn.to_torch(k), xb[:, HQ * D : (HQ + HKV) * D].reshape(1, B, HKV, D))
    assert torch.equal(ttnn.to_torch(v), xb[:, (HQ + HKV) * D :].reshape(1, B, HKV, D))
    spec = q.memory_config().shard_spec
    assert q.memory_config().memory_layout == ttnn.TensorMemoryLayout.HEIGHT_SHARDED
    assert spec.num_cores() == B and spec.shape == [32, D]
    cat = ttnn.experimental.nlp_concat_heads_decode(q, num_heads=HQ)
    assert list(cat.shape) == [1, 1, 32, HQ * D]  # the real op always returns a tile row of users
    assert torch.equal(ttnn.to_torch(cat)[:, :, :B], xb[:, : HQ * D].reshape(1, 1, B, HQ * D))


def test_create_heads_decode_rejections(device):
    with pytest.raises(RuntimeError, match="head_dim 48 must be a multiple"):
        ttnn.experimental.nlp_create_qkv_heads_decode(
            _dev(torch.randn(1, 1, 4, 12 * 48), device, mc=ttnn.L1_MEMORY_CONFIG),
            num_heads=8,
            num_kv_heads=2,
        )
    with pytest.raises(RuntimeError, match="batch 33 exceeds 32"):
        ttnn.experimental.nlp_create_qkv_heads_decode(
            _dev(torch.randn(1, 1, 33, 12 * 64), device, mc=ttnn.L1_MEMORY_CONFIG),
            num_heads=8,
            num_kv_heads=2,
        )
    with pytest.raises(RuntimeError, match="Unsupported data format"):
        ttnn.experimental.nlp_create_qkv_heads_decode(
            _dev(torch.randn(1, 1, 4, 12 * 64), device, ttnn.bfloat8_b, mc=ttnn.L1_MEMORY_CONFIG),
            num_heads=8,
            num_kv_heads=2,
        )
    with pytest.raises(RuntimeError, match="must be width sharded"):
        grid = ttnn.num_cores_to_corerangeset(1, ttnn.CoreCoord(8, 8), True)
        hs = ttnn.create_sharded_memory_config(
            (32, 12 * 64), grid, ttnn.ShardStrategy.HEIGHT, use_height_and_width_as_shard_shape=True
        )
        ttnn.experimental.nlp_create_qkv_heads_decode(
            _dev(torch.randn(1, 1, 4, 12 * 64), device, mc=hs), num_heads=8, num_kv_heads=2
        )
    with pytest.raises(RuntimeError, match="must be greater than or equal to num_kv_heads"):
        ttnn.experimental.nlp_create_qkv_heads_decode(
            _dev(torch.randn(1, 1, 4, 10 * 64), device), num_heads=2, num_kv_heads=4
        )


def test_create_and_concat_heads_prefill(device):
    s = 64
    x = torch.randn(1, 1, s, (HQ + 2 * HKV) * D)
    q, k, v = ttnn.experimental.nlp_create_qkv_heads(
        _dev(x, device), num_heads=HQ, num_kv_heads=HKV, transpose_k_heads=False
    )
    xb = x.to(torch.bfloat16)[:, 0]
    assert torch.equal(ttnn.to_torch(q), xb[..., : HQ * D].reshape(1, s, HQ, D).transpose(1, 2))
    assert list(k.shape) == [1, HKV, s, D] and list(v.shape) == [1, HKV, s, D]
    cat = ttnn.experimental.nlp_concat_heads(q)
    assert torch.equal(ttnn.to_torch(cat), xb[..., : HQ * D].reshape(1, 1, s, HQ * D))


def test_rotary_embedding_llama_prefill(device):
    s = 64
    x = torch.randn(1, HQ, s, D)
    cos, sin, angles = _rope_tables(torch.arange(s), D)
    out = ttnn.experimental.rotary_embedding_llama(
        _dev(x, device),
        _dev(cos[None, None], device),
        _dev(sin[None, None], device),
        _dev(_trans_mat()[None, None], device),
    )
    assert pcc(ttnn.to_torch(out), _rotate_complex(x, angles)) >= 0.9999


def test_rotary_embedding_llama_decode(device):
    positions = torch.tensor([3, 17, 0, 40])
    x = torch.randn(1, B, HQ, D)
    cos, sin, angles = _rope_tables(positions, D)
    mc = ttnn.create_sharded_memory_config((32, D), ttnn.num_cores_to_corerangeset(B, ttnn.CoreCoord(8, 8), True),
                                           ttnn.ShardStrategy.HEIGHT, use_height_and_width_as_shard_shape=True)  # fmt: skip
    tmc = ttnn.create_sharded_memory_config((32, 32), ttnn.num_cores_to_corerangeset(B, ttnn.CoreCoord(8, 8), True),
                                            ttnn.ShardStrategy.HEIGHT, use_height_and_width_as_shard_shape=True)  # fmt: skip
    out = ttnn.experimental.rotary_embedding_llama(
        _dev(x, device, mc=mc), _dev(cos[None, :, None], device, mc=mc), _dev(sin[None, :, None], device, mc=mc),
        _dev(_trans_mat().repeat(B, 1)[None, None], device, mc=tmc), is_decode_mode=True,
    )  # fmt: skip
    expected = torch.stack([_rotate_complex(x[0, b], angles[b]) for b in range(B)])[None]
    assert pcc(ttnn.to_torch(out), expected) >= 0.9999
    with pytest.raises(RuntimeError, match="must be HEIGHT_SHARDED"):
        ttnn.experimental.rotary_embedding_llama(_dev(x, device), _dev(cos[None, :, None], device, mc=mc),
                                                 _dev(sin[None, :, None], device, mc=mc), _dev(_trans_mat()[None, None], device), is_decode_mode=True)  # fmt: skip


def test_rotary_rejects_float32(device):
    x = torch.randn(1, 1, 32, 64)
    with pytest.raises(RuntimeError, match="must be BFLOAT16"):
        ttnn.experimental.rotary_embedding_llama(
            _dev(x, device, ttnn.float32),
            _dev(x, device),
            _dev(x, device),
            _dev(_trans_mat()[None, None], device),
        )


def _decode_input(device, x):
    mc = ttnn.create_sharded_memory_config((32, D), ttnn.num_cores_to_corerangeset(x.shape[1], ttnn.CoreCoord(8, 8), True),
                                           ttnn.ShardStrategy.HEIGHT, use_height_and_width_as_shard_shape=True)  # fmt: skip
    return _dev(x, device, mc=mc)


def test_paged_update_cache_static_and_skip(device):
    s_max = 64
    cache = _dev(torch.zeros(B, HKV, s_max, D), device, ttnn.bfloat8_b)
    new = torch.randn(1, B, HKV, D)
    pos = ttnn.from_torch(
        torch.tensor([5, -1, 63, 0], dtype=torch.int32),
        device=device,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )
    ttnn.experimental.paged_update_cache(cache, _decode_input(device, new), update_idxs_tensor=pos)
    got = ttnn.to_torch(cache)
    # the bf16 input row is repacked into the bfp8 cache tile
    ref = ttnn.to_torch(
        ttnn.from_torch(new[0].to(torch.bfloat16), dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT)
    )
    assert (
        torch.equal(got[0, :, 5], ref[0])
        and torch.equal(got[2, :, 63], ref[2])
        and torch.equal(got[3, :, 0], ref[3])
    )
    assert got[1].abs().sum() == 0  # user 1 was skipped
    assert got[0, :, 4].abs().sum() == 0 and got[0, :, 6].abs().sum() == 0


def test_update_cache_writes_each_users_row_at_the_index(device):
    """update_cache(cache [B, H, S, D], input [1, H, rows, D], idx): user b's row (at batch_offset + b)
    of every head lands at cache[b, :, idx], repacked to the cache dtype; nothing else changes."""
    cache = _dev(torch.zeros(B, HKV, 64, D), device, ttnn.bfloat8_b)
    new = torch.randn(1, HKV, 32, D)
    ttnn.update_cache(cache, _dev(new, device), 7, batch_offset=2)
    got = ttnn.to_torch(cache)
    rows = new[0, :, 2 : 2 + B].transpose(0, 1)  # [B, H, D]
    ref = ttnn.to_torch(
        ttnn.from_torch(rows.to(torch.bfloat16), dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT)
    )
    assert torch.equal(got[:, :, 7], ref)
    assert got[:, :, :7].abs().sum() == 0 and got[:, :, 8:].abs().sum() == 0
    with pytest.raises(RuntimeError, match="holds no row"):
        ttnn.update_cache(cache, _dev(new, device), 7, batch_offset=30)


def test_paged_update_cache_with_page_table(device):
    blocks, bs = 16, 32
    cache = _dev(torch.zeros(blocks, HKV, bs, D), device)
    table = torch.randperm(blocks).reshape(B, blocks // B).to(torch.int32)
    page_table = ttnn.from_torch(table, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG)
    new = torch.randn(1, B, HKV, D)
    positions = [0, 33, 70, 127]
    ttnn.experimental.paged_update_cache(
        cache, _decode_input(device, new), update_idxs=positions, page_table=page_table
    )
    got = ttnn.to_torch(cache)
    for b, p in enumerate(positions):
        assert torch.equal(got[int(table[b, p // bs]), :, p % bs], new[0, b].to(torch.bfloat16))
    with pytest.raises(RuntimeError, match="beyond its page table"):
        ttnn.experimental.paged_update_cache(
            cache, _decode_input(device, new), update_idxs=[0, 0, 128, 0], page_table=page_table
        )
    bad_table = table.clone()
    bad_table[2, 1] = blocks
    with pytest.raises(RuntimeError, match=f"page table entry \\[{blocks}\\] outside"):
        ttnn.experimental.paged_update_cache(
            cache, _decode_input(device, new), update_idxs=[0, 0, 33, 0],
            page_table=ttnn.from_torch(bad_table, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG),
        )  # fmt: skip


def test_update_cache_rejects_block_float_input(device):
    cache = _dev(torch.zeros(B, HKV, 64, D), device, ttnn.bfloat8_b)
    bad = _decode_input(device, torch.randn(1, B, HKV, D))
    bad8 = ttnn.typecast(bad, ttnn.bfloat8_b)
    with pytest.raises(RuntimeError, match="BFLOAT16 or FLOAT32"):
        ttnn.experimental.paged_update_cache(cache, bad8, update_idxs=[0] * B)


def test_fill_caches(device):
    s = 64
    k = torch.randn(1, HKV, s, D)
    cache = _dev(torch.zeros(B, HKV, 128, D), device)
    ttnn.fill_cache(cache, _dev(k, device), 2)
    assert torch.equal(ttnn.to_torch(cache)[2, :, :s], k[0].to(torch.bfloat16))
    with pytest.raises(RuntimeError, match="must match the cache dtype"):
        ttnn.fill_cache(cache, _dev(k, device, ttnn.bfloat8_b), 0)
    paged = _dev(torch.zeros(8, HKV, 32, D), device)
    table = ttnn.from_torch(
        torch.tensor([[7, 3], [0, 1]], dtype=torch.int32),
        device=device,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )
    ttnn.experimental.paged_fill_cache(paged, _dev(k, device), table, batch_idx=0)
    got = ttnn.to_torch(paged)
    assert torch.equal(got[7], k[0, :, :32].to(torch.bfloat16)) and torch.equal(
        got[3], k[0, :, 32:].to(torch.bfloat16)
    )


def test_sdpa_prefill_causal_gqa(device):
    s = 128
    q, k, v = torch.randn(1, HQ, s, D), torch.randn(1, HKV, s, D), torch.randn(1, HKV, s, D)
    pc = ttnn.SDPAProgramConfig(
        compute_with_storage_grid_size=(8, 8),
        q_chunk_size=64,
        k_chunk_size=64,
        exp_approx_mode=False,
    )
    out = ttnn.transformer.scaled_dot_product_attention(
        _dev(q, device), _dev(k, device), _dev(v, device), is_causal=True, program_config=pc
    )
    ref = torch.nn.functional.scaled_dot_product_attention(
        q, k.repeat_interleave(4, 1), v.repeat_interleave(4, 1), is_causal=True
    )
    assert pcc(ttnn.to_torch(out), ref) >= 0.999
    bad = ttnn.SDPAProgramConfig(
        compute_with_storage_grid_size=(8, 8), q_chunk_size=96, k_chunk_size=64
    )
    with pytest.raises(RuntimeError, match="divisible by q_chunk_size"):
        ttnn.transformer.scaled_dot_product_attention(
            _dev(q, device), _dev(k, device), _dev(v, device), program_config=bad
        )


def test_sdpa_decode_positions_and_skipped_user(device):
    s_max = 64
    q = torch.randn(1, B, HQ, D)
    keys, values = torch.randn(B, HKV, s_max, D), torch.randn(B, HKV, s_max, D)
    cur = torch.tensor([5, 63, -1, 0], dtype=torch.int32)
    out = ttnn.transformer.scaled_dot_product_attention_decode(
        _dev(q, device), _dev(keys, device), _dev(values, device),
        cur_pos_tensor=ttnn.from_torch(cur, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG), scale=D**-0.5,
    )  # fmt: skip
    got = ttnn.to_torch(out)
    for b, p in enumerate(cur.tolist()):
        if p < 0:
            continue
        kk = keys[b : b + 1, :, : p + 1].repeat_interleave(4, 1)
        vv = values[b : b + 1, :, : p + 1].repeat_interleave(4, 1)
        ref = torch.nn.functional.scaled_dot_product_attention(q[0, b][None, :, None], kk, vv)[
            0, :, 0
        ]
        assert pcc(got[0, b], ref) >= 0.999


def test_paged_sdpa_decode_equals_static(device):
    blocks, bs = 8, 32
    q = torch.randn(1, 2, HQ, D)
    kc, vc = torch.randn(blocks, HKV, bs, D), torch.randn(blocks, HKV, bs, D)
    table = torch.tensor([[5, 2, 7, 0], [1, 3, 4, 6]], dtype=torch.int32)
    pos = torch.tensor([100, 40], dtype=torch.int32)
    tpos = ttnn.from_torch(pos, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG)
    paged = ttnn.transformer.paged_scaled_dot_product_attention_decode(
        _dev(q, device), _dev(kc, device), _dev(vc, device),
        ttnn.from_torch(table, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG), cur_pos_tensor=tpos,
    )  # fmt: skip
    static_k = kc[table.long()].permute(0, 2, 1, 3, 4).reshape(2, HKV, 4 * bs, D)
    static_v = vc[table.long()].permute(0, 2, 1, 3, 4).reshape(2, HKV, 4 * bs, D)
    static = ttnn.transformer.scaled_dot_product_attention_decode(
        _dev(q, device), _dev(static_k, device), _dev(static_v, device), cur_pos_tensor=tpos
    )
    assert torch.equal(ttnn.to_torch(paged), ttnn.to_torch(static))
