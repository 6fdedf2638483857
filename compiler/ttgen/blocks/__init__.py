"""Block kinds: one unit each — its lowering (captures → weights and per-mode programs), its module
skeleton, the file it becomes — and the model kinds that compose them.

A spec rule's `template:` names a block kind. Adding one is a `register_block(BlockKind(...))` call
next to its lowering and skeleton (here for the built-in kinds, or in any module imported before the
spec is loaded): nothing in the planner or the emitter lists block kinds.

The lowering is `lower(lowering, rule, matches, decode_matches) -> (weights, {mode: (Signature,
ops)})`, built with the toolkit of `ttgen.plan.lower.Lowering` (matmul configs, memory configs,
the program builder). The skeleton is a Jinja template that interpolates `block` (its constants,
imports, per-mode parameters and bodies printed from the program, weight memory configs, dtypes and
sources) and the model-wide values (`f`, `paged`, ...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ttgen.errors import TtgenError
from ttgen.models.kinds import modes_of

__all__ = ["BLOCKS", "MODEL_KINDS", "BlockKind", "ModelKind", "get_block", "register_block"]


@dataclass(frozen=True)
class BlockKind:
    name: str  # the spec's `template:` value
    lower: Callable = field(repr=False)
    skeleton: str | Path | None = None  # a template under ttgen/blocks/, or a file path; None: glue
    module: str | None = None  # the generated file (e.g. "mlp.py"); None: nothing emitted
    role: str | None = None  # the slot it fills in its model kind (default: its name)
    # (ModulePlan, EmitPlan) → extra skeleton values
    context: Callable | None = field(default=None, repr=False)
    # (its matches, parameter shapes) → its typed facts record, from its own captures only
    facts: Callable | None = field(default=None, repr=False)

    @property
    def slot(self) -> str:
        return self.role or self.name


@dataclass(frozen=True)
class ModelKind:
    """How blocks compose into a model: the roles it needs, its modes, its model-level files."""

    name: str
    roles: tuple[str, ...]
    modes: tuple[str, ...]
    files: tuple[tuple[str, str | None], ...]  # output file → template under ttgen/templates/
    layout: Callable = field(repr=False)  # (first mode's MatchResult, graph) → its layout record
    facts: Callable = field(
        repr=False
    )  # (facts records by role, HF config, mode) → its facts record
    # (spec, device profile, facts, precision preset, PlanOptions) → the lowering toolkit its blocks use
    lowering: Callable = field(repr=False, default=None)
    # (lowering, spec, precision preset) → the EmitPlan fields only this kind has (KV cache, ...)
    plan_fields: Callable = field(repr=False, default=None)
    # (EmitPlan, modules by role) → the model-wide values its templates interpolate
    context: Callable = field(repr=False, default=None)


BLOCKS: dict[str, BlockKind] = {}


def register_block(kind: BlockKind) -> BlockKind:
    if kind.name in BLOCKS and BLOCKS[kind.name] != kind:
        raise TtgenError(f"block kind '{kind.name}' is already registered")
    if (kind.skeleton is None) != (kind.module is None):
        raise TtgenError(f"block kind '{kind.name}': a skeleton and a module file go together")
    BLOCKS[kind.name] = kind
    return kind


def get_block(name: str) -> BlockKind:
    try:
        return BLOCKS[name]
    except KeyError:
        raise TtgenError(
            f"unknown block kind '{name}' (known: {', '.join(sorted(BLOCKS))})"
        ) from None


def _causal_lm_layout(result, graph):
    from ttgen.blocks.causal_lm import causal_lm_layout

    return causal_lm_layout(result, graph)


def _causal_lm_facts(records, config, mode):
    from ttgen.blocks.causal_lm import causal_lm_facts

    return causal_lm_facts(records, config, mode)


def _causal_lm_lowering(*args):
    from ttgen.blocks.causal_lm import causal_lm_lowering

    return causal_lm_lowering(*args)


def _causal_lm_plan_fields(*args):
    from ttgen.blocks.causal_lm import causal_lm_plan_fields

    return causal_lm_plan_fields(*args)


def _causal_lm_context(*args):
    from ttgen.emit.context import causal_lm_context

    return causal_lm_context(*args)


CAUSAL_LM = ModelKind(
    "causal_lm",
    roles=("embedding", "rotary_setup", "rms_norm", "attention", "mlp", "decoder", "lm_head"),
    modes=modes_of("causal_lm"),
    files=(
        ("__init__.py", "init.py.j2"),
        ("model_config.py", "model_config.py.j2"),
        ("weights.py", "weights.py.j2"),
        ("model.py", "model.py.j2"),
        ("generator.py", "generator.py.j2"),
        ("tests/__init__.py", None),
        ("tests/conftest.py", "tests/conftest.py.j2"),
        ("tests/test_modules.py", "tests/test_modules.py.j2"),
        ("tests/test_model.py", "tests/test_model.py.j2"),
    ),
    layout=_causal_lm_layout,
    facts=_causal_lm_facts,
    lowering=_causal_lm_lowering,
    plan_fields=_causal_lm_plan_fields,
    context=_causal_lm_context,
)


def _classifier(name):
    def hook(*args):
        from ttgen.blocks import image_classifier

        return getattr(image_classifier, name)(*args)

    return hook


IMAGE_CLASSIFIER = ModelKind(
    "image_classifier",
    roles=(
        "vit_embeddings",
        "layer_norm",
        "vit_attention",
        "gelu_mlp",
        "encoder_layer",
        "classifier",
    ),
    modes=modes_of("image_classifier"),
    files=(
        ("__init__.py", "init.py.j2"),
        ("model_config.py", "image_classifier/model_config.py.j2"),
        ("weights.py", "image_classifier/weights.py.j2"),
        ("model.py", "image_classifier/model.py.j2"),
        ("runner.py", "image_classifier/runner.py.j2"),
        ("tests/__init__.py", None),
        ("tests/conftest.py", "image_classifier/tests/conftest.py.j2"),
        ("tests/test_modules.py", "image_classifier/tests/test_modules.py.j2"),
        ("tests/test_model.py", "image_classifier/tests/test_model.py.j2"),
    ),
    layout=_classifier("classifier_layout"),
    facts=_classifier("classifier_facts"),
    lowering=_classifier("classifier_lowering"),
    plan_fields=_classifier("classifier_plan_fields"),
    context=_classifier("classifier_context"),
)
MODEL_KINDS = {CAUSAL_LM.name: CAUSAL_LM, IMAGE_CLASSIFIER.name: IMAGE_CLASSIFIER}


def _glue(lowering, rule, matches, decode_matches):
    """Positions and masks that the TTNN ops compute themselves: no weights, no program."""
    return [], {}


@dataclass(frozen=True)
class GlueFacts:
    sliding_window: int | None  # the window of a sliding-window mask (Mistral), if one matched
    embedding_multiplier: float = 1.0  # the embeddings scaled by a constant (Granite)
    logits_scaling: float = 1.0  # the logits divided by a constant (Granite)


def _glue_facts(matches, shapes) -> GlueFacts:
    from ttgen.plan.facts import only

    def one(capture, what, default):
        values = {m.get(capture) for m in matches if m.get(capture) is not None}
        return only(values, what) if values else default

    return GlueFacts(one("sliding_window", "sliding window", None),
                     float(one("embedding_multiplier", "embedding multiplier", 1.0)),
                     float(one("logits_scaling", "logits scaling", 1.0)))  # fmt: skip


register_block(BlockKind("none", _glue, facts=_glue_facts))

# the built-in block kinds register themselves
from ttgen.blocks import (  # noqa: E402, F401
    attention,
    decoder,
    embedding,
    lm_head,
    mlp,
    rms_norm,
    rotary,
    vit,
)
