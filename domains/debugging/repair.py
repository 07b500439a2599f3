"""Patch search rewarded by executed tests: best-of-N sampled fixes, then iterative repair.

The reward (:class:`TestScorer`) applies each candidate patch to the file and runs the tests in the sandbox:
its value is the share of tests that pass; a reply without code, a patch that does not parse or that breaks the
file scores 0 with the reason (a failed candidate, recorded in the trace like every other).

:func:`search_patch` samples ``n`` fixes in one batched call; while none passes every test it runs repair rounds:
the best ``parents`` drafts are each shown their own test output, and ``children`` revisions of each are sampled
(a tree: every child records its parent). The best-scored candidate over all rounds wins.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from longthink.answers import Parsed, extract_code
from longthink.domains.debugging.source import DebugInput, apply_patch, function_source
from longthink.errors import BudgetExceeded
from longthink.llm.types import Message
from longthink.search.base import best_scored
from longthink.search.context import Branch, SearchContext
from longthink.search.types import Candidate, Problem, Score
from longthink.tools.sandbox import Sandbox, TestReport, run_tests

SYSTEM = "You are an expert Python programmer. You fix bugs with small, correct changes."
MAX_FILE_LINES = 80
"""Files up to this size are shown whole in the patch prompt; longer ones show the suspect functions only."""


def patch_prompt(inp: DebugInput, suspects: Sequence[str], failure: str, spec: str = "") -> tuple[Message, ...]:
    """The prompt for a fix: the code (whole when short), ``spec`` (what the code should do, when known apart
    from the code), what fails, and the format of the reply (the fixed function(s), whole, in one fenced
    block)."""
    names = [s for s in suspects if function_source(inp.source, s) is not None] or inp.functions()[:1]
    if len(inp.source.splitlines()) <= MAX_FILE_LINES:
        shown = inp.source
    else:
        shown = "\n\n".join(function_source(inp.source, n) or "" for n in names)
    target = ", ".join(f"`{n}`" for n in names)
    parts = [f"This Python code has a bug.\n\n```python\n{shown.rstrip()}\n```"]
    if inp.description:
        parts.append(f"The user says: {inp.description}")
    if spec:
        parts.append(spec)
    if failure.strip():
        parts.append(f"Running the tests gives:\n```\n{failure.strip()}\n```")
    parts.append(
        f"The bug is probably in {target}. Write the corrected {target} in full (you may leave out the docstring) "
        "in one ```python code block. Keep the same name and signature. Do not write tests, examples or "
        "explanations."
    )
    return (Message.system(SYSTEM), Message.user("\n\n".join(parts)))


def revision_prompt(base: Problem, parent: Candidate, feedback: str) -> Problem:
    """A child of ``parent``: the same request, the parent's reply, and the parent's own test output."""
    ask = Message.user(
        f"That fix is not right yet. The tests now give:\n```\n{feedback.strip()}\n```\n"
        "Write the corrected code again, in full, in one ```python code block."
    )
    text = parent.text if parent.text.count("```") % 2 == 0 else parent.text.rstrip() + "\n```"
    return replace(base, prompt=(*base.prompt, Message.assistant(text), ask))


def reply_code(cand: Candidate) -> Parsed:
    """The code of a reply that began inside a ```python block (the prefix); a model that opened a second block
    right away is forgiven."""
    text = re.sub(r"^```python\n\s*```[\w]*\n", "```python\n", cand.text)
    return extract_code(text, truncated=cand.finish_reason == "length")


@dataclass
class TestScorer:
    """Reward = share of the tests that pass with the candidate's patch applied (run in the sandbox).

    Keeps each candidate's :class:`TestReport` (``reports``, by candidate id) so the search can show a child
    its parent's test output and the pack can report the chosen patch's results without running them again."""

    __test__ = False  # not a pytest class

    inp: DebugInput
    sandbox: Sandbox
    expected: int = 0
    name: str = "tests"
    reports: dict[str, TestReport] = field(default_factory=dict)
    patched: dict[str, str] = field(default_factory=dict)

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return list(await asyncio.gather(*(self._one(c) for c in candidates)))

    async def _one(self, cand: Candidate) -> Score:
        code = reply_code(cand)
        if code.value is None:
            return Score(self.name, 0.0, rationale=f"failed candidate: {code.error or 'no code'}")
        patched = apply_patch(self.inp.source, code.value)
        if patched.source is None:
            return Score(self.name, 0.0, rationale=f"failed candidate: {patched.error}")
        self.patched[cand.id] = patched.source
        report = await run_tests(self.sandbox, patched.source, self.inp.tests, module=self.inp.module,
                                 expected=self.expected)  # fmt: skip
        self.reports[cand.id] = report
        note = "" if patched.source != self.inp.source else " (the patch changes nothing)"
        return Score(self.name, report.pass_rate, rationale=report.summary(600) + note)


@dataclass(frozen=True, slots=True)
class RepairSettings:
    """``n`` first drafts; then up to ``rounds`` repair rounds of ``children`` revisions of each of the best
    ``parents`` drafts so far (only while no candidate passes every test)."""

    n: int = 6
    rounds: int = 2
    parents: int = 2
    children: int = 2
    max_tokens: int = 320
    prefix: str = "```python\n"
    """Every reply starts inside a code block (the prompt ends with this much of the assistant's reply): a small
    model otherwise spends its tokens on a preamble before the code."""
    stop: tuple[str, ...] = ("\n```", "\nif __name__", "\n# Test", "\n# Example", "\nprint(", "\nassert ")
    """Sampling stops at the end of the code block or at top-level test code after the function (function
    bodies are indented, so these never cut one)."""


@dataclass(frozen=True, slots=True)
class RepairResult:
    candidates: tuple[Candidate, ...]
    chosen: Candidate | None
    rounds: int
    stopped: str | None


async def search_patch(problem: Problem, ctx: SearchContext, scorer: TestScorer, s: RepairSettings) -> RepairResult:
    """Best-of-N then iterative repair (see the module docstring); stops early when a patch passes every test
    or the budget is spent (what was scored so far is kept)."""
    everything: list[Candidate] = []
    stopped: str | None = None
    rounds = 0

    def solved() -> bool:
        return any((c.score(scorer.name) or 0.0) >= 1.0 and scorer.reports[c.id].all_passed
                   for c in everything if c.id in scorer.reports)  # fmt: skip

    fit = ctx.budget.fit_n(s.n, s.max_tokens)
    if fit == 0:
        return RepairResult((), None, 0, "budget")
    try:
        [first] = await ctx.sample(problem, fit, branches=[Branch(s.prefix)], max_tokens=s.max_tokens, stop=s.stop,
                                   strategy="patch")  # fmt: skip
    except BudgetExceeded:
        return RepairResult((), None, 0, "budget")
    everything.extend(await ctx.score(problem, first, scorer))
    for round_ in range(1, s.rounds + 1):
        if solved():
            break
        ranked = sorted((c for c in everything if c.id in scorer.reports),
                        key=lambda c: -(c.score(scorer.name) or 0.0))[: s.parents]  # fmt: skip
        if not ranked:  # nothing ran: revise the first drafts' replies as they are
            ranked = everything[: s.parents]
        children: list[Candidate] = []
        for parent in ranked:
            fit = ctx.budget.fit_n(s.children, s.max_tokens)
            if fit == 0:
                stopped = "budget"
                break
            feedback = (
                scorer.reports[parent.id].summary(900)
                if parent.id in scorer.reports
                else next((sc.rationale for sc in parent.scores if sc.scorer == scorer.name), "")
            )
            child_problem = revision_prompt(problem, parent, feedback)
            try:
                [row] = await ctx.sample(child_problem, fit, branches=[Branch(s.prefix, parent=parent)],
                                         max_tokens=s.max_tokens, stop=s.stop, strategy=f"repair{round_}.")  # fmt: skip
            except BudgetExceeded:
                stopped = "budget"
                break
            children.extend(row)
        if children:
            rounds = round_
            everything.extend(await ctx.score(problem, children, scorer))
        if stopped:
            break
    return RepairResult(tuple(everything), choose(everything, scorer), rounds, stopped)


def choose(candidates: Sequence[Candidate], scorer: TestScorer) -> Candidate | None:
    """The candidate with the highest test reward; among equals, the smallest change to the file (a minimal
    fix is easier to review and less likely to break what the tests do not cover), then the earliest."""
    ran = [c for c in candidates if c.id in scorer.patched]
    if not ran:
        return best_scored(candidates, scorer.name)
    original = scorer.inp.source.splitlines()

    def changed(c: Candidate) -> int:
        patched = scorer.patched[c.id].splitlines()
        return sum(1 for line in difflib.ndiff(original, patched) if line[:1] in "+-")

    return min(ran, key=lambda c: (-(c.score(scorer.name) or 0.0), changed(c), candidates.index(c)))
