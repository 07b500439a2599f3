"""The number-consistency verifier: the numbers a text cites, checked against the financial model's table.

:func:`check_numbers` extracts every number of a text (currency signs, thousands separators, decimals, k/M/bn
suffixes and words, percentages, negatives and accounting parentheses), reads claims about the table ("profit of
$1.2M in year 2", "revenue grows by 8%", "a margin of 12.5%"), recomputes inline calculations, and reports each
claim that disagrees with the table, with its context.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from longthink.domains.business_plan.model import HUNDRED, Metric, Projection, round_pct

SCALE_WORDS: dict[str, Decimal] = {
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
NUMBER = re.compile(
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
    for m in NUMBER.finditer(text):
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
        scale = SCALE_WORDS.get(scale_word, Decimal(1))
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


_LABEL = re.compile(r"\(\s*\$?\s*(?:year|yr|quarter|q|period|baseline)\s*\d{0,2}\s*\)", re.I)
"""A period label inside a calculation ("(year 1)"): the terms around it still make one calculation."""
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
            gap = _LABEL.sub("", text[nums[j].end : nums[j + 1].start])  # "$2.4M (year 1) - $2.2M (year 0)"
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


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The span of the sentence of ``text`` holding ``text[start:end]`` (its end mark excluded)."""
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
    sentence ("in year 2", "Q3", "next year", "the baseline"), else the one named by the line that introduces it
    ("- **Year 2**:" then "- Profit: $198,813"), or None. A figure whose own line names only its period takes its
    metric from the line that introduces it ("### Revenue" then "- Year 2: $2.4M").
    """
    numbers = extract_numbers(text)
    claims: list[Claim] = []
    loose: list[NumberMention] = []
    prev_end = 0
    prev_claim: Claim | None = None
    for i, n in enumerate(numbers):
        s_start, s_end = sentence_bounds(text, n.start, n.end)
        left = text[max(s_start, prev_end) : n.start]
        next_start = numbers[i + 1].start if i + 1 < len(numbers) else s_end
        right = text[n.end : min(s_end, next_start, n.end + 25)].split("\n", 1)[0]  # a metric on the next line
        # ("Revenue: $2.5M\nVariable costs: ...") names the next number, not this one
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
        if metric is None and n.kind != "plain":
            metric = _heading_metric(text, n)  # "### Revenue" then "- Year 2: $2.4M"
        if metric is None:
            loose.append(n)
            continue
        if n.kind == "plain" and metric != "margin":
            loose.append(n)  # a count ("12 stores", "3 options") is no money figure
            continue
        context = " ".join(text[s_start:s_end].split())[:220]
        period = _period_of(text[s_start : n.start] + " " + right, horizon, period_word)
        if period is None:  # "- **Year 2**:\n  - Profit: $198,813": the line that introduces this one names it
            period = _context_period(text, n.start, horizon, period_word)
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
        if what == "growth" and period == 0:
            period = None  # "profit vs baseline: +10.2%": a growth is never at the baseline, it is measured from it
        if what == "growth" and _DOWN.search(left[-40:]) and n.value > 0:
            n = NumberMention(-n.value, n.kind, n.start, n.end, n.raw, n.precision)
        prev_claim = Claim(metric, what, n, period, context)
        claims.append(prev_claim)
    return claims, loose


_LABEL_LINE = re.compile(r"#{1,6}\s.*|\*\*[^*\n]+\*\*\s*:?|.*:\s*(?:\*\*)?")
"""A line that introduces the lines after it: a Markdown heading, a bold label, or a line ending with a colon."""


def _introducing_line(text: str, pos: int, *, lines: int = 12) -> str | None:
    """The line that introduces the one holding ``pos``: the nearest earlier line that is less indented (a parent
    list item) or a heading or label line, within ``lines`` lines (stripped); None when there is none."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    own = text[start : end if end != -1 else len(text)]
    indent = len(own) - len(own.lstrip())
    i = start - 1
    for _ in range(lines):
        if i <= 0:
            return None
        prev_start = text.rfind("\n", 0, i) + 1
        prev = text[prev_start:i]
        i = prev_start - 1
        body = prev.strip()
        if not body:
            continue
        if len(prev) - len(prev.lstrip()) < indent or _LABEL_LINE.fullmatch(body):
            return body
    return None


def _context_period(text: str, pos: int, horizon: int, period_word: str) -> int | None:
    """The period named by the line that introduces the one holding ``pos``; None when that line names no period
    (or there is none)."""
    line = _introducing_line(text, pos)
    return None if line is None else _period_of(line, horizon, period_word)


_PERIOD_LABEL = re.compile(
    r"\s*(?:[-*+\u2022]|\d+[.)])?\s*(?:\*\*)?\s*(?:year|yr|fy|quarter|q)\s?\d{1,2}\s*(?:\*\*)?\s*[:=\-\u2013]?\s*"
    r"(?:\*\*)?\s*",
    re.I,
)
"""A list item or line that holds only a period label before its figure: "- Year 2: ", "**Q3** - "."""


_HEADING_WORDS = frozenset(
    re.findall(
        r"\w+",
        "projected projection projections forecast forecasts forecasted expected estimated target targets total "
        "annual yearly quarterly net gross growth rate figures by per over the next three five year years quarter "
        "quarters usd eur gbp in of",
    )
)
"""Words a metric heading may hold besides the metric: "Projected revenue by year (USD)"."""


def _heading_metric(text: str, n: NumberMention) -> Metric | None:
    """The metric of a figure whose own line names only its period ("### Revenue" then "- Year 2: $2.4M"): the one
    metric its introducing line names. None when its line says more, or the introducing line names no metric or
    several ("Revenue and costs"); a percentage counts only under a growth or margin heading."""
    start = text.rfind("\n", 0, n.start) + 1
    if not _PERIOD_LABEL.fullmatch(text[start : n.start]):
        return None
    line = _introducing_line(text, n.start)
    if line is None:
        return None
    spans = [(m.start(), m.end(), metric) for pattern, metric in _METRIC_WORDS for m in pattern.finditer(line)]
    # a word inside a longer metric's words ("costs" in "fixed costs") names only the longer one
    named = {m for s, e, m in spans if not any(s2 <= s and e <= e2 and (s2, e2) != (s, e) for s2, e2, _ in spans)}
    if len(named) != 1:
        return None
    [metric] = named
    rest = line
    for s, e, _ in sorted(spans, reverse=True):
        rest = rest[:s] + " " * (e - s) + rest[e:]
    if not set(re.findall(r"[a-z]+", rest.lower())) <= _HEADING_WORDS:
        return None  # "Marketing and sales": a heading about more than the metric
    if n.kind == "percent" and metric != "margin" and not _GROWTH.search(line):
        return None
    return metric


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


def claim_values(claim: Claim, table: Projection, periods: Sequence[int] | None = None) -> list[Decimal]:
    """The table's figures ``claim`` is compared with: its metric's level, margin, share of revenue or growth rates
    (period-on-period and since the baseline) in its period, or, without one, in every period of ``periods``
    (default all)."""
    if claim.period is not None:
        periods = [claim.period]
    elif periods is None:
        periods = range(len(table.rows))
    rows = table.rows
    if claim.what == "level" and claim.metric != "margin":
        return [rows[p].value(claim.metric) for p in periods]
    if claim.what == "level":
        return [rows[p].margin for p in periods]
    if claim.what == "share":
        return [rows[p].value(claim.metric) / rows[p].revenue * HUNDRED for p in periods if rows[p].revenue]
    pairs = [(p, base) for p in periods if p > 0 for base in sorted({p - 1, 0})]
    return [g for p, base in pairs if (g := table.growth(claim.metric, p, base=base)) is not None]


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
    actual = claim_values(claim, table, periods)
    if claim.period is not None:
        periods = [claim.period]
    elif periods is None:
        periods = range(len(table.rows))
    if claim.what == "level" and claim.metric != "margin":
        ok = any(_close(n.value, a, n.precision, rel=rel, abs_pp=Decimal(0)) for a in actual)
        # a money level for "costs" may also mean variable or fixed costs when the text is loose
        if not ok and claim.metric == "total_costs":
            others = [table.rows[p].value(m) for p in periods for m in ("variable_costs", "fixed_costs", "one_off")]
            ok = any(_close(n.value, a, n.precision, rel=rel, abs_pp=Decimal(0)) for a in others if a)
        expected = ", ".join(table.money(a) for a in actual)
    elif claim.what in ("level", "share"):
        ok = any(_close(n.value, a, n.precision, rel=Decimal(0), abs_pp=pp) for a in actual)
        expected = ", ".join(f"{a}%" if claim.what == "level" else f"{round_pct(a)}% of revenue" for a in actual)
    else:
        ok = any(_close(n.value, g, n.precision, rel=Decimal(0), abs_pp=pp) for g in actual)
        if not ok and claim.metric == "margin":
            changes = [table.rows[p].margin - table.rows[0].margin for p in periods]
            ok = any(_close(n.value, d, n.precision, rel=Decimal(0), abs_pp=pp) for d in changes)
        expected = "growth " + ", ".join(f"{g:+}%" for g in sorted(set(actual))) if actual else "no growth rate"
    return ClaimVerdict(claim, ok, expected)


def check_claims(
    claims: Sequence[Claim],
    table: Projection,
    *,
    periods: Collection[int] | None = None,
    growth: bool = True,
    ignore_growth: Collection[Decimal] = (),
    rel_tol: float = 0.01,
    pp_tol: float = 0.5,
) -> tuple[list[ClaimVerdict], list[NumberMention]]:
    """The verdict on each of ``claims`` that :func:`check_numbers` checks (see its arguments), and the numbers of
    those it leaves unchecked (goals, growth when ``growth`` is off, periods outside ``periods``)."""
    allowed = None if periods is None else sorted(set(periods))
    verdicts: list[ClaimVerdict] = []
    unchecked: list[NumberMention] = []
    for c in claims:
        is_goal = c.what == "growth" and (not growth or any(c.number.value == g for g in ignore_growth))
        if is_goal or (allowed is not None and c.period is not None and c.period not in allowed):
            unchecked.append(c.number)
        else:
            verdicts.append(check_claim(c, table, periods=allowed, rel_tol=rel_tol, pp_tol=pp_tol))
    return verdicts, unchecked


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
    verdicts, unchecked = check_claims(claims, table, periods=periods, growth=growth, ignore_growth=ignore_growth,
                                       rel_tol=rel_tol, pp_tol=pp_tol)  # fmt: skip
    loose += unchecked
    return NumberCheck(tuple(verdicts), tuple(loose), len(verdicts) + len(loose), calculations)
