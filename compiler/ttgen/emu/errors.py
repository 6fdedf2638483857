"""TT_FATAL-like errors: what the real ops raise when a validator rejects a call."""

from __future__ import annotations

import contextlib
import inspect

from ttgen.devices.rules import RuleViolation

__all__ = ["fatal", "require", "rules"]


def fatal(message: str) -> RuntimeError:
    """A RuntimeError worded like tt-metal's TT_FATAL, naming the emulated op that rejected the call."""
    frame = inspect.currentframe()
    caller = frame.f_back.f_back if frame and frame.f_back else None
    # an op's kernel (a closure inside the op) is named after the op
    where = caller.f_code.co_qualname.split(".")[0] if caller else "ttnn"
    return RuntimeError(f"TT_FATAL @ ttgen.emu.{where}: {message}")


def require(condition: bool, message) -> None:
    """Raise `fatal(message)` unless `condition`; `message` may be a callable, to build an expensive
    message only on failure (checks inside per-user loops run on every decode step)."""
    if not condition:
        raise fatal(message() if callable(message) else message)


@contextlib.contextmanager
def rules():
    """Run shared TTNN rules (ttgen.devices.rules): a violation raises as the device op would."""
    try:
        yield
    except RuleViolation as exc:
        raise RuntimeError(f"TT_FATAL @ ttgen.emu.rules: {exc}") from None
