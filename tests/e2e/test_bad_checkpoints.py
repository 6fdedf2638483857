"""A corpus of malformed checkpoint folders, each given to `ttgen emit --checkpoint` as a user would:
exit 2, one line naming the folder, file or tensor, and nothing written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from ttgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "specs" / "llama.yaml")
DOWN = "model.layers.0.mlp.down_proj.weight"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    from tests.e2e.test_families import _checkpoint

    return _checkpoint(tmp_path_factory.mktemp("good"), "llama")


def _weights(ck: Path) -> Path:
    return next(ck.glob("*.safetensors"))


def _edit_tensors(ck: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    f = _weights(ck)
    tensors = load_file(f)
    edit(tensors)
    save_file({k: v.contiguous() for k, v in tensors.items()}, f, metadata={"format": "pt"})


def _edit_config(ck: Path, **changes) -> None:
    path = ck / "config.json"
    config = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            config.pop(k, None)
        else:
            config[k] = v
    path.write_text(json.dumps(config))


def _truncate(ck: Path) -> None:
    f = _weights(ck)
    f.write_bytes(f.read_bytes()[:1000])


# (id, how to break a copy of a good checkpoint, a fragment of the one-line error). `where`: what the
# line must name — "folder", "config" (config.json), "weights" (the .safetensors file) or a tensor.
CORPUS = [
    ("folder does not exist", lambda ck: shutil.rmtree(ck), "folder", "does not exist"),
    ("a file, not a folder", lambda ck: (shutil.rmtree(ck), ck.write_text("x")), "folder", "does not exist"),
    ("no config.json", lambda ck: (ck / "config.json").unlink(), "config", "missing"),
    ("config.json not JSON", lambda ck: (ck / "config.json").write_text("{model_type: llama"), "config", "not valid JSON"),
    ("config.json a list", lambda ck: (ck / "config.json").write_text("[1, 2]"), "config", "expected a JSON object"),
    ("config.json not UTF-8", lambda ck: (ck / "config.json").write_bytes(b'{"model_type": "\xff"}'), "config", "not UTF-8"),
    ("config.json deeply nested", lambda ck: (ck / "config.json").write_text("[" * 100_000), "config", "not valid JSON"),
    ("config.json a folder", lambda ck: ((ck / "config.json").unlink(), (ck / "config.json").mkdir()), "config", "missing"),
    ("no model_type", lambda ck: _edit_config(ck, model_type=None), "config", "no model_type"),
    ("unknown model_type", lambda ck: _edit_config(ck, model_type="llama9"), "config", "not a causal LM that transformers knows"),
    ("not a causal LM", lambda ck: _edit_config(ck, model_type="resnet"), "config", "not a causal LM"),
    ("no weights", lambda ck: _weights(ck).unlink(), "folder", "no *.safetensors"),
    ("truncated weights", _truncate, "folder", "cannot load checkpoint"),
    ("garbage weights", lambda ck: _weights(ck).write_bytes(os.urandom(4096)), "folder", "cannot load checkpoint"),
    ("a tensor missing", lambda ck: _edit_tensors(ck, lambda t: t.pop(DOWN)), "folder", f"lacks 1 tensor(s): {DOWN}"),
    ("a tensor of the wrong shape", lambda ck: _edit_tensors(ck, lambda t: t.__setitem__(DOWN, t[DOWN][:, :8])), DOWN, "shape"),
    ("an int8 tensor", lambda ck: _edit_tensors(ck, lambda t: t.__setitem__(DOWN, t[DOWN].to(torch.int8))), DOWN, "is I8"),
    ("a tensor for a layer that does not exist", lambda ck: _edit_tensors(ck, lambda t: t.__setitem__("model.layers.9.mlp.down_proj.weight", t[DOWN].clone())),
     "model.layers.9.mlp.down_proj.weight", "no place for"),
    ("another architecture's tensor", lambda ck: _edit_tensors(ck, lambda t: t.__setitem__("transformer.h.0.attn.c_attn.weight", t[DOWN].clone())),
     "transformer.h.0.attn.c_attn.weight", "no place for"),
    ("absurd hidden size", lambda ck: _edit_config(ck, hidden_size=1_000_000_000), "folder", "shape"),
    ("hidden size a string", lambda ck: _edit_config(ck, hidden_size="big"), "config", "hidden_size"),
    ("negative layer count", lambda ck: _edit_config(ck, num_hidden_layers=-1), "config", "num_hidden_layers"),
    ("heads not dividing hidden", lambda ck: _edit_config(ck, num_attention_heads=7, head_dim=None), "config", "not a multiple of the number of attention heads"),
    ("dynamic RoPE", lambda ck: _edit_config(ck, rope_scaling={"rope_type": "dynamic", "factor": 2.0}), "config", "dynamic"),
]  # fmt: skip


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("case", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_checkpoint_is_one_line_and_writes_nothing(case, good, tmp_path, capsys):
    _, breaks, where, fragment = case
    ck = tmp_path / "ck"
    shutil.copytree(good, ck)
    breaks(ck)
    before = sorted(tmp_path.rglob("*"))
    capsys.readouterr()
    code = main(
        ["emit", SPEC, "--checkpoint", str(ck), "--seq-len", "64", "--out", str(tmp_path / "pkg")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("ttgen: error: "), err
    assert fragment in err[0], err[0]
    named = {"folder": str(ck), "config": str(ck / "config.json"), "weights": str(_weights(ck)) if ck.is_dir() and list(ck.glob("*.safetensors")) else str(ck)}  # fmt: skip
    assert named.get(where, where) in err[0], err[0]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written
