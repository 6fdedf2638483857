"""Element-wise ops: binary (add, subtract, multiply) with broadcasting and fused input activations,
and unary (silu, gelu). Results are computed in fp32 and rounded to the output dtype; an input
activation is applied first and rounded to the dest format (bf16 unless an input is fp32)."""

from __future__ import annotations

import torch

from ttgen.emu.errors import fatal, require
from ttgen.emu.ops._op import device_op, launch, make_tensor, on_device, reserve_output
from ttgen.emu.tensor import Tensor
from ttgen.emu.types import DataType, UnaryOpType, UnaryWithParam

__all__ = ["add", "gelu", "mul", "mul_", "multiply", "silu", "sub", "subtract"]


_STRING_UNARY = {  # ttnn's string_to_unary_with_param: "gelu" is the exact (erf) GELU
    "relu": UnaryWithParam(UnaryOpType.RELU),
    "silu": UnaryWithParam(UnaryOpType.SILU),
    "gelu": UnaryWithParam(UnaryOpType.GELU, 0.0),
    "gelu_approx": UnaryWithParam(UnaryOpType.GELU, 1.0),
}


def _unary(op, values: torch.Tensor) -> torch.Tensor:
    if isinstance(op, str):
        if op not in _STRING_UNARY:
            raise fatal(f"Unknown unary op: {op}")
        op = _STRING_UNARY[op]
    if isinstance(op, UnaryOpType):
        op = UnaryWithParam(op)
    kind = op.op_type
    if kind == UnaryOpType.SILU:
        return torch.nn.functional.silu(values)
    if kind == UnaryOpType.RELU:
        return torch.relu(values)
    if kind == UnaryOpType.GELU:
        approximate = "tanh" if op.params and op.params[0] else "none"
        return torch.nn.functional.gelu(values, approximate=approximate)
    raise fatal(f"Unsupported unary op {kind}")


def _dest_round(values: torch.Tensor, fp32: bool) -> torch.Tensor:
    return values if fp32 else values.bfloat16().float()


def _binary(name, fn, a, b, dtype, memory_config, activations, a_acts, b_acts):
    on_device(a, "input_tensor_a")
    fp32 = a.dtype == DataType.FLOAT32
    shape = tuple(a.shape)
    if isinstance(b, Tensor):
        on_device(b, "input_tensor_b")
        fp32 = fp32 or b.dtype == DataType.FLOAT32
        require(a.layout == b.layout, lambda: f"{name}: both inputs must have the same layout")
        try:
            shape = tuple(torch.broadcast_shapes(shape, tuple(b.shape)))
        except RuntimeError:
            raise fatal(
                f"{name}: shapes {list(a.shape)} and {list(b.shape)} cannot be broadcast"
            ) from None
    mc = memory_config if memory_config is not None else a.memory_config()
    if mc.is_sharded() and mc.shard_spec is None and a.is_sharded():
        mc = mc.with_shard_spec(a.memory_config().shard_spec)  # input a's shards
    if shape != tuple(a.shape) and mc.is_sharded() and memory_config is None:
        raise fatal(
            f"{name}: broadcast output shape {list(shape)} differs from the sharded input a"
        )
    out = reserve_output(shape, dtype or a.dtype, a.layout, a.device(), mc)

    def run() -> None:
        va = a.values().float()
        vb = b.values().float() if isinstance(b, Tensor) else torch.tensor(float(b))
        for act in a_acts or ():
            va = _dest_round(_unary(act, va), fp32)
        for act in b_acts or ():
            vb = _dest_round(_unary(act, vb), fp32)
        result = fn(va, vb)
        for act in activations or ():
            result = _unary(act, result)
        make_tensor(result, dtype or a.dtype, a.layout, out=out)

    launch(run)
    return out


@device_op
def add(input_tensor_a, input_tensor_b, *, fast_and_approximate_mode=True, dtype=None, memory_config=None,
        output_tensor=None, activations=(), input_tensor_a_activations=(), input_tensor_b_activations=(),
        sub_core_grids=None, sub_device_id=None) -> Tensor:  # fmt: skip
    return _binary("add", torch.add, input_tensor_a, input_tensor_b, dtype, memory_config, activations,
                   input_tensor_a_activations, input_tensor_b_activations)  # fmt: skip


@device_op
def subtract(input_tensor_a, input_tensor_b, *, fast_and_approximate_mode=True, dtype=None, memory_config=None,
             output_tensor=None, activations=(), input_tensor_a_activations=(), input_tensor_b_activations=(),
             sub_core_grids=None, sub_device_id=None) -> Tensor:  # fmt: skip
    return _binary("subtract", torch.sub, input_tensor_a, input_tensor_b, dtype, memory_config, activations,
                   input_tensor_a_activations, input_tensor_b_activations)  # fmt: skip


@device_op
def multiply(input_tensor_a, input_tensor_b, *, fast_and_approximate_mode=False, dtype=None, memory_config=None,
             output_tensor=None, activations=(), input_tensor_a_activations=(), input_tensor_b_activations=(),
             sub_core_grids=None, sub_device_id=None) -> Tensor:  # fmt: skip
    return _binary("multiply", torch.mul, input_tensor_a, input_tensor_b, dtype, memory_config, activations,
                   input_tensor_a_activations, input_tensor_b_activations)  # fmt: skip


mul = multiply
sub = subtract


@device_op
def mul_(input_a, input_b, *, activations=(), input_tensor_a_activations=(), input_tensor_b_activations=(),
         fast_and_approximate_mode=False, sub_core_grids=None, sub_device_id=None) -> Tensor:  # fmt: skip
    """`input_a *= input_b` (a tensor of a broadcastable shape, or a scalar): the product overwrites
    `input_a`, which is returned."""
    on_device(input_a, "input_a")
    if isinstance(input_b, Tensor):
        on_device(input_b, "input_b")
        require(input_a.layout == input_b.layout, "mul_: both inputs must have the same layout")
        try:
            shape = tuple(torch.broadcast_shapes(tuple(input_a.shape), tuple(input_b.shape)))
        except RuntimeError:
            raise fatal(
                f"mul_: shapes {list(input_a.shape)} and {list(input_b.shape)} cannot be broadcast"
            ) from None
        require(shape == tuple(input_a.shape),
                lambda: f"mul_: the in-place output {list(input_a.shape)} cannot hold the broadcast {list(shape)}")  # fmt: skip
    fp32 = input_a.dtype == DataType.FLOAT32

    def run() -> None:
        va = input_a.values().float()
        vb = (
            input_b.values().float()
            if isinstance(input_b, Tensor)
            else torch.tensor(float(input_b))
        )
        for act in input_tensor_a_activations or ():
            va = _dest_round(_unary(act, va), fp32)
        for act in input_tensor_b_activations or ():
            vb = _dest_round(_unary(act, vb), fp32)
        result = va * vb
        for act in activations or ():
            result = _unary(act, result)
        make_tensor(result, input_a.dtype, input_a.layout, out=input_a)

    launch(run)
    return input_a


@device_op
def silu(input_tensor, *, memory_config=None, output_tensor=None, sub_core_grids=None) -> Tensor:
    on_device(input_tensor)
    out = torch.nn.functional.silu(input_tensor.values().float())
    return make_tensor(out, input_tensor.dtype, input_tensor.layout, device=input_tensor.device(),
                       memory_config=memory_config or input_tensor.memory_config())  # fmt: skip


@device_op
def gelu(input_tensor, *, variant=None, fast_and_approximate_mode=False, memory_config=None,
         output_tensor=None, sub_core_grids=None) -> Tensor:  # fmt: skip
    on_device(input_tensor)
    approximate = fast_and_approximate_mode or (
        variant is not None and getattr(variant, "name", "") != "Accurate"
    )
    out = torch.nn.functional.gelu(
        input_tensor.values().float(), approximate="tanh" if approximate else "none"
    )
    return make_tensor(out, input_tensor.dtype, input_tensor.layout, device=input_tensor.device(),
                       memory_config=memory_config or input_tensor.memory_config())  # fmt: skip
