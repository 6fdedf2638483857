from pathlib import Path

import pytest

from ttgen.pipeline import analyze
from ttgen.spec import load_spec

SPEC = Path(__file__).resolve().parents[2] / "specs" / "llama.yaml"


@pytest.fixture(scope="session")
def tiny_analysis():
    return analyze(load_spec(SPEC), seq_len=128)


@pytest.fixture(scope="session")
def analysis_8b():
    return analyze(load_spec(SPEC), preset="llama-3.1-8b", seq_len=128)
