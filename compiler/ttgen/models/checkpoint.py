"""Loading a local Hugging Face checkpoint folder (config.json + safetensors), offline and strictly.

Any causal LM transformers knows loads: the registry's family for its `model_type` if there is one,
else transformers' Auto classes (a spec decides by its rules whether it covers the model). A folder
that is missing, has no weights, is not a causal LM, lacks tensors or holds a corrupt file is a
`CheckpointError` naming the folder; transformers' silent random initialisation of
missing weights is treated as an error, not a warning.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ttgen.errors import CheckpointError

__all__ = [
    "causal_lm_class",
    "load_checkpoint",
    "load_tokenizer",
    "read_checkpoint_config",
    "save_tiny_checkpoint",
]


def read_checkpoint_config(path: Path) -> dict:
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint folder does not exist")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: missing (a checkpoint folder needs config.json)")
    try:
        config = json.loads(config_path.read_text())
    except OSError as exc:
        raise CheckpointError(f"{config_path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{config_path}: not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError) as exc:
        raise CheckpointError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: expected a JSON object")
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise CheckpointError(f"{config_path}: no model_type")
    if not sorted(path.glob("*.safetensors")):
        raise CheckpointError(f"{path}: no *.safetensors weight files")
    return config


def causal_lm_class(model_type: str, where: str):
    """The transformers causal-LM class of a `model_type`: a registered family's class, else the
    one transformers' Auto classes map it to (any architecture transformers knows)."""
    from ttgen.models.registry import family_for_model_type

    family = family_for_model_type(model_type)
    if family is not None:
        return family.hf_classes()[0]
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    try:
        config_cls = type(AutoConfig.for_model(model_type))
        return MODEL_FOR_CAUSAL_LM_MAPPING[config_cls]
    except (KeyError, ValueError):
        raise CheckpointError(
            f"{where}: model_type '{model_type}' is not a causal LM that transformers knows"
        ) from None


def load_checkpoint(path: Path):
    """The HF causal LM of a checkpoint folder, whatever its family (float32, eval, SDPA)."""
    import torch
    from transformers.utils import logging as hf_logging

    config = read_checkpoint_config(path)
    # ttgen reports problems itself (below), in one line; transformers' load report and progress
    # bars would bury it.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model_cls = causal_lm_class(config["model_type"], str(path / "config.json"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _check_tensors(path, model_cls)
    try:
        model, info = model_cls.from_pretrained(
            path,
            local_files_only=True,
            dtype=torch.float32,
            attn_implementation="sdpa",
            output_loading_info=True,
        )
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad checkpoint to the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: cannot load checkpoint: {first}") from None
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise CheckpointError(f"{path}: checkpoint lacks {len(missing)} tensor(s): {shown}")
    mismatched = info.get("mismatched_keys") or []
    if mismatched:
        raise CheckpointError(f"{path}: checkpoint tensors with wrong shapes: {mismatched[:3]}")
    unexpected = sorted(info.get("unexpected_keys", ()))
    if unexpected:
        shown = ", ".join(unexpected[:3]) + (" ..." if len(unexpected) > 3 else "")
        raise CheckpointError(
            f"{path}: {len(unexpected)} tensor(s) the model has no place for (a layer that does not "
            f"exist, or another architecture's): {shown}"
        )
    return model


def _one_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return "; ".join(lines) if lines else type(exc).__name__


def _check_tensors(path: Path, model_cls) -> None:
    """The config is valid, and every stored tensor has the shape the config implies for it and
    the kind of dtype its parameter has (checked on a meta-device model from the config, from the
    files' headers, before any weight is read): an integer tensor where the model holds floats (a
    quantized or corrupt file) would be cast silently by from_pretrained."""
    import torch
    from safetensors import safe_open

    config_path = path / "config.json"
    try:
        config = model_cls.config_class.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - transformers' validation, multi-line: one line here
        raise CheckpointError(f"{config_path}: invalid config: {_one_line(exc)}") from None
    for key in (
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "vocab_size",
        "intermediate_size",
    ):
        value = getattr(config, key, None)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value <= 0
        ):
            raise CheckpointError(f"{config_path}: {key} must be a positive integer, got {value!r}")
    try:
        with torch.device("meta"):
            expected = {
                k: (tuple(v.shape), v.dtype) for k, v in model_cls(config).state_dict().items()
            }
    except Exception as exc:  # noqa: BLE001 - a config the model class cannot be built from
        raise CheckpointError(
            f"{config_path}: the model cannot be built from it: {_one_line(exc)}"
        ) from None
    for file in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(file, framework="pt") as f:
                stored = {
                    key: (tuple(f.get_slice(key).get_shape()), f.get_slice(key).get_dtype())
                    for key in f.keys()
                }
        except Exception as exc:  # noqa: BLE001 - a corrupt file
            raise CheckpointError(
                f"{path}: cannot load checkpoint: {file.name}: {_one_line(exc)}"
            ) from None
        for key, (shape, dtype) in sorted(stored.items()):
            if key not in expected:
                continue  # an unexpected tensor: from_pretrained reports it, named
            want_shape, want_dtype = expected[key]
            if want_shape != shape:
                raise CheckpointError(
                    f"{file}: tensor {key} has shape {list(shape)}; {config_path.name} implies "
                    f"{list(want_shape)}"
                )
            if want_dtype.is_floating_point and dtype not in _FLOAT_DTYPES:
                raise CheckpointError(
                    f"{file}: tensor {key} is {dtype}; the model expects a floating-point "
                    f"tensor ({str(want_dtype).removeprefix('torch.')})"
                )


_FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


def load_tokenizer(path: Path):
    """The checkpoint folder's own tokenizer (offline); a folder without one is a CheckpointError."""
    from transformers import AutoTokenizer

    read_checkpoint_config(path)
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - a missing or broken tokenizer is a bad checkpoint
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: no usable tokenizer ({first})") from None


def save_tiny_checkpoint(family_name: str, out: Path, **changes) -> Path:
    """A checkpoint folder of the family's tiny preset (with `changes` to its config) whose seeded
    weights hold no constant parameter: under HF's init (norm weights 1, biases 0) a dropped norm
    weight or bias would pass a parity test."""
    import torch
    import transformers

    from ttgen.models.registry import get_family, load_presets

    family = get_family(family_name)
    config = {k: v for k, v in load_presets(family)["tiny"].items() if k != "torch_dtype"} | changes
    torch.manual_seed(0)
    model = getattr(transformers, family.causal_lm_class)(
        getattr(transformers, family.config_class)(**config)
    )
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if bool(p.min() == p.max()):
                p.add_(0.2 * torch.randn(p.shape, generator=generator))
    model.save_pretrained(out)
    return out
