"""Runs under the lane's Python 3.12 with the real ttnn: host block-float packing of each input.

    python oracle_blockfloat.py IN.npz OUT.npz

IN.npz holds float32 arrays; OUT.npz gets, for each array and each of bfloat8_b / bfloat4_b, the
values after ttnn.from_torch(..., layout=TILE) → ttnn.to_torch (host only, no device).
"""

import sys

import numpy as np
import torch
import ttnn


def main(src: str, dst: str) -> None:
    inputs = np.load(src)
    out = {}
    for name in inputs.files:
        x = torch.from_numpy(inputs[name])
        for dtype in ("bfloat8_b", "bfloat4_b"):
            t = ttnn.from_torch(x, dtype=getattr(ttnn, dtype), layout=ttnn.TILE_LAYOUT)
            out[f"{name}:{dtype}"] = ttnn.to_torch(t).float().numpy()
    np.savez(dst, **out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
