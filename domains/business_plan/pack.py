"""The ``business_plan`` domain pack: detector, planner hints, the financial-model tool and the pipeline.

Importing this module registers the pack in the default domain registry (which imports it on its first
lookup).
"""

from __future__ import annotations

import re

from longthink.domains.business_plan.pipeline import BusinessPlanPipeline
from longthink.domains.business_plan.tool import FinancialModel
from longthink.domains.registry import DomainPack, register

_DECISIVE = re.compile(r"\b(business plan|business case|go-to-market plan|growth plan|strategic plan)\b")
_STRONG = re.compile(
    r"\b(profits?|revenues?|turnover|margins?|p&l|break-?even|market share|competitors?|pricing|"
    r"growth strategy|strategy|investors?|financial projections?|forecast)\b"
)
_WEAK = re.compile(
    r"\b(grow|growth|increase|sales|customers?|market|costs?|budget|business|company|chain|franchise|"
    r"shop|bakery|restaurant|caf[eé]|startup|launch|expand|expansion|next (year|quarter))\b"
)


def detect_business_plan(request: str) -> float:
    """Confidence in [0, 1] that ``request`` asks for a business plan: 1 for an explicit "business plan" (or
    business case, growth plan, ...); else 0.3 per distinct business-strategy term ("profit", "margin",
    "competitors", ...) and 0.1 per distinct supporting term ("grow", "customers", "bakery", ...)."""
    text = request.lower()
    if _DECISIVE.search(text):
        return 1.0
    strong = {m.group(0) for m in _STRONG.finditer(text)}
    weak = {m.group(0) for m in _WEAK.finditer(text)}
    return min(1.0, 0.3 * len(strong) + 0.1 * len(weak))


PLANNER_HINTS = """\
Business plan. Sections: situation, market and competitors, options considered (several strategies, the
best-scored kept), chosen strategy, financial projection, risks and mitigations, milestones. Numbers in the
request are the baseline; otherwise propose explicit assumptions (revenue, variable cost share, fixed costs,
growth, levers, one-off investments). Never compute the projection by hand: the financial_model tool builds
the table from the assumptions, and every figure in the text must agree with it."""

BUSINESS_PLAN = register(
    DomainPack(
        name="business_plan",
        description="business plans: situation, market, options, strategy, a financial projection computed by "
        "a tool from explicit assumptions, risks and milestones, every figure checked against the table",
        detect=detect_business_plan,
        planner_hints=PLANNER_HINTS,
        tools=(FinancialModel(),),
        answer_kind="text",
        pipeline=BusinessPlanPipeline(),
    )
)
