"""Block floats: hand-computed edge cases and a scalar transcription of tt-metal's host packer.

The scalar reference below follows `convert<Bits>` in blockfloat_pack.hpp line by line, one lane at
a time, so it shares no code (and no vectorisation tricks) with ttgen.emu.blockfloat."""

import math
import struct

import pytest
import torch

from ttgen import emu as ttnn
from ttgen.emu.blockfloat import pack, quantize, unpack


def _bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def reference_group(values: list[float], bits: int) -> list[float]:
    u = [_bits(v) for v in values]
    shared = max((w >> 23) & 0xFF for w in u)
    out = []
    for w in u:
        e = (w >> 23) & 0xFF
        if e == 0:
            out.append(0.0)
            continue
        m = (w & 0x7FFFFF) | 0x800000
        d = shared - e
        m = 0 if d >= 32 else m >> d
        shift = 25 - bits
        m = min((m + (1 << (shift - 1)) - 1 + ((m >> shift) & 1)) >> shift, (1 << (bits - 1)) - 1)
        sign = w >> 31
        value = m * 2.0 ** (shared - 127 - (bits - 2))
        out.append(-value if (sign and m) else value)
    return out


def reference(x: torch.Tensor, bits: int) -> torch.Tensor:
    rows = x.reshape(-1, x.shape[-1]).tolist()
    out = [
        [v for g in range(0, len(r), 16) for v in reference_group(r[g : g + 16], bits)]
        for r in rows
    ]
    return torch.tensor(out, dtype=torch.float32).reshape(x.shape)


def _group(*head: float, fill: float = 0.0) -> torch.Tensor:
    return torch.tensor([list(head) + [fill] * (16 - len(head))], dtype=torch.float32)


@pytest.mark.parametrize(
    "values, bits, expected",
    [
        # shared exponent of 1.x: bfp8 step 1/64; 1 + 1/128 is a tie → even (64/64)
        ((1.0, 1.0078125), 8, (1.0, 1.0)),
        # 1 + 3/128 lies between 65/64 and 66/64 → even 66/64
        ((1.0, 1.0234375), 8, (1.0, 1.03125)),
        # saturation: 2 - 2^-23 rounds to 128/64 but saturates at 127/64, no exponent bump
        ((1.9999999,), 8, (1.984375,)),
        # bfp4 step 1/4: 0.625 = 2.5 steps → tie → even (2 steps); 0.875 → 4 steps
        ((1.0, 0.625, 0.875), 4, (1.0, 0.5, 1.0)),
        # bfp4 saturates at 7/4 with a shared exponent of 1.x
        ((1.9,), 4, (1.75,)),
        # shifted-out bits are dropped before rounding (no sticky bit): 1.4999981 steps → 1 step,
        # where rounding the lane first would reach the 1.5 tie and go to even (2 steps)
        ((1.0, (2**17 + 2**16 - 0.25) / 2**23), 8, (1.0, 0.015625)),
        # a lane 2^40 below the shared exponent is shifted out entirely
        ((1.0, 2.0**-40), 8, (1.0, 0.0)),
        # denormals flush to zero
        ((1.0, 1e-40), 8, (1.0, 0.0)),
        # signs are kept; shared exponent from the largest magnitude (-8 → E = 130, step 1/8)
        ((7.9, -8.0, -0.3), 8, (7.875, -8.0, -0.25)),
    ],
)
def test_hand_computed_vectors(values, bits, expected):
    got = quantize(_group(*values), bits)[0, : len(expected)].tolist()
    assert got == list(expected)


def test_no_negative_zero():
    got = quantize(_group(1.0, -1e-10, -0.0), 8)[0]
    assert got[1] == 0.0 and not math.copysign(1.0, float(got[1])) < 0
    assert not math.copysign(1.0, float(got[2])) < 0


def test_all_denormal_group_is_zero():
    assert quantize(_group(1e-40, -2e-39, fill=1e-41), 8).abs().sum() == 0


def test_exponent_groups_are_16_wide_rows():
    row = torch.zeros(2, 32)
    row[0, 0], row[0, 5], row[0, 20] = 100.0, 0.3, 0.3
    row[1, 5] = 0.3
    q = quantize(row, 8)
    assert q[0, 5] == 0.0  # shares 100.0's exponent: step 1
    assert q[0, 20] == q[1, 5] == 0.30078125  # its own group: 0.3 * 256 = 76.8 → 77/256


@pytest.mark.parametrize("bits", [8, 4])
def test_matches_scalar_reference_on_mixed_scales(bits):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 64, generator=g) * torch.logspace(-6, 6, 64).reshape(1, 64)
    x[0, :16] = 0.0
    x[1, 3] = 1e-39  # denormal
    x[2, :] = 0.5 + torch.arange(64) / 128  # many exact ties
    assert torch.equal(quantize(x, bits), reference(x, bits))


@pytest.mark.parametrize("bits", [8, 4])
def test_quantize_is_bit_identical_to_pack_then_unpack(bits):
    """quantize takes a float64 shortcut; pack/unpack are the packer's integer steps (and what the
    ttnn lane compares bit for bit with the real package). Exponents span the whole fp32 range,
    including groups whose largest exponent is below 23 and all-denormal groups."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(96, 256, generator=g)
    x *= torch.exp2(torch.randint(-148, 126, (96, 256), generator=g).float())
    x[10] = torch.randint(-300, 300, (256,), generator=g).float() / 64  # ties at every scale
    x[11, :16], x[12, :16], x[13, :16] = 1e-40, 0.0, -0.0
    x[14, :16] = 2.0**-130 * torch.arange(16)  # shared exponent 0 (denormals only)
    x[15, :16] = 2.0**-110 * torch.arange(1, 17)  # shared exponent below 23
    # the whole tensor (tiny groups: the float64 path), its normal-range rows, and the float32
    # path's extremes: shared exponents 254 (values near 2^127) and 24 (near 2^-103)
    extremes = torch.randn(32, 256, generator=g).clamp(-1.9, 1.9)
    extremes[:, ::16] = 1.5  # every group's largest magnitude in [1, 2)
    extremes[:16] *= 2.0**127
    extremes[16:] *= 2.0**-103
    shared = extremes.reshape(32, 16, 16).abs().amax(-1).view(torch.int32) >> 23
    assert int(shared.max()) == 254 and int(shared.min()) == 24
    for data in (
        x,
        x[torch.arange(20, 96)] * 2.0**-60 + torch.randn(76, 256, generator=g),
        extremes,
    ):
        want = unpack(*pack(data, bits), bits).reshape(data.shape)
        assert torch.equal(quantize(data, bits).view(torch.int32), want.view(torch.int32))


def test_col_tilize_shares_exponents_down_columns():
    x = torch.zeros(32, 32)
    x[0, 0], x[5, 0] = 100.0, 0.3
    assert quantize(x, 8, col_tilize=True)[5, 0] == 0.0
    assert quantize(x, 8)[5, 0] == 0.30078125


def test_from_torch_pads_odd_shapes_before_packing(device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 20, generator=g)
    t = ttnn.from_torch(x, dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT)
    assert list(t.shape) == [3, 20] and list(t.padded_shape) == [32, 32]
    padded = torch.nn.functional.pad(x, (0, 12, 0, 29))
    assert torch.equal(ttnn.to_torch(t), reference(padded, 8)[:3, :20])


def test_block_float_needs_tile_layout():
    with pytest.raises(RuntimeError, match="Tile layout is required"):
        ttnn.from_torch(torch.ones(32, 32), dtype=ttnn.bfloat8_b)
    with pytest.raises(RuntimeError, match="Tile layout is required"):
        ttnn.to_layout(
            ttnn.from_torch(torch.ones(32, 32)), ttnn.ROW_MAJOR_LAYOUT, dtype=ttnn.bfloat4_b
        )
