"""The graph IR: a networkx DiGraph of aten ops with module annotations, and its JSON form."""

from ttgen.ir.graph import (
    GRAPH_FORMAT,
    call_nodes,
    graph_from_dict,
    graph_to_dict,
    layer_nodes,
    ordered_nodes,
)

__all__ = [
    "GRAPH_FORMAT",
    "call_nodes",
    "graph_from_dict",
    "graph_to_dict",
    "layer_nodes",
    "ordered_nodes",
]
