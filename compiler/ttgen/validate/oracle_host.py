"""Runs under the lane's Python 3.12 with the real ttnn: host tensor conversions (no device).

    python oracle_host.py IN.npz OUT.json OUT.npz

For each case (input array, dtype, layout, operation) records shape, padded shape, dtype, layout
and the torch dtype of to_torch, and stores the returned values. The same cases run on the
emulator (ttgen.validate.host_cases); the lane compares both.
"""

import json
import sys

import numpy as np
import torch
import ttnn
from host_cases import CASES, run_case  # noqa: E402 - same folder as this script


def main(src: str, meta_out: str, values_out: str) -> None:
    inputs = np.load(src)
    meta, values = {}, {}
    for case in CASES:
        try:
            info, out = run_case(ttnn, torch, torch.from_numpy(inputs[case[0]]), *case[1:])
            meta["|".join(case)] = info
            values["|".join(case)] = (
                out.float().numpy() if out.dtype != torch.uint32 else out.to(torch.int64).numpy()
            )
        except Exception as exc:  # noqa: BLE001 - a rejection is a result
            meta["|".join(case)] = {"error": str(exc).splitlines()[0][:200]}
    json.dump(meta, open(meta_out, "w"), indent=1, sort_keys=True)
    np.savez(values_out, **values)


if __name__ == "__main__":
    main(*sys.argv[1:4])
