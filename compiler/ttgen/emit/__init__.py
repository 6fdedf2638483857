"""The emitter: EmitPlan → Jinja templates → ruff-formatted, byte-stable TTNN model code and tests."""

from ttgen.emit.context import EmitError
from ttgen.emit.emit import emit

__all__ = ["EmitError", "emit"]
