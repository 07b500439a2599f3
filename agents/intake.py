"""What a request asks for: a number (a quantity worked out from the figures it states) or a text.

A request asks for a number when it states figures and its question asks for a quantity: "how many / much / long /
far ...", "by how much", "what percentage", "what is / was / will be (the / my / our ...) <a quantity noun>", or an
instruction to calculate, compute, work out, figure out, determine, find or estimate one. A question that asks for
a plan, an explanation, a list, a comparison or advice is a text, whatever figures the request states. The answer
kind decides how the run's steps and its final answer are read (a number is extracted and checked; a text is kept
as written)."""

from __future__ import annotations

import re

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


def questions_of(request: str) -> list[str]:
    """The sentences of ``request`` that ask something: those ending with "?", else the last sentence."""
    sentences = [s.strip() for s in _SENTENCE.findall(request) if s.strip()]
    asked = [s for s in sentences if s.endswith("?")]
    return asked or sentences[-1:]


def asks_for_number(request: str) -> bool:
    """True when ``request`` states figures and its question asks for a quantity (see the module)."""
    if not any(ch.isdigit() for ch in request):
        return False
    asked = questions_of(request)
    if any(_TEXT.search(q) for q in asked):
        return False
    return any(_ASKS.search(q) for q in asked) or bool(_ASKS.search(request) and not _TEXT.search(request))


__all__ = ["QUANTITY_NOUNS", "asks_for_number", "questions_of"]
