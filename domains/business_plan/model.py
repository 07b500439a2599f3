"""The business plan's financial model: explicit assumptions in, a projection table out.

The model (a language model) only *proposes* assumptions; this module does the arithmetic, so a plan's table
is right by construction and the prose around it can be checked (:mod:`.claims`).

Arithmetic rules (deterministic, in :class:`~decimal.Decimal`):

- Period 0 is the baseline (the business today); periods 1..N are projected years or quarters.
- Revenue is ``price x volume`` when both are given (each compounding by its own growth rate), else a baseline
  revenue compounding by ``revenue_growth_pct``. Every lever's ``revenue_uplift_pct`` multiplies projected
  revenue from its ``start`` period on; ``cost_saving_pct`` reduces variable costs the same way.
- Variable costs are ``variable_cost_pct`` of revenue; fixed costs compound by ``fixed_cost_growth_pct``; one-off
  investments are charged in their period.
- Compounding uses unrounded values. Each money line (revenue, variable, fixed, one-off) is then rounded half-up
  to ``decimals`` places, and totals are computed from the rounded lines, so every printed row adds up exactly:
  total costs = variable + fixed + one-off, profit = revenue - total costs. Margin and growth rates are computed
  from the rounded money values and rounded half-up to 0.1 percentage point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

HUNDRED = Decimal(100)
MAX_AMOUNT = Decimal(10) ** 15
"""The largest money figure a plan may hold (a quadrillion): beyond it a number is a model's slip, and decimal
arithmetic on it would overflow its precision."""
PCT_QUANTUM = Decimal("0.1")

Metric = Literal["revenue", "variable_costs", "fixed_costs", "one_off", "total_costs", "profit", "margin"]
MONEY_METRICS: tuple[Metric, ...] = ("revenue", "variable_costs", "fixed_costs", "one_off", "total_costs", "profit")
LABELS: dict[Metric, str] = {
    "revenue": "Revenue",
    "variable_costs": "Variable costs",
    "fixed_costs": "Fixed costs",
    "one_off": "One-off investments",
    "total_costs": "Total costs",
    "profit": "Profit",
    "margin": "Margin",
}


NAME_CHARS = 120
"""The longest name of a lever or an investment."""


class Lever(BaseModel):
    """A strategic lever: a revenue uplift and/or a variable-cost saving from period ``start`` on."""

    name: str = Field(min_length=1, max_length=NAME_CHARS)
    revenue_uplift_pct: Decimal = Field(default=Decimal(0), ge=-90, le=300)
    cost_saving_pct: Decimal = Field(default=Decimal(0), ge=-100, le=90)
    start: int = Field(default=1, ge=1, le=40)


class Investment(BaseModel):
    """A one-off investment (a cost) in one projected period."""

    name: str = Field(default="investment", max_length=NAME_CHARS)
    amount: Decimal = Field(ge=0, le=MAX_AMOUNT)
    period: int = Field(default=1, ge=1, le=40)


class Assumptions(BaseModel):
    """Everything the projection depends on, explicit and validated (rates in percent)."""

    currency: str = Field(default="$", max_length=5)
    period: Literal["year", "quarter"] = "year"
    periods: int = Field(default=3, ge=1, le=40)
    revenue: Decimal | None = Field(default=None, gt=0, description="baseline revenue per period")
    price: Decimal | None = Field(default=None, gt=0)
    volume: Decimal | None = Field(default=None, gt=0, description="units sold per period")
    revenue_growth_pct: Decimal = Field(default=Decimal(0), ge=-90, le=300)
    price_growth_pct: Decimal = Field(default=Decimal(0), ge=-90, le=300)
    volume_growth_pct: Decimal = Field(default=Decimal(0), ge=-90, le=300)
    variable_cost_pct: Decimal = Field(default=Decimal(0), ge=0, le=100, description="variable costs, % of revenue")
    fixed_costs: Decimal = Field(default=Decimal(0), ge=0, description="baseline fixed costs per period")
    fixed_cost_growth_pct: Decimal = Field(default=Decimal(0), ge=-90, le=300)
    levers: list[Lever] = Field(default_factory=list, max_length=10)
    investments: list[Investment] = Field(default_factory=list, max_length=20)
    decimals: int = Field(default=0, ge=0, le=2, description="decimal places of money values")

    @model_validator(mode="after")
    def _revenue_source(self) -> Self:
        if self.revenue is None and (self.price is None or self.volume is None):
            raise ValueError("give the baseline revenue, or both price and volume")
        if self.revenue is not None and self.price is not None and self.volume is not None:
            implied = self.price * self.volume
            if abs(implied - self.revenue) > Decimal("0.01") * self.revenue:
                raise ValueError(f"revenue {self.revenue} disagrees with price x volume = {implied}")
        late = [i.period for i in self.investments if i.period > self.periods]
        if late:
            raise ValueError(f"investments in periods {late} fall after the horizon of {self.periods} periods")
        return self

    @property
    def period_label(self) -> str:
        return "Year" if self.period == "year" else "Q"


@dataclass(frozen=True, slots=True)
class Row:
    """One period of the projection (money rounded, see the module docstring)."""

    period: int
    label: str
    revenue: Decimal
    variable_costs: Decimal
    fixed_costs: Decimal
    one_off: Decimal
    total_costs: Decimal
    profit: Decimal
    margin: Decimal  # percent of revenue, 0.1 pp

    def value(self, metric: Metric) -> Decimal:
        return Decimal(getattr(self, metric))


@dataclass(frozen=True, slots=True)
class Projection:
    """The projection table: the baseline row (period 0) and one row per projected period."""

    assumptions: Assumptions
    rows: tuple[Row, ...]

    def series(self, metric: Metric) -> list[Decimal]:
        return [r.value(metric) for r in self.rows]

    def growth(self, metric: Metric, period: int, *, base: int | None = None) -> Decimal | None:
        """Growth of ``metric`` in percent from period ``base`` (default: the period before) to ``period``."""
        start = period - 1 if base is None else base
        if not 0 <= start < period < len(self.rows):
            return None
        before, after = self.rows[start].value(metric), self.rows[period].value(metric)
        if before == 0:
            return None
        return round_pct((after - before) / abs(before) * HUNDRED)

    def growth_rates(self, metric: Metric) -> list[Decimal]:
        """Every period-on-period and every since-baseline growth rate of ``metric`` in the table."""
        out = []
        for p in range(1, len(self.rows)):
            for base in {p - 1, 0}:
                g = self.growth(metric, p, base=base)
                if g is not None:
                    out.append(g)
        return out

    def money(self, value: Decimal) -> str:
        q = Decimal(1).scaleb(-self.assumptions.decimals)
        v = value.quantize(q, ROUND_HALF_UP)
        sign = "-" if v < 0 else ""
        return f"{sign}{self.assumptions.currency}{abs(v):,}"

    def markdown(self) -> str:
        """The table as Markdown: one column per period, one row per line item."""
        head = "| | " + " | ".join(r.label for r in self.rows) + " |"
        rule = "|---|" + "---:|" * len(self.rows)
        lines = [head, rule]
        for metric in (*MONEY_METRICS, "margin"):
            if metric == "one_off" and not any(r.one_off for r in self.rows):
                continue
            cells = [f"{r.margin}%" if metric == "margin" else self.money(r.value(metric)) for r in self.rows]
            name = f"**{LABELS[metric]}**" if metric in ("profit", "revenue") else LABELS[metric]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        growth = [self.growth("profit", p, base=0) for p in range(1, len(self.rows))]
        lines.append(
            "| Profit vs baseline | – | " + " | ".join("n/a" if g is None else f"{g:+}%" for g in growth) + " |"
        )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """JSON-able rows (money and percent as strings, exact)."""
        return {
            "assumptions": self.assumptions.model_dump(mode="json"),
            "rows": [
                {
                    k: str(getattr(r, k)) if k != "period" and k != "label" else getattr(r, k)
                    for k in ("period", "label", *MONEY_METRICS, "margin")
                }
                for r in self.rows
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Projection:
        """Rebuild a projection from :meth:`to_json` (recomputed from the assumptions, never trusted)."""
        return project(Assumptions.model_validate(data["assumptions"]))


def round_pct(value: Decimal) -> Decimal:
    """A percentage rounded half-up to 0.1 point (how the table prints margins and growth rates)."""
    return value.quantize(PCT_QUANTUM, ROUND_HALF_UP)


def _factor(pct: Decimal) -> Decimal:
    return Decimal(1) + pct / HUNDRED


def project(a: Assumptions) -> Projection:
    """The projection table for assumptions ``a`` (see the module docstring for the arithmetic rules)."""
    q = Decimal(1).scaleb(-a.decimals)
    rows = []
    for p in range(a.periods + 1):
        if a.price is not None and a.volume is not None:
            revenue = a.price * _factor(a.price_growth_pct) ** p * a.volume * _factor(a.volume_growth_pct) ** p
        else:
            revenue = (a.revenue or Decimal(0)) * _factor(a.revenue_growth_pct) ** p
        saving = Decimal(1)
        for lever in a.levers:
            if p >= lever.start:
                revenue *= _factor(lever.revenue_uplift_pct)
                saving *= Decimal(1) - lever.cost_saving_pct / HUNDRED
        variable = revenue * a.variable_cost_pct / HUNDRED * saving
        fixed = a.fixed_costs * _factor(a.fixed_cost_growth_pct) ** p
        one_off = sum((i.amount for i in a.investments if i.period == p), Decimal(0))
        rev, var, fix, off = (v.quantize(q, ROUND_HALF_UP) for v in (revenue, variable, fixed, one_off))
        total = var + fix + off
        profit = rev - total
        margin = round_pct(profit / rev * HUNDRED) if rev else Decimal(0)
        label = "Baseline" if p == 0 else f"{a.period_label} {p}" if a.period == "year" else f"Q{p}"
        rows.append(Row(p, label, rev, var, fix, off, total, profit, margin))
    return Projection(a, tuple(rows))


def assumptions_markdown(a: Assumptions) -> str:
    """The assumptions as a Markdown bullet list (what the table was computed from)."""
    unit = "year" if a.period == "year" else "quarter"
    cur = a.currency
    lines = [f"- Horizon: {a.periods} {unit}s after the baseline"]
    if a.price is not None and a.volume is not None:
        lines.append(f"- Baseline price {cur}{a.price:,} x volume {a.volume:,} units per {unit}")
        lines.append(f"- Price growth {a.price_growth_pct}% and volume growth {a.volume_growth_pct}% per {unit}")
    else:
        lines.append(f"- Baseline revenue {cur}{a.revenue:,} per {unit}, growing {a.revenue_growth_pct}% per {unit}")
    lines.append(f"- Variable costs {a.variable_cost_pct}% of revenue")
    lines.append(f"- Fixed costs {cur}{a.fixed_costs:,} per {unit}, growing {a.fixed_cost_growth_pct}% per {unit}")
    for lever in a.levers:
        lines.append(
            f"- Lever \u201c{lever.name}\u201d from {unit} {lever.start}: revenue {lever.revenue_uplift_pct:+}%, "
            f"variable costs -{lever.cost_saving_pct}%"
        )
    for inv in a.investments:
        lines.append(f"- One-off investment \u201c{inv.name}\u201d: {cur}{inv.amount:,} in {unit} {inv.period}")
    return "\n".join(lines)
