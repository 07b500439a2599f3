"""Figures put right: a text's claims that disagree with the financial model's table are rewritten with the
table's figure, and a sentence no single table figure can put right is removed.

The number verifier (:mod:`.claims`) ranks candidates, so a section whose figures agree wins over one whose
figures do not. But with a small model every candidate of a section may cite a figure the table contradicts
("profit reaches $300,000 in year 2" where the table says $262,400), and the document would present it. Here
each such claim is corrected in place, in the number's own format ("$1.2M" stays in millions, "8%" a
percentage, "(5%)" in parentheses), with the table's figure for the claim's period; a claim without a period
takes the table figure closest to what it said (the period the writer most likely meant). A money figure that
is itself one of the table's cells is left as it is: the writer more likely quoted another line than miswrote
it, so the check's reading is the doubtful part (the document's check still counts it). Two claims cannot be
put right by a number: a change in the wrong direction ("profit falls by 5%" where it grows) and anything the
check still rejects after the rewrite; their sentences are removed. A wrong inline calculation gets its
computed result. Every change is recorded, so the document says what was corrected.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from longthink.domains.business_plan.claims import (
    NUMBER,
    SCALE_WORDS,
    NumberCheck,
    NumberMention,
    check_claims,
    check_numbers,
    claim_values,
    find_calculations,
    find_claims,
    sentence_bounds,
)
from longthink.domains.business_plan.model import MONEY_METRICS, Projection


@dataclass(frozen=True, slots=True)
class Corrected:
    """The corrected text, what was changed ("'$300,000' -> '$262,400' (profit, period 2)"), the sentences
    removed, and the corrected text's own check."""

    text: str
    changes: tuple[str, ...]
    removed: tuple[str, ...]
    check: NumberCheck

    @property
    def touched(self) -> bool:
        return bool(self.changes or self.removed)

    def describe(self) -> str:
        parts = []
        if self.changes:
            parts.append(f"{len(self.changes)} figure(s) corrected to the table: " + "; ".join(self.changes))
        if self.removed:
            parts.append(f"{len(self.removed)} sentence(s) removed: " + "; ".join(f"\u201c{s}\u201d"
                                                                                 for s in self.removed))  # fmt: skip
        return ". ".join(parts)


def _masked(text: str) -> str:
    """``text`` with its Markdown table lines blanked (same length, so offsets stay): the verifier skips them."""
    return "".join(
        re.sub(r"[^\n]", " ", line) if line.lstrip().startswith("|") else line for line in text.splitlines(True)
    )


def _in_table(value: Decimal, table: Projection) -> bool:
    """``value`` is one of the table's money cells (any line, any period)."""
    return any(value == row.value(m) for row in table.rows for m in MONEY_METRICS if row.value(m))


def _said_down(n: NumberMention) -> bool:
    """The claim's sign comes from a word ("falls by 5%"), not from the number."""
    return n.value < 0 and not re.match(r"^\(?\s*[-\u2212]", n.raw) and "(" not in n.raw


def _digits(value: Decimal, places: int) -> str:
    q = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return f"{q:,.{places}f}"


def render_like(n: NumberMention, value: Decimal) -> str | None:
    """``value`` written the way ``n`` was: its currency sign, scale word ("M", " million"), percent sign or word,
    a leading "+", accounting parentheses. Enough decimals for 1% (money) or 0.1 point (percentages); a value
    said with a direction word is written as its size. None when ``n`` cannot be read back."""
    m = NUMBER.fullmatch(n.raw)
    if m is None:
        return None
    down = _said_down(n)
    if down:
        value = -value
        if value < 0:
            return None  # "falls by" a figure that grows: no number makes that true
    negative = value < 0
    size = abs(value)
    if n.kind == "percent" or n.kind == "plain":
        places = 0 if size == size.to_integral_value() or size >= 100 else 1
        body = _digits(size, places).replace(",", "") if size < 1000 else _digits(size, places)
    else:
        scale_word = (m.group("scale") or "").lower()
        scale = SCALE_WORDS.get(scale_word, Decimal(1))
        places = len(m.group("num").split(".")[1]) if "." in m.group("num") else 0
        while places < 3 and size and Decimal(5).scaleb(-places - 1) * scale > size / 100:
            places += 1
        body = _digits(size / scale, places)
        if scale == 1 and "," not in m.group("num") and size < 10_000:
            body = body.replace(",", "")
    cur = m.group("cur") or ""
    scale_text = m.group("scale") or ""
    if scale_text and n.raw[m.end("num") : m.start("scale")] == " ":
        scale_text = " " + scale_text
    pct = m.group("pct") or ""
    paren = bool(m.group("open") and m.group("close"))
    if negative and paren:
        return f"({cur}{body}{scale_text}{pct})"
    sign = "-" if negative else "+" if m.group("sign") == "+" and not down else ""
    open_, close = m.group("open") or "", m.group("close") or ""
    if open_ and not close:
        open_ = "("
    return f"{open_}{sign}{cur}{body}{scale_text}{pct}{close}"


def _fixes(
    text: str,
    table: Projection,
    periods: Collection[int] | None,
    growth: bool,
    ignore_growth: Collection[Decimal],
    rel_tol: float,
    pp_tol: float,
) -> tuple[list[tuple[int, int, str, str]], list[tuple[int, int]]]:
    """(start, end, replacement, note) for every claim and calculation that can be put right, and the spans of
    the numbers that cannot."""
    masked = _masked(text)
    allowed = None if periods is None else sorted(set(periods))
    claims, _ = find_claims(masked, table.assumptions.periods, table.assumptions.period)
    fixes: list[tuple[int, int, str, str]] = []
    stuck: list[tuple[int, int]] = []
    for calc in find_calculations(masked):
        if calc.ok:
            continue
        new = render_like(calc.result, calc.computed)
        if new is None:
            stuck.append((calc.result.start, calc.result.end))
        else:
            fixes.append((calc.result.start, calc.result.end, new, f"{calc.result.raw!r} -> {new!r} (calculation)"))
    taken = {f[0] for f in fixes} | {s for s, _ in stuck}  # a calculation's result is put right as one
    verdicts, _ = check_claims(claims, table, periods=periods, growth=growth, ignore_growth=ignore_growth,
                               rel_tol=rel_tol, pp_tol=pp_tol)  # fmt: skip
    for v in verdicts:
        c = v.claim
        if v.ok or c.number.start in taken:
            continue
        if c.what == "level" and c.number.kind == "money" and _in_table(c.number.value, table):
            continue  # a figure the table holds for another line: more likely misread than miswritten; left as it is
        options = claim_values(c, table, allowed)
        new = None
        if options:
            said = c.number.value
            pick = min(options, key=lambda v: (abs(v - said), v))
            new = render_like(c.number, pick)
        if new is None:
            stuck.append((c.number.start, c.number.end))
            continue
        where = c.metric.replace("_", " ") + (f" {c.what}" if c.what != "level" else "")
        where += f", period {c.period}" if c.period is not None else ""
        fixes.append((c.number.start, c.number.end, new, f"{c.number.raw!r} -> {new!r} ({where})"))
    return fixes, stuck


def _apply(text: str, fixes: list[tuple[int, int, str, str]]) -> str:
    seen: set[int] = set()
    for start, end, new, _ in sorted(fixes, key=lambda f: -f[0]):
        if start in seen:
            continue
        seen.add(start)
        text = text[:start] + new + text[end:]
    return text


def _remove(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[str]]:
    """``text`` without the sentences holding ``spans``; the removed sentences (whitespace folded)."""
    masked = _masked(text)
    cuts = sorted({sentence_bounds(masked, s, e) for s, e in spans}, reverse=True)
    removed = []
    for left, right in cuts:
        removed.append(" ".join(text[left:right].split()))
        text = text[:left] + text[right:]
    lines = [ln for ln in text.splitlines() if not re.fullmatch(r"\s*(?:[-*\u2022]|\d+[.)])?\s*", ln) or not ln]
    out = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return out, removed[::-1]


def correct_numbers(
    text: str,
    table: Projection,
    *,
    periods: Collection[int] | None = None,
    growth: bool = True,
    ignore_growth: Collection[Decimal] = (),
    rel_tol: float = 0.01,
    pp_tol: float = 0.5,
) -> Corrected:
    """``text`` with every figure that disagrees with ``table`` put right (see the module docstring); the
    arguments are :func:`.claims.check_numbers`'s, and the result's ``check`` is that function's verdict on the
    corrected text."""

    def verdict(t: str) -> NumberCheck:
        return check_numbers(t, table, periods=periods, growth=growth, ignore_growth=ignore_growth,
                             rel_tol=rel_tol, pp_tol=pp_tol)  # fmt: skip

    fixes, stuck = _fixes(text, table, periods, growth, ignore_growth, rel_tol, pp_tol)
    out = text
    removed: list[str] = []
    if stuck:  # remove those sentences first (offsets of the original text), then correct what is left
        out, removed = _remove(text, stuck)
        fixes, _ = _fixes(out, table, periods, growth, ignore_growth, rel_tol, pp_tol)
    out = _apply(out, fixes)
    changes = [f[3] for f in sorted(fixes)]
    for _ in range(2):  # whatever the check still rejects (a rewrite read differently) goes
        if verdict(out).consistent:
            break
        left, still = _fixes(out, table, periods, growth, ignore_growth, rel_tol, pp_tol)
        spans = still + [(s, e) for s, e, _, _ in left]
        if not spans:
            break
        out, gone = _remove(out, spans)
        removed += gone
    return Corrected(out, tuple(changes), tuple(removed), verdict(out))
