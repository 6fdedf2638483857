"""The planner: matches + spec + device profile → a validated EmitPlan."""

from ttgen.plan.facts import PlanError
from ttgen.plan.planner import make_plan
from ttgen.plan.types import EmitPlan

__all__ = ["EmitPlan", "PlanError", "make_plan"]
