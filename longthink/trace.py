"""The nouns of a search's trace: a Problem to solve, the Candidates sampled for it, their Scores, the StepResult
(outside the search package, so the event schema can name them without importing the strategies)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from longthink.answers import AnswerKind
from longthink.budget import Spend
from longthink.llm.types import FinishReason, Message
from longthink.program import AnswerMode, Execution, program_question


@dataclass(frozen=True, slots=True)
class Reading:
    """What a problem's :data:`Parser` reads out of one reply: the ``answer`` (or None, with ``error`` saying
    why) and a typed ``payload`` (a patch, validated assumptions, a routing problem...). A payload may come with
    no answer when the reading is still usable (defaults filled in for a reply without JSON, say)."""

    answer: str | None
    error: str | None = None
    payload: Any = None


Parser = Callable[[str, bool], Reading]
"""Reads a reply: ``parser(text, truncated) -> Reading`` (``truncated``: the reply was cut at its token limit).
It never raises on bad text: a reply it cannot read is a :class:`Reading` with the error."""


@dataclass(frozen=True, slots=True)
class Problem:
    """What one search solves: the prompt, the kind of answer to extract, and how solutions are formatted.

    ``step_delimiter`` splits a solution into steps for step-level search (beam, tree). ``reference`` is a
    known answer for benchmarks; strategies never look at it. ``mode``: ``"text"`` reads the answer (of
    ``answer_kind``) out of the reply; ``"program"`` runs the Python program in the reply in the sandbox and
    reads the answer out of what it prints (see :mod:`longthink.program`). ``parser``, when set, reads each
    finished reply instead of the answer kind's extractor: the answer and a typed payload, once, when the
    candidate is made (see :class:`Reading`), so no scorer or step parses the text again.
    """

    id: str
    prompt: tuple[Message, ...]
    answer_kind: AnswerKind = "text"
    step_delimiter: str = "\n\n"
    max_tokens: int = 512
    reference: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    mode: AnswerMode = "text"
    parser: Parser | None = None

    @staticmethod
    def from_text(
        problem_id: str,
        question: str,
        *,
        answer_kind: AnswerKind = "text",
        system: str | None = None,
        mode: AnswerMode = "text",
        **kwargs: Any,
    ) -> Problem:
        """A problem from a question; in program mode the question gets the program instruction appended."""
        text = program_question(question, answer_kind) if mode == "program" else question
        messages = ((Message.system(system),) if system else ()) + (Message.user(text),)
        return Problem(problem_id, messages, answer_kind, mode=mode, **kwargs)

    @property
    def question(self) -> str:
        """The last user message (what the problem asks)."""
        return next((m.content for m in reversed(self.prompt) if m.role == "user"), "")


@dataclass(frozen=True, slots=True)
class Score:
    """A scorer's verdict on a candidate: ``value`` (higher is better; in [0, 1] for probabilities or a
    negative cost), optional per-step values, and a rationale."""

    scorer: str
    value: float
    steps: tuple[float, ...] = ()
    rationale: str = ""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One sampled solution, addressable and replayable (see STYLE.md practice 5).

    ``text`` is the whole solution (for tree/beam nodes: the partial solution so far); ``answer`` is the
    extracted, normalised answer or None with ``parse_error`` saying why. In program mode the answer is what
    the program printed and ``execution`` says how the run went (a crash or time-out is the parse error).
    ``payload`` is what the problem's parser read out of the reply (a patch, validated assumptions...), typed;
    None when the problem has no parser or the reply could not be read (``parse_error`` says why).
    """

    id: str
    problem_id: str
    index: int
    text: str
    answer: str | None
    parse_error: str | None
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    model: str
    prompt_hash: str
    seed: int | None = None
    parent_id: str | None = None
    depth: int = 0
    mean_logprob: float | None = None
    partial: bool = False  # a step-search node that stopped at a step boundary
    scores: tuple[Score, ...] = ()
    execution: Execution | None = None
    payload: Any = None

    @property
    def finished(self) -> bool:
        """True when the model ended the solution (not cut at a step boundary or the token limit)."""
        return self.finish_reason == "stop" and not self.partial

    def score(self, scorer: str | None = None) -> float | None:
        """The value given by ``scorer`` (or the last score if None)."""
        if not self.scores:
            return None
        if scorer is None:
            return self.scores[-1].value
        return next((s.value for s in reversed(self.scores) if s.scorer == scorer), None)

    def with_scores(self, *scores: Score) -> Candidate:
        return replace(self, scores=self.scores + tuple(scores))


@dataclass(frozen=True, slots=True)
class StepResult:
    """The outcome of a strategy on one problem: every candidate, the chosen one, why, and the spend."""

    problem_id: str
    strategy: str
    candidates: tuple[Candidate, ...]
    chosen: Candidate | None
    answer: str | None
    reason: str
    spend: Spend
    votes: Mapping[str, float] = field(default_factory=dict)
    stopped: str | None = None  # why sampling stopped early: "decided", "budget", ...
    rounds: int = 0  # revision rounds an iterative strategy ran (refine_feedback)

    @property
    def failed(self) -> bool:
        return self.answer is None


def prompt_hash(prompt: Sequence[Message] | str, extra: Mapping[str, Any] | None = None) -> str:
    """A stable hash of a prompt (and sampling parameters), for caching and replay."""
    if isinstance(prompt, str):
        payload: Any = prompt
    else:
        payload = [[m.role, m.content] for m in prompt]
    blob = json.dumps([payload, dict(extra or {})], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
