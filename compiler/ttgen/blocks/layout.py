"""Where a model kind's blocks sit in the HF module tree, read from the matches' module paths and
graph order (never from HF names written in the compiler): the repeated layers, what each layer
holds in order, and the blocks outside the layers. A model kind states its layer's block slot, the
slots a layer holds in graph order and their roles; a model whose matches differ is refused with
the layer that differs."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.plan.facts import PlanError

__all__ = ["Placed", "place_blocks"]


def _inside(path: str, parent: str) -> bool:
    return path.startswith(parent + ".")


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


def place_blocks(result, graph, *, kind: str, layer_slot: str, layer_name: str, slots: tuple[str, ...],
                 roles: tuple[str, ...], what: str) -> Placed:  # fmt: skip
    """`slots`: the blocks a layer holds in graph order; `roles`: their names in the layout;
    `layer_name` and `what`: the layer and its structure in words, for the refusals."""
    from ttgen.blocks import get_block

    def first_call(
        m,
    ) -> int:  # parameters are placeholders at the graph's start: calls order the blocks
        return min(
            graph.nodes[n]["index"] for n in m.nodes if graph.nodes[n]["opcode"] == "call_function"
        )

    placed = sorted(((first_call(m), get_block(m.template).slot, m) for m in result.matches
                     if get_block(m.template).module), key=lambda t: t[0])  # fmt: skip
    layers = [m for _, slot, m in placed if slot == layer_slot]
    children = None
    for layer in layers:
        inner = [
            (slot, m.module[len(layer.module) + 1 :])
            for _, slot, m in placed
            if _inside(m.module, layer.module)
        ]
        if tuple(slot for slot, _ in inner) != slots:
            raise PlanError(f"{layer_name} {layer.module}: holds {[s for s, _ in inner]} in graph "
                            f"order; a {kind} layer is {list(slots)} ({what})")  # fmt: skip
        names = tuple(zip(roles, (name for _, name in inner), strict=True))
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
