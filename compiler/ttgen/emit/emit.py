"""`ttgen emit`: plan → files."""

from __future__ import annotations

from pathlib import Path

from ttgen.emit.context import build_context
from ttgen.emit.writer import MARKER, render_files, write_files
from ttgen.plan.types import EmitPlan

__all__ = ["emit", "render"]


def render(plan: EmitPlan, *, hf_config: dict, config_class: str) -> dict[str, str]:
    header = f"{MARKER} from {plan.spec_path} (sha256:{plan.spec_sha256[:16]}) for {plan.family} {plan.source} on {plan.device} — do not edit."
    return render_files(build_context(plan, hf_config=hf_config, config_class=config_class), header)


def emit(plan: EmitPlan, out_dir: Path, *, hf_config: dict, config_class: str) -> list[str]:
    return write_files(render(plan, hf_config=hf_config, config_class=config_class), Path(out_dir))
