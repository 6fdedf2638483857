"""What a model kind is traced as: its modes, each one exported program of the HF model. The trace
stage reads this; the block registry (ttgen.blocks.MODEL_KINDS) composes the same kinds' blocks."""

from __future__ import annotations

__all__ = ["KIND_MODES", "kind_of", "modes_of", "select_modes"]

KIND_MODES: dict[str, tuple[str, ...]] = {
    # a prompt at once, then one token per user against a KV cache
    "causal_lm": ("prefill", "decode"),
    # a batch of images, one forward
    "image_classifier": ("forward",),
}


def modes_of(kind: str) -> tuple[str, ...]:
    return KIND_MODES[kind]


def select_modes(kind: str, modes: tuple[str, ...] | None) -> tuple[str, ...]:
    """The modes to trace: all of the kind's (None), or the ones asked for, which must be its own."""
    from ttgen.errors import TtgenError

    own = modes_of(kind)
    wrong = [m for m in modes or () if m not in own]
    if wrong:
        raise TtgenError(f"--mode {wrong[0]}: {kind} models are traced in {', '.join(own)}")
    return own if modes is None else modes


def kind_of(model) -> str:
    """The model kind of an HF model: its registry family's, else by the head transformers built it
    with (an Auto class's causal LM or image classifier)."""
    from ttgen.models.registry import family_for_model_type

    family = family_for_model_type(model.config.model_type)
    if family is not None:
        return family.model_kind
    return (
        "image_classifier"
        if type(model).__name__.endswith("ForImageClassification")
        else "causal_lm"
    )
