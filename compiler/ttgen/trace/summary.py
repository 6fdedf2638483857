"""What a trace contains, in numbers: module classes, parameters, op histogram, one layer's ops."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import networkx as nx

from ttgen.ir.graph import call_nodes, layer_list_path, layer_nodes, ordered_nodes

__all__ = ["GraphSummary", "summarize"]

# Ops that export inserts for its own checks; they compute nothing.
_BOOKKEEPING = ("aten._assert_tensor_metadata.default", "aten._assert_scalar.default")


@dataclass(frozen=True)
class GraphSummary:
    mode: str
    num_nodes: int
    num_ops: int
    module_classes: tuple[tuple[str, int], ...]  # class → number of module instances
    num_parameters: int
    op_histogram: tuple[tuple[str, int], ...]
    layer_ops: tuple[str, ...]  # the op sequence of layer 0
    layer_path: str = "model.layers.0"


def summarize(g: nx.DiGraph) -> GraphSummary:
    modules: set[tuple[str, str]] = set()
    ops: Counter[str] = Counter()
    for _, attrs in call_nodes(g):
        modules.update((path, cls) for path, cls in attrs["module_stack"])
        if attrs["op"] not in _BOOKKEEPING:
            ops[attrs["op"]] += 1
    classes = Counter(cls for _, cls in modules)
    params = sum(
        math.prod(g.nodes[n]["outputs"][0]["shape"])
        for n in ordered_nodes(g)
        if g.nodes[n].get("kind") == "parameter"
    )
    layer = tuple(
        g.nodes[n]["op"] for n in layer_nodes(g, 0) if g.nodes[n]["op"] not in _BOOKKEEPING
    )
    return GraphSummary(
        mode=g.graph.get("mode", ""),
        num_nodes=g.number_of_nodes(),
        num_ops=sum(ops.values()),
        module_classes=tuple(sorted(classes.items(), key=lambda kv: (-kv[1], kv[0]))),
        num_parameters=params,
        op_histogram=tuple(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        layer_ops=layer,
        layer_path=f"{layer_list_path(g) or 'model.layers'}.0",
    )
