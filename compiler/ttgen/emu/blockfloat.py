"""Bit-exact block-float (bfloat8_b, bfloat4_b) packing, as the tt-metal host packer does it.

The exponent-sharing group is one 16-element row of one 16x16 face of a 32x32 tile: in a
tile-padded tensor, 16 consecutive, 16-aligned elements of one row. Per group (tt-metal
`blockfloat_pack.hpp`, `convert<Bits>`), on fp32 bit patterns:

1. shared exponent E = max over the group of each lane's raw biased exponent (zeros included);
2. a lane with exponent 0 (zero or denormal) packs to 0;
3. its 24-bit significand (hidden bit set) is shifted right by E - e, dropping bits (no sticky bit);
4. rounded to nearest, ties to even, to Bits-1 magnitude bits, saturating (no exponent bump);
5. a zero magnitude carries no sign (no -0).

Decoding gives sign * m * 2^(E - 127 - (Bits - 2)).
"""

from __future__ import annotations

import torch

from ttgen.emu.scalars import scalar

__all__ = ["MANTISSA_BITS", "pack", "quantize", "unpack"]

MANTISSA_BITS = {"bfloat8_b": 8, "bfloat4_b": 4}


def _groups(x: torch.Tensor) -> torch.Tensor:
    if x.shape[-1] % 16:
        raise ValueError(f"block-float rows must be a multiple of 16 wide, got {list(x.shape)}")
    return x.reshape(*x.shape[:-1], x.shape[-1] // 16, 16)


def pack(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pack the last dim of `x` in groups of 16: (shared exponent, sign, magnitude), all int32.

    Shapes: exponents `[..., W/16]`, sign and magnitude `[..., W/16, 16]`.
    """
    u = _groups(x.float().contiguous()).view(torch.int32)
    e = (u >> 23) & 0xFF
    shared = e.amax(dim=-1)
    sign = (u >> 31) & 1
    m = (u & 0x7FFFFF) | 0x800000
    m.masked_fill_(e == 0, 0)  # zeros and denormals flush
    d = shared.unsqueeze(-1) - e
    m.masked_fill_(d >= 32, 0)
    m >>= d.clamp_(max=31)
    shift = 25 - bits
    mag = (m + ((1 << (shift - 1)) - 1) + ((m >> shift) & 1)) >> shift
    mag.clamp_(max=(1 << (bits - 1)) - 1)
    sign.masked_fill_(mag == 0, 0)  # no -0
    return shared, sign, mag


def unpack(shared: torch.Tensor, sign: torch.Tensor, mag: torch.Tensor, bits: int) -> torch.Tensor:
    # m * 2^k is exact in float32 (m < 2^7, k >= -133 > -149, the smallest fp32 denormal).
    signed = (mag * (1 - 2 * sign)).float()
    out = torch.ldexp(signed, (shared - (127 + bits - 2)).unsqueeze(-1))
    return out.reshape(*out.shape[:-2], out.shape[-2] * 16)


def quantize(x: torch.Tensor, bits: int, *, col_tilize: bool = False) -> torch.Tensor:
    """Round-trip `x` (last dim a multiple of 16) through block-float packing; returns float32,
    bit-identical to `unpack(pack(x))` with fewer passes (the emulator quantizes every block-float
    op output through here).

    `col_tilize` shares exponents down columns instead of along rows (ttnn's `col_tilize=True`).
    """
    if col_tilize:
        return quantize(x.transpose(-1, -2), bits).transpose(-1, -2).contiguous()
    # Row chunks of ~256K values keep each pass in cache; the result is identical.
    flat = x.reshape(-1, x.shape[-1]) if x.dim() else x.reshape(1, 1)
    rows = max(1, _CHUNK // max(1, flat.shape[-1]))
    if flat.shape[0] <= rows:
        return _quantize_rows(flat, bits).reshape(x.shape)
    out = torch.empty(flat.shape, dtype=torch.float32)
    for start in range(0, flat.shape[0], rows):
        out[start : start + rows] = _quantize_rows(flat[start : start + rows], bits)
    return out.reshape(x.shape)


def _quantize_rows(x: torch.Tensor, bits: int) -> torch.Tensor:
    """The packer's steps as exact power-of-two scalings: the significand shifted right by E - e is
    trunc(x * 2^(150 - E)); rounding it to Bits-1 bits is round-half-even of that over 2^(25 - Bits);
    the result is scaled back by 2^(E - 150 + (25 - Bits)) = 2^(E - 127 - (Bits - 2)). The powers of
    two are built from exponent bits (no exp2/ldexp rounding). E is the exponent of the group's
    largest magnitude (found on the magnitude bits: an integer max is the cheaper reduction). When
    every group has E >= 24 this runs in float32: 2^(150 - E) cannot overflow, and a denormal lane
    scales below 1 and truncates to 0 as the packer flushes it. Otherwise (tiny groups, inf/nan) it
    runs in float64 with denormals flushed explicitly."""
    g = _groups(x if x.dtype == torch.float32 and x.is_contiguous() else x.float().contiguous())
    top_bits = (g.view(torch.int32) & _ABS_BITS).amax(dim=-1, keepdim=True)  # |max| as bits
    lo, hi = torch.aminmax(top_bits)  # E = top_bits >> 23; the bounds are compared unshifted
    shift = 25 - bits
    top = float((1 << (bits - 1)) - 1)
    if int(lo) >= 24 << 23 and int(hi) < 255 << 23:
        # 2^(E - 150), a normal float: the exponent bits scaled down by 2^-23
        base = (top_bits & _EXP_BITS).view(torch.float32).mul_(scalar(2.0**-23))
        up = torch.reciprocal(base)  # 2^(150 - E), exact
        down = base.mul_(scalar(2.0**shift))  # 2^(E - 150 + shift)
        shifted = torch.mul(g, up).trunc_()  # |value| < 2^24: exact, truncated (a -0 ends as +0)
    else:
        shared = (top_bits >> 23).to(torch.int64)
        up = ((1023 + 150 - shared) << 52).view(torch.float64)
        down = ((1023 + shift - 150 + shared) << 52).view(torch.float64)
        normal = ((g.view(torch.int32) >> 23) & 0xFF) != 0
        shifted = (g.masked_fill(~normal, 0.0).to(torch.float64) * up).trunc_()
    mag = shifted.mul_(scalar(2.0**-shift, shifted.dtype)).round_().clamp_(-top, top)
    out = torch.addcmul(_ZERO[mag.dtype], mag, down)  # 0 + m * 2^k: a zero magnitude has no sign
    return (out if out.dtype == torch.float32 else out.float()).reshape(x.shape)


_ABS_BITS = scalar(0x7FFFFFFF, torch.int32)
_EXP_BITS = scalar(0x7F800000, torch.int32)
_ZERO = {dtype: torch.zeros((), dtype=dtype) for dtype in (torch.float32, torch.float64)}
_CHUNK = 1 << 18
