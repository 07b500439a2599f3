"""LLM-as-judge: a model reads each candidate (and a rubric) and says whether it is correct, or rates it.

The verdict is read from the judge's token probabilities where the backend returns them — P(yes) for a binary
judge, the expected rating for a 1..K scale — which ranks candidates far better than the single sampled
token. Without logprobs (or when the verdict token is not among the returned alternatives) the reply text is
parsed; an unreadable reply scores 0.0 with the reply in the rationale, never an exception.

All candidates are judged in *one* batched ``generate`` call at temperature 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Literal, TypeAlias

from longthink.budget import Budget
from longthink.errors import ConfigError
from longthink.llm.base import LLM
from longthink.llm.types import Message, SamplingParams, TokenLogprob
from longthink.search.types import Candidate, Problem, Score

Scale: TypeAlias = Literal["binary"] | int

TOP_LOGPROBS = 10

DEFAULT_TEMPLATE = (
    "Evaluate a solution to a problem.\n\nProblem:\n{question}\n\nSolution:\n{solution}\n\n{rubric}{instruction}"
)
BINARY_INSTRUCTION = "Is the solution correct? Answer Yes or No."
STEP_INSTRUCTION = "The solution is not finished yet. Are the steps so far correct? Answer Yes or No."


def scale_instruction(k: int) -> str:
    return f"Rate the solution from 1 (wrong) to {k} (correct and complete). Reply with a single digit from 1 to {k}."


def step_scale_instruction(k: int) -> str:
    return (
        "The solution is not finished yet. Rate the steps so far from 1 (wrong) to "
        f"{k} (correct). Reply with a single digit from 1 to {k}."
    )


_YES = frozenset({"yes"})
_NO = frozenset({"no"})
_PUNCT = ".,:;!?*\"'`()[]<>_#"
_YES_NO_WORD = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\d.])(\d+)(?![\d.]*\d)")


def _norm(token: str) -> str:
    return token.strip().strip(_PUNCT).lower()


def _probability(logprob: float) -> float:
    """``exp(logprob)`` of a backend's logprob, read defensively: NaN counts as 0, and a positive (invalid) value as
    certainty rather than overflowing."""
    return 0.0 if math.isnan(logprob) else math.exp(min(logprob, 0.0))


def _alternatives(position: TokenLogprob) -> list[tuple[str, float]]:
    """The position's top alternatives, plus the generated token itself if the backend left it out."""
    top = list(position.top)
    if all(tok != position.token for tok, _ in top):
        top.append((position.token, position.logprob))
    return top


def yes_probability(logprobs: Sequence[TokenLogprob]) -> float | None:
    """P(yes) / (P(yes) + P(no)) at the first generated token that reads yes or no; None if there is none."""
    for position in logprobs:
        if _norm(position.token) not in _YES | _NO:
            continue
        yes = no = 0.0
        for tok, lp in _alternatives(position):
            word = _norm(tok)
            if word in _YES:
                yes += _probability(lp)
            elif word in _NO:
                no += _probability(lp)
        return yes / (yes + no) if yes + no > 0 else None
    return None


def expected_rating(logprobs: Sequence[TokenLogprob], k: int) -> float | None:
    """The expected rating over the digit tokens 1..k at the first generated token that is such a digit."""
    digits = {str(d): d for d in range(1, k + 1)}
    for position in logprobs:
        if _norm(position.token) not in digits:
            continue
        mass = weighted = 0.0
        for tok, lp in _alternatives(position):
            d = digits.get(_norm(tok))
            if d is not None:
                p = _probability(lp)
                mass += p
                weighted += d * p
        return weighted / mass if mass > 0 else None
    return None


def parse_yes_no(text: str) -> float | None:
    """1.0 / 0.0 for the first standalone yes / no in ``text``; None if there is none."""
    match = _YES_NO_WORD.search(text)
    if match is None:
        return None
    return 1.0 if match.group(1).lower() == "yes" else 0.0


def parse_rating(text: str, k: int) -> int | None:
    """The first standalone integer in ``text`` if it is a rating in 1..k; None otherwise."""
    match = _NUMBER.search(text)
    if match is None or len(match.group(1)) > 3:  # no rating has more digits (and int() refuses thousands of them)
        return None
    value = int(match.group(1))
    return value if 1 <= value <= k else None


class Judge:
    """An LLM judge of whole solutions: binary (value = P(yes)) or a 1..K rating (value = (E - 1) / (K - 1)).

    ``rubric`` is added to every judge prompt; ``template`` (fields ``{question}``, ``{solution}``, ``{rubric}``,
    ``{instruction}``) and ``instruction`` replace the default wording. With a ``budget``, every judge call is
    reserved before it is sent and settled with its tokens after; ``BudgetExceeded`` and backend errors
    propagate (they are not bad model output).
    """

    def default_instruction(self, scale: Scale) -> str:
        return BINARY_INSTRUCTION if scale == "binary" else scale_instruction(int(scale))

    def __init__(
        self,
        llm: LLM,
        *,
        rubric: str | None = None,
        name: str = "judge",
        scale: Scale = "binary",
        budget: Budget | None = None,
        max_tokens: int = 8,
        template: str | None = None,
        instruction: str | None = None,
    ) -> None:
        if scale != "binary" and (isinstance(scale, bool) or not isinstance(scale, int) or not 2 <= scale <= 9):
            raise ConfigError(f"Judge scale must be 'binary' or an integer from 2 to 9, got {scale!r}", field="scale")
        if max_tokens < 1:
            raise ConfigError(f"Judge max_tokens must be >= 1, got {max_tokens}", field="max_tokens")
        self._llm = llm
        self._rubric = rubric
        self._name = name
        self._scale = scale
        self._budget = budget
        self._max_tokens = max_tokens
        self._template = template or DEFAULT_TEMPLATE
        try:
            self._template.format(question="", solution="", rubric="", instruction="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                "Judge template may only use the fields {question}, {solution}, {rubric} and {instruction}; "
                f"formatting it failed with {type(exc).__name__}: {exc}",
                field="template",
            ) from exc
        self._instruction = instruction if instruction is not None else self.default_instruction(scale)

    @property
    def name(self) -> str:
        return self._name

    def prompt(self, problem: Problem, solution: str) -> list[Message]:
        """The judge prompt for one solution text."""
        rubric = f"Rubric:\n{self._rubric.strip()}\n\n" if self._rubric else ""
        text = self._template.format(
            question=problem.question, solution=solution, rubric=rubric, instruction=self._instruction
        )
        return [Message.user(text)]

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        verdicts = await self.judge(problem, [c.text for c in candidates])
        return [Score(self._name, value, rationale=why) for value, why in verdicts]

    async def judge(self, problem: Problem, solutions: Sequence[str]) -> list[tuple[float, str]]:
        """(value, rationale) for every solution text, from one batched judge call."""
        if not solutions:
            return []
        prompts = [self.prompt(problem, s) for s in solutions]
        params = SamplingParams(
            n=1, temperature=0.0, max_tokens=self._max_tokens, logprobs=True, top_logprobs=TOP_LOGPROBS
        )
        reservation = self._budget.reserve(len(prompts)) if self._budget is not None else None
        try:
            results = await self._llm.generate(prompts, params)
        except BaseException:
            if reservation is not None:
                reservation.settle(prompt_tokens=0, completion_tokens=0, samples=0, model=self._llm.model)
            raise
        if reservation is not None:
            reservation.settle(
                prompt_tokens=sum(r[0].prompt_tokens for r in results if r),
                completion_tokens=sum(c.completion_tokens for r in results for c in r),
                model=self._llm.model,
            )
        return [self._read(r[0].text, r[0].logprobs) for r in results]

    def _read(self, text: str, logprobs: Sequence[TokenLogprob] | None) -> tuple[float, str]:
        reply = text.strip()[:80]
        if self._scale == "binary":
            p = yes_probability(logprobs) if logprobs else None
            if p is not None:
                return p, f"P(yes)={p:.3f} from logprobs; reply {reply!r}"
            parsed = parse_yes_no(text)
            if parsed is not None:
                return parsed, f"parsed reply {reply!r}"
        else:
            k = self._scale
            e = expected_rating(logprobs, k) if logprobs else None
            if e is not None:
                return (e - 1) / (k - 1), f"expected rating {e:.2f}/{k} from logprobs; reply {reply!r}"
            rating = parse_rating(text, k)
            if rating is not None:
                return (rating - 1) / (k - 1), f"parsed rating {rating}/{k} from reply {reply!r}"
        return 0.0, f"unreadable judge reply: {reply!r}"


class ProcessJudge(Judge):
    """An LLM judge of *partial* solutions (step-level search): "are the steps so far correct?".

    By default each candidate's whole text so far is judged in one call: ``value`` is that verdict and
    ``steps = (value,)`` — the verdict on the last step already covers the steps before it, and the
    candidate's parent is not re-judged. With ``every_step=True`` the text is split on the problem's
    ``step_delimiter`` and every prefix is judged (all in the same batched call): ``steps`` holds one value per
    step, ``value`` is the last one, and :class:`~longthink.rewards.ensemble.Aggregated` can reduce them with
    min / product / mean instead.
    """

    def default_instruction(self, scale: Scale) -> str:
        return STEP_INSTRUCTION if scale == "binary" else step_scale_instruction(int(scale))

    def __init__(
        self,
        llm: LLM,
        *,
        rubric: str | None = None,
        name: str = "process_judge",
        scale: Scale = "binary",
        budget: Budget | None = None,
        max_tokens: int = 8,
        template: str | None = None,
        instruction: str | None = None,
        every_step: bool = False,
    ) -> None:
        super().__init__(
            llm,
            rubric=rubric,
            name=name,
            scale=scale,
            budget=budget,
            max_tokens=max_tokens,
            template=template,
            instruction=instruction,
        )
        self._every_step = every_step

    def _prefixes(self, problem: Problem, text: str) -> list[str]:
        if not self._every_step or not problem.step_delimiter:
            return [text]
        steps = [s for s in text.split(problem.step_delimiter) if s.strip()]
        if len(steps) <= 1:
            return [text]
        return [problem.step_delimiter.join(steps[: i + 1]) for i in range(len(steps))]

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        groups = [self._prefixes(problem, c.text) for c in candidates]
        verdicts = await self.judge(problem, [p for group in groups for p in group])
        scores: list[Score] = []
        at = 0
        for group in groups:
            mine = verdicts[at : at + len(group)]
            at += len(group)
            steps = tuple(v for v, _ in mine)
            if len(mine) == 1:
                rationale = mine[0][1]
            else:
                rationale = "; ".join(f"step {i + 1}: {why}" for i, (_, why) in enumerate(mine))
            scores.append(Score(self._name, steps[-1], steps=steps, rationale=rationale))
        return scores
