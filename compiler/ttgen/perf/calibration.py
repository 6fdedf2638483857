"""tt-transformers' published decode rates (PERF.md @040a27c, performance mode, batch 1) and the
model's predictions for the rows a single-device plan can model."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PUBLISHED", "Row"]


@dataclass(frozen=True)
class Row:
    preset: str
    device: str
    tokens_per_s_per_user: float
    ttft_ms: float | None


# N300/T3K/TG rows need tensor parallelism over several chips: not modelled (single device).
PUBLISHED = (
    Row("llama-3.2-1b", "n150", 87.8, 26.0),
    Row("llama-3.2-3b", "n150", 54.0, 55.0),
    Row("llama-3.1-8b", "n150", 28.3, 104.0),
    Row("llama-3.1-8b", "p150", 33.6, None),
)
