"""Golden functions: the torch reference of an op, on torch tensors, as `ttnn.get_golden_function(op)`
returns it. The real package has one for every op below (ttnn.experimental's ops have none);
the signatures are the real ones, the bodies ttgen's own plain torch math in fp32 unless noted."""

from __future__ import annotations

import torch

__all__ = ["attach_goldens", "get_golden_function"]


def _activation(x: torch.Tensor, activations) -> torch.Tensor:
    for a in activations or ():
        name = getattr(getattr(a, "op_type", a), "name", str(a)).lower()
        x = {
            "relu": torch.relu,
            "silu": torch.nn.functional.silu,
            "gelu": torch.nn.functional.gelu,
        }[name](x)
    return x


def _binary(fn):
    def golden(input_tensor_a, input_tensor_b, *args, activations=None, input_tensor_a_activations=None,
               input_tensor_b_activations=None, dtype=None, _ttnn_input_tensor_a_dtype=None,
               _ttnn_input_tensor_b_dtype=None, _ttnn_output_tensor_dtype=None, **kwargs):  # fmt: skip
        a = _activation(input_tensor_a, input_tensor_a_activations)
        b = _activation(input_tensor_b, input_tensor_b_activations) if isinstance(input_tensor_b, torch.Tensor) else input_tensor_b  # fmt: skip
        return _activation(fn(a, b), activations)

    golden.__name__ = f"_golden_function_{fn.__name__}"
    return golden


def _matmul(input_tensor_a, input_tensor_b, transpose_a=False, transpose_b=False, *, bias=None, activation=None,
            program_config=None, dtype=None, **kwargs):  # fmt: skip
    a = input_tensor_a.transpose(-1, -2) if transpose_a else input_tensor_a
    b = input_tensor_b.transpose(-1, -2) if transpose_b else input_tensor_b
    out = a.float() @ b.float()
    if bias is not None:
        out = out + bias.float()
    if activation is not None:
        out = {"relu": torch.relu, "silu": torch.nn.functional.silu, "gelu": torch.nn.functional.gelu}[activation](out)  # fmt: skip
    return out


def _linear(input_tensor_a, input_tensor_b, transpose_a=False, transpose_b=False, *, bias=None, program_config=None,
            activation=None, dtype=None, **kwargs):  # fmt: skip
    return _matmul(
        input_tensor_a, input_tensor_b, transpose_a, transpose_b, bias=bias, activation=activation
    )


def _softmax(input_tensor, dim=None, **_):
    return torch.softmax(input_tensor.float(), -1 if dim is None else dim)


def _scale_mask_softmax(input_tensor, scale=None, mask=None, *_, **__):
    x = input_tensor.float()
    if scale is not None:
        x = x * scale
    if mask is not None:
        x = x + mask.float()
    return torch.softmax(x, -1)


def _affine(x, weight, bias):
    if weight is not None:
        x = x * weight.float().reshape(-1)
    if bias is not None:
        x = x + bias.float().reshape(-1)
    return x


def _rms_norm(
    input_tensor, weight=None, *, epsilon=1e-12, bias=None, residual_input_tensor=None, **_
):
    x = input_tensor.float() + (
        0 if residual_input_tensor is None else residual_input_tensor.float()
    )
    return _affine(x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + epsilon), weight, bias)


def _layer_norm(
    input_tensor, *, epsilon=1e-12, residual_input_tensor=None, weight=None, bias=None, **_
):
    x = input_tensor.float() + (
        0 if residual_input_tensor is None else residual_input_tensor.float()
    )
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    return _affine((x - mean) * torch.rsqrt(var + epsilon), weight, bias)


def _embedding(input_tensor, weight, *, dtype=None, **_):
    return torch.nn.functional.embedding(input_tensor.long(), weight)


def _silu(input_tensor, *args, **_):
    return torch.nn.functional.silu(input_tensor.float())


def _gelu(input_tensor, *args, variant=None, fast_and_approximate_mode=False, _ttnn_skip_comparison=False, **kwargs):  # fmt: skip
    approximate = (
        "tanh" if fast_and_approximate_mode or getattr(variant, "name", "") == "Tanh" else "none"
    )
    return torch.nn.functional.gelu(input_tensor.float(), approximate=approximate)


_TORCH_DTYPES = {"BFLOAT16": torch.bfloat16, "FLOAT32": torch.float32, "UINT32": torch.int64, "INT32": torch.int32,
                 "UINT16": torch.int32, "UINT8": torch.uint8, "BFLOAT8_B": torch.bfloat16, "BFLOAT4_B": torch.bfloat16}  # fmt: skip


def _typecast(input_tensor, *dtype_args, dtype=None, input_dtype=None, output_dtype=None, _ttnn_input_dtype=None,
              _ttnn_is_host=False, _ttnn_arch_name=None, **_):  # fmt: skip
    target = output_dtype or dtype or (dtype_args[-1] if dtype_args else None)
    return input_tensor.to(_TORCH_DTYPES[target.name]) if target is not None else input_tensor


def _reshape(input_tensor, shape):
    return input_tensor.reshape(tuple(shape))


def _permute(input_tensor, dims, **_):
    return input_tensor.permute(tuple(dims))


def _transpose(input_tensor, dim1, dim2, *args, **kwargs):
    return input_tensor.transpose(dim1, dim2)


def _concat(tensors, dim=0, groups=1, **_):
    return torch.cat(list(tensors), dim)


def _slice(input_tensor, slice_start=None, slice_end=None, slice_step=None, *args, **kwargs):
    steps = slice_step or [1] * len(slice_start)
    return input_tensor[
        tuple(slice(s, e, st) for s, e, st in zip(slice_start, slice_end, steps, strict=True))
    ]


def _pad(input_tensor, padding, *args, value=0, **_):
    flat = [v for before, after in reversed(list(padding)) for v in (before, after)]
    return torch.nn.functional.pad(input_tensor, flat, value=value)


def _argmax(input_tensor, dim=None, keepdim=False, correction=None, scalar=1.0, **_):
    return torch.argmax(input_tensor, dim=dim, keepdim=keepdim)


def _topk(
    input_tensor, k=32, dim=-1, largest=True, sorted=True, *, stable=False, indices_tensor=None, **_
):  # noqa: A002
    return torch.topk(input_tensor, k, dim, largest, sorted)


def _identity(tensor, *args, **kwargs):
    return tensor


def _identity_input(input_tensor, *args, dtype=None, **kwargs):
    return input_tensor


def _conversion(input_tensor, *args, output_dtype=None, **kwargs):
    return input_tensor


def _clone(tensor, *args, dtype=None, **kwargs):
    return tensor.clone()


def _fold(input, stride_h, stride_w, *args, padding=(0, 0), collapse_output=False, use_transpose_as_fold=False,
          _ttnn_input_is_sharded=False, **kwargs):  # fmt: skip
    """NHWC space-to-depth, each stick in (dy, dx, c) order."""
    n, h, w, c = input.shape
    out = input.reshape(n, h // stride_h, stride_h, w // stride_w, stride_w, c).permute(
        0, 1, 3, 2, 4, 5
    )
    out = out.reshape(n, h // stride_h, w // stride_w, stride_h * stride_w * c)
    return out.reshape(1, 1, -1, out.shape[-1]) if collapse_output else out


def _mul_(input_tensor_a, input_tensor_b, *args, _ttnn_global_golden=False, **kwargs):
    return input_tensor_a * input_tensor_b


def _split_heads(
    input_tensor, kv_input_tensor=None, *, num_heads, num_kv_heads=None, transpose_key=True, **_
):
    """[B, S, 3 * H * D] → q [B, H, S, D], k [B, H, D, S] (transpose_key) or [B, H, S, D], v."""
    if kv_input_tensor is not None:
        input_tensor = torch.cat([input_tensor, kv_input_tensor], dim=-1)
    kv = num_kv_heads or num_heads
    b, s, width = input_tensor.shape
    d = width // (num_heads + 2 * kv)
    q, k, v = input_tensor.split([num_heads * d, kv * d, kv * d], dim=-1)
    q = q.reshape(b, s, num_heads, d).transpose(1, 2)
    k = k.reshape(b, s, kv, d).transpose(1, 2)
    v = v.reshape(b, s, kv, d).transpose(1, 2)
    return q, k.transpose(-1, -2) if transpose_key else k, v


def _concatenate_heads(input_tensor, **_):
    b, h, s, d = input_tensor.shape
    return input_tensor.transpose(1, 2).reshape(b, s, h * d)


def _sdpa(input_tensor_q, input_tensor_k, input_tensor_v, *, attn_mask=None, is_causal=True, scale=None,
          sliding_window_size=None, attention_sink=None, cu_window_seqlens=None, windowed_q_token_offset=0,
          windowed_q_token_offset_tensor=None, **_):  # fmt: skip
    q, k, v = input_tensor_q.float(), input_tensor_k.float(), input_tensor_v.float()
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    return torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=attn_mask, is_causal=is_causal and attn_mask is None, scale=scale
    )


def _sdpa_decode(input_tensor_q, input_tensor_k, input_tensor_v, *, is_causal=True, attn_mask=None, cur_pos=(),
                 cur_pos_tensor=None, attention_sink=None, scale=None, sliding_window_size=None, share_cache=None,
                 **_):  # fmt: skip
    """q [1, B, H, D] against k, v [B, KV, S, D] up to each user's position (inclusive)."""
    positions = list(cur_pos) if cur_pos else cur_pos_tensor.reshape(-1).tolist()
    q = input_tensor_q.float()[0]  # [B, H, D]
    out = []
    for b, pos in enumerate(positions):
        k, v = input_tensor_k[b, :, : pos + 1].float(), input_tensor_v[b, :, : pos + 1].float()
        groups = q.shape[1] // k.shape[0]
        k, v = k.repeat_interleave(groups, 0), v.repeat_interleave(groups, 0)
        out.append(
            torch.nn.functional.scaled_dot_product_attention(q[b][:, None], k, v, scale=scale)[:, 0]
        )
    return torch.stack(out)[None]


def _paged_sdpa_decode(input_tensor_q, input_tensor_k, input_tensor_v, page_table_tensor, *, is_causal=True,
                       attn_mask=None, cur_pos_tensor=None, attention_sink=None, scale=None, sliding_window_size=None,
                       paged_cache_geometry=None, cache_position_modulo=None, **_):  # fmt: skip
    """The paged cache [blocks, KV, block, D] gathered per user through the page table."""
    table = page_table_tensor.long()
    k = input_tensor_k[table].transpose(1, 2).flatten(2, 3)  # [B, KV, S, D]
    v = input_tensor_v[table].transpose(1, 2).flatten(2, 3)
    return _sdpa_decode(input_tensor_q, k, v, cur_pos_tensor=cur_pos_tensor, scale=scale)


GOLDENS = {
    "add": _binary(torch.add), "multiply": _binary(torch.mul), "subtract": _binary(torch.sub),
    "matmul": _matmul, "linear": _linear, "softmax": _softmax, "softmax_in_place": _softmax,
    "scale_mask_softmax": _scale_mask_softmax, "scale_mask_softmax_in_place": _scale_mask_softmax,
    "rms_norm": _rms_norm, "layer_norm": _layer_norm, "embedding": _embedding, "silu": _silu, "gelu": _gelu,
    "typecast": _typecast, "reshape": _reshape, "permute": _permute, "transpose": _transpose, "concat": _concat,
    "slice": _slice, "pad": _pad, "argmax": _argmax, "topk": _topk, "to_layout": _identity,
    "tilize": _identity_input, "untilize": _identity_input, "clone": _clone, "to_memory_config": _identity,
    "interleaved_to_sharded": _conversion, "sharded_to_interleaved": _conversion,
    "fold": _fold, "reshard": _identity_input, "reallocate": _identity_input, "mul_": _mul_,
}  # fmt: skip
TRANSFORMER_GOLDENS = {
    "scaled_dot_product_attention": _sdpa, "scaled_dot_product_attention_decode": _sdpa_decode,
    "paged_scaled_dot_product_attention_decode": _paged_sdpa_decode,
    "split_query_key_value_and_split_heads": _split_heads, "concatenate_heads": _concatenate_heads,
}  # fmt: skip


def attach_goldens(ttnn, transformer, experimental) -> None:
    """Give every emulated op its `golden_function` (None where the real package has none)."""
    for namespace, table in ((ttnn, GOLDENS), (transformer, TRANSFORMER_GOLDENS)):
        for name, golden in table.items():
            getattr(namespace, name).golden_function = golden
    for name in getattr(experimental, "__all__", ()):
        op = getattr(experimental, name)
        if callable(op) and not hasattr(op, "golden_function"):
            op.golden_function = None


def get_golden_function(operation):
    golden = getattr(operation, "golden_function", None)
    if golden is None:
        raise RuntimeError(
            f"{getattr(operation, '__name__', operation)} does not have a golden function"
        )
    return golden
