"""Reading the model's replies, once, into typed payloads (see :class:`~longthink.search.types.Reading`): a
section's cleaned text, a baseline proposal completed into validated assumptions, a strategy's assumptions.

Each reader is the ``parser`` of the problem the pack samples, so the candidates carry their payload into the
scorers, the selection and the trace, and nothing parses the reply's text again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from longthink.answers import extract_json, extract_text
from longthink.domains.business_plan.model import Assumptions
from longthink.domains.business_plan.quality import repair
from longthink.domains.business_plan.request import RequestFacts, baseline_assumptions, plan_assumptions
from longthink.search.types import Reading


def clean_section(text: str, title: str) -> str:
    """A section's text without a repeated heading, code fences or Markdown tables (the financial model's table
    is the document's only table: a model's copy of it can only add errors)."""
    lines = [ln for ln in text.strip().splitlines() if not ln.strip().startswith(("```", "|"))]
    while lines and (
        not lines[0].strip()
        or (lines[0].lstrip().startswith("#") and len(lines[0]) < 80)
        or lines[0].strip().strip("*:").lower() == title.lower()
    ):
        lines.pop(0)
    return "\n".join(lines).strip()


def option_name(line: str, limit: int = 60) -> str:
    """An option's name: its heading line without markup, cut at a word boundary."""
    name = line.strip(" *#:")
    if len(name) <= limit:
        return name
    return name[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


@dataclass(frozen=True, slots=True)
class SectionText:
    """Reads a prose reply: the answer as for any text; the payload is the section's text, cleaned
    (:func:`clean_section`) and cut back to its last finished sentence or list item when it was cut off
    (:func:`~.quality.repair`: only its end is ever removed)."""

    title: str

    def __call__(self, text: str, truncated: bool) -> Reading:
        parsed = extract_text(text, truncated=truncated)
        body = repair(clean_section(text, self.title))
        return Reading(parsed.value, parsed.error, last_sentence(body) if truncated else body)


_SENTENCE_END = re.compile(r"[.!?\u3002\uff01\uff1f][)\]\"'\u201d*]*(?=\s|$)")


_MARKER = re.compile(r"\s*(?:[-*\u2022]\s*)?(?:\d{1,3}|[A-Za-z])[.)]")
"""A list marker ("2.", "b)") at a line's start: its period ends no sentence."""


def last_sentence(text: str, min_words: int = 3) -> str:
    """``text`` cut after its last finished sentence or its last finished line, whichever comes later (a completion
    cut at its token limit: its last line is unfinished then, even a list item without a period, but a line the
    model ended is finished; a list marker's period ends no sentence), unless fewer than ``min_words`` words would
    remain."""
    ends = [m for m in _SENTENCE_END.finditer(text) if not _MARKER.fullmatch(text[text.rfind("\n", 0, m.start()) + 1 :
                                                                                     m.end()])]  # fmt: skip
    at = ends[-1].end() if ends else 0
    line = text.rstrip().rfind("\n")
    if line > at:
        at = line
    if at == 0:
        return text
    cut = repair(text[:at].rstrip())
    return cut if len(cut.split()) >= min_words else text


def quote(text: str, limit: int) -> str:
    """At most ``limit`` characters of ``text`` for a prompt, cut after a finished sentence (a prompt that quotes a
    text cut mid-word invites the model to copy the broken end)."""
    if len(text) <= limit:
        return text
    return last_sentence(text[:limit])


class Proposal(BaseModel):
    """A baseline: validated assumptions and where each figure came from (the request, the model, a default)."""

    model_config = ConfigDict(frozen=True)

    assumptions: Assumptions
    notes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BaselineReader:
    """Reads a baseline proposal (JSON) into the :class:`Proposal` it leads to, completed by the request's
    figures and stated defaults (see :func:`baseline_assumptions`). A reply without JSON still leads to a
    proposal (the defaults, noted), with no answer; an invalid result is a failed reading ("invalid: ...")."""

    facts: RequestFacts

    def __call__(self, text: str, truncated: bool) -> Reading:
        parsed = extract_json(text, truncated=truncated)
        try:
            assumptions, notes = baseline_assumptions(self.facts, text)
        except ValueError as exc:
            return Reading(None, parsed.error or f"invalid: {exc}")
        return Reading(parsed.value, parsed.error, Proposal(assumptions=assumptions, notes=tuple(notes)))


@dataclass(frozen=True, slots=True)
class ProjectionReader:
    """Reads a strategy's proposed assumptions (JSON: growth, levers, investments) on top of ``baseline`` into
    validated :class:`Assumptions` (see :func:`plan_assumptions`); an unusable one is a failed reading."""

    baseline: Assumptions

    def __call__(self, text: str, truncated: bool) -> Reading:
        parsed = extract_json(text, truncated=truncated)
        if parsed.value is None:
            return Reading(None, parsed.error)
        try:
            return Reading(parsed.value, None, plan_assumptions(self.baseline, text))
        except ValueError as exc:
            return Reading(None, f"invalid assumptions: {exc}")
