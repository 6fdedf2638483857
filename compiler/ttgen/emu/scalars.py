"""0-d operand tensors for the emulator's kernels.

A Python number operand makes torch wrap it in a new tensor on every call (~3 µs, as much as the op
itself at decode sizes). A cached 0-d tensor of the other operand's dtype gives the same values:
torch casts a Python scalar to that dtype (float32 here) before computing, as the 0-d tensor is.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["scalar"]


@functools.cache
def scalar(value: float | int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    with torch.inference_mode(False):  # usable as an operand inside and outside inference mode
        return torch.tensor(value, dtype=dtype)
