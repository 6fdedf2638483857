"""Families by math: specs/llama.yaml takes any checkpoint its rules cover — Qwen2 and Mistral
folders check, emit and pass their generated tests with their own (non-trivial) weights; what the
spec does not cover, or cannot emit faithfully, is refused with one line naming the place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ttgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "llama.yaml")


def _checkpoint(tmp_path: Path, family: str, name: str | None = None, **changes) -> Path:
    """A tiny checkpoint of `family`'s preset with seeded weights in which no parameter is constant."""
    from ttgen.models.checkpoint import save_tiny_checkpoint

    return save_tiny_checkpoint(family, tmp_path / (name or family), **changes)


def _one_line_error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ttgen: error:"), err
    return err[0]


@pytest.fixture(scope="module")
def emitted(tmp_path_factory):
    """family → (its tiny checkpoint, the package emitted from it), each built once per module."""
    done: dict[str, tuple[Path, Path]] = {}

    def get(family: str) -> tuple[Path, Path]:
        if family not in done:
            root = tmp_path_factory.mktemp(family)
            ckpt = _checkpoint(root, family, **({"sliding_window": 48, "use_sliding_window": True}
                                                if family == "mistral" else {}))  # fmt: skip
            out = root / f"gen_{family}"
            assert (
                main(
                    ["emit", SPEC, "--checkpoint", str(ckpt), "--seq-len", "64", "--out", str(out)]
                )
                == 0
            )
            done[family] = ckpt, out
        return done[family]

    return get


def _run_broken(out: Path, module: str, old: str, new: str, tests: str, *args: str):
    """The package's `tests` (a file under its tests/) run after `old` → `new` in `module`."""
    path = out / module
    text = path.read_text()
    assert old in text, f"{module} does not hold {old!r}"
    path.write_text(text.replace(old, new))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ttnn=emu",
                           str(out / "tests" / tests), *args], capture_output=True, text=True, cwd=out.parent)  # fmt: skip


def _copy_of(emitted, family: str, out: Path) -> Path:
    """A copy of the family's emitted package to change (a break test)."""
    import shutil

    shutil.copytree(emitted(family)[1], out)
    return out


@pytest.mark.parametrize(
    "family", ["qwen2", "mistral", "qwen3", "phi3", "granite", "olmo2", "gemma", "gemma3"]
)
def test_family_checkpoint_emits_and_passes_with_its_own_weights(family, emitted, tmp_path, capsys):
    ckpt, out = emitted(family)  # emit plans only a graph with 0 uncovered nodes (check's exit 0)
    conftest = (out / "tests" / "conftest.py").read_text()
    assert f'EMITTED_FROM_CHECKPOINT = "{ckpt}"' in conftest
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ttnn=emu", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_llama_with_attention_bias_is_refused_naming_the_dropped_bias(tmp_path, capsys):
    """Llama's attention_bias adds o_proj.bias, which the attention block does not implement: the
    plan refuses it (it used to pass check and emit, and the code dropped the bias)."""
    ckpt = _checkpoint(tmp_path, "llama", "attn_bias", attention_bias=True)
    line = _one_line_error(capsys, ["plan", SPEC, "--checkpoint", str(ckpt), "--seq-len", "64"])
    assert "capture @b_o" in line and "model.layers.0.self_attn.o_proj.bias" in line
    assert "specs/llama.yaml" in line
    out = tmp_path / "gen"
    _one_line_error(
        capsys, ["emit", SPEC, "--checkpoint", str(ckpt), "--seq-len", "64", "--out", str(out)]
    )
    assert not out.exists()


def test_llama_with_mlp_bias_is_refused(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, "llama", "mlp_bias", mlp_bias=True)
    line = _one_line_error(capsys, ["plan", SPEC, "--checkpoint", str(ckpt), "--seq-len", "64"])
    assert "uncovered" in line


def test_an_unregistered_architecture_gets_a_coverage_report(tmp_path, capsys):
    """A model_type the registry does not list is built with transformers' Auto classes and checked
    for coverage instead of being refused (no rule targets GPT-NeoX's module names)."""
    import transformers

    config = transformers.GPTNeoXConfig(hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                        num_attention_heads=4, vocab_size=512, max_position_embeddings=256)  # fmt: skip
    transformers.GPTNeoXForCausalLM(config).save_pretrained(tmp_path / "neox")
    capsys.readouterr()
    assert main(["check", SPEC, "--checkpoint", str(tmp_path / "neox"), "--seq-len", "32"]) == 1
    out = capsys.readouterr().out
    assert "uncovered" in out and "gpt_neox.layers" in out and "no rule targets it" in out


def test_phi3_fused_projections_are_split_at_load(emitted, tmp_path):
    out = _copy_of(emitted, "phi3", tmp_path / "gen_phi3")
    attention, mlp = (out / "attention.py").read_text(), (out / "mlp.py").read_text()
    assert 'state_dict[f"{prefix}.qkv_proj.weight"][0:256]' in attention  # q rows, then k, then v
    assert 'state_dict[f"{prefix}.gate_up_proj.weight"][512:1024].T' in mlp  # up: the second half


def test_phi3_longrope_is_refused_in_one_line(tmp_path, capsys):
    rope = {"rope_type": "longrope", "short_factor": [1.0] * 16, "long_factor": [2.0] * 16,
            "original_max_position_embeddings": 512, "rope_theta": 10000.0}  # fmt: skip
    ckpt = _checkpoint(
        tmp_path, "phi3", "longrope", rope_parameters=rope, original_max_position_embeddings=512
    )
    line = _one_line_error(capsys, ["plan", SPEC, "--checkpoint", str(ckpt), "--seq-len", "64"])
    assert "longrope" in line


def test_dynamic_rope_is_refused_at_trace_and_linear_rope_is_supported(tmp_path, capsys):
    dynamic = _checkpoint(tmp_path, "llama", "dynamic",
                          rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 10000.0})  # fmt: skip
    line = _one_line_error(capsys, ["check", SPEC, "--checkpoint", str(dynamic), "--seq-len", "64"])
    assert "rope_type 'dynamic'" in line
    linear = _checkpoint(tmp_path, "llama", "linear",
                         rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0})  # fmt: skip
    out = tmp_path / "gen_linear"
    assert (
        main(["emit", SPEC, "--checkpoint", str(linear), "--seq-len", "64", "--out", str(out)]) == 0
    )
    assert "inv_freq = inv_freq / 4.0" in (out / "rope.py").read_text()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ttnn=emu",
                           str(out / "tests" / "test_modules.py")], capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]


_READ_KEYS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ttgen import emu
emu.install()
import importlib, torch, ttnn
from ttgen.models.checkpoint import load_checkpoint
from pathlib import Path

class Recording(dict):
    read = set()

    def __getitem__(self, key):
        Recording.read.add(key)
        return dict.__getitem__(self, key)

model = importlib.import_module(sys.argv[2] + ".model")
state_dict = load_checkpoint(Path(sys.argv[3])).state_dict()  # the loaders' contract: HF's state dict
weights = Recording(state_dict)
device = ttnn.open_device(device_id=0)
model.Transformer(device, weights)
print(json.dumps([sorted(Recording.read), sorted(state_dict)]))
"""


@pytest.mark.parametrize("family", ["llama", "qwen2"])  # untied and tied LM heads
def test_the_generated_loaders_read_every_parameter_of_the_checkpoint(family, tmp_path):
    """Every tensor of the checkpoint is read by the generated loaders, except those no op of the
    traced graph reads (a tied LM head's second name)."""
    import json

    from ttgen.pipeline import analyze
    from ttgen.spec import load_spec

    ckpt = _checkpoint(tmp_path, family)
    out = tmp_path / f"pkg_{family}"
    assert (
        main(["emit", SPEC, "--checkpoint", str(ckpt), "--seq-len", "64", "--out", str(out)]) == 0
    )
    proc = subprocess.run([sys.executable, "-c", _READ_KEYS, str(tmp_path), out.name, str(ckpt)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    read, stored = map(set, json.loads(proc.stdout.strip().splitlines()[-1]))
    analysis = analyze(load_spec(SPEC), checkpoint=ckpt, seq_len=64)
    g = analysis.trace.graphs["prefill"]
    unread = {
        g.nodes[n]["param"]
        for n in analysis.matches["prefill"].structural
        if g.nodes[n].get("param")
    }
    unread &= stored  # (graph inputs and non-persistent buffers are structural too)
    assert read == stored - unread, (sorted(stored - unread - read), sorted(read - stored))
    if family == "qwen2":  # tied: one of the two names of the shared tensor is read, twice
        assert len(unread) == 1 and unread < {"lm_head.weight", "model.embed_tokens.weight"}


def test_qwen3_qk_norm_reaches_the_generated_code(emitted, tmp_path):
    """Qwen3's per-head q/k RMSNorm is matched by the shared attention pattern and lowered to
    ttnn.rms_norm before RoPE in both modes, its weights loaded in RoPE pair order."""
    out = _copy_of(emitted, "qwen3", tmp_path / "gen_qwen3")
    code = (out / "attention.py").read_text()
    assert code.count("ttnn.rms_norm(") == 4  # q and k, decode and prefill
    assert 'to_interleaved_pairs(state_dict[f"{prefix}.q_norm.weight"], 1)' in code
    assert "QK_NORM_EPS = 1e-06" in code


def test_qwen3_real_size_presets_plan_or_fail_with_the_numbers(capsys):
    for device in ("n150", "p150"):
        assert (
            main(["plan", SPEC, "--preset", "qwen3-8b", "--device", device, "--num-layers", "2"])
            == 0
        )
    capsys.readouterr()
    assert main(["plan", SPEC, "--preset", "qwen3-32b", "--device", "n150"]) == 2
    err = capsys.readouterr().err
    assert "DRAM on n150" in err and "GB >" in err


def test_granite_multipliers_are_folded_into_the_weights(emitted, tmp_path):
    """Granite's four constants by their math: the embedding scale, the residual scale and the
    logits scaling match patterns of the shared spec and are folded into the embedding table, the
    attention's and the MLP's output projections and the LM head; the attention multiplier is the
    SDPA scale. A loader that dropped one fails the generated tests (the norm check sees the factor)."""
    out = _copy_of(emitted, "granite", tmp_path / "gen_granite")
    assert "(weight * 6.0)" in (out / "embedding.py").read_text()
    assert '.o_proj.weight"].T * 0.4)' in (out / "attention.py").read_text()
    mlp = (out / "mlp.py").read_text()
    assert '.down_proj.weight"].T * 0.4)' in mlp
    assert ".T * 0.25)" in (out / "lm_head.py").read_text()
    assert "ATTN_SCALE = 0.0625" in (out / "model_config.py").read_text()
    proc = _run_broken(out, "mlp.py", '.down_proj.weight"].T * 0.4)', '.down_proj.weight"].T)', "test_modules.py",
                       "-k", "mlp")  # fmt: skip
    assert proc.returncode != 0 and "norm ratio" in proc.stdout


def test_granite_real_size_presets_plan(capsys):
    for preset in ("granite-3.1-2b", "granite-3.2-8b"):
        for device in ("n150", "p150"):
            assert (
                main(["plan", SPEC, "--preset", preset, "--device", device, "--num-layers", "2"])
                == 0
            )


def test_olmo2_post_norms_and_whole_projection_qk_norm(emitted, tmp_path):
    """OLMo 2 by its math: the layout reads post-norm sub-layers from the layer's dataflow (no norm
    before attention or MLP, one after each), and the QK-norm over the whole q and k projections
    becomes slices of the fused QKV output, two full-width norms and a concat before the head
    split; its weights load in the heads' RoPE pair order. Dropping that order fails the tests."""
    out = _copy_of(emitted, "olmo2", tmp_path / "gen_olmo2")
    decoder = (out / "decoder.py").read_text()
    assert (
        "h = x + post_attention_layernorm(self_attn(x)); out = h + post_feedforward_layernorm(mlp(h))"
        in decoder
    )
    assert "attention_norm" not in decoder and "self.ff_post_norm.forward_decode(ff_out)" in decoder
    attention = (out / "attention.py").read_text()
    assert attention.count("ttnn.rms_norm(") == 4 and attention.count("ttnn.concat(") == 2
    pairs = 'to_interleaved_pairs(state_dict[f"{prefix}.k_norm.weight"], N_KV_HEADS)'
    proc = _run_broken(out, "attention.py", pairs, 'state_dict[f"{prefix}.k_norm.weight"]', "test_modules.py",
                       "-k", "attention")  # fmt: skip
    assert proc.returncode != 0 and "PCC" in proc.stdout


def test_a_layer_whose_residual_add_skips_its_norm_is_refused():
    """The decoder layout checks that each residual add adds the output of its sub-layer's last block."""
    from types import SimpleNamespace

    from ttgen.blocks.causal_lm import decoder_roles
    from ttgen.blocks.layout import Child
    from ttgen.plan.facts import PlanError

    linear = {
        "op": "aten.linear.default",
        "inputs": ["x"],
        "constants": {},
        "outputs": [{"dtype": "float32"}],
    }
    graph = SimpleNamespace(nodes={"add_a": {"index": 10, "op": "aten.add.Tensor"},
                                   "add_b": {"index": 20, "op": "aten.add.Tensor"},
                                   **dict.fromkeys(("o_proj", "down_proj", "norm_a", "norm_b"), linear)})  # fmt: skip
    layer = SimpleNamespace(module="model.layers.0", nodes=("add_a", "add_b"),
                            captures=(("update.0", "o_proj"), ("update.1", "down_proj")))  # fmt: skip
    node = lambda *names: SimpleNamespace(nodes=names)  # noqa: E731
    children = [Child("attention", "self_attn", 1, node("o_proj")), Child("rms_norm", "post_attention_layernorm", 5, node("norm_a")),
                Child("mlp", "mlp", 11, node("down_proj")), Child("rms_norm", "post_feedforward_layernorm", 15, node("norm_b"))]  # fmt: skip
    with pytest.raises(PlanError, match="does not add its output"):
        decoder_roles(layer, children, graph)
    layer.captures = (("update.0", "norm_a"), ("update.1", "norm_b"))
    assert decoder_roles(layer, children, graph) == (
        "attention",
        "attention_post_norm",
        "feed_forward",
        "ff_post_norm",
    )


def test_olmo2_real_size_presets_plan():
    for preset in ("olmo-2-1b", "olmo-2-7b"):
        for device in ("n150", "p150"):
            assert (
                main(["plan", SPEC, "--preset", preset, "--device", device, "--num-layers", "2"])
                == 0
            )


def test_gemma_norm_offset_geglu_and_embedding_scale_reach_the_code(emitted, tmp_path):
    """Gemma by its math: the (1 + w) norms fold the offset into their weights, the MLP gates with
    the tanh GELU fused into ttnn.mul, and the embedding scale (a scalar buffer, sqrt(hidden)) is
    folded into the table; a loader that dropped the scale fails the generated tests."""
    out = _copy_of(emitted, "gemma", tmp_path / "gen_gemma")
    assert "(weight + 1.0).reshape(" in (out / "rmsnorm.py").read_text()
    assert "[ttnn.UnaryWithParam(ttnn.UnaryOpType.GELU, 1.0)]" in (out / "mlp.py").read_text()
    embedding = (out / "embedding.py").read_text()
    assert "(weight * 16.0)" in embedding  # sqrt(256)
    proc = _run_broken(out, "embedding.py", "(weight * 16.0)", "weight", "test_model.py")
    assert proc.returncode != 0


def test_gemma_real_size_presets_plan(capsys):
    for preset in ("gemma-2b", "gemma-7b"):
        for device in ("n150", "p150"):
            assert (
                main(["plan", SPEC, "--preset", preset, "--device", device, "--num-layers", "2"])
                == 0
            )
    capsys.readouterr()
    assert (
        main(["plan", SPEC, "--preset", "gemma-7b", "--device", "n150"]) == 2
    )  # MHA: 8 GB of KV cache
    assert "DRAM on n150" in capsys.readouterr().err


def test_gemma3_qk_norm_offset_is_folded_and_checked(emitted, tmp_path):
    """Gemma 3's per-head QK-norm scales by (1 + w) after the heads' transpose: the offset is folded
    into the q/k norm weights (in RoPE pair order); dropping it fails the attention tests. Its
    sandwich norms are pre- and post-norm sub-layers; query_pre_attn_scalar is SDPA's scale."""
    out = _copy_of(emitted, "gemma3", tmp_path / "gen_gemma3")
    assert "ATTN_SCALE = 0.125" in (out / "model_config.py").read_text()  # 64 ** -0.5
    decoder = (out / "decoder.py").read_text()
    assert (
        "self.attention_post_norm.forward_decode(attn_out)" in decoder
        and "self.ff_post_norm" in decoder
    )
    folded = 'to_interleaved_pairs((state_dict[f"{prefix}.k_norm.weight"] + 1.0), 1)'
    proc = _run_broken(out, "attention.py", folded, 'to_interleaved_pairs(state_dict[f"{prefix}.k_norm.weight"], 1)',
                       "test_modules.py", "-k", "attention")  # fmt: skip
    assert proc.returncode != 0 and "PCC" in proc.stdout


def test_layers_of_different_attention_types_are_refused(tmp_path, capsys):
    """Qwen2 with max_window_layers: layer 0 full attention, layer 1 sliding-window. One SDPA window
    for both would be silently wrong (the generated tests passed it: the window barely bites at
    their lengths), so the plan refuses, naming the layers."""
    ckpt = _checkpoint(
        tmp_path, "qwen2", "mixed", use_sliding_window=True, sliding_window=48, max_window_layers=1
    )
    line = _one_line_error(capsys, ["plan", SPEC, "--checkpoint", str(ckpt), "--seq-len", "64"])
    assert "per-layer attention types are not supported yet" in line
    assert (
        "model.layers.1.self_attn read the sliding-window mask, model.layers.0.self_attn the full"
        in line
    )


def test_gemma3_real_presets(capsys):
    """Its first layers (all sliding-window) plan at full width; the whole 5:1 stack is refused at
    coverage until per-layer-type rotary tables and windows are planned."""
    for device in ("n150", "p150"):
        assert (
            main(["plan", SPEC, "--preset", "gemma-3-1b", "--device", device, "--num-layers", "2"])
            == 0
        )
    capsys.readouterr()
    assert main(["check", SPEC, "--preset", "gemma-3-1b", "--seq-len", "64"]) == 1
    out = capsys.readouterr().out
    assert "model.rotary_emb" in out and "uncovered" in out
