"""What a request asks for: a number (a quantity worked out from the figures it states) or a text.

A request asks for a number when it states figures and its question asks for a quantity: "how many / much / long /
far ...", "by how much", "what percentage", "what is / was / will be (the / my / our ...) <a quantity noun>", or an
instruction to calculate, compute, work out, figure out, determine, find or estimate one. A question that asks for
a plan, an explanation, a list, a comparison or advice is a text, whatever figures the request states. The answer
kind decides how the run's steps and its final answer are read (a number is extracted and checked; a text is kept
as written)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from longthink.answers import normalize_number

if TYPE_CHECKING:
    from longthink.planners.plan import Plan

QUANTITY_NOUNS = (
    "amount", "area", "average", "balance", "bill", "budget", "change", "charge", "commission", "cost", "costs",
    "count", "deposit", "difference", "discount", "distance", "duration", "earnings", "fare", "fee", "fees", "gain",
    "height", "income", "interest", "length", "loss", "margin", "mean", "mileage", "number", "pay", "payment",
    "payroll", "percent", "percentage", "price", "profit", "quantity", "rate", "ratio", "refund", "rent", "return",
    "revenue", "salary", "sales", "savings", "share", "speed", "spend", "sum", "tax", "time", "tip", "total",
    "turnover", "value", "volume", "wage", "wages", "weight", "width", "worth", "yield",
)  # fmt: skip
_NOUN = "|".join(sorted(QUANTITY_NOUNS, key=len, reverse=True))
_HOW = r"how\s+(?:many|much|long|far|old|fast|often|big|heavy|tall|high|deep|wide|large|small)\b"
_WHAT = r"what(?:'s|\s+(?:is|was|are|were|will|would|should|does|do|did|must|can|could))?\b"
_ASKS = re.compile(
    rf"(?i)\b(?:{_HOW}|by\s+how\s+much|what\s+(?:percentage|percent|fraction|share|proportion)\b"
    rf"|{_WHAT}\s*[-+(]?[$€£]?\d|(?:calculate|compute|work\s+out|evaluate)\s+[^.?!\n]{{0,20}}?\d"
    rf"|{_WHAT}[^.?!\n]{{0,60}}?\b(?:{_NOUN})\b"
    rf"|(?:calculate|compute|work\s+out|figure\s+out|determine|find|estimate|tell\s+me)\b[^.?!\n]{{0,60}}?\b(?:{_NOUN})\b)"
)
_TEXT = re.compile(
    r"(?i)\b(?:plan|strategy|strategies|explain|why|describe|write|draft|list|compare|recommend|advise|advice"
    r"|suggest|ideas?|pros\s+and\s+cons|steps\s+to|how\s+(?:do|can|should|could|would)\s+(?:i|we|you))\b"
)
_SENTENCE = re.compile(r"[^.?!\n]*(?:[.?!]|$)")
_QUANTITY = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?|(?<![\w.,])\d+(?:\.\d+)?")
COMMON_CONSTANTS = frozenset({"0", "1", "2", "7", "10", "12", "24", "52", "60", "100", "365", "1000", "3600"})
"""Numbers a plan may use that a request rarely states: halves, percent, units of time and of measure."""


def quantities(text: str) -> set[str]:
    """The numbers written in ``text``, normalised ("1,200.50" and "1200.5" are one)."""
    found = (normalize_number(raw) for raw in _QUANTITY.findall(text))
    return {q for q in found if q is not None}


def questions_of(request: str) -> list[str]:
    """The sentences of ``request`` that ask something: those ending with "?", else the last sentence."""
    sentences = [s.strip() for s in _SENTENCE.findall(request) if s.strip()]
    asked = [s for s in sentences if s.endswith("?")]
    return asked or sentences[-1:]


def asks_for_quantity(goal: str) -> bool:
    """True when a plan step's ``goal`` asks for a quantity ("Calculate the total cost", "How many hours ..."),
    whether or not it states figures (a step's figures are in the request); never for a plan, a list, advice."""
    return bool(_ASKS.search(goal)) and not _TEXT.search(goal)


def asks_for_number(request: str) -> bool:
    """True when ``request`` states figures and its question asks for a quantity (see the module)."""
    if not any(ch.isdigit() for ch in request):
        return False
    asked = questions_of(request)
    if any(_TEXT.search(q) for q in asked):
        return False
    return any(_ASKS.search(q) for q in asked) or bool(_ASKS.search(request) and not _TEXT.search(request))


def numeric_steps(plan: Plan, request: str) -> Plan:
    """In a request that asks for a number, the steps whose goal asks for a quantity ("Calculate the total cost")
    answer with a number (and so run in program mode on a coder model), whatever answer kind the planner wrote."""
    if not asks_for_number(request):
        return plan
    steps = [
        s.model_copy(update={"answer_kind": "number"})
        if s.answer_kind == "text" and not s.tool and asks_for_quantity(s.goal)
        else s
        for s in plan.steps
    ]
    return plan.model_copy(update={"steps": steps})


__all__ = [
    "COMMON_CONSTANTS",
    "QUANTITY_NOUNS",
    "asks_for_number",
    "asks_for_quantity",
    "numeric_steps",
    "quantities",
    "questions_of",
]
