"""ViT image classifiers through the model-kind core: traced in their one mode (`forward` on
pixel_values), every node of specs/vit.yaml's rules covered exactly once, each block kind's facts
read from its own captures. Planning the image_classifier kind is the next step (issue 17): the
planner refuses it in one line until its block kinds have lowerings."""

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


def test_planning_is_refused_in_one_line(capsys):
    assert main(["plan", SPEC]) == 2
    assert "'image_classifier' models check (ttgen check) but are not planned yet" in _one_line(
        capsys
    )


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
