"""matmul / linear: fidelity passes, accumulation, program configs and their rejections."""

import pytest
import torch

from ttgen import emu as ttnn
from ttgen.emu.ops.matmul import fidelity_matmul

from .conftest import pcc

MF = ttnn.MathFidelity


def _dev(x, device, dtype=ttnn.bfloat16, mc=None):
    return ttnn.from_torch(
        x,
        dtype=dtype,
        layout=ttnn.TILE_LAYOUT,
        device=device,
        memory_config=mc or ttnn.DRAM_MEMORY_CONFIG,
    )


def _kernel(fidelity, fp32=True):
    return ttnn.WormholeComputeKernelConfig(math_fidelity=fidelity, fp32_dest_acc_en=fp32)


@pytest.fixture
def operands():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 32, 512, generator=g).to(torch.bfloat16).float()
    w = torch.randn(512, 256, generator=g).to(torch.bfloat16).float()
    return x, w


def test_hifi4_fp32_is_exact_for_bf16(operands):
    x, w = operands
    got = fidelity_matmul(x, w, MF.HiFi4, True)
    torch.testing.assert_close(got, (x.double() @ w.double()).float(), rtol=1e-5, atol=1e-4)


def test_error_shrinks_with_fidelity(operands):
    x, w = operands
    exact = x.double() @ w.double()
    errors = [
        float((fidelity_matmul(x, w, f, True).double() - exact).abs().mean())
        for f in (MF.LoFi, MF.HiFi2, MF.HiFi3, MF.HiFi4)
    ]
    assert errors[0] > errors[1] > errors[2] > errors[3]
    assert errors[0] > 100 * errors[3]


def test_lofi_truncates_operands():
    # 1 + 2^-5 needs the 5th mantissa bit: LoFi keeps 4 bits of the weight (SrcA) → 1.0
    x = torch.ones(1, 32)
    w = torch.zeros(32, 32)
    w[0, 0] = 1 + 2**-5
    assert fidelity_matmul(x, w, MF.LoFi, True)[0, 0] == 1.0
    assert fidelity_matmul(x, w, MF.HiFi2, True)[0, 0] == 1 + 2**-5
    # activations (SrcB) keep 6 bits under LoFi/HiFi2: 1 + 2^-7 → 1.0; HiFi3 adds B_lo
    x2 = torch.full((1, 32), 1 + 2**-7)
    w2 = torch.zeros(32, 32)
    w2[0, 0] = 1.0
    assert fidelity_matmul(x2, w2, MF.HiFi2, True)[0, 0] == 1.0
    assert fidelity_matmul(x2, w2, MF.HiFi3, True)[0, 0] == 1 + 2**-7


def test_bfp4_weights_lose_nothing_under_lofi(device, operands):
    x, w = operands
    w4 = ttnn.to_torch(ttnn.from_torch(w, dtype=ttnn.bfloat4_b, layout=ttnn.TILE_LAYOUT))
    assert torch.equal(
        fidelity_matmul(x, w4, MF.LoFi, True), fidelity_matmul(x, w4, MF.HiFi2, True)
    )
    assert not torch.equal(
        fidelity_matmul(x, w, MF.LoFi, True), fidelity_matmul(x, w, MF.HiFi2, True)
    )


def test_bf16_accumulation_loses_precision_over_k():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 4096, generator=g).to(torch.bfloat16).float()
    w = torch.rand(4096, 32, generator=g).to(torch.bfloat16).float()
    exact = x.double() @ w.double()
    err16 = float((fidelity_matmul(x, w, MF.HiFi4, False) - exact).abs().max())
    err32 = float((fidelity_matmul(x, w, MF.HiFi4, True) - exact).abs().max())
    assert err16 > 100 * err32


def test_linear_with_bias_and_activation(device, operands):
    x, w = operands
    b = torch.randn(256)
    out = ttnn.linear(_dev(x, device), _dev(w, device, ttnn.bfloat8_b), bias=_dev(b.reshape(1, 256), device),
                      activation="silu", compute_kernel_config=_kernel(MF.HiFi2))  # fmt: skip
    assert pcc(ttnn.to_torch(out), torch.nn.functional.silu(x @ w + b)) >= 0.999
    bad_bias = _dev(torch.randn(1, 128), device)
    with pytest.raises(RuntimeError, match="bias must be one tile row"):
        ttnn.linear(_dev(x, device), _dev(w, device), bias=bad_bias)


def test_shape_contract(device, operands):
    x, w = operands
    with pytest.raises(RuntimeError, match="width of the first tensor"):
        ttnn.matmul(_dev(x, device), _dev(w[:256], device))
    rm = ttnn.from_torch(
        x, dtype=ttnn.bfloat16, device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG
    )
    with pytest.raises(RuntimeError, match="must be tilized"):
        ttnn.matmul(rm, _dev(w, device))
    with pytest.raises(RuntimeError, match="on device"):
        ttnn.matmul(
            ttnn.from_torch(x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT), _dev(w, device)
        )


def _pc2d(**over):
    args = dict(compute_with_storage_grid_size=(8, 1), in0_block_w=2, out_subblock_h=1, out_subblock_w=1,
                per_core_M=1, per_core_N=1, transpose_mcast=False, fuse_batch=True)  # fmt: skip
    args.update(over)
    return ttnn.MatmulMultiCoreReuseMultiCastProgramConfig(**args)


def test_2d_program_config_valid_and_sharded_output(device, operands):
    x, w = operands
    out = ttnn.matmul(_dev(x, device), _dev(w, device), program_config=_pc2d(), memory_config=ttnn.L1_BLOCK_SHARDED_MEMORY_CONFIG,
                      compute_kernel_config=_kernel(MF.HiFi4))  # fmt: skip
    spec = out.memory_config().shard_spec
    assert spec.shape == [32, 32] and spec.num_cores() == 8
    assert pcc(ttnn.to_torch(out), x @ w) >= 0.9999


@pytest.mark.parametrize(
    "over, fp32, message",
    [
        (dict(out_subblock_h=1, out_subblock_w=9, per_core_N=9), False, "needs to be at most 8"),
        (dict(out_subblock_h=1, out_subblock_w=5, per_core_N=5), True, "needs to be at most 4"),
        (dict(in0_block_w=3), False, r"K \(16\) must be divisible by in0_block_w \(3\)"),
        (dict(per_core_N=1, compute_with_storage_grid_size=(4, 1)), False, "must cover Nt"),
        (dict(per_core_M=0), False, "per_core_M must be > 0"),
        (
            dict(out_subblock_h=2, out_subblock_w=1, per_core_M=2, per_core_N=2),
            False,
            "out_subblock_h must be 1",
        ),
        (dict(compute_with_storage_grid_size=(9, 1)), False, "exceeds the device grid"),
        (
            dict(out_block_w=2, per_core_N=3, out_subblock_w=1),
            False,
            "per_core_N \\(3\\) must be divisible by out_block_w",
        ),
    ],
)
def test_2d_program_config_rejections(device, operands, over, fp32, message):
    x, w = operands
    with pytest.raises(RuntimeError, match=message):
        ttnn.matmul(
            _dev(x, device),
            _dev(w, device),
            program_config=_pc2d(**over),
            compute_kernel_config=_kernel(MF.HiFi2, fp32),
        )


def test_1d_program_config(device, operands):
    x, w = operands
    pc = ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig(
        compute_with_storage_grid_size=(8, 1), in0_block_w=2, out_subblock_h=1, out_subblock_w=1,
        per_core_M=1, per_core_N=1, fuse_batch=True, mcast_in0=True,
    )  # fmt: skip
    out = ttnn.matmul(
        _dev(x, device),
        _dev(w, device),
        program_config=pc,
        memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
    )
    assert out.memory_config().shard_spec.shape == [32, 32]
    pc.compute_with_storage_grid_size = ttnn.CoreCoord(4, 1)
    with pytest.raises(RuntimeError, match="blocks exceed 4 cores"):
        ttnn.matmul(_dev(x, device), _dev(w, device), program_config=pc)


def _dram_sharded(device, x, w, cores=8):
    k, n = w.shape
    in0_mc = ttnn.create_sharded_memory_config(
        (1, 1, 32, k), ttnn.CoreGrid(y=1, x=cores), ttnn.ShardStrategy.WIDTH
    )
    banks = device.dram_grid_size().x
    grid = ttnn.CoreRangeSet([ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(banks - 1, 0))])
    w_mc = ttnn.MemoryConfig(ttnn.TensorMemoryLayout.WIDTH_SHARDED, ttnn.BufferType.DRAM,
                             ttnn.ShardSpec(grid, [k, -(-n // (32 * banks)) * 32], ttnn.ShardOrientation.ROW_MAJOR))  # fmt: skip
    xs = ttnn.interleaved_to_sharded(_dev(x, device), in0_mc)
    return xs, _dev(w, device, ttnn.bfloat8_b, w_mc)


def test_dram_sharded_matmul(device, operands):
    x, w = operands
    xs, ws = _dram_sharded(device, x, w)
    pc = ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(
        in0_block_w=2, per_core_M=1, per_core_N=1
    )
    out = ttnn.linear(
        xs,
        ws,
        program_config=pc,
        memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
        compute_kernel_config=_kernel(MF.HiFi2),
    )
    assert out.memory_config().memory_layout == ttnn.TensorMemoryLayout.WIDTH_SHARDED
    assert out.memory_config().shard_spec.shape == [32, 32]
    assert pcc(ttnn.to_torch(out), x @ w) >= 0.999
    with pytest.raises(RuntimeError, match="input A must be WIDTH_SHARDED in L1"):
        ttnn.linear(
            _dev(x, device),
            ws,
            program_config=pc,
            memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
        )
    with pytest.raises(RuntimeError, match="input B must be WIDTH_SHARDED in DRAM"):
        ttnn.linear(
            xs,
            _dev(w, device),
            program_config=pc,
            memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
        )
    with pytest.raises(RuntimeError, match="divisible by in0_block_w"):
        bad = ttnn.MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig(
            in0_block_w=4, per_core_M=1, per_core_N=1
        )
        ttnn.linear(xs, ws, program_config=bad, memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG)


def test_invalid_fidelity_rejected(device, operands):
    x, w = operands
    with pytest.raises(RuntimeError, match="Invalid"):
        ttnn.matmul(
            _dev(x, device),
            _dev(w, device),
            compute_kernel_config=ttnn.WormholeComputeKernelConfig(),
        )
