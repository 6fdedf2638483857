"""The analytic cost model of planned TTNN code (ttgen perf)."""

from ttgen.perf.model import ForwardReport, GroupCost, PerfReport, predict, predict_forward

__all__ = ["ForwardReport", "GroupCost", "PerfReport", "predict", "predict_forward"]
