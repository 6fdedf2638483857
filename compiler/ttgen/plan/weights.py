"""Weight transforms as typed data: how a block's HF parameters become the device tensor, written
by its lowering and printed in one place (ttgen.emit.exprs.weight_expr). An expression is a nested
tuple, so the plan stays frozen and JSON-serialisable:

    ("source", i)                   the rule's i-th captured parameter of this weight
    ("transpose", e)                e.T ([out, in] → [in, out] for a matmul)
    ("concat", (e, ...), dim)       fused along `dim` (QKV, gate + up)
    ("rope_pairs", e, heads)        q/k rows from HF's half-split RoPE layout to interleaved pairs
                                    (`heads` names a model_config constant: N_HEADS, N_KV_HEADS)
    ("slice", e, dim, start, end)   a part of a fused or split weight (an LM-head vocab split)
    ("reshape", e, shape)           `shape` names model_config dimensions ("1, 1, DIM // 32, 32")
    ("rows", e, n)                  one row repeated n times, [1, 1, n, width] (a decode bias)
    ("unsqueeze", e)                a leading dim of 1
    ("add", e, c)                   a constant folded in at load time (Gemma's `1 + w` norms)
    ("scale", e, c)                 multiplied by a constant at load time (Granite's multipliers)
    ("pad", e, dim, size)           zeros up to `size` along `dim` (a tile-aligned vocabulary)
    ("permute", e, dims)            dims reordered (a patch convolution's kernel to fold's order)
    ("expand", e, shape)            broadcast to `shape` (a CLS token repeated for the batch)
"""

from __future__ import annotations

__all__ = [
    "add", "concat", "expand", "scaled", "pad", "permute", "rope_pairs", "rows", "reshape", "slice_", "source",
    "transpose", "unsqueeze",
]  # fmt: skip


def source(i: int = 0) -> tuple:
    return ("source", i)


def transpose(e: tuple) -> tuple:
    return ("transpose", e)


def concat(parts, dim: int = -1) -> tuple:
    return ("concat", tuple(parts), dim)


def rope_pairs(e: tuple, heads: str) -> tuple:
    if heads not in ("N_HEADS", "N_KV_HEADS", "1"):  # "1": within one head (a per-head norm weight)
        raise ValueError(f"rope_pairs: unknown head count {heads!r}")
    return ("rope_pairs", e, heads)


def slice_(e: tuple, dim: int, start: int, end: int) -> tuple:
    return ("slice", e, dim, start, end)


def reshape(e: tuple, shape: tuple[str, ...]) -> tuple:
    return ("reshape", e, tuple(shape))


def rows(e: tuple, n: int) -> tuple:
    return ("rows", e, n)


def unsqueeze(e: tuple) -> tuple:
    return ("unsqueeze", e)


def add(e: tuple, c: float) -> tuple:
    """`e + c`; the identity (no step) when c is 0."""
    return e if float(c) == 0.0 else ("add", e, float(c))


def pad(e: tuple, dim: int, size: int) -> tuple:
    return ("pad", e, dim, size)


def permute(e: tuple, dims: tuple[int, ...]) -> tuple:
    return ("permute", e, tuple(int(d) for d in dims))


def expand(e: tuple, shape: tuple[int, ...]) -> tuple:
    return ("expand", e, tuple(int(d) for d in shape))


def scaled(e: tuple, c: float) -> tuple:
    """`e * c`; the identity (no step) when c is 1."""
    return e if float(c) == 1.0 else ("scale", e, float(c))
