"""EmitPlan → the values templates interpolate: per module the constants and method bodies printed
from its program (ttgen.emit.printer), plus the model-level figures the skeletons name. Formatting
and selection only: every number was fixed by the planner."""

from __future__ import annotations

import json
import pprint
import re
from typing import Any

from ttgen.emit.exprs import compute_expr, dtype_expr, layout_expr, mem_expr, text, weight_expr
from ttgen.plan.types import EmitPlan, ModulePlan, decode_rows

__all__ = ["EmitError", "build_context"]

from ttgen.errors import TtgenError


class EmitError(TtgenError):
    """A plan the templates cannot render (a feature the templates do not implement yet)."""


_PARAM_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


def _param_path(path: str) -> str:
    """An HF parameter path as it is spelled inside the generated code's string literals."""
    if not _PARAM_PATH.match(path):
        raise EmitError(f"parameter path {path!r} is not a dotted Python name; refusing to emit it")
    return path


def _paths(plan: EmitPlan) -> dict[str, str]:
    """The HF module paths the model and its tests address, checked to be dotted names; a layer's
    path is `{layer_prefix}.{i}` (every layer path must have that form)."""
    lay = plan.layout
    prefix = lay.layers[0].rsplit(".", 1)[0] if lay.layers else ""
    if [f"{prefix}.{i}" for i in range(len(lay.layers))] != list(lay.layers):
        raise EmitError(
            f"decoder layers {lay.layers[:3]}... are not numbered {prefix}.0, {prefix}.1, ..."
        )
    out = {"layer_prefix": prefix, "embedding": lay.embedding, "rotary_setup": lay.rotary_setup,
           "final_norm": lay.final_norm, "lm_head": lay.lm_head, **dict(lay.layer_children)}  # fmt: skip
    return {k: _param_path(v) for k, v in out.items()}


def _module_code(module: ModulePlan) -> dict[str, Any]:
    """What a module skeleton interpolates: its constants, the model_config names its methods use,
    and per mode the method's parameters and body, printed from the program."""
    from ttgen.emit.printer import print_module

    printed = print_module(module)
    # a module at the model's root (a classifier head) reads its parameters by their own names
    root = module.instances == ("",)

    def key(path: str) -> str:
        return (
            f'state_dict["{_param_path(path)}"]'
            if root
            else f'state_dict[f"{{prefix}}.{_param_path(path)}"]'
        )

    return {
        "constants": "\n".join(f"{name} = {expr}" for name, expr in printed.constants),
        "imports": sorted(printed.shared),
        "params": {m: ", ".join(s.params) for m, s in printed.signatures.items()},
        "body": printed.methods,
        "memcfg": {w.name: printed.weight_memcfg(w.name, w.memory) for w in module.weights},
        "dtype": {w.name: dtype_expr(w.dtype) for w in module.weights},
        # the HF module paths it maps, with layer numbers as N, and one of them
        "where": ", ".join(
            sorted(
                {
                    ".".join("N" if c.isdigit() else c for c in _param_path(p).split("."))
                    for p in module.instances
                    if p
                }
            )
        )
        or "<root>",
        "example": _param_path(module.instances[0])
        if module.instances and module.instances[0]
        else "",
        # HF parameter paths relative to the module instance (from the rule's captures)
        "sources": {w.name: [_param_path(p) for p in w.sources] for w in module.weights},
        # each weight's transform as torch code over the module's state dict (prefix: its HF path)
        # or over the one tensor a loader is given (`weight`)
        "expr": {
            w.name: weight_expr(w.transform, lambda i, w=w: key(w.sources[i]))
            for w in module.weights
            if w.transform[0] != "computed"
        },
        "layout": {w.name: layout_expr(w.layout) for w in module.weights},
        # every weight in the plan's order: what a generic loader iterates over
        "weights": [
            {
                "name": w.name,
                "shape": list(w.shape),
                "sources": [_param_path(p) for p in w.sources],
                "computed": w.transform[1] if w.transform[0] == "computed" else None,
            }
            for w in module.weights
        ],
        "expr_of_weight": {
            w.name: weight_expr(w.transform, lambda i: "weight")
            for w in module.weights
            if w.transform[0] != "computed"
        },
    }


def build_context(plan: EmitPlan) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(the model-wide values every template sees, per block module its own `block` values)."""
    from ttgen.blocks import MODEL_KINDS, get_block

    kind = MODEL_KINDS[plan.model_kind]
    mods = {get_block(m.template).slot: m for m in plan.modules if get_block(m.template).module}
    for role in kind.roles:
        if role not in mods:
            raise EmitError(f"the plan has no '{role}' module, which a {kind.name} model needs")
    blocks = {}
    for m in plan.modules:
        block = get_block(m.template)
        if block.module:
            blocks[m.rule] = _module_code(m) | (block.context(m, plan) if block.context else {})
    computes: dict[str, str] = {}
    for m in plan.modules:
        for _, ops in m.ops:
            for op in ops:
                if op.compute is not None:
                    computes[op.compute.name] = compute_expr(op.compute)
    common = {
        "family": plan.family,
        "hf_class": plan.hf_class,
        "config_class": plan.config_class,
        "device": plan.device,
        "arch": plan.arch,
        "precision": plan.precision,
        "source": text(plan.source),  # a preset's name, or a checkpoint folder's: free text
        "spec_path": text(plan.spec_path),
        "f": plan.facts,
        "max_batch": plan.max_batch,
        "compute_configs": sorted(computes.items()),
        "tests": dict(plan.tests),
        "hf_config": pprint.pformat(json.loads(plan.hf_config_json), sort_dicts=True, width=100),
        "emitted_from_checkpoint": repr(None if plan.checkpoint is None else str(plan.checkpoint)),
    }
    return common | kind.context(plan, mods), blocks


# a decoder layer's roles → the class each is built from, and its local name in the model's loader
_LAYER_CLASSES = {"attention": ("Attention", "attention"), "feed_forward": ("MLP", "mlp")}


def _layer_structure(plan: EmitPlan) -> dict[str, Any]:
    """A decoder layer's blocks as the layout found them, in graph order: the TransformerBlock's
    parameters, its norms, and HF's layer as a formula for the docstring."""
    from ttgen.blocks.causal_lm import SUBLAYERS

    children = dict(plan.layout.layer_children)
    roles = list(children)
    norms = [r for r in roles if r not in _LAYER_CLASSES]
    exprs = []
    for _, sub_roles in SUBLAYERS:
        expr = "x" if not exprs else "h"
        for role in (r for r in sub_roles if r in children):
            expr = f"{children[role]}({expr})"
        exprs.append(expr)
    pre = any(sub[0] in children for _, sub in SUBLAYERS)
    post = any(sub[2] in children for _, sub in SUBLAYERS)
    return {
        "layer_roles": [(r, _LAYER_CLASSES.get(r, ("RMSNorm", r))[0]) for r in roles],
        "layer_locals": [_LAYER_CLASSES.get(r, ("RMSNorm", r))[1] for r in roles],
        "layer_norms": norms,
        "layer_formula": f"h = x + {exprs[0]}; out = h + {exprs[1]}",
        "layer_kind": {
            (True, False): "pre-norm",
            (False, True): "post-norm",
            (True, True): "pre- and post-norm",
            (False, False): "norm-free",
        }[pre, post],  # fmt: skip
    }


def causal_lm_context(plan: EmitPlan, mods: dict[str, ModulePlan]) -> dict[str, Any]:
    """The causal-LM templates' model-wide values: decode batch, prefill lengths, KV cache, paths."""
    f = plan.facts
    overrides: dict[int, list[tuple[str, str]]] = {}
    for m in plan.modules:
        for w in m.weights:
            for layer, dtype in w.dtype_overrides:  # the MLP's only (checked by the planner)
                overrides.setdefault(layer, []).append((w.name, dtype_expr(dtype)))
    emb, attn, lm = mods["embedding"], mods["attention"], mods["lm_head"]
    return {
        "sliding_window": f.sliding_window,
        "decode_batch": decode_rows(plan.max_batch),
        "max_seq_len": plan.max_seq_len,
        "prefill_seq_lens": plan.prefill_seq_lens,
        "paged": plan.kv_cache.kind == "paged",
        "block_size": plan.kv_cache.block_size,
        "kv_shape": plan.kv_cache.shape,
        "kv_dtype": dtype_expr(plan.kv_cache.dtype),
        "residual_memcfg": mem_expr(plan.residual_memory),
        "paths": _paths(plan),
        **_layer_structure(plan),
        "norm_weight": _param_path(mods["rms_norm"].weights[0].sources[0]),
        "embedding_source": _param_path(emb.weights[0].sources[0]),
        "qkv_bias": any(w.name == "bqkv_prefill" for w in attn.weights),
        "qk_norm": any(w.name == "q_norm" for w in attn.weights),
        "lm_head_source": _param_path(lm.weights[0].sources[0]),
        "layer_overrides": sorted((layer, sorted(d)) for layer, d in overrides.items()),
    }
