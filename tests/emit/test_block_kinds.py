"""Blocks as units: a block kind registered from outside the core (its lowering, its skeleton, the
role it fills) is matched by a spec rule, planned, validated, printed and tested like the built-in
ones — no edit of the planner, the emitter or their lists."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ttgen.blocks import BLOCKS, BlockKind, register_block
from ttgen.blocks.mlp import facts as mlp_facts
from ttgen.plan import weights as W
from ttgen.plan.lower import DRAM, Lowering
from ttgen.plan.types import Const, Ref, Signature

ROOT = Path(__file__).resolve().parents[2]

SKELETON = '''"""MLP with an unfused SiLU: w2(silu(w1(x)) * w3(x)), the activation as its own op."""

import ttnn

{% if block.imports %}
from .model_config import {{ block.imports | join(", ") }}
{% endif %}

{{ block.constants }}


def load_mlp_weights(state_dict: dict, prefix: str, device, cache_prefix=None, dtypes=None) -> dict:
    return {
{% for name in ("w1", "w3", "w2") %}
        "{{ name }}": ttnn.as_tensor(state_dict[f"{prefix}.{{ block.sources[name][0] }}"].T, {{ block.dtype[name] }},
                               layout=ttnn.TILE_LAYOUT, device=device, memory_config={{ block.memcfg[name] }}),
{% endfor %}
    }


class MLP:
    def __init__(self, device, weights: dict):
        self.w1, self.w3, self.w2 = weights["w1"], weights["w3"], weights["w2"]

    def forward_decode(self, {{ block.params.decode }}):
{{ block.body.decode | indent(8, first=True) }}

    def forward_prefill(self, {{ block.params.prefill }}):
{{ block.body.prefill | indent(8, first=True) }}
'''


def lower_unfused_mlp(lw: Lowering, rule, matches, decode_matches):
    """Prefill as three 2D matmuls with a separate ttnn.silu; decode as the DRAM-sharded matmuls."""
    f = lw.facts
    weights = [
        lw.matmul_weight(n, lw.sources(rule, matches, n), k, m, n, W.transpose(W.source(0)))
        for n, k, m in (
            ("w1", f.dim, f.hidden_dim),
            ("w3", f.dim, f.hidden_dim),
            ("w2", f.hidden_dim, f.dim),
        )
    ]
    lw.consume(matches, "x")
    w1, w3, w2 = weights
    state = lw.state(weights)

    x_d = lw.t((1, 1, lw.batch, f.dim), memory=lw.residual_mem())
    b = lw.builder({"x": x_d}, state)

    def decode_mm(b, name, x, w, out):
        lw.decode_matmul(b, name, lw.spec_op(rule, name), x, w, out)

    # decode: w2's input is resharded over as many cores as suit its K
    decode_mm(b, "ff1", "x", w1, "w1_out")
    decode_mm(b, "ff3", "x", w3, "w3_out")
    act = b.tensor("w1_out").memory
    b.call("silu", "ttnn.silu", [Ref("w1_out")], {"memory_config": Const("DECODE_ACT_MEMCFG", act)},
            outs=("gate",), out=b.tensor("w1_out"))  # fmt: skip
    b.call("gate_mul", "ttnn.mul", [Ref("gate"), Ref("w3_out")], {"memory_config": Const("DECODE_ACT_MEMCFG", act)},
            outs=("w2_in",), out=b.tensor("w1_out"))  # fmt: skip
    from ttgen.plan.formulas import k_grid_cores, width_sharded

    ff2_in = width_sharded(
        lw.batch, f.hidden_dim, k_grid_cores(f.hidden_dim // 32, lw.grid), lw.act_grid
    )
    x2 = lw.to_memory(b, "to_ff2_input", "w2_in", "w2_in_sharded", ff2_in)
    decode_mm(b, "ff2", x2, w2, "w2_out")
    out = lw.to_memory(b, "to_residual", "w2_out", "out", lw.residual_mem(), lw.residual_const())
    sig_d = Signature("forward_decode", ("x",), (out,))
    decode = b.finish(sig_d)
    sig_p = Signature("forward_prefill", ("x",), ("out",))

    def prefill(s):
        b = lw.builder({"x": lw.t((1, 1, s, f.dim))}, state, s)

        def mm(b, name, x, w, out):
            cfg = lw.prefill_matmul_config(name, lw.spec_op(rule, name), b.tensor(x), w, s)
            assert cfg[2] == s, "this test block does not chunk rows"
            lw.prefill_matmul(b, name, lw.spec_op(rule, name), x, w, out, cfg)

        mm(b, "ff1", "x", w1, "w1_out")
        mm(b, "ff3", "x", w3, "w3_out")
        b.call("silu", "ttnn.silu", [Ref("w1_out")], {"memory_config": Const("DRAM", DRAM)}, outs=("gate",),
               out=b.tensor("w1_out"))  # fmt: skip
        b.call("gate_mul", "ttnn.mul", [Ref("gate"), Ref("w3_out")], {"memory_config": Const("DRAM", DRAM)},
               outs=("w2_in",), out=b.tensor("w1_out"))  # fmt: skip
        mm(b, "ff2", "w2_in", w2, "out")
        return b.finish(sig_p)

    return weights, {"decode": (sig_d, decode), "prefill": (sig_p, lw.prefill_variants(prefill))}


@pytest.fixture
def unfused_block(tmp_path):
    skeleton = tmp_path / "unfused_mlp.py.j2"
    skeleton.write_text(SKELETON)
    # the MLP role's facts (hidden size from the gate's captured weight) are the built-in block's
    kind = register_block(
        BlockKind(
            "unfused_mlp",
            lower_unfused_mlp,
            skeleton=skeleton,
            module="mlp.py",
            role="mlp",
            facts=mlp_facts,
        )  # fmt: skip
    )
    yield kind
    BLOCKS.pop(kind.name)


def test_a_block_registered_outside_the_core_is_emitted_and_its_tests_pass(
    unfused_block, tmp_path, monkeypatch
):
    from ttgen.cli import main

    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    spec = tmp_path / "specs" / "llama.yaml"
    spec.write_text(spec.read_text().replace("    template: mlp\n", "    template: unfused_mlp\n"))
    monkeypatch.chdir(tmp_path)
    assert main(["emit", "specs/llama.yaml", "--seq-len", "64", "--out", "gen/unfused"]) == 0
    mlp = (tmp_path / "gen" / "unfused" / "mlp.py").read_text()
    assert "ttnn.silu(w1_out" in mlp and "MLP with an unfused SiLU" in mlp
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ttnn=emu",
                           "gen/unfused/tests/test_modules.py", "-k", "mlp or decoder"],
                          capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_an_unknown_block_kind_is_a_spec_error(tmp_path):
    from ttgen.errors import TtgenError
    from ttgen.spec import load_spec

    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    spec = tmp_path / "specs" / "llama.yaml"
    spec.write_text(spec.read_text().replace("    template: mlp\n", "    template: geglu\n"))
    with pytest.raises(TtgenError, match=r"llama.yaml:\d+: .*template.*geglu"):
        load_spec(spec)


def test_a_block_kind_cannot_be_registered_twice():
    from ttgen.errors import TtgenError

    with pytest.raises(TtgenError, match="already registered"):
        register_block(replace(BLOCKS["mlp"], module="other.py"))
