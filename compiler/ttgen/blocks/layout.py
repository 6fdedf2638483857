"""Where a model kind's blocks sit in the HF module tree, read from the matches' module paths and
graph order (never from HF names written in the compiler): the repeated layers, what each layer
holds in order, and the blocks outside the layers. A model kind names its layer's block slot and
how a layer's blocks, in graph order, take their roles (a fixed sequence, or one read from the
layer's own dataflow); a model whose layers differ is refused with the layer that differs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ttgen.plan.facts import PlanError

__all__ = ["Child", "Placed", "fixed_roles", "place_blocks"]


def _inside(path: str, parent: str) -> bool:
    return path.startswith(parent + ".")


@dataclass(frozen=True)
class Child:
    """A block inside a layer: its slot, its sub-module name, its first op's graph index, its match."""

    slot: str
    name: str
    first: int
    match: object


@dataclass(frozen=True)
class Placed:
    layers: tuple[str, ...]  # the layers' module paths, in order
    layer_children: tuple[tuple[str, str], ...]  # role in a layer → sub-module name
    outside: tuple[tuple[str, str], ...]  # (slot, module path) of the blocks outside the layers
    kind: str

    def one(self, slot: str) -> str:
        """The path of the one `slot` block outside the layers."""
        paths = [p for s, p in self.outside if s == slot]
        if len(paths) != 1:
            raise PlanError(
                f"a {self.kind} model has one {slot} outside its layers; found {paths or 'none'}"
            )
        return paths[0]


def first_call(graph, m) -> int:
    """The graph index of a match's first op (parameters are placeholders at the graph's start)."""
    return min(
        graph.nodes[n]["index"] for n in m.nodes if graph.nodes[n]["opcode"] == "call_function"
    )


def fixed_roles(
    kind: str, layer_name: str, slots: tuple[str, ...], roles: tuple[str, ...], what: str
) -> Callable:
    """A layer that holds `slots` in graph order, named `roles`; `what`: that structure in words."""

    def assign(layer, children: list[Child], graph) -> tuple[str, ...]:
        if tuple(c.slot for c in children) != slots:
            raise PlanError(f"{layer_name} {layer.module}: holds {[c.slot for c in children]} in graph "
                            f"order; a {kind} layer is {list(slots)} ({what})")  # fmt: skip
        return roles

    return assign


def place_blocks(result, graph, *, kind: str, layer_slot: str, assign: Callable) -> Placed:
    """`assign(layer match, its children in graph order, graph)`: the children's roles, or a
    PlanError naming the layer."""
    from ttgen.blocks import get_block

    placed = sorted(((first_call(graph, m), get_block(m.template).slot, m) for m in result.matches
                     if get_block(m.template).module), key=lambda t: t[0])  # fmt: skip
    layers = [m for _, slot, m in placed if slot == layer_slot]
    children = None
    for layer in layers:
        inner = [Child(slot, m.module[len(layer.module) + 1 :], first, m)
                 for first, slot, m in placed if _inside(m.module, layer.module)]  # fmt: skip
        names = tuple(zip(assign(layer, inner, graph), (c.name for c in inner), strict=True))
        if children is not None and names != children:
            raise PlanError(
                f"{layer_slot.replace('_', ' ')} {layer.module}: its sub-modules {names} differ from {children}"
            )
        children = names
    outside = tuple(
        (slot, m.module)
        for _, slot, m in placed
        if not any(_inside(m.module, lay.module) for lay in layers)
    )
    return Placed(tuple(m.module for m in layers), children or (), outside, kind)
