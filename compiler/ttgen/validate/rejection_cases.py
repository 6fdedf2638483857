"""Rejection parity: invalid TTNN calls that must be rejected by the real ttnn 0.81.1 (mock device)
and by the emulator alike, plus valid controls both must accept.

Each case is `call(ttnn, torch, device)` written against the plain ttnn API, so the same code runs in
the lane's Python 3.12 on the real package (oracle_cases.py) and here on the emulator. Stdlib only
at import time: this module is imported by both interpreters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CASES",
    "EMULATOR_STRICTER",
    "Case",
    "error_message",
    "program_cache_counts",
    "run_case",
]

# Cases the real 0.81.1 accepts and the emulator rejects on purpose, with the reason.
EMULATOR_STRICTER = {
    "softmax_in_place, sharded: block_w 8 not divisible by subblock_w 3": (
        "0.81.1 checks this only for a masked sharded softmax; without a mask the kernel would loop over "
        "whole subblocks and leave the last 2 tiles of each row unnormalised"
    ),
    "softmax_in_place, sharded: 4 cores in the config for 2 shards": (
        "0.81.1 checks the shard count only for a masked sharded softmax; a grid with more cores than "
        "shards launches cores without a shard"
    ),
    "SDPA prefill: chunk 64 does not divide seq 96": (
        "tt-transformers always picks chunks dividing the sequence; whether 0.81.1's kernels "
        "handle a partial last chunk cannot be checked without hardware"
    ),
}


@dataclass(frozen=True)
class Case:
    name: str
    area: str
    call: Callable
    valid: bool = False  # a control both must accept


def _dev(ttnn, torch, device, shape, dtype=None, layout=None, mc=None):
    return ttnn.from_torch(
        torch.randn(*shape),
        dtype=dtype or ttnn.bfloat16,
        layout=layout or ttnn.TILE_LAYOUT,
        device=device,
        memory_config=mc or ttnn.DRAM_MEMORY_CONFIG,
    )


def _height_sharded(ttnn, rows, width, cores, grid=(8, 8)):
    crs = ttnn.num_cores_to_corerangeset(cores, ttnn.CoreCoord(*grid), True)
    return ttnn.create_sharded_memory_config(
        (rows, width), crs, ttnn.ShardStrategy.HEIGHT, use_height_and_width_as_shard_shape=True
    )


def _mm2d(ttnn, *, in0_block_w=2, sub_h=1, sub_w=4, per_core_M=1, per_core_N=4, grid=(8, 8)):
    return ttnn.MatmulMultiCoreReuseMultiCastProgramConfig(
        compute_with_storage_grid_size=ttnn.CoreCoord(*grid),
        in0_block_w=in0_block_w,
        out_subblock_h=sub_h,
        out_subblock_w=sub_w,
        per_core_M=per_core_M,
        per_core_N=per_core_N,
        transpose_mcast=False,
        fused_activation=None,
    )


def _linear2d(ttnn, torch, d, pc, kernel=None, k=512, n=1024, m=256):
    # M=256 (8 tiles), K=512 (16 tiles), N=1024 (32 tiles) on an 8x8 grid: per_core_M=1, per_core_N=4
    a = _dev(ttnn, torch, d, (1, 1, m, k))
    b = _dev(ttnn, torch, d, (1, 1, k, n), dtype=ttnn.bfloat8_b)
    return ttnn.linear(a, b, program_config=pc, compute_kernel_config=kernel)


def _mm1d(ttnn, *, in0_block_w=2, sub_w=1, per_core_N=1, grid=(8, 4)):
    return ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig(
        compute_with_storage_grid_size=ttnn.CoreCoord(*grid),
        in0_block_w=in0_block_w,
        out_subblock_h=1,
        out_subblock_w=sub_w,
        per_core_M=1,
        per_core_N=per_core_N,
        fuse_batch=True,
        fused_activation=None,
        mcast_in0=True,
    )


def _width_sharded_act(ttnn, torch, d, k=1024, cores=32, grid=(8, 4)):
    crs = ttnn.num_cores_to_corerangeset(cores, ttnn.CoreCoord(*grid), True)
    mc = ttnn.create_sharded_memory_config(
        (32, k // cores), crs, ttnn.ShardStrategy.WIDTH, use_height_and_width_as_shard_shape=True
    )
    return _dev(ttnn, torch, d, (1, 1, 32, k), mc=mc)


def _sdpa(ttnn, torch, d, *, q_heads=8, kv_heads=2, seq=128, head_dim=64, q_chunk=64, k_chunk=64):
    q = _dev(ttnn, torch, d, (1, q_heads, seq, head_dim))
    k = _dev(ttnn, torch, d, (1, kv_heads, seq, head_dim))
    v = _dev(ttnn, torch, d, (1, kv_heads, seq, head_dim))
    pc = ttnn.SDPAProgramConfig(
        compute_with_storage_grid_size=ttnn.CoreCoord(8, 8),
        q_chunk_size=q_chunk,
        k_chunk_size=k_chunk,
        exp_approx_mode=False,
    )
    return ttnn.transformer.scaled_dot_product_attention(q, k, v, is_causal=True, program_config=pc)


def _sdpa_decode(ttnn, torch, d, *, batch=32, q_heads=8, kv_heads=2, head_dim=64, cache=256,
                 k_chunk=None):  # fmt: skip
    q = _dev(ttnn, torch, d, (1, batch, q_heads, head_dim))
    k = _dev(ttnn, torch, d, (batch, kv_heads, cache, head_dim))
    v = _dev(ttnn, torch, d, (batch, kv_heads, cache, head_dim))
    pc = None
    if k_chunk is not None:
        pc = ttnn.SDPAProgramConfig(
            compute_with_storage_grid_size=ttnn.CoreCoord(8, 8),
            q_chunk_size=0,
            k_chunk_size=k_chunk,
            exp_approx_mode=False,
        )
    return ttnn.transformer.scaled_dot_product_attention_decode(
        q, k, v, cur_pos=[cache // 2] * batch, program_config=pc
    )


def _qkv_decode(ttnn, torch, d, *, batch=32, q_heads=8, kv_heads=2, head_dim=64):
    width = (q_heads + 2 * kv_heads) * head_dim
    x = _dev(ttnn, torch, d, (1, 1, batch, width))
    return ttnn.experimental.nlp_create_qkv_heads_decode(
        x,
        num_heads=q_heads,
        num_kv_heads=kv_heads,
        memory_config=ttnn.L1_HEIGHT_SHARDED_MEMORY_CONFIG,
    )


def _ids(ttnn, torch, d, dtype, layout=None):
    ids = torch.randint(0, 1024, (1, 32), dtype=torch.int32)
    return ttnn.from_torch(ids, dtype=dtype, layout=layout or ttnn.ROW_MAJOR_LAYOUT, device=d,
                           memory_config=ttnn.DRAM_MEMORY_CONFIG)  # fmt: skip


def _many_l1(ttnn, torch, d, rows):
    mc = ttnn.L1_MEMORY_CONFIG
    return [_dev(ttnn, torch, d, (1, 1, rows, 4096), mc=mc) for _ in range(2)]


def _dram_fill(ttnn, torch, d):
    # a matmul whose [1, 1, 65536, 131072] bf16 output (16 GiB) cannot fit in the device's DRAM;
    # its inputs are small
    a = _dev(ttnn, torch, d, (1, 1, 65536, 32))
    b = _dev(ttnn, torch, d, (1, 1, 32, 131072))
    return ttnn.matmul(a, b)


def _rms_wide(ttnn, torch, d, width):
    x = _dev(ttnn, torch, d, (1, 1, 128, width))
    w = ttnn.from_torch(torch.randn(1, 1, width // 32, 32), dtype=ttnn.bfloat16, layout=ttnn.ROW_MAJOR_LAYOUT,
                        device=d, memory_config=ttnn.DRAM_MEMORY_CONFIG)  # fmt: skip
    ck = ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi2, math_approx_mode=False,
                                          fp32_dest_acc_en=True, packer_l1_acc=False)  # fmt: skip
    return ttnn.rms_norm(x, epsilon=1e-5, weight=w, compute_kernel_config=ck)


def _layer_norm_wide(ttnn, torch, d, width, fp32=True):
    x = _dev(ttnn, torch, d, (1, 64, width))
    w = ttnn.from_torch(torch.randn(1, 1, width // 32, 32), dtype=ttnn.bfloat16, layout=ttnn.ROW_MAJOR_LAYOUT,
                        device=d, memory_config=ttnn.DRAM_MEMORY_CONFIG)  # fmt: skip
    ck = ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi4, math_approx_mode=False,
                                          fp32_dest_acc_en=fp32, packer_l1_acc=True)  # fmt: skip
    return ttnn.layer_norm(x, epsilon=1e-12, weight=w, bias=w, compute_kernel_config=ck)


def _rms_next_to_l1(ttnn, torch, d, held_kb):
    """An interleaved 4096-wide rms_norm (880,640 B of circular buffers) while an L1 buffer of
    `held_kb` KB per bank is live: L1 buffers sit at the top of L1, the circular buffers grow from
    the bottom and must not reach them."""
    tiles = held_kb * 1024 // 2048 * 64  # over the 64 banks of an N150
    held = ttnn.from_torch(torch.zeros(1, 1, 32, tiles * 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT,
                           device=d, memory_config=ttnn.L1_MEMORY_CONFIG)  # fmt: skip
    x = _dev(ttnn, torch, d, (1, 1, 128, 4096))
    w = ttnn.from_torch(torch.ones(1, 1, 128, 32), dtype=ttnn.bfloat16, layout=ttnn.ROW_MAJOR_LAYOUT,
                        device=d, memory_config=ttnn.DRAM_MEMORY_CONFIG)  # fmt: skip
    ck = ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi2, math_approx_mode=False,
                                          fp32_dest_acc_en=False, packer_l1_acc=False)  # fmt: skip
    out = ttnn.rms_norm(x, epsilon=1e-5, weight=w, compute_kernel_config=ck)
    ttnn.deallocate(held)
    return out


def _rms_sharded(ttnn, torch, d, *, block_w, width=1024, cores=32, interleaved=False):
    crs = ttnn.num_cores_to_corerangeset(cores, ttnn.CoreCoord(8, 4), True)
    mc = ttnn.create_sharded_memory_config(
        (32, width // cores),
        crs,
        ttnn.ShardStrategy.WIDTH,
        use_height_and_width_as_shard_shape=True,
    )
    x = _dev(ttnn, torch, d, (1, 1, 32, width), mc=None if interleaved else mc)
    w = ttnn.from_torch(
        torch.randn(1, 1, width // 32, 32),
        dtype=ttnn.bfloat16,
        layout=ttnn.ROW_MAJOR_LAYOUT,
        device=d,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
    )
    pc = ttnn.LayerNormShardedMultiCoreProgramConfig(
        compute_with_storage_grid_size=ttnn.CoreCoord(8, 4),
        subblock_w=1,
        block_h=1,
        block_w=block_w,
        inplace=False,
    )
    return ttnn.rms_norm(x, epsilon=1e-5, weight=w, program_config=pc, memory_config=mc)


def _width_sharded_x(ttnn, torch, d, cores=8, width=256):
    mc = ttnn.create_sharded_memory_config((32, width // cores), ttnn.CoreGrid(y=1, x=cores), ttnn.ShardStrategy.WIDTH,
                                           use_height_and_width_as_shard_shape=True)  # fmt: skip
    return _dev(ttnn, torch, d, (1, 1, 32, width), mc=mc)


def _norm_weight(ttnn, torch, d, width=256):
    return ttnn.from_torch(torch.randn(1, 1, width // 32, 32), dtype=ttnn.bfloat16, layout=ttnn.ROW_MAJOR_LAYOUT,
                           device=d, memory_config=ttnn.DRAM_MEMORY_CONFIG)  # fmt: skip


def _sharded_scores(ttnn, torch, d, cores=2):
    """[1, 1, 32 * cores, 256] height-sharded, one 32x256 shard per core."""
    mc = ttnn.create_sharded_memory_config((32, 256), ttnn.CoreGrid(y=1, x=cores), ttnn.ShardStrategy.HEIGHT,
                                           use_height_and_width_as_shard_shape=True)  # fmt: skip
    return _dev(ttnn, torch, d, (1, 1, 32 * cores, 256), mc=mc)


def _softmax_pc(ttnn, grid=(2, 1), subblock_w=8, block_h=1, block_w=8):
    return ttnn.SoftmaxShardedMultiCoreProgramConfig(compute_with_storage_grid_size=ttnn.CoreCoord(*grid),
                                                     subblock_w=subblock_w, block_h=block_h, block_w=block_w)  # fmt: skip


def _cases() -> list[Case]:
    c: list[Case] = []

    def add(name, area, call, valid=False):
        c.append(Case(name, area, call, valid))

    # --- matmul program configs
    add("2D matmul: a valid config", "matmul",
        lambda t, th, d: _linear2d(t, th, d, _mm2d(t)), valid=True)  # fmt: skip
    add("2D matmul: in0_block_w 3 does not divide K (16 tiles)", "matmul",
        lambda t, th, d: _linear2d(t, th, d, _mm2d(t, in0_block_w=3)))  # fmt: skip
    add("2D matmul: out subblock 2x8 > 8 tiles of dest", "matmul",
        lambda t, th, d: _linear2d(t, th, d, _mm2d(t, sub_h=2, sub_w=8, per_core_M=2, per_core_N=8)))  # fmt: skip
    add("2D matmul: out_subblock_w 3 does not divide per_core_N 4", "matmul",
        lambda t, th, d: _linear2d(t, th, d, _mm2d(t, sub_w=3)))  # fmt: skip
    add("2D matmul: out_subblock_h 2 does not divide per_core_M 1", "matmul",
        lambda t, th, d: _linear2d(t, th, d, _mm2d(t, sub_h=2, sub_w=1)))  # fmt: skip
    add("2D matmul: fp32 dest acc with a 1x8 subblock (> 4 tiles)", "matmul",
        lambda t, th, d: _linear2d(t, th, d, _mm2d(t, sub_w=8, per_core_N=8),
                                   t.WormholeComputeKernelConfig(math_fidelity=t.MathFidelity.HiFi4,
                                                                 fp32_dest_acc_en=True)))  # fmt: skip
    add("2D matmul: grid 9x8 larger than the device", "matmul",
        lambda t, th, d: _linear2d(t, th, d, _mm2d(t, grid=(9, 8))))  # fmt: skip
    add("matmul: inner dimensions differ (K 512 vs 256)", "matmul",
        lambda t, th, d: t.matmul(_dev(t, th, d, (1, 1, 32, 512)), _dev(t, th, d, (1, 1, 256, 64))))  # fmt: skip
    add("1D matmul: a valid width-sharded config", "matmul",
        lambda t, th, d: t.linear(_width_sharded_act(t, th, d), _dev(t, th, d, (1, 1, 1024, 1024)),
                                  program_config=_mm1d(t, in0_block_w=1, per_core_N=1),
                                  memory_config=t.L1_WIDTH_SHARDED_MEMORY_CONFIG), valid=True)  # fmt: skip
    add("1D matmul: in0_block_w 2 wider than the in0 shard (1 tile)", "matmul",
        lambda t, th, d: t.linear(_width_sharded_act(t, th, d), _dev(t, th, d, (1, 1, 1024, 1024)),
                                  program_config=_mm1d(t, in0_block_w=2, per_core_N=1),
                                  memory_config=t.L1_WIDTH_SHARDED_MEMORY_CONFIG))  # fmt: skip
    add("1D matmul: in0_block_w 3 does not divide K (32 tiles)", "matmul",
        lambda t, th, d: t.linear(_width_sharded_act(t, th, d), _dev(t, th, d, (1, 1, 1024, 1024)),
                                  program_config=_mm1d(t, in0_block_w=3, per_core_N=1),
                                  memory_config=t.L1_WIDTH_SHARDED_MEMORY_CONFIG))  # fmt: skip
    add("1D matmul: out_subblock_w 3 does not divide per_core_N 1", "matmul",
        lambda t, th, d: t.linear(_width_sharded_act(t, th, d), _dev(t, th, d, (1, 1, 1024, 1024)),
                                  program_config=_mm1d(t, sub_w=3, per_core_N=1, in0_block_w=1),
                                  memory_config=t.L1_WIDTH_SHARDED_MEMORY_CONFIG))  # fmt: skip

    # --- tensors, memory configs, shards
    add("height-sharded tensor: a valid shard", "memory",
        lambda t, th, d: _dev(t, th, d, (1, 1, 32 * 8, 64), mc=_height_sharded(t, 32, 64, 8)), valid=True)  # fmt: skip
    add("shard shape (32, 48) not tile-sized", "memory",
        lambda t, th, d: _dev(t, th, d, (1, 1, 32, 48 * 8),
                              mc=t.create_sharded_memory_config((32, 48), t.num_cores_to_corerangeset(8, t.CoreCoord(8, 8), True),
                                                                t.ShardStrategy.WIDTH, use_height_and_width_as_shard_shape=True)))  # fmt: skip
    add("height shards do not cover the tensor (4 x 32 rows < 256)", "memory",
        lambda t, th, d: _dev(t, th, d, (1, 1, 256, 64), mc=_height_sharded(t, 32, 64, 4)))  # fmt: skip
    add("height shard narrower than the tensor width", "memory",
        lambda t, th, d: _dev(t, th, d, (1, 1, 256, 128), mc=_height_sharded(t, 32, 64, 8)))  # fmt: skip
    add("bfloat8_b tensor in ROW_MAJOR on device", "memory",
        lambda t, th, d: _dev(t, th, d, (1, 1, 32, 64), dtype=t.bfloat8_b, layout=t.ROW_MAJOR_LAYOUT))  # fmt: skip
    add("bfloat4_b host tensor in ROW_MAJOR", "memory",
        lambda t, th, d: t.from_torch(th.randn(32, 64), dtype=t.bfloat4_b, layout=t.ROW_MAJOR_LAYOUT))  # fmt: skip
    add("typecast to bfloat8_b of a ROW_MAJOR device tensor", "memory",
        lambda t, th, d: t.typecast(_dev(t, th, d, (1, 1, 32, 64), layout=t.ROW_MAJOR_LAYOUT), t.bfloat8_b))  # fmt: skip
    add("L1 out of memory: 2 x 64 MiB interleaved in L1", "memory",
        lambda t, th, d: _many_l1(t, th, d, 8192))  # fmt: skip
    add("L1 fits: 2 x 8 MiB interleaved in L1", "memory",
        lambda t, th, d: _many_l1(t, th, d, 1024), valid=True)  # fmt: skip
    add("DRAM out of memory: a 16 GiB matmul output", "memory", _dram_fill)
    add("interleaved_to_sharded: shard grid too small for the tensor", "memory",
        lambda t, th, d: t.interleaved_to_sharded(_dev(t, th, d, (1, 1, 512, 64)), _height_sharded(t, 32, 64, 8)))  # fmt: skip

    # --- attention
    add("SDPA prefill: valid chunks 64/64", "attention",
        lambda t, th, d: _sdpa(t, th, d), valid=True)  # fmt: skip
    add("SDPA prefill: k_chunk_size 96 (not a power of 2) dividing seq 192", "attention",
        lambda t, th, d: _sdpa(t, th, d, seq=192, q_chunk=64, k_chunk=96), valid=True)  # fmt: skip
    add("SDPA prefill: chunk 64 does not divide seq 96", "attention",
        lambda t, th, d: _sdpa(t, th, d, seq=96))  # fmt: skip
    add("SDPA prefill: k_chunk_size 48 not a multiple of 32", "attention",
        lambda t, th, d: _sdpa(t, th, d, seq=192, q_chunk=64, k_chunk=48))  # fmt: skip
    add("SDPA prefill: q_chunk_size 48 not a multiple of 32", "attention",
        lambda t, th, d: _sdpa(t, th, d, q_chunk=48))  # fmt: skip
    add("SDPA prefill: 6 query heads over 4 KV heads", "attention",
        lambda t, th, d: _sdpa(t, th, d, q_heads=6, kv_heads=4))  # fmt: skip
    add("SDPA decode: batch 32", "attention",
        lambda t, th, d: _sdpa_decode(t, th, d), valid=True)  # fmt: skip
    add("SDPA decode: batch 33 (no limit on users in the op)", "attention",
        lambda t, th, d: _sdpa_decode(t, th, d, batch=33), valid=True)  # fmt: skip
    add("SDPA decode: k_chunk_size 96 not a power of 2", "attention",
        lambda t, th, d: _sdpa_decode(t, th, d, k_chunk=96))  # fmt: skip
    add("SDPA decode: cache length 250 not a tile multiple", "attention",
        lambda t, th, d: _sdpa_decode(t, th, d, batch=1, cache=250))  # fmt: skip
    add("SDPA decode: head_dim 48 (padded to tiles)", "attention",
        lambda t, th, d: _sdpa_decode(t, th, d, head_dim=48), valid=True)  # fmt: skip
    add("SDPA decode: 6 query heads over 4 KV heads", "attention",
        lambda t, th, d: _sdpa_decode(t, th, d, q_heads=6, kv_heads=4))  # fmt: skip
    add("create_qkv_heads_decode: batch 32, 8/2 heads", "attention",
        lambda t, th, d: _qkv_decode(t, th, d), valid=True)  # fmt: skip
    add("create_qkv_heads_decode: batch 33", "attention",
        lambda t, th, d: _qkv_decode(t, th, d, batch=33))  # fmt: skip
    add("create_qkv_heads_decode: 6 heads over 4 KV heads (a plain split)", "attention",
        lambda t, th, d: _qkv_decode(t, th, d, q_heads=6, kv_heads=4), valid=True)  # fmt: skip
    add("create_qkv_heads_decode: 2 query heads under 4 KV heads", "attention",
        lambda t, th, d: _qkv_decode(t, th, d, q_heads=2, kv_heads=4))  # fmt: skip
    add("create_qkv_heads_decode: 40 query heads (shards padded to 64 rows)", "attention",
        lambda t, th, d: _qkv_decode(t, th, d, q_heads=40, kv_heads=8, head_dim=32), valid=True)  # fmt: skip
    add("concat_heads_decode: users on two core ranges without sub_core_grids", "attention",
        lambda t, th, d: t.experimental.nlp_concat_heads_decode(
            _dev(t, th, d, (1, 32, 8, 64), mc=_height_sharded(t, 32, 64, 32, grid=(13, 8))), num_heads=8))  # fmt: skip
    add("create_qkv_heads_decode: height-sharded input", "attention",
        lambda t, th, d: t.experimental.nlp_create_qkv_heads_decode(
            _dev(t, th, d, (1, 1, 32, 768), mc=_height_sharded(t, 32, 768, 1)),
            num_heads=8, num_kv_heads=2, memory_config=t.L1_HEIGHT_SHARDED_MEMORY_CONFIG))  # fmt: skip
    add("create_qkv_heads_decode: head_dim 48 not tile-aligned", "attention",
        lambda t, th, d: _qkv_decode(t, th, d, head_dim=48))  # fmt: skip
    add("create_qkv_heads (prefill): 6 heads over 4 KV heads (a plain split)", "attention",
        lambda t, th, d: t.experimental.nlp_create_qkv_heads(_dev(t, th, d, (1, 1, 128, 14 * 64)),
                                                             num_heads=6, num_kv_heads=4, transpose_k_heads=False),
        valid=True)  # fmt: skip
    add("concat_heads_decode: input not height-sharded", "attention",
        lambda t, th, d: t.experimental.nlp_concat_heads_decode(_dev(t, th, d, (1, 32, 32, 64)), num_heads=8))  # fmt: skip
    add("paged_update_cache: input not sharded", "attention",
        lambda t, th, d: t.experimental.paged_update_cache(_dev(t, th, d, (32, 2, 256, 64)),
                                                           _dev(t, th, d, (1, 32, 2, 64)), update_idxs=[0] * 32))  # fmt: skip
    add("rotary_embedding_llama: head_dim 288", "attention",
        lambda t, th, d: t.experimental.rotary_embedding_llama(
            _dev(t, th, d, (1, 1, 32, 288)), _dev(t, th, d, (1, 1, 32, 288)),
            _dev(t, th, d, (1, 1, 32, 288)), _dev(t, th, d, (1, 1, 32, 32))))  # fmt: skip

    # --- norms and eltwise
    add("rms_norm interleaved: a 4096-wide row fits L1", "norm",
        lambda t, th, d: _rms_wide(t, th, d, 4096), valid=True)  # fmt: skip
    add("rms_norm interleaved: an 8192-wide row overflows L1 circular buffers", "norm",
        lambda t, th, d: _rms_wide(t, th, d, 8192))  # fmt: skip
    add("rms_norm interleaved 4096 wide next to 400 KB of L1 buffers: fits below them", "norm",
        lambda t, th, d: _rms_next_to_l1(t, th, d, 400), valid=True)  # fmt: skip
    add("rms_norm interleaved 4096 wide next to 600 KB of L1 buffers: circular buffers clash", "norm",
        lambda t, th, d: _rms_next_to_l1(t, th, d, 600))  # fmt: skip
    add("layer_norm interleaved (weight, bias, fp32 dest): a 2048-wide row fits L1", "norm",
        lambda t, th, d: _layer_norm_wide(t, th, d, 2048), valid=True)  # fmt: skip
    add("layer_norm interleaved (weight, bias, fp32 dest): a 3072-wide row overflows L1", "norm",
        lambda t, th, d: _layer_norm_wide(t, th, d, 3072))  # fmt: skip
    add("layer_norm interleaved (weight, bias, bf16 dest): a 3072-wide row fits L1", "norm",
        lambda t, th, d: _layer_norm_wide(t, th, d, 3072, fp32=False), valid=True)  # fmt: skip
    # --- the ViT ops (tt-metal's ViT)
    add("pad to an output shape of rank 3 (the shape form binds 4 integers)", "vit",
        lambda t, th, d: t.pad(_dev(t, th, d, (8, 17, 128)), [8, 32, 128], [0, 0, 0], 0.0))  # fmt: skip
    add("pad by (before, after) pairs of a rank-3 tensor", "vit",
        lambda t, th, d: t.pad(_dev(t, th, d, (8, 17, 128)), [(0, 0), (0, 15), (0, 0)], 0.0), valid=True)  # fmt: skip
    add("fold: height 30 not divisible by stride 8", "vit",
        lambda t, th, d: t.fold(_dev(t, th, d, (2, 30, 4, 8), layout=t.ROW_MAJOR_LAYOUT), 8, 1))  # fmt: skip
    add("fold: a valid NHWC row-major input", "vit",
        lambda t, th, d: t.fold(_dev(t, th, d, (2, 32, 4, 32), layout=t.ROW_MAJOR_LAYOUT), 8, 1), valid=True)  # fmt: skip
    add("split_query_key_value_and_split_heads: head size 16", "vit",
        lambda t, th, d: t.transformer.split_query_key_value_and_split_heads(_dev(t, th, d, (2, 17, 384)),
                                                                             num_heads=8))  # fmt: skip
    add("split_query_key_value_and_split_heads: a rank-4 input", "vit",
        lambda t, th, d: t.transformer.split_query_key_value_and_split_heads(_dev(t, th, d, (2, 1, 17, 384)),
                                                                             num_heads=4))  # fmt: skip
    add("split_query_key_value_and_split_heads: 17 tokens, 4 heads of 32", "vit",
        lambda t, th, d: t.transformer.split_query_key_value_and_split_heads(_dev(t, th, d, (2, 17, 384)),
                                                                             num_heads=4), valid=True)  # fmt: skip
    add("concatenate_heads: head size 16", "vit",
        lambda t, th, d: t.transformer.concatenate_heads(_dev(t, th, d, (2, 4, 17, 16))))  # fmt: skip
    add("concatenate_heads: a rank-3 input", "vit",
        lambda t, th, d: t.transformer.concatenate_heads(_dev(t, th, d, (2, 17, 32))))  # fmt: skip
    add("sharded rms_norm: valid block_w 1", "norm",
        lambda t, th, d: _rms_sharded(t, th, d, block_w=1), valid=True)  # fmt: skip
    add("sharded rms_norm: block_w 2 != shard width (1 tile)", "norm",
        lambda t, th, d: _rms_sharded(t, th, d, block_w=2))  # fmt: skip
    add("sharded rms_norm: block_w 8 (32 cores) fits L1 circular buffers", "norm",
        lambda t, th, d: _rms_sharded(t, th, d, block_w=8, width=8192), valid=True)  # fmt: skip
    add("sharded rms_norm: block_w 222 (32 cores) overflows L1 circular buffers", "norm",
        lambda t, th, d: _rms_sharded(t, th, d, block_w=222, width=222 * 1024))  # fmt: skip
    add("sharded rms_norm program config on an interleaved input", "norm",
        lambda t, th, d: _rms_sharded(t, th, d, block_w=1, interleaved=True))  # fmt: skip
    add("add: shapes not broadcastable (64 vs 96 columns)", "eltwise",
        lambda t, th, d: t.add(_dev(t, th, d, (1, 1, 32, 64)), _dev(t, th, d, (1, 1, 32, 96))))  # fmt: skip
    add("concat: shapes differ outside the concat dim", "eltwise",
        lambda t, th, d: t.concat([_dev(t, th, d, (1, 1, 32, 32)), _dev(t, th, d, (1, 1, 64, 64))], dim=2))  # fmt: skip
    add("slice: end beyond the tensor", "eltwise",
        lambda t, th, d: t.slice(_dev(t, th, d, (1, 1, 32, 32)), [0, 0, 0, 0], [1, 1, 64, 32]))  # fmt: skip
    add("embedding: uint32 indices, row-major weight", "eltwise",
        lambda t, th, d: t.embedding(_ids(t, th, d, t.uint32), _dev(t, th, d, (1024, 64), layout=t.ROW_MAJOR_LAYOUT)),
        valid=True)  # fmt: skip
    add("embedding: indices in TILE layout", "eltwise",
        lambda t, th, d: t.embedding(_ids(t, th, d, t.uint32, t.TILE_LAYOUT),
                                     _dev(t, th, d, (1024, 64), layout=t.ROW_MAJOR_LAYOUT)), valid=True)  # fmt: skip
    add("embedding: weight in TILE layout", "eltwise",
        lambda t, th, d: t.embedding(_ids(t, th, d, t.uint32), _dev(t, th, d, (1024, 64))), valid=True)  # fmt: skip
    add("rms_norm: weight width 128 for an input of width 256", "norm",
        lambda t, th, d: t.rms_norm(_dev(t, th, d, (1, 1, 32, 256)), epsilon=1e-5,
                                    weight=t.from_torch(th.randn(1, 1, 4, 32), dtype=t.bfloat16, layout=t.ROW_MAJOR_LAYOUT,
                                                        device=d, memory_config=t.DRAM_MEMORY_CONFIG)))  # fmt: skip
    add("open_device: device 1 on a one-chip cluster", "device",
        lambda t, th, d: t.open_device(device_id=1))  # fmt: skip
    add("plus_one on a float tensor", "eltwise",
        lambda t, th, d: t.plus_one(_dev(t, th, d, (32,), dtype=t.float32, layout=t.ROW_MAJOR_LAYOUT)))  # fmt: skip

    # --- hand-written TTNN code (the emulator's API beyond the templates)
    add("rms_norm on a sharded input without a program config (derived from the shard spec)", "norm",
        lambda t, th, d: t.rms_norm(_width_sharded_x(t, th, d), epsilon=1e-5, weight=_norm_weight(t, th, d)),
        valid=True)  # fmt: skip
    add("layer_norm on a sharded input without a program config", "norm",
        lambda t, th, d: t.layer_norm(_width_sharded_x(t, th, d), epsilon=1e-5, weight=_norm_weight(t, th, d)),
        valid=True)  # fmt: skip
    add("interleaved_to_sharded(t, CoreCoord grid, shard shape, scheme, orientation)", "data movement",
        lambda t, th, d: t.interleaved_to_sharded(_dev(t, th, d, (1, 1, 32, 256)), t.CoreCoord(8, 1), [32, 32],
                                                  t.TensorMemoryLayout.WIDTH_SHARDED, t.ShardOrientation.ROW_MAJOR),
        valid=True)  # fmt: skip
    add("interleaved_to_sharded by keywords with a CoreRangeSet grid", "data movement",
        lambda t, th, d: t.interleaved_to_sharded(
            _dev(t, th, d, (1, 1, 32, 256)), grid=t.CoreRangeSet({t.CoreRange(t.CoreCoord(0, 0), t.CoreCoord(7, 0))}),
            shard_shape=[32, 32], shard_scheme=t.TensorMemoryLayout.WIDTH_SHARDED,
            shard_orientation=t.ShardOrientation.ROW_MAJOR), valid=True)  # fmt: skip
    add("slice by sequences named like the tensor overload, without steps (no overload binds)", "data movement",
        lambda t, th, d: t.slice(_dev(t, th, d, (1, 1, 32, 64)), starts=[0, 0, 0, 0], ends=[1, 1, 32, 32]))  # fmt: skip
    add("softmax_in_place, interleaved", "softmax",
        lambda t, th, d: t.softmax_in_place(_dev(t, th, d, (1, 1, 64, 256))), valid=True)  # fmt: skip
    add("softmax_in_place on a row-major input", "softmax",
        lambda t, th, d: t.softmax_in_place(_dev(t, th, d, (1, 1, 64, 256), layout=t.ROW_MAJOR_LAYOUT)))  # fmt: skip
    add("scale_mask_softmax with a one-tile-row mask", "softmax",
        lambda t, th, d: t.scale_mask_softmax(_dev(t, th, d, (1, 1, 64, 256)), 0.125, _dev(t, th, d, (1, 1, 32, 256))),
        valid=True)  # fmt: skip
    add("scale_mask_softmax with a full [64, 256] mask (0.81.1: height 1 or 32)", "softmax",
        lambda t, th, d: t.scale_mask_softmax(_dev(t, th, d, (1, 1, 64, 256)), 0.125, _dev(t, th, d, (1, 1, 64, 256))))  # fmt: skip
    add("scale_mask_softmax with a scale and no mask", "softmax",
        lambda t, th, d: t.scale_mask_softmax(_dev(t, th, d, (1, 1, 64, 256)), 0.125))  # fmt: skip
    add("scale_mask_softmax_in_place, sharded (one shard per core)", "softmax",
        lambda t, th, d: t.scale_mask_softmax_in_place(_sharded_scores(t, th, d), program_config=_softmax_pc(t)),
        valid=True)  # fmt: skip
    add("softmax_in_place, sharded: block_w 8 not divisible by subblock_w 3", "softmax",
        lambda t, th, d: t.softmax_in_place(_sharded_scores(t, th, d), program_config=_softmax_pc(t, subblock_w=3)))  # fmt: skip
    add("softmax_in_place, sharded: 4 cores in the config for 2 shards", "softmax",
        lambda t, th, d: t.softmax_in_place(_sharded_scores(t, th, d), program_config=_softmax_pc(t, grid=(4, 1))))  # fmt: skip
    add("softmax_in_place, sharded: block_w 4 short of the width (8 tiles)", "softmax",
        lambda t, th, d: t.softmax_in_place(_sharded_scores(t, th, d), program_config=_softmax_pc(t, subblock_w=4, block_w=4)))  # fmt: skip

    # --- aliasing: ops that return their input (deallocating one deallocates both) vs new tensors
    def after_dealloc(t, th, d, op, mc=None):
        x = _dev(t, th, d, (1, 1, 32, 256), mc=mc)
        y = op(t, x)
        t.deallocate(x)
        return t.add(y, y, memory_config=t.DRAM_MEMORY_CONFIG)

    aliasing = [
        ("to_memory_config to its own config", lambda t, x: t.to_memory_config(x, t.DRAM_MEMORY_CONFIG), False),
        ("to_layout to its own layout", lambda t, x: t.to_layout(x, t.TILE_LAYOUT), False),
        ("reshape to its own shape", lambda t, x: t.reshape(x, (1, 1, 32, 256)), False),
        ("slice of the full range", lambda t, x: t.slice(x, [0, 0, 0, 0], [1, 1, 32, 256]), False),
        ("permute by the identity", lambda t, x: t.permute(x, (0, 1, 2, 3)), False),
        ("to_memory_config DRAM to L1", lambda t, x: t.to_memory_config(x, t.L1_MEMORY_CONFIG), True),
        ("typecast to its own dtype", lambda t, x: t.typecast(x, t.bfloat16), True),
        ("clone", lambda t, x: t.clone(x), True),
        ("transpose of the last two dims", lambda t, x: t.transpose(x, -2, -1), True),
    ]  # fmt: skip
    for label, op, fresh in aliasing:
        add(f"use after deallocating the input: {label}", "aliasing",
            lambda t, th, d, op=op: after_dealloc(t, th, d, op), valid=fresh)  # fmt: skip
    return c


CASES = _cases()


def error_message(exc: BaseException | str) -> str:
    """The human part of a TT_FATAL (an exception or its text): the line after `info:` (real ttnn)
    or the text after the location (the emulator); the first line otherwise."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if "info:" in lines and lines.index("info:") + 1 < len(lines):
        return lines[lines.index("info:") + 1][:200]
    head = lines[0] if lines else type(exc).__name__
    if head.startswith("TT_FATAL @ ") and ": " in head[11:]:
        head = head[11:].split(": ", 1)[1]
    return head[:200]


def run_case(case: Case, ttnn, torch, device) -> dict:
    """{"verdict": "accepts" | "rejects", "message": first line of the error}."""
    torch.manual_seed(0)
    try:
        out = case.call(ttnn, torch, device)
    except Exception as exc:  # noqa: BLE001 - any rejection counts; the message is reported
        return {"verdict": "rejects", "message": error_message(exc)}
    for t in out if isinstance(out, (list, tuple)) else [out]:
        if hasattr(t, "memory_config") and t.storage_type() == ttnn.StorageType.DEVICE:
            ttnn.deallocate(t)
    return {"verdict": "accepts", "message": ""}


def program_cache_counts(ttnn, torch, device) -> list[tuple[str, int]]:
    """device.num_program_cache_entries() after each step of a sequence hand-written code runs."""
    x = _dev(ttnn, torch, device, (1, 1, 32, 256))
    counts = [("open + from_torch", device.num_program_cache_entries())]

    def step(label, fn):
        fn()
        counts.append((label, device.num_program_cache_entries()))

    step("add", lambda: ttnn.add(x, x))
    step("the same add again", lambda: ttnn.add(x, x))
    step("multiply", lambda: ttnn.multiply(x, x))
    mc = ttnn.create_sharded_memory_config((32, 32), ttnn.CoreGrid(y=1, x=8), ttnn.ShardStrategy.WIDTH,
                                           use_height_and_width_as_shard_shape=True)  # fmt: skip
    held = {}
    step(
        "to_memory_config to width-sharded",
        lambda: held.setdefault("xs", ttnn.to_memory_config(x, mc)),
    )
    step("interleaved_to_sharded to the same config", lambda: ttnn.interleaved_to_sharded(
        x, ttnn.CoreCoord(8, 1), [32, 32], ttnn.TensorMemoryLayout.WIDTH_SHARDED, ttnn.ShardOrientation.ROW_MAJOR))  # fmt: skip
    step("add on the sharded tensor", lambda: ttnn.add(held["xs"], held["xs"]))
    step("disable_and_clear_program_cache", device.disable_and_clear_program_cache)
    step("add with the cache disabled", lambda: ttnn.add(x, x))
    step("enable_program_cache + add", lambda: (device.enable_program_cache(), ttnn.add(x, x)))
    return counts
