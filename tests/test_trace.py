"""The trace stage: graphs, module annotation, decode cache updates, JSON round-trip, numerics."""

import copy
import re

import networkx as nx
import pytest
import torch

from ttgen.errors import TtgenError
from ttgen.ir import call_nodes, layer_nodes
from ttgen.ir.graph import graph_to_dict
from ttgen.models import ModelSource, build_model, get_family
from ttgen.models.registry import preset_config
from ttgen.trace import load_trace, save_trace, summarize, trace_model
from ttgen.trace.export import export_decode
from ttgen.trace.stamp import (
    STAMP_FROM,
    StampError,
    decoder_layers_path,
    first_layers,
    stamp_layers,
)
from ttgen.trace.trace import StampingSkipped

LAYER = re.compile(r"^model\.layers\.(\d+)(\.|$)")


def _graph_equal(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    return (
        a.graph == b.graph
        and dict(a.nodes(data=True)) == dict(b.nodes(data=True))
        and sorted(a.edges(data=True)) == sorted(b.edges(data=True))
    )


def test_json_round_trip(tiny_trace, tmp_path):
    path = tmp_path / "t.json"
    save_trace(tiny_trace, path)
    loaded = load_trace(path)
    assert loaded.meta == tiny_trace.meta
    assert set(loaded.graphs) == {"prefill", "decode"}
    for mode, g in tiny_trace.graphs.items():
        assert _graph_equal(g, loaded.graphs[mode]), mode
    save_trace(loaded, tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


@pytest.mark.parametrize("mode", ["prefill", "decode"])
def test_decoder_layer_nodes_carry_layer_paths(tiny_trace, mode):
    g = tiny_trace.graphs[mode]
    in_layer = 0
    for name, attrs in call_nodes(g):
        layers = [p for p, cls in attrs["module_stack"] if cls == "LlamaDecoderLayer"]
        if layers:
            in_layer += 1
            m = LAYER.match(attrs["module"])
            assert m, f"{name} ({attrs['op']}) inside {layers[0]} has module '{attrs['module']}'"
            assert layers[0] == f"model.layers.{m.group(1)}"
        for arg, param in attrs.get("params", {}).items():
            pm = LAYER.match(param)
            if pm:  # a layer's weight is only ever consumed inside that layer
                assert attrs["module"].startswith(f"model.layers.{pm.group(1)}"), (name, arg, param)
    assert in_layer > 0
    # Both layers of the same architecture lower to the same op sequence.
    seqs = [[g.nodes[n]["op"] for n in layer_nodes(g, i)] for i in range(2)]
    assert seqs[0] == seqs[1] and len(seqs[0]) > 20


def test_node_attributes(tiny_trace):
    g = tiny_trace.graphs["prefill"]
    q_proj = [a for _, a in call_nodes(g) if a["module"] == "model.layers.0.self_attn.q_proj"]
    assert len(q_proj) == 1
    (q,) = q_proj
    assert q["op"] == "aten.linear.default" and q["module_class"] == "Linear"
    assert q["params"] == {"weight": "model.layers.0.self_attn.q_proj.weight"}
    assert q["outputs"] == [{"shape": [2, 64, 256], "dtype": "float32"}]
    assert q["in_shapes"] == [[2, 64, 256], [256, 256]]
    eps_adds = [
        a for _, a in call_nodes(g)
        if a["module"] == "model.layers.0.input_layernorm" and a["op"] == "aten.add.Tensor"
    ]  # fmt: skip
    assert [a["constants"] for a in eps_adds] == [{"other": 1e-05}]


def test_decode_graph_contains_cache_updates(tiny_trace):
    g = tiny_trace.graphs["decode"]
    updates = [a for _, a in call_nodes(g) if a["op"] == "aten.index_copy_.default"]
    written = sorted(a["params"]["self"] for a in updates)
    assert written == ["key_cache_0", "key_cache_1", "value_cache_0", "value_cache_1"]
    for a in updates:
        assert a["constants"] == {"dim": 2}  # the sequence axis of [B, Hkv, S, D]
        assert a["outputs"][0]["shape"] == [2, 2, 64, 32]
        assert LAYER.match(a["module"])
    sdpa = [a for _, a in call_nodes(g) if "scaled_dot_product_attention" in a["op"]]
    assert [a["in_shapes"][1] for a in sdpa] == [[2, 8, 64, 32]] * 2  # attends over the cache
    assert "index_copy_" not in str([a["op"] for _, a in call_nodes(tiny_trace.graphs["prefill"])])


def test_summary(tiny_trace):
    s = summarize(tiny_trace.graphs["prefill"])
    classes = dict(s.module_classes)
    assert classes["LlamaDecoderLayer"] == 2 and classes["LlamaRMSNorm"] == 5
    assert s.num_parameters == 1_639_680
    assert dict(s.op_histogram)["aten.linear.default"] == 15
    assert s.layer_ops.count("aten.linear.default") == 7
    assert "aten._assert_tensor_metadata.default" not in s.layer_ops


def test_exported_decode_matches_hf():
    """The decode graph is the HF model: step it token by token and compare with a full forward."""
    torch.manual_seed(0)
    config = preset_config(get_family("llama"), "tiny")
    config._attn_implementation = "sdpa"
    model = type(build_model(get_family("llama"))[0])(config).eval()
    ids = torch.randint(0, config.vocab_size, (2, 6))
    with torch.no_grad():
        reference = model(input_ids=ids).logits
        step = export_decode(model, batch=2, max_cache_len=16).module()
        got = torch.stack([step(ids[:, p : p + 1], torch.tensor([p]))[:, -1] for p in range(6)], 1)
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", ["qwen2", "mistral"])
def test_other_families_trace(family):
    model, source = build_model(get_family(family))
    trace = trace_model(model, source, seq_len=32)
    g = trace.graphs["prefill"]
    linears = [a for _, a in call_nodes(g) if a["op"] == "aten.linear.default"]
    if family == "qwen2":  # q/k/v bias is visible as a bias parameter
        assert any("q_proj.bias" in p for a in linears for p in a.get("params", {}).values())
    assert summarize(g).layer_ops == summarize(g).layer_ops and layer_nodes(g, 1)


def test_worker_process_trace_equals_in_process_trace(tiny_trace, monkeypatch):
    """The last mode is exported in a forked worker when that is possible: the result must be the
    trace a single process makes."""
    import ttgen.trace.trace as stage

    if not stage._can_fork():
        pytest.skip("no forked worker here (one CPU, no fork, or other threads running)")
    monkeypatch.setenv("TTGEN_TRACE_JOBS", "1")
    model, source = build_model(get_family("llama"), preset="tiny")
    alone = trace_model(model, source, batch=2, seq_len=64)
    assert alone.to_dict() == tiny_trace.to_dict()


def test_worker_failure_is_reported(monkeypatch):
    import ttgen.trace.trace as stage

    if not stage._can_fork():
        pytest.skip("no forked worker here (one CPU, no fork, or other threads running)")
    real = stage._mode_graph

    def failing(model, mode, **kwargs):
        if mode == "decode":
            raise RuntimeError("boom in decode")
        return real(model, mode, **kwargs)

    monkeypatch.setattr(stage, "_mode_graph", failing)  # the fork inherits the patch
    model, source = build_model(get_family("llama"), preset="tiny")
    with pytest.raises(TtgenError, match="decode export failed: RuntimeError: boom in decode"):
        trace_model(model, source, batch=2, seq_len=64)


# --- layer stamping ---------------------------------------------------------------------------


def _deep_model(family: str, layers: int, device: str = "meta", layer_types=None, preset="tiny"):
    """A preset (default: the family's tiny one) with `layers` decoder layers (random weights off
    the meta device)."""
    config = preset_config(get_family(family), preset)
    config.num_hidden_layers = layers
    if layer_types is not None or getattr(config, "layer_types", None) is not None:
        config.layer_types = layer_types or [config.layer_types[0]] * layers
    config._attn_implementation = "sdpa"
    model_cls, _ = get_family(family).hf_classes()
    with torch.device(device):
        model = model_cls(config)
    return model.eval(), ModelSource(family, preset=preset)


def _trace_bytes(trace, path) -> bytes:
    save_trace(trace, path)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("family", "layers", "device", "preset"),
    [
        ("llama", 6, "meta", "tiny"),
        ("llama", 4, "cpu", "tiny"),
        ("llama", 5, "meta", "llama-3.2-1b"),  # llama3 RoPE scaling, tied embeddings, real dims
        ("qwen2", 4, "meta", "tiny"),
        ("mistral", 5, "meta", "tiny"),
    ],
)
def test_stamped_trace_equals_full_export(family, layers, device, preset, tmp_path, monkeypatch):
    """Exporting the first layers and stamping out the rest gives the full export's trace, byte for
    byte (node names, order, module paths, weights, cache buffers, edges)."""
    import ttgen.trace.export as export

    monkeypatch.setenv("TTGEN_TRACE_JOBS", "1")  # the export spy below sees every export
    model, source = _deep_model(family, layers, device, preset=preset)
    assert decoder_layers_path(model) == "model.layers"
    depths = []
    for name in ("export_prefill", "export_decode"):
        real = getattr(export, name)
        monkeypatch.setattr(
            export, name, lambda m, *a, real=real: depths.append(len(m.model.layers)) or real(m, *a)
        )
    stamped = trace_model(model, source, batch=2, seq_len=64)
    assert depths == [STAMP_FROM, STAMP_FROM]  # prefill and decode exported 3 layers each
    full = trace_model(model, source, batch=2, seq_len=64, stamp=False)
    assert depths[2:] == [layers, layers]
    assert _trace_bytes(stamped, tmp_path / "s.json") == _trace_bytes(full, tmp_path / "f.json")
    # The model is whole again after the cut export.
    assert model.config.num_hidden_layers == layers and len(model.model.layers) == layers


def test_stamping_applies_only_to_homogeneous_stacks_deeper_than_the_prefix():
    assert decoder_layers_path(_deep_model("llama", STAMP_FROM)[0]) is None
    mixed = ["full_attention"] * 2 + ["sliding_attention"] * 2
    assert decoder_layers_path(_deep_model("qwen2", 4, layer_types=mixed)[0]) is None
    model, _ = _deep_model("llama", 4)
    model.model.layers[3].mlp.up_proj.weight = torch.nn.Parameter(torch.empty(8, 8, device="meta"))
    assert decoder_layers_path(model) is None


@pytest.fixture(scope="module")
def prefix_graph():
    """The prefill export of a 5-layer model's first STAMP_FROM layers, as a graph dict."""
    model, source = _deep_model("llama", 5)
    with first_layers(model, "model.layers", STAMP_FROM):
        trace = trace_model(model, source, modes=("prefill",), batch=1, seq_len=32, stamp=False)
    return graph_to_dict(trace.graphs["prefill"])


def test_stamping_checks_that_the_exported_layers_line_up(prefix_graph):
    stamp_layers(copy.deepcopy(prefix_graph), "model.layers", 5)  # as exported: fine
    bad = copy.deepcopy(prefix_graph)
    eps = [n for n in bad["nodes"] if n["module"] == "model.layers.2.input_layernorm"
           and n["op"] == "aten.add.Tensor"]  # fmt: skip
    eps[0]["constants"]["other"] = 1e-6  # layer 2's RMSNorm eps no longer matches layer 1's
    with pytest.raises(StampError, match=r"\(layer 1\) and add_\d+ \(layer 2\) differ"):
        stamp_layers(bad, "model.layers", 5)
    renamed = copy.deepcopy(prefix_graph)  # mean_1 → mean_7, a name FX's counters would not give
    for n in renamed["nodes"]:
        n["id"] = "mean_7" if n["id"] == "mean_1" else n["id"]
        n["inputs"] = ["mean_7" if i == "mean_1" else i for i in n["inputs"]]
    for e in renamed["edges"]:
        e["src"], e["dst"] = ("mean_7" if x == "mean_1" else x for x in (e["src"], e["dst"]))
    with pytest.raises(StampError, match="FX's counters"):
        stamp_layers(renamed, "model.layers", 5)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_trace_falls_back_to_the_full_export_when_stamping_does_not_apply(
    jobs, monkeypatch, tmp_path
):
    """Both modes fall back and say so, also the one exported in the forked worker."""
    import ttgen.trace.stamp as stamp
    import ttgen.trace.trace as stage

    monkeypatch.setenv("TTGEN_TRACE_JOBS", jobs)
    if jobs != "1" and not stage._can_fork():
        pytest.skip("no forked worker here (one CPU, no fork, or other threads running)")
    model, source = _deep_model("llama", 4)
    full = trace_model(model, source, batch=1, seq_len=32, stamp=False)

    def refuse(graph, path, num_layers):
        raise StampError("layer 1 and layer 2 differ")

    monkeypatch.setattr(stamp, "stamp_layers", refuse)  # the fork inherits the patch
    with pytest.warns(StampingSkipped) as caught:
        fallback = trace_model(model, source, batch=1, seq_len=32)
    assert sorted(str(w.message) for w in caught) == [
        f"{mode}: layer stamping does not apply (layer 1 and layer 2 differ); exporting all layers"
        for mode in ("decode", "prefill")
    ]
    assert _trace_bytes(fallback, tmp_path / "a.json") == _trace_bytes(full, tmp_path / "b.json")
