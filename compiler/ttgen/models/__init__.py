"""Model registry: model family name → Hugging Face class, presets (HF configs as data), checkpoints."""

from ttgen.models.registry import (
    FAMILIES,
    ModelFamily,
    ModelSource,
    build_model,
    get_family,
    load_presets,
)

__all__ = ["FAMILIES", "ModelFamily", "ModelSource", "build_model", "get_family", "load_presets"]
