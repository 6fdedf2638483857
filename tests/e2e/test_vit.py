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


# tt-metal's sharded ViT configs (vit.md §4): (op, program kind, grid, fields) per device
TT_METAL_CONFIGS = {
    "n150": {
        "qkv": (
            "2d",
            (8, 8),
            {"in0_block_w": 3, "out_subblock_w": 3, "per_core_M": 7, "per_core_N": 9},
        ),
        "scores": (
            "reuse",
            (6, 8),
            {"in0_block_w": 2, "out_subblock_w": 7, "per_core_M": 14, "per_core_N": 7},
        ),
        "context": (
            "reuse",
            (6, 8),
            {"in0_block_w": 7, "out_subblock_w": 2, "per_core_M": 14, "per_core_N": 2},
        ),
        "softmax": ("softmax_sharded", (6, 8), {"subblock_w": 7, "block_h": 14, "block_w": 7}),
        "wo": (
            "2d",
            (8, 8),
            {"in0_block_w": 3, "out_subblock_w": 3, "per_core_M": 7, "per_core_N": 3},
        ),
        "fc1": ("2d", (8, 8), {"in0_block_w": 3, "per_core_M": 7, "per_core_N": 12}),
        "norm": ("norm_sharded", (8, 8), {"subblock_w": 3, "block_h": 7, "block_w": 3}),
    },
    "p150": {
        "qkv": ("2d", (12, 10), {"in0_block_w": 2, "per_core_M": 7, "per_core_N": 6}),
        "scores": (
            "reuse",
            (12, 10),
            {"in0_block_w": 2, "out_subblock_w": 7, "per_core_M": 7, "per_core_N": 7},
        ),
        "context": (
            "reuse",
            (12, 10),
            {"in0_block_w": 7, "out_subblock_w": 2, "per_core_M": 7, "per_core_N": 2},
        ),
        "softmax": ("softmax_sharded", (12, 10), {"subblock_w": 7, "block_h": 7, "block_w": 7}),
        "wo": (
            "2d",
            (12, 10),
            {"in0_block_w": 2, "out_subblock_w": 2, "per_core_M": 7, "per_core_N": 2},
        ),
        # tt-metal's FF1 subblock is 1x4; ttgen takes the widest the bf16 dest holds (1x8), also valid
        "fc1": ("2d", (12, 10), {"in0_block_w": 2, "per_core_M": 7, "per_core_N": 8}),
        "fc2": (
            "2d",
            (12, 10),
            {"in0_block_w": 8, "out_subblock_w": 2, "per_core_M": 7, "per_core_N": 2},
        ),
        "norm": ("norm_sharded", (12, 10), {"subblock_w": 2, "block_h": 7, "block_w": 2}),
    },
}


@pytest.mark.parametrize(("device", "batch"), [("n150", 8), ("p150", 10)])
def test_vit_base_plans_tt_metals_sharded_vit(device, batch):
    """vit-base-patch16-224 at tt-metal's published batch per device: one image per core row, the
    sequence padded to 224, block-sharded activations and height-sharded heads — the program configs
    are tt-metal's own (vit.md §4), derived here from the model and the device grid."""
    from ttgen.pipeline import analyze
    from ttgen.plan import make_plan
    from ttgen.spec import load_spec

    plan = make_plan(analyze(load_spec(SPEC), preset="vit-base-patch16-224"), device=device, max_batch=batch,
                     precision="performance")  # fmt: skip
    f = plan.facts
    assert (f.image_size, f.patch_size, f.tokens, f.dim, f.n_layers, f.n_heads, f.n_classes) == (
        224, 16, 197, 768, 12, 12, 1000)  # fmt: skip
    assert plan.kv_cache is None and plan.modes == ("forward",)
    ops = {op.name: op for m in plan.modules for op in m.ops_for("forward")}
    assert ops["scores"].output.shape == (batch, 12, 224, 224)
    assert ops["scores"].output.memory.layout == "HEIGHT_SHARDED"
    for name, (kind, grid, fields) in TT_METAL_CONFIGS[device].items():
        pc = ops[name].program
        assert (pc.kind, pc.grid) == (kind, grid), name
        assert {k: dict(pc.fields)[k] for k in fields} == fields, name
    assert 0.08e9 < plan.dram_weight_bytes < 0.1e9  # 86M parameters in bfloat8_b


def test_the_sharded_layout_refuses_more_images_than_core_rows(tmp_path, capsys):
    assert main(["plan", SPEC, "--preset", "vit-base-patch16-224", "--batch", "12"]) == 2
    assert "12 images need 12 core rows, n150 has 8" in _one_line(capsys)


def test_dram_interleaved_activations_plan_and_pass_their_tests(tmp_path, monkeypatch):
    """`target.activations: interleaved`: the logical sequence in DRAM (the interleaved softmax masks
    the keys' tile padding), and the generated tests pass."""
    import subprocess
    import sys

    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    spec = tmp_path / "specs" / "vit.yaml"
    spec.write_text(
        spec.read_text().replace("  max_batch: 8", "  max_batch: 8\n  activations: interleaved")
    )
    out = tmp_path / "vit_interleaved"
    assert main(["emit", str(spec), "--out", str(out)]) == 0
    assert "SEQ = 17" in (out / "model_config.py").read_text()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]


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


def test_the_ignored_mask_is_proven_all_true(analysis):
    """The ViT attention runs without HF's mask: its lowering evaluates that mask (index math, no
    graph input) and finds every key visible; a mask that hides a key (here the graph edited to
    compare with 5, not 0) is refused, because dropping it would change the math."""
    import copy

    from ttgen.ir.graph import evaluate_constant
    from ttgen.plan import PlanError, make_plan

    g = analysis.trace.graphs["forward"]
    (m, *_) = [m for m in analysis.matches["forward"].matches if m.rule == "tt.attention"]
    mask = evaluate_constant(g, m.get("mask"))
    assert (
        mask.dtype.is_floating_point is False
        and bool(mask.all())
        and list(mask.shape) == [2, 1, 17, 17]
    )
    edited = copy.deepcopy(analysis)
    eg = edited.trace.graphs["forward"]
    (ge,) = [n for n in eg.nodes if eg.nodes[n]["op"] == "aten.ge.Scalar"]
    eg.nodes[ge]["constants"] = {"other": 5}
    with pytest.raises(PlanError, match=r"HF's attention mask \[2, 1, 17, 17\] hides some keys"):
        make_plan(edited)
    make_plan(analysis)  # the unedited mask plans
