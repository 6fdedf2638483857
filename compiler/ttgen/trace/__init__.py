"""The trace stage: torch.export of the HF reference → module-annotated networkx graphs."""

from ttgen.trace.summary import GraphSummary, summarize
from ttgen.trace.trace import ModelTrace, load_trace, save_trace, trace_model

__all__ = [
    "GraphSummary",
    "ModelTrace",
    "load_trace",
    "save_trace",
    "summarize",
    "trace_model",
]
