"""Choosing the `ttnn` backend: the real package when it imports (and is not the emulator), else
ttgen's emulator. Shared by the pytest plugin and `ttgen run`."""

from __future__ import annotations

import importlib
import importlib.util
import os

__all__ = ["real_ttnn", "select_backend"]

CHOICES = ("auto", "emu", "real")
ENV = "TTGEN_TTNN"


def real_ttnn():
    if importlib.util.find_spec("ttnn") is None:
        return None
    try:
        module = importlib.import_module("ttnn")
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return None
    return None if getattr(module, "EMULATED", False) else module


def select_backend(choice: str | None = None) -> str:
    """Install the chosen backend as `ttnn`; returns a description. Raises ValueError when the real
    package is demanded but absent, or the choice is unknown."""
    choice = choice or os.environ.get(ENV, "auto")
    if choice not in CHOICES:
        raise ValueError(f"${ENV}={choice!r}: expected one of {', '.join(CHOICES)}")
    real = None if choice == "emu" else real_ttnn()
    if choice == "real" and real is None:
        raise ValueError("--ttnn=real: the real ttnn package is not importable here")
    if real is None:
        from ttgen import emu

        emu.install()
        return f"ttgen emulator ({os.environ.get('TTGEN_EMU_DEVICE', 'n150')})"
    return f"real ttnn {getattr(real, '__version__', '')}".strip()
