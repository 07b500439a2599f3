"""Answer extraction and normalisation per answer kind, kept apart from search strategies.

Model output is never trusted: every extractor returns :class:`Parsed` with either a normalised value or
the reason it could not find one. Normalised values compare equal when they mean the same answer, so
votes count ``$1,200.00`` and ``1200`` as one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal

from longthink.errors import ConfigError

AnswerKind = Literal["number", "choice", "code", "json", "expression", "text"]


@dataclass(frozen=True, slots=True)
class Parsed:
    """An extracted answer (``value``) or why there is none (``error``)."""

    value: str | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.value is not None


def _fail(why: str) -> Parsed:
    return Parsed(None, why)


# -- numbers ------------------------------------------------------------------------------------------
_NUM = r"[-+−]?\$?\s?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s?/\s?\d+)?%?"
_NUM_RE = re.compile(_NUM)
_MARKERS = [
    re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}"),
    re.compile(r"####\s*([^\n]+)"),
    re.compile(r"(?i)\*{0,2}(?:final\s+)?answer\*{0,2}\s*(?:is|:|=)\s*\*{0,2}([^\n]+)"),
    re.compile(r"(?i)the\s+(?:final\s+)?(?:answer|result|total)\s+(?:is|=|will be|would be)\s*:?\s*([^\n]+)"),
]


def normalize_number(raw: str) -> str | None:
    """``"$1,234.50"`` -> ``"1234.5"``, ``"3/4"`` -> ``"0.75"``, ``"12%"`` -> ``"12"``; None if not a number."""
    s = raw.strip().replace("−", "-").replace("$", "").replace(",", "").replace(" ", "").rstrip("%")
    s = s.rstrip(".")
    if not s:
        return None
    try:
        if "/" in s:
            num, den = s.split("/", 1)
            frac = Fraction(int(num), int(den))
            value = Decimal(frac.numerator) / Decimal(frac.denominator)
        else:
            value = Decimal(s)
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None
    if not value.is_finite():
        return None
    exact = Context(prec=max(28, value.adjusted() + 8))  # a 25-digit answer needs more than the default 28 digits
    value = value.quantize(Decimal("1.000000"), context=exact).normalize(exact)
    text = format(value, "f")
    return "0" if text in ("-0", "+0") else text


def extract_number(text: str, *, truncated: bool = False) -> Parsed:
    """The final numeric answer: ``\\boxed{}``, ``#### n``, ``Answer: n``, ``the answer is n``; else the last
    number of a text that finished normally. A cut-off text without a marked answer has no answer."""
    for marker in _MARKERS:
        hits = marker.findall(text)
        if hits:
            for hit in reversed(hits):
                nums = _NUM_RE.findall(hit)
                if nums:
                    value = normalize_number(nums[0])
                    if value is not None:
                        return Parsed(value)
    if truncated:
        return _fail("cut off before giving an answer")
    nums = _NUM_RE.findall(text)
    for raw in reversed(nums):
        value = normalize_number(raw)
        if value is not None:
            return Parsed(value)
    return _fail("no number found")


# -- other kinds --------------------------------------------------------------------------------------
_CHOICE_RES = [
    re.compile(r"(?i)answer\s*(?:is|:)?\s*\(?([A-J])\)?(?![A-Za-z])"),
    re.compile(r"\(([A-J])\)"),
    re.compile(r"(?m)^\s*([A-J])[\).:](?:\s|$)"),
]


def extract_choice(text: str, *, truncated: bool = False) -> Parsed:
    for pattern in _CHOICE_RES:
        hits = pattern.findall(text)
        if hits:
            return Parsed(hits[-1].upper())
    stripped = text.strip().rstrip(".")
    if len(stripped) == 1 and stripped.upper() in "ABCDEFGHIJ":
        return Parsed(stripped.upper())
    return _fail("no choice letter found")


_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|$)", re.S)


def extract_code(text: str, *, truncated: bool = False) -> Parsed:
    """The last fenced code block (preferring Python), else the whole text if it looks like code."""
    blocks = _FENCE.findall(text)
    closed = text.count("```") >= 2
    if blocks:
        python = [b for lang, b in blocks if lang.lower() in ("python", "py", "python3")]
        body = (python or [b for _, b in blocks])[-1]
        if truncated and not closed:
            return _fail("code block cut off")
        return Parsed(body.strip("\n") + "\n") if body.strip() else _fail("empty code block")
    if re.search(r"(?m)^(def |class |import |from \w+ import )", text):
        return Parsed(text.strip("\n") + "\n")
    return _fail("no code block found")


def extract_json(text: str, *, truncated: bool = False) -> Parsed:
    """The first JSON object or array in the text (fenced or bare), re-serialised canonically."""
    fenced = [b for _, b in _FENCE.findall(text)]
    decoder = json.JSONDecoder()
    for source in [*fenced, text]:
        too_deep = -1
        for start, ch in enumerate(source):
            if ch not in "{[" or start < too_deep:
                continue
            try:
                value, _ = decoder.raw_decode(source, start)
            except ValueError:
                continue
            except RecursionError:  # nested deeper than the decoder goes: so is each bracket of this run
                too_deep = len(source) - len(source[start:].lstrip("[{ \t\r\n"))
                continue
            return Parsed(json.dumps(value, sort_keys=True, separators=(",", ":")))
    return _fail("no valid JSON found")


_EXPR_RUN = re.compile(r"[\d(][\d\s+\-*/().×÷]*[\d)]")


def extract_expression(text: str, *, truncated: bool = False) -> Parsed:
    """An arithmetic expression, e.g. Game of 24's ``(4 + 8) * (6 - 4) = 24`` -> ``(4+8)*(6-4)``.

    Looks at marked answers first, then lines from the last; takes the longest run of arithmetic on the
    left of ``=`` that has at least two numbers and an operator."""
    candidates: list[str] = []
    for marker in _MARKERS:
        candidates += marker.findall(text)
    candidates += text.splitlines()[::-1]
    for line in candidates:
        lhs = line.replace("×", "*").replace("÷", "/").split("=")[0]
        runs = [r.strip() for r in _EXPR_RUN.findall(lhs)]
        runs = [r for r in runs if len(re.findall(r"\d+", r)) >= 2 and re.search(r"[+\-*/]", r)]
        if runs:
            expr = re.sub(r"\s+", "", max(runs, key=len))
            if expr.count("(") == expr.count(")"):
                return Parsed(expr)
    return _fail("no arithmetic expression found")


def extract_text(text: str, *, truncated: bool = False) -> Parsed:
    stripped = " ".join(text.split())
    return Parsed(stripped) if stripped else _fail("empty answer")


EXTRACTORS: dict[str, Callable[..., Parsed]] = {
    "number": extract_number,
    "choice": extract_choice,
    "code": extract_code,
    "json": extract_json,
    "expression": extract_expression,
    "text": extract_text,
}


def extract_answer(text: str, kind: AnswerKind | str, *, truncated: bool = False) -> Parsed:
    """Extract and normalise the answer of ``kind`` from a model's text (never raises on bad text)."""
    extractor = EXTRACTORS.get(kind)
    if extractor is None:
        raise ConfigError(f"unknown answer kind {kind!r} (known: {', '.join(EXTRACTORS)})", field="answer_kind")
    return extractor(text, truncated=truncated)
