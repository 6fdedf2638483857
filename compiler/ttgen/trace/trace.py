"""The trace stage: HF model → {mode: Graph}, saved to and loaded from JSON."""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from ttgen.errors import TtgenError
from ttgen.ir.graph import graph_from_dict, graph_to_dict

__all__ = [
    "MODES",
    "TRACE_FORMAT",
    "ModelTrace",
    "StampingSkipped",
    "load_trace",
    "save_trace",
    "trace_model",
]

MODES = ("prefill", "decode")
TRACE_FORMAT = "ttgen.trace/1"


class StampingSkipped(UserWarning):
    """Layer stamping did not apply to a mode; every layer was exported instead (same graph)."""


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
    stamp: bool = True,
    step: Callable[[str], None] = lambda _msg: None,
) -> ModelTrace:
    """Export `model` in each mode and convert the exported programs to graphs.

    Prefill traces `batch` prompts of `seq_len` tokens; decode traces one new token per user against
    a static KV cache of `seq_len` positions. A homogeneous decoder stack is exported as its first
    few layers and stamped out to full depth (ttgen.trace.stamp; the same graph as the full export);
    `stamp=False` exports every layer.
    """
    import torch
    import transformers

    from ttgen.trace.stamp import STAMP_FROM, decoder_layers_path

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
    rope = dict(
        getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    )
    if rope.get("rope_type", rope.get("type")) == "dynamic":
        where = (
            f"{Path(source.checkpoint) / 'config.json'}: "
            if source.checkpoint
            else f"preset {source.preset}: "
        )
        raise TtgenError(
            f"{where}rope_type 'dynamic' is not supported: its frequencies are rescaled from the sequence "
            "length at run time (data-dependent), which a traced graph cannot hold"
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
        "config_class": type(config).__name__,
        "config": _config_dict(config),
        "versions": {
            "torch": torch.__version__.split("+")[0],
            "transformers": transformers.__version__,
        },
    }
    unknown = [mode for mode in modes if mode not in MODES]
    if unknown:
        raise TtgenError(f"unknown mode '{unknown[0]}' (known: {', '.join(MODES)})")
    trace = ModelTrace(meta=meta)
    layers_path = decoder_layers_path(model) if stamp else None

    def graph(mode: str) -> nx.DiGraph:
        return _mode_graph(
            model, mode, batch=batch, seq_len=seq_len, family=source.family, layers=layers_path
        )

    depth = (
        f"; first {STAMP_FROM} of {config.num_hidden_layers} layers exported, the rest stamped"
        if layers_path is not None
        else ""
    )
    described = {
        "prefill": f"prefill (batch {batch}, {seq_len} tokens{depth})",
        "decode": f"decode (batch {batch}, static cache of {seq_len}{depth})",
    }
    if len(modes) > 1 and _can_fork():
        # The exports are independent and each takes seconds (CPU-bound Python): the last mode is
        # exported in a forked child while this process does the others.
        *here, there = modes
        step(f"exporting {described[there]} in a worker process")
        worker = _Forked(functools.partial(graph, there))
        try:
            for mode in here:
                step(f"exporting and converting {described[mode]}")
                trace.graphs[mode] = graph(mode)
            step(f"waiting for the {there} export")
            trace.graphs[there] = worker.result(there)
        finally:
            worker.close()
        trace.graphs = {mode: trace.graphs[mode] for mode in modes}
        return trace
    for mode in modes:
        step(f"exporting and converting {described[mode]}")
        trace.graphs[mode] = graph(mode)
    return trace


def _mode_graph(
    model, mode: str, *, batch: int, seq_len: int, family: str, layers: str | None = None
) -> nx.DiGraph:
    """The graph of one mode: the full export, or (`layers`: the decoder layer list's path) the
    export of the first STAMP_FROM layers stamped out to the model's depth."""
    import torch

    from ttgen.trace.convert import graph_from_exported
    from ttgen.trace.export import DECODE_WRAPPER_PREFIX, export_decode, export_prefill
    from ttgen.trace.stamp import STAMP_FROM, StampError, first_layers, stamp_layers

    def exported() -> nx.DiGraph:
        with torch.no_grad():
            if mode == "prefill":
                ep, prefix = export_prefill(model, batch, seq_len), None
            else:
                ep, prefix = export_decode(model, batch, seq_len), DECODE_WRAPPER_PREFIX
        return graph_from_exported(
            ep, strip_prefix=prefix, mode=mode, model=family, batch=batch, seq_len=seq_len
        )

    if layers is None:
        return exported()
    depth = model.config.num_hidden_layers
    with first_layers(model, layers, STAMP_FROM):
        prefix = exported()
    try:
        return graph_from_dict(stamp_layers(graph_to_dict(prefix), layers, depth))
    except StampError as exc:
        message = f"{mode}: layer stamping does not apply ({exc}); exporting all layers"
        warnings.warn(message, StampingSkipped, stacklevel=2)
        return exported()


def _can_fork() -> bool:
    """A forked worker only where it helps: the fork start method exists, more than one CPU is
    ours, and TTGEN_TRACE_JOBS is not 1."""
    if os.environ.get("TTGEN_TRACE_JOBS", "") == "1":
        return False
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return "fork" in multiprocessing.get_all_start_methods() and (cpus or 1) > 1


class _Forked:
    """Run `fn` (returning a graph) in a forked child; the graph comes back as its dict form, and
    a StampingSkipped warning of the child is raised again in the parent."""

    def __init__(self, fn: Callable[[], nx.DiGraph]):
        ctx = multiprocessing.get_context("fork")
        self._recv, send = ctx.Pipe(duplex=False)

        def run() -> None:
            # Another thread of the parent (a progress spinner) may have held a stream's lock at
            # the fork, and the child inherits it held: the child writes to fresh streams only.
            sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - lives as the child
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("ignore")
                warnings.simplefilter("always", StampingSkipped)
                try:
                    message = ["ok", graph_to_dict(fn())]
                except TtgenError as exc:
                    message = ["error", str(exc)]
                except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises
                    message = ["error", f"{type(exc).__name__}: {exc}"]
            send.send((*message, [str(w.message) for w in caught]))
            send.close()

        self._proc = ctx.Process(target=run, daemon=True)
        with warnings.catch_warnings():  # Python >= 3.12 warns when other threads exist; see run()
            warnings.filterwarnings("ignore", message=".*fork", category=DeprecationWarning)
            self._proc.start()
        send.close()

    def result(self, mode: str) -> nx.DiGraph:
        try:
            status, payload, skipped = self._recv.recv()
        except EOFError:
            self._proc.join()
            raise TtgenError(
                f"the {mode} export worker ended without a result (exit code {self._proc.exitcode})"
            ) from None
        for message in skipped:
            warnings.warn(message, StampingSkipped, stacklevel=2)
        if status != "ok":
            raise TtgenError(f"{mode} export failed: {payload}")
        return graph_from_dict(payload)

    def close(self) -> None:
        self._recv.close()
        if self._proc.is_alive():
            self._proc.kill()
        self._proc.join()


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
