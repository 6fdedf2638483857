"""`ttgen emit`: plan → files."""

from __future__ import annotations

from pathlib import Path

from ttgen.emit.context import build_context
from ttgen.emit.writer import MARKER, render_files, write_files
from ttgen.plan.types import EmitPlan

__all__ = ["emit", "render"]


def render(plan: EmitPlan) -> dict[str, str]:
    """The package's files, from the plan alone."""
    header = f"{MARKER} from {plan.spec_path} (sha256:{plan.spec_sha256[:16]}) for {plan.family} {plan.source} on {plan.device} — do not edit."
    from ttgen.blocks import MODEL_KINDS, get_block

    common, blocks = build_context(plan)
    jobs = [(name, template, common) for name, template in MODEL_KINDS[plan.model_kind].files]
    for m in plan.modules:
        kind = get_block(m.template)
        if kind.module:
            jobs.append((kind.module, f"block:{kind.name}", common | {"block": blocks[m.rule]}))
    return render_files(jobs, header)


def emit(plan: EmitPlan, out_dir: Path) -> list[str]:
    return write_files(render(plan), Path(out_dir))
