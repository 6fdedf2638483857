"""The model registry.

A family is data: the transformers classes it maps to, the `model_type` values a checkpoint may carry,
and a presets file of Hugging Face `config.json` dicts. Adding a family (qwen2, mistral, ...) is one
`ModelFamily` entry plus its presets file; no other code path changes.

Presets are built with their parameters on the meta device, so an 8B or 70B config costs no memory
and needs no weights; their buffers (rotary tables, scales) are real.
"""

from __future__ import annotations

import copy
import functools
import importlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ttgen.errors import TtgenError

__all__ = [
    "FAMILIES", "ModelFamily", "ModelSource", "build_model", "family_for_model_type", "get_family",
    "load_presets",
]  # fmt: skip


@dataclass(frozen=True)
class ModelFamily:
    name: str
    causal_lm_class: str  # attribute of `transformers`
    config_class: str  # attribute of `transformers`
    model_types: tuple[str, ...]  # accepted `model_type` values in a checkpoint's config.json
    presets_file: str  # file under ttgen/models/presets/
    default_preset: str = "tiny"
    model_kind: str = "causal_lm"  # how its blocks compose (ttgen.blocks.MODEL_KINDS): its modes

    def hf_classes(self) -> tuple[type, type]:
        transformers = importlib.import_module("transformers")
        return getattr(transformers, self.causal_lm_class), getattr(transformers, self.config_class)


FAMILIES: dict[str, ModelFamily] = {
    f.name: f
    for f in (
        ModelFamily("llama", "LlamaForCausalLM", "LlamaConfig", ("llama",), "llama.yaml"),
        ModelFamily("qwen2", "Qwen2ForCausalLM", "Qwen2Config", ("qwen2",), "qwen2.yaml"),
        ModelFamily("mistral", "MistralForCausalLM", "MistralConfig", ("mistral",), "mistral.yaml"),
        ModelFamily("qwen3", "Qwen3ForCausalLM", "Qwen3Config", ("qwen3",), "qwen3.yaml"),
        ModelFamily("phi3", "Phi3ForCausalLM", "Phi3Config", ("phi3",), "phi3.yaml"),
        ModelFamily("granite", "GraniteForCausalLM", "GraniteConfig", ("granite",), "granite.yaml"),
        ModelFamily("olmo2", "Olmo2ForCausalLM", "Olmo2Config", ("olmo2",), "olmo2.yaml"),
        ModelFamily("gemma", "GemmaForCausalLM", "GemmaConfig", ("gemma",), "gemma.yaml"),
        ModelFamily(
            "gemma3", "Gemma3ForCausalLM", "Gemma3TextConfig", ("gemma3_text",), "gemma3.yaml"
        ),
        ModelFamily(
            "vit",
            "ViTForImageClassification",
            "ViTConfig",
            ("vit",),
            "vit.yaml",
            model_kind="image_classifier",
        ),  # fmt: skip
    )
}


def family_for_model_type(model_type: str) -> ModelFamily | None:
    return next((f for f in FAMILIES.values() if model_type in f.model_types), None)


def get_family(name: str) -> ModelFamily:
    try:
        return FAMILIES[name]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise TtgenError(f"unknown model '{name}' (known: {known})") from None


@functools.cache
def _presets_text(presets_file: str) -> str:
    return resources.files("ttgen.models").joinpath("presets", presets_file).read_text()


def load_presets(family: ModelFamily) -> dict[str, dict[str, Any]]:
    """The family's presets: name → Hugging Face config.json dict (a fresh copy each call)."""
    return copy.deepcopy(yaml.safe_load(_presets_text(family.presets_file)))


@dataclass(frozen=True)
class ModelSource:
    """Where a model came from: a preset (meta device, no weights) or a local checkpoint folder."""

    family: str
    preset: str | None = None
    checkpoint: str | None = None
    num_layers: int | None = None  # the preset cut to its first N layers (bring-up, validation)


# Keys of a hub config.json that describe the stored file rather than the model.
_STORAGE_KEYS = ("torch_dtype", "dtype", "transformers_version")


def preset_config(family: ModelFamily, preset: str):
    """The transformers config object for a preset."""
    presets = load_presets(family)
    if preset not in presets:
        known = ", ".join(presets)
        raise TtgenError(f"unknown preset '{preset}' for model '{family.name}' (known: {known})")
    data = presets[preset]
    for key in _STORAGE_KEYS:
        data.pop(key, None)
    _, config_cls = family.hf_classes()
    return config_cls(**data)


def build_model(
    family: ModelFamily,
    preset: str | None = None,
    checkpoint: str | Path | None = None,
    num_layers: int | None = None,
):
    """Build the HF causal LM in eval mode, float32: on the meta device for a preset (optionally cut
    to its first `num_layers` decoder layers, every shape otherwise real), with real weights for a
    checkpoint folder. Returns (model, ModelSource)."""

    if preset is not None and checkpoint is not None:
        raise TtgenError("give either --preset or --checkpoint, not both")
    if num_layers is not None and checkpoint is not None:
        raise TtgenError("--num-layers cuts a preset; it cannot be used with --checkpoint")
    if checkpoint is not None:
        from ttgen.models.checkpoint import load_checkpoint

        model = load_checkpoint(Path(checkpoint))
        found = family_for_model_type(model.config.model_type)
        source = ModelSource(
            found.name if found else model.config.model_type, checkpoint=str(checkpoint)
        )
    else:
        preset = preset or family.default_preset
        config = preset_config(family, preset)
        if num_layers is not None:
            if not 0 < num_layers <= config.num_hidden_layers:
                raise TtgenError(
                    f"--num-layers {num_layers}: preset '{preset}' has {config.num_hidden_layers} layers"
                )
            config.num_hidden_layers = num_layers
            if getattr(config, "layer_types", None):
                config.layer_types = config.layer_types[:num_layers]
        config._attn_implementation = "sdpa"
        model_cls, _ = family.hf_classes()
        # parameters on the meta device (an 8B or 70B preset costs nothing); buffers real: they are
        # small and computed from the config (rotary frequencies, Gemma's embedding scale)
        from accelerate import init_empty_weights

        with init_empty_weights(include_buffers=False):
            model = model_cls(config)
        model.tie_weights()  # the empty-weights context re-creates tied parameters apart
        source = ModelSource(family.name, preset=preset, num_layers=num_layers)
    model.eval()
    return model, source
