"""Runs under the lane's Python 3.12 with the real ttnn: the rejection-parity cases on a mock device.

    python oracle_cases.py OUT.json

OUT.json gets {case name: {"verdict": "accepts" | "rejects", "message": ...}}. The cases live in
ttgen.validate.rejection_cases (installed into the lane's venv) and run unchanged on the emulator.
"""

import json
import sys

import torch
import ttnn

from ttgen.validate.rejection_cases import CASES, run_case


def main(dst: str) -> None:
    device = ttnn.open_device(device_id=0)
    try:
        out = {case.name: run_case(case, ttnn, torch, device) for case in CASES}
    finally:
        ttnn.close_device(device)
    with open(dst, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
