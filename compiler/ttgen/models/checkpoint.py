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

__all__ = ["causal_lm_class", "load_checkpoint", "load_tokenizer", "read_checkpoint_config"]


def read_checkpoint_config(path: Path) -> dict:
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint folder does not exist")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: missing (a checkpoint folder needs config.json)")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
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
    return model


def load_tokenizer(path: Path):
    """The checkpoint folder's own tokenizer (offline); a folder without one is a CheckpointError."""
    from transformers import AutoTokenizer

    read_checkpoint_config(path)
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - a missing or broken tokenizer is a bad checkpoint
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: no usable tokenizer ({first})") from None
