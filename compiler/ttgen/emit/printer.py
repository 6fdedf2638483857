"""The generic op printer: a module's planned programs → the Python of its forward methods and the
config constants they name. Printing only: every call, argument, name and deallocation was fixed by
the planner (ttgen.plan.program); the printer decides nothing but spelling.

Prefill is planned once per sequence length; one method serves them all. The variants must agree
call for call; a constant whose value differs between them becomes a table keyed by `seq_len`
(`QKV_PREFILL_PROGCFG[seq_len]`), and a call planned for some lengths only runs under
`if seq_len in <its guard table>:`. Constants with identical values are one constant."""

from __future__ import annotations

from dataclasses import dataclass, field

from ttgen.emit.context import EmitError
from ttgen.emit.exprs import const_expr
from ttgen.plan.types import Call, Const, Lit, MemCfg, ModulePlan, OpPlan, Ref, Signature

__all__ = ["PrintedModule", "print_module"]


@dataclass
class PrintedModule:
    constants: list[tuple[str, str]] = field(default_factory=list)  # (name, expression) in order
    shared: set[str] = field(default_factory=set)  # model_config names the methods use
    methods: dict[str, str] = field(default_factory=dict)  # mode → "def ...:" body (unindented)
    signatures: dict[str, Signature] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)  # planned constant name → printed name

    def weight_memcfg(self, name: str, memory: MemCfg) -> str:
        """The expression a loader passes as `memory_config` for weight `name`."""
        return self.rename.get(weight_const(name)) or const_expr(memory)


def _variants(module: ModulePlan, mode: str) -> list[tuple[int | None, list[OpPlan]]]:
    by_len: dict[int | None, list[OpPlan]] = {}
    for op in module.program(mode):
        if op.call is None:
            raise EmitError(f"{module.rule}: {mode} op {op.name} has no call (not a program)")
        by_len.setdefault(op.seq_len, []).append(op)
    return sorted(by_len.items(), key=lambda kv: (kv[0] is not None, kv[0] or 0))


def _align(module: ModulePlan, mode: str, variants) -> list[str]:
    """Op names in program order over all variants (each variant's order must agree)."""
    order: list[str] = []
    for _, ops in variants:
        names = [op.name for op in ops]
        if len(set(names)) != len(names):
            raise EmitError(f"{module.rule}: {mode} op names repeat in one program: {names}")
        pos = 0
        for n in names:
            if n in order:
                i = order.index(n)
                if i < pos:
                    raise EmitError(f"{module.rule}: {mode} variants order '{n}' differently")
                pos = i + 1
            else:
                order.insert(pos, n)
                pos += 1
    return order


def _shape_of(call: Call):
    """What must be equal between the variants of one call: everything but constant values."""

    def arg(a):
        if isinstance(a, tuple):
            return tuple(arg(x) for x in a)
        return ("const", a.name, a.shared) if isinstance(a, Const) else a

    return (call.fn, tuple(arg(a) for a in call.args), tuple((k, arg(v)) for k, v in call.kwargs),
            call.outs, call.view, call.guard, call.frees)  # fmt: skip


def _merged_name(names: list[str]) -> str:
    """WQKV_MEMCFG + WO_MEMCFG → WQKV_WO_MEMCFG; FF1_DECODE_PROGCFG + FF3_DECODE_PROGCFG →
    FF1_FF3_DECODE_PROGCFG: the distinct leading parts joined, the common tail kept."""
    if len(names) == 1:
        return names[0]
    split = [n.split("_") for n in names]
    shortest = min(split, key=len)
    for cut in range(
        len(shortest) - 1, 0, -1
    ):  # LM_HEAD_DECODE + LM_HEAD_LAST_DECODE → LM_HEAD_DECODE
        head, tail = shortest[:cut], shortest[cut:]
        if all(s[:cut] == head and s[len(s) - len(tail) :] == tail for s in split):
            return "_".join(shortest)
    tail: list[str] = []
    while (
        all(len(s) > len(tail) + 1 for s in split) and len({s[-1 - len(tail)] for s in split}) == 1
    ):
        tail.insert(0, split[0][-1 - len(tail)])
    heads: list[str] = []
    for s in split:
        head = "_".join(s[: len(s) - len(tail)])
        if head not in heads:
            heads.append(head)
    stems = {h.rstrip("0123456789").rstrip("_") for h in heads}
    if len(heads) > 2 and len(stems) == 1:  # WEIGHT_0 … WEIGHT_7 → WEIGHT
        heads = [stems.pop()]
    return "_".join([*heads, *tail])


def weight_const(name: str) -> str:
    """The planned constant name of weight `name`'s memory config (the loaders name it)."""
    return f"{name.upper()}_MEMCFG"


def print_module(module: ModulePlan) -> PrintedModule:
    out = PrintedModule()
    # constant name → {seq_len or None: value}; shared names are model_config's. The weights'
    # memory configs come first: the loaders name them.
    values: dict[str, dict[int | None, object]] = {
        weight_const(w.name): {None: w.memory} for w in module.weights if w.memory.sharded
    }
    tables: set[str] = set()
    plans: dict[str, tuple] = {}
    for mode, sig in module.signatures:
        variants = _variants(module, mode)
        if not variants:
            raise EmitError(f"{module.rule}: no {mode} ops for {sig.method}")
        order = _align(module, mode, variants)
        lens = [s for s, _ in variants]
        aligned = []
        for name in order:
            present = {s: next((o for o in ops if o.name == name), None) for s, ops in variants}
            calls = {s: o.call for s, o in present.items() if o is not None}
            first = next(iter(calls.values()))
            for s, c in calls.items():
                if _shape_of(c) != _shape_of(first):
                    raise EmitError(f"{module.rule}: {mode} op {name} differs between sequence "
                                    f"lengths beyond its constants ({lens[0]} vs {s})")  # fmt: skip
            if len(calls) < len(variants) and first.guard is None:
                raise EmitError(f"{module.rule}: {mode} op {name} is planned for seq_len "
                                f"{sorted(calls)} only but has no guard")  # fmt: skip
            for s, c in calls.items():
                for a in (*c.args, *(v for _, v in c.kwargs)):
                    if isinstance(a, Lit):
                        out.shared.update(a.uses)
                    if isinstance(a, Const):
                        slot = values.setdefault(a.name, {})
                        prev = slot.get(s, a.value)
                        if prev != a.value:
                            raise EmitError(
                                f"{module.rule}: constant {a.name} has two values at seq_len {s}"
                            )
                        slot[s] = a.value
                        if a.shared:
                            out.shared.add(a.name)
            aligned.append((name, first, sorted(calls, key=lambda v: v or 0)))
        plans[mode] = (sig, aligned, variants)
    # guards are tables by definition; a constant whose values differ between lengths is a table
    for _, (_, aligned, _) in plans.items():
        for _, call, _ in aligned:
            if call.guard:
                tables.add(call.guard)
    for name, slot in values.items():
        if len({repr(v) for v in slot.values()}) > 1:
            tables.add(name)
    for mode, (_, aligned, _) in plans.items():
        for op_name, call, present in aligned:
            if call.guard and sorted(values.get(call.guard, {})) != present:
                raise EmitError(f"{module.rule}: {mode} op {op_name} runs at {present} but its guard "
                                f"{call.guard} keys {sorted(values.get(call.guard, {}))}")  # fmt: skip

    # render constants, merge identical ones
    exprs: dict[str, str] = {}
    for name, slot in values.items():
        if name in out.shared:
            continue
        if name in tables:
            body = ", ".join(
                f"{s}: {const_expr(v)}" for s, v in sorted(slot.items(), key=lambda kv: kv[0] or 0)
            )
            exprs[name] = "{" + body + "}"
        else:
            value = next(iter(slot.values()))
            if isinstance(value, MemCfg) and not value.sharded:
                continue  # interleaved configs are spelled inline (ttnn.DRAM_MEMORY_CONFIG)
            exprs[name] = const_expr(value)
    groups: dict[str, list[str]] = {}
    for name, text in exprs.items():
        groups.setdefault(text, []).append(name)
    rename: dict[str, str] = {}
    for text, names in groups.items():
        merged = _merged_name(names)
        out.constants.append((merged, text))
        rename.update({n: merged for n in names})

    out.rename = rename

    def arg(a) -> str:
        if isinstance(a, tuple):
            return "[" + ", ".join(arg(x) for x in a) + "]"
        if isinstance(a, Ref):
            return a.name
        if isinstance(a, Lit):
            return a.code
        if a.name in out.shared:
            return a.name
        if a.name in tables:
            return f"{rename[a.name]}[seq_len]"
        if a.name not in rename:  # inline interleaved memory config
            return const_expr(a.value)
        return rename[a.name]

    for mode, (sig, aligned, _) in plans.items():
        lines: list[str] = []
        for _, call, _ in aligned:
            args = [arg(a) for a in call.args] + [f"{k}={arg(v)}" for k, v in call.kwargs]
            text = f"{call.fn}({', '.join(args)})"
            if call.outs:
                text = f"{', '.join(call.outs)} = {text}"
            if call.guard:
                lines += [f"if seq_len in {rename.get(call.guard, call.guard)}:", f"    {text}"]
            else:
                lines.append(text)
            lines += [f"ttnn.deallocate({n})" for n in call.frees]
        if sig.returns:
            lines.append(f"return {', '.join(sig.returns)}")
        body = "\n".join(lines)
        if "seq_len" in body and "seq_len" not in sig.params:
            body = f"seq_len = {sig.params[0]}.shape[-2]\n{body}"
        out.methods[mode] = body
        out.signatures[mode] = sig
    return out
