"""The stages chained: spec + model → trace → matches (→ plan → emit). The CLI's commands call these."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ttgen.errors import TtgenError
from ttgen.match import MatchResult, match_graph
from ttgen.spec import Spec
from ttgen.trace.trace import ModelTrace

__all__ = ["Analysis", "analyze", "compress_paths", "preset_family"]


@dataclass(frozen=True)
class Analysis:
    spec: Spec
    trace: ModelTrace
    matches: dict[str, MatchResult]

    @property
    def covered(self) -> bool:
        return all(not r.uncovered for r in self.matches.values())


def analyze(spec: Spec, *, preset: str | None = None, checkpoint: str | Path | None = None, seq_len: int = 128,
            batch: int = 1, num_layers: int | None = None,
            step: Callable[[str], None] = lambda _m: None) -> Analysis:  # fmt: skip
    from ttgen.models.registry import build_model, get_family
    from ttgen.trace.trace import trace_model

    try:
        family = get_family(spec.family)
    except TtgenError as exc:
        raise TtgenError(f"{spec.path}: family: {exc}") from None
    if preset is not None:
        family = preset_family(family, preset)
    step(
        f"building {family.name} ({'checkpoint ' + str(checkpoint) if checkpoint else 'preset ' + (preset or family.default_preset)})"
    )
    model, source = build_model(family, preset=preset, checkpoint=checkpoint, num_layers=num_layers)
    from ttgen.models.kinds import kind_of, modes_of

    if kind_of(model) != spec.model_kind:
        raise TtgenError(
            f"{spec.path}: model: the spec is for model kind '{spec.model_kind}'; "
            f"{type(model).__name__} is of kind '{kind_of(model)}'"
        )
    trace = trace_model(
        model, source, modes=modes_of(spec.model_kind), batch=batch, seq_len=seq_len, step=step
    )
    step("matching rules")
    return Analysis(
        spec, trace, {mode: match_graph(spec, g, mode) for mode, g in trace.graphs.items()}
    )


def preset_family(family, preset: str):
    """The family whose presets hold `preset`: the spec's own, else the one other family of the same
    model kind that has it (a spec covers every family its rules match: `specs/llama.yaml --preset
    qwen3-8b`)."""
    from ttgen.models.registry import FAMILIES, load_presets

    if preset in load_presets(family):
        return family
    others = [
        f
        for f in FAMILIES.values()
        if f.model_kind == family.model_kind and preset in load_presets(f)
    ]
    if len(others) == 1:
        return others[0]
    known = sorted(
        {p for f in FAMILIES.values() if f.model_kind == family.model_kind for p in load_presets(f)}
    )
    raise TtgenError(
        f"--preset {preset}: no such preset for {family.model_kind} families (known: {', '.join(known)})"
    )


_LAYER = re.compile(r"(?<=\.)(\d+)(?=\.|$)")  # a module list index


def _ranges(values: list[int]) -> str:
    values = sorted(set(values))
    parts, start = [], values[0]
    for prev, cur in zip(values, values[1:] + [None], strict=True):
        if cur != prev + 1:
            parts.append(str(start) if start == prev else f"{start}..{prev}")
            start = cur
    return ",".join(parts)


def compress_paths(paths: list[str]) -> list[str]:
    """`model.layers.0.mlp`, `model.layers.1.mlp` → `model.layers.{0..1}.mlp` (any module list)."""
    groups: dict[str, list[int]] = {}
    for p in paths:
        m = _LAYER.search(p)
        key = _LAYER.sub("{}", p, count=1) if m else p
        groups.setdefault(key, []).extend([int(m.group(1))] if m else [])
    return [
        key.replace("{}", "{" + _ranges(idx) + "}") if idx else (key or "<root>")
        for key, idx in groups.items()
    ]
