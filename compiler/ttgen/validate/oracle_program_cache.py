"""Runs under the lane's Python 3.12 with the real ttnn: the program cache's entry counts along a
sequence of ops (ttgen.validate.rejection_cases.program_cache_counts) on a mock device.

    python oracle_program_cache.py OUT.json
"""

import json
import sys

import torch
import ttnn

from ttgen.validate.rejection_cases import program_cache_counts


def main(dst: str) -> None:
    device = ttnn.open_device(device_id=0)
    try:
        counts = program_cache_counts(ttnn, torch, device)
    finally:
        ttnn.close_device(device)
    with open(dst, "w") as f:
        json.dump(counts, f)


if __name__ == "__main__":
    main(sys.argv[1])
