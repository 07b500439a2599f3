"""The nodes of the deliberate agent graph: intake, the facts a request lacks (clarify), planning and approval, the
fan-out of steps (each step runs in :mod:`longthink.agents.steps`), verification, re-planning and synthesis.
Dependencies come from LangGraph's runtime context (AgentDeps); state holds only JSON-able values so every
checkpointer can persist it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Send, interrupt
from pydantic import ValidationError

from longthink.agents.deps import AgentDeps
from longthink.agents.state import AgentState, StepTask
from longthink.agents.steps import (
    NUMBER_FORMAT,
    Check,
    agreement,
    answer_mode,
    messages_of,
    outcome_of,
    search_context,
)
from longthink.answers import extract_number
from longthink.budget import Budget, Spend
from longthink.domains.pipeline import add_facts, questions_of
from longthink.errors import BudgetExceeded
from longthink.events import (
    Answer,
    PlanSelected,
    Question,
    Replan,
    RunStarted,
    StepFinished,
    StepStarted,
    Verification,
)
from longthink.intake import asks_for_number
from longthink.llm.types import Message
from longthink.outcome import Status, StepOutcome, outcomes
from longthink.planners.plan import Plan, PlanStep, single_step_plan
from longthink.planners.planner import PlanChoice
from longthink.program import program_instruction
from longthink.search.registry import make_strategy
from longthink.search.types import Problem, StepResult


# -- intake and planning ----------------------------------------------------------------------------------
async def intake(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    deps = runtime.context
    request = state["request"]
    kind = "number" if asks_for_number(request) else "text"
    domain = deps.domains.resolve(deps.options.domain, request)
    chosen = deps.options.domain is not None and deps.options.domain.strip().lower() != "auto"
    # a question that asks for a number is answered with one: a pack that answers otherwise (a document, routes)
    # takes it only when its detector is certain (an explicit "business plan", "vehicle routing" ...)
    if (domain != "general" and not chosen and kind == "number" and deps.domains.get(domain).answer_kind != "number"
            and deps.domains.scores(request).get(domain, 0.0) < 1.0):  # fmt: skip
        domain = "general"
    if domain != "general":
        kind = deps.domains.get(domain).answer_kind
    deps.events.emit(RunStarted(request=request, answer_kind=kind, domain=domain, options=_options(deps)))
    return {
        "domain": domain,
        "answer_kind": kind,
        "replans": 0,
        "status": "running",
        "ask_missing": deps.options.ask_missing,
        "approve_plan": deps.options.approve_plan,
    }


async def clarify(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Before planning, the facts the request lacks: the domain pipeline's questions (none for a pack without
    ``questions`` or a request that states its facts). With ``ask_missing`` the run stops for a person (a LangGraph
    interrupt, checkpointed like plan approval: a resumed run is not asked again), who answers
    (``{"action": "answer", "answers": {question id: text}}``) or takes the defaults (``{"action": "defaults"}``);
    without it the defaults are used at once. Answers are added to the request as facts, defaults as assumptions
    (:func:`~longthink.domains.pipeline.add_facts`); an answer the pack still cannot read is asked again."""
    if state.get("clarified") or state.get("plan"):
        return {}
    deps = runtime.context
    pipeline = deps.pipeline(state.get("domain"))
    request = state["request"]
    asked = questions_of(pipeline, request)
    if not asked:
        return {"clarified": True, "clarify_error": None}
    if not state.get("ask_missing", deps.options.ask_missing):  # the run's choice: an agent that resumes it keeps it
        return {"request": _assume(request, asked), "clarified": True, "clarify_error": None}
    # The caller (the API) announces the questions with a ``clarification_requested`` event when the run stops here.
    reply = interrupt({"kind": "clarification", "request": request, "questions": [q.model_dump() for q in asked],
                       "error": state.get("clarify_error")})  # fmt: skip
    answers = reply.get("answers") if isinstance(reply, Mapping) and reply.get("action") == "answer" else None
    given = {
        q.id: " ".join(str(answers[q.id]).split())
        for q in asked
        if isinstance(answers, Mapping) and q.id in answers and str(answers[q.id] or "").strip()
    }
    request = add_facts(request, {q.label: given[q.id] for q in asked if q.id in given})
    still = questions_of(pipeline, request)
    unread = [q for q in still if q.id in given]
    if unread:  # answered, yet the pack cannot read it: ask again (the answers it could read are kept)
        why = "; ".join(f"no figure could be read from the answer to {q.label!r}: {given[q.id]!r}" for q in unread)
        return {"request": request, "clarify_error": why}
    return {"request": _assume(request, still), "clarified": True, "clarify_error": None}


def _assume(request: str, questions: list[Question]) -> str:
    """``request`` with the defaults of ``questions`` added, labelled as assumptions (nobody stated them)."""
    return add_facts(request, {q.label: q.default for q in questions}, assumed=True)


def route_after_clarify(state: AgentState) -> str:
    """Ask again (an answer that could not be read) or plan."""
    return "clarify" if state.get("clarify_error") and not state.get("clarified") else "plan"


async def plan(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    if state.get("plan"):  # resumed after planning: keep the plan
        return {}
    deps = runtime.context
    pipeline = deps.pipeline(state.get("domain"))
    if pipeline is not None:  # the domain pack's own typed plan
        plan_ = pipeline.plan(state["request"])
        deps.events.emit(PlanSelected(plan_id="plan/domain", plan=plan_.model_dump(), index=None,
                                      reason=f"the {state['domain']} pack's plan"))  # fmt: skip
        return {"plan": plan_.model_dump(), "status": "planned"}
    budget = _plan_budget(deps, "plan")
    choice = await _propose(deps, state["request"], state["run_id"], "plan", budget, state.get("domain"))
    plan_ = choice.plan
    if choice.chosen_index is None:  # the one-step fallback answers the request itself: use its answer kind
        step = plan_.steps[0].model_copy(update={"answer_kind": state.get("answer_kind", "text")})
        plan_ = plan_.model_copy(update={"steps": [step]})
    return {"plan": plan_.model_dump(), "status": "planned", "spend": deps.state_spend(budget)}


async def _propose(
    deps: AgentDeps, request: str, run_id: str, name: str, budget: Budget, domain: str | None
) -> PlanChoice:
    """The planner's plan for ``request`` under ``budget``; without budget to plan, the request as one step.
    Planning is recorded as a step of its own (``name``: plan, plan-feedback1, ...)."""
    deps.events.emit(StepStarted(step_id=name, goal="plan the request", step_kind="plan", strategy="planner",
                                 budget_tokens=budget.tokens))  # fmt: skip
    try:
        choice = await deps.get_planner(domain, budget).propose(request, search_context(deps, run_id, name, budget))
    except BudgetExceeded as exc:  # no budget to plan: the request is solved as one step with what is left
        plan_ = single_step_plan(request)
        deps.events.emit(PlanSelected(plan_id=f"{name}/fallback", plan=plan_.model_dump(), index=None,
                                      reason=f"not planned ({exc}); solving the request as one step"))  # fmt: skip
        choice = PlanChoice(plan_, (), (), None, str(exc))
    _planned(deps, name, choice, budget)
    return choice


def _planned(deps: AgentDeps, name: str, choice: PlanChoice, budget: Budget) -> None:
    """The planning step's outcome: the plan chosen (verified when the planner read one from the model)."""
    outcome = StepOutcome(
        step_id=name,
        goal="plan the request",
        kind="plan",
        strategy="planner",
        answer=f"{len(choice.plan.steps)} step(s)",
        text=choice.plan.model_dump_json(),
        verified=choice.chosen_index is not None,
        reason=choice.reason,
        candidates=len(choice.candidates),
        chosen=choice.candidates[choice.chosen_index].id if choice.chosen_index is not None else None,
        spend=Spend.of(budget.spent),
    )
    deps.events.emit(StepFinished(step_id=name, outcome=outcome))


def _plan_budget(deps: AgentDeps, name: str) -> Budget:
    """Planning's share of what is left of the run budget, so the steps always keep the rest."""
    remaining = deps.budget.remaining_tokens()
    share = None if remaining is None else max(1, int(remaining * deps.options.plan_budget_share))
    return deps.budget.child(tokens=share, name=name)


async def approve(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Optional human approval (a LangGraph interrupt): approve, edit (a new plan) or reject (with feedback)."""
    deps = runtime.context
    # the run's choice: an agent that resumes it (``runs resume``, default options) keeps asking for approval
    if not state.get("approve_plan", deps.options.approve_plan) or state.get("status") == "approved":
        return {"status": "approved"}
    error = state.get("justification") if state.get("status") == "edit_invalid" else None
    # The caller (the API) announces the question with an ``approval_requested`` event when the run stops here.
    decision = interrupt({"kind": "plan_approval", "request": state["request"], "plan": state["plan"], "error": error})
    action = str((decision or {}).get("action", "approve")) if isinstance(decision, dict) else str(decision)
    if action == "approve":
        deps.events.emit(PlanSelected(plan_id="plan/approved", plan=state["plan"], reason="approved by the user"))
        return {"status": "approved"}
    if action == "edit":
        try:
            edited = Plan.model_validate(decision.get("plan"))
        except ValidationError as exc:
            why = "; ".join(e["msg"] for e in exc.errors())  # asked again: approval_requested carries it
            return {"status": "edit_invalid", "justification": why}
        deps.events.emit(PlanSelected(plan_id="plan/edited", plan=edited.model_dump(), reason="edited by the user"))
        return {"plan": edited.model_dump(), "status": "approved"}
    feedback = str(decision.get("feedback", "")) if isinstance(decision, dict) else ""
    if feedback:  # re-plan with the user's feedback (under planning's budget share), then ask again
        attempt = state.get("replans", 0) + 1
        deps.events.emit(Replan(reason=f"plan rejected: {feedback}", attempt=attempt))
        budget = _plan_budget(deps, f"plan feedback {attempt}")
        choice = await _propose(deps, f"{state['request']}\n(Planning feedback: {feedback})", state["run_id"],
                                f"plan-feedback{attempt}", budget, state.get("domain"))  # fmt: skip
        return {
            "plan": choice.plan.model_dump(),
            "status": "planned",
            "spend": deps.state_spend(budget),
            "replans": attempt,
        }
    why = "the plan was rejected"
    deps.events.emit(Answer(status="rejected", answer=None, justification=why, spend=_total(deps)))
    return {"status": "rejected", "answer": None, "justification": why}


def _total(deps: AgentDeps) -> Spend:
    return Spend.of(deps.budget.spent)


# -- executing steps --------------------------------------------------------------------------------------
def _finished(state: AgentState, plan_: Plan) -> set[str]:
    results = outcomes(state.get("results"))
    return {s.id for s in plan_.steps if s.id in results and results[s.id].settled}


def route_after_approve(state: AgentState) -> list[Send] | str:
    """After the approval node: ask again (a re-planned or refused plan), stop (rejected), or run the steps. The
    steps never start before the plan is approved."""
    if state.get("status") in ("planned", "edit_invalid"):
        return "approve"
    return route_steps(state)


def route_steps(state: AgentState) -> list[Send] | str:
    """Fan out every step whose dependencies are done (they run concurrently), or go to synthesis."""
    if state.get("status") == "rejected":
        return "end"
    plan_ = Plan.model_validate(state["plan"])
    done = _finished(state, plan_)
    results = outcomes(state.get("results"))
    pending = [s for s in plan_.ready(done) if s.id not in results]
    if not pending:
        return "synthesize"
    left = len(plan_.steps) - len(done)
    return [
        Send(
            "execute_step",
            StepTask(
                request=state["request"],
                run_id=state["run_id"],
                step=s.model_dump(),
                inputs={d: str(results[d].answer or results[d].text) for d in s.depends_on},
                steps_left=left,
                dep_results={d: results[d].model_dump(mode="json") for d in s.depends_on},
                domain=state.get("domain", "general"),
            ),
        )
        for s in pending
    ]


# -- verification, replanning, synthesis ------------------------------------------------------------------
def _unsettled(state: AgentState, plan_: Plan) -> list[PlanStep]:
    results = outcomes(state.get("results"))
    return [s for s in plan_.steps if s.id in results and not results[s.id].settled]


async def verify(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Fan-in after a layer of steps: failed steps are re-planned (bounded) or accepted as failed."""
    deps = runtime.context
    plan_ = Plan.model_validate(state["plan"])
    results = outcomes(state.get("results"))
    failed = _unsettled(state, plan_)
    # A domain plan is not re-planned by the model: its pack already searched and verified inside the step.
    if failed and (state.get("replans", 0) >= deps.options.max_replans or deps.pipeline(state.get("domain"))):
        accepted = {s.id: results[s.id].accept().model_dump(mode="json") for s in failed}
        return {"results": accepted, "failures": [{"step": s.id, "reason": results[s.id].reason} for s in failed]}
    return {}


def route_after_verify(state: AgentState) -> list[Send] | str:
    if _unsettled(state, Plan.model_validate(state["plan"])):
        return "replan"
    return route_steps(state)


async def replan(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    deps = runtime.context
    plan_ = Plan.model_validate(state["plan"])
    results = outcomes(state.get("results"))
    unsettled = _unsettled(state, plan_)
    failed = unsettled[0]
    reason = results[failed.id].reason
    finished = {s.id: str(results[s.id].answer) for s in plan_.steps if s.id in _finished(state, plan_)}
    attempt = state.get("replans", 0) + 1
    deps.events.emit(Replan(step_id=failed.id, reason=reason, attempt=attempt))
    budget = _plan_budget(deps, f"replan {attempt}")
    name = f"replan{attempt}"
    deps.events.emit(StepStarted(step_id=name, goal=f"re-plan after {failed.id} failed", step_kind="plan",
                                 strategy="planner", budget_tokens=budget.tokens))  # fmt: skip
    try:
        choice = await deps.get_planner(state.get("domain"), budget).replan(
            state["request"],
            plan_,
            finished,
            failed,
            reason,
            search_context(deps, state["run_id"], f"replan{attempt}", budget),
            attempt=attempt,
        )
    except BudgetExceeded as exc:  # no budget to replan: the failed steps are accepted as failed and the run goes on
        accepted = {s.id: results[s.id].accept().model_dump(mode="json") for s in unsettled}
        failures = [{"step": s.id, "reason": f"{results[s.id].reason}; not replanned: {exc}"} for s in unsettled]
        why = f"not replanned: {exc}"
        deps.events.emit(StepFinished(step_id=name, outcome=StepOutcome(step_id=name, kind="plan", reason=why)))
        return {"results": accepted, "replans": attempt, "failures": failures, "spend": deps.state_spend(budget)}
    _planned(deps, name, choice, budget)
    return {
        "plan": choice.plan.model_dump(),
        "replans": attempt,
        "failures": [{"step": failed.id, "reason": reason}],
        "spend": deps.state_spend(budget),
    }


def _run_status(
    answer: str | None, state: AgentState, plan_: Plan, results: dict[str, StepOutcome], combined: Check | None
) -> tuple[Status, str]:
    """The run's status and why: failed (no answer), partial (a step failed), ``unverified`` (the answer stands,
    but a step's answer passed no check that could have failed it, or the final number is none of the verified
    steps' results and its combination was not verified either) or done (every step verified, and the answer is
    what they verified or what the programs that combined them agreed on). ``combined``: the check of the step
    that combined the results (None when the answer is a step's own). Every step must pass: counting the answer
    as checked when only the step it matches was (other steps unchecked) reported 4 of 20 wrong answers of the
    agent benchmark ``done``, against 1 of 20 this way."""
    if answer is None:
        return "failed", "no answer"
    if state.get("failures"):
        return "partial", "a step failed: " + "; ".join(f"{f['step']}: {f['reason']}" for f in state["failures"])
    ran = [results[s.id] for s in plan_.steps if s.id in results]
    unchecked = [r for r in ran if not r.verified]
    if unchecked:
        return "unverified", "; ".join(f"{r.step_id}: {r.reason}" for r in unchecked)
    if combined is not None and state.get("answer_kind") == "number":
        final = extract_number(answer).value
        own = final is not None and any(extract_number(r.answer).value == final for r in ran if r.answer is not None)
        if not own and not combined.verified:
            return (
                "unverified",
                f"the combined answer {answer} is none of the verified steps' results ({combined.reason})",
            )
    return "done", "every step passed its check"


async def synthesize(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    deps = runtime.context
    plan_ = Plan.model_validate(state["plan"])
    results = outcomes(state.get("results"))
    justification = "\n".join(_justify(s, results.get(s.id)) for s in plan_.steps)
    kind = state.get("answer_kind", "text")
    answer: str | None
    budget = deps.budget.child(name="answer")
    pipeline = deps.pipeline(state.get("domain"))
    combined: Check | None = None
    if pipeline is not None:
        answer, justification = pipeline.synthesize(state["request"], plan_, results)
    elif len(plan_.steps) == 1 and plan_.steps[0].id in results:
        only = results[plan_.steps[0].id]
        answer = only.answer if kind == "number" else (only.text or only.answer)
    else:
        answer, note, combined = await _combine(deps, state, plan_, results, budget)
        justification += note
    status, reason = _run_status(answer, state, plan_, results, combined)
    if status == "unverified":
        justification += f"\nUnverified: {reason}"
    deps.events.emit(Answer(status=status, answer=answer, justification=justification, spend=_total(deps),
                            reason=reason))  # fmt: skip
    return {"answer": answer, "justification": justification, "status": status, "status_reason": reason,
            "spend": deps.state_spend(budget)}  # fmt: skip


async def _combine(
    deps: AgentDeps, state: AgentState, plan_: Plan, results: dict[str, StepOutcome], budget: Budget
) -> tuple[str | None, str, Check]:
    """The answer combined from the steps' results by the model (an ``answer`` step of its own), with its check; a
    number in program mode (as the steps: a coder model by default) is computed by programs that see the request
    and the steps' results, and verified when they agree. Without budget for it, the last step's result (and a
    note saying so)."""
    kind = state.get("answer_kind", "text")
    goal = "combine the step results into the answer"
    mode = answer_mode(PlanStep(id="answer", goal=goal, answer_kind=kind), deps)
    lines = [f"- {s.id} ({s.goal}): {_shown(s, results.get(s.id))}" for s in plan_.steps]
    if mode == "program":
        fmt = ("Compute the answer to the request from its own figures; the steps' results may help, but check "
               f"them against the request. {program_instruction(kind)}")  # fmt: skip
    else:
        fmt = NUMBER_FORMAT if kind == "number" else "Write the final answer to the request, using these results."
    prompt = (
        Message.system("You combine the results of a plan into the final answer."),
        Message.user(f"Request: {state['request']}\nResults of the plan's steps:\n" + "\n".join(lines) + f"\n{fmt}"),
    )
    problem = Problem(f"{state['run_id']}:answer", prompt, kind, max_tokens=deps.options.answer_max_tokens,  # type: ignore[arg-type]
                      mode=mode)  # fmt: skip
    strategy = make_strategy("self_consistency", n=3) if kind == "number" else make_strategy("cot")
    deps.events.emit(StepStarted(step_id="answer", goal=goal, step_kind="answer", strategy=strategy.name,
                                 answer_mode=mode, problem_id=problem.id, prompt=messages_of(prompt)))  # fmt: skip
    note = ""
    res: StepResult | None = None
    try:
        res = await strategy.solve(problem, search_context(deps, state["run_id"], "answer", budget))
        answer = res.answer if kind == "number" else (res.chosen.text if res.chosen else None)
        if res.chosen is None and res.stopped == "budget":
            raise BudgetExceeded(res.reason)
        check = (
            agreement(res, state["request"])
            if mode == "program"
            else Check(False, "combined by the model", unchecked=True)
        )
    except BudgetExceeded as exc:  # no budget to combine: the last step's result stands, marked partial
        last = _last_result(plan_, results)
        answer = None if last is None else (last.answer if kind == "number" else last.text or last.answer)
        note = f"\n(not synthesised: {exc}; the answer is the last step's result)"
        check = Check(False, f"not synthesised: {exc}")
        deps.events.emit(Verification(step_id="answer", passed=False, reason=check.reason))
    else:
        deps.events.emit(Verification(step_id="answer", passed=check.verified, unchecked=check.unchecked,
                                      reason=check.reason, answer=answer))  # fmt: skip
    outcome = outcome_of(PlanStep(id="answer", goal=goal), res, check.verified and answer is not None, check.reason,
                         strategy.name)  # fmt: skip
    outcome = outcome.model_copy(update={"kind": "answer", "answer": answer, "spend": Spend.of(budget.spent),
                                         "unchecked": check.unchecked})  # fmt: skip
    deps.events.emit(StepFinished(step_id="answer", outcome=outcome))
    return answer, note, check


def _shown(step: PlanStep, r: StepOutcome | None) -> str | None:
    """What a step's result shows the combining step: a numeric step's number (its text may be the program that
    printed it), else its text."""
    if r is None:
        return None
    if step.answer_kind == "number" and r.answer is not None:
        return r.answer
    return r.text or r.answer


def _last_result(plan_: Plan, results: dict[str, StepOutcome]) -> StepOutcome | None:
    """The result of the last step (in plan order) that produced one."""
    have = [results[s.id] for s in plan_.steps if s.id in results and (results[s.id].answer or results[s.id].text)]
    return have[-1] if have else None


def _justify(step: PlanStep, r: StepOutcome | None) -> str:
    check = "NOT verified"
    if r is not None and (r.verified or r.unchecked):
        check = "verified" if r.verified else "unchecked"
    return f"{step.id}. {step.goal} -> {r.answer if r else None} [{r.strategy if r else None}, {check}]"


def _options(deps: AgentDeps) -> dict[str, Any]:
    o = deps.options
    return {
        "strategy": o.strategy,
        "budget_tokens": o.budget_tokens,
        "plan_candidates": o.plan_candidates,
        "approve_plan": o.approve_plan,
        "ask_missing": o.ask_missing,
        "max_replans": o.max_replans,
        "answer_mode": o.answer_mode,
        "model": deps.llm.model,
        "judge_model": deps.judge_llm.model if deps.judge_llm is not None else None,
    }
