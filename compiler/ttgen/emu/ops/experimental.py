"""ttnn.experimental: head split/concat, Llama rotary embedding, KV-cache updates and fills."""

from __future__ import annotations

import math

import torch

from ttgen.devices.rules import check_decode_heads, check_rotary
from ttgen.emu.errors import require, rules
from ttgen.emu.ops._op import (
    check_tile,
    device_op,
    int64_tensor,
    launch,
    make_tensor,
    on_device,
    positions,
    reserve_output,
)
from ttgen.emu.tensor import Tensor, quantize_to
from ttgen.emu.types import (
    L1_HEIGHT_SHARDED_MEMORY_CONFIG,
    BufferType,
    DataType,
    Layout,
    MathFidelity,
    MemoryConfig,
    ShardOrientation,
    ShardSpec,
    TensorMemoryLayout,
    WormholeComputeKernelConfig,
    ceil_div,
    num_cores_to_corerangeset,
)

__all__ = [
    "nlp_concat_heads", "nlp_concat_heads_decode", "nlp_create_qkv_heads", "nlp_create_qkv_heads_decode",
    "paged_fill_cache", "paged_update_cache", "rotary_embedding_llama", "fill_cache", "update_cache",
]  # fmt: skip


def _height_sharded(
    device, batch: int, shard: list[int], memory_config: MemoryConfig | None
) -> MemoryConfig:
    """One batch row per core, on the first `batch` cores of the grid, row by row."""
    base = memory_config or L1_HEIGHT_SHARDED_MEMORY_CONFIG
    require(
        base.memory_layout == TensorMemoryLayout.HEIGHT_SHARDED,
        "decode heads must be HEIGHT_SHARDED",
    )
    if base.shard_spec is not None:
        return base
    grid = num_cores_to_corerangeset(batch, device.compute_with_storage_grid_size(), row_wise=True)
    return base.with_shard_spec(ShardSpec(grid, shard, ShardOrientation.ROW_MAJOR))


def _head_dim(width: int, heads: int, what: str) -> int:
    require(width % heads == 0, lambda: f"{what}: width {width} is not divisible by {heads} heads")
    head_dim = width // heads
    require(
        head_dim % 32 == 0,
        lambda: f"{what}: head_dim {head_dim} must be a multiple of the tile width 32",
    )
    return head_dim


@device_op
def nlp_create_qkv_heads_decode(input_tensor, *, num_heads, num_kv_heads=None, output_tensors=None,
                                overlap_qk_coregrid=True, batch_offset=None, slice_size=None,
                                memory_config=None):  # fmt: skip
    x = input_tensor
    on_device(x)
    check_tile(x, "nlp_create_qkv_heads_decode input")
    require(
        x.dtype in (DataType.BFLOAT16, DataType.FLOAT32),
        "nlp_create_qkv_heads_decode: Unsupported data format (BFLOAT16 or FLOAT32)",
    )
    shape = list(x.shape)
    require(
        len(shape) == 4 and shape[0] == 1 and shape[1] == 1 and shape[3] % 32 == 0,
        lambda: f"nlp_create_qkv_heads_decode: Unsupported input shape = {shape}",
    )
    mc = x.memory_config()
    if mc.is_sharded():
        require(
            mc.memory_layout == TensorMemoryLayout.WIDTH_SHARDED,
            lambda: (
                f"nlp_create_qkv_heads_decode: Current input memory layout is {mc.memory_layout.name}. It must be width sharded"
            ),
        )
        require(
            mc.shard_spec.shape[0] == x.padded_shape[-2],
            "nlp_create_qkv_heads_decode: Shard shape must be correct",
        )
        require(
            mc.shard_spec.orientation == ShardOrientation.ROW_MAJOR,
            "nlp_create_qkv_heads_decode: Shard orientation must be ROW_MAJOR",
        )
    else:
        require(
            overlap_qk_coregrid,
            "nlp_create_qkv_heads_decode: Overlap_qk_coregrid must be true for non-sharded input",
        )
    kv = num_kv_heads if num_kv_heads is not None else num_heads
    batch = shape[2]
    d = _head_dim(shape[3], num_heads + 2 * kv, "nlp_create_qkv_heads_decode")
    with rules():
        check_decode_heads(batch=batch, head_dim=d)
    require(
        num_heads >= kv,
        lambda: (
            f"nlp_create_qkv_heads_decode: num_q_heads={num_heads} must be greater than or equal to num_kv_heads={kv}"
        ),
    )
    # every output's shard holds the query heads padded to a tile (the real op pads K and V by the
    # query head count too)
    mc = _height_sharded(x.device(), batch, [32 * ceil_div(num_heads, 32), d], memory_config)
    outs = tuple(
        reserve_output([1, batch, n, d], x.dtype, Layout.TILE, x.device(), mc)
        for n in (num_heads, kv, kv)
    )

    def run() -> None:
        v = x.values()[0, 0]
        heads = (
            v[:, : num_heads * d].reshape(1, batch, num_heads, d),
            v[:, num_heads * d : (num_heads + kv) * d].reshape(1, batch, kv, d),
            v[:, (num_heads + kv) * d :].reshape(1, batch, kv, d),
        )
        for t, out in zip(heads, outs, strict=True):
            make_tensor(t, x.dtype, Layout.TILE, out=out, source=x.dtype)

    launch(run)
    return outs


@device_op
def nlp_concat_heads_decode(
    input_tensor, *, num_heads, memory_config=None, output_tensor=None, sub_core_grids=None
):
    x = input_tensor
    on_device(x)
    check_tile(x, "nlp_concat_heads_decode input")
    require(
        x.memory_config().memory_layout == TensorMemoryLayout.HEIGHT_SHARDED,
        "nlp_concat_heads_decode: input must be HEIGHT_SHARDED",
    )
    shape = list(x.shape)
    require(
        len(shape) == 4 and shape[0] == 1,
        lambda: f"nlp_concat_heads_decode: input must be [1, B, H, D], got {shape}",
    )
    batch, heads, d = shape[1], shape[2], shape[3]
    require(batch <= 32, "nlp_concat_heads_decode: currently only support less than 32 users")
    require(
        x.padded_shape[2] == 32, "nlp_concat_heads_decode: currently only support 32 padded heads"
    )
    require(
        num_heads <= heads,
        lambda: f"nlp_concat_heads_decode: num_heads {num_heads} > {heads} heads in the input",
    )
    grid = x.memory_config().shard_spec.grid
    require(
        grid.num_cores() == batch,
        "nlp_concat_heads_decode: Input core grid num_cores must be equal to num users",
    )
    ranges = grid.ranges()
    on_subcoregrids = len(ranges) > 1 or (ranges[0].start.x, ranges[0].start.y) != (0, 0)
    require(
        not on_subcoregrids or sub_core_grids is not None,
        lambda: (
            f"nlp_concat_heads_decode: an input sharded over {len(ranges)} core ranges is on sub-core grids and "
            "needs sub_core_grids (the real 0.81.1 fails with 'bad optional access')"
        ),
    )
    # the output always has a full tile row of users: [1, 1, max(B, 32), num_heads * D]
    rows = max(batch, 32)
    mc = memory_config
    if mc is None or mc.shard_spec is None:
        grid = num_cores_to_corerangeset(
            num_heads, x.device().compute_with_storage_grid_size(), row_wise=True
        )
        mc = MemoryConfig(
            TensorMemoryLayout.WIDTH_SHARDED,
            BufferType.L1,
            ShardSpec(grid, [32, d], ShardOrientation.ROW_MAJOR),
        )
    out = reserve_output([1, 1, rows, num_heads * d], x.dtype, Layout.TILE, x.device(), mc)

    def run() -> None:
        heads = x.values()[0, :, :num_heads, :].reshape(batch, num_heads * d)
        if batch < rows:
            heads = torch.nn.functional.pad(heads, (0, 0, 0, rows - batch))
        make_tensor(heads.reshape(1, 1, rows, num_heads * d), x.dtype, Layout.TILE, out=out,
                    source=x.dtype)  # fmt: skip

    launch(run)
    return out


@device_op
def nlp_create_qkv_heads(input, input_kv=None, *, num_heads, num_kv_heads=None, transpose_k_heads=True,
                         kv_tied=False, memory_config=None, output_tensors=None):  # fmt: skip
    x = input
    on_device(x)
    check_tile(x, "nlp_create_qkv_heads input")
    require(
        input_kv is None and not kv_tied,
        "nlp_create_qkv_heads: separate or tied KV inputs are not emulated",
    )
    shape = list(x.shape)
    require(
        len(shape) == 4 and shape[1] == 1,
        lambda: f"nlp_create_qkv_heads: input must be [B, 1, S, W], got {shape}",
    )
    kv = num_kv_heads if num_kv_heads is not None else num_heads
    b, s = shape[0], shape[2]
    d = _head_dim(shape[3], num_heads + 2 * kv, "nlp_create_qkv_heads")
    v = x.values()[:, 0]
    q = v[..., : num_heads * d].reshape(b, s, num_heads, d).transpose(1, 2)
    k = v[..., num_heads * d : (num_heads + kv) * d].reshape(b, s, kv, d).transpose(1, 2)
    vv = v[..., (num_heads + kv) * d :].reshape(b, s, kv, d).transpose(1, 2)
    if transpose_k_heads:
        k = k.transpose(-1, -2)
    mc = memory_config or x.memory_config()
    require(mc.interleaved, "nlp_create_qkv_heads: outputs must be interleaved")
    return tuple(
        make_tensor(
            t.contiguous(),
            x.dtype,
            Layout.TILE,
            device=x.device(),
            memory_config=mc,
            source=x.dtype,
        )  # fmt: skip
        for t in (q, k, vv)
    )


@device_op
def nlp_concat_heads(input_tensor, *, memory_config=None):
    x = input_tensor
    on_device(x)
    check_tile(x, "nlp_concat_heads input")
    b, h, s, d = list(x.shape)
    out = x.values().transpose(1, 2).reshape(b, 1, s, h * d)
    return make_tensor(out, x.dtype, Layout.TILE, device=x.device(),
                       memory_config=memory_config or x.memory_config(), source=x.dtype)  # fmt: skip


def _trans_matrix(trans_mat: Tensor) -> tuple[torch.Tensor, bool]:
    """The first 32x32 tile of `trans_mat` and whether it is a signed permutation (one +-1 per
    column), kept on the tensor while its storage is unchanged."""
    cached = getattr(trans_mat, "_rotary_trans", None)
    if cached is not None and cached[0] is trans_mat._data:
        return cached[1], cached[2]
    trans = trans_mat.values().float().reshape(-1, 32, 32)[0]
    nonzero = trans != 0
    permutes = bool((trans[nonzero].abs() == 1).all() and (nonzero.sum(0) <= 1).all())
    trans_mat._rotary_trans = (trans_mat._data, trans, permutes)
    return trans, permutes


def _rotate_pairs(x: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """x @ T applied per 32-column block of the head dim."""
    return (x.reshape(-1, 32) @ trans).reshape(x.shape)


@device_op
def rotary_embedding_llama(input_tensor, cos_cache, sin_cache, trans_mat, *, is_decode_mode=False,
                           memory_config=None, compute_kernel_config=None):  # fmt: skip
    x = input_tensor
    for t, name in ((x, "input"), (cos_cache, "cos"), (sin_cache, "sin"), (trans_mat, "trans_mat")):
        on_device(t, name)
        check_tile(t, f"rotary_embedding_llama {name}")
        require(
            t.dtype == DataType.BFLOAT16,
            f"rotary_embedding_llama: {name} must be BFLOAT16, got {t.dtype.name}",
        )
    shape = list(x.shape)
    require(len(shape) == 4, lambda: f"rotary_embedding_llama: input must be 4D, got {shape}")
    d = shape[-1]
    kernel = compute_kernel_config or WormholeComputeKernelConfig(math_fidelity=MathFidelity.HiFi4)
    with rules():
        check_rotary(head_dim=d, fp32_dest_acc_en=kernel.fp32_dest_acc_en)
    require(
        list(trans_mat.shape)[-2:] == [32, 32] or trans_mat.shape[-1] == 32,
        "rotary_embedding_llama: trans_mat must be 32x32 tiles",
    )
    cos_shape = list(cos_cache.shape)
    if is_decode_mode:
        batch = shape[1]
        require(
            shape[0] == 1,
            lambda: f"rotary_embedding_llama decode: input must be [1, B, H, D], got {shape}",
        )
        require(
            x.memory_config().memory_layout == TensorMemoryLayout.HEIGHT_SHARDED,
            "rotary_embedding_llama decode: input must be HEIGHT_SHARDED",
        )
        require(
            cos_cache.is_sharded() and sin_cache.is_sharded(),
            "rotary_embedding_llama decode: cos/sin must be sharded",
        )
        require(
            cos_shape[:2] == [1, batch] and cos_shape[-1] == d,
            lambda: (
                f"rotary_embedding_llama decode: cos must be [1, {batch}, 1, {d}], got {cos_shape}"
            ),
        )
        require(batch <= x.device().compute_with_storage_grid_size().x * x.device().compute_with_storage_grid_size().y,
                "rotary_embedding_llama decode: batch exceeds the number of cores")  # fmt: skip
    else:
        require(not x.is_sharded(), "rotary_embedding_llama prefill: input must be interleaved")
        require(
            cos_shape[-2] == shape[2] and cos_shape[-1] == d,
            lambda: (
                f"rotary_embedding_llama prefill: cos must be [1, 1, {shape[2]}, {d}], got {cos_shape}"
            ),
        )
    out = reserve_output(
        shape, x.dtype, Layout.TILE, x.device(), memory_config or x.memory_config()
    )

    def run() -> None:
        trans, permutes = _trans_matrix(trans_mat)
        v = x.values()
        rotated = _rotate_pairs(v, trans)
        if not permutes:  # a signed permutation only moves bf16 values: nothing to round
            rotated = rotated.bfloat16().float()
        # both products are rounded to the dest format (bf16); a bf16 + bf16 torch add is computed
        # in fp32 and rounded once to bf16, as the output is
        summed = (v * cos_cache.values()).bfloat16() + (rotated * sin_cache.values()).bfloat16()
        make_tensor(summed.float(), x.dtype, Layout.TILE, out=out, source=DataType.BFLOAT16)

    launch(run)
    return out


@device_op
def paged_update_cache(cache_tensor, input_tensor, *, update_idxs=(), update_idxs_tensor=None, share_cache=None,
                       page_table=None, batch_offset=0, compute_kernel_config=None, mesh_coords=None,
                       block_size=None, num_kv_heads=None, cache_position_modulo=None):  # fmt: skip
    cache, x = cache_tensor, input_tensor
    on_device(cache, "cache_tensor")
    on_device(x, "input_tensor")
    check_tile(cache, "cache")
    require(
        x.dtype in (DataType.BFLOAT16, DataType.FLOAT32),
        lambda: f"paged_update_cache: input must be BFLOAT16 or FLOAT32, got {x.dtype.name}",
    )
    require(
        x.memory_config().memory_layout == TensorMemoryLayout.HEIGHT_SHARDED,
        "paged_update_cache: input must be HEIGHT_SHARDED",
    )
    shape = list(x.shape)
    require(
        len(shape) == 4 and shape[0] == 1,
        lambda: f"paged_update_cache: input must be [1, B, H, D], got {shape}",
    )
    batch, heads, d = shape[1], shape[2], shape[3]
    c_shape = list(cache.shape)
    require(
        c_shape[1] == heads and c_shape[3] == d,
        lambda: (
            f"paged_update_cache: input heads/head_dim {heads}/{d} do not match cache {c_shape}"
        ),
    )
    if page_table is not None:
        on_device(page_table, "page_table")
        require(
            page_table.dtype == DataType.INT32 and page_table.layout == Layout.ROW_MAJOR,
            "page_table must be INT32 ROW_MAJOR",
        )
    rows_per_slot = cache.padded_shape[2]  # a cache row is (slot, head, row): [.., H, S, D]

    def run() -> None:
        pos = positions(update_idxs, update_idxs_tensor, batch, "update_idxs_tensor")
        users = [u for u, q in enumerate(pos) if q >= 0]  # position -1 skips a user
        if not users:
            return
        p = pos if len(users) == batch else [pos[u] for u in users]
        if page_table is None:
            bad = [
                (u, q)
                for u, q in zip(users, p, strict=True)
                if u + batch_offset >= c_shape[0] or q >= c_shape[2]
            ]
            require(not bad, lambda: f"paged_update_cache: position [{bad[0][1]}] of user [{bad[0][0]}] is outside the cache {c_shape}")  # fmt: skip
            slots, rows_at = [u + batch_offset for u in users], p
        else:
            bs, table = c_shape[2], page_table.values().tolist()
            bad = [(u, q) for u, q in zip(users, p, strict=True) if q // bs >= len(table[u])]
            require(not bad, lambda: f"paged_update_cache: position [{bad[0][1]}] of user [{bad[0][0]}] is beyond its page table")  # fmt: skip
            slots = [table[u][q // bs] for u, q in zip(users, p, strict=True)]
            bad = [slot for slot in slots if not 0 <= slot < c_shape[0]]
            require(not bad, lambda: f"paged_update_cache: page table entry [{bad[0]}] outside {c_shape[0]} blocks")  # fmt: skip
            rows_at = [q % bs for q in p]
        # the written rows of the [slots * H * rows, D] storage; each is its own block-float
        # exponent group, so only they are repacked
        index = int64_tensor([(slot * heads + h) * rows_per_slot + r
                              for slot, r in zip(slots, rows_at, strict=True) for h in range(heads)])  # fmt: skip
        rows = x.padded_values()[0, :, :heads]  # [B, H, D] with D tile-padded, as the cache's
        if len(users) < batch:
            rows = rows[users]
        width = rows.shape[-1]
        rows = quantize_to(rows.float().reshape(-1, width), cache.dtype)
        cache._data.view(-1, width).index_copy_(0, index, rows)

    launch(run)
    return cache  # the real op returns the updated cache tensor itself


@device_op
def paged_fill_cache(cache_tensor, input_tensor, page_table, *, batch_idx_tensor=None, batch_idx=0,
                     compute_kernel_config=None, mesh_coords=None, block_size=None, cache_position_modulo=None,
                     valid_seq_len_tensor=None):  # fmt: skip
    cache, x = cache_tensor, input_tensor
    for t, name in ((cache, "cache"), (x, "input"), (page_table, "page_table")):
        on_device(t, name)
    require(
        x.dtype == cache.dtype,
        lambda: (
            f"paged_fill_cache: input dtype {x.dtype.name} must match the cache dtype {cache.dtype.name}"
        ),
    )
    shape, c_shape = list(x.shape), list(cache.shape)
    require(
        len(shape) == 4 and shape[0] == 1,
        lambda: f"paged_fill_cache: input must be [1, H, S, D], got {shape}",
    )
    require(
        shape[1] == c_shape[1] and shape[3] == c_shape[3],
        lambda: f"paged_fill_cache: input {shape} does not match cache {c_shape}",
    )
    if batch_idx_tensor is not None:
        batch_idx = int(batch_idx_tensor.values().reshape(-1)[0])
    bs, s = c_shape[2], shape[2]
    table = page_table.values().to(torch.int64)
    require(
        math.ceil(s / bs) <= table.shape[1],
        lambda: f"paged_fill_cache: {s} tokens need more than {table.shape[1]} blocks",
    )
    v = x.values()[0]
    for i in range(math.ceil(s / bs)):
        block = int(table[batch_idx, i])
        chunk = v[:, i * bs : (i + 1) * bs]
        cache._data[block, :, : chunk.shape[1], : chunk.shape[2]] = chunk.to(cache._data.dtype)
    return cache  # the real op returns the updated cache tensor itself


@device_op
def fill_cache(cache_tensor, input_tensor, batch_idx, *, update_idx=0):
    cache, x = cache_tensor, input_tensor
    on_device(cache, "cache")
    on_device(x, "input")
    require(
        x.dtype == cache.dtype,
        lambda: (
            f"fill_cache: input dtype {x.dtype.name} must match the cache dtype {cache.dtype.name}"
        ),
    )
    shape, c_shape = list(x.shape), list(cache.shape)
    require(
        shape[0] == 1 and shape[1] == c_shape[1] and shape[3] == c_shape[3],
        lambda: f"fill_cache: input {shape} does not match cache {c_shape}",
    )
    require(
        0 <= batch_idx < c_shape[0],
        lambda: f"fill_cache: batch_idx {batch_idx} outside {c_shape[0]} users",
    )
    require(
        update_idx + shape[2] <= c_shape[2],
        lambda: (
            f"fill_cache: {shape[2]} tokens at {update_idx} overflow the cache length {c_shape[2]}"
        ),
    )
    cache._data[batch_idx, :, update_idx : update_idx + shape[2], : shape[3]] = x.values()[0].to(
        cache._data.dtype
    )
    return cache  # the real op returns the updated cache tensor itself


@device_op
def update_cache(cache, input, update_idx, *, batch_offset=0, compute_kernel_config=None):
    on_device(cache, "cache")
    on_device(input, "input")
    shape, c_shape = list(input.shape), list(cache.shape)
    require(
        shape[0] == 1 and shape[1] == c_shape[1] and shape[3] == c_shape[3],
        lambda: f"update_cache: input {shape} does not match cache {c_shape}",
    )
    require(
        0 <= update_idx < c_shape[2],
        lambda: f"update_cache: update_idx {update_idx} outside the cache length {c_shape[2]}",
    )
    users = c_shape[0]
    require(
        batch_offset + users <= shape[2],
        lambda: f"update_cache: input holds no row for user {shape[2] - batch_offset}",
    )
    # input [1, H, users, D]: user b's row of every head goes to the cache at [b, :, update_idx]
    rows = input.padded_values()[0, :, batch_offset : batch_offset + users].transpose(0, 1)
    width = rows.shape[-1]
    cache._data[:, :, update_idx] = quantize_to(
        rows.float().reshape(-1, width), cache.dtype
    ).reshape(users, c_shape[1], width)
    return cache  # the real op returns the updated cache tensor itself
