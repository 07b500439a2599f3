"""Planners: decomposition into a typed plan, plan scoring and selection, replanning."""

from longthink.planners.plan import ParsedPlan, Plan, PlanStep, parse_plan, single_step_plan
from longthink.planners.planner import PlanChoice, Planner, PlanStructure

__all__ = ["ParsedPlan", "Plan", "PlanChoice", "PlanStep", "PlanStructure", "Planner", "parse_plan", "single_step_plan"]
