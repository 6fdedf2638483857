"""embedding, argmax, topk, plus_one."""

from __future__ import annotations

import math

import torch

from ttgen.emu.errors import require
from ttgen.emu.ops._op import device_op, launch, make_tensor, on_device, reserve_output
from ttgen.emu.tensor import Tensor
from ttgen.emu.types import DRAM_MEMORY_CONFIG, DataType, Layout

__all__ = ["argmax", "embedding", "plus_one", "topk"]


@device_op
def embedding(input_tensor, weight, *, padding_idx=None, layout=None, embeddings_type=None, dtype=None,
              memory_config=None, output_tensor=None) -> Tensor:  # fmt: skip
    on_device(input_tensor, "input_tensor")
    on_device(weight, "weight")
    require(
        input_tensor.dtype in (DataType.UINT32, DataType.BFLOAT16),
        lambda: f"embedding: input must be UINT32 or BFLOAT16, got {input_tensor.dtype.name}",
    )
    ids_shape = list(input_tensor.shape)
    require(
        len(ids_shape) <= 2 or all(d == 1 for d in ids_shape[:-2]),
        lambda: f"embedding: input must be [B, S], got {ids_shape}",
    )
    rows, width = math.prod(weight.shape[:-1]), weight.shape[-1]
    batch, seq = (math.prod(ids_shape[:-1]), ids_shape[-1]) if ids_shape else (1, 1)
    out = reserve_output([batch, seq, width], dtype or weight.dtype, layout or Layout.ROW_MAJOR,
                         weight.device(), memory_config or DRAM_MEMORY_CONFIG)  # fmt: skip

    def run() -> None:
        table = weight.values().reshape(rows, width)
        ids = input_tensor.values().to(torch.int64).reshape(batch, seq)
        require(
            ids.numel() == 0 or (0 <= int(ids.min()) and int(ids.max()) < rows),
            lambda: f"embedding: index out of range [0, {rows})",
        )
        make_tensor(table[ids], out.dtype, out.layout, out=out, source=weight.dtype)

    launch(run)
    return out


@device_op
def argmax(input_tensor, dim=None, keepdim=False, *, sub_core_grids=None, memory_config=None,
           output_tensor=None, enable_secondary_dm=None) -> Tensor:  # fmt: skip
    on_device(input_tensor)
    require(input_tensor.layout == Layout.ROW_MAJOR, "argmax: only ROW_MAJOR input is supported")
    v = input_tensor.values().float()
    if dim is None:
        out = v.reshape(-1).argmax().reshape([1] * v.dim() if keepdim else [])
    else:
        require(dim in (-1, v.dim() - 1), "argmax: only the last dim is supported")
        out = v.argmax(dim=-1, keepdim=keepdim)
    return make_tensor(out, DataType.UINT32, Layout.ROW_MAJOR, device=input_tensor.device(),
                       memory_config=memory_config or input_tensor.memory_config())  # fmt: skip


@device_op
def topk(input_tensor, k=32, dim=-1, largest=True, sorted=True, *, memory_config=None, sub_core_grids=None,
         indices_tensor=None, output_tensor=None, stable=False):  # fmt: skip
    on_device(input_tensor)
    require(input_tensor.layout == Layout.TILE, "topk: input must be TILE")
    require(input_tensor.dtype == DataType.BFLOAT16, "topk: input must be BFLOAT16")
    require(dim in (-1, len(input_tensor.shape) - 1), "topk: only the last dim is supported")
    width = input_tensor.shape[-1]
    require(1 <= k <= width, lambda: f"topk: k ({k}) must be in [1, {width}]")
    values, indices = torch.topk(
        input_tensor.values().float(), k, dim=-1, largest=largest, sorted=True
    )
    mc = memory_config or input_tensor.memory_config()
    index_dtype = DataType.UINT16 if width < 2**16 else DataType.UINT32
    return (
        make_tensor(
            values, DataType.BFLOAT16, Layout.TILE, device=input_tensor.device(), memory_config=mc
        ),
        make_tensor(
            indices, index_dtype, Layout.TILE, device=input_tensor.device(), memory_config=mc
        ),
    )


@device_op
def plus_one(input_tensor, sub_core_grids=None, skip_negative_entries=False) -> Tensor:
    """Increment an int32/uint32 ROW_MAJOR tensor in place (decode positions); -1 stays with
    `skip_negative_entries`."""
    on_device(input_tensor)
    require(
        input_tensor.dtype in (DataType.INT32, DataType.UINT32),
        "plus_one: input must be INT32 or UINT32",
    )
    require(input_tensor.layout == Layout.ROW_MAJOR, "plus_one: input must be ROW_MAJOR")
    data = input_tensor._data
    bumped = data + 1
    if skip_negative_entries:
        bumped = torch.where(data < 0, data, bumped)
    input_tensor._data = bumped
    return input_tensor
