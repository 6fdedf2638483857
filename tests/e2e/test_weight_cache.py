"""The generated weight cache (weights.WeightCache) is keyed by content: another checkpoint, a file
swapped by hand or a write killed half-way is never served; the result always equals converting the
checkpoint afresh."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "generated" / "llama"
PROMPT = torch.arange(3, 40)


@pytest.fixture(scope="module")
def mods():
    from ttgen.emu.backend import select_backend
    from ttgen.run import load_package

    select_backend("emu")
    return load_package(PACKAGE)


def _state_dict(seed: int) -> dict:
    from ttgen.models import build_model, get_family

    model, _ = build_model(get_family("llama"), preset="tiny")
    model = model.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=generator) + (1.0 if p.ndim == 1 else 0.0))
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _logits(mods, state: dict, cache: Path | None) -> torch.Tensor:
    import ttnn

    device = ttnn.open_device(device_id=0)
    try:
        model = mods["model"].Transformer(device, state, cache)
        return model.forward_prefill(PROMPT, 0)
    finally:
        ttnn.close_device(device)


def _files(cache: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in cache.glob("*.tensorbin")}


def test_another_checkpoint_is_not_served_from_the_cache(mods, tmp_path):
    a = _state_dict(0)
    b = dict(a)
    b["model.layers.1.mlp.down_proj.weight"] = torch.zeros_like(
        a["model.layers.1.mlp.down_proj.weight"]
    )
    cache = tmp_path / "w"
    with_a = _logits(mods, a, cache)
    assert torch.equal(with_a, _logits(mods, a, None))
    with_b = _logits(mods, b, cache)
    assert torch.equal(with_b, _logits(mods, b, None))
    assert not torch.equal(with_a, with_b)
    # the cache now holds B's layer-1 down projection and nothing of A's
    assert len(list(cache.glob("layers.1.feed_forward.w2.*"))) == 1


def test_a_warm_cache_is_trusted_without_rebuilding(mods, tmp_path):
    a = _state_dict(0)
    cache = tmp_path / "w"
    first = _logits(mods, a, cache)
    files = _files(cache)
    assert files and torch.equal(_logits(mods, a, cache), first)
    assert _files(cache) == files  # no file was rewritten


def test_files_swapped_by_hand_are_rebuilt(mods, tmp_path):
    a = _state_dict(0)
    cache = tmp_path / "w"
    expected = _logits(mods, a, cache)
    (x,) = cache.glob("layers.0.feed_forward.w2.*")
    (y,) = cache.glob("layers.1.feed_forward.w2.*")
    tmp = cache / "swap"
    os.rename(x, tmp)
    os.rename(y, x)
    os.rename(tmp, y)
    assert torch.equal(_logits(mods, a, cache), expected)
    # a file copied in with the bytes the index records (a cache copied elsewhere) is kept
    (z,) = cache.glob("layers.0.attention.wqkv.*")
    data = z.read_bytes()
    z.unlink()
    z.write_bytes(data)
    inode = z.stat().st_ino
    assert torch.equal(_logits(mods, a, cache), expected)
    assert z.stat().st_ino == inode


_LOADER = """
import sys, torch
sys.path.insert(0, {root!r})
from ttgen.emu.backend import select_backend
select_backend("emu")
from ttgen.run import load_package
import ttnn
mods = load_package({package!r})
state = torch.load({state!r})
device = ttnn.open_device(device_id=0)
print("loading", flush=True)
mods["model"].Transformer(device, state, {cache!r})
"""


def test_a_load_killed_at_any_point_leaves_a_cache_that_serves_the_truth(mods, tmp_path):
    a = _state_dict(0)
    state = tmp_path / "state.pt"
    torch.save(a, state)
    cache = tmp_path / "w"
    expected = _logits(mods, a, None)
    script = _LOADER.format(
        root=str(ROOT / "compiler"), package=str(PACKAGE), state=str(state), cache=str(cache)
    )
    rng = random.Random(7)
    killed = 0
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "loading"
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        if attempt % 2:  # a different checkpoint in between: the cache must follow it too
            b = {k: v * 1.01 for k, v in a.items()}
            assert torch.equal(_logits(mods, b, cache), _logits(mods, b, None))
    assert killed >= 3
    assert torch.equal(_logits(mods, a, cache), expected)
    assert not list(cache.glob("*.tmp"))


def test_weight_cache_flag_pointing_at_a_file(tmp_path, capsys):
    from ttgen.cli import main

    not_a_folder = tmp_path / "w"
    not_a_folder.write_text("x")
    assert main(["run", str(PACKAGE), "--prompt", "hi", "--ttnn", "emu", "--checkpoint", str(tmp_path),
                 "--weight-cache", str(not_a_folder)]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--weight-cache" in err[0] and "not a folder" in err[0], err
