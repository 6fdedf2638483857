"""Typed weight transforms (ttgen.plan.weights) print as torch code in one place
(ttgen.emit.exprs.weight_expr); the printed code computes what each step means, checked here with
torch on random tensors against the definitions written out directly."""

from __future__ import annotations

import torch

from ttgen.emit.exprs import weight_expr
from ttgen.plan import weights as W

HEAD_DIM = 4


def _helpers() -> dict:
    from ttgen.emit.writer import _env

    text = _env().get_template("weights.py.j2").render()
    namespace = {"HEAD_DIM": HEAD_DIM}
    exec(text.replace("from .model_config import HEAD_DIM\n", ""), namespace)  # noqa: S102
    return namespace


def _run(transform, *sources):
    code = weight_expr(transform, lambda i: f"src[{i}]")
    return eval(
        code,
        {"torch": torch, "src": sources, "N_HEADS": 2, "N_KV_HEADS": 1, "DIM": 64, **_helpers()},
    )  # noqa: S307


def test_each_step_computes_its_definition():
    torch.manual_seed(0)
    q, k = torch.randn(8, 6), torch.randn(4, 6)
    assert torch.equal(_run(W.transpose(W.source(0)), q), q.T)
    assert torch.equal(
        _run(W.concat([W.transpose(W.source(0)), W.transpose(W.source(1))]), q, k),
        torch.cat([q.T, k.T], -1),
    )
    # half-split RoPE rows (i, i + HEAD_DIM / 2) → interleaved pairs (2i, 2i + 1), per head
    pairs = _run(W.rope_pairs(W.source(0), "N_HEADS"), q)
    for h in range(2):
        for i in range(HEAD_DIM // 2):
            assert torch.equal(pairs[h * HEAD_DIM + 2 * i], q[h * HEAD_DIM + i])
            assert torch.equal(pairs[h * HEAD_DIM + 2 * i + 1], q[h * HEAD_DIM + HEAD_DIM // 2 + i])
    assert torch.equal(_run(W.slice_(W.source(0), 0, 2, 5), q), q[2:5])
    assert torch.equal(_run(W.slice_(W.source(0), 1, 1, 4), q), q[:, 1:4])
    assert torch.equal(_run(W.reshape(W.source(0), ("1", "1", "DIM // 32", "32")), torch.arange(64.0)),
                       torch.arange(64.0).reshape(1, 1, 2, 32))  # fmt: skip
    bias = torch.randn(6)
    assert torch.equal(_run(W.rows(W.source(0), 3), bias), bias.expand(3, -1)[None, None])
    assert torch.equal(_run(W.unsqueeze(W.source(0)), bias), bias[None])
    assert torch.equal(_run(W.add(W.source(0), 1.0), bias), bias + 1.0)
    padded = _run(W.pad(W.source(0), 0, 11), q)
    assert padded.shape == (11, 6) and torch.equal(padded[:8], q) and not padded[8:].any()
    conv = torch.randn(5, 3, 2, 2)  # a patch convolution [out, C, kh, kw] → fold's (kh, kw, c) rows
    rows = _run(W.reshape(W.permute(W.source(0), (2, 3, 1, 0)), ("12", "5")), conv)
    assert torch.equal(rows[1 * 6 + 0 * 3 + 2], conv[:, 2, 1, 0])
    cls = torch.randn(1, 1, 6)
    assert torch.equal(_run(W.expand(W.source(0), (4, 1, 6)), cls), cls.repeat(4, 1, 1))
