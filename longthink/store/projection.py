"""From events to rows: what each event kind writes, shared by every backend.

The raw event always goes to the ``events`` table; besides, by kind (keys of ``Event.data``; any may be
missing, and unknown keys are kept only in the raw event):

=======================  ================================================================================
``run_started``          run: ``request``; the other keys become the run's ``meta``; status running
``plan_proposed``        plan ``plan_id`` (or ``id``; default ``plan<seq>``): ``plan`` (JSON), ``score``
``plan_selected``        the same plan, marked selected; the run's ``plan_id``
``step_started``         step: ``goal``, ``step_kind`` (its ``kind``), ``strategy``, ``problem_id``, ``prompt``
                         (messages or text), ``depends_on``, ``plan_id``; status running
``candidate_generated``  candidate: ``problem_id`` and ``candidate`` (the fields of
                         :class:`~longthink.search.types.Candidate`, plus an optional ``reasoning``)
``candidate_scored``     score: ``candidate_id``, ``scorer``, ``value``, ``steps``, ``rationale``
``step_finished``        step: ``answer``, ``chosen``, ``reason``, ``strategy``, ``stopped``, ``spend``,
                         ``votes``; status finished (failed when there is no answer)
``verification``         step: ``passed`` (bool) -> ``verified``
``tool_called``          tool call ``call_id`` (or ``id``; default ``tool<seq>``): ``tool`` (or ``name``),
                         ``args``, ``result``, ``error``, ``latency_s``
``budget``               budget snapshot keyed by the event: ``prompt_tokens``, ``completion_tokens``,
                         ``samples``, ``requests``, ``cost``, ``exhausted``; without a step id also the
                         run's ``spend``
``answer``               run: ``answer``, ``spend``; status finished
``error``                with a step id: that step failed; without: the run failed (``message`` or ``error``)
``replan``               the raw event only
=======================  ================================================================================

The step of an event is its ``step_id``; a search run outside a plan (no step id) is recorded as a step named
after its ``problem_id``. A run or step that an event refers to is created if it does not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from longthink.events import Event
from longthink.store.records import (
    BudgetRecord,
    CandidateRecord,
    PlanRecord,
    RunRecord,
    ScoreRecord,
    StepRecord,
    ToolCallRecord,
    messages,
)


@dataclass
class Changes:
    """Rows to write, in this order: runs, plans, steps, then the facts under them."""

    runs: list[RunRecord] = field(default_factory=list)
    plans: list[PlanRecord] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    candidates: list[CandidateRecord] = field(default_factory=list)
    scores: list[ScoreRecord] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    budgets: list[BudgetRecord] = field(default_factory=list)
    # Rows that must exist (inserted when missing, never updated): runs and (run_id, step_id) of steps.
    new_runs: dict[str, RunRecord] = field(default_factory=dict)
    new_steps: dict[tuple[str, str], StepRecord] = field(default_factory=dict)

    def need_run(self, run_id: str, ts: float | None) -> None:
        if run_id not in self.new_runs:
            self.new_runs[run_id] = RunRecord(run_id, status="running", created_at=ts)

    def need_step(self, run_id: str, step_id: str, ts: float | None, problem_id: str | None = None) -> None:
        self.need_run(run_id, ts)
        if (run_id, step_id) not in self.new_steps:
            self.new_steps[(run_id, step_id)] = StepRecord(
                run_id, step_id, problem_id=problem_id, status="running", started_at=ts
            )

    def parents(self) -> None:
        """Add the runs and steps the rows refer to (for rows added directly, not from events)."""
        for r in self.runs:
            self.need_run(r.id, r.created_at)
        for rows in (self.plans, self.scores, self.tool_calls, self.budgets):
            for row in rows:
                self.need_run(row.run_id, None)
        for s in self.steps:
            self.need_run(s.run_id, s.started_at)
        for c in self.candidates:
            if c.step_id is None:
                self.need_run(c.run_id, c.created_at)
            else:
                self.need_step(c.run_id, c.step_id, c.created_at, c.problem_id)


def project(events: Iterable[Event]) -> Changes:
    """The rows that ``events`` write (in order; later events update what earlier ones wrote)."""
    out = Changes()
    for e in events:
        out.need_run(e.run_id, e.ts)
        handler = HANDLERS.get(e.kind)
        if handler is not None:
            handler(e, out)
    return out


# -- field readers: event data is never trusted --------------------------------------------------------------
def _s(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _i(value: Any, default: int = 0) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def _oi(value: Any) -> int | None:
    return None if value is None else _i(value)


def _f(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _map(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _step_of(e: Event) -> str | None:
    return e.step_id or _s(e.data.get("step_id")) or _s(e.data.get("problem_id"))


# -- handlers ------------------------------------------------------------------------------------------------
def _run_started(e: Event, out: Changes) -> None:
    meta = {k: v for k, v in e.data.items() if k != "request"}
    out.runs.append(
        RunRecord(e.run_id, status="running", request=_s(e.data.get("request")), meta=meta, created_at=e.ts)
    )


def _plan(e: Event, out: Changes, selected: bool | None) -> None:
    d = e.data
    plan_id = _s(d.get("plan_id") or d.get("id")) or f"plan{e.seq}"
    plan = d.get("plan")
    if plan is not None and not isinstance(plan, Mapping):
        dump = getattr(plan, "model_dump", None)
        plan = dump(mode="json") if callable(dump) else {"value": plan}
    out.plans.append(PlanRecord(e.run_id, plan_id, plan, _f(d.get("score")), selected, e.ts))
    if selected:
        out.runs.append(RunRecord(e.run_id, plan_id=plan_id))


def _step_started(e: Event, out: Changes) -> None:
    step = _step_of(e)
    if step is None:
        return
    d = e.data
    deps = d.get("depends_on")
    out.steps.append(
        StepRecord(
            e.run_id, step, plan_id=_s(d.get("plan_id")), problem_id=_s(d.get("problem_id")),
            goal=_s(d.get("goal")), kind=_s(d.get("step_kind")), strategy=_s(d.get("strategy")), status="running",
            prompt=messages(d.get("prompt")),
            depends_on=tuple(str(x) for x in deps) if isinstance(deps, list | tuple) else None,
            started_at=e.ts,
        )
    )  # fmt: skip


def _candidate(e: Event, out: Changes) -> None:
    c = e.data.get("candidate")
    if not isinstance(c, Mapping) or c.get("id") is None:
        return
    step = _step_of(e)
    problem = _s(e.data.get("problem_id") or c.get("problem_id"))
    if step is not None:
        out.need_step(e.run_id, step, e.ts, problem)
    out.candidates.append(
        CandidateRecord(
            e.run_id, str(c["id"]), step, problem, _i(c.get("index")), _s(c.get("text")) or "",
            _s(c.get("reasoning")), _s(c.get("answer")), _s(c.get("parse_error")), _s(c.get("finish_reason")),
            _i(c.get("prompt_tokens")), _i(c.get("completion_tokens")), _f(c.get("latency_s")), _s(c.get("model")),
            _s(c.get("prompt_hash")), _oi(c.get("seed")), _s(c.get("parent_id")), _i(c.get("depth")),
            _f(c.get("mean_logprob")), bool(c.get("partial")), e.ts,
        )
    )  # fmt: skip


def _scored(e: Event, out: Changes) -> None:
    d = e.data
    cid, scorer = _s(d.get("candidate_id")), _s(d.get("scorer"))
    if cid is None or scorer is None:
        return
    steps = d.get("steps")
    values = tuple(_f(v) for v in steps) if isinstance(steps, list | tuple) else ()
    out.scores.append(
        ScoreRecord(e.run_id, cid, scorer, _f(d.get("value")), values, _s(d.get("rationale")) or "", _step_of(e), e.ts)
    )


def _step_finished(e: Event, out: Changes) -> None:
    step = _step_of(e)
    if step is None:
        return
    d = e.data
    answer = _s(d.get("answer"))
    out.need_step(e.run_id, step, e.ts, _s(d.get("problem_id")))
    out.steps.append(
        StepRecord(
            e.run_id, step, problem_id=_s(d.get("problem_id")), strategy=_s(d.get("strategy")),
            status="finished" if answer is not None else "failed", answer=answer, chosen_id=_s(d.get("chosen")),
            reason=_s(d.get("reason")), stopped=_s(d.get("stopped")), spend=_map(d.get("spend")),
            votes=_map(d.get("votes")), finished_at=e.ts,
        )
    )  # fmt: skip


def _verification(e: Event, out: Changes) -> None:
    step = _step_of(e)
    passed = e.data.get("passed")
    if step is not None and isinstance(passed, bool):
        out.need_step(e.run_id, step, e.ts)
        out.steps.append(StepRecord(e.run_id, step, verified=passed))


def _tool(e: Event, out: Changes) -> None:
    d = e.data
    call_id = _s(d.get("call_id") or d.get("id")) or f"tool{e.seq}"
    args = d.get("args")
    out.tool_calls.append(
        ToolCallRecord(
            e.run_id, call_id, e.step_id, _s(d.get("tool") or d.get("name")) or "",
            args if isinstance(args, Mapping) or args is None else {"value": args},
            d.get("result"), _s(d.get("error")), _f(d.get("latency_s")), e.ts,
        )
    )  # fmt: skip


def _budget(e: Event, out: Changes) -> None:
    d = e.data
    out.budgets.append(
        BudgetRecord(
            e.run_id, e.seq, e.step_id, e.ts, _i(d.get("prompt_tokens")), _i(d.get("completion_tokens")),
            _i(d.get("samples")), _i(d.get("requests")), _f(d.get("cost")), bool(d.get("exhausted")),
        )
    )  # fmt: skip
    if e.step_id is None:
        out.runs.append(RunRecord(e.run_id, spend=dict(d)))


def _answer(e: Event, out: Changes) -> None:
    d = e.data
    out.runs.append(
        RunRecord(e.run_id, status="finished", answer=_s(d.get("answer")), spend=_map(d.get("spend")), finished_at=e.ts)
    )


def _error(e: Event, out: Changes) -> None:
    d = e.data
    message = _s(d.get("message") or d.get("error")) or "error"
    if e.step_id is not None:
        out.need_step(e.run_id, e.step_id, e.ts)
        out.steps.append(StepRecord(e.run_id, e.step_id, status="failed", error=message, finished_at=e.ts))
    else:
        out.runs.append(RunRecord(e.run_id, status="failed", error=message, finished_at=e.ts))


HANDLERS: dict[str, Callable[[Event, Changes], None]] = {
    "run_started": _run_started,
    "plan_proposed": lambda e, out: _plan(e, out, None),
    "plan_selected": lambda e, out: _plan(e, out, True),
    "step_started": _step_started,
    "candidate_generated": _candidate,
    "candidate_scored": _scored,
    "step_finished": _step_finished,
    "verification": _verification,
    "tool_called": _tool,
    "budget": _budget,
    "answer": _answer,
    "error": _error,
}
