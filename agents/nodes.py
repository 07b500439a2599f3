"""The nodes of the deliberate agent graph. Dependencies come from LangGraph's runtime context (AgentDeps);
state holds only JSON-able values so every checkpointer can persist it."""

from __future__ import annotations

import inspect
import re
import zlib
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command, Send, interrupt
from pydantic import ValidationError

from longthink.agents.deps import AgentDeps
from longthink.agents.state import AgentState, StepTask
from longthink.errors import BudgetExceeded
from longthink.llm.types import Message
from longthink.planners.plan import Plan, PlanStep
from longthink.rewards.self_certainty import SelfCertainty
from longthink.search.context import SearchContext
from longthink.search.registry import make_strategy
from longthink.search.types import Problem, StepResult
from longthink.tools.base import call_tool

STEP_SYSTEM = "You are solving one step of a larger task. Be concrete and concise."
NUMBER_FORMAT = "Work it out step by step, then end with 'Answer: <number>'."
TEXT_FORMAT = "Give the result of this step directly."
_NUMERIC = re.compile(r"(?i)\b(how (many|much|long|far)|what is|calculate|compute|total|sum|percent|profit of)\b")


def _seed(deps: AgentDeps, *parts: str) -> int | None:
    if deps.options.seed is None:
        return None
    return deps.options.seed * 7919 + zlib.crc32("/".join(parts).encode()) % 1_000_003


def _ctx(deps: AgentDeps, state_run: str, step_id: str, budget: Any = None) -> SearchContext:
    scorer = deps.scorer or SelfCertainty()
    return SearchContext(
        llm=deps.llm,
        budget=budget or deps.budget,
        scorer=scorer,
        process_scorer=scorer,
        events=deps.events,
        temperature=deps.options.temperature,
        seed=_seed(deps, state_run, step_id),
        step_id=step_id,
    )


# -- intake and planning ----------------------------------------------------------------------------------
async def intake(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    deps = runtime.context
    request = state["request"]
    kind = "number" if _NUMERIC.search(request) and any(ch.isdigit() for ch in request) else "text"
    deps.events.emit("run_started", request=request, answer_kind=kind, options=_options(deps))
    return {"domain": deps.options.domain or "general", "answer_kind": kind, "replans": 0, "status": "planning"}


async def plan(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    if state.get("plan"):  # resumed after planning: keep the plan
        return {}
    deps = runtime.context
    choice = await deps.get_planner().propose(state["request"], _ctx(deps, state["run_id"], "plan"))
    plan_ = choice.plan
    if choice.chosen_index is None:  # the one-step fallback answers the request itself: use its answer kind
        step = plan_.steps[0].model_copy(update={"answer_kind": state.get("answer_kind", "text")})
        plan_ = plan_.model_copy(update={"steps": [step]})
    return {"plan": plan_.model_dump(), "status": "planned"}


async def approve(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any] | Command[Any]:
    """Optional human approval (a LangGraph interrupt): approve, edit (a new plan) or reject (with feedback)."""
    deps = runtime.context
    if not deps.options.approve_plan or state.get("status") == "approved":
        return {"status": "approved"}
    decision = interrupt(
        {
            "kind": "plan_approval",
            "request": state["request"],
            "plan": state["plan"],
            "error": state.get("justification") if state.get("status") == "edit_invalid" else None,
        }
    )
    action = str((decision or {}).get("action", "approve")) if isinstance(decision, dict) else str(decision)
    if action == "approve":
        deps.events.emit("plan_selected", plan=state["plan"], reason="approved by the user")
        return {"status": "approved"}
    if action == "edit":
        try:
            edited = Plan.model_validate(decision.get("plan"))
        except ValidationError as exc:
            why = "; ".join(e["msg"] for e in exc.errors())
            deps.events.emit("error", where="plan_edit", message=why)
            return Command(goto="approve", update={"status": "edit_invalid", "justification": why})
        deps.events.emit("plan_selected", plan=edited.model_dump(), reason="edited by the user")
        return {"plan": edited.model_dump(), "status": "approved"}
    feedback = str(decision.get("feedback", "")) if isinstance(decision, dict) else ""
    if feedback:  # re-plan with the user's feedback, then ask again
        deps.events.emit("replan", reason=f"plan rejected: {feedback}")
        request = f"{state['request']}\n(Planning feedback: {feedback})"
        choice = await deps.get_planner().propose(request, _ctx(deps, state["run_id"], "plan-feedback"))
        return Command(goto="approve", update={"plan": choice.plan.model_dump(), "status": "planned"})
    return {"status": "rejected", "answer": None, "justification": "the plan was rejected"}


# -- executing steps --------------------------------------------------------------------------------------
def _finished(state: AgentState, plan_: Plan) -> set[str]:
    results = state.get("results") or {}
    return {
        s.id for s in plan_.steps if s.id in results and (results[s.id]["verified"] or results[s.id].get("accepted"))
    }


def route_steps(state: AgentState) -> list[Send] | str:
    """Fan out every step whose dependencies are done (they run concurrently), or go to synthesis."""
    if state.get("status") == "rejected":
        return "end"
    plan_ = Plan.model_validate(state["plan"])
    done = _finished(state, plan_)
    results = state.get("results") or {}
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
                inputs={d: str(results[d].get("answer") or results[d].get("text", "")) for d in s.depends_on},
                steps_left=left,
            ),
        )
        for s in pending
    ]


def choose_strategy(step: PlanStep, deps: AgentDeps) -> Any:
    """The user's fixed strategy, else the planner's suggestion, else by difficulty and answer kind."""
    opts = deps.options
    if opts.strategy != "auto":
        return make_strategy(opts.strategy, **dict(opts.strategy_options))
    if step.strategy:
        try:
            return make_strategy(step.strategy)
        except Exception:  # noqa: BLE001 - a bad suggestion from the model falls back to the default choice
            pass
    if step.answer_kind in ("number", "choice", "expression"):
        if step.difficulty < 0.3:
            return make_strategy("cot")
        if step.difficulty < 0.7:
            return make_strategy("self_consistency", n=3)
        return make_strategy("adaptive", max_samples=8, batch=4)
    if step.difficulty < 0.3:
        return make_strategy("cot")
    return make_strategy("best_of_n", n=3)


def _step_prompt(task: StepTask, step: PlanStep) -> tuple[Message, ...]:
    lines = [f"Overall request: {task['request']}"]
    if task["inputs"]:
        lines.append("Results of earlier steps:")
        lines += [f"- {sid}: {value}" for sid, value in task["inputs"].items()]
    lines.append(f"Your step: {step.goal}")
    if step.success_check:
        lines.append(f"It is done when: {step.success_check}")
    lines.append(NUMBER_FORMAT if step.answer_kind == "number" else TEXT_FORMAT)
    return (Message.system(STEP_SYSTEM), Message.user("\n".join(lines)))


async def _verify(deps: AgentDeps, step: PlanStep, res: StepResult) -> tuple[bool, str]:
    if res.answer is None:
        return False, res.reason
    if deps.verifier is not None:
        verdict = deps.verifier(step, res)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        return verdict
    value = res.chosen.score() if res.chosen else None
    if value is not None and value < deps.options.verify_threshold:
        return False, f"best candidate scored {value:.3f} < threshold {deps.options.verify_threshold}"
    return True, "answer found" + (f" (score {value:.3f})" if value is not None else "")


async def execute_step(state: StepTask, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    task = state
    deps = runtime.context
    step = PlanStep.model_validate(task["step"])
    bus = deps.events
    if step.tool:
        return {"results": {step.id: await _tool_step(deps, step)}}
    strategy = choose_strategy(step, deps)
    remaining = deps.budget.remaining_tokens()
    share = None if remaining is None else max(1, remaining // (max(1, task["steps_left"]) + 1))
    budget = deps.budget.child(tokens=share, name=f"step {step.id}")
    problem = Problem(
        f"{task['run_id']}:{step.id}",
        _step_prompt(task, step),
        step.answer_kind,
        max_tokens=deps.options.step_max_tokens,
    )
    bus.emit(
        "step_started",
        step_id=step.id,
        goal=step.goal,
        step_kind=step.kind,
        strategy=strategy.name,
        depends_on=step.depends_on,
        inputs=task["inputs"],
        budget_tokens=share,
        problem_id=problem.id,
        prompt=[{"role": m.role, "content": m.content} for m in problem.prompt],
    )
    ctx = _ctx(deps, task["run_id"], step.id, budget)
    try:
        res = await strategy.solve(problem, ctx)
    except BudgetExceeded as exc:
        bus.emit("verification", step_id=step.id, passed=False, reason=str(exc))
        return {"results": {step.id: _outcome(step, None, False, str(exc), strategy.name)}}
    passed, reason = await _verify(deps, step, res)
    bus.emit("verification", step_id=step.id, passed=passed, reason=reason, answer=res.answer)
    return {"results": {step.id: _outcome(step, res, passed, reason, strategy.name)}}


async def _tool_step(deps: AgentDeps, step: PlanStep) -> dict[str, Any]:
    bus = deps.events
    bus.emit("step_started", step_id=step.id, goal=step.goal, strategy=f"tool:{step.tool}", depends_on=step.depends_on)
    try:
        tool = deps.tools.get(step.tool or "")
    except Exception as exc:  # noqa: BLE001 - an unknown tool in a model's plan is a failed step, not a crash
        return _outcome(step, None, False, str(exc), f"tool:{step.tool}")
    result = await call_tool(tool, step.tool_args)
    bus.emit(
        "tool_called",
        step_id=step.id,
        tool=tool.name,
        args=dict(result.arguments),
        ok=result.ok,
        result=result.output,
        error=result.error,
        latency_s=result.latency_s,
    )
    bus.emit("verification", step_id=step.id, passed=result.ok, reason=result.error or "tool succeeded")
    out = _outcome(step, None, result.ok, result.error or "tool succeeded", f"tool:{tool.name}")
    out.update(answer=result.output if result.ok else None, text=result.output)
    return out


def _outcome(step: PlanStep, res: StepResult | None, verified: bool, reason: str, strategy: str) -> dict[str, Any]:
    return {
        "step_id": step.id,
        "goal": step.goal,
        "answer": res.answer if res else None,
        "text": res.chosen.text if res and res.chosen else "",
        "strategy": strategy,
        "verified": verified,
        "reason": reason,
        "candidates": len(res.candidates) if res else 0,
        "spend": res.spend.as_dict() if res else {},
        "stopped": res.stopped if res else "error",
    }


# -- verification, replanning, synthesis ------------------------------------------------------------------
async def verify(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    """Fan-in after a layer of steps: failed steps are re-planned (bounded) or accepted as failed."""
    deps = runtime.context
    plan_ = Plan.model_validate(state["plan"])
    results = state.get("results") or {}
    failed = [
        s
        for s in plan_.steps
        if s.id in results and not results[s.id]["verified"] and not results[s.id].get("accepted")
    ]
    if failed and state.get("replans", 0) >= deps.options.max_replans:
        accepted = {s.id: {**results[s.id], "accepted": True} for s in failed}
        return {"results": accepted, "failures": [{"step": s.id, "reason": results[s.id]["reason"]} for s in failed]}
    return {}


def route_after_verify(state: AgentState) -> list[Send] | str:
    plan_ = Plan.model_validate(state["plan"])
    results = state.get("results") or {}
    if any(
        s.id in results and not results[s.id]["verified"] and not results[s.id].get("accepted") for s in plan_.steps
    ):
        return "replan"
    return route_steps(state)


async def replan(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    deps = runtime.context
    plan_ = Plan.model_validate(state["plan"])
    results = state.get("results") or {}
    failed = next(s for s in plan_.steps if s.id in results and not results[s.id]["verified"])
    reason = results[failed.id]["reason"]
    finished = {s.id: str(results[s.id].get("answer")) for s in plan_.steps if s.id in _finished(state, plan_)}
    attempt = state.get("replans", 0) + 1
    deps.events.emit("replan", step_id=failed.id, reason=reason, attempt=attempt)
    choice = await deps.get_planner().replan(
        state["request"],
        plan_,
        finished,
        failed,
        reason,
        _ctx(deps, state["run_id"], f"replan{attempt}"),
        attempt=attempt,
    )
    return {"plan": choice.plan.model_dump(), "replans": attempt, "failures": [{"step": failed.id, "reason": reason}]}


async def synthesize(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    deps = runtime.context
    plan_ = Plan.model_validate(state["plan"])
    results = state.get("results") or {}
    lines = [
        f"- {s.id} ({s.goal}): {results.get(s.id, {}).get('text') or results.get(s.id, {}).get('answer')}"
        for s in plan_.steps
    ]
    justification = "\n".join(_justify(s, results.get(s.id, {})) for s in plan_.steps)
    kind = state.get("answer_kind", "text")
    answer: str | None
    if len(plan_.steps) == 1 and plan_.steps[0].id in results:
        only = results[plan_.steps[0].id]
        answer = only.get("answer") if kind == "number" else (only.get("text") or only.get("answer"))
    else:
        fmt = NUMBER_FORMAT if kind == "number" else "Write the final answer to the request, using these results."
        prompt = (
            Message.system("You combine the results of a plan into the final answer."),
            Message.user(
                f"Request: {state['request']}\nResults of the plan's steps:\n" + "\n".join(lines) + f"\n{fmt}"
            ),
        )
        problem = Problem(f"{state['run_id']}:answer", prompt, kind, max_tokens=deps.options.answer_max_tokens)  # type: ignore[arg-type]
        deps.events.emit(
            "step_started",
            step_id="answer",
            goal="combine the step results into the answer",
            strategy="self_consistency" if kind == "number" else "cot",
            problem_id=problem.id,
            prompt=[{"role": m.role, "content": m.content} for m in prompt],
        )
        strategy = make_strategy("self_consistency", n=3) if kind == "number" else make_strategy("cot")
        try:
            res = await strategy.solve(problem, _ctx(deps, state["run_id"], "answer"))
            answer = res.answer if kind == "number" else (res.chosen.text if res.chosen else None)
        except BudgetExceeded:
            answer = None
    status = "done" if answer is not None and not state.get("failures") else ("partial" if answer else "failed")
    deps.events.emit("answer", answer=answer, justification=justification, status=status)
    return {"answer": answer, "justification": justification, "status": status}


def _justify(step: PlanStep, r: dict[str, Any]) -> str:
    check = "verified" if r.get("verified") else "NOT verified"
    return f"{step.id}. {step.goal} -> {r.get('answer')} [{r.get('strategy')}, {check}]"


def _options(deps: AgentDeps) -> dict[str, Any]:
    o = deps.options
    return {
        "strategy": o.strategy,
        "budget_tokens": o.budget_tokens,
        "plan_candidates": o.plan_candidates,
        "approve_plan": o.approve_plan,
        "max_replans": o.max_replans,
        "model": deps.llm.model,
    }
