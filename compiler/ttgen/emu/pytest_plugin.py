"""pytest plugin (registered as the `ttgen-ttnn` entry point): choose the `ttnn` backend for tests.

`--ttnn=auto` (default, or $TTGEN_TTNN): the real package when it imports, else the emulator.
`--ttnn=emu`: always the emulator. `--ttnn=real`: the real package or a usage error.
Generated tests just `import ttnn`; this decides what that import finds.
"""

from __future__ import annotations

import pytest

from ttgen.emu.backend import CHOICES, ENV, select_backend


def pytest_addoption(parser):
    parser.addoption(
        "--ttnn",
        choices=CHOICES,
        default=None,
        help=f"ttnn backend for generated tests: auto (default, or ${ENV}), emu or real",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    # before any conftest imports ttnn
    try:
        early_config._ttgen_ttnn = select_backend(
            getattr(early_config.known_args_namespace, "ttnn", None)
        )
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config):
    return f"ttnn backend: {getattr(config, '_ttgen_ttnn', 'not selected')}"
