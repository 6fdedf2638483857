"""EmitPlan → the values templates interpolate. Formatting and selection only: every number was
fixed by the planner."""

from __future__ import annotations

import pprint
from typing import Any

from ttgen.emit.exprs import compute_expr, dtype_expr, mem_expr, prog_expr
from ttgen.plan.types import EmitPlan, ModulePlan, OpPlan, decode_rows
from ttgen.spec.schema import TEMPLATES

__all__ = ["EmitError", "build_context"]

from ttgen.errors import TtgenError


class EmitError(TtgenError):
    """A plan the templates cannot render (a feature the templates do not implement yet)."""


def _op(module: ModulePlan, mode: str, name: str) -> OpPlan:
    for op in module.ops_for(mode):
        if op.name == name:
            return op
    raise EmitError(f"{module.rule}: the plan has no {mode} op '{name}'")


def _prefill(module: ModulePlan, name: str) -> list[OpPlan]:
    return [op for op in module.ops_for("prefill") if op.name == name]


def _prefill_rows(module: ModulePlan, *names: str) -> list[tuple[int, int]]:
    """(seq_len, rows per chunk) for the sequence lengths at which `names` (matmuls fed by one
    reshaped input) run in row chunks; one chunk size per sequence length."""
    chunks: dict[int, set[int]] = {}
    for name in names:
        for op in _prefill(module, name):
            chunks.setdefault(op.seq_len, set()).add(op.m_chunk or op.seq_len)
    out = []
    for seq, rows in sorted(chunks.items()):
        if len(rows) > 1:
            raise EmitError(f"{module.rule}: {'/'.join(names)} at seq_len {seq} are planned with "
                            f"different row chunks {sorted(rows)}; they share one reshaped input")  # fmt: skip
        (r,) = rows
        if r < seq:
            out.append((seq, r))
    return out


def _same(a: str, b: str, what: str) -> str:
    if a != b:
        raise EmitError(f"{what}: the template shares one config but the plan has two ({a} vs {b})")
    return a


def _weight(module: ModulePlan, name: str):
    return next(w for w in module.weights if w.name == name)


def build_context(plan: EmitPlan, *, hf_config: dict, config_class: str) -> dict[str, Any]:
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
    rope_type = scaling.get("rope_type", "default")
    if rope_type not in ("default", "llama3"):
        raise EmitError(
            f"rope_type '{rope_type}' is not supported by the rotary template (default, llama3)"
        )

    norm, emb, rope, attn, mlp, dec, lm = (
        mods[k]
        for k in ("rms_norm", "embedding", "rotary_setup", "attention", "mlp", "decoder", "lm_head")
    )
    norm_op = _op(norm, "decode", "norm")
    qkv_d, wo_d, sdpa_d = (
        _op(attn, "decode", "qkv"),
        _op(attn, "decode", "wo"),
        _op(attn, "decode", "sdpa"),
    )
    sdpa_p = _prefill(attn, "sdpa")
    residual_mem = _op(dec, "decode", "attn_residual").output.memory
    ff1_d, ff3_d, ff2_d = (
        _op(mlp, "decode", "ff1"),
        _op(mlp, "decode", "ff3"),
        _op(mlp, "decode", "ff2"),
    )
    ff1_p, ff3_p = _prefill(mlp, "ff1"), _prefill(mlp, "ff3")
    for a, b in zip(ff1_p, ff3_p, strict=True):
        _same(prog_expr(a.program), prog_expr(b.program), "prefill ff1/ff3 program config")
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
    lm_ops = [op for op in lm.ops_for("decode") if op.ttnn == "ttnn.linear"]
    for w, op in zip(lm.weights, lm_ops, strict=True):
        end = start + w.shape[-1]
        splits.append(
            {
                "start": start,
                "end": end,
                "memcfg": mem_expr(w.memory),
                "program": prog_expr(op.program),
            }
        )
        start = end
    embedding_source = _weight(emb, "embedding").sources[0]
    lm_source = lm.weights[0].sources[0]
    return {
        "family": plan.family,
        "hf_class": plan.hf_class,
        "config_class": config_class,
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
        "norm": {
            "instances": ", ".join(
                sorted(
                    {
                        p.rsplit(".", 1)[-1] if p.startswith("model.layers.") else p
                        for p in norm.instances
                    }
                )
            ),
            "hf_class": "RMSNorm",
            "compute": norm_op.compute.name,
            "decode_program": prog_expr(norm_op.program),
            "weight_dtype": dtype_expr(_weight(norm, "norm").dtype),
        },
        "emb": {"weight_dtype": dtype_expr(_weight(emb, "embedding").dtype)},
        "rope": {
            "rope_type": rope_type,
            "theta": f.rope_theta,
            "factor": scaling.get("factor"),
            "low_freq_factor": scaling.get("low_freq_factor"),
            "high_freq_factor": scaling.get("high_freq_factor"),
            "original_max_position_embeddings": scaling.get("original_max_position_embeddings"),
            "trans_decode_memcfg": mem_expr(_weight(rope, "trans_mat_decode").memory),
            "rot_decode_memcfg": mem_expr(_op(rope, "decode", "cos_shard").output.memory),
        },
        "attn": {
            "qkv_compute": qkv_d.compute.name,
            "wo_compute": wo_d.compute.name,
            "sdpa_decode_compute": sdpa_d.compute.name,
            "sdpa_prefill_compute": sdpa_p[0].compute.name,
            "wqkv_memcfg": mem_expr(_weight(attn, "wqkv").memory),
            "wo_memcfg": mem_expr(_weight(attn, "wo").memory),
            "wqkv_dtype": dtype_expr(_weight(attn, "wqkv").dtype),
            "wo_dtype": dtype_expr(_weight(attn, "wo").dtype),
            "qkv_decode_program": prog_expr(qkv_d.program),
            "sdpa_decode_program": prog_expr(sdpa_d.program),
            "heads_decode_memcfg": mem_expr(_op(attn, "decode", "heads_to_l1").output.memory),
            "wo_decode_program": prog_expr(wo_d.program),
            # ttnn.to_memory_config returns its input when the config already matches: the
            # generated code then passes the tensor on instead of "copying" and deallocating it
            "wo_out_is_residual": wo_d.output.memory == residual_mem,
            "qkv_prefill_programs": [
                (op.seq_len, prog_expr(op.program)) for op in _prefill(attn, "qkv")
            ],
            "sdpa_prefill_programs": [(op.seq_len, prog_expr(op.program)) for op in sdpa_p],
            "wo_prefill_programs": [
                (op.seq_len, prog_expr(op.program)) for op in _prefill(attn, "wo")
            ],
            "qkv_prefill_rows": _prefill_rows(attn, "qkv"),
            "wo_prefill_rows": _prefill_rows(attn, "wo"),
        },
        "mlp": {
            "ff1_compute": _same(
                ff1_d.compute.name, ff3_d.compute.name, "decode ff1/ff3 compute config"
            ),
            "ff2_compute": ff2_d.compute.name,
            "w1_memcfg": mem_expr(_weight(mlp, "w1").memory),
            "w3_memcfg": mem_expr(_weight(mlp, "w3").memory),
            "w2_memcfg": mem_expr(_weight(mlp, "w2").memory),
            "w1_dtype": dtype_expr(_weight(mlp, "w1").dtype),
            "w3_dtype": dtype_expr(_weight(mlp, "w3").dtype),
            "w2_dtype": dtype_expr(_weight(mlp, "w2").dtype),
            "ff1_decode_program": _same(
                prog_expr(ff1_d.program), prog_expr(ff3_d.program), "decode ff1/ff3 program config"
            ),
            "ff2_input_memcfg": mem_expr(_op(mlp, "decode", "to_ff2_input").output.memory),
            "ff2_decode_program": prog_expr(ff2_d.program),
            "gate_out_is_ff2_input": _op(mlp, "decode", "gate_mul").output.memory
            == _op(mlp, "decode", "to_ff2_input").output.memory,
            "ff2_out_is_residual": ff2_d.output.memory == residual_mem,
            "ff1_prefill_programs": [(op.seq_len, prog_expr(op.program)) for op in ff1_p],
            "ff2_prefill_programs": [
                (op.seq_len, prog_expr(op.program)) for op in _prefill(mlp, "ff2")
            ],
            "prefill_rows": _prefill_rows(mlp, "ff1", "ff3", "ff2"),
        },
        "lm": {
            "compute": lm_ops[0].compute.name,
            "splits": splits,
            "weight_dtype": dtype_expr(lm.weights[0].dtype),
            "logits_dtype": dtype_expr(lm_ops[0].output.dtype),
        },
        "embedding_source": embedding_source,
        "lm_head_source": lm_source,
        "layer_overrides": sorted((layer, sorted(d)) for layer, d in overrides.items()),
        "tests": dict(plan.tests),
        "hf_config": pprint.pformat(hf_config, sort_dicts=True, width=100),
    }
