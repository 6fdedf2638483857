"""Every public function and class of the emulator exists in the ttnn 0.81.1 API manifest with the
same parameter names, kinds and defaults. Deviations are listed below with their reason."""

import enum
import inspect
import json
from importlib import resources

import pytest

from ttgen import emu as ttnn

MANIFEST = resources.files("ttgen.emu").joinpath("api", "ttnn-0.81.1.json")

# Emulator names that are not ttnn API: what they are for.
EXTENSIONS = {
    "install": "installs the emulator as `ttnn` (harness)",
    "memory_usage": "allocator usage per bank (planner and tests)",
    "get_arch_name": "real ttnn function outside the manifest's op list",
    "is_trace_capture_active": "real ttnn function outside the manifest's op list",
    "event_synchronize": "real ttnn function outside the manifest's op list",
    "Tensor": "ttnn.Tensor is constructed by from_torch/ops, not called",
    "Shape": "ttnn.Shape value type",
    "StorageType": "enum outside the manifest",
    "MeshDevice": "returned by open_device, not constructed",
    "Arch": "enum of ttnn.device, outside the manifest",
}

# Manifest entries whose signature the emulator deliberately differs from.
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


def _manifest():
    return json.loads(MANIFEST.read_text())


def _fmt(value) -> str:
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, (tuple, list)) and not value:
        return "[]"
    return repr(value)


def _ours(obj) -> list[tuple[str, str, str | None]]:
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
        out.append((p.name, kind, None if p.default is p.empty else _fmt(p.default)))
    return out


def _theirs(entry) -> list[list[tuple[str, str, str | None]]]:
    overloads = entry.get("overloads") or [entry]
    return [
        [
            (
                p["name"],
                "positional_only" if p.get("positional_only") else p["kind"],
                p.get("default"),
            )
            for p in o.get("params", [])
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


def _everything():
    yield from _public(ttnn, "ttnn")
    yield from _public(ttnn.experimental, "ttnn.experimental")
    yield from _public(ttnn.transformer, "ttnn.transformer")


@pytest.mark.parametrize(
    "qualified, name, obj",
    list(_everything()),
    ids=lambda v: v if isinstance(v, str) and v.startswith("ttnn") else "",
)
def test_signature_matches_manifest(qualified, name, obj):
    data = _manifest()
    entry = data["functions"].get(qualified) or data["classes"].get(qualified)
    if entry is None:
        assert name in EXTENSIONS, (
            f"{qualified} is neither in the ttnn 0.81.1 manifest nor a listed extension"
        )
        return
    assert entry.get("exists", True), f"{qualified} does not exist in ttnn 0.81.1"
    if qualified in DEVIATIONS:
        return
    ours = _ours(obj)
    theirs = _theirs(entry)
    assert ours in theirs, f"{qualified}: emulator {ours}\n  manifest overloads {theirs}"


def test_enum_members_exist_in_manifest():
    data = _manifest()
    for name in (
        "DataType",
        "Layout",
        "TensorMemoryLayout",
        "BufferType",
        "ShardOrientation",
        "ShardStrategy",
        "MathFidelity",
        "UnaryOpType",
    ):
        ours = set(getattr(ttnn, name).__members__)
        assert ours <= set(data["enums"][f"ttnn.{name}"]), name


def test_scope_of_issue_is_present():
    required = """open_device close_device from_torch to_torch as_tensor to_device from_device to_layout
    to_memory_config typecast reshape permute transpose slice pad concat clone deallocate tilize untilize
    sharded_to_interleaved interleaved_to_sharded copy_host_to_device_tensor linear matmul add mul silu gelu
    softmax rms_norm layer_norm embedding argmax topk plus_one fill_cache update_cache begin_trace_capture
    end_trace_capture execute_trace release_trace record_event wait_for_event synchronize_device
    create_sharded_memory_config num_cores_to_corerangeset init_device_compute_kernel_config""".split()
    assert [n for n in required if not hasattr(ttnn, n)] == []
    for n in "nlp_create_qkv_heads nlp_create_qkv_heads_decode nlp_concat_heads nlp_concat_heads_decode rotary_embedding_llama paged_update_cache paged_fill_cache".split():
        assert hasattr(ttnn.experimental, n), n
    for n in "scaled_dot_product_attention scaled_dot_product_attention_decode paged_scaled_dot_product_attention_decode".split():
        assert hasattr(ttnn.transformer, n), n


def test_deviation_list_is_current():
    """Each listed deviation is a real difference: a fixed one must leave the list."""
    data = _manifest()
    ours = {qualified: obj for qualified, _, obj in _everything()}
    for qualified in DEVIATIONS:
        entry = data["functions"].get(qualified) or data["classes"].get(qualified)
        assert entry is not None and qualified in ours, qualified
        assert _ours(ours[qualified]) not in _theirs(entry), (
            f"{qualified} now matches: drop it from DEVIATIONS"
        )
