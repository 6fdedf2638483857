"""`ttgen plan --optimize`: plan every candidate set of choices, keep the valid ones, and pick the
fastest by the cost model (TTFT + decode steps of a generation), reporting the gain over the
tt-transformers baseline."""

from __future__ import annotations

from dataclasses import dataclass

from ttgen.devices import get_device
from ttgen.plan.facts import PlanError
from ttgen.plan.planner import PlanOptions, make_plan
from ttgen.plan.types import EmitPlan

__all__ = ["Candidate", "optimize"]


@dataclass(frozen=True)
class Candidate:
    options: PlanOptions
    plan: EmitPlan | None
    ttft_s: float | None
    decode_step_s: float | None
    error: str | None

    def score(self, new_tokens: int) -> float:
        return self.ttft_s + new_tokens * self.decode_step_s


def optimize(analysis, *, device=None, precision=None, max_batch=None, max_seq_len=None, context: int = 256,
             new_tokens: int = 128) -> tuple[Candidate, Candidate, list[Candidate]]:  # fmt: skip
    """Returns (best, baseline, all candidates)."""
    from ttgen.perf import predict

    profile = get_device(device or analysis.spec.target.device)
    gx, gy = profile.compute_grid
    grids = sorted({(8, 8), (gx, gy), (gx, min(gy, 8)), (min(gx, 8), gy)})
    candidates = []
    for grid in grids:
        for target in (16, 32, 64):
            options = PlanOptions(prefill_grid=grid, k_grid_target=target)
            try:
                plan = make_plan(analysis, device=device, precision=precision, max_batch=max_batch,
                                 max_seq_len=max_seq_len, options=options)  # fmt: skip
            except PlanError as exc:
                candidates.append(Candidate(options, None, None, None, str(exc)))
                continue
            report = predict(
                plan, profile, batch=plan.max_batch, context=context, prefill_len=context
            )
            candidates.append(Candidate(options, plan, report.ttft_s, report.decode_step_s, None))
    valid = [c for c in candidates if c.plan is not None]
    baseline = next(c for c in candidates if c.options == PlanOptions())
    if baseline.plan is None:
        raise PlanError(f"the tt-transformers baseline is not valid here: {baseline.error}")
    best = min(valid, key=lambda c: c.score(new_tokens))
    return best, baseline, candidates
