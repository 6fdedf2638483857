import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_trace(tmp_path_factory):
    """Both graphs of the tiny llama preset, traced once per session."""
    from ttgen.models import build_model, get_family
    from ttgen.trace import trace_model

    model, source = build_model(get_family("llama"), preset="tiny")
    return trace_model(model, source, batch=2, seq_len=64)
