"""The nodes of the deliberate agent graph. Dependencies come from LangGraph's runtime context (AgentDeps);
state holds only JSON-able values so every checkpointer can persist it."""

from __future__ import annotations

import inspect
import json
import re
import zlib
from typing import Any

from langgraph.runtime import Runtime
from langgraph.types import Command, Send, interrupt
from pydantic import ValidationError

from longthink.agents.deps import AgentDeps
from longthink.agents.state import AgentState, StepTask
from longthink.budget import Budget
from longthink.domains.pipeline import DomainPipeline, StepContext, StepOutput
from longthink.errors import BudgetExceeded
from longthink.llm.types import Message
from longthink.planners.plan import Plan, PlanStep, single_step_plan
from longthink.planners.planner import PlanChoice
from longthink.program import AnswerMode, program_instruction
from longthink.rewards.base import Scorer
from longthink.rewards.judge import Judge, ProcessJudge
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


def _scorers(deps: AgentDeps, budget: Budget) -> tuple[Scorer, Scorer]:
    """(outcome scorer, process scorer) of a search: the injected scorer; else, with a separate judge model, its
    binary judge (value P(yes); a process judge for partial solutions) charged to ``budget``; else
    self-certainty (free: read from the policy model's own logprobs)."""
    if deps.scorer is not None:
        return deps.scorer, deps.scorer
    if deps.judge_llm is not None:
        return Judge(deps.judge_llm, budget=budget), ProcessJudge(deps.judge_llm, budget=budget)
    certainty = SelfCertainty()
    return certainty, certainty


def _ctx(deps: AgentDeps, state_run: str, step_id: str, budget: Any = None) -> SearchContext:
    budget = budget or deps.budget
    scorer, process_scorer = _scorers(deps, budget)
    return SearchContext(
        llm=deps.llm,
        budget=budget,
        scorer=scorer,
        process_scorer=process_scorer,
        events=deps.events,
        judge_llm=deps.judge_llm,
        temperature=deps.options.temperature,
        seed=_seed(deps, state_run, step_id),
        step_id=step_id,
    )


# -- intake and planning ----------------------------------------------------------------------------------
async def intake(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    deps = runtime.context
    request = state["request"]
    kind = "number" if _NUMERIC.search(request) and any(ch.isdigit() for ch in request) else "text"
    domain = deps.domains.resolve(deps.options.domain, request)
    if domain != "general":
        kind = deps.domains.get(domain).answer_kind
    deps.events.emit("run_started", request=request, answer_kind=kind, domain=domain, options=_options(deps))
    return {"domain": domain, "answer_kind": kind, "replans": 0, "status": "planning"}


async def plan(state: AgentState, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
    if state.get("plan"):  # resumed after planning: keep the plan
        return {}
    deps = runtime.context
    pipeline = deps.pipeline(state.get("domain"))
    if pipeline is not None:  # the domain pack's own typed plan
        plan_ = pipeline.plan(state["request"])
        deps.events.emit("plan_selected", plan_id="plan/domain", plan=plan_.model_dump(), index=None,
                         reason=f"the {state['domain']} pack's plan")  # fmt: skip
        return {"plan": plan_.model_dump(), "status": "planned"}
    try:
        choice = await deps.get_planner().propose(
            state["request"], _ctx(deps, state["run_id"], "plan", _plan_budget(deps, "plan"))
        )
    except BudgetExceeded as exc:  # no budget to plan: the request is solved as one step with what is left
        plan_ = single_step_plan(state["request"])
        deps.events.emit("plan_selected", plan_id="plan/fallback", plan=plan_.model_dump(), index=None,
                         reason=f"not planned ({exc}); solving the request as one step")  # fmt: skip
        choice = PlanChoice(plan_, (), (), None, str(exc))
    plan_ = choice.plan
    if choice.chosen_index is None:  # the one-step fallback answers the request itself: use its answer kind
        step = plan_.steps[0].model_copy(update={"answer_kind": state.get("answer_kind", "text")})
        plan_ = plan_.model_copy(update={"steps": [step]})
    return {"plan": plan_.model_dump(), "status": "planned"}


def _plan_budget(deps: AgentDeps, name: str) -> Budget:
    """Planning's share of what is left of the run budget, so the steps always keep the rest."""
    remaining = deps.budget.remaining_tokens()
    share = None if remaining is None else max(1, int(remaining * deps.options.plan_budget_share))
    return deps.budget.child(tokens=share, name=name)


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
                dep_results={d: results[d] for d in s.depends_on},
                domain=state.get("domain", "general"),
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
    remaining = deps.budget.remaining_tokens()
    share = None if remaining is None else max(1, remaining // (max(1, task["steps_left"]) + 1))
    budget = deps.budget.child(tokens=share, name=f"step {step.id}")
    pipeline = deps.pipeline(task.get("domain"))
    if pipeline is not None:
        return {"results": {step.id: await _domain_step(deps, pipeline, task, step, budget)}}
    strategy = choose_strategy(step, deps)
    mode = answer_mode(step, deps)
    problem = Problem(
        f"{task['run_id']}:{step.id}",
        _step_prompt(task, step, mode),
        step.answer_kind,
        max_tokens=deps.options.step_max_tokens,
        mode=mode,
    )
    bus.emit(
        "step_started",
        step_id=step.id,
        goal=step.goal,
        step_kind=step.kind,
        strategy=strategy.name,
        answer_mode=mode,
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


async def _domain_step(
    deps: AgentDeps, pipeline: DomainPipeline, task: StepTask, step: PlanStep, budget: Budget
) -> dict[str, Any]:
    """One step of a domain pack's plan: the pack runs it; errors are a failed step, never a crashed run."""
    bus = deps.events
    bus.emit("step_started", step_id=step.id, goal=step.goal, step_kind=step.kind, strategy=f"domain:{step.kind}",
             depends_on=step.depends_on, inputs=task["inputs"], budget_tokens=budget.tokens)  # fmt: skip
    ctx = StepContext(
        request=task["request"],
        run_id=task["run_id"],
        step=step,
        inputs=task.get("dep_results") or {},
        search=_ctx(deps, task["run_id"], step.id, budget),
        tools=deps.tools,
        artifacts_dir=deps.artifacts_dir(task["run_id"]),
        seed=_seed(deps, task["run_id"], step.id),
    )
    try:
        out = await pipeline.run_step(ctx)
    except BudgetExceeded as exc:
        out = StepOutput(None, verified=False, reason=f"budget spent: {exc}")
    except Exception as exc:  # noqa: BLE001 - a pack's failure (bad model output, solver error) fails the step
        out = StepOutput(None, verified=False, reason=f"{type(exc).__name__}: {exc}")
    bus.emit("verification", step_id=step.id, passed=out.verified, reason=out.reason, answer=out.answer,
             artifacts=list(out.artifacts))  # fmt: skip
    return {
        "step_id": step.id,
        "goal": step.goal,
        "answer": out.answer,
        "text": out.text,
        "strategy": out.strategy,
        "verified": out.verified,
        "reason": out.reason,
        "candidates": out.candidates,
        "spend": budget.spent.as_dict(),
        "stopped": None if out.answer is not None else "error",
        "data": json.loads(json.dumps(dict(out.data), default=str)),
        "artifacts": list(out.artifacts),
    }


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
    # A domain plan is not re-planned by the model: its pack already searched and verified inside the step.
    if failed and (state.get("replans", 0) >= deps.options.max_replans or deps.pipeline(state.get("domain"))):
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
    try:
        choice = await deps.get_planner().replan(
            state["request"],
            plan_,
            finished,
            failed,
            reason,
            _ctx(deps, state["run_id"], f"replan{attempt}", _plan_budget(deps, f"replan {attempt}")),
            attempt=attempt,
        )
    except BudgetExceeded as exc:  # no budget to replan: the failed steps are accepted as failed and the run goes on
        failed_ids = [s.id for s in plan_.steps if s.id in results and not results[s.id]["verified"]]
        accepted = {sid: {**results[sid], "accepted": True} for sid in failed_ids}
        failures = [{"step": sid, "reason": f"{results[sid]['reason']}; not replanned: {exc}"} for sid in failed_ids]
        return {"results": accepted, "replans": attempt, "failures": failures}
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
    pipeline = deps.pipeline(state.get("domain"))
    if pipeline is not None:
        answer, justification = pipeline.synthesize(state["request"], plan_, results)
        status = "done" if answer is not None and not state.get("failures") else ("partial" if answer else "failed")
        deps.events.emit("answer", answer=answer, justification=justification, status=status)
        return {"answer": answer, "justification": justification, "status": status}
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
            if res.chosen is None and res.stopped == "budget":
                raise BudgetExceeded(res.reason)
        except BudgetExceeded as exc:  # no budget to combine: the last step's result stands, marked partial
            last = _last_result(plan_, results)
            answer = (
                None
                if last is None
                else (last.get("answer") if kind == "number" else last.get("text") or last.get("answer"))
            )
            justification += f"\n(not synthesised: {exc}; the answer is the last step's result)"
            deps.events.emit("verification", step_id="answer", passed=False, reason=f"not synthesised: {exc}")
            status = "partial" if answer else "failed"
            deps.events.emit("answer", answer=answer, justification=justification, status=status)
            return {"answer": answer, "justification": justification, "status": status}
    status = "done" if answer is not None and not state.get("failures") else ("partial" if answer else "failed")
    deps.events.emit("answer", answer=answer, justification=justification, status=status)
    return {"answer": answer, "justification": justification, "status": status}


def _last_result(plan_: Plan, results: dict[str, Any]) -> dict[str, Any] | None:
    """The result of the last step (in plan order) that produced one."""
    have = [
        results[s.id] for s in plan_.steps if results.get(s.id, {}).get("answer") or results.get(s.id, {}).get("text")
    ]
    return have[-1] if have else None


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
        "answer_mode": o.answer_mode,
        "model": deps.llm.model,
        "judge_model": deps.judge_llm.model if deps.judge_llm is not None else None,
    }
