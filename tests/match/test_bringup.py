"""The bring-up report of `ttgen check`: for each uncovered module, the rule that came closest and the
first pattern node where it stopped matching; and `--html`, a picture of one layer coloured by rule.
Tried on architectures specs/llama.yaml does not cover: Gemma 3 with two layer types (a second
rotary table), StableLm (LayerNorm, partial rotary) and GPT-NeoX (no rule targets its module names)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from ttgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "llama.yaml")
COMMON = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, vocab_size=512,
              max_position_embeddings=256)  # fmt: skip


def _checkpoint(root: Path, name: str, **extra) -> Path:
    import transformers

    cls = {"gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM"), "stablelm": ("StableLmConfig", "StableLmForCausalLM"),
           "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM")}[name]  # fmt: skip
    config = getattr(transformers, cls[0])(**COMMON, **extra)
    torch.manual_seed(0)
    out = root / name
    getattr(transformers, cls[1])(config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("bringup")
    return {
        "gemma3": _checkpoint(
            root,
            "gemma3",
            num_key_value_heads=2,
            head_dim=32,
            sliding_window=64,
            layer_types=["sliding_attention", "full_attention"],
        ),  # fmt: skip
        "stablelm": _checkpoint(root, "stablelm", num_key_value_heads=4),
        "gpt_neox": _checkpoint(root, "gpt_neox"),
    }


def _report(capsys, checkpoint: Path, *extra) -> list[list[str]]:
    """The rows of the prefill bring-up table: [module, rule, expected, found, why]."""
    capsys.readouterr()
    assert main(["check", SPEC, "--checkpoint", str(checkpoint), "--seq-len", "64", *extra]) == 1
    out = capsys.readouterr().out
    table = out.split("bring-up report (prefill)", 1)[1].split("decode:", 1)[0]
    rows = []
    for line in table.splitlines():
        if line.startswith("│"):
            rows.append([c.strip() for c in line.strip("│").split("│")])
    return rows


def _row(rows, module: str) -> list[str]:
    (row,) = [r for r in rows if r[0] == module]
    return row


def test_gemma3_layer_types_and_their_rotary_tables(checkpoints, capsys):
    """A sliding-window and a global layer: each type has its rotary table; the rotary setup's
    pattern explains one, the other's ops are what is left (per-layer attention types)."""
    rows = _report(capsys, checkpoints["gemma3"])
    assert [r[0] for r in rows] == ["model.rotary_emb"]
    _, rule, expected, found, why = rows[0]
    assert rule == "tt.rotary_setup" and why == "ops its patterns do not consume"
    assert "aten.cos.default" in found and "aten.sin.default" in found


def test_stablelm_layer_norm_and_partial_rotary(checkpoints, capsys):
    rows = _report(capsys, checkpoints["stablelm"])
    _, rule, expected, found, why = _row(rows, "model.layers.{0..1}.input_layernorm")
    assert rule == "tt.rms_norm (rms_norm)" and expected.startswith("mul(@weight")
    assert found.startswith("layer_norm(") and "@bias" in found and why == "another op"
    _, rule, expected, found, _ = _row(rows, "model.layers.{0..1}.self_attn")
    assert rule == "tt.attention (attention)" and expected == "mul(cast(q), %cos)"
    # partial rotary: only the first 8 of each head's 32 dims are rotated
    assert found.startswith("mul(slice(transpose(...), dim=3, start=0, end=8)")


def test_gpt_neox_names_modules_no_rule_targets(checkpoints, capsys):
    rows = _report(capsys, checkpoints["gpt_neox"])
    _, rule, expected, found, why = _row(rows, "gpt_neox.layers.{0..1}.attention")
    assert (
        rule == "-"
        and why == "no rule targets it"
        and "linear" in found
        and "scaled_dot_product_attention" in found
    )
    assert _row(rows, "gpt_neox.layers.{0..1}.mlp")[3] == "gelu, linear"


def test_html_picture_of_one_layer(checkpoints, capsys, tmp_path):
    page = tmp_path / "stablelm.html"
    rows = _report(capsys, checkpoints["stablelm"], "--html", str(page))
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "model.layers.0" in text
    boxes = re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"', text)
    red = boxes.count("#fb8072")
    assert red > 0 and len(boxes) > red  # uncovered ops marked, covered ones coloured by rule
    assert "tt.attention" in text and "uncovered" in text
    assert "layer_norm(" in text and len(rows) >= 2  # the report beside the picture


def test_html_to_an_unwritable_place_is_refused_before_tracing(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["check", SPEC, "--html", str(blocker / "x.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot write there" in err[0]
