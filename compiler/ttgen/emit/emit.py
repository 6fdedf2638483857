"""`ttgen emit`: plan → files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ttgen.emit.context import build_context
from ttgen.emit.exprs import text
from ttgen.emit.writer import MANIFEST, MARKER, manifest_text, render_files, write_files
from ttgen.plan.types import EmitPlan

__all__ = ["emit", "render"]


def render(plan: EmitPlan) -> dict[str, str]:
    """The package's files, from the plan alone."""
    plan_sha256 = hashlib.sha256(plan.to_json().encode()).hexdigest()
    header = (
        f"{MARKER} from {text(plan.spec_path)} for {plan.family} {text(plan.source)} on {plan.device} "
        f"(spec sha256:{plan.spec_sha256[:16]}, plan sha256:{plan_sha256[:16]}) — do not edit."
    )
    from ttgen.blocks import MODEL_KINDS, get_block

    common, blocks = build_context(plan)
    jobs = [(name, template, common) for name, template in MODEL_KINDS[plan.model_kind].files]
    for m in plan.modules:
        kind = get_block(m.template)
        if kind.module:
            jobs.append((kind.module, f"block:{kind.name}", common | {"block": blocks[m.rule]}))
    files = render_files(jobs, header)
    return files | {MANIFEST: manifest_text(files, plan_sha256)}


def emit(plan: EmitPlan, out_dir: Path) -> list[str]:
    return write_files(render(plan), Path(out_dir))
