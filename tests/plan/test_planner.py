"""The planner: tt-transformers' formulas, validation failures with their numbers, JSON round trip,
and snapshots of the tiny and Llama-3.1-8B plans on n150."""

import dataclasses
import json
import os
from pathlib import Path

import pytest

from ttgen.cli import main
from ttgen.plan import EmitPlan, PlanError, make_plan
from ttgen.plan.formulas import dram_sharded_matmul, k_grid_cores
from ttgen.spec.schema import ProgramChoice

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"


def test_tt_transformers_formulas_for_8b():
    assert k_grid_cores(4096 // 32, (8, 8)) == 32  # dim 4096 → 32 cores (4 x 8)
    pc = dram_sharded_matmul(32, 4096, 14336, 32)
    assert (pc.in0_block_w, pc.per_core_M, pc.per_core_N) == (4, 1, 14)


def _check_snapshot(plan: EmitPlan, name: str) -> None:
    path = SNAPSHOTS / name
    text = plan.to_json() + "\n"
    if os.environ.get("TTGEN_ACCEPT"):
        path.write_text(text)
    assert path.is_file(), f"{path} missing: run with TTGEN_ACCEPT=1 and review it"
    assert text == path.read_text(), (
        f"plan differs from {path.name}; review and accept with TTGEN_ACCEPT=1"
    )


def test_tiny_plan_snapshot_and_round_trip(tiny_analysis):
    plan = make_plan(tiny_analysis)
    assert EmitPlan.from_dict(json.loads(plan.to_json())) == plan
    _check_snapshot(plan, "plan_llama_tiny_n150.json")
    assert plan.facts.n_heads == 8 and plan.facts.n_kv_heads == 2 and plan.facts.head_dim == 32
    assert plan.kv_cache.shape == (
        1024,
        2,
        32,
        32,
    )  # paged: 32 users x 1024 tokens / 32-token blocks


def test_8b_plan_snapshot(analysis_8b):
    plan = make_plan(analysis_8b)
    _check_snapshot(plan, "plan_llama_3.1_8b_n150.json")
    mlp = plan.module("mlp")
    ff1 = next(op for op in mlp.ops_for("decode") if op.name == "ff1")
    assert ff1.program.kind == "dram_sharded" and ff1.program.per_core_N == 14
    assert ff1.inputs[1].memory.shard == (
        4096,
        14336 // 12 // 32 * 32 + 32,
    )  # columns over 12 DRAM banks
    assert plan.dram_weight_bytes + plan.kv_cache.bytes_total < plan.dram_capacity_bytes


def test_70b_does_not_fit_n150():
    from ttgen.pipeline import analyze
    from ttgen.spec import load_spec

    analysis = analyze(
        load_spec(Path(__file__).resolve().parents[2] / "specs" / "llama.yaml"),
        preset="llama-3.1-70b",
        seq_len=128,
    )
    with pytest.raises(
        PlanError, match=r"DRAM on n150: weights 75.\d+ GB \+ KV cache .* > 12.88 GB"
    ):
        make_plan(analysis)


def test_kv_cache_that_does_not_fit(analysis_8b):
    with pytest.raises(PlanError, match=r"KV cache 18.25 GB \(batch 32 x 8192 tokens"):
        make_plan(analysis_8b, max_seq_len=8192)
    make_plan(analysis_8b, max_seq_len=8192, max_batch=4)  # fewer users fit


def test_long_prefill_runs_in_row_chunks(analysis_8b):
    """8B at 8192 tokens: a full-length 2D matmul's circular buffers overflow L1, so the MLP runs in
    chunks of 1024 rows (one size for ff1/ff3/ff2, which share the reshaped input) and QKV/WO in
    chunks of 2048 beyond 2048 tokens, as tt-transformers reshapes; each chunked config covers one
    chunk without fusing the batch, and every op fits L1."""
    plan = make_plan(analysis_8b, max_seq_len=8192, max_batch=1)
    mlp, attn = plan.module("mlp"), plan.module("attention")

    def chunks(module, name):
        return {op.seq_len: op.m_chunk for op in module.ops_for("prefill") if op.name == name}

    assert chunks(mlp, "ff1") == chunks(mlp, "ff3") == chunks(mlp, "ff2")
    assert chunks(mlp, "ff1") == {128: None, 256: None, 512: None, 1024: None, 2048: 1024,
                                  4096: 1024, 8192: 1024}  # fmt: skip
    assert chunks(attn, "qkv") == chunks(attn, "wo")
    assert {s: r for s, r in chunks(attn, "qkv").items() if r} == {4096: 2048, 8192: 2048}
    for op in mlp.ops_for("prefill") + attn.ops_for("prefill"):
        if op.m_chunk:
            fields = dict(op.program.fields)
            assert not fields["fuse_batch"] and fields["per_core_M"] * 8 >= op.m_chunk // 32


def test_row_chunk_cap_from_the_spec(tiny_analysis):
    capped = _with_op_program(tiny_analysis, "tt.mlp", "ff2", "prefill", "2d", rows=64)
    mlp = make_plan(capped).module("mlp")
    for op in mlp.ops_for("prefill"):  # ff1/ff3 follow ff2's cap: one reshape feeds all three
        if op.name in ("ff1", "ff3", "ff2"):
            assert op.m_chunk == 64
    for rows, message in [(48, "is not a multiple of 32"), (96, "does not divide seq_len 128")]:
        bad = _with_op_program(tiny_analysis, "tt.attention", "wo", "prefill", "2d", rows=rows)
        with pytest.raises(PlanError, match=f"prefill op wo: rows {rows} {message}"):
            make_plan(bad)


def _with_op_program(analysis, rule_name, op_name, mode, kind, **fields):
    spec = analysis.spec
    rules = []
    for rule in spec.rules:
        if rule.name == rule_name:
            ops = []
            for op in rule.ops:
                if op.name == op_name:
                    program = dict(op.program)
                    program[mode] = ProgramChoice(kind, tuple(fields.items()))
                    op = dataclasses.replace(op, program=tuple(program.items()))
                ops.append(op)
            rule = dataclasses.replace(rule, ops=tuple(ops))
        rules.append(rule)
    return dataclasses.replace(analysis, spec=dataclasses.replace(spec, rules=tuple(rules)))


@pytest.mark.parametrize(
    "rule, op, mode, kind, fields, message",
    [
        (
            "tt.mlp",
            "ff1",
            "decode",
            "dram_sharded",
            {"in0_block_w": 3},
            "decode tt.mlp op ff1 .*in0_block_w \\(3\\)",
        ),
        (
            "tt.mlp",
            "ff1",
            "prefill",
            "2d",
            {"out_subblock_w": 4, "out_block_w": 4},
            "out_subblock_h must be 1|must cover|divisible",
        ),
        (
            "tt.attention",
            "qkv",
            "prefill",
            "2d",
            {"per_core_N": 1, "out_block_w": 1, "out_subblock_w": 1},
            "must cover Nt",
        ),
        ("tt.mlp", "ff2", "decode", "2d", {}, "not supported for decode matmuls"),
    ],
)
def test_invalid_explicit_program_configs(tiny_analysis, rule, op, mode, kind, fields, message):
    with pytest.raises(PlanError, match=message):
        make_plan(_with_op_program(tiny_analysis, rule, op, mode, kind, **fields))


def test_l1_budget(analysis_8b):
    bad = _with_op_program(analysis_8b, "tt.mlp", "ff1", "prefill", "2d", in0_block_w=8)
    with pytest.raises(
        PlanError,
        match=r"prefill \(seq_len \d+\) tt.mlp op ff1 .*L1: needs [\d,]+ B .* has 1,393,312 B",
    ):
        make_plan(bad)


def test_overrides(tiny_analysis):
    from ttgen.spec.schema import Loc, Override

    spec = tiny_analysis.spec
    ov = Override((1,), (("w1", "bfloat4_b"),), (), Loc("specs/llama.yaml", 1))
    plan = make_plan(
        dataclasses.replace(tiny_analysis, spec=dataclasses.replace(spec, overrides=(ov,)))
    )
    w1 = next(w for w in plan.module("mlp").weights if w.name == "w1")
    assert w1.dtype_overrides == ((1, "bfloat4_b"),)
    for bad, message in [(Override((5,), (), (), Loc("x.yaml", 3)), "layer\\(s\\) \\[5\\] do not exist"),
                         (Override((0,), (), (("li_ff2", "lofi"),), Loc("x.yaml", 4)), "not supported yet")]:  # fmt: skip
        with pytest.raises(PlanError, match=message):
            make_plan(
                dataclasses.replace(tiny_analysis, spec=dataclasses.replace(spec, overrides=(bad,)))
            )


def test_plan_cli(capsys, tmp_path):
    out = tmp_path / "plan.json"
    assert main(["plan", "specs/llama.yaml", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dram_sharded" in text and "DRAM: weights" in text
    assert EmitPlan.from_dict(json.loads(out.read_text())).device == "n150"
    assert main(["plan", "specs/llama.yaml", "--device", "n999"]) == 2
    assert "unknown device" in capsys.readouterr().err
