"""How the business plan's steps search. Every sampled step runs :class:`RefineWithFeedback` — plain best-of-N
(one batched call) with ``rounds=0``, the default — composed with the pack's parts:

- the problem's reader (:mod:`.readers`) gives each candidate its payload: the cleaned section text or the
  validated assumptions;
- :class:`SectionJudge`: the section's rubric judge on the cleaned text, asked the section's short question;
- :class:`NumberChecks`: the number verifier against the table, keeping each candidate's check for the report
  (and, when a prose section may be revised, its disagreements are the feedback);
- :class:`QualityCheck`: the text-quality checks (:mod:`.quality`: complete sentences and list items, no
  characters from scripts the request does not use, no placeholders); a candidate cut at its token limit
  ranks below a finished one;
- a selector per step that keeps the pack's order of preference (text quality first, then figures, then the
  judge, then the earliest).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from longthink.domains.business_plan.claims import NumberCheck, check_numbers
from longthink.domains.business_plan.model import Projection
from longthink.domains.business_plan.quality import TextQuality, check_text
from longthink.errors import BudgetExceeded
from longthink.rewards.base import Scorer
from longthink.rewards.judge import Judge
from longthink.rewards.verifier import Verdict, Verifier
from longthink.search.context import SearchContext
from longthink.search.feedback import RefineWithFeedback, Selector, rationales
from longthink.search.types import Candidate, Problem, Score, StepResult

REVISE = (
    "Some figures in that section disagree with the figures given above:\n{feedback}\n\n"
    "Write the section again, citing the figures above exactly."
)


def text_of(c: Candidate) -> str:
    """A section candidate's text as the pack uses it: the reader's cleaned text (else the reply)."""
    return c.payload if isinstance(c.payload, str) else c.text


@dataclass(frozen=True, slots=True)
class SectionJudge:
    """The section's rubric judge, scoring each candidate's cleaned text against ``question`` (the request and
    the section's instruction) rather than the whole writing prompt."""

    judge: Judge
    question: Problem

    @property
    def name(self) -> str:
        return self.judge.name

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return await self.judge.score(self.question, [replace(c, text=text_of(c)) for c in candidates])


@dataclass
class NumberChecks:
    """The number verifier of a section against ``table`` (``periods``, ``growth`` and ``ignore_growth`` as in
    :func:`check_numbers`); ``checks`` keeps every candidate's check, by candidate id."""

    table: Projection
    periods: Collection[int] | None = None
    growth: bool = True
    ignore_growth: Collection[Decimal] = ()
    checks: dict[str, NumberCheck] = field(default_factory=dict)

    def verdict(self, _: Problem, c: Candidate) -> Verdict:
        check = check_numbers(text_of(c), self.table, periods=self.periods, growth=self.growth,
                              ignore_growth=self.ignore_growth)  # fmt: skip
        self.checks[c.id] = check
        return Verdict(1.0 if check.consistent else 0.0, check.summary())

    def scorer(self) -> Verifier:
        return Verifier(self.verdict, name="numbers")

    def feedback(self, c: Candidate) -> str:
        check = self.checks.get(c.id)
        return "\n".join(check.problems()) if check is not None else rationales(c)


@dataclass
class QualityCheck:
    """The text-quality verifier of a step's candidates against the request's scripts; ``checks`` keeps every
    candidate's result. Value 1 for a clean, finished text, 0.5 for a clean one that was cut at its token
    limit (the reader cut it back to its last finished sentence), 0 with any problem."""

    request: str
    checks: dict[str, TextQuality] = field(default_factory=dict)

    def verdict(self, _: Problem, c: Candidate) -> Verdict:
        cut = c.finish_reason == "length"
        # a reader's text of a cut reply is already cut back to what the model finished
        quality = check_text(text_of(c), self.request, truncated=cut and not isinstance(c.payload, str))
        self.checks[c.id] = quality
        if not quality.ok:
            return Verdict(0.0, quality.summary())
        return Verdict(0.5 if cut else 1.0, "cut at the token limit; ends at its last finished sentence" if cut
                       else "no text problems")  # fmt: skip

    def scorer(self) -> Verifier:
        return Verifier(self.verdict, name="quality")


def best_of(
    n: int,
    scorer: Scorer,
    select: Selector,
    *,
    extra: tuple[Scorer, ...] = (),
    temperature: float | None = None,
    rounds: int = 0,
    feedback: Callable[[Candidate], str] | None = None,
    prefix: str = "",
) -> RefineWithFeedback:
    """The strategy of one step: ``n`` candidates in one call, scored (``extra`` first), the selector's pick
    kept; with ``rounds``, the best draft is revised with ``feedback`` until it is done; ``prefix`` starts every
    reply (the model continues it)."""
    name = "best_of_n" if rounds == 0 else "refine_feedback"
    return RefineWithFeedback(feedback, n=n, rounds=rounds, parents=1, children=n, scorer=scorer, extra=extra,
                              template=REVISE, select=select, temperature=temperature, name=name,
                              prefix=prefix)  # fmt: skip


async def run(strategy: RefineWithFeedback, problem: Problem, ctx: SearchContext) -> StepResult:
    """Run ``strategy``; a budget spent before the first candidate is the step's failure (``BudgetExceeded``)."""
    found = await strategy.solve(problem, ctx)
    if not found.candidates and found.stopped == "budget":
        raise BudgetExceeded(ctx.budget.describe())
    return found


def section_selector(numbers: NumberChecks | None) -> Selector:
    """Figures that agree with the table first (when any candidate was checked), then the rubric judge, then a
    non-empty text, then the earliest."""

    def select(cands: Sequence[Candidate]) -> Candidate | None:
        checked = numbers is not None and bool(numbers.checks)
        if not cands:
            return None
        return max(
            enumerate(cands),
            key=lambda ic: (
                ic[1].score("quality") or 0.0,
                (ic[1].score("numbers") or 0.0) if checked else 1.0,
                ic[1].score("rubric_judge") or 0.0,
                bool(text_of(ic[1]).strip()),
                -ic[0],
            ),
        )[1]

    return select


def option_selector(cands: Sequence[Candidate]) -> Candidate | None:
    """The best option with a text by quality, then the judge (the earliest among equals)."""
    usable = [i for i, c in enumerate(cands) if text_of(c).strip()]
    if not usable:
        return None
    return cands[max(usable, key=lambda i: (cands[i].score("quality") or 0.0, cands[i].score("rubric_judge") or 0.0,
                                            -i))]  # fmt: skip


def first_ranked(cands: Sequence[Candidate]) -> Candidate | None:
    """The best proposal by ``assumptions`` that gives a payload (the earliest among equals)."""
    ranked = sorted(cands, key=lambda c: -(c.score("assumptions") or 0.0))
    return next((c for c in ranked if c.payload is not None), None)


def best_valid(valid: Callable[[Candidate], bool]) -> Selector:
    """The best proposal by ``assumptions`` among the ``valid`` ones (the earliest among equals)."""

    def select(cands: Sequence[Candidate]) -> Candidate | None:
        ok = [c for c in cands if valid(c)]
        return max(ok, key=lambda c: c.score("assumptions") or 0.0) if ok else None

    return select
