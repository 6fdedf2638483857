"""The program IR: per module and mode, the ordered TTNN calls that will run, over named values.

A block's lowering builds its programs with a `ProgramBuilder`; each call becomes an `OpPlan`
carrying both what the validator and the cost model read (input and output tensors, program and
compute configs, L1 and DRAM figures) and what the emitter prints (the `Call`: function, arguments,
the names it binds, the values freed after it). The emitter prints these calls as they are, so what
is validated and costed is what ships.

Arguments are closed-set data, never spec strings: a reference to a value (`Ref`), a named config
constant (`Const`: a memory, program or compute config, a dtype, a shape) or a Python expression
the lowering builds from identifiers of the generated package (`Lit`)."""

from __future__ import annotations

from dataclasses import replace

from ttgen.plan.types import (
    SINGLE_DEVICE,
    Call,
    Const,
    Lit,
    OpPlan,
    Placement,
    Ref,
    Signature,
    TensorPlan,
)

__all__ = [
    "Call", "Const", "Lit", "Placement", "ProgramBuilder", "ProgramError", "Ref", "Signature",
    "SINGLE_DEVICE", "ttnn_dtype",
]  # fmt: skip


class ProgramError(ValueError):
    """A program that is not well-formed (a lowering bug, not bad input)."""


class ProgramBuilder:
    """Builds one program (one mode; for prefill one sequence length at a time) in call order.

    `env` maps each live name to its planned tensor; a call's inputs are looked up there, so an op
    can only read a value that exists, and the output tensors it declares are what later calls see.
    `finish` computes where each owned value is freed: after its last use, unless returned."""

    def __init__(self, lowering, params: dict[str, TensorPlan], state: dict[str, TensorPlan],
                 seq_len: int | None = None) -> None:  # fmt: skip
        self.lowering = lowering
        self.seq_len = seq_len
        self.env: dict[str, TensorPlan] = {**params, **{f"self.{k}": v for k, v in state.items()}}
        self.params = tuple(params)
        self.ops: list[OpPlan] = []
        self.views: dict[str, str] = {}  # view name → the value whose buffer it shares
        self.owned: set[str] = set()  # names bound by the program's calls (not views)

    def tensor(self, name: str) -> TensorPlan:
        if name not in self.env:
            raise ProgramError(f"value '{name}' is not defined here (defined: {sorted(self.env)})")
        return self.env[name]

    def call(self, name: str, fn: str, args=(), kwargs=(), *, outs=(), out: TensorPlan | tuple = (),
             view: bool = False, guard: str | None = None, **plan) -> OpPlan:  # fmt: skip
        """Add a call; `out` is the planned tensor of each name in `outs` (one or a tuple)."""
        kwargs = tuple(kwargs.items()) if isinstance(kwargs, dict) else tuple(kwargs)
        call = Call(fn, tuple(args), kwargs, tuple(outs), view, guard)
        outputs = out if isinstance(out, tuple) else (out,)
        if len(outputs) != len(call.outs) and call.outs:
            raise ProgramError(f"{name}: {len(call.outs)} names for {len(outputs)} outputs")
        inputs = tuple(self.tensor(r) for r in call.refs())
        op = self.lowering.op(name, fn, inputs, outputs[0] if outputs else inputs[0],
                              extra_outputs=outputs[1:], seq_len=self.seq_len, call=call, **plan)  # fmt: skip
        if view:
            src = call.refs()[0]
            self.views[call.outs[0]] = self.views.get(src, src)
        else:
            for n in call.outs:
                if n in self.env:
                    raise ProgramError(f"{name}: rebinds '{n}' (only a view may rebind a name)")
            self.owned |= set(call.outs)
        for n, t in zip(call.outs, outputs, strict=True):
            self.env[n] = t
        self.ops.append(op)
        return op

    def finish(self, sig: Signature) -> tuple[OpPlan, ...]:
        """The calls with their deallocations: every value the program owns (its calls' outputs,
        and the parameters it consumes) is freed right after its last use, unless it is returned.
        A view is freed through the value whose buffer it shares."""
        for r in sig.returns:
            self.tensor(r)

        def root(n: str) -> str:
            return self.views.get(n, n)

        owned = {root(n) for n in self.owned} | set(sig.consumes)
        keep = {root(r) for r in sig.returns}
        last: dict[str, int] = {}
        for i, op in enumerate(self.ops):
            for n in (*op.call.refs(), *op.call.outs):
                last[root(n)] = i
        frees: dict[int, list[str]] = {}
        for name, i in last.items():
            if name in owned and name not in keep:
                frees.setdefault(i, []).append(name)
        return tuple(
            replace(op, call=replace(op.call, frees=tuple(frees[i]))) if i in frees else op
            for i, op in enumerate(self.ops)
        )


_DTYPES = ("bfloat16", "float32", "bfloat8_b", "bfloat4_b", "uint32", "int32", "uint16")


def ttnn_dtype(dtype: str) -> Lit:
    if dtype not in _DTYPES:
        raise ProgramError(f"unknown dtype {dtype!r}")
    return Lit(f"ttnn.{dtype}")
