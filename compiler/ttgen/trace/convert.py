"""ExportedProgram (a torch.fx graph) → module-annotated networkx DiGraph (see ttgen.ir.graph)."""

from __future__ import annotations

from typing import Any

import networkx as nx
import torch
from torch.export.graph_signature import InputKind

__all__ = ["graph_from_exported"]

_INPUT_KINDS = {
    InputKind.PARAMETER: "parameter",
    InputKind.BUFFER: "buffer",
    InputKind.USER_INPUT: "user_input",
    InputKind.CONSTANT_TENSOR: "constant",
}


def _strip(path: str, prefix: str | None) -> str | None:
    """Map a path inside a wrapper module (whose child `prefix` is the HF model) to the path it has
    in the HF model: `model.model.layers.0` → `model.layers.0`, `model` → `` (the HF root). The
    wrapper's own root (``) maps to None: it is dropped from module stacks."""
    if not prefix:
        return path
    if path == prefix:
        return ""
    if path.startswith(prefix + "."):
        return path[len(prefix) + 1 :]
    return None if path == "" else path


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _encode(value: Any) -> Any:
    """A JSON value for a non-tensor argument."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, torch.dtype):
        return _dtype_name(value)
    if isinstance(value, (torch.device, torch.layout, torch.memory_format)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, torch.SymInt | torch.SymFloat | torch.SymBool):
        return str(value)
    return repr(value)


def _outputs(val: Any) -> list[dict[str, Any]]:
    if isinstance(val, torch.Tensor):
        return [{"shape": [int(d) for d in val.shape], "dtype": _dtype_name(val.dtype)}]
    if isinstance(val, (list, tuple)):
        return [o for v in val for o in _outputs(v)]
    return []


def _arg_names(node: torch.fx.Node) -> list[str]:
    schema = getattr(node.target, "_schema", None)
    if schema is not None:
        return [a.name for a in schema.arguments]
    return [f"arg{i}" for i in range(len(node.args))]


def _contains_node(value: Any) -> bool:
    if isinstance(value, torch.fx.Node):
        return True
    if isinstance(value, (list, tuple)):
        return any(_contains_node(v) for v in value)
    return False


def _flat_nodes(value: Any) -> list[torch.fx.Node]:
    if isinstance(value, torch.fx.Node):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _flat_nodes(v)]
    return []


def _op_name(node: torch.fx.Node) -> str:
    if node.op != "call_function":
        return node.op
    target = node.target
    if isinstance(target, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
        return str(target)
    return getattr(target, "__name__", str(target))


def graph_from_exported(
    ep: torch.export.ExportedProgram, *, strip_prefix: str | None = None, **graph_attrs: Any
) -> nx.DiGraph:
    """Convert an exported program. `strip_prefix` removes a wrapper module's attribute name from
    module paths and parameter names, so prefill and decode graphs use the same HF names."""
    placeholder_info: dict[str, tuple[str, str]] = {}
    scalars: dict[str, float] = {}
    for spec in ep.graph_signature.input_specs:
        name = getattr(spec.arg, "name", None)
        if name is None:
            continue
        target = spec.target if spec.target is not None else name
        kind = _INPUT_KINDS.get(spec.kind, str(spec.kind))
        placeholder_info[name] = (kind, _strip(target, strip_prefix) or target)
        tensor = ep.state_dict.get(target, ep.constants.get(target))
        if (
            isinstance(tensor, torch.Tensor)
            and tensor.numel() == 1
            and tensor.device.type != "meta"
        ):
            scalars[name] = float(tensor)  # a scalar buffer's value (Gemma's embedding scale)

    g = nx.DiGraph()
    g.graph.update(graph_attrs)
    for index, node in enumerate(ep.graph.nodes):
        stack = []
        for path, cls in (node.meta.get("nn_module_stack") or {}).values():
            path = _strip(path, strip_prefix)
            if path is None:
                continue
            cls_name = cls if isinstance(cls, str) else cls.__qualname__
            stack.append([path, cls_name.rsplit(".", 1)[-1]])
        attrs: dict[str, Any] = {
            "index": index,
            "opcode": node.op,
            "op": _op_name(node),
            "inputs": [],
            "in_shapes": [],
            "outputs": _outputs(node.meta.get("val")),
            "constants": {},
            "module": stack[-1][0] if stack else "",
            "module_class": stack[-1][1] if stack else "",
            "module_stack": stack,
        }
        if node.op == "placeholder":
            kind, target = placeholder_info.get(node.name, ("user_input", node.name))
            attrs["kind"] = kind
            attrs["param"] = target
            if node.name in scalars:
                attrs["value"] = scalars[node.name]
        edges: dict[str, list[str]] = {}
        if node.op in ("call_function", "output"):
            names = _arg_names(node)
            bound = [
                (names[i] if i < len(names) else f"arg{i}", a) for i, a in enumerate(node.args)
            ]
            bound += list(node.kwargs.items())
            params = {}
            for name, value in bound:
                if _contains_node(value):
                    for src in _flat_nodes(value):
                        attrs["inputs"].append(src.name)
                        attrs["in_shapes"].append(
                            [o["shape"] for o in _outputs(src.meta.get("val"))][:1] or [None]
                        )
                        edges.setdefault(src.name, []).append(name)
                        info = placeholder_info.get(src.name)
                        if info and info[0] in ("parameter", "buffer"):
                            params[name] = info[1]
                else:
                    attrs["constants"][name] = _encode(value)
            attrs["in_shapes"] = [s[0] for s in attrs["in_shapes"]]
            if params:
                attrs["params"] = params
        g.add_node(node.name, **attrs)
        for src, arg_names in edges.items():
            g.add_edge(src, node.name, args=arg_names)
    return g
