"""More calls the real ops reject; each must raise a TT_FATAL-like RuntimeError naming the rule."""

import pytest
import torch

from ttgen import emu as ttnn


def _dev(x, device, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, mc=None):
    return ttnn.from_torch(
        x, dtype=dtype, layout=layout, device=device, memory_config=mc or ttnn.DRAM_MEMORY_CONFIG
    )


def _hs(batch, width):
    grid = ttnn.num_cores_to_corerangeset(batch, ttnn.CoreCoord(8, 8), True)
    return ttnn.create_sharded_memory_config(
        (32, width), grid, ttnn.ShardStrategy.HEIGHT, use_height_and_width_as_shard_shape=True
    )


CASES = {
    "concat shapes": (
        lambda d: ttnn.concat(
            [_dev(torch.randn(1, 32, 32), d), _dev(torch.randn(1, 64, 64), d)], dim=2
        ),
        "differ outside dim",
    ),
    "concat dtypes": (
        lambda d: ttnn.concat(
            [_dev(torch.randn(32, 32), d), _dev(torch.randn(32, 32), d, ttnn.float32)], dim=0
        ),
        "share dtype",
    ),
    "slice range": (
        lambda d: ttnn.slice(_dev(torch.randn(1, 32, 32), d), [0, 0, 0], [1, 64, 32]),
        "invalid range",
    ),
    "permute dims": (
        lambda d: ttnn.permute(_dev(torch.randn(1, 32, 32), d), (0, 0, 1)),
        "not a permutation",
    ),
    "reshape two -1": (
        lambda d: ttnn.reshape(_dev(torch.randn(32, 32), d), [-1, -1]),
        "at most one -1",
    ),
    "to_device twice elsewhere": (
        lambda d: ttnn.to_device(_dev(torch.randn(32, 32), d), ttnn.open_device(device_id=0)),
        "another device",
    ),
    "open unknown device id": (lambda d: ttnn.open_device(device_id=1), "not available"),
    "three command queues": (
        lambda d: ttnn.open_device(device_id=0, num_command_queues=3),
        "num_command_queues",
    ),
    "sdpa decode cache length without a tile-multiple chunk": (
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            _dev(torch.randn(1, 1, 8, 64), d),
            _dev(torch.randn(1, 2, 250, 64), d),
            _dev(torch.randn(1, 2, 250, 64), d),
            cur_pos=[0],
        ),
        "maximum calculated k_chunk_size is: 2",
    ),
    "sdpa heads not a multiple of kv heads": (
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            _dev(torch.randn(1, 6, 64, 64), d),
            _dev(torch.randn(1, 4, 64, 64), d),
            _dev(torch.randn(1, 4, 64, 64), d),
        ),
        "not a multiple",
    ),
    "sdpa chunk not dividing seq": (
        lambda d: ttnn.transformer.scaled_dot_product_attention(
            _dev(torch.randn(1, 8, 96, 64), d),
            _dev(torch.randn(1, 2, 96, 64), d),
            _dev(torch.randn(1, 2, 96, 64), d),
            program_config=ttnn.SDPAProgramConfig(
                compute_with_storage_grid_size=(8, 8), q_chunk_size=64, k_chunk_size=64
            ),
        ),
        "divisible by q_chunk_size",
    ),
    "sdpa decode position beyond cache": (
        lambda d: ttnn.transformer.scaled_dot_product_attention_decode(
            _dev(torch.randn(1, 1, 8, 64), d),
            _dev(torch.randn(1, 2, 64, 64), d),
            _dev(torch.randn(1, 2, 64, 64), d),
            cur_pos=[64],
        ),
        "outside the cache length",
    ),
    "update cache position beyond cache": (
        lambda d: ttnn.experimental.paged_update_cache(
            _dev(torch.zeros(1, 2, 64, 64), d),
            _dev(torch.randn(1, 1, 2, 64), d, mc=_hs(1, 64)),
            update_idxs=[64],
        ),
        "outside the cache",
    ),
    "update cache input not sharded": (
        lambda d: ttnn.experimental.paged_update_cache(
            _dev(torch.zeros(1, 2, 64, 64), d), _dev(torch.randn(1, 1, 2, 64), d), update_idxs=[0]
        ),
        "HEIGHT_SHARDED",
    ),
    "fill cache overflow": (
        lambda d: ttnn.fill_cache(
            _dev(torch.zeros(1, 2, 64, 64), d), _dev(torch.randn(1, 2, 96, 64), d), 0
        ),
        "overflow",
    ),
    "rotary head_dim too large": (
        lambda d: ttnn.experimental.rotary_embedding_llama(
            _dev(torch.randn(1, 1, 32, 288), d),
            _dev(torch.randn(1, 1, 32, 288), d),
            _dev(torch.randn(1, 1, 32, 288), d),
            _dev(torch.randn(1, 1, 32, 32), d),
        ),
        "at most 256",
    ),
    "rotary head_dim > 128 with fp32 acc": (
        lambda d: ttnn.experimental.rotary_embedding_llama(
            _dev(torch.randn(1, 1, 32, 256), d),
            _dev(torch.randn(1, 1, 32, 256), d),
            _dev(torch.randn(1, 1, 32, 256), d),
            _dev(torch.randn(1, 1, 32, 32), d),
            compute_kernel_config=ttnn.WormholeComputeKernelConfig(
                math_fidelity=ttnn.MathFidelity.HiFi4, fp32_dest_acc_en=True
            ),
        ),
        "fp32_dest_acc_en=False",
    ),
    "concat heads decode from interleaved": (
        lambda d: ttnn.experimental.nlp_concat_heads_decode(
            _dev(torch.randn(1, 4, 32, 64), d), num_heads=8
        ),
        "HEIGHT_SHARDED",
    ),
    "matmul sharded output without program config": (
        lambda d: ttnn.matmul(
            _dev(torch.randn(32, 64), d),
            _dev(torch.randn(64, 64), d),
            memory_config=ttnn.L1_WIDTH_SHARDED_MEMORY_CONFIG,
        ),
        "needs a program config",
    ),
    "bmm batch mismatch": (
        lambda d: ttnn.matmul(_dev(torch.randn(2, 32, 64), d), _dev(torch.randn(3, 64, 32), d)),
        "batch dims",
    ),
    "topk k too large": (lambda d: ttnn.topk(_dev(torch.randn(1, 32, 64), d), k=65), "must be in"),
    "plus_one on float": (
        lambda d: ttnn.plus_one(_dev(torch.randn(32), d, ttnn.float32, ttnn.ROW_MAJOR_LAYOUT)),
        "INT32 or UINT32",
    ),
    "typecast bfp in row-major": (
        lambda d: ttnn.typecast(
            _dev(torch.randn(32, 32), d, layout=ttnn.ROW_MAJOR_LAYOUT), ttnn.bfloat8_b
        ),
        "must be tilized",
    ),
    "to_torch with bad torch_rank": (
        lambda d: ttnn.to_torch(_dev(torch.randn(2, 32, 32), d), torch_rank=2),
        "cannot squeeze",
    ),
    "sharded norm on interleaved input": (
        lambda d: ttnn.rms_norm(
            _dev(torch.randn(1, 1, 32, 256), d),
            program_config=ttnn.LayerNormShardedMultiCoreProgramConfig(
                compute_with_storage_grid_size=(8, 1),
                subblock_w=1,
                block_h=1,
                block_w=1,
                inplace=False,
            ),
        ),
        "needs a sharded input",
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rejected(device, case):
    call, message = CASES[case]
    with pytest.raises(RuntimeError, match=message) as info:
        call(device)
    assert str(info.value).startswith("TT_FATAL @ ttgen.emu.")
