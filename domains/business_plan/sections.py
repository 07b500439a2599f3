"""The business plan's sections: what each step writes, its prompt, and the rubric its judge scores it with.

Prompts are short on purpose (the embedded 0.5B model on a CPU): the request, the few facts the section
needs, one instruction, a word limit. Figures come only from the financial model; the prompt says so, and
the number-consistency verifier checks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

SYSTEM = "You are a business consultant. You write one section of a business plan: concrete, concise, no preamble."


@dataclass(frozen=True, slots=True)
class Section:
    """One step of the plan. ``kind`` is the step kind ("prose", "extract", "options", "projection",
    "document"); ``checks_numbers``: the section's figures are checked against the table."""

    id: str
    title: str
    goal: str
    kind: str
    depends_on: tuple[str, ...] = ()
    instruction: str = ""
    rubric: str = ""
    checks_numbers: bool = True


BASELINE = Section(
    "baseline",
    "Baseline figures",
    "Extract the business's baseline figures (revenue, variable and fixed costs) from the request, or propose "
    "explicit ones, as validated JSON",
    "extract",
)
MARKET = Section(
    "market",
    "Market and competitors",
    "Describe the market, the customers and the main competitors",
    "prose",
    instruction="Describe the market, the target customers and two or three kinds of competitors, and what sets "
    "this business apart. Do not invent financial figures.",
    rubric="Names the market, concrete customer segments and specific kinds of competitors, with how this business "
    "differs; specific to the request, not generic filler.",
    checks_numbers=False,
)
SITUATION = Section(
    "situation",
    "Situation",
    "Describe the current situation and the goal, citing the baseline figures",
    "prose",
    ("baseline",),
    instruction="Describe where the business stands today and what the goal is. Cite the baseline figures above "
    "exactly; do not invent other figures.",
    rubric="States the current position and the goal clearly, cites the baseline figures correctly, and is "
    "specific to this business.",
)
OPTIONS = Section(
    "options",
    "Options considered",
    "Explore several strategies to reach the goal, compute each one's projection with the financial model, and keep "
    "the one that reaches the goal (then the best-judged)",
    "options",
    ("situation", "market", "baseline"),
    instruction="Propose ONE strategy to reach the goal. Start with a line 'Option: <short name>', then two or "
    "three sentences: what the business will do and how it raises revenue or lowers costs.",
    rubric="The option is one concrete, feasible strategy for this business, explains how it raises revenue or "
    "lowers costs, and could plausibly reach the goal.",
    checks_numbers=False,
)
STRATEGY = Section(
    "strategy",
    "Chosen strategy",
    "Explain the chosen strategy: actions, who is responsible, why it reaches the goal",
    "prose",
    ("options", "baseline"),
    instruction="Explain the chosen strategy as three to five concrete actions, who owns each, and why together "
    "they reach the goal.",
    rubric="Turns the chosen option into concrete actions with owners, explains why they reach the goal, and "
    "stays consistent with the option.",
)
PROJECTION = Section(
    "projection",
    "Financial projection",
    "The chosen option's projection table, computed by the financial model from its assumptions, with the goal line "
    "and a commentary checked against the table",
    "projection",
    ("baseline", "strategy", "options"),
    instruction="Comment on the projection table in three or four sentences: how revenue, costs and profit evolve "
    "and whether the goal is met. Quote figures exactly as in the table.",
    rubric="Explains the projection correctly: the trend of revenue, costs and profit, and whether the goal is "
    "met, quoting the table's figures.",
)
RISKS = Section(
    "risks",
    "Risks and mitigations",
    "List the main risks of the strategy and a mitigation for each",
    "prose",
    ("strategy", "projection"),
    instruction="List three or four risks of this strategy as bullets '- Risk: ... Mitigation: ...'.",
    rubric="Lists specific risks of this strategy (not generic ones), each with a concrete, feasible mitigation.",
)
MILESTONES = Section(
    "milestones",
    "Milestones",
    "Lay out milestones with dates or periods and measurable targets",
    "prose",
    ("strategy", "projection"),
    instruction="Give four to six milestones as bullets '- <when>: <what> (<measure>)', following the strategy "
    "and the projection.",
    rubric="Gives dated or ordered milestones with measurable targets that follow the strategy and projection.",
)
DOCUMENT = Section(
    "document",
    "Business plan",
    "Assemble the sections and the table into a Markdown document, check every figure against the table, and "
    "write it to a file",
    "document",
    ("baseline", "situation", "market", "options", "strategy", "projection", "risks", "milestones"),
    checks_numbers=False,
)

SECTIONS: tuple[Section, ...] = (
    BASELINE,
    MARKET,
    SITUATION,
    OPTIONS,
    STRATEGY,
    PROJECTION,
    RISKS,
    MILESTONES,
    DOCUMENT,
)
"""Every step, in plan order."""

DOCUMENT_ORDER: tuple[Section, ...] = (SITUATION, MARKET, OPTIONS, STRATEGY, PROJECTION, RISKS, MILESTONES)
"""The sections of the final document, in reading order."""

BY_ID: dict[str, Section] = {s.id: s for s in SECTIONS}

PlanKind = Literal["growth", "product", "investment", "risk", "market"]

_KINDS: tuple[tuple[PlanKind, re.Pattern[str]], ...] = (
    ("risk", re.compile(r"\brisks?\s+(analysis|assessment|management|register|review|plan)\b", re.I)),
    ("investment", re.compile(r"\binvestment\s+(analysis|case|proposal|memo|appraisal)\b|\bshould\s+(we|i)\s+invest\b|"
                              r"\b(ROI|payback period|capex|capital expenditure|acquisition)\b", re.I)),
    ("product", re.compile(r"\bproduct\s+(proposal|launch|plan|pitch)\b|\blaunch(ing)?\s+(a|an|our|the)\s+(new\s+)?"
                           r"(product|service|app|line)\b|\bnew\s+product\b|\bpitch\s+deck\b", re.I)),
    ("market", re.compile(r"\b(market|industry|competitive|competitor)\s+(analysis|research|study|report|overview|"
                          r"landscape|assessment)\b", re.I)),
)  # fmt: skip
_PLAN = re.compile(r"\b(business|growth|strategic)\s+plan\b", re.I)
"""A request for a plan is a growth plan even when it asks for a market analysis inside it."""

# What changes per kind of request: a section's title, instruction and rubric (ids, dependencies and kinds stay, so
# every request runs the same verified steps: baseline, options computed by the financial model, the projection).
_FITTED: dict[PlanKind, dict[str, tuple[str, str, str]]] = {
    "product": {
        "situation": (
            "Problem and opportunity",
            "Describe the customer problem the product solves, why now, and "
            "where the business stands today. Cite the baseline figures above exactly.",
            "States a concrete customer problem and the opportunity for this business, citing the baseline "
            "figures correctly.",
        ),
        "options": (
            "Product options",
            OPTIONS.instruction.replace("ONE strategy", "ONE product option (what to build and for whom)"),
            "The option is one concrete product for named customers, explains how it earns "
            "revenue, and could plausibly reach the goal.",
        ),
        "strategy": (
            "Product and go-to-market plan",
            "Describe the chosen product, its price and channel, and three to five launch actions with owners.",
            "Describes the product, its price, channel and launch "
            "actions with owners, consistent with the chosen option.",
        ),
        "milestones": (
            "Launch milestones",
            MILESTONES.instruction,
            "Gives dated launch milestones (build, pilot, launch, scale) with measurable targets.",
        ),
    },
    "investment": {
        "situation": (
            "Investment summary",
            "Summarise the investment being considered, what it costs and what the "
            "business expects from it. Cite the baseline figures above exactly.",
            "Summarises the investment, its cost and expected return clearly, citing the baseline figures correctly.",
        ),
        "options": (
            "Alternatives considered",
            OPTIONS.instruction.replace(
                "ONE strategy", "ONE alternative (invest, a smaller investment, or not investing)"
            ),
            "The alternative is concrete and comparable, explains its "
            "effect on revenue or costs, and could plausibly reach the goal.",
        ),
        "strategy": (
            "Recommendation",
            "Recommend the chosen alternative: why it beats the others, the conditions for investing, and who decides.",
            "Gives a clear recommendation with reasons and conditions, consistent with the chosen alternative.",
        ),
        "milestones": (
            "Decision milestones",
            MILESTONES.instruction,
            "Gives dated decision and review points with measurable criteria.",
        ),
    },
    "market": {
        "situation": (
            "Market overview",
            "Summarise the market the request describes: its size, growth and trends, using the request's own "
            "figures. Then state where the business stands; cite the baseline figures above exactly.",
            "Summarises the market's size, growth and trends with the request's figures, and the business's position.",
        ),
        "market": (
            "Competition and customers",
            MARKET.instruction,
            MARKET.rubric,
        ),
        "options": (
            "Strategic options",
            OPTIONS.instruction.replace("ONE strategy", "ONE strategic option (a move in this market)"),
            "The option is one concrete move in this market, explains how it raises revenue or lowers costs, and "
            "fits the market described.",
        ),
        "strategy": (
            "Recommendation",
            "Recommend the chosen option for the request's readers (investors, decision makers): why it beats the "
            "others, and three to five actions with owners.",
            "Gives a clear recommendation with reasons and actions, consistent with the market and the chosen option.",
        ),
    },
    "risk": {
        "situation": (
            "Context",
            "Describe the business and what is at stake. Cite the baseline figures above exactly.",
            "Describes the business and its exposure concretely, citing the baseline figures correctly.",
        ),
        "options": (
            "Risk responses considered",
            OPTIONS.instruction.replace(
                "ONE strategy", "ONE risk response (avoid, reduce, transfer or accept a named risk)"
            ),
            "The response is concrete, names the risk it addresses, and explains its effect on revenue or costs.",
        ),
        "strategy": (
            "Risk management plan",
            "Explain the chosen responses as three to five actions with owners and triggers.",
            "Turns the chosen response into actions with owners and triggers.",
        ),
        "risks": (
            "Risk register",
            "List four or five risks as bullets '- Risk: ... Likelihood: low/medium/high. "
            "Impact: ... Mitigation: ...'.",
            "Lists specific risks with likelihood, impact and a concrete mitigation each.",
        ),
        "milestones": (
            "Monitoring and review",
            "Give four to six review points as bullets '- <when>: <what is checked> (<threshold>)'.",
            "Gives dated review points with measurable thresholds.",
        ),
    },
}


DOCUMENT_TITLES: dict[PlanKind, str] = {
    "growth": "Business plan",
    "product": "Product proposal",
    "investment": "Investment analysis",
    "risk": "Risk analysis",
    "market": "Market analysis",
}


def plan_kind(request: str) -> PlanKind:
    """What the request asks for: a risk analysis, an investment analysis, a product proposal, a market analysis,
    or a growth plan (the default, and any request that asks for a business or growth plan)."""
    return next(
        (
            kind
            for kind, pattern in _KINDS
            if pattern.search(request) and not (kind == "market" and _PLAN.search(request))
        ),
        "growth",
    )


def sections_for(request: str) -> tuple[Section, ...]:
    """The plan's sections for ``request``: every step, titled and instructed for what the request asks."""
    fitted = _FITTED.get(plan_kind(request), {})
    out = []
    for section in SECTIONS:
        if section.id in fitted:
            title, instruction, rubric = fitted[section.id]
            goal = f"{title}: {instruction.split('. ')[0].rstrip('.')}"
            section = replace(section, title=title, goal=goal, instruction=instruction, rubric=rubric)
        out.append(section)
    return tuple(out)


def by_id_for(request: str) -> dict[str, Section]:
    return {s.id: s for s in sections_for(request)}


def document_order_for(request: str) -> tuple[Section, ...]:
    """The document's sections in reading order for ``request``."""
    by_id = by_id_for(request)
    return tuple(by_id[s.id] for s in DOCUMENT_ORDER)


BASELINE_PROMPT = """\
Request: {request}

Give the business's current yearly figures as JSON, using the request's numbers where it states them and
realistic estimates otherwise:
{{"revenue": <number>, "variable_cost_pct": <percent of revenue>, "fixed_costs": <number>}}
Reply with the JSON only."""

PROJECTION_PREFIX = '{"revenue_growth_pct": '
"""How every reply to :data:`PROJECTION_PROMPT` starts (the model continues it): a small model asked for JSON
often answers in prose, and then the option has no figures the financial model can compute."""

PROJECTION_PROMPT = """\
Request: {request}
Baseline: {baseline}
Goal: {goal}
Strategy: {strategy}

Propose the strategy's assumptions as JSON (percentages per {period}):
{{"revenue_growth_pct": <number>, "fixed_cost_growth_pct": <number>,
 "levers": [{{"name": "<action>", "revenue_uplift_pct": <number>, "cost_saving_pct": <number>}}],
 "investments": [{{"name": "<item>", "amount": <number>, "period": 1}}]}}
Reply with the JSON only."""
