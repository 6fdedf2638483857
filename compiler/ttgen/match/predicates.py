"""Named `when:` predicates: pure functions of a candidate match (graph, boundary, captures)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import networkx as nx

__all__ = ["PREDICATES", "Candidate"]

_INDEX_DTYPES = {"bool", "int64", "int32", "uint8"}
_VALUE_PRESERVING = {
    "aten.alias.default",
    "aten._assert_tensor_metadata.default",
    "aten._assert_scalar.default",
}


@dataclass(frozen=True)
class Candidate:
    graph: nx.DiGraph
    nodes: tuple[str, ...]
    captures: dict
    consumed: frozenset = frozenset()  # the nodes the rule's patterns explain


def index_math_only(c: Candidate) -> bool:
    """Position and mask bookkeeping only: every op the rule's patterns do not explain yields
    integers or booleans, or passes a value through unchanged. An unexplained float computation
    (say, Gemma's embedding scale where no pattern names it) does not qualify."""
    for n in c.nodes:
        if n in c.consumed:
            continue
        attrs = c.graph.nodes[n]
        if attrs["op"] in _VALUE_PRESERVING:
            continue
        if not attrs["outputs"] or any(o["dtype"] not in _INDEX_DTYPES for o in attrs["outputs"]):
            return False
    return True


PREDICATES: dict[str, Callable[[Candidate], bool]] = {
    "index_math_only": index_math_only,
}
