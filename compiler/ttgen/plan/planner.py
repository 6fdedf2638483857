"""Matches + spec + device profile → EmitPlan, validated."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ttgen.blocks import MODEL_KINDS, get_block
from ttgen.devices import get_device
from ttgen.match import capture_reads
from ttgen.plan.captures import check_captures
from ttgen.plan.check import validate_plan
from ttgen.plan.facts import PlanError, model_facts
from ttgen.plan.lower import BASELINE_K_GRID_TARGET, BASELINE_PREFILL_GRID, Lowering
from ttgen.plan.types import EmitPlan, ModulePlan, WeightPlan

__all__ = ["PlanOptions", "make_plan", "prefill_lengths"]


@dataclass(frozen=True)
class PlanOptions:
    """Choices the formulas leave open; the defaults are tt-transformers' (the baseline)."""

    prefill_grid: tuple[int, int] = BASELINE_PREFILL_GRID
    k_grid_target: int = BASELINE_K_GRID_TARGET

    def describe(self) -> str:
        return f"prefill grid {self.prefill_grid[0]}x{self.prefill_grid[1]}, decode activations on ~{self.k_grid_target} cores"


def prefill_lengths(max_seq_len: int) -> tuple[int, ...]:
    """Planned prefill lengths: 128, 256, ... up to max_seq_len (prompts pad up to the next one)."""
    out, s = [], 128
    while s < max_seq_len:
        out.append(s)
        s *= 2
    out.append(max_seq_len)
    return tuple(out)


def _weight_bytes(w: WeightPlan, instances: int) -> int:
    if not w.per_layer:
        return w.bytes_per_instance()
    overridden = dict(w.dtype_overrides)
    base = w.bytes_per_instance()
    return sum(
        w.bytes_per_instance(overridden[i]) if i in overridden else base for i in range(instances)
    )


def make_plan(analysis, *, device: str | None = None, precision: str | None = None,
              max_batch: int | None = None, max_seq_len: int | None = None,
              options: PlanOptions | None = None) -> EmitPlan:  # fmt: skip
    """Plan every op of every module in both modes for the target (overrides given as arguments
    replace the spec's target and precision)."""
    import dataclasses

    spec = analysis.spec
    if spec.model_kind not in MODEL_KINDS:
        raise PlanError(
            f"{spec.path}: model: '{spec.model_kind}' models check (ttgen check) but are not planned yet: "
            "their block kinds do not exist"
        )
    target = spec.target
    if max_batch is not None or max_seq_len is not None:
        target = dataclasses.replace(
            target,
            max_batch=max_batch or target.max_batch,
            max_seq_len=max_seq_len or target.max_seq_len,
        )
        spec = dataclasses.replace(spec, target=target)
    try:
        profile = get_device(device or target.device)
    except KeyError as exc:
        raise PlanError(str(exc.args[0])) from None
    if precision is not None and precision not in {p.name for p in spec.precision_presets}:
        raise PlanError(
            f"unknown precision preset '{precision}' (known: {', '.join(p.name for p in spec.precision_presets)})"
        )
    preset = spec.precision_preset(precision)
    kind = MODEL_KINDS[spec.model_kind]
    for mode, result in analysis.matches.items():
        if result.uncovered:
            raise PlanError(
                f"{mode} graph has {len(result.uncovered)} uncovered node(s): run `ttgen check {spec.path}`"
            )
    results = [analysis.matches[m] for m in kind.modes]
    primary = results[0]
    g = analysis.trace.graphs[kind.modes[0]]
    with capture_reads() as reads:
        facts = model_facts(primary, g, analysis.trace.meta["config"], spec.model_kind)
    options = options or PlanOptions()
    lowering = kind.lowering(spec, profile, facts, preset, options)
    lowering.graphs = analysis.trace.graphs
    layout = lowering.layout = kind.layout(primary, g)

    for ov in spec.overrides:
        if ov.fidelity:
            raise PlanError(
                f"{ov.loc}: overrides.fidelity: per-layer compute configs are not supported yet"
            )
        bad = [i for i in ov.layers if i >= facts.n_layers]
        if bad:
            raise PlanError(
                f"{ov.loc}: overrides.layers: layer(s) {bad} do not exist ({facts.n_layers} layers)"
            )

    with capture_reads() as lowered:
        modules = _lower_rules(spec, lowering, results)
    for ov in spec.overrides:  # the model loads per-layer dtypes into the MLP's weights only
        for group, _ in ov.weights:
            owners = [m for m in modules for w in m.weights if w.name == group and w.per_layer]
            if not owners:
                known = sorted({w.name for m in modules for w in m.weights if w.per_layer})
                raise PlanError(f"{ov.loc}: overrides.weights.{group}: no per-layer weight of that name "
                                f"(known: {', '.join(known)})")  # fmt: skip
            if any(get_block(m.template).slot != "mlp" for m in owners):
                raise PlanError(f"{ov.loc}: overrides.weights.{group}: per-layer dtypes are supported "
                                "for the MLP's weights (w1, w3, w2) only")  # fmt: skip
    check_captures(spec, analysis.matches, analysis.trace.graphs, reads | lowered)

    weight_bytes = sum(_weight_bytes(w, len(m.instances)) for m in modules for w in m.weights)
    plan = EmitPlan(
        spec_path=spec.path, spec_sha256=spec.sha256, family=spec.family,
        source=analysis.trace.meta["checkpoint"] or analysis.trace.meta["preset"],
        checkpoint=analysis.trace.meta["checkpoint"],
        config_class=analysis.trace.meta["config_class"],
        hf_config_json=json.dumps(analysis.trace.meta["config"], sort_keys=True), hf_class=analysis.trace.meta["hf_class"],
        device=profile.name, arch=profile.arch, compute_grid=profile.compute_grid, dram_banks=profile.dram_banks,
        max_batch=target.max_batch, max_seq_len=target.max_seq_len, precision=preset.name,
        model_kind=spec.model_kind, layout=layout, facts=facts,
        modules=tuple(modules), dram_weight_bytes=weight_bytes,
        dram_capacity_bytes=profile.dram_banks * profile.dram_bank_size,
        tests=tuple(sorted(dataclasses.asdict(spec.tests).items())),
        **kind.plan_fields(lowering, spec, preset),
    )  # fmt: skip
    validate_plan(plan, profile)
    return plan


def _lower_rules(spec, lowering: Lowering, results) -> list[ModulePlan]:
    """Each rule's module, lowered from its matches in every mode (the model kind's first mode
    first); every mode must match the same modules."""
    modules = []
    for rule in spec.rules:
        per_mode = [[m for m in r.matches if m.rule == rule.name] for r in results]
        pre = per_mode[0]
        for r, ms in zip(results[1:], per_mode[1:], strict=True):
            if sorted(m.module for m in pre) != sorted(m.module for m in ms):
                raise PlanError(
                    f"{rule.name}: {results[0].mode} and {r.mode} match different modules"
                )
        if not pre:
            continue
        weights, ops, signatures = lowering.lower(rule, pre, *per_mode[1:])
        weights = tuple(_with_overrides(w, spec) for w in weights)
        modules.append(ModulePlan(rule.name, rule.template, tuple(sorted(m.module for m in pre)),
                                  weights, ops, signatures))  # fmt: skip
    return modules


def _with_overrides(w: WeightPlan, spec) -> WeightPlan:
    import dataclasses

    changes = tuple(
        sorted(
            (layer, dtype)
            for ov in spec.overrides
            for group, dtype in ov.weights
            if group == w.name
            for layer in ov.layers
        )
    )
    return dataclasses.replace(w, dtype_overrides=changes) if changes and w.per_layer else w
