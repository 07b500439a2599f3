"""What a business-plan request says (baseline figures, the goal, the horizon) and the model's proposed
assumptions, parsed into validated :class:`~longthink.domains.business_plan.model.Assumptions`.

Numbers stated in the request are the baseline and win over the model's proposals; everything the request
does not state is proposed by the model as JSON, validated, and otherwise replaced by stated defaults — never
silently: every default and every override is listed in ``notes``.

Before planning, :func:`missing_facts` asks for the baseline a request lacks (revenue; profit, margin or costs).
The answers come back appended to the request (:func:`longthink.domains.pipeline.add_facts`) and are read like
the request's own figures; defaults nobody stated come back as assumptions, read too but marked ``assumed``, and
every note about them says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import ValidationError

from longthink.answers import extract_json
from longthink.domains.business_plan.claims import extract_numbers, find_claims
from longthink.domains.business_plan.model import MAX_AMOUNT, NAME_CHARS, Assumptions, Investment, Lever, Metric
from longthink.domains.pipeline import Question, added_facts, without_facts

DEFAULT_REVENUE = Decimal(1_000_000)
DEFAULT_VARIABLE_PCT = Decimal(40)
DEFAULT_MARGIN_PCT = Decimal(10)

_TARGET = re.compile(
    r"\b(profits?|revenues?|sales|turnover|margins?|earnings)\b[^.\n]{0,40}?\b(?:by|of|to)\s+(?:at least\s+)?"
    r"(\d+(?:\.\d+)?)\s?(%|percent|per cent)",
    re.I,
)
_TARGET_BEFORE = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s?(%|percent|per cent)\s+(?:more\s+|higher\s+|increase in\s+|growth in\s+)?"
    r"(profits?|revenues?|sales|turnover|margins?|earnings)\b",
    re.I,
)
_QUARTER = re.compile(r"\b(quarters?|quarterly|q[1-4])\b", re.I)
_HORIZON = re.compile(
    r"\b(?:next|over|within|in)\s+(?:the\s+next\s+)?(\d+|two|three|four|five)\s+(years?|quarters?)\b", re.I
)
_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5}
_CURRENCY = re.compile(r"[$€£¥]")


@dataclass(frozen=True, slots=True)
class Target:
    """The goal a request states, e.g. profit +10% in period 1."""

    metric: Metric
    pct: Decimal
    period: int

    def describe(self, period_word: str) -> str:
        return f"{self.metric} {self.pct:+}% by {period_word} {self.period}"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the request states: baseline figures by metric, the goal, the period unit and the horizon.
    ``assumed``: the figures that are defaults nobody stated (added to the request as assumptions), not facts."""

    figures: dict[str, Decimal] = field(default_factory=dict)
    target: Target | None = None
    period: Literal["year", "quarter"] = "year"
    periods: int = 3
    currency: str = "$"
    assumed: frozenset[str] = frozenset()


def _metric(word: str) -> Metric:
    w = word.lower()
    if w.startswith("margin"):
        return "margin"
    if w.startswith(("revenue", "sales", "turnover")):
        return "revenue"
    return "profit"


def read_request(text: str) -> RequestFacts:
    """Baseline figures ("revenue of $2.4M", "profit of $180,000", "fixed costs $500k", "a 12% margin"), the
    goal ("grow profit by 10% next year"), quarters or years, and the horizon (default 3 periods, at least the
    goal's period). Facts added to the request (a person's answers, or defaults marked as assumed) complete the
    figures the request's own words do not state."""
    own = without_facts(text)
    period: Literal["year", "quarter"] = "quarter" if _QUARTER.search(own) else "year"
    figures: dict[str, Decimal] = {}
    target: Target | None = None
    m = _TARGET.search(own)
    if m:
        target_metric, target_pct, span = _metric(m.group(1)), Decimal(m.group(2)), (m.start(2), m.end())
    else:
        mb = _TARGET_BEFORE.search(own)
        target_metric, target_pct, span = (
            (_metric(mb.group(3)), Decimal(mb.group(1)), (mb.start(1), mb.end(2)))
            if mb
            else ("profit", Decimal(0), (-1, -1))
        )
    horizon = _HORIZON.search(own)
    periods = 3
    target_period = 1
    if horizon:
        raw = horizon.group(1).lower()
        n = int(raw) if raw.isdigit() else _WORDS[raw]
        if 1 <= n <= 12:
            target_period = n
            periods = max(periods, n)
    if span[0] >= 0:
        target = Target(target_metric, target_pct, target_period)
    _read_figures(own, period, figures, span)
    assumed: set[str] = set()
    cur = _CURRENCY.search(own)
    currency = cur.group(0) if cur else None
    for fact in added_facts(text):
        known = set(figures)
        _read_figures(_fact_sentence(fact.label, fact.value, currency or "$"), period, figures)
        if fact.assumed:
            assumed |= set(figures) - known
        if currency is None and (cur := _CURRENCY.search(fact.value)):
            currency = cur.group(0)
    return RequestFacts(figures, target, period, periods, currency or "$", frozenset(assumed))


def _read_figures(text: str, period: str, figures: dict[str, Decimal], skip: tuple[int, int] = (-1, -1)) -> None:
    """The baseline figures ``text`` states, added to ``figures`` where it has none yet (``skip``: the goal)."""
    claims, _ = find_claims(text, horizon=40, period_word=period)
    for c in claims:
        if skip[0] <= c.number.start < skip[1] or abs(c.number.value) > MAX_AMOUNT:
            continue  # the goal is not a baseline figure; nor is an absurd number
        if c.what == "level" and c.number.kind == "money" and c.metric not in figures:
            figures[c.metric] = c.number.value
        elif c.metric == "margin" and c.what == "level" and "margin" not in figures:
            figures["margin"] = c.number.value
        elif c.what == "share" and c.metric == "variable_costs":
            figures["variable_cost_pct"] = c.number.value


def _fact_sentence(label: str, value: str, currency: str) -> str:
    """An answer as a sentence :func:`find_claims` reads: the answer alone when it names its own figure ("a 12%
    margin", "costs of $2.2M"), else the question's label before it ("profit: 180k"), a bare number taken as
    money ("yearly revenue: 2400000" -> "$2400000")."""
    if find_claims(value)[0]:
        return value
    numbers = extract_numbers(value)
    if len(numbers) == 1 and numbers[0].kind == "plain":
        n = numbers[0]
        value = f"{value[: n.start]}{currency}{value[n.start :]}"
    return f"{label}: {value}"


_PROFIT_FIGURES = frozenset({"profit", "margin", "fixed_costs", "total_costs"})
"""Any of these, with the revenue, gives the baseline's costs and profit."""


def missing_facts(request: str) -> list[Question]:
    """What to ask before planning ``request``: its yearly revenue when it states none, and its profit (or margin,
    or costs) when it states none of them. Each question's default is the figure the plan would otherwise assume
    (:data:`DEFAULT_REVENUE`, a :data:`DEFAULT_MARGIN_PCT` margin), stated in words. A request that states its
    figures (in its own words or in facts added to it) asks nothing."""
    facts = read_request(request)
    per = "quarterly" if facts.period == "quarter" else "yearly"
    cur = facts.currency
    asked = []
    if "revenue" not in facts.figures:
        asked.append(
            Question(
                id=f"{per}_revenue",
                text=f"What is the company's {per} revenue today (e.g. {cur}2.4M)?",
                default=f"{cur}{DEFAULT_REVENUE:,} revenue (illustrative)",
                why="the projection starts from the baseline revenue; without it the plan would invent one",
            )
        )
    if not _PROFIT_FIGURES & facts.figures.keys():
        asked.append(
            Question(
                id="profit",
                text=f"What is its {per} profit, margin or total costs today (e.g. {cur}180,000 profit, a 12% "
                f"margin, or costs of {cur}2.2M)?",
                default=f"a {DEFAULT_MARGIN_PCT}% margin (illustrative)",
                why="the costs and the profit to grow follow from it; without it the plan would invent them",
            )
        )
    return asked


def _dec(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        value = value.replace(",", "").replace("%", "").strip().lstrip("$€£¥")
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return out if out.is_finite() and abs(out) <= MAX_AMOUNT else None


def _json_object(text: str) -> dict[str, Any] | None:
    parsed = extract_json(text)
    if parsed.value is None:
        return None
    value = json.loads(parsed.value)
    return value if isinstance(value, dict) else None


def baseline_assumptions(facts: RequestFacts, proposal: str | None) -> tuple[Assumptions, list[str]]:
    """The baseline from the request's figures, completed by the model's JSON ``proposal`` (revenue,
    variable_cost_pct, fixed_costs), then by defaults. Raises ``ValueError`` when the result is invalid.
    ``notes`` say where each figure came from."""
    notes: list[str] = []
    raw = (_json_object(proposal) if proposal else None) or {}
    if proposal is not None and not raw:
        notes.append("the model's proposal had no JSON object")
    f = facts.figures
    revenue = f.get("revenue")
    if revenue is not None and "revenue" in facts.assumed:
        notes.append(f"revenue: assumed {facts.currency}{revenue:,} (a default, not stated: illustrative)")
    elif revenue is not None:
        notes.append("revenue from the request")
    else:
        revenue = _dec(raw.get("revenue"))
        if revenue is not None and revenue > 0:
            notes.append("revenue proposed by the model")
        else:
            revenue = DEFAULT_REVENUE
            notes.append(f"revenue: illustrative default {DEFAULT_REVENUE:,}")
    var_pct = f.get("variable_cost_pct")
    if var_pct is not None and "variable_cost_pct" in facts.assumed:
        notes.append(f"variable costs: assumed {var_pct}% of revenue (a default, not stated: illustrative)")
    elif var_pct is None:
        var_pct = _dec(raw.get("variable_cost_pct"))
        if var_pct is None or not 0 <= var_pct < 100:
            var_pct = DEFAULT_VARIABLE_PCT
            notes.append(f"variable costs: default {DEFAULT_VARIABLE_PCT}% of revenue")
        else:
            notes.append("variable cost share proposed by the model")
    else:
        notes.append("variable cost share from the request")
    variable = revenue * var_pct / 100
    profit = f.get("profit")
    if profit is None and "margin" in f:
        profit = revenue * f["margin"] / 100
    if profit is None and "total_costs" in f:
        profit = revenue - f["total_costs"]
    source = [k for k in ("profit", "margin", "total_costs") if k in f][:1]
    if "fixed_costs" in f:
        fixed = f["fixed_costs"]
        notes.append(
            f"fixed costs: assumed {facts.currency}{fixed:,} (a default, not stated: illustrative)"
            if "fixed_costs" in facts.assumed
            else "fixed costs from the request"
        )
    elif profit is not None:
        fixed = revenue - variable - profit
        if source and source[0] in facts.assumed:
            what = f"{f['margin']}% margin" if source[0] == "margin" else source[0].replace("_", " ")
            notes.append(f"fixed costs derived from the assumed {what} (a default, not stated: illustrative)")
        else:
            notes.append("fixed costs derived from the request's profit")
        if fixed < 0:  # the model's variable share cannot fit the stated profit: keep the profit, shrink the share
            var_pct = max(Decimal(0), (revenue - profit) / revenue * 100 * Decimal("0.6"))
            variable = revenue * var_pct / 100
            fixed = revenue - variable - profit
            notes.append(f"variable cost share lowered to {var_pct:.1f}% to fit the stated profit")
    else:
        fixed_raw = _dec(raw.get("fixed_costs"))
        if fixed_raw is not None and 0 <= fixed_raw < revenue - variable:
            fixed = fixed_raw
            notes.append("fixed costs proposed by the model")
        else:
            fixed = revenue * (1 - var_pct / 100 - DEFAULT_MARGIN_PCT / 100)
            notes.append(f"fixed costs: default for a {DEFAULT_MARGIN_PCT}% margin")
    a = Assumptions(
        currency=facts.currency,
        period=facts.period,
        periods=facts.periods,
        revenue=revenue.quantize(Decimal(1)),
        variable_cost_pct=var_pct.quantize(Decimal("0.1")),
        fixed_costs=max(Decimal(0), fixed).quantize(Decimal(1)),
    )
    return a, notes


def plan_assumptions(baseline: Assumptions, proposal: str) -> Assumptions:
    """The baseline plus the model's JSON proposal for the strategy: ``revenue_growth_pct``,
    ``fixed_cost_growth_pct``, ``levers`` [{name, revenue_uplift_pct, cost_saving_pct, start}] and
    ``investments`` [{name, amount, period}]. Raises ``ValueError`` (with the reason) when it is unusable."""
    raw = _json_object(proposal)
    if raw is None:
        raise ValueError("no JSON object in the proposal")
    update: dict[str, Any] = {}
    for key in ("revenue_growth_pct", "fixed_cost_growth_pct"):
        if key in raw:
            value = _dec(raw[key])
            if value is None:
                raise ValueError(f"{key} is not a number: {raw[key]!r}")
            update[key] = value
    try:
        levers = [Lever.model_validate(_clean(x)) for x in _items(raw.get("levers"))]
        investments = [Investment.model_validate(_clean(x)) for x in _items(raw.get("investments"))]
        return Assumptions.model_validate(
            {
                **baseline.model_dump(),
                **update,
                "levers": [lv.model_dump() for lv in levers],
                "investments": [i.model_dump() for i in investments],
            }
        )
    except ValidationError as exc:
        why = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3])
        raise ValueError(why) from None


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise ValueError(f"expected a list, got {type(value).__name__}")
    return value


def _clean(item: Any) -> Any:
    """Numbers given as strings ("5%", "$20,000") become numbers, and a name too long for a label is shortened (a
    lever described in a paragraph is still a lever); other values pass to validation unchanged."""
    if not isinstance(item, dict):
        return item
    out = dict(item)
    for key, value in item.items():
        if key == "name" and isinstance(value, str) and len(value) > NAME_CHARS:
            out[key] = value[: NAME_CHARS - 1].rstrip() + "\u2026"
        elif isinstance(value, str) and key != "name":
            number = _dec(value)
            if number is not None:
                out[key] = number
    return out
