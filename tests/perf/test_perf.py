"""The cost model: its arithmetic on single ops, and its calibration against tt-transformers'
published N150 decode rates (±20%, one parameter set)."""

import dataclasses
from pathlib import Path

import pytest

from ttgen.devices import get_device
from ttgen.perf import predict
from ttgen.perf.calibration import PUBLISHED
from ttgen.perf.model import op_cost
from ttgen.pipeline import analyze
from ttgen.plan import make_plan
from ttgen.spec import load_spec

SPEC = Path(__file__).resolve().parents[2] / "specs" / "llama.yaml"


@pytest.fixture(scope="module")
def tiny_plan():
    return make_plan(analyze(load_spec(SPEC), seq_len=128))


def test_memory_bound_decode_matmul(tiny_plan):
    device = get_device("n150")
    op = dataclasses.replace(
        next(o for o in tiny_plan.module("mlp").ops_for("decode") if o.name == "ff1"), flops=0
    )
    seconds, dram, flops, bound = op_cost(op, tiny_plan, device, traced=True, rows=32, context=128)
    expected = dram / (288e9 * device.perf.dram_efficiency) + device.perf.traced_op_us * 1e-6
    assert dram == op.dram_bytes and seconds == pytest.approx(expected)
    eager, *_ = op_cost(op, tiny_plan, device, traced=False, rows=32, context=128)
    assert eager - seconds == pytest.approx(
        (device.perf.dispatch_op_us - device.perf.traced_op_us) * 1e-6
    )


def test_compute_bound_with_fidelity_and_small_m(tiny_plan):
    device = get_device("n150")
    op = next(
        o
        for o in tiny_plan.module("mlp").ops_for("prefill")
        if o.name == "ff1" and o.seq_len == 1024
    )
    big = dataclasses.replace(op, flops=op.flops * 10_000)
    hifi2, *_ = op_cost(big, tiny_plan, device, traced=False, rows=1024, context=128)
    lofi, *_ = op_cost(dataclasses.replace(big, compute=dataclasses.replace(big.compute, math_fidelity="LoFi")),
                       tiny_plan, device, traced=False, rows=1024, context=128)  # fmt: skip
    overhead = device.perf.dispatch_op_us * 1e-6
    assert (hifi2 - overhead) == pytest.approx(2 * (lofi - overhead))  # HiFi2 takes two passes
    one_row, *_ = op_cost(big, tiny_plan, device, traced=False, rows=1, context=128)
    assert (one_row - overhead) == pytest.approx(8 * (hifi2 - overhead))  # 1 row of 8 used


def test_report_totals(tiny_plan):
    report = predict(tiny_plan, get_device("n150"), batch=1, context=256)
    assert report.decode_step_s == pytest.approx(sum(g.time_s for g in report.decode))
    assert 0 < report.roofline_fraction <= 1
    assert report.tokens_per_s_per_user == pytest.approx(1 / report.decode_step_s)


def test_calibration_within_20_percent_on_n150():
    spec = load_spec(SPEC)
    for row in [r for r in PUBLISHED if r.device == "n150"]:
        plan = make_plan(analyze(spec, preset=row.preset, seq_len=128), device="n150", precision="performance",
                         max_batch=1, max_seq_len=1024)  # fmt: skip
        predicted = predict(plan, get_device("n150"), batch=1, context=256).tokens_per_s_per_user
        error = predicted / row.tokens_per_s_per_user - 1
        print(
            f"{row.preset}: predicted {predicted:.1f} vs published {row.tokens_per_s_per_user} t/s/u ({error:+.0%})"
        )
        assert abs(error) <= 0.20, row


def test_perf_cli(capsys):
    from ttgen.cli import main

    assert main(["perf", str(SPEC), "--batch", "4", "--context", "512"]) == 0
    out = capsys.readouterr().out
    assert "tokens/s/user" in out and "mlp.ff1" in out


def test_optimize_picks_the_fastest_valid_plan():
    from ttgen.plan.optimize import optimize
    from ttgen.plan.planner import PlanOptions

    analysis = analyze(load_spec(SPEC), seq_len=128)
    best, baseline, candidates = optimize(analysis, device="p150")
    assert baseline.options == PlanOptions() and baseline.plan is not None
    valid = [c for c in candidates if c.plan is not None]
    assert best in valid and all(best.score(128) <= c.score(128) for c in valid)
    assert best.score(128) <= baseline.score(128)
    # grids wider than tt-transformers' 8x8 are valid on Blackhole and reach the planned matmuls
    wide = [c for c in valid if c.options.prefill_grid == (13, 8)]
    qkv = next(op for op in wide[0].plan.module("attention").ops_for("prefill") if op.name == "qkv")
    assert qkv.program.grid == (13, 8)
