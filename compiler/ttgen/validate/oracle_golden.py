"""Runs under the lane's Python 3.12 with the real ttnn: each golden function on fixed inputs.

    python oracle_golden.py OUT.npz

The cases and inputs are ttgen.validate.golden_cases (the same the lane runs on the emulator).
"""

import sys

import numpy as np
import torch
import ttnn

from ttgen.validate.golden_cases import CASES, inputs, run_golden


def main(dst: str) -> None:
    t = inputs(torch)
    out = {name: run_golden(ttnn, torch, name, t).float().numpy() for name in CASES}
    np.savez(dst, **out)


if __name__ == "__main__":
    main(sys.argv[1])
