"""The business plan's sections: what each step writes, its prompt, and the rubric its judge scores it with.

Prompts are short on purpose (the embedded 0.5B model on a CPU): the request, the few facts the section
needs, one instruction, a word limit. Figures come only from the financial model; the prompt says so, and
the number-consistency verifier checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    "Propose the strategy's assumptions as JSON; the financial model computes the projection table; comment on it",
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

BASELINE_PROMPT = """\
Request: {request}

Give the business's current yearly figures as JSON, using the request's numbers where it states them and
realistic estimates otherwise:
{{"revenue": <number>, "variable_cost_pct": <percent of revenue>, "fixed_costs": <number>}}
Reply with the JSON only."""

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
