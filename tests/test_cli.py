"""`ttgen trace` end to end, and every kind of bad input: one stderr line, exit 2, no output."""

import json
import subprocess
import sys

import pytest
import torch

from ttgen.cli import main
from ttgen.models import get_family
from ttgen.models.registry import preset_config


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _assert_bad(capsys, tmp_path, *argv, message):
    capsys.readouterr()  # drop what fixtures printed
    out_file = tmp_path / "out.json"
    code, _, err = _run(capsys, "trace", *argv, "--out", str(out_file), "--quiet")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ttgen: error:"), err
    assert message in lines[0]
    assert "Traceback" not in err
    assert not out_file.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.json")]


def test_trace_tiny_writes_json(capsys, tmp_path):
    out_file = tmp_path / "sub" / "tiny.json"
    code, out, _ = _run(
        capsys, "trace", "llama", "--seq-len", "32", "--mode", "decode", "--out", str(out_file)
    )
    assert code == 0
    data = json.loads(out_file.read_text())
    assert data["format"] == "ttgen.trace/1" and list(data["graphs"]) == ["decode"]
    assert "model.layers.0" in out and "LlamaDecoderLayer" in out


def test_unknown_model(capsys, tmp_path):
    _assert_bad(capsys, tmp_path, "gpt9", message="unknown model 'gpt9'")


def test_unknown_preset(capsys, tmp_path):
    _assert_bad(
        capsys, tmp_path, "llama", "--preset", "llama-9b", message="unknown preset 'llama-9b'"
    )


@pytest.mark.parametrize("value", ["0", "-4", "abc"])
def test_bad_seq_len(capsys, tmp_path, value):
    _assert_bad(capsys, tmp_path, "llama", f"--seq-len={value}", message="--seq-len")


def test_seq_len_beyond_model(capsys, tmp_path):
    _assert_bad(capsys, tmp_path, "llama", "--seq-len", "4096", message="max_position_embeddings")


def test_missing_checkpoint(capsys, tmp_path):
    _assert_bad(
        capsys, tmp_path, "llama", "--checkpoint", str(tmp_path / "nope"), message="does not exist"
    )


def test_checkpoint_without_config(capsys, tmp_path):
    (tmp_path / "ckpt").mkdir()
    _assert_bad(
        capsys, tmp_path, "llama", "--checkpoint", str(tmp_path / "ckpt"), message="config.json"
    )


@pytest.fixture
def tiny_checkpoint(tmp_path):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    path = tmp_path / "ckpt"
    LlamaForCausalLM(preset_config(get_family("llama"), "tiny")).save_pretrained(path)
    return path


def test_checkpoint_traces(capsys, tmp_path, tiny_checkpoint):
    capsys.readouterr()
    out_file = tmp_path / "c.json"
    code, _, err = _run(
        capsys,
        "trace",
        "llama",
        "--checkpoint",
        str(tiny_checkpoint),
        "--seq-len",
        "16",
        "--out",
        str(out_file),
        "--quiet",
    )
    assert code == 0, err
    assert json.loads(out_file.read_text())["meta"]["checkpoint"] == str(tiny_checkpoint)


def test_corrupt_weights(capsys, tmp_path, tiny_checkpoint):
    (tiny_checkpoint / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    _assert_bad(
        capsys,
        tmp_path,
        "llama",
        "--checkpoint",
        str(tiny_checkpoint),
        message="cannot load checkpoint",
    )


def test_corrupt_config(capsys, tmp_path, tiny_checkpoint):
    (tiny_checkpoint / "config.json").write_text("{not json")
    _assert_bad(
        capsys, tmp_path, "llama", "--checkpoint", str(tiny_checkpoint), message="not valid JSON"
    )


def test_wrong_architecture(capsys, tmp_path, tiny_checkpoint):
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    (tiny_checkpoint / "config.json").write_text(json.dumps({**config, "model_type": "resnet"}))
    _assert_bad(
        capsys, tmp_path, "llama", "--checkpoint", str(tiny_checkpoint), message="not a causal LM"
    )


def test_truncated_weights(capsys, tmp_path, tiny_checkpoint):
    from safetensors.torch import load_file, save_file

    tensors = load_file(tiny_checkpoint / "model.safetensors")
    tensors.pop("model.layers.1.mlp.up_proj.weight")
    save_file(tensors, tiny_checkpoint / "model.safetensors", metadata={"format": "pt"})
    _assert_bad(
        capsys, tmp_path, "llama", "--checkpoint", str(tiny_checkpoint), message="lacks 1 tensor"
    )


def test_unwritable_out(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = _run(capsys, "trace", "llama", "--out", str(blocker / "x.json"), "--quiet")
    assert code == 2 and err.count("\n") == 1 and "cannot write" in err
    code, _, err = _run(capsys, "trace", "llama", "--out", str(tmp_path), "--quiet")
    assert code == 2 and "is a directory" in err


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "ttgen.cli", "trace", "llama", "--seq-len", "0"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert not (tmp_path / "traces").exists()
