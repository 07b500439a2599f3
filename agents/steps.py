"""Executing one plan step, whatever runs it: a search strategy (the model, under the step's budget share), a tool,
or a domain pack's step. Each ends in one typed :class:`~longthink.outcome.StepOutcome`, sent as ``step_finished``
and written to the graph state with what the step spent. Also the search context every node builds (seed, scorers,
budget) and the choice of strategy and answer mode."""

from __future__ import annotations

import inspect
import json
import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from langgraph.runtime import Runtime

from longthink.agents.deps import AgentDeps
from longthink.agents.state import StepTask
from longthink.answers import extract_code
from longthink.budget import Budget, Spend
from longthink.domains.pipeline import DomainPipeline, StepContext, StepOutput
from longthink.errors import BudgetExceeded
from longthink.events import ChatMessage, StepFinished, StepStarted, ToolCalled, Verification
from longthink.intake import quantities
from longthink.llm.types import Message
from longthink.outcome import StepOutcome, outcomes
from longthink.planners.plan import PlanStep
from longthink.program import AnswerMode, computes, program_instruction
from longthink.rewards.base import Scorer
from longthink.rewards.ensemble import Ensemble
from longthink.rewards.judge import Judge, ProcessJudge
from longthink.rewards.self_certainty import SelfCertainty
from longthink.search.context import SearchContext
from longthink.search.registry import make_strategy
from longthink.search.types import Problem, StepResult
from longthink.tools.base import call_tool

STEP_SYSTEM = "You are solving one step of a larger task. Be concrete and concise."
NUMBER_FORMAT = "Work it out step by step, then end with 'Answer: <number>'."
TEXT_FORMAT = "Give the result of this step directly."


def step_seed(deps: AgentDeps, *parts: str) -> int | None:
    if deps.options.seed is None:
        return None
    return deps.options.seed * 7919 + zlib.crc32("/".join(parts).encode()) % 1_000_003


def _scorers(deps: AgentDeps, budget: Budget, pack: tuple[Scorer, ...] = ()) -> tuple[Scorer, Scorer]:
    """(outcome scorer, process scorer) of a search: the injected scorer; else the domain pack's scorers; else, with
    a separate judge model, its binary judge (value P(yes); a process judge for partial solutions) charged to
    ``budget``; else self-certainty (free: read from the policy model's own logprobs)."""
    if deps.scorer is not None:
        return deps.scorer, deps.scorer
    if pack:  # a domain pack without its own plan scores the general plan's steps with its verifiers
        scorer = pack[0] if len(pack) == 1 else Ensemble([(s, 1.0) for s in pack])
        return scorer, scorer
    if deps.judge_llm is not None:
        return Judge(deps.judge_llm, budget=budget), ProcessJudge(deps.judge_llm, budget=budget)
    certainty = SelfCertainty()
    return certainty, certainty


def search_context(
    deps: AgentDeps, state_run: str, step_id: str, budget: Any = None, domain: str | None = None
) -> SearchContext:
    """The search context of one step (or planning): its budget, scorers, seed and the run's event bus."""
    budget = budget or deps.budget
    scorer, process_scorer = _scorers(deps, budget, deps.pack_scorers(domain))
    return SearchContext(
        llm=deps.llm,
        budget=budget,
        scorer=scorer,
        process_scorer=process_scorer,
        events=deps.events,
        judge_llm=deps.judge_llm,
        temperature=deps.options.temperature,
        seed=step_seed(deps, state_run, step_id),
        step_id=step_id,
    )


# -- one step ----------------------------------------------------------------------------------------------------
def choose_strategy(step: PlanStep, deps: AgentDeps) -> Any:
    """The user's fixed strategy, else the planner's suggestion, else by difficulty and answer kind (in program mode
    at least three programs, so that their agreement can verify the answer)."""
    opts = deps.options
    if opts.strategy != "auto":
        return make_strategy(opts.strategy, **dict(opts.strategy_options))
    program = answer_mode(step, deps) == "program"  # (only numeric steps run in program mode)
    if step.strategy and not (program and step.strategy.strip().lower() == "cot"):
        try:
            return make_strategy(step.strategy)
        except Exception:  # noqa: BLE001 - a bad suggestion from the model falls back to the default choice
            pass
    if step.answer_kind in ("number", "choice", "expression"):
        if step.difficulty < 0.3:
            # programs are short and their agreement is the step's check: never a single one
            return make_strategy("self_consistency", n=3) if program else make_strategy("cot")
        if step.difficulty < 0.7:
            return make_strategy("self_consistency", n=3)
        return make_strategy("adaptive", max_samples=8, batch=4)
    if step.difficulty < 0.3:
        return make_strategy("cot")
    return make_strategy("best_of_n", n=3)


def answer_mode(step: PlanStep, deps: AgentDeps) -> AnswerMode:
    """Program mode for numeric steps when asked, or by default on a coder model (it writes programs far more
    reliably than it does arithmetic in prose); text otherwise."""
    if step.answer_kind != "number":
        return "text"
    mode = deps.options.answer_mode
    if mode == "auto":
        return "program" if "coder" in deps.llm.model.lower() else "text"
    return "program" if mode == "program" else "text"


def _step_prompt(task: StepTask, step: PlanStep, mode: AnswerMode = "text") -> tuple[Message, ...]:
    lines = [f"Overall request: {task['request']}"]
    if task["inputs"]:
        lines.append("Results of earlier steps:")
        lines += [f"- {sid}: {value}" for sid, value in task["inputs"].items()]
    lines.append(f"Your step: {step.goal}")
    if step.success_check:
        lines.append(f"It is done when: {step.success_check}")
    if mode == "program":
        lines.append(program_instruction(step.answer_kind))
    else:
        lines.append(NUMBER_FORMAT if step.answer_kind == "number" else TEXT_FORMAT)
    return (Message.system(STEP_SYSTEM), Message.user("\n".join(lines)))


@dataclass(frozen=True, slots=True)
class Check:
    """A step's verdict: ``verified`` when a check that could have failed the answer passed it; ``unchecked`` when
    the answer stands with no such check (it is reported ``unverified``, not re-planned); neither: it failed."""

    verified: bool
    reason: str
    unchecked: bool = False


def same_figure(a: str | None, b: str | None) -> bool:
    """``a`` and ``b`` are the same answer: equal, or one is the other rounded to cents or finer ("99.07" and
    "99.068629": one program rounded its result, the other printed it whole) and they differ by under 0.5%."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    try:
        x, y = Decimal(a), Decimal(b)
    except InvalidOperation:
        return False
    if not (x.is_finite() and y.is_finite()):
        return False
    short, long_ = sorted((x, y), key=lambda d: -int(d.as_tuple().exponent))
    places = -int(short.as_tuple().exponent)
    if places < 2 or places >= -int(long_.as_tuple().exponent):
        return False
    rounded = long_.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return rounded == short and abs(x - y) <= abs(short) * Decimal("0.005")


def agreement(res: StepResult, request: str = "") -> Check:
    """Execution agreement of program mode: at least two programs that ran printed the chosen answer, and they are
    more than half of those that ran (the same value from independent programs is evidence; one program, or
    programs that disagree, are not). Only programs that compute count (:func:`~longthink.program.computes`), or
    that print a figure the ``request`` states: three programs that print a number they were written with agree
    on a guess. A figure and its rounding to cents agree (:func:`same_figure`)."""
    ran = [c for c in res.candidates if c.execution is not None and c.execution.ok and c.answer is not None]
    stated = quantities(request)
    evidence = [c.answer for c in ran if computes(extract_code(c.text).value or "") or c.answer in stated]
    same = sum(same_figure(a, res.answer) for a in evidence)
    if same >= 2 and 2 * same > len(evidence):
        return Check(True, f"execution agreement: {same} of {len(evidence)} programs printed {res.answer}")
    if ran and not evidence:
        why = "unverified: the programs print a number they were written with (none computes it; the request does not)"
        return Check(False, why, unchecked=True)
    if len(evidence) <= 1:
        return Check(False, "unverified: one program ran, with nothing to agree with", unchecked=True)
    why = f"unverified: the programs disagree ({same} of {len(evidence)} printed {res.answer})"
    return Check(False, why, unchecked=True)


async def _verify(
    deps: AgentDeps,
    step: PlanStep,
    problem: Problem,
    res: StepResult,
    scorer: Scorer | None,
    mode: AnswerMode,
    request: str = "",
) -> Check:
    """Whether the step's answer passed a check that could have failed it. An injected verifier decides; a score
    from a real check (an injected scorer, a domain pack's verifiers, a judge model; the chosen candidate is scored
    now when its strategy did not score it) below the threshold fails the step (it is re-planned); program mode is
    verified by execution agreement; self-certainty alone (the policy model's own confidence) never verifies: the
    answer stands ``unchecked``."""
    if res.answer is None:
        return Check(False, res.reason)
    if deps.verifier is not None:
        verdict = deps.verifier(step, res)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        passed, why = verdict
        return Check(bool(passed), why)
    own_confidence = scorer is None or isinstance(scorer, SelfCertainty)
    name = scorer.name if scorer is not None else "no scorer"
    value = res.chosen.score(scorer.name) if res.chosen and scorer is not None else None
    if value is None and res.chosen is not None and scorer is not None and not own_confidence:
        try:
            [given] = await scorer.score(problem, [res.chosen])
            value = given.value
        except BudgetExceeded as exc:
            return Check(False, f"unverified: no budget left to check the answer ({exc})", unchecked=True)
    threshold = deps.options.verify_threshold
    if isinstance(scorer, Judge):
        threshold = max(threshold, 0.5)  # the judge's P(yes): below even odds it said no
    if value is not None and not own_confidence and value < threshold:
        return Check(False, f"best candidate scored {value:.3f} < threshold {threshold} ({name})")
    if mode == "program":
        agreed = agreement(res, request)
        if agreed.verified or own_confidence or value is None:
            return agreed
    if value is not None and not own_confidence:
        return Check(True, f"{name} scored {value:.3f} >= {threshold}")
    return Check(False, f"unverified: no check could fail the answer ({name} alone)", unchecked=True)


async def execute_step(state: StepTask, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """One plan step, whatever runs it (a tool, a domain pack, a search strategy): its typed outcome goes to the
    state and to a ``step_finished`` event; what it spent goes to the state's ``spend``."""
    task = state
    deps = runtime.context
    step = PlanStep.model_validate(task["step"])
    remaining = deps.budget.remaining_tokens()
    share = None if remaining is None else max(1, remaining // (max(1, task["steps_left"]) + 1))
    budget = deps.budget.child(tokens=share, name=f"step {step.id}")
    pipeline = deps.pipeline(task.get("domain"))
    if step.tool:
        outcome = await _tool_step(deps, step, task.get("domain"))
    elif pipeline is not None:
        outcome = await _domain_step(deps, pipeline, task, step, budget)
    else:
        outcome = await _search_step(deps, task, step, budget)
    outcome = outcome.model_copy(update={"spend": Spend.of(budget.spent)}) if not step.tool else outcome
    deps.events.emit(StepFinished(step_id=step.id, outcome=outcome))
    return {"results": {step.id: outcome.model_dump(mode="json")}, "spend": deps.state_spend(budget)}


async def _search_step(deps: AgentDeps, task: StepTask, step: PlanStep, budget: Budget) -> StepOutcome:
    strategy = choose_strategy(step, deps)
    mode = answer_mode(step, deps)
    problem = Problem(
        f"{task['run_id']}:{step.id}",
        _step_prompt(task, step, mode),
        step.answer_kind,
        max_tokens=deps.options.step_max_tokens,
        mode=mode,
    )
    deps.events.emit(
        StepStarted(
            step_id=step.id,
            goal=step.goal,
            step_kind=step.kind,
            strategy=strategy.name,
            answer_mode=mode,
            depends_on=list(step.depends_on),
            inputs=dict(task["inputs"]),
            budget_tokens=budget.tokens,
            problem_id=problem.id,
            prompt=messages_of(problem.prompt),
        )
    )
    ctx = search_context(deps, task["run_id"], step.id, budget, task.get("domain"))
    try:
        res = await strategy.solve(problem, ctx)
    except BudgetExceeded as exc:
        deps.events.emit(Verification(step_id=step.id, passed=False, reason=str(exc)))
        return outcome_of(step, None, False, str(exc), strategy.name)
    check = await _verify(deps, step, problem, res, ctx.scorer, mode, task["request"])
    deps.events.emit(Verification(step_id=step.id, passed=check.verified, unchecked=check.unchecked,
                                  reason=check.reason, answer=res.answer))  # fmt: skip
    outcome = outcome_of(step, res, check.verified, check.reason, strategy.name)
    return outcome.model_copy(update={"unchecked": check.unchecked}) if check.unchecked else outcome


def messages_of(prompt: tuple[Message, ...]) -> list[ChatMessage]:
    return [ChatMessage(role=m.role, content=m.content) for m in prompt]


async def _domain_step(
    deps: AgentDeps, pipeline: DomainPipeline, task: StepTask, step: PlanStep, budget: Budget
) -> StepOutcome:
    """One step of a domain pack's plan: the pack runs it; errors are a failed step, never a crashed run."""
    bus = deps.events
    bus.emit(StepStarted(step_id=step.id, goal=step.goal, step_kind=step.kind, strategy=f"domain:{step.kind}",
                         depends_on=list(step.depends_on), inputs=dict(task["inputs"]),
                         budget_tokens=budget.tokens))  # fmt: skip
    ctx = StepContext(
        request=task["request"],
        run_id=task["run_id"],
        step=step,
        inputs=outcomes(task.get("dep_results")),
        search=search_context(deps, task["run_id"], step.id, budget),
        tools=deps.tools_for(task.get("domain")),
        artifacts_dir=deps.artifacts_dir(task["run_id"]),
        seed=step_seed(deps, task["run_id"], step.id),
    )
    try:
        out = await pipeline.run_step(ctx)
    except BudgetExceeded as exc:
        out = StepOutput(None, verified=False, reason=f"budget spent: {exc}")
    except Exception as exc:  # noqa: BLE001 - a pack's failure (bad model output, solver error) fails the step
        out = StepOutput(None, verified=False, reason=f"{type(exc).__name__}: {exc}")
    bus.emit(Verification(step_id=step.id, passed=out.verified, reason=out.reason, answer=out.answer,
                          artifacts=list(out.artifacts)))  # fmt: skip
    return out.outcome(step.id, step.goal)


async def _tool_step(deps: AgentDeps, step: PlanStep, domain: str | None) -> StepOutcome:
    bus = deps.events
    name = f"tool:{step.tool}"
    bus.emit(StepStarted(step_id=step.id, goal=step.goal, step_kind=step.kind, strategy=name,
                         depends_on=list(step.depends_on)))  # fmt: skip
    try:
        tool = deps.tools_for(domain).get(step.tool or "")
    except Exception as exc:  # noqa: BLE001 - an unknown tool in a model's plan is a failed step, not a crash
        bus.emit(Verification(step_id=step.id, passed=False, reason=str(exc)))
        return outcome_of(step, None, False, str(exc), name).model_copy(update={"kind": "tool"})
    result = await call_tool(tool, step.tool_args)
    bus.emit(
        ToolCalled(
            step_id=step.id,
            call_id=f"{bus.run_id}:{step.id}:{tool.name}",
            tool=tool.name,
            args=json.loads(json.dumps(dict(result.arguments), default=str)),
            ok=result.ok,
            result=json.loads(json.dumps(result.output, default=str)),
            error=result.error,
            latency_s=result.latency_s,
        )
    )
    reason = result.error or "tool succeeded"
    bus.emit(Verification(step_id=step.id, passed=result.ok, reason=reason))
    return StepOutcome(
        step_id=step.id,
        goal=step.goal,
        kind="tool",
        strategy=f"tool:{tool.name}",
        answer=str(result.output) if result.ok and result.output is not None else None,
        text="" if result.output is None else str(result.output),
        verified=result.ok,
        reason=reason,
        stopped=None if result.ok else "error",
    )


def outcome_of(step: PlanStep, res: StepResult | None, verified: bool, reason: str, strategy: str) -> StepOutcome:
    return StepOutcome(
        step_id=step.id,
        goal=step.goal,
        strategy=strategy,
        answer=res.answer if res else None,
        text=res.chosen.text if res and res.chosen else "",
        verified=verified,
        reason=reason,
        candidates=len(res.candidates) if res else 0,
        chosen=res.chosen.id if res and res.chosen else None,
        votes={str(k): float(v) for k, v in res.votes.items()} if res else {},
        spend=Spend.of(res.spend) if res else Spend(),
        stopped=res.stopped if res else "error",
    )
