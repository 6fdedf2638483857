"""Graph helpers.

A ttgen graph is a `networkx.DiGraph` whose node ids are the torch.fx node names (stable for the same
model and config). Every node carries:

- `index`     position in the exported program (a topological order)
- `opcode`    `placeholder`, `call_function` or `output`
- `op`        the aten target, e.g. `aten.linear.default` (the opcode for placeholders and output)
- `inputs`    ids of the tensor inputs, in argument order; `in_shapes` their shapes
- `outputs`   `[{"shape": [...], "dtype": "float32"}, ...]`, one entry per produced tensor
- `constants` non-tensor arguments by schema name, e.g. `{"other": 1e-05}` for the eps add
- `module`, `module_class`, `module_stack`  innermost HF module path/class and the whole stack
- `param`     (placeholders) the parameter or buffer name; `kind`: parameter, buffer or user_input
- `params`    (call nodes) argument name → parameter name, for weight inputs

Edges run producer → consumer with `args`: the argument names through which the value flows (a
list, since one value may feed several arguments of the same op).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import networkx as nx

__all__ = [
    "GRAPH_FORMAT",
    "call_nodes",
    "evaluate_constant",
    "graph_from_dict",
    "graph_to_dict",
    "layer_nodes",
    "ordered_nodes",
]

GRAPH_FORMAT = "ttgen.graph/1"


def ordered_nodes(g: nx.DiGraph) -> list[str]:
    """Node ids in exported-program order."""
    return sorted(g.nodes, key=lambda n: g.nodes[n]["index"])


def call_nodes(g: nx.DiGraph) -> Iterator[tuple[str, dict[str, Any]]]:
    for n in ordered_nodes(g):
        attrs = g.nodes[n]
        if attrs["opcode"] == "call_function":
            yield n, attrs


def layer_list_path(g: nx.DiGraph) -> str | None:
    """The module path of the graph's layer list (`model.layers` of a causal LM, `vit.layers` of a
    ViT): the first `<...>.layers.<i>` module a node sits in, None when there is none."""
    for _, attrs in call_nodes(g):
        for path, _cls in attrs["module_stack"]:
            head, _, index = path.rpartition(".")
            if index.isdigit() and (head == "layers" or head.endswith(".layers")):
                return head
    return None


def layer_nodes(g: nx.DiGraph, layer: int = 0) -> list[str]:
    """Call nodes inside layer `layer` of the graph's layer list (`model.layers.<layer>` or below)."""
    prefix = f"{layer_list_path(g) or 'model.layers'}.{layer}"
    return [
        n
        for n, attrs in call_nodes(g)
        if attrs["module"] == prefix or attrs["module"].startswith(prefix + ".")
    ]


def graph_to_dict(g: nx.DiGraph) -> dict[str, Any]:
    nodes = [{"id": n, **g.nodes[n]} for n in ordered_nodes(g)]
    order = {n: i for i, n in enumerate(ordered_nodes(g))}
    edges = sorted(g.edges(data=True), key=lambda e: (order[e[1]], order[e[0]]))
    return {
        "format": GRAPH_FORMAT,
        "graph": dict(g.graph),
        "nodes": nodes,
        "edges": [{"src": s, "dst": d, **attrs} for s, d, attrs in edges],
    }


def graph_from_dict(data: dict[str, Any]) -> nx.DiGraph:
    if data.get("format") != GRAPH_FORMAT:
        raise ValueError(f"not a {GRAPH_FORMAT} graph (format: {data.get('format')!r})")
    g = nx.DiGraph()
    g.graph.update(data["graph"])
    for node in data["nodes"]:
        attrs = dict(node)
        g.add_node(attrs.pop("id"), **attrs)
    for edge in data["edges"]:
        attrs = dict(edge)
        g.add_edge(attrs.pop("src"), attrs.pop("dst"), **attrs)
    return g


def evaluate_constant(g: nx.DiGraph, node: str):
    """The value of `node` when it depends on no graph input (index math: aranges, comparisons,
    views), computed with the graph's own aten ops on the CPU; None when it depends on an input or
    an op cannot be evaluated here."""
    import torch

    needed = nx.ancestors(g, node) | {node}
    if any(g.nodes[n]["opcode"] != "call_function" for n in needed):
        return None
    values = {}
    for n in sorted(needed, key=lambda n: g.nodes[n]["index"]):
        a = g.nodes[n]
        namespace, name, overload = a["op"].split(".")
        kwargs = {k: ("cpu" if k == "device" else v) for k, v in a.get("constants", {}).items()}
        try:
            fn = getattr(getattr(getattr(torch.ops, namespace), name), overload)
            values[n] = fn(*(values[i] for i in a["inputs"]), **kwargs)
        except Exception:  # noqa: BLE001 - an op this evaluator cannot run: no value
            return None
    return values[node]
