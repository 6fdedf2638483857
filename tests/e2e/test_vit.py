"""ViT image classifiers through the model-kind core: traced in their one mode (`forward` on
pixel_values), every node of specs/vit.yaml's rules covered exactly once, each block kind's facts
read from its own captures; planned for N150 and P150 at tt-metal's batches, emitted, and the
generated package's parity tests pass on a checkpoint's own weights."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ttgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "vit.yaml")


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ttgen: error: "), err
    return err[0]


@pytest.fixture(scope="module")
def analysis():
    from ttgen.pipeline import analyze
    from ttgen.spec import load_spec

    return analyze(load_spec(SPEC), batch=2)


@pytest.mark.parametrize("preset", ["tiny", "vit-base-patch16-224"])
def test_every_node_is_covered_exactly_once(preset, capsys):
    assert main(["check", SPEC, "--preset", preset]) == 0
    out = capsys.readouterr().out
    assert "0 uncovered" in out and "forward:" in out and "prefill" not in out


def test_one_mode_forward_on_pixel_values(analysis):
    assert list(analysis.trace.graphs) == ["forward"]
    g = analysis.trace.graphs["forward"]
    (pixels,) = [n for n, a in g.nodes(data=True) if a.get("kind") == "user_input"]
    assert g.nodes[pixels]["outputs"][0]["shape"] == [2, 3, 32, 32]  # batch, channels, image, image


def test_block_facts_from_their_own_captures(analysis):
    from ttgen.blocks import get_block

    result = analysis.matches["forward"]
    shapes = {a["param"]: tuple(a["outputs"][0]["shape"]) for _, a in analysis.trace.graphs["forward"].nodes(data=True)
              if a.get("kind") == "parameter"}  # fmt: skip

    def facts(template):
        return get_block(template).facts(
            [m for m in result.matches if m.template == template], shapes
        )

    emb = facts("vit_embeddings")
    assert (emb.patch_size, emb.channels, emb.hidden, emb.tokens) == (8, 3, 128, 17)
    att = facts("vit_attention")
    assert (att.n_layers, att.n_heads, att.head_dim, att.bias) == (2, 4, 32, True)
    assert att.scale == pytest.approx(32**-0.5)
    assert facts("gelu_mlp").hidden == 256
    assert facts("classifier").classes == 10
    assert facts("layer_norm").eps == 1e-12


def test_trace_cli_exports_the_forward_only(tmp_path, capsys):
    out = tmp_path / "vit.json"
    assert main(["trace", "vit", "--out", str(out), "--quiet"]) == 0
    assert list(json.loads(out.read_text())["graphs"]) == ["forward"]
    assert main(["trace", "vit", "--mode", "decode", "--out", str(tmp_path / "x.json")]) == 2
    assert "--mode decode: image_classifier models are traced in forward" in _one_line(capsys)


@pytest.mark.parametrize(("device", "batch"), [("n150", 8), ("p150", 10)])
def test_vit_base_plans_at_tt_metals_batch(device, batch):
    """vit-base-patch16-224 at tt-metal's published batch per device: every op's configs validated,
    the sequence at its logical 197 tokens (padded to 224 in tiles), the weights in DRAM."""
    from ttgen.pipeline import analyze
    from ttgen.plan import make_plan
    from ttgen.spec import load_spec

    plan = make_plan(
        analyze(load_spec(SPEC), preset="vit-base-patch16-224"), device=device, max_batch=batch
    )
    f = plan.facts
    assert (f.image_size, f.patch_size, f.tokens, f.dim, f.n_layers, f.n_heads, f.n_classes) == (
        224, 16, 197, 768, 12, 12, 1000)  # fmt: skip
    assert plan.kv_cache is None and plan.modes == ("forward",)
    attention = plan.module("vit_attention")
    scores = next(op for op in attention.ops_for("forward") if op.name == "scores")
    assert scores.output.shape == (batch, 12, 197, 197)
    assert 0.15e9 < plan.dram_weight_bytes < 0.2e9  # 86M parameters in bf16


def test_every_capture_reaches_the_generated_code(tmp_path, analysis):
    """Each HF parameter of the tiny ViT is a source of exactly the planned weights (nothing dropped)."""
    from ttgen.plan import make_plan

    plan = make_plan(analysis)
    used = {f"{inst}.{src}".lstrip(".") for m in plan.modules for w in m.weights for inst in m.instances
            for src in w.sources}  # fmt: skip
    params = {
        a["param"]
        for _, a in analysis.trace.graphs["forward"].nodes(data=True)
        if a.get("kind") == "parameter"
    }
    assert params == used


def test_a_checkpoint_emits_and_its_generated_tests_pass(tmp_path, capsys):
    """A ViT checkpoint with non-trivial weights (LayerNorm weights != 1, biases != 0) emits a package
    whose parity tests run on the checkpoint's own weights and pass."""
    import subprocess
    import sys

    import torch
    import transformers

    from ttgen.models.registry import get_family, load_presets

    config = {
        k: v for k, v in load_presets(get_family("vit"))["tiny"].items() if k != "torch_dtype"
    }
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(transformers.ViTConfig(**config))
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() > 1 and bool(p.min() == p.max()):
                p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(tmp_path / "vit_ckpt")
    out = tmp_path / "vit_pkg"
    assert (
        main(
            [
                "emit",
                SPEC,
                "--checkpoint",
                str(tmp_path / "vit_ckpt"),
                "--out",
                str(out),
                "--batch",
                "4",
            ]
        )
        == 0
    )
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert "9 passed" in run.stdout


def test_the_spec_is_checked_against_the_model_kind(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "specs" / "vit.yaml"
    text = spec.read_text()
    spec.write_text(text.replace("  max_batch: 8", "  max_batch: 8\n  max_seq_len: 256"))
    assert main(["check", "specs/vit.yaml"]) == 2
    assert "max_seq_len: unknown key in target" in _one_line(capsys)
    spec.write_text(text.replace("  top1: 0.99", "  top1: 0.99\n  decode_pcc: 0.9"))
    assert main(["check", "specs/vit.yaml"]) == 2
    assert "decode_pcc: unknown key in tests" in _one_line(capsys)
    spec.write_text(text.replace("family: vit", "family: llama"))
    assert main(["check", "specs/vit.yaml"]) == 2
    assert (
        "the spec is for model kind 'image_classifier'; LlamaForCausalLM is of kind 'causal_lm'"
        in _one_line(capsys)
    )


def test_a_vit_checkpoint_folder_checks(tmp_path, capsys):
    """--checkpoint loads a ViT folder through the same strict loader (the vit family's class)."""
    import torch
    import transformers

    from ttgen.models.registry import get_family, load_presets

    config = {
        k: v for k, v in load_presets(get_family("vit"))["tiny"].items() if k != "torch_dtype"
    }
    torch.manual_seed(0)
    transformers.ViTForImageClassification(transformers.ViTConfig(**config)).save_pretrained(
        tmp_path / "vit"
    )
    assert main(["check", SPEC, "--checkpoint", str(tmp_path / "vit")]) == 0
    assert "0 uncovered" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "args"), [("vit", []), ("vit_digits", ["--preset", "digits"])])
def test_committed_vit_packages_equal_a_fresh_emission(tmp_path, name, args):
    from tests.emit.test_emit import _package_files

    out = tmp_path / name
    assert main(["emit", SPEC, *args, "--out", str(out)]) == 0
    assert _package_files(out) == _package_files(ROOT / "generated" / name)


@pytest.fixture(scope="module")
def digits_results(tmp_path_factory):
    """The held-out digits through generated/vit_digits with the trained digits ViT (trained once,
    cached), and the same images through HF."""
    from ttgen.classify import classify

    return classify(ROOT / "generated" / "vit_digits", dataset="digits", checkpoint=None,
                    weight_cache=tmp_path_factory.mktemp("weights"))  # fmt: skip


def test_held_out_digits_agree_with_hf(digits_results):
    r = digits_results
    assert len(r.names) == 360 and r.hf_accuracy > 0.9  # a trained model, not chance (0.1)
    assert r.agreement >= 0.99
    assert abs(r.accuracy - r.hf_accuracy) <= 0.005


def test_image_files_classify_as_the_dataset_does(tmp_path, capsys):
    """PNG files of held-out digits (scaled to 0..255, enlarged 8x) classify as their pixels do."""
    import numpy as np
    from PIL import Image

    from ttgen.models.digits import digits_split

    *_, x, y = digits_split()
    files = []
    for i in range(4):
        pixels = ((x[i, 0].numpy() + 1) / 2 * 255).round().astype(np.uint8)
        f = tmp_path / f"digit{i}.png"
        Image.fromarray(pixels).resize((64, 64), Image.NEAREST).save(f)
        files += ["--image", str(f)]
    assert (
        main(
            [
                "run",
                str(ROOT / "generated" / "vit_digits"),
                *files,
                "--weight-cache",
                str(tmp_path / "w"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "top-1 agreement with HF: 1.0000 (4 images)" in out
    predicted = [
        int(line.split("class ")[1].split()[0]) for line in out.splitlines() if ": class " in line
    ]
    assert predicted == y[:4].tolist()


@pytest.mark.parametrize(("extra", "message"), [
    (["--image", "missing.png"], "--image missing.png: no such file"),
    (["--dataset", "mnist"], "--dataset mnist: unknown (known: digits)"),
    (["--prompt", "hello"], "is an image classifier: give --image FILE or --dataset digits, not prompts"),
    ([], "give --image FILE (repeatable) or --dataset digits"),
])  # fmt: skip
def test_bad_run_arguments_are_one_line_exit_2(tmp_path, capsys, extra, message):
    args = [
        "run",
        str(ROOT / "generated" / "vit_digits"),
        *extra,
        "--weight-cache",
        str(tmp_path / "w"),
    ]
    assert main(args) == 2
    assert message in _one_line(capsys)
