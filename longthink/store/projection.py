"""From events to rows: what each event kind writes, shared by every backend.

The raw event always goes to the ``events`` table; besides, by kind (the typed events of
:mod:`longthink.events`; statuses are :data:`longthink.outcome.Status`):

============================  ================================================================================
``run_started``               run: ``request``; ``answer_kind``, ``domain`` and ``options`` become its ``meta``;
                              status running
``run_resumed``               run: status running
``plan_proposed``             plan ``plan_id``: ``plan``, ``score``
``plan_selected``             the same plan, marked selected; the run's ``plan_id``
``approval_requested``        run: status awaiting_approval
``clarification_requested``   run: status awaiting_input (the questions stay in the raw event)
``step_started``              step: ``goal``, ``step_kind``, ``strategy``, ``problem_id``, ``prompt``, ``depends_on``,
                              ``plan_id``; status running
``candidate_generated``       candidate: ``problem_id`` and the ``candidate``'s fields
``candidate_scored``          score: ``candidate_id``, ``scorer``, ``value``, ``steps``, ``rationale``
``search_finished``           step: ``answer``, ``chosen``, ``reason``, ``strategy``, ``stopped``, ``spend``, ``votes``;
                              without a step id (a search outside a plan is its own step, named after its
                              ``problem_id``) also its status: done, or failed without an answer
``step_finished``             step: the ``outcome``'s answer, chosen, reason, strategy, stopped, spend, votes,
                              verified, and its status (done | unverified | partial | failed)
``verification``              step: ``passed`` -> ``verified``
``tool_called``               tool call ``call_id``: ``tool``, ``args``, ``result``, ``error``, ``latency_s``
``budget``                    budget snapshot keyed by the event, and the run's ``spend`` so far
``answer``                    run: ``answer``, ``spend``, and its final ``status``
``error``                     with a step id: that step failed; without: the run stopped on an exception and is
                              interrupted (resumable), with the ``message``
``replan``                    the raw event only
============================  ================================================================================

A run or step that an event refers to is created if it does not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from longthink.events import (
    Answer,
    ApprovalRequested,
    BudgetUpdate,
    CandidateGenerated,
    CandidateScored,
    ClarificationRequested,
    Error,
    Event,
    PlanProposed,
    PlanSelected,
    RunResumed,
    RunStarted,
    SearchFinished,
    StepFinished,
    StepStarted,
    ToolCalled,
    Verification,
)
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


# -- handlers ------------------------------------------------------------------------------------------------
def _run_started(e: RunStarted, out: Changes) -> None:
    meta = {"answer_kind": e.answer_kind, "domain": e.domain, "options": e.options}
    out.runs.append(RunRecord(e.run_id, status="running", request=e.request, meta=meta, created_at=e.ts))


def _run_resumed(e: RunResumed, out: Changes) -> None:
    out.runs.append(RunRecord(e.run_id, status="running"))


def _plan_proposed(e: PlanProposed, out: Changes) -> None:
    out.plans.append(PlanRecord(e.run_id, e.plan_id, e.plan, e.score, None, e.ts))


def _plan_selected(e: PlanSelected, out: Changes) -> None:
    out.plans.append(PlanRecord(e.run_id, e.plan_id, e.plan, None, True, e.ts))
    out.runs.append(RunRecord(e.run_id, plan_id=e.plan_id))


def _approval(e: ApprovalRequested, out: Changes) -> None:
    out.runs.append(RunRecord(e.run_id, status="awaiting_approval"))


def _clarification(e: ClarificationRequested, out: Changes) -> None:
    out.runs.append(RunRecord(e.run_id, status="awaiting_input"))


def _step_started(e: StepStarted, out: Changes) -> None:
    if e.step_id is None:
        return
    out.need_step(e.run_id, e.step_id, e.ts, e.problem_id)  # the row's creation is the step's start, in any batch
    prompt = messages([m.model_dump() for m in e.prompt]) if e.prompt is not None else None
    out.steps.append(
        StepRecord(
            e.run_id, e.step_id, plan_id=e.plan_id, problem_id=e.problem_id, goal=e.goal, kind=e.step_kind,
            strategy=e.strategy or None, status="running", prompt=prompt, depends_on=tuple(e.depends_on),
            started_at=e.ts,
        )
    )  # fmt: skip


def _candidate(e: CandidateGenerated, out: Changes) -> None:
    step = e.step_id or e.problem_id
    out.need_step(e.run_id, step, e.ts, e.problem_id)
    out.candidates.append(CandidateRecord.of(e.run_id, e.candidate, step_id=step, created_at=e.ts))


def _scored(e: CandidateScored, out: Changes) -> None:
    step = e.step_id or e.problem_id
    out.scores.append(ScoreRecord(e.run_id, e.candidate_id, e.scorer, e.value, tuple(e.steps), e.rationale, step, e.ts))


def _search_finished(e: SearchFinished, out: Changes) -> None:
    step = e.step_id or e.problem_id
    out.need_step(e.run_id, step, e.ts, e.problem_id)
    own = e.step_id is None  # a search outside a plan is its own step: it also ends it
    out.steps.append(
        StepRecord(
            e.run_id, step, problem_id=e.problem_id, strategy=None if not own else e.strategy,
            status=("done" if e.answer is not None else "failed") if own else None, answer=e.answer if own else None,
            chosen_id=e.chosen, reason=e.reason if own else None, stopped=e.stopped, spend=e.spend.as_dict(),
            votes=dict(e.votes), finished_at=e.ts if own else None,
        )
    )  # fmt: skip


def _step_finished(e: StepFinished, out: Changes) -> None:
    o = e.outcome
    step = e.step_id or o.step_id
    out.need_step(e.run_id, step, e.ts)
    out.steps.append(
        StepRecord(
            e.run_id, step, goal=o.goal or None, strategy=o.strategy or None, status=o.status, answer=o.answer,
            chosen_id=o.chosen, reason=o.reason, stopped=o.stopped, verified=o.verified, spend=o.spend.as_dict(),
            votes=dict(o.votes) if o.votes else None, finished_at=e.ts,
        )
    )  # fmt: skip


def _verification(e: Verification, out: Changes) -> None:
    if e.step_id is not None:
        out.need_step(e.run_id, e.step_id, e.ts)
        out.steps.append(StepRecord(e.run_id, e.step_id, verified=e.passed))


def _tool(e: ToolCalled, out: Changes) -> None:
    out.tool_calls.append(
        ToolCallRecord(e.run_id, e.call_id, e.step_id, e.tool, e.args, e.result, e.error, e.latency_s, e.ts)
    )


def _budget(e: BudgetUpdate, out: Changes) -> None:
    s = e.spend
    cols = (s.prompt_tokens, s.completion_tokens, s.samples, s.requests, s.cost)
    out.budgets.append(BudgetRecord(e.run_id, e.seq, e.step_id, e.ts, *cols, e.exhausted))
    # the run's spend so far, whichever step the request was made in
    out.runs.append(RunRecord(e.run_id, spend={**s.as_dict(), "cap_tokens": e.cap_tokens, "exhausted": e.exhausted}))


def _answer(e: Answer, out: Changes) -> None:
    spend = e.spend.as_dict() if e.spend is not None else None
    out.runs.append(RunRecord(e.run_id, status=e.status, answer=e.answer, spend=spend, finished_at=e.ts))


def _error(e: Error, out: Changes) -> None:
    if e.step_id is not None:
        out.need_step(e.run_id, e.step_id, e.ts)
        out.steps.append(StepRecord(e.run_id, e.step_id, status="failed", error=e.message, finished_at=e.ts))
    else:  # the session stopped on an exception: the run can be resumed from its checkpoint (as the API says)
        out.runs.append(RunRecord(e.run_id, status="interrupted", error=e.message, finished_at=e.ts))


HANDLERS: dict[str, Callable[[Any, Changes], None]] = {
    "run_started": _run_started,
    "run_resumed": _run_resumed,
    "plan_proposed": _plan_proposed,
    "plan_selected": _plan_selected,
    "approval_requested": _approval,
    "clarification_requested": _clarification,
    "step_started": _step_started,
    "candidate_generated": _candidate,
    "candidate_scored": _scored,
    "search_finished": _search_finished,
    "step_finished": _step_finished,
    "verification": _verification,
    "tool_called": _tool,
    "budget": _budget,
    "answer": _answer,
    "error": _error,
}
