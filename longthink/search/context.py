"""What a strategy works with: the LLM, the scorers, the budget and the event sink — and the one place where
candidates are generated (charged to the budget, parsed, emitted) and scored.

Strategies never call the LLM directly: :meth:`SearchContext.sample` takes a batch of prompts and ``n``, makes
*one* batched call, and turns every completion into a :class:`Candidate` with its answer extracted (a parse
failure is recorded on the candidate, never raised).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from longthink.answers import extract_answer
from longthink.budget import Budget, Spend
from longthink.errors import BudgetExceeded, ConfigError
from longthink.events import BudgetUpdate, CandidateGenerated, CandidateScored, Event, EventBus
from longthink.llm.base import LLM
from longthink.llm.types import Completion, Message, SamplingParams
from longthink.program import ProgramRunner, default_runner, parse_run, program_of, runnable
from longthink.rewards.base import Scorer
from longthink.search.types import Candidate, Problem, Reading, Score, prompt_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Branch:
    """A prompt to sample from: the problem's prompt, optionally continuing a partial solution ``prefix``
    (the chat prompt then ends with an assistant message, which backends continue)."""

    prefix: str = ""
    parent: Candidate | None = None


@dataclass
class SearchContext:
    """Dependencies of a search, injected (never global). Scoped copies via :meth:`with_budget`.

    ``llm`` is the policy model; ``judge_llm`` a separate reward/judge model (see :attr:`judge_model`), e.g. a
    larger model that checks a small one's candidates. ``runner`` executes program-mode candidates (default:
    the process's sandbox runner)."""

    llm: LLM
    budget: Budget = field(default_factory=Budget)
    scorer: Scorer | None = None
    process_scorer: Scorer | None = None
    events: EventBus | None = None
    judge_llm: LLM | None = None
    runner: ProgramRunner | None = None
    temperature: float = 0.7
    top_p: float = 1.0
    seed: int | None = None
    logprobs: bool = True
    step_id: str | None = None
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def with_budget(self, budget: Budget) -> SearchContext:
        return replace(self, budget=budget)

    @property
    def judge_model(self) -> LLM:
        """The model that judges candidates: the separate judge model when one is set, else the policy model."""
        return self.judge_llm or self.llm

    def emit(self, event: Event) -> None:
        """Send ``event`` to the run's stream, tagged with this context's step id (when it has none)."""
        if self.events is not None:
            self.events.emit(event, step_id=self.step_id)

    # -- generation -----------------------------------------------------------------------------------------
    def _prompt(self, problem: Problem, branch: Branch) -> tuple[Message, ...]:
        if not branch.prefix:
            return problem.prompt
        return (*problem.prompt, Message.assistant(branch.prefix))

    async def sample(
        self,
        problem: Problem | Sequence[Problem],
        n: int,
        *,
        branches: Sequence[Branch] = (Branch(),),
        max_tokens: int | None = None,
        stop: Sequence[str] = (),
        strategy: str = "",
        partial_on_stop: bool = False,
        temperature: float | None = None,
    ) -> list[list[Candidate]]:
        """``n`` candidates for each prompt, in one batched call charged to the budget; a row per prompt.

        The prompts are ``problem`` continued by each of ``branches`` (a row per branch), or — different prompts
        batched in one call — several problems, a row per problem, each continued by its branch (``branches``
        holds one branch per problem, or one for all). The sampling parameters are shared: ``max_tokens``
        defaults to the largest of the problems'. Each candidate is read by its own problem (answer kind, parser,
        mode) and recorded under that problem's id.

        Raises ``BudgetExceeded`` when the budget cannot admit the request (strategies catch it and stop).
        With ``partial_on_stop``, a completion that ended on one of ``stop`` (a step delimiter, as reported by
        the backend in ``Completion.stop_sequence``) is a partial node whose text is the prefix, the new step
        and the delimiter; one that ended otherwise is a finished solution.
        """
        if n < 1:
            raise ConfigError(f"n must be >= 1, got {n}", field="n")
        if isinstance(problem, Problem):
            rows = [(problem, b) for b in branches]
        elif len(branches) in (1, len(problem)):
            rows = list(zip(problem, list(branches) * len(problem) if len(branches) == 1 else branches, strict=True))
        else:
            raise ConfigError(f"{len(problem)} problems need one branch or one each, got {len(branches)}",
                              field="branches")  # fmt: skip
        if not rows:
            raise ConfigError("nothing to sample: no problem or no branch", field="problem")
        limit = max_tokens or max(p.max_tokens for p, _ in rows)
        reservation = self.budget.reserve(n * len(rows))
        call = next(self._counter)
        seed = None if self.seed is None else self.seed * 100_003 + call
        params = SamplingParams(
            n=n,
            temperature=self.temperature if temperature is None else temperature,
            top_p=self.top_p,
            max_tokens=limit,
            stop=tuple(stop),
            seed=seed,
            logprobs=self.logprobs,
        )
        prompts = [self._prompt(p, b) for p, b in rows]
        try:
            results = await self.llm.generate(prompts, params)
        except BaseException:
            reservation.settle(prompt_tokens=0, completion_tokens=0, samples=0, model=self.llm.model)
            raise
        reservation.settle(
            prompt_tokens=sum(r[0].prompt_tokens for r in results if r),
            completion_tokens=sum(c.completion_tokens for r in results for c in r),
            model=self.llm.model,
        )
        out: list[list[Candidate]] = []
        for b, ((prob, branch), prompt, comps) in enumerate(zip(rows, prompts, results, strict=True)):
            phash = prompt_hash(prompt, {"t": params.temperature, "max": limit, "stop": list(stop)})
            tags = [f"{strategy}{call}.{b}.{c.index}" for c in comps]
            row = [
                self._candidate(prob, branch, c, phash, seed, tag, stop, partial_on_stop)
                for c, tag in zip(comps, tags, strict=True)
            ]
            out.append(row)
        groups: dict[int, list[int]] = {}  # program mode: each problem's rows run in one batch
        for r, (prob, _) in enumerate(rows):
            if prob.mode == "program":
                groups.setdefault(id(prob), []).append(r)
        for idx in groups.values():
            ran = await self._execute(rows[idx[0]][0], [out[r] for r in idx])
            for r, row in zip(idx, ran, strict=True):
                out[r] = row
        for (prob, _), row in zip(rows, out, strict=True):
            for cand in row:
                self.emit(CandidateGenerated(problem_id=prob.id, candidate=cand))
        self._emit_budget()
        return out

    def _emit_budget(self) -> None:
        """The run budget's state (the root of this context's budget) as a ``budget`` event."""
        root = self.budget
        while root.parent is not None:
            root = root.parent
        self.emit(BudgetUpdate(spend=root.spent.copy(), cap_tokens=root.tokens, exhausted=root.exhausted))

    def _candidate(
        self,
        problem: Problem,
        branch: Branch,
        c: Completion,
        phash: str,
        seed: int | None,
        tag: str,
        stop: Sequence[str],
        partial_on_stop: bool,
    ) -> Candidate:
        parent = branch.parent
        # A step ended on a delimiter (not EOS, not the limit): the solution goes on from prefix + step.
        partial = partial_on_stop and c.stop_sequence is not None
        text = branch.prefix + c.text + (c.stop_sequence or "" if partial else "")
        truncated = c.finish_reason == "length"
        if partial:
            read = Reading(None, "partial solution")
        elif problem.parser is not None:
            try:
                read = problem.parser(text, truncated)
            except Exception as exc:  # a parser's bug must not lose the sample: the candidate is a failed one
                log.warning("parser of %s failed on a candidate", problem.id, exc_info=True)
                read = Reading(None, f"the parser failed: {type(exc).__name__}: {exc}"[:500])
        else:
            parsed = extract_answer(text, problem.answer_kind, truncated=truncated)
            read = Reading(parsed.value, parsed.error)
        return Candidate(
            id=f"{problem.id}/{tag}",
            problem_id=problem.id,
            index=c.index,
            text=text,
            answer=read.answer,
            parse_error=read.error,
            finish_reason=c.finish_reason,
            prompt_tokens=c.prompt_tokens,
            completion_tokens=c.completion_tokens + (parent.completion_tokens if parent else 0),
            latency_s=c.latency_s,
            model=c.model or self.llm.model,
            prompt_hash=phash,
            seed=seed,
            parent_id=parent.id if parent else None,
            depth=(parent.depth + 1) if parent else 0,
            mean_logprob=c.mean_logprob,
            partial=partial,
            payload=read.payload,
        )

    async def _execute(self, problem: Problem, rows: list[list[Candidate]]) -> list[list[Candidate]]:
        """Program mode: run every finished candidate's program (all of the batch concurrently, in the sandbox);
        the answer is what it printed, a crash / time-out / silence is the candidate's parse error."""
        todo: list[tuple[int, int, str]] = []
        for r, row in enumerate(rows):
            for i, cand in enumerate(row):
                if cand.partial:
                    continue
                code = program_of(cand.text, truncated=cand.finish_reason == "length")
                if code.value is None:
                    rows[r][i] = replace(cand, answer=None, parse_error=f"no program: {code.error}")
                else:
                    todo.append((r, i, runnable(code.value)))
        if not todo:
            return rows
        runs = await (self.runner or default_runner()).run_many([code for _, _, code in todo])
        for (r, i, _), run in zip(todo, runs, strict=True):
            cand = rows[r][i]
            if run.ok:
                parsed = parse_run(run.output, problem.answer_kind)
                rows[r][i] = replace(cand, answer=parsed.value, parse_error=parsed.error, execution=run)
            else:
                rows[r][i] = replace(cand, answer=None, parse_error=run.error, execution=run)
        return rows

    # -- scoring --------------------------------------------------------------------------------------------
    async def score(
        self, problem: Problem, candidates: Sequence[Candidate], scorer: Scorer | None = None
    ) -> list[Candidate]:
        """Attach ``scorer``'s (default: the context's) scores to the candidates and emit them."""
        scorer = scorer or self.scorer
        if scorer is None or not candidates:
            return list(candidates)
        requests_before = self.budget.spent.requests
        try:
            scores = await scorer.score(problem, candidates)
        except BudgetExceeded as exc:
            # A reward model (a judge) the budget cannot pay for leaves the candidates unscored: selection falls
            # back to its tie-breaking (answer present, self-certainty), and the step keeps what it sampled.
            log.warning("%s: candidates not scored by %s: %s", problem.id, scorer.name, exc)
            return list(candidates)
        if len(scores) != len(candidates):
            raise ConfigError(f"scorer {scorer.name!r} returned {len(scores)} scores for {len(candidates)} candidates")
        if self.budget.spent.requests != requests_before:  # a judge model spent: the run's record says so
            self._emit_budget()
        scored = [c.with_scores(s) for c, s in zip(candidates, scores, strict=True)]
        for c, s in zip(scored, scores, strict=True):
            self.emit(CandidateScored(problem_id=problem.id, candidate_id=c.id, scorer=s.scorer, value=s.value,
                                      steps=list(s.steps), rationale=s.rationale))  # fmt: skip
        return scored

    def spend_since(self, before: Spend) -> Spend:
        now = self.budget.spent
        return Spend(
            now.prompt_tokens - before.prompt_tokens,
            now.completion_tokens - before.completion_tokens,
            now.samples - before.samples,
            now.requests - before.requests,
            now.cost - before.cost,
        )


__all__ = ["Branch", "Score", "SearchContext"]
