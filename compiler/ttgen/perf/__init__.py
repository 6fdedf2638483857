"""The analytic cost model of planned TTNN code (ttgen perf)."""

from ttgen.perf.model import GroupCost, PerfReport, predict

__all__ = ["GroupCost", "PerfReport", "predict"]
