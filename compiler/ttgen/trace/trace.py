"""The trace stage: HF model → {mode: Graph}, saved to and loaded from JSON."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from ttgen.errors import TtgenError
from ttgen.ir.graph import graph_from_dict, graph_to_dict

__all__ = ["MODES", "TRACE_FORMAT", "ModelTrace", "load_trace", "save_trace", "trace_model"]

MODES = ("prefill", "decode")
TRACE_FORMAT = "ttgen.trace/1"


@dataclass
class ModelTrace:
    """The traced graphs of one model, one per mode, and what they were traced from."""

    meta: dict[str, Any]
    graphs: dict[str, nx.DiGraph] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TRACE_FORMAT,
            "meta": self.meta,
            "graphs": {mode: graph_to_dict(g) for mode, g in self.graphs.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelTrace:
        if data.get("format") != TRACE_FORMAT:
            raise TtgenError(f"not a ttgen trace (format: {data.get('format')!r})")
        return cls(
            meta=data["meta"],
            graphs={mode: graph_from_dict(g) for mode, g in data["graphs"].items()},
        )


def _config_dict(config) -> dict[str, Any]:
    return json.loads(config.to_json_string(use_diff=False))


def trace_model(
    model,
    source,
    *,
    modes: tuple[str, ...] = MODES,
    batch: int = 1,
    seq_len: int = 128,
    step: Callable[[str], None] = lambda _msg: None,
) -> ModelTrace:
    """Export `model` in each mode and convert the exported programs to graphs.

    Prefill traces `batch` prompts of `seq_len` tokens; decode traces one new token per user against
    a static KV cache of `seq_len` positions.
    """
    import torch
    import transformers

    from ttgen.trace.convert import graph_from_exported
    from ttgen.trace.export import DECODE_WRAPPER_PREFIX, export_decode, export_prefill

    config = model.config
    if seq_len <= 0:
        raise TtgenError(f"--seq-len must be positive, got {seq_len}")
    if batch <= 0:
        raise TtgenError(f"--batch must be positive, got {batch}")
    if seq_len > config.max_position_embeddings:
        raise TtgenError(
            f"--seq-len {seq_len} exceeds the model's max_position_embeddings "
            f"({config.max_position_embeddings})"
        )
    meta = {
        "model": source.family,
        "preset": source.preset
        if source.num_layers is None
        else f"{source.preset} (first {source.num_layers} layers)",
        "checkpoint": source.checkpoint,
        "batch": batch,
        "seq_len": seq_len,
        "hf_class": type(model).__name__,
        "config": _config_dict(config),
        "versions": {
            "torch": torch.__version__.split("+")[0],
            "transformers": transformers.__version__,
        },
    }
    trace = ModelTrace(meta=meta)
    for mode in modes:
        with torch.no_grad():
            if mode == "prefill":
                step(f"exporting prefill (batch {batch}, {seq_len} tokens)")
                ep = export_prefill(model, batch, seq_len)
                prefix = None
            elif mode == "decode":
                step(f"exporting decode (batch {batch}, static cache of {seq_len})")
                ep = export_decode(model, batch, seq_len)
                prefix = DECODE_WRAPPER_PREFIX
            else:
                raise TtgenError(f"unknown mode '{mode}' (known: {', '.join(MODES)})")
        step(f"converting {mode} graph")
        trace.graphs[mode] = graph_from_exported(
            ep, strip_prefix=prefix, mode=mode, model=source.family, batch=batch, seq_len=seq_len
        )
    return trace


def check_writable(path: Path) -> None:
    """Fail early, before any tracing, if `path` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise TtgenError(f"--out {path}: is a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".ttgen-probe-")
    except OSError as exc:
        raise TtgenError(f"--out {path}: cannot write there ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def save_trace(trace: ModelTrace, path: Path) -> None:
    """Write atomically: a temporary file in the same folder, renamed into place."""
    check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(trace.to_dict(), f, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_trace(path: Path) -> ModelTrace:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise TtgenError(f"{path}: no such trace file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TtgenError(f"{path}: not valid JSON ({exc})") from None
    return ModelTrace.from_dict(data)
