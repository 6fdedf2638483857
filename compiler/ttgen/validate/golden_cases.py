"""Ops that have a real golden function (ttnn.get_golden_function): the same inputs go through the
real package's golden (torch, in the lane's Python 3.12) and through the emulator's op on device.

Stdlib only at import time; shared by oracle_golden.py (real) and the lane (emulator)."""

from __future__ import annotations

__all__ = ["CASES", "inputs", "run_emulator", "run_golden"]

CASES = ("rms_norm", "layer_norm", "softmax", "linear", "matmul", "silu", "add", "mul", "embedding",
         "scaled_dot_product_attention", "scaled_dot_product_attention_decode", "scale_mask_softmax",
         "softmax_in_place", "scale_mask_softmax_in_place", "fold", "split_query_key_value_and_split_heads",
         "concatenate_heads")  # fmt: skip
TRANSFORMER = ("scaled_dot_product_attention", "scaled_dot_product_attention_decode",
               "split_query_key_value_and_split_heads", "concatenate_heads")  # fmt: skip


def inputs(torch) -> dict:
    """Fixed inputs, already rounded to bfloat16 (what both sides see)."""
    g = torch.Generator().manual_seed(7)

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).bfloat16().float()

    return {
        "x": r(1, 1, 64, 256),
        "x2": r(1, 1, 64, 256),
        "gamma": r(256, scale=0.5) + 1,
        "beta": r(256, scale=0.1),
        "w": r(256, 128, scale=0.06),
        "ids": torch.randint(0, 1024, (1, 32), generator=g),
        "table": r(1024, 64),
        "q": r(1, 8, 128, 64),
        "k": r(1, 2, 128, 64),
        "v": r(1, 2, 128, 64),
        "qd": r(1, 4, 8, 64),
        "nhwc": r(2, 16, 4, 8),  # fold(4, 1): [2, 4, 4, 32]
        "qkv": r(2, 17, 3 * 2 * 32),  # 17 tokens, 2 heads of 32
        "heads": r(2, 2, 17, 32),
        "kd": r(4, 2, 256, 64),
        "vd": r(4, 2, 256, 64),
        # one mask row for every row (0.81.1's interleaved masks are 1 or 32 rows high)
        "mask": torch.where(torch.rand(1, 1, 1, 256, generator=g) < 0.2, -1e9, 0.0)
        .bfloat16()
        .float(),
    }


CUR_POS = [5, 77, 128, 255]


def run_golden(ttnn, torch, name: str, t: dict):
    gold = ttnn.get_golden_function(
        getattr(ttnn.transformer if name in TRANSFORMER else ttnn, name)
    )
    if name == "fold":
        return gold(t["nhwc"], 4, 1)
    if name == "split_query_key_value_and_split_heads":  # q, k (transposed), v side by side
        return torch.cat([x.flatten() for x in gold(t["qkv"], num_heads=2)])
    if name == "concatenate_heads":
        return gold(t["heads"])
    if name == "rms_norm":
        return gold(t["x"], t["gamma"], epsilon=1e-5)
    if name == "layer_norm":
        return gold(t["x"], epsilon=1e-5, weight=t["gamma"], bias=t["beta"])
    if name in ("softmax", "softmax_in_place"):
        return gold(t["x"], dim=-1)
    if name in ("scale_mask_softmax", "scale_mask_softmax_in_place"):
        return gold(t["x"], 0.125, t["mask"])
    if name in ("linear", "matmul"):
        return gold(t["x"], t["w"])
    if name == "silu":
        return gold(t["x"])
    if name in ("add", "mul"):
        return gold(t["x"], t["x2"])
    if name == "embedding":
        return gold(t["ids"], t["table"])
    if name == "scaled_dot_product_attention":
        return gold(t["q"], t["k"], t["v"], is_causal=True)
    return gold(t["qd"], t["kd"], t["vd"], cur_pos=CUR_POS)


def run_emulator(ttnn, torch, name: str, t: dict, device):
    """The op on the emulator's device, bf16 operands, the most accurate compute config."""
    hifi4 = ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi4, math_approx_mode=False,
                                             fp32_dest_acc_en=True, packer_l1_acc=True)  # fmt: skip

    def dev(x, layout=None, dtype=None):
        return ttnn.from_torch(x, dtype=dtype or ttnn.bfloat16, layout=layout or ttnn.TILE_LAYOUT,
                               device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG)  # fmt: skip

    def row(v):  # a norm weight: one row of 32-wide sticks
        return dev(v.reshape(1, 1, -1, 32), layout=ttnn.ROW_MAJOR_LAYOUT)

    if name == "rms_norm":
        out = ttnn.rms_norm(
            dev(t["x"]), epsilon=1e-5, weight=row(t["gamma"]), compute_kernel_config=hifi4
        )
    elif name == "layer_norm":
        out = ttnn.layer_norm(dev(t["x"]), epsilon=1e-5, weight=row(t["gamma"]), bias=row(t["beta"]),
                              compute_kernel_config=hifi4)  # fmt: skip
    elif name == "softmax":
        out = ttnn.softmax(dev(t["x"]), dim=-1, compute_kernel_config=hifi4)
    elif name == "softmax_in_place":
        out = ttnn.softmax_in_place(dev(t["x"]), compute_kernel_config=hifi4)
    elif name in ("scale_mask_softmax", "scale_mask_softmax_in_place"):
        out = getattr(ttnn, name)(dev(t["x"]), 0.125, dev(t["mask"]), compute_kernel_config=hifi4)
    elif name in ("linear", "matmul"):
        out = getattr(ttnn, name)(dev(t["x"]), dev(t["w"]), compute_kernel_config=hifi4)
    elif name == "silu":
        out = ttnn.silu(dev(t["x"]))
    elif name in ("add", "mul"):
        out = getattr(ttnn, name)(dev(t["x"]), dev(t["x2"]))
    elif name == "embedding":
        ids = ttnn.from_torch(t["ids"].to(torch.int32), dtype=ttnn.uint32, layout=ttnn.ROW_MAJOR_LAYOUT,
                              device=device, memory_config=ttnn.DRAM_MEMORY_CONFIG)  # fmt: skip
        out = ttnn.embedding(ids, dev(t["table"], layout=ttnn.ROW_MAJOR_LAYOUT))
    elif name == "fold":
        out = ttnn.fold(dev(t["nhwc"], layout=ttnn.ROW_MAJOR_LAYOUT), 4, 1)
    elif name == "split_query_key_value_and_split_heads":
        heads = ttnn.transformer.split_query_key_value_and_split_heads(dev(t["qkv"]), num_heads=2)
        return torch.cat([ttnn.to_torch(x).float().flatten() for x in heads])
    elif name == "concatenate_heads":
        out = ttnn.transformer.concatenate_heads(dev(t["heads"]))
    elif name == "scaled_dot_product_attention":
        out = ttnn.transformer.scaled_dot_product_attention(dev(t["q"]), dev(t["k"]), dev(t["v"]), is_causal=True,
                                                            compute_kernel_config=hifi4)  # fmt: skip
    else:
        out = ttnn.transformer.scaled_dot_product_attention_decode(
            dev(t["qd"]), dev(t["kd"]), dev(t["vd"]), cur_pos=CUR_POS, compute_kernel_config=hifi4
        )
    return ttnn.to_torch(out).float()
