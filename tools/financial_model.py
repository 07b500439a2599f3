"""A small financial model: explicit assumptions in, a projection table out, and a checker of the numbers a
text cites against that table.

The model (a language model) only *proposes* assumptions; this module does the arithmetic, so a plan's table
is right by construction and the prose around it can be checked.

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

:func:`check_numbers` is the number-consistency verifier: it extracts every number of a text (currency signs,
thousands separators, decimals, k/M/bn suffixes and words, percentages, negatives and accounting parentheses),
reads claims about the table ("profit of $1.2M in year 2", "revenue grows by 8%", "a margin of 12.5%") and
reports each claim that disagrees with the table, with its context.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, model_validator

from longthink.tools.base import ToolResult

HUNDRED = Decimal(100)
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


class Lever(BaseModel):
    """A strategic lever: a revenue uplift and/or a variable-cost saving from period ``start`` on."""

    name: str = Field(min_length=1, max_length=120)
    revenue_uplift_pct: Decimal = Field(default=Decimal(0), ge=-90, le=300)
    cost_saving_pct: Decimal = Field(default=Decimal(0), ge=-100, le=90)
    start: int = Field(default=1, ge=1, le=40)


class Investment(BaseModel):
    """A one-off investment (a cost) in one projected period."""

    name: str = Field(default="investment", max_length=120)
    amount: Decimal = Field(ge=0)
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
        return _pct((after - before) / abs(before) * HUNDRED)

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


def _pct(value: Decimal) -> Decimal:
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
        margin = _pct(profit / rev * HUNDRED) if rev else Decimal(0)
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


# -- numbers in text ------------------------------------------------------------------------------------------------

_SCALE_WORDS: dict[str, Decimal] = {
    "k": Decimal(10) ** 3,
    "thousand": Decimal(10) ** 3,
    "m": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "mm": Decimal(10) ** 6,
    "million": Decimal(10) ** 6,
    "b": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "billion": Decimal(10) ** 9,
}
_NUMBER = re.compile(
    r"(?P<open>\()?(?:(?P<sign>[-\u2212+])\s?)?(?P<cur>[$€£¥]|USD\s?|EUR\s?|GBP\s?)?(?P<sign2>[-\u2212])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?(?P<scale>thousand|million|billion|mn|mm|bn|[kKmMbB])(?![A-Za-z]))?"
    r"(?P<pct>\s?(?:%|percent\b|per cent\b|pp\b|percentage points?\b))?(?P<close>\))?"
)


_PERIOD_WORD = re.compile(r"\b(years?|yrs?|quarters?|periods?|phases?|stages?|months?|weeks?|steps?)\s?$", re.I)


@dataclass(frozen=True, slots=True)
class NumberMention:
    """A number found in a text: its value (scaled by k/M/bn), whether it is money or a percentage, where it is,
    and ``precision``: half a unit of its last printed digit (so "$1.2M" stands for 1.15M..1.25M)."""

    value: Decimal
    kind: Literal["money", "percent", "plain"]
    start: int
    end: int
    raw: str
    precision: Decimal


def extract_numbers(text: str) -> list[NumberMention]:
    """Every number in ``text`` (list markers like "1." at a line start and bare calendar years are skipped)."""
    out = []
    for m in _NUMBER.finditer(text):
        if m.start() > 0 and (text[m.start() - 1].isalnum() or text[m.start() - 1] == "_"):
            continue  # part of a word or identifier ("Q3", "x2")
        digits = m.group("num").replace(",", "")
        try:
            value = Decimal(digits)
        except InvalidOperation:
            continue
        scale_word = (m.group("scale") or "").lower()
        is_pct = bool(m.group("pct"))
        cur = bool(m.group("cur"))
        if not cur and not is_pct and not scale_word:
            line_start = text.rfind("\n", 0, m.start()) + 1
            after = text[m.end() : m.end() + 1]
            if text[line_start : m.start()].strip() == "" and after in (".", ")") and "." not in digits:
                continue  # a list marker
            if re.fullmatch(r"(19|20)\d\d", digits):
                continue  # a calendar year
            if _PERIOD_WORD.search(text[max(0, m.start() - 10) : m.start()]):
                continue  # "year 2", "quarter 3": a period, not a figure
        places = len(digits.split(".")[1]) if "." in digits else 0
        scale = _SCALE_WORDS.get(scale_word, Decimal(1))
        precision = Decimal(5).scaleb(-places - 1) * scale
        negative = bool(
            m.group("sign") in ("-", "\u2212") or m.group("sign2") or (m.group("open") and m.group("close"))
        )
        if negative and m.group("sign") and m.start("sign") > 0 and text[m.start("sign") - 1].isalnum():
            negative = False  # a hyphen inside a range "5-10" or a word
        value = value * scale * (-1 if negative else 1)
        kind: Literal["money", "percent", "plain"] = "percent" if is_pct else "money" if cur or scale_word else "plain"
        out.append(NumberMention(value, kind, m.start(), m.end(), m.group(0).strip(), precision))
    return out


# -- claims about the table ------------------------------------------------------------------------------------------

_METRIC_WORDS: tuple[tuple[re.Pattern[str], Metric], ...] = (
    (re.compile(r"\bvariable (?:costs?|expenses?)\b|\bcogs\b|\bcost of goods\b", re.I), "variable_costs"),
    (re.compile(r"\bfixed (?:costs?|expenses?)\b|\boverheads?\b", re.I), "fixed_costs"),
    (re.compile(r"\bone-?off\b|\binvest(?:ment|ments|ing)?\b|\bcapex\b", re.I), "one_off"),
    (re.compile(r"\btotal (?:costs?|expenses?)\b|\bcosts?\b|\bexpenses?\b|\bspending\b", re.I), "total_costs"),
    (re.compile(r"\bmargins?\b", re.I), "margin"),
    (re.compile(r"\bprofits?\b|\bearnings\b|\bnet income\b|\bebitd?a?\b", re.I), "profit"),
    (re.compile(r"\brevenues?\b|\bsales\b|\bturnover\b|\btop line\b", re.I), "revenue"),
)
_GROWTH = re.compile(
    r"\b(grow|grows|growing|grew|growth|increas\w*|ris\w*|rose|up|boost\w*|rais\w*|improv\w*|climb\w*|"
    r"declin\w*|decreas\w*|fall\w*|fell|drop\w*|down|reduc\w*|cut\w*|lower\w*|higher|more|less|by)\b",
    re.I,
)
_DOWN = re.compile(r"\b(declin\w*|decreas\w*|fall\w*|fell|drop\w*|down|reduc\w*|cut\w*|lower\w*|less)\b", re.I)
_OF_REVENUE = re.compile(r"^\s*(of|to)\s+(revenue|sales|turnover)", re.I)
_PERIOD = re.compile(
    r"\b(?:(?:in|by|for|during)\s+)?(?:(year|yr|y|quarter|q|period)\s?(\d{1,2})|"
    r"(first|second|third|fourth|fifth) (year|quarter)|"
    r"(baseline|today|current(?:ly)?|last year|this year|next year))\b",
    re.I,
)
_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_CONTINUES = re.compile(
    r"^[\s,]*(?:\w+\s+){0,3}?(to|from|and|then|reaching|vs\.?|versus|compared (?:to|with))\s*$", re.I
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s|\n\s*\n|\n(?=\s*(?:[-*\u2022|#]|\d+[.)])\s)")


@dataclass(frozen=True, slots=True)
class Claim:
    """A number the text says about the table: ``what`` is "level", "growth" or "share" (a cost as a share of
    revenue); ``period`` is None when the text names none."""

    metric: Metric
    what: Literal["level", "growth", "share"]
    number: NumberMention
    period: int | None
    context: str


@dataclass(frozen=True, slots=True)
class ClaimVerdict:
    claim: Claim
    ok: bool
    expected: str  # what the table says, readable

    def describe(self) -> str:
        c = self.claim
        where = "" if c.period is None else f" (period {c.period})"
        verdict = "agrees with" if self.ok else "DISAGREES with"
        head = f"{c.number.raw!r} as {c.metric} {c.what}{where} {verdict} the table ({self.expected})"
        return f"{head}: \u201c{c.context}\u201d"


@dataclass(frozen=True, slots=True)
class NumberCheck:
    """The verdict on a text's numbers: every claim checked, every inline calculation ("$180,000 x 1.1 =
    $198,000") recomputed, and the numbers that refer to no table metric."""

    verdicts: tuple[ClaimVerdict, ...]
    unchecked: tuple[NumberMention, ...] = ()
    numbers: int = 0
    arithmetic: tuple[Calculation, ...] = ()

    @property
    def disagreements(self) -> tuple[ClaimVerdict, ...]:
        return tuple(v for v in self.verdicts if not v.ok)

    @property
    def wrong_arithmetic(self) -> tuple[Calculation, ...]:
        return tuple(c for c in self.arithmetic if not c.ok)

    @property
    def consistent(self) -> bool:
        return not self.disagreements and not self.wrong_arithmetic

    def summary(self) -> str:
        bad = self.disagreements
        head = (
            f"{len(self.verdicts)} of {self.numbers} numbers refer to the table; "
            f"{len(self.verdicts) - len(bad)} agree, {len(bad)} disagree"
        )
        if self.arithmetic:
            head += f"; {len(self.wrong_arithmetic)} of {len(self.arithmetic)} calculations wrong"
        return head + "".join(f"\n- {line}" for line in self.problems())

    def problems(self) -> list[str]:
        """Every disagreeing claim and wrong calculation, described with its context."""
        return [v.describe() for v in self.disagreements] + [c.describe() for c in self.wrong_arithmetic]

    def to_json(self) -> dict[str, Any]:
        return {
            "consistent": self.consistent,
            "numbers": self.numbers,
            "checked": len(self.verdicts),
            "calculations": len(self.arithmetic),
            "disagreements": self.problems(),
        }


_OPERATOR = re.compile(r"^\s*([-+*/\u00d7\u2212\u00f7]|x)\s*$")
_EQUALS = re.compile(r"^\s*(=|equals)\s*$")


@dataclass(frozen=True, slots=True)
class Calculation:
    """An inline calculation in a text, recomputed: ``terms`` joined by ``ops``, the stated ``result``."""

    terms: tuple[NumberMention, ...]
    ops: tuple[str, ...]
    result: NumberMention
    computed: Decimal
    ok: bool

    def describe(self) -> str:
        raw = [t.raw.lstrip("+-\u2212 ") if i and t.raw[:1] in "+-\u2212" else t.raw for i, t in enumerate(self.terms)]
        expr = " ".join(r if i == 0 else f"{self.ops[i - 1]} {r}" for i, r in enumerate(raw))
        verdict = "is right" if self.ok else f"is WRONG (it is {self.computed.normalize():,f})"
        return f"calculation {expr} = {self.result.raw} {verdict}"


def _evaluate(values: list[Decimal], ops: list[str]) -> Decimal | None:
    """``values`` joined by ``ops`` with the usual precedence (x and / before + and -); None on division by 0."""
    sums: list[Decimal] = [values[0]]
    signs: list[int] = [1]
    for op, v in zip(ops, values[1:], strict=True):
        if op in "*x\u00d7":
            sums[-1] *= v
        elif op in "/\u00f7":
            if v == 0:
                return None
            sums[-1] /= v
        else:
            sums.append(v)
            signs.append(-1 if op in "-\u2212" else 1)
    return sum((s * g for s, g in zip(sums, signs, strict=True)), Decimal(0))


def find_calculations(text: str, numbers: Sequence[NumberMention] | None = None) -> list[Calculation]:
    """Every inline calculation "A op B [op C ...] = R" in ``text``, recomputed (a percentage term counts as a
    fraction: "10% x $248,000" is 24,800). A result within its printed precision or 0.5% is right."""
    nums = list(extract_numbers(text) if numbers is None else numbers)
    out: list[Calculation] = []
    i = 0
    while i < len(nums) - 2:
        terms, ops = [nums[i]], []
        j = i
        result = None
        while j + 1 < len(nums):
            gap = text[nums[j].end : nums[j + 1].start]
            nxt = nums[j + 1]
            op = _OPERATOR.match(gap)
            if op:
                ops.append(op.group(1))
                terms.append(nxt)
                j += 1
                continue
            if not gap.strip() and nxt.raw[:1] in "+-\u2212":  # "5 - 2" was read as 5 and -2
                ops.append(nxt.raw[0])
                terms.append(dataclasses.replace(nxt, value=abs(nxt.value)))
                j += 1
                continue
            if _EQUALS.match(gap) and len(terms) >= 2:
                result = nums[j + 1]
            break
        if result is None:
            i = j + 1 if j > i else i + 1
            continue
        values = [t.value / HUNDRED if t.kind == "percent" and result.kind != "percent" else t.value for t in terms]
        computed = _evaluate(values, ops)
        if computed is not None:
            tolerance = max(result.precision, abs(computed) * Decimal("0.005"))
            out.append(
                Calculation(tuple(terms), tuple(ops), result, computed, abs(computed - result.value) <= tolerance)
            )
        i = j + 2
    return out


def _sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    left = max((m.end() for m in _SENTENCE_END.finditer(text, 0, start)), default=0)
    right_m = _SENTENCE_END.search(text, end)
    return left, right_m.start() if right_m else len(text)


def _period_of(text: str, horizon: int, period_word: str) -> int | None:
    """The period named in ``text`` closest to its end (the number's position), if any."""
    found = None
    for m in _PERIOD.finditer(text):
        if m.group(2):
            unit = m.group(1).lower()
            if (unit in ("q", "quarter") and period_word == "year") or (
                unit in ("y", "yr", "year") and period_word == "quarter"
            ):
                continue
            found = int(m.group(2))
        elif m.group(3):
            found = _ORDINAL[m.group(3).lower()]
        else:
            word = m.group(5).lower()
            found = 1 if word == "next year" else 0
    return found if found is None or found <= horizon else None


def find_claims(text: str, horizon: int = 40, period_word: str = "year") -> tuple[list[Claim], list[NumberMention]]:
    """The claims about table metrics in ``text`` and the numbers that make none.

    A number makes a claim when a metric word ("revenue", "profit", "fixed costs", "margin", ...) stands before it
    in the same sentence with no other number in between (or right after it: "$40,000 of profit"). A percentage
    after a growth word ("grows by", "up", "increase") is a growth claim; a percentage of a cost "of revenue" is a
    share; a percentage with "margin" is the margin; money is a level. The period is the one named in the
    sentence ("in year 2", "Q3", "next year", "the baseline") or None.
    """
    numbers = extract_numbers(text)
    claims: list[Claim] = []
    loose: list[NumberMention] = []
    prev_end = 0
    prev_claim: Claim | None = None
    for i, n in enumerate(numbers):
        s_start, s_end = _sentence_bounds(text, n.start, n.end)
        left = text[max(s_start, prev_end) : n.start]
        next_start = numbers[i + 1].start if i + 1 < len(numbers) else s_end
        right = text[n.end : min(s_end, next_start, n.end + 25)]
        prev_end = n.end
        after = _first_metric(right) if n.kind != "plain" else None
        # "$2.0M in revenue": for money the word right after wins; "40% of revenue" is a share of the word before
        metric = (after or _last_metric(left)) if n.kind == "money" else (_last_metric(left) or after)
        if (
            metric is None
            and prev_claim is not None
            and prev_claim.number.end >= s_start
            and prev_claim.number.kind == n.kind
            and _CONTINUES.search(left)
        ):
            metric = prev_claim.metric  # "revenue grows from $2.0M to $2.2M": the same subject
        if metric is None:
            loose.append(n)
            continue
        if n.kind == "plain" and metric != "margin":
            loose.append(n)  # a count ("12 stores", "3 options") is no money figure
            continue
        context = " ".join(text[s_start:s_end].split())[:220]
        period = _period_of(text[s_start : n.start] + " " + right, horizon, period_word)
        if metric == "margin":
            what: Literal["level", "growth", "share"] = (
                "growth"
                if _GROWTH.search(left[-30:]) and n.kind == "percent" and "pp" not in n.raw and "point" not in n.raw
                else "level"
            )
            if n.kind == "money":
                loose.append(n)
                continue
        elif n.kind == "percent":
            if metric in ("variable_costs", "fixed_costs", "total_costs", "one_off") and _OF_REVENUE.search(right):
                what = "share"
            else:
                what = "growth"
        else:
            what = "level"
        if what == "growth" and _DOWN.search(left[-40:]) and n.value > 0:
            n = NumberMention(-n.value, n.kind, n.start, n.end, n.raw, n.precision)
        prev_claim = Claim(metric, what, n, period, context)
        claims.append(prev_claim)
    return claims, loose


def _last_metric(left: str) -> Metric | None:
    best: tuple[int, Metric] | None = None
    for pattern, metric in _METRIC_WORDS:
        for m in pattern.finditer(left):
            if best is None or m.end() > best[0]:
                best = (m.end(), metric)
    if best is None or len(left) - best[0] > 90:
        return None
    return best[1]


_METRIC_AFTER = re.compile(r"^\s*(?:(?:of|in)\s+)?(?:(?:net|total|annual|yearly|quarterly|gross)\s+)?$", re.I)


def _first_metric(right: str) -> Metric | None:
    """The metric named right after a number ("$40,000 of profit", "$2M in revenue"); a metric after a comma
    belongs to the next number ("$85M, variable costs $2M")."""
    best: tuple[int, Metric] | None = None
    for pattern, metric in _METRIC_WORDS:
        m = pattern.search(right)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), metric)
    return None if best is None or not _METRIC_AFTER.match(right[: best[0]]) else best[1]


def _close(claimed: Decimal, actual: Decimal, precision: Decimal, *, rel: Decimal, abs_pp: Decimal) -> bool:
    tolerance = max(precision, abs(actual) * rel, abs_pp)
    return abs(claimed - actual) <= tolerance


def check_claim(
    claim: Claim,
    table: Projection,
    *,
    periods: Sequence[int] | None = None,
    rel_tol: float = 0.01,
    pp_tol: float = 0.5,
) -> ClaimVerdict:
    """One claim against the table: money within ``rel_tol`` (relative) or the number's printed precision;
    percentages within ``pp_tol`` percentage points. A claim without a period agrees if any period (of
    ``periods``, default all) matches; a growth claim agrees with either the period-on-period or the
    since-baseline rate."""
    rel, pp = Decimal(str(rel_tol)), Decimal(str(pp_tol))
    n = claim.number
    if claim.period is not None:
        periods = [claim.period]
    elif periods is None:
        periods = range(len(table.rows))
    if claim.what == "level" and claim.metric != "margin":
        actual = [table.rows[p].value(claim.metric) for p in periods]
        ok = any(_close(n.value, a, n.precision, rel=rel, abs_pp=Decimal(0)) for a in actual)
        # a money level for "costs" may also mean variable or fixed costs when the text is loose
        if not ok and claim.metric == "total_costs":
            others = [table.rows[p].value(m) for p in periods for m in ("variable_costs", "fixed_costs", "one_off")]
            ok = any(_close(n.value, a, n.precision, rel=rel, abs_pp=Decimal(0)) for a in others if a)
        expected = ", ".join(table.money(a) for a in actual)
    elif claim.metric == "margin" and claim.what == "level":
        actual = [table.rows[p].margin for p in periods]
        ok = any(_close(n.value, a, n.precision, rel=Decimal(0), abs_pp=pp) for a in actual)
        expected = ", ".join(f"{a}%" for a in actual)
    elif claim.what == "share":
        actual = [
            table.rows[p].value(claim.metric) / table.rows[p].revenue * HUNDRED
            for p in periods
            if table.rows[p].revenue
        ]
        ok = any(_close(n.value, a, n.precision, rel=Decimal(0), abs_pp=pp) for a in actual)
        expected = ", ".join(f"{_pct(a)}% of revenue" for a in actual)
    else:
        metric: Metric = claim.metric
        if claim.period is None:
            rates = [
                g
                for p in periods
                if p > 0
                for base in {p - 1, 0}
                if (g := table.growth(metric, p, base=base)) is not None
            ]
        else:
            rates = [
                g for base in (claim.period - 1, 0) if (g := table.growth(metric, claim.period, base=base)) is not None
            ]
        ok = any(_close(n.value, g, n.precision, rel=Decimal(0), abs_pp=pp) for g in rates)
        if not ok and metric == "margin":
            changes = [table.rows[p].margin - table.rows[0].margin for p in periods]
            ok = any(_close(n.value, d, n.precision, rel=Decimal(0), abs_pp=pp) for d in changes)
        expected = "growth " + ", ".join(f"{g:+}%" for g in sorted(set(rates))) if rates else "no growth rate"
    return ClaimVerdict(claim, ok, expected)


def check_numbers(
    text: str,
    table: Projection,
    *,
    periods: Collection[int] | None = None,
    growth: bool = True,
    ignore_growth: Collection[Decimal] = (),
    rel_tol: float = 0.01,
    pp_tol: float = 0.5,
) -> NumberCheck:
    """Check every number of ``text`` that refers to ``table`` (see :func:`find_claims` and :func:`check_claim`).

    ``periods`` limits the check to those periods of the table (claims about other periods are left unchecked:
    a section written before the projection is checked against the baseline only); ``growth=False`` leaves
    growth claims unchecked; a growth claim equal to one of ``ignore_growth`` (the request's goal, "grow
    profit by 10%") is a goal, not a claim about the table. Markdown tables inside the text are skipped (the
    tool's own table is right by construction)."""
    prose = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("|"))
    calculations = tuple(find_calculations(prose))
    claims, loose = find_claims(prose, table.assumptions.periods, table.assumptions.period)
    allowed = None if periods is None else sorted(set(periods))
    verdicts = []
    for c in claims:
        is_goal = c.what == "growth" and (not growth or any(c.number.value == g for g in ignore_growth))
        if is_goal or (allowed is not None and c.period is not None and c.period not in allowed):
            loose.append(c.number)
        else:
            verdicts.append(check_claim(c, table, periods=allowed, rel_tol=rel_tol, pp_tol=pp_tol))
    return NumberCheck(tuple(verdicts), tuple(loose), len(verdicts) + len(loose), calculations)


# -- the tool ---------------------------------------------------------------------------------------------------------


class FinancialModelArgs(BaseModel):
    """The tool's arguments: the assumptions, and optionally a text whose numbers are checked against the table."""

    assumptions: Assumptions
    text: str | None = Field(default=None, max_length=100_000)


@dataclass(frozen=True, slots=True)
class FinancialModel:
    """Build the projection table from explicit assumptions; with ``text``, also check its numbers.
    ``data`` is ``{"table": Projection.to_json(), "check": NumberCheck.to_json() | None}``."""

    name: str = "financial_model"
    description: str = (
        "build a revenue/costs/profit/margin projection table from explicit assumptions (baseline revenue or "
        "price x volume, growth rates, variable and fixed costs, levers, one-off investments) and check that "
        "the numbers in a text agree with it"
    )
    args_model: type[BaseModel] = FinancialModelArgs

    async def run(self, args: FinancialModelArgs) -> ToolResult:
        table = project(args.assumptions)
        output = table.markdown()
        check = None
        ok = True
        if args.text is not None:
            verdict = check_numbers(args.text, table)
            check = verdict.to_json()
            output += "\n\n" + verdict.summary()
            ok = verdict.consistent
        error = None if ok else "numbers in the text disagree with the table"
        return ToolResult(self.name, ok, output, error, {"table": table.to_json(), "check": check})
