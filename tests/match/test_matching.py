"""Matching: patterns on tiny hand-built graphs, and the llama spec on three HF families."""

from pathlib import Path

import pytest
import torch

from ttgen.ir import ordered_nodes
from ttgen.match import match_graph
from ttgen.match.engine import Pattern, find_all
from ttgen.match.pattern import PatternError, parse
from ttgen.models import build_model, get_family
from ttgen.spec import load_spec
from ttgen.trace import trace_model
from ttgen.trace.convert import graph_from_exported

SPEC = Path(__file__).resolve().parents[2] / "specs" / "llama.yaml"


def _graph(module: torch.nn.Module, *inputs):
    return graph_from_exported(torch.export.export(module, inputs, strict=False))


class LlamaNorm(torch.nn.Module):
    def __init__(self, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(64))
        self.eps = eps

    def forward(self, x):
        x32 = x.to(torch.float32)
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(
            x.dtype
        )


class GemmaNorm(LlamaNorm):
    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)) * (
            1.0 + self.weight
        )


class SwiGLU(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gate, self.up, self.down = (torch.nn.Linear(64, 128, bias=False), torch.nn.Linear(64, 128, bias=False),
                                         torch.nn.Linear(128, 64, bias=False))  # fmt: skip

    def forward(self, x):
        return self.down(torch.nn.functional.silu(self.gate(x)) * self.up(x))


class GeGLU(SwiGLU):
    def forward(self, x):
        return self.down(torch.nn.functional.gelu(self.gate(x)) * self.up(x))


class GeGLUTanh(SwiGLU):
    def forward(self, x):
        return self.down(torch.nn.functional.gelu(self.gate(x), approximate="tanh") * self.up(x))


@pytest.fixture(scope="module")
def spec():
    return load_spec(SPEC)


def _find(spec, name, g):
    calls = [n for n in ordered_nodes(g) if g.nodes[n]["opcode"] == "call_function"]
    return find_all(spec.pattern(name).compiled, g, list(reversed(calls)), set(calls))


def test_rms_norm_matches_llama_style_and_captures_eps(spec):
    envs = _find(spec, "rms_norm", _graph(LlamaNorm(1e-6), torch.randn(2, 64)))
    assert len(envs) == 1
    assert envs[0].consts["eps"] == 1e-6 and envs[0].params["weight"][1] == "weight"


def test_rms_norm_takes_gemma_one_plus_w_as_an_offset(spec):
    (env,) = _find(spec, "rms_norm", _graph(GemmaNorm(), torch.randn(2, 64)))
    assert env.consts["weight_offset"] == 1.0 and env.params["weight"][1] == "weight"
    (env,) = _find(spec, "rms_norm", _graph(LlamaNorm(1e-6), torch.randn(2, 64)))
    assert "weight_offset" not in env.consts


def test_gated_mlp_matches_swiglu_and_tanh_geglu_capturing_the_activation(spec):
    envs = _find(spec, "gated_mlp", _graph(SwiGLU(), torch.randn(2, 64)))
    assert [sorted(v for _, v in e.params.values()) for e in envs] == [
        ["down.weight", "gate.weight", "up.weight"]
    ]
    assert "gelu_approximate" not in envs[0].consts
    (env,) = _find(spec, "gated_mlp", _graph(GeGLUTanh(), torch.randn(2, 64)))
    assert env.consts["gelu_approximate"] == "tanh"
    # the exact GELU (no `approximate` in the graph) is not taken yet
    assert _find(spec, "gated_mlp", _graph(GeGLU(), torch.randn(2, 64))) == []


def test_commutative_operands_and_consistent_captures():
    class M(torch.nn.Module):
        def forward(self, a, b):
            return (b * a) + (a * b)

    g = _graph(M(), torch.randn(4), torch.randn(4))
    pat = Pattern("p", parse("add(mul(%a, %b), mul(%a, %b))"))
    calls = [n for n in ordered_nodes(g) if g.nodes[n]["opcode"] == "call_function"]
    (env,) = find_all(pat, g, list(reversed(calls)), set(calls))
    assert {env.nodes["a"], env.nodes["b"]} == {"a", "b"}
    # a name captured twice must be the same node: x*x is not x*y
    same = Pattern("q", parse("mul(%x, %x)"))
    assert find_all(same, g, calls, set(calls)) == []


def test_pattern_syntax_errors():
    for bad, message in [("mul(%a", "expected"), ("frob(%a)", "unknown op"), ("mul(x)", "unknown name 'x'"),
                         ("linear(%x, @b?, @w)", "optional parameters must come last")]:  # fmt: skip
        with pytest.raises(PatternError, match=message):
            parse(bad)


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
def test_llama_spec_covers_three_families(spec, family):
    model, source = build_model(get_family(family))
    trace = trace_model(model, source, seq_len=64)
    for mode, g in trace.graphs.items():
        result = match_graph(spec, g, mode)
        assert result.uncovered == (), (
            mode,
            [(n, g.nodes[n]["module"], g.nodes[n]["op"]) for n in result.uncovered],
        )
        by_rule = {}
        for m in result.matches:
            by_rule.setdefault(m.rule, []).append(m)
        assert (
            len(by_rule["tt.attention"])
            == len(by_rule["tt.mlp"])
            == len(by_rule["tt.decoder"])
            == 2
        )
        assert len(by_rule["tt.rms_norm"]) == 5
        attn = by_rule["tt.attention"][0]
        assert attn.layer == 0 and attn["w_q"] == "model.layers.0.self_attn.q_proj.weight"
        # the differences between families are captured facts, not separate rules
        assert (attn.get("b_q") is not None) == (family == "qwen2")
        window = [
            m.get("sliding_window")
            for m in by_rule["tt.positions_and_masks"]
            if m.get("sliding_window")
        ]
        assert window == ([64] if family == "mistral" else [])
        if mode == "decode":
            assert attn["k_cache"] == "key_cache_0" and attn["v_cache"] == "value_cache_0"
        # every node is in exactly one match
        seen = [n for m in result.matches for n in m.nodes]
        assert len(seen) == len(set(seen))
        assert set(seen) | set(result.structural) == set(g.nodes)


def test_gemma_is_covered_by_llama_rules(spec):
    """Gemma is Llama's decoder with (1 + w) norms, a GeGLU MLP and the embeddings scaled by a
    scalar buffer: the shared patterns capture the offset, the activation and the scale's buffer."""
    from transformers import GemmaConfig, GemmaForCausalLM

    cfg = GemmaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
                      num_key_value_heads=1, head_dim=16, vocab_size=256, max_position_embeddings=128)  # fmt: skip
    cfg._attn_implementation = "sdpa"
    model = GemmaForCausalLM(cfg).eval()
    from ttgen.models.registry import ModelSource

    trace = trace_model(model, ModelSource("gemma", preset="test"), modes=("prefill",), seq_len=32)
    g = trace.graphs["prefill"]
    result = match_graph(spec, g, "prefill")
    assert not result.uncovered
    norms = [m for m in result.matches if m.rule == "tt.rms_norm"]
    assert len(norms) == 3 and {m["weight_offset"] for m in norms} == {1.0}
    (mlp,) = [m for m in result.matches if m.rule == "tt.mlp"]
    assert mlp["gelu_approximate"] == "tanh"
    (emb,) = [m for m in result.matches if m.rule == "tt.embedding"]
    assert emb["embed_scale"] == "model.embed_tokens.embed_scale"


def test_check_cli_exit_codes(capsys):
    from ttgen.cli import main

    assert main(["check", str(SPEC), "--seq-len", "32"]) == 0
    out = capsys.readouterr().out
    assert "tt.attention" in out and "0 uncovered" in out


def test_check_lists_uncovered_nodes_and_exits_1(tmp_path, monkeypatch, capsys):
    import shutil

    from ttgen.cli import main

    shutil.copytree(SPEC.parent, tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "specs" / "llama.yaml"
    text = path.read_text()
    start = text.index("  - name: tt.mlp")
    end = text.index("  - name: tt.decoder")
    path.write_text(text[:start] + text[end:])
    assert main(["check", "specs/llama.yaml", "--seq-len", "32"]) == 1
    out = capsys.readouterr().out
    assert (
        "uncovered in prefill" in out and "model.layers.0.mlp" in out and "aten.silu.default" in out
    )
