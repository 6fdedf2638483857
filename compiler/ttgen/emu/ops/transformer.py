"""ttnn.transformer: scaled dot-product attention for prefill (causal, GQA, sliding window) and
decode (per-user positions, static or paged cache, skipped users).

Q·Kᵀ and P·V go through the matrix-engine fidelity model with fp32 accumulation; softmax is fp32."""

from __future__ import annotations

import torch

from ttgen.devices.rules import auto_decode_k_chunk, check_sdpa_chunks
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
from ttgen.emu.ops.matmul import fidelity_matmul
from ttgen.emu.scalars import scalar
from ttgen.emu.types import (
    DRAM_MEMORY_CONFIG,
    DataType,
    Layout,
    MathFidelity,
    SDPAProgramConfig,
    ShardOrientation,
    ShardSpec,
    TensorMemoryLayout,
    WormholeComputeKernelConfig,
)

__all__ = [
    "concatenate_heads",
    "paged_scaled_dot_product_attention_decode",
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_decode",
    "split_query_key_value_and_split_heads",
]

_DEFAULT_SDPA_KERNEL = WormholeComputeKernelConfig(
    math_fidelity=MathFidelity.HiFi2, fp32_dest_acc_en=False
)


def _validate_chunks(pc: SDPAProgramConfig | None, seq_len: int | None, device) -> None:
    if pc is None or device.replaying:  # a replayed call was validated at capture
        return
    full, g = device.compute_with_storage_grid_size(), pc.compute_with_storage_grid_size
    with rules():
        check_sdpa_chunks(
            pc.q_chunk_size,
            pc.k_chunk_size,
            seq_len,
            grid=(g.x, g.y),
            compute_grid=(full.x, full.y),
        )


def _attend(q, k, v, mask, scale, kernel, bits=(23, 23, 23), *, empty_rows=True):
    """q [B, Hq, Sq, D], k/v [B, Hkv, Sk, D], mask [.., Sq, Sk] bool (True = attend; None: every
    query attends to every key); `bits`: the mantissa bits of Q's, K's and V's dtypes."""
    b, hq, sq, d = q.shape
    hkv = k.shape[1]
    require(hq % hkv == 0, lambda: f"SDPA: {hq} query heads are not a multiple of {hkv} KV heads")
    rep = hq // hkv
    # GQA: the `rep` query heads sharing a KV head are stacked along the query rows
    qg = q.reshape(b, hkv, rep * sq, d)
    if mask is not None and mask.dim() >= 2 and mask.shape[-2] == sq and sq > 1:
        mask = mask.repeat(*([1] * (mask.dim() - 2)), rep, 1)
    q_bits, k_bits, v_bits = bits
    scores = fidelity_matmul(qg, k.transpose(-1, -2), kernel.math_fidelity, True,
                             act_bits=q_bits, weight_bits=k_bits) * scalar(scale)  # fmt: skip
    if mask is not None:
        scores = torch.where(mask, scores, scalar(float("-inf")))
    probs = torch.softmax(scores, dim=-1)
    if empty_rows:  # a row with no key to attend to gives zeros, not NaN
        probs = probs.nan_to_num(0.0)
    probs = probs.bfloat16().float()  # P is packed to bf16 before P·V
    out = fidelity_matmul(probs, v, kernel.math_fidelity, True, act_bits=7, weight_bits=v_bits)
    return out.reshape(b, hq, sq, d)


def _check_qkv(q, k, v, what):
    for t, name in ((q, "Q"), (k, "K"), (v, "V")):
        on_device(t, name)
        check_tile(t, f"{what} {name}")
        require(t.dtype in (DataType.BFLOAT16, DataType.BFLOAT8_B, DataType.BFLOAT4_B, DataType.FLOAT32),
                f"{what}: {name} dtype {t.dtype.name} is not supported")  # fmt: skip


@device_op
def scaled_dot_product_attention(input_tensor_q, input_tensor_k, input_tensor_v, *, attn_mask=None, is_causal=True,
                                 scale=None, sliding_window_size=None, memory_config=None, program_config=None,
                                 compute_kernel_config=None, attention_sink=None, cu_window_seqlens=None,
                                 windowed_q_token_offset=0, windowed_q_token_offset_tensor=None,
                                 output_concat_heads=False, attn_mask_block_map=None):  # fmt: skip
    q, k, v = input_tensor_q, input_tensor_k, input_tensor_v
    _check_qkv(q, k, v, "scaled_dot_product_attention")
    qs, ks = list(q.shape), list(k.shape)
    require(
        len(qs) == 4 and len(ks) == 4, "scaled_dot_product_attention: inputs must be [B, H, S, D]"
    )
    require(
        qs[0] == ks[0] and qs[3] == ks[3] and list(v.shape) == ks,
        lambda: f"SDPA: Q {qs}, K {ks}, V {list(v.shape)} do not agree",
    )
    require(attn_mask is None or not is_causal, "SDPA: give either is_causal or attn_mask")
    require(attn_mask is not None or is_causal, "SDPA: non-causal attention needs attn_mask")
    _validate_chunks(program_config, qs[2], q.device())
    sq, sk = qs[2], ks[2]
    if attn_mask is not None:
        mask = attn_mask.values().float() == 0
    else:
        i = torch.arange(sq).unsqueeze(1) + (sk - sq)
        j = torch.arange(sk).unsqueeze(0)
        mask = j <= i
        if sliding_window_size is not None:
            mask &= j > i - sliding_window_size
    kernel = compute_kernel_config or _DEFAULT_SDPA_KERNEL
    out = _attend(
        q.values().float(),
        k.values().float(),
        v.values().float(),
        mask,
        scale or qs[3] ** -0.5,
        kernel,
        (q.dtype.mantissa_bits, k.dtype.mantissa_bits, v.dtype.mantissa_bits),
    )
    return make_tensor(out, q.dtype, Layout.TILE,
                       device=q.device(), memory_config=memory_config or DRAM_MEMORY_CONFIG)  # fmt: skip


def _decode_plan(
    q, kv_users: int, kv_head_dim: int, memory_config, program_config, kernel, cache_len: int
):
    """The static part of decode SDPA: shapes, chunk sizes, the output. Returns (batch, kernel,
    output)."""
    qs = list(q.shape)
    require(len(qs) == 4 and qs[0] == 1, lambda: f"SDPA decode: Q must be [1, B, H, D], got {qs}")
    batch, heads, d = qs[1], qs[2], qs[3]
    if program_config is None or not program_config.k_chunk_size:
        with rules():
            auto_decode_k_chunk(cache_len)
    require(
        kv_users >= batch and kv_head_dim == d,
        lambda: f"SDPA decode: K [{kv_users}, .., {kv_head_dim}] does not fit Q {qs}",
    )
    _validate_chunks(program_config, None, q.device())
    out = reserve_output([1, batch, heads, d], DataType.BFLOAT16, Layout.TILE, q.device(),
                         memory_config or DRAM_MEMORY_CONFIG)  # fmt: skip
    return batch, kernel or _DEFAULT_SDPA_KERNEL, out


def _decode(q, keys, values, positions, scale, sliding_window_size, kernel, kv_bits, out) -> None:
    """`keys`/`values` [B, Hkv, S, D] hold (at least) the live prefix of each user's cache; the
    attention of Q [1, B, H, D] at `positions` is written into `out`."""
    batch, heads, d = out.shape[1], out.shape[2], out.shape[3]
    beyond = [b for b in range(batch) if positions[b] >= keys.shape[2]]
    require(not beyond, lambda: f"SDPA decode: position {positions[beyond[0]]} of user {beyond[0]} is outside the cache length {keys.shape[2]}")  # fmt: skip
    # Keys past the furthest position are masked for every user: attend over the live prefix only.
    live = max(positions[:batch]) + 1
    if live <= 0:  # no user attends
        attended = torch.zeros(batch, heads, d)
    else:
        nearest = min(positions[:batch])
        if sliding_window_size is None and nearest == live - 1:
            mask = None  # every user is at the furthest position: all live keys are attended
        else:  # (idle users, at -1, always land here)
            pos = int64_tensor(positions[:batch]).reshape(batch, 1, 1, 1)
            j = torch.arange(live).reshape(1, 1, 1, live)
            mask = j <= pos
            if sliding_window_size is not None:
                mask &= j > pos - sliding_window_size
        qv = q.values().float()[0].unsqueeze(2)  # [B, H, 1, D]
        attended = _attend(
            qv, keys[:batch, :, :live], values[:batch, :, :live], mask, scale or d**-0.5, kernel,
            (q.dtype.mantissa_bits, *kv_bits),
            empty_rows=False,  # every active user sees key 0..pos; idle users are zeroed below
        )[:, :, 0]  # fmt: skip
        if nearest < 0:  # skipped users (-1) produce zeros
            attended = torch.where(pos.reshape(batch, 1, 1) >= 0, attended, 0.0)
    make_tensor(attended.unsqueeze(0), DataType.BFLOAT16, Layout.TILE, out=out)


@device_op
def scaled_dot_product_attention_decode(input_tensor_q, input_tensor_k, input_tensor_v, *, is_causal=True,
                                        attn_mask=None, cur_pos=(), cur_pos_tensor=None, attention_sink=None,
                                        scale=None, sliding_window_size=None, memory_config=None,
                                        program_config=None, compute_kernel_config=None, share_cache=None):  # fmt: skip
    q, k, v = input_tensor_q, input_tensor_k, input_tensor_v
    _check_qkv(q, k, v, "scaled_dot_product_attention_decode")
    require(
        is_causal and attn_mask is None,
        "SDPA decode: only causal decode with positions is emulated",
    )
    batch, kernel, out = _decode_plan(q, k.shape[0], k.shape[-1], memory_config, program_config,
                                      compute_kernel_config, cache_len=k.shape[-2])  # fmt: skip
    kv_bits = (k.dtype.mantissa_bits, v.dtype.mantissa_bits)

    def run() -> None:
        pos = positions(cur_pos, cur_pos_tensor, batch, "cur_pos_tensor")
        _decode(q, k.values().float(), v.values().float(), pos, scale, sliding_window_size, kernel,
                kv_bits, out)  # fmt: skip

    launch(run)
    return out


@device_op
def paged_scaled_dot_product_attention_decode(input_tensor_q, input_tensor_k, input_tensor_v, page_table_tensor, *,
                                              is_causal=True, attn_mask=None, cur_pos_tensor=None,
                                              attention_sink=None, scale=None, sliding_window_size=None,
                                              memory_config=None, program_config=None, compute_kernel_config=None,
                                              paged_cache_geometry=None, cache_position_modulo=None,
                                              spec_multi_pos_tiles=0):  # fmt: skip
    q, k, v = input_tensor_q, input_tensor_k, input_tensor_v
    _check_qkv(q, k, v, "paged_scaled_dot_product_attention_decode")
    on_device(page_table_tensor, "page_table_tensor")
    require(page_table_tensor.dtype == DataType.INT32, "page_table_tensor must be INT32")
    require(cur_pos_tensor is not None, "paged SDPA decode needs cur_pos_tensor")
    table_rows, table_cols = page_table_tensor.shape[0], page_table_tensor.shape[-1]
    nblocks, hkv, bs, d = k.padded_shape
    batch, kernel, out = _decode_plan(q, table_rows, k.shape[-1], memory_config, program_config,
                                      compute_kernel_config, cache_len=table_cols * bs)  # fmt: skip
    kv_bits = (k.dtype.mantissa_bits, v.dtype.mantissa_bits)
    head_rows = (torch.arange(hkv) * bs).reshape(1, hkv, 1)  # a head's first row within a block
    block_rows = scalar(hkv * bs, torch.int64)  # rows per cache block
    rows_per_block = scalar(bs, torch.int64)

    def run() -> None:
        pos = positions((), cur_pos_tensor, batch, "cur_pos_tensor")
        table = page_table_tensor.values().to(torch.int64)
        lo, hi = (int(bound) for bound in torch.aminmax(table))
        require(hi < nblocks and lo >= 0, "page table entries must index cache blocks")
        furthest = max(pos)
        # the keys up to the furthest position (at most the whole cache), in cache row order
        live = min(furthest + 1, table_cols * bs) if furthest >= 0 else 1
        t = torch.arange(live)
        slots = table[:batch].index_select(1, torch.div(t, rows_per_block, rounding_mode="floor"))
        rows = (slots * block_rows).unsqueeze(1) + head_rows + torch.remainder(t, rows_per_block)
        index = rows.reshape(-1)  # [B, H, live] rows of the [blocks * H * bs, D] storage

        def gather(cache):  # [num_blocks, H, bs, D] → [B, H, live, D]
            return (
                cache.padded_values().view(-1, d).index_select(0, index).view(batch, hkv, live, d)
            )

        _decode(q, gather(k), gather(v), pos, scale, sliding_window_size, kernel, kv_bits, out)

    launch(run)
    return out


def _write_heads(x, num_heads: int, head: int, transpose_key: bool, outs, *, grouped: bool) -> None:
    """The head split's kernel: `x` [B, S, 3 * heads * head] read as head groups q_h | k_h | v_h
    (`grouped`, the sharded kernel) or as [Q | K | V] (interleaved), written into q, k, v."""
    b, s = x.shape[0], x.shape[1]
    v = x.values()
    if grouped:
        q, k, vv = (t.transpose(1, 2) for t in v.reshape(b, s, num_heads, 3, head).unbind(3))
    else:
        q, k, vv = (t.reshape(b, s, num_heads, head).transpose(1, 2) for t in v.chunk(3, dim=-1))
    if transpose_key:
        k = k.transpose(-1, -2)
    for t, o in zip((q, k, vv), outs, strict=True):
        make_tensor(t.contiguous(), x.dtype, Layout.TILE, out=o, source=x.dtype)


def _split_sharded(x, num_heads: int, transpose_key: bool, mc, head: int):
    """create_qkv_heads (0.81.1): a block-sharded [B, S, W] whose core rows are the batch and whose
    shards hold whole head groups — each group q_h | k_h | v_h (tt-metal's ViT fuses its QKV
    weights that way) — into height-sharded q, k, v on the same cores."""
    spec = x.memory_config().shard_spec
    require(x.memory_config().memory_layout == TensorMemoryLayout.BLOCK_SHARDED,
            lambda: f"Input tensor memory layout must be BLOCK_SHARDED but got {x.memory_config().memory_layout.name}")  # fmt: skip
    require(mc.memory_layout == TensorMemoryLayout.HEIGHT_SHARDED,
            lambda: f"Output memory config layout must be HEIGHT_SHARDED but got {mc.memory_layout.name}")  # fmt: skip
    box = spec.grid.bounding_box()
    rm = spec.orientation == ShardOrientation.ROW_MAJOR
    h_cores = (box.end.y if rm else box.end.x) + 1
    w_cores = (box.end.x if rm else box.end.y) + 1
    b, s_pad, width = x.padded_shape
    require(width % (w_cores * 32) == 0,
            lambda: f"Flattened hidden dimension {width} must be a multiple of width cores {w_cores} * tile width 32 "
                    "to ensure that each core gets an even amount of tiles")  # fmt: skip
    require(b == h_cores, lambda: f"Batch size {b} must be equal to num cores {h_cores}")
    require(num_heads % w_cores == 0,
            lambda: f"split_query_key_value_and_split_heads: {num_heads} heads do not split into whole groups over "
                    f"{w_cores} core columns")  # fmt: skip
    cores = box.grid_size().x * box.grid_size().y
    s = x.shape[1]
    shapes = ([b, num_heads, s, head], [b, num_heads, head, s] if transpose_key else [b, num_heads, s, head],
              [b, num_heads, s, head])  # fmt: skip
    outs = []
    for shape in shapes:
        padded = [
            b,
            num_heads,
            shape[2] if shape[2] == head else s_pad,
            shape[3] if shape[3] == head else s_pad,
        ]
        rows = padded[0] * padded[1] * padded[2]
        out_mc = mc.with_shard_spec(
            ShardSpec(spec.grid, [rows // cores, padded[3]], spec.orientation)
        )
        outs.append(reserve_output(shape, x.dtype, Layout.TILE, x.device(), out_mc))

    launch(lambda: _write_heads(x, num_heads, head, transpose_key, outs, grouped=True))
    return tuple(outs)


@device_op
def split_query_key_value_and_split_heads(input_tensor, kv_input_tensor=None, *, num_heads, num_kv_heads=None,
                                          transpose_key=True, memory_config=None, use_falcon7b_backend=False):  # fmt: skip
    """[B, S, 3 * heads * head_dim] → q [B, heads, S, head_dim], k [B, heads, head_dim, S] (transpose_key)
    or [B, heads, S, head_dim], v [B, heads, S, head_dim]. Interleaved: the q, k and v heads side by
    side ([Q | K | V]); block-sharded: head groups q_h | k_h | v_h (create_qkv_heads)."""
    x = input_tensor
    shape = list(x.shape)
    require(
        len(shape) == 3,
        lambda: f"Invalid input tensor: expected 3 dimensions, but found {len(shape)}.",
    )
    require(x.layout == Layout.TILE,
            lambda: f"Invalid layout: input tensor must use TILE_LAYOUT, but found {int(x.layout.value)}.")  # fmt: skip
    on_device(x)
    require(num_kv_heads is None and not use_falcon7b_backend,
            "split_query_key_value_and_split_heads: num_kv_heads and the falcon7b backend are not emulated")  # fmt: skip
    require(kv_input_tensor is None or not x.is_sharded(),
            "Invalid operation: KV tensor should not be provided when the input tensor is sharded. Please ensure "
            "that the KV tensor is only used in non-sharded configurations.")  # fmt: skip
    require(
        kv_input_tensor is None,
        "split_query_key_value_and_split_heads: a separate KV input is not emulated",
    )
    b, s, width = shape
    head = width // (3 * num_heads)
    require(head % 32 == 0, lambda: f"Invalid head size: {head}. The head size must be a multiple of the tile width "
            "(32). Please adjust the dimensions accordingly.")  # fmt: skip
    require(3 * num_heads * head == width,
            lambda: f"split_query_key_value_and_split_heads: width {width} is not 3 x {num_heads} heads")  # fmt: skip
    mc = memory_config or x.memory_config()
    if x.is_sharded():
        return _split_sharded(x, num_heads, transpose_key, mc, head)
    k_shape = [b, num_heads, head, s] if transpose_key else [b, num_heads, s, head]
    outs = [reserve_output(o, x.dtype, Layout.TILE, x.device(), mc)
            for o in ([b, num_heads, s, head], k_shape, [b, num_heads, s, head])]  # fmt: skip

    launch(lambda: _write_heads(x, num_heads, head, transpose_key, outs, grouped=False))
    return tuple(outs)


@device_op
def concatenate_heads(input_tensor, *, memory_config=None):
    """[B, heads, S, head_dim] → [B, S, heads * head_dim]."""
    x = input_tensor
    shape = list(x.shape)
    require(len(shape) == 4, lambda: f"Input tensor must have rank 4. Shape: Shape({shape})")
    on_device(x)
    check_tile(x, "concatenate_heads input")
    b, h, s, d = shape
    require(d % 32 == 0, lambda: f"Head size must be a multiple of 32 but was found to be {d}. Update the matmul "
            "that uses the output of this operation to include padding in the weights.")  # fmt: skip
    mc = memory_config or x.memory_config()
    if mc.is_sharded() and mc.shard_spec is None:
        # each shard's heads side by side: [heads per shard x S, D] → [S, heads per shard x D]
        require(x.is_sharded(), "concatenate_heads: a sharded output needs a sharded input")
        spec = x.memory_config().shard_spec
        per_shard = spec.shape[0] // x.padded_shape[-2]
        mc = mc.with_shard_spec(ShardSpec(spec.grid, [spec.shape[0] // per_shard, spec.shape[1] * per_shard],
                                          spec.orientation))  # fmt: skip
    out = reserve_output([b, s, h * d], x.dtype, Layout.TILE, x.device(), mc)

    def run() -> None:
        make_tensor(x.values().transpose(1, 2).reshape(b, s, h * d), x.dtype, Layout.TILE, out=out,
                    source=x.dtype)  # fmt: skip

    launch(run)
    return out
