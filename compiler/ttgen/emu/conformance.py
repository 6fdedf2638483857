"""The emulator's API surface in the form of the ttnn 0.81.1 manifest, for comparison with the
vendored manifest (tests/emu/test_conformance.py) and with the installed real package (the ttnn
lane, ttgen.validate.lane). A signature is a list of (name, kind, default repr) with kind one of
positional / positional_only / keyword; *args/**kwargs are left out."""

from __future__ import annotations

import enum
import inspect
import json
from importlib import resources

__all__ = [
    "DEVIATIONS",
    "OVERLOAD_DEVIATIONS",
    "UNEMULATED_OVERLOADS",
    "overload_key",
    "compare",
    "signatures_of",
    "ENUMS",
    "EXTENSIONS",
    "fmt_default",
    "manifest",
    "manifest_signatures",
    "public_api",
    "signature_of",
]

# Emulator names that are not ttnn API: what they are for.
EXTENSIONS = {
    "install": "installs the emulator as `ttnn` (harness)",
    "memory_usage": "allocator usage per bank (planner and tests)",
    "get_arch_name": "real ttnn function outside the manifest's op list",
    "is_trace_capture_active": "real ttnn function outside the manifest's op list",
    "event_synchronize": "real ttnn function outside the manifest's op list",
    "Shape": "ttnn.Shape value type",
    "StorageType": "enum outside the manifest",
    "MeshDevice": "returned by open_device, not constructed",
    "Arch": "enum of ttnn.device, outside the manifest",
}

# Real signatures the emulator deliberately differs from, with the reason.
DEVIATIONS = {
    "ttnn.wait_for_event": "Python cannot declare a required parameter (mesh_event) after a defaulted one; "
    "the emulator defaults it to None and rejects None",
    "ttnn.reshape": "TileReshapeMapMode is not emulated: reshape_tile_mode defaults to None (= CACHE)",
    "ttnn.tilize": "custom tiles are not emulated: tile defaults to None (= 32x32)",
    "ttnn.as_tensor": "DumpTensorMode is not emulated: cache_dump_mode defaults to None (= DISTRIBUTED_GATHER)",
    "ttnn.open_device": "DispatchCoreConfig is not emulated: dispatch_core_config defaults to None",
    "ttnn.gelu": "both overloads in one function: variant=None (Accurate) and fast_and_approximate_mode",
    "ttnn.embedding": "EmbeddingsType is not emulated: embeddings_type defaults to None (= GENERIC)",
    "ttnn.UnaryWithParam": "the seven positional-only overloads are one (op_type, /, *params)",
    "ttnn.CoreCoord": "the (x, y) and ((x, y),) overloads are one (arg0, arg1=None, /)",
    "ttnn.MeshShape": "the three overloads are one (*dims)",
    "ttnn.ShardSpec": "shard_orientation defaults to ROW_MAJOR (the real one requires it)",
    "ttnn.MatmulMultiCoreReuseMultiCast1DProgramConfig": "hop_cores defaults to None (= {})",
}

# Overloads of the real package the emulator does not provide as such (by overload_key): why.
_LIST_DATA = "data, shape, data_type, layout"
UNEMULATED_OVERLOADS = {
    (
        "ttnn.MemoryConfig",
        "buffer_type, nd_shard_spec",
    ): "ND sharding (NdShardSpec) is not emulated",
    (
        "ttnn.Tensor",
        f"{_LIST_DATA}, tile=None, pad_value=0",
    ): "integer data: the float-data form takes it",
    (
        "ttnn.Tensor",
        f"{_LIST_DATA}, device=None, tile=None, pad_value=0",
    ): "integer data: the float-data form takes it",
    (
        "ttnn.Tensor",
        f"{_LIST_DATA}, device=None, memory_config, tile=None, pad_value=0",
    ): "integer data: as above",
    (
        "ttnn.Tensor",
        f"{_LIST_DATA}, device=None, memory_config, tile=None, pad_value=0.0",
    ): "Python cannot declare memory_config required after device=None: emulated with device required",
}
# Emulator overloads that stand for one of those, with the reason.
OVERLOAD_DEVIATIONS = {
    (
        "ttnn.Tensor",
        f"{_LIST_DATA}, device, memory_config, tile=None, pad_value=0.0",
    ): "the (data, shape, dtype, layout, device=None, memory_config, ...) overload (see above)",
}

ENUMS = ("DataType", "Layout", "TensorMemoryLayout", "BufferType", "ShardOrientation",
         "ShardStrategy", "MathFidelity", "UnaryOpType")  # fmt: skip

Signature = list[tuple[str, str, "str | None"]]


def manifest() -> dict:
    path = resources.files("ttgen.emu").joinpath("api", "ttnn-0.81.1.json")
    return json.loads(path.read_text())


def fmt_default(value) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, (tuple, list)) and not value:
        return "[]"
    text = repr(value)
    if text.startswith("<") and " object at 0x" in text:  # a default-constructed config object
        return f"{type(value).__name__}()"
    return text


def signature_of(obj) -> Signature:
    """The emulator object's signature."""
    fn = obj.__init__ if inspect.isclass(obj) else getattr(obj, "emulated", obj)
    params = list(inspect.signature(fn).parameters.values())
    if inspect.isclass(obj):
        params = params[1:]  # self
    out = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kind = {p.KEYWORD_ONLY: "keyword", p.POSITIONAL_ONLY: "positional_only"}.get(
            p.kind, "positional"
        )
        out.append((p.name, kind, None if p.default is p.empty else fmt_default(p.default)))
    return out


def signatures_of(obj) -> list[Signature]:
    """Every overload the emulator provides: the alternatives of an overloaded function, else its
    one signature."""
    if inspect.isclass(obj) and hasattr(obj, "_constructors"):  # ttnn.Tensor's constructors
        return [signature_of(alt) for alt in obj._constructors()]
    return [signature_of(alt) for alt in getattr(obj, "overloads", None) or [obj]]


def compare(qualified: str, obj, entry: dict) -> list[str]:
    """What differs between an emulated function and the real one, overload by overload: each of
    ours must be one of theirs, and each of theirs one of ours (or listed as not emulated)."""
    if qualified in DEVIATIONS:
        return []
    ours, theirs = signatures_of(obj), manifest_signatures(entry)
    problems = [f"{qualified}: emulator overload ({overload_key(sig)}) is not in ttnn" for sig in ours
                if sig not in theirs and (qualified, overload_key(sig)) not in OVERLOAD_DEVIATIONS]  # fmt: skip
    for sig in theirs:
        if sig not in ours and (qualified, overload_key(sig)) not in UNEMULATED_OVERLOADS:
            problems.append(f"{qualified}: ttnn overload ({overload_key(sig)}) is not emulated")
    return problems


def overload_key(sig: Signature) -> str:
    """An overload as text: `name` or `name=default`, `*` before the keyword-only ones."""
    parts, star = [], False
    for name, kind, default in sig:
        if kind == "keyword" and not star:
            parts.append("*")
            star = True
        parts.append(name if default is None else f"{name}={default}")
    return ", ".join(parts)


def manifest_signatures(entry: dict) -> list[Signature]:
    """The overloads of a manifest entry (or of a live introspection in the same format)."""
    overloads = entry.get("overloads") or [entry]
    return [
        [
            (
                p["name"],
                "positional_only" if p.get("positional_only") else p["kind"],
                p.get("default"),
            )
            for p in o.get("params", [])
            if p["kind"] != "var"
        ]
        for o in overloads
    ]


def _public(namespace, prefix):
    for name in sorted(dir(namespace)):
        obj = getattr(namespace, name)
        if name.startswith("_") or inspect.ismodule(obj) or not callable(obj):
            continue
        if inspect.isclass(obj) and issubclass(obj, enum.Enum):
            continue
        yield f"{prefix}.{name}", name, obj


def public_api(ttnn):
    """(qualified name, short name, object) for every public callable of the emulator."""
    yield from _public(ttnn, "ttnn")
    yield from _public(ttnn.experimental, "ttnn.experimental")
    yield from _public(ttnn.transformer, "ttnn.transformer")
