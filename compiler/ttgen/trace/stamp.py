"""Layer stamping: the graph of an N-layer decoder stack from the export of its first few layers.

In a homogeneous stack (every decoder layer of one class, with the same parameter shapes and the
same layer type) each layer adds the same nodes at the same places of the exported program: its
parameters and cache buffers among the placeholders, its cache-length write in the decode wrapper,
and its body. FX names every call node by its op and a per-op counter, so layer j's nodes differ
from layer j-1's only in their counters and in the layer index of their module paths and weights.

The stage exports the first `STAMP_FROM` layers, checks that structure (the exported layers after
the first line up node for node; renaming the exported graph with FX's counting rule reproduces
it), and stamps the last exported layer out to the full depth. The result equals the full export node for node, name
for name (tests/test_trace.py compares them byte for byte) at a fraction of the cost: on an 8B
model decoder layers are nearly all of the export time.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from ttgen.trace.export import cache_buffer_layer, cache_buffer_name

__all__ = ["STAMP_FROM", "StampError", "decoder_layers_path", "first_layers", "stamp_layers"]

# Export this many layers and stamp the last one. The first layer may differ from the rest (in
# decode, HF's mask reads layer 0's cache length, and layer 0 then reuses that conversion); the
# second and third must line up, which shows how a layer reads the one before it.
STAMP_FROM = 3

_COUNTER = re.compile(r"^(.*)_(\d+)$")


class StampError(Exception):
    """The exported prefix does not have the structure stamping relies on (the caller then
    exports the full stack)."""


def decoder_layers_path(model) -> str | None:
    """The module path of `model`'s decoder layer list (`model.layers` for HF causal LMs) when the
    stack is homogeneous and deeper than STAMP_FROM, else None (stamping does not apply)."""
    import torch

    get_decoder = getattr(model, "get_decoder", None)
    decoder = get_decoder() if callable(get_decoder) else None
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) <= STAMP_FROM:
        return None
    if len(layers) != model.config.num_hidden_layers:
        return None
    layer_types = getattr(model.config, "layer_types", None)
    if layer_types is not None and len(set(layer_types)) > 1:
        return None

    def signature(layer) -> tuple:
        tensors = [*layer.named_parameters(), *layer.named_buffers()]
        return (type(layer), tuple((n, tuple(t.shape), t.dtype) for n, t in tensors))

    first = signature(layers[0])
    if any(signature(layer) != first for layer in layers[1:]):
        return None
    return next((name for name, mod in model.named_modules() if mod is layers), None)


@contextlib.contextmanager
def first_layers(model, path: str, count: int) -> Iterator[None]:
    """`model` cut to its first `count` decoder layers (the same modules, config to match), restored
    on exit."""
    import torch

    parent_path, _, attr = path.rpartition(".")
    parent = model.get_submodule(parent_path)
    config = model.config
    layers = getattr(parent, attr)
    saved_count = config.num_hidden_layers
    saved_types = getattr(config, "layer_types", None)
    setattr(parent, attr, torch.nn.ModuleList(list(layers)[:count]))
    config.num_hidden_layers = count
    if saved_types is not None:
        config.layer_types = list(saved_types)[:count]
    try:
        yield
    finally:
        setattr(parent, attr, layers)
        config.num_hidden_layers = saved_count
        if saved_types is not None:
            config.layer_types = saved_types


class _Layers:
    """Which layer each node of an exported graph belongs to, and how to rename one for another."""

    def __init__(self, path: str):
        self.path = path
        self._module = re.compile(rf"^{re.escape(path)}\.(\d+)(?=\.|$)")

    def of_name(self, name: str) -> int | None:
        """The layer of a module path, parameter or cache buffer name (None: not a layer's)."""
        m = self._module.match(name)
        if m:
            return int(m.group(1))
        return cache_buffer_layer(name)

    def rename(self, name: str, layer: int) -> str:
        m = self._module.match(name)
        if m:
            return f"{self.path}.{layer}{name[m.end() :]}"
        if cache_buffer_layer(name) is not None:
            return cache_buffer_name(name, layer)
        return name

    def moved(self, node: dict[str, Any], layer: int) -> dict[str, Any]:
        """The node's layer-bound fields (module path and stack, weight names) for `layer`."""
        fields: dict[str, Any] = {
            "module": self.rename(node["module"], layer),
            "module_stack": [[self.rename(p, layer), c] for p, c in node["module_stack"]],
        }
        if "param" in node:
            fields["param"] = self.rename(node["param"], layer)
        if "params" in node:
            fields["params"] = {a: self.rename(p, layer) for a, p in node["params"].items()}
        return fields

    def attribute(self, nodes: list[dict[str, Any]]) -> dict[str, int]:
        """node id → layer, for the nodes a layer contributes: those inside its modules, the
        placeholders of its weights and cache buffers, wrapper ops on those buffers, and wrapper
        ops that feed only one layer's nodes (the position select of its cache-length write)."""
        layer: dict[str, int] = {}
        consumers: dict[str, list[str]] = {n["id"]: [] for n in nodes}
        for n in nodes:
            for src in n["inputs"]:
                consumers[src].append(n["id"])
        for n in nodes:
            found = None
            if n["opcode"] == "placeholder":
                found = self.of_name(n.get("param", ""))
            elif n["module_stack"]:
                found = next(
                    (
                        i
                        for path, _ in reversed(n["module_stack"])
                        if (i := self.of_name(path)) is not None
                    ),
                    None,
                )
            elif n["opcode"] == "call_function":
                owners = {self.of_name(p) for p in n.get("params", {}).values()} - {None}
                if len(owners) == 1:
                    found = owners.pop()
            if found is not None:
                layer[n["id"]] = found
        for n in reversed(nodes):
            if n["id"] in layer or n["module_stack"] or n["opcode"] != "call_function":
                continue
            owners = {layer.get(c) for c in consumers[n["id"]]}
            if len(owners) == 1 and None not in owners:
                layer[n["id"]] = owners.pop()
        return layer


def _base(name: str) -> str:
    m = _COUNTER.match(name)
    return m.group(1) if m else name


def _sanitized(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "_", name)


def stamp_layers(graph: dict[str, Any], path: str, num_layers: int) -> dict[str, Any]:
    """The graph dict (ttgen.ir.graph form) of a stack of `num_layers` layers, from `graph`, the
    export of its first STAMP_FROM layers. Raises StampError when the export does not have the
    structure the stamping relies on."""
    nodes: list[dict[str, Any]] = graph["nodes"]
    by_id = {n["id"]: n for n in nodes}
    layers = _Layers(path)
    owner = layers.attribute(nodes)
    last, before = STAMP_FROM - 1, STAMP_FROM - 2
    members: dict[int, list[str]] = {i: [] for i in range(STAMP_FROM)}
    for n in nodes:
        if n["id"] in owner:
            if owner[n["id"]] not in members:
                raise StampError(f"node {n['id']} belongs to layer {owner[n['id']]}")
            members[owner[n["id"]]].append(n["id"])
    template = members[last]
    position = {nid: p for i in members for p, nid in enumerate(members[i])}
    _check_alike(by_id, owner, members, position, layers)

    # A stamped node goes by (layer, template node) until the final names are counted.
    def copy_id(template_id: str, layer: int) -> str:
        return template_id if layer == last else f"\0{layer}\0{template_id}"

    def source(src: str, layer: int) -> str:
        """What a stamped node of `layer` reads where the template node reads `src`."""
        if src not in owner:
            return src
        if owner[src] == last:
            return copy_id(src, layer)
        if owner[src] == before:
            return copy_id(template[position[src]], layer - 1)
        raise StampError(f"layer {last} reads {src}, a node of layer {owner[src]}")

    # Program order: each run of the last exported layer's consecutive nodes (its weights, its cache
    # buffers, its cache-length write, its body) is followed by its copies for the deeper layers.
    sequence: list[tuple[dict[str, Any], int]] = []  # (exported node, layer it stands for)
    run: list[dict[str, Any]] = []
    for n in [*nodes, None]:
        if n is not None and owner.get(n["id"]) == last:
            run.append(n)
            continue
        for layer in range(last, num_layers):
            sequence += [(t, layer) for t in run]
        run = []
        if n is not None:
            sequence.append((n, last))

    alone = _fx_names([(n, last) for n in nodes], owner, layers, copy_id)
    if any(alone[n["id"]] != n["id"] for n in nodes):
        raise StampError("FX's counters do not reproduce the exported names")
    final = _fx_names(sequence, owner, layers, copy_id)

    def remap(src: str, n: dict[str, Any], layer: int) -> str:
        if layer != last:  # a stamped copy
            return final[source(src, layer)]
        if owner.get(src) == last and n["id"] not in owner:  # after the stack: the deepest layer
            return final[copy_id(src, num_layers - 1)]
        return final[src]

    out_nodes = []
    for index, (n, layer) in enumerate(sequence):
        attrs = dict(n)
        attrs["id"] = final[copy_id(n["id"], layer)]
        attrs["index"] = index
        attrs["inputs"] = [remap(src, n, layer) for src in n["inputs"]]
        if owner.get(n["id"]) == last and layer != last:
            attrs.update(layers.moved(n, layer))
        out_nodes.append(attrs)

    edges_in: dict[str, list[dict[str, Any]]] = {}
    for e in graph["edges"]:
        edges_in.setdefault(e["dst"], []).append(e)
    out_edges = []
    for n, layer in sequence:
        dst = final[copy_id(n["id"], layer)]
        for e in edges_in.get(n["id"], []):
            out_edges.append({**e, "src": remap(e["src"], n, layer), "dst": dst})
    return {**graph, "nodes": out_nodes, "edges": out_edges}


def _fx_names(sequence, owner, layers: _Layers, copy_id) -> dict[str, str]:
    """Final node names: a placeholder after its weight or buffer, a call node after its op with
    FX's per-op counter (`mul`, `mul_1`, ...; `pow_1`, `pow_2`, ... where the bare name is taken).
    Whether a counter starts bare or at 1 is read off the exported prefix."""
    first_suffix: dict[str, int] = {}
    for n, _ in sequence:
        if n["opcode"] == "call_function":
            base = _base(n["id"])
            if base not in first_suffix:
                first_suffix[base] = 0 if n["id"] == base else int(_COUNTER.match(n["id"])[2])
    last = STAMP_FROM - 1
    counts: dict[str, int] = {}
    final: dict[str, str] = {}
    for n, layer in sequence:
        name = n["id"]
        if n["opcode"] == "placeholder":
            if owner.get(name) == last and layer != last:
                param = _sanitized(n["param"])
                if not name.endswith(param):
                    raise StampError(f"placeholder {name} is not named after {n['param']}")
                name = name[: -len(param)] + _sanitized(layers.rename(n["param"], layer))
        elif n["opcode"] == "call_function":
            base = _base(name)
            k = counts.get(base, 0) + first_suffix[base]
            counts[base] = counts.get(base, 0) + 1
            name = base if k == 0 else f"{base}_{k}"
        final[copy_id(n["id"], layer)] = name
    return final


def _check_alike(by_id, owner, members, position, layers: _Layers) -> None:
    """The exported layers after the first line up node for node: the same ops, shapes and
    constants, the same weights and modules (path and stack) up to the layer index, reading the
    same shared nodes and the same nodes of their own and of the previous layer."""
    checked = sorted(members)[1:]
    if len({len(members[i]) for i in checked}) != 1:
        sizes = ", ".join(f"layer {i}: {len(members[i])}" for i in checked)
        raise StampError(f"the exported layers differ in node count ({sizes})")
    keys = ("opcode", "op", "outputs", "constants", "in_shapes", "module_class", "kind")
    first, *others = checked
    for i in others:
        for a_id, b_id in zip(members[first], members[i], strict=True):
            a, b = by_id[a_id], by_id[b_id]
            differ = f"{a_id} (layer {first}) and {b_id} (layer {i}) differ"
            if any(a.get(k) != b.get(k) for k in keys):
                raise StampError(differ)
            moved = layers.moved(a, i)
            if any(moved.get(k) != b.get(k) for k in ("module", "module_stack", "param", "params")):
                raise StampError(f"{differ} in module or weights")
            if len(a["inputs"]) != len(b["inputs"]):
                raise StampError(f"{differ} in inputs")
            for sa, sb in zip(a["inputs"], b["inputs"], strict=True):
                la, lb = owner.get(sa), owner.get(sb)
                if la is None and lb is None:
                    alike = sa == sb
                elif la == first and lb == i:
                    alike = position[sa] == position[sb]
                elif la == first - 1 and lb == i - 1:
                    alike = by_id[sa]["op"] == by_id[sb]["op"]
                    alike = alike and by_id[sa]["outputs"] == by_id[sb]["outputs"]
                else:
                    alike = False
                if not alike:
                    raise StampError(f"{differ}: they read {sa} and {sb}")
