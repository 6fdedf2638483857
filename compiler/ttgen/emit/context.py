"""EmitPlan → the values templates interpolate: per module the constants and method bodies printed
from its program (ttgen.emit.printer), plus the model-level figures the skeletons name. Formatting
and selection only: every number was fixed by the planner."""

from __future__ import annotations

import json
import pprint
import re
from typing import Any

from ttgen.emit.exprs import compute_expr, dtype_expr, mem_expr
from ttgen.plan.types import EmitPlan, ModulePlan, decode_rows
from ttgen.spec.schema import TEMPLATES

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


def _module_code(module: ModulePlan) -> dict[str, Any]:
    """What a module skeleton interpolates: its constants, the model_config names its methods use,
    and per mode the method's parameters and body, printed from the program."""
    from ttgen.emit.printer import print_module

    printed = print_module(module)
    return {
        "constants": "\n".join(f"{name} = {expr}" for name, expr in printed.constants),
        "imports": sorted(printed.shared),
        "params": {m: ", ".join(s.params) for m, s in printed.signatures.items()},
        "body": printed.methods,
        "memcfg": {w.name: printed.weight_memcfg(w.name, w.memory) for w in module.weights},
        "dtype": {w.name: dtype_expr(w.dtype) for w in module.weights},
        # HF parameter paths relative to the module instance (from the rule's captures)
        "sources": {w.name: [_param_path(p) for p in w.sources] for w in module.weights},
    }


def build_context(plan: EmitPlan) -> dict[str, Any]:
    f = plan.facts
    mods = {m.template: m for m in plan.modules}
    for needed in (t for t in TEMPLATES if t != "none"):
        if needed not in mods:
            raise EmitError(f"the plan has no '{needed}' module")
    computes: dict[str, str] = {}
    for m in plan.modules:
        for _, ops in m.ops:
            for op in ops:
                if op.compute is not None:
                    computes[op.compute.name] = compute_expr(op.compute)
    scaling = dict(f.rope_scaling)
    rope_type = scaling.get("rope_type", "default")  # one of ttgen.plan.lower.ROPE_TYPES

    norm, emb, rope, attn, mlp, dec, lm = (
        mods[k]
        for k in ("rms_norm", "embedding", "rotary_setup", "attention", "mlp", "decoder", "lm_head")
    )
    overrides: dict[int, list[tuple[str, str]]] = {}
    for m in plan.modules:
        for w in m.weights:
            for layer, dtype in w.dtype_overrides:
                if w.name not in ("w1", "w2", "w3"):
                    raise EmitError(
                        f"per-layer dtype overrides of '{w.name}' are not emitted yet (only w1, w2, w3)"
                    )
                overrides.setdefault(layer, []).append((w.name, dtype_expr(dtype)))
    splits, start = [], 0
    for w in lm.weights:
        splits.append({"name": w.name, "start": start, "end": start + w.shape[-1]})
        start += w.shape[-1]
    residual_mem = next(
        op for op in dec.ops_for("decode") if op.name == "attn_residual"
    ).output.memory
    return {
        "family": plan.family,
        "hf_class": plan.hf_class,
        "config_class": plan.config_class,
        "device": plan.device,
        "arch": plan.arch,
        "precision": plan.precision,
        "source": plan.source,
        "spec_path": plan.spec_path,
        "f": f,
        "sliding_window": f.sliding_window,
        "max_batch": plan.max_batch,
        "decode_batch": decode_rows(plan.max_batch),
        "max_seq_len": plan.max_seq_len,
        "prefill_seq_lens": plan.prefill_seq_lens,
        "paged": plan.kv_cache.kind == "paged",
        "block_size": plan.kv_cache.block_size,
        "kv_shape": plan.kv_cache.shape,
        "kv_dtype": dtype_expr(plan.kv_cache.dtype),
        "residual_memcfg": mem_expr(residual_mem),
        "compute_configs": sorted(computes.items()),
        "norm": _module_code(norm)
        | {
            "instances": ", ".join(
                sorted(
                    {
                        p.rsplit(".", 1)[-1] if p.startswith("model.layers.") else p
                        for p in norm.instances
                    }
                )
            ),
        },  # fmt: skip
        "emb": _module_code(emb),
        "rope": _module_code(rope)
        | {
            "rope_type": rope_type,
            "theta": f.rope_theta,
            "factor": scaling.get("factor"),
            "low_freq_factor": scaling.get("low_freq_factor"),
            "high_freq_factor": scaling.get("high_freq_factor"),
            "original_max_position_embeddings": scaling.get("original_max_position_embeddings"),
        },
        "attn": _module_code(attn),
        "mlp": _module_code(mlp),
        "dec": _module_code(dec),
        "lm": _module_code(lm) | {"splits": splits},
        "embedding_source": _param_path(emb.weights[0].sources[0]),
        "qkv_bias": any(w.name == "bqkv_prefill" for w in attn.weights),
        "lm_head_source": _param_path(lm.weights[0].sources[0]),
        "layer_overrides": sorted((layer, sorted(d)) for layer, d in overrides.items()),
        "tests": dict(plan.tests),
        "hf_config": pprint.pformat(json.loads(plan.hf_config_json), sort_dicts=True, width=100),
        "emitted_from_checkpoint": repr(None if plan.checkpoint is None else str(plan.checkpoint)),
    }
