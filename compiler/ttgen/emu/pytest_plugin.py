"""pytest plugin (registered as the `ttgen-ttnn` entry point): choose the `ttnn` backend for tests.

`--ttnn=auto` (default, or $TTGEN_TTNN): the real package when it imports, else the emulator.
`--ttnn=emu`: always the emulator. `--ttnn=real`: the real package or a usage error.
Generated tests just `import ttnn`; this decides what that import finds.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import pytest

ENV = "TTGEN_TTNN"
CHOICES = ("auto", "emu", "real")


def pytest_addoption(parser):
    parser.addoption(
        "--ttnn",
        choices=CHOICES,
        default=None,
        help=f"ttnn backend for generated tests: auto (default, or ${ENV}), emu or real",
    )


def _real_ttnn():
    if importlib.util.find_spec("ttnn") is None:
        return None
    try:
        module = importlib.import_module("ttnn")
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return None
    return None if getattr(module, "EMULATED", False) else module


def pytest_configure(config):
    choice = config.getoption("--ttnn") or os.environ.get(ENV, "auto")
    if choice not in CHOICES:
        raise pytest.UsageError(f"${ENV}={choice!r}: expected one of {', '.join(CHOICES)}")
    real = None if choice == "emu" else _real_ttnn()
    if choice == "real" and real is None:
        raise pytest.UsageError("--ttnn=real: the real ttnn package is not importable here")
    if real is None:
        from ttgen import emu

        emu.install()
        config._ttgen_ttnn = f"ttgen emulator ({os.environ.get('TTGEN_EMU_DEVICE', 'n150')})"
    else:
        config._ttgen_ttnn = f"real ttnn {getattr(real, '__version__', '')}".strip()


def pytest_report_header(config):
    return f"ttnn backend: {getattr(config, '_ttgen_ttnn', 'not selected')}"
