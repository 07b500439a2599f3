"""The search told as text while it runs: one or a few lines per event, for the OpenAI-compatible stream's
reasoning deltas (a chat client shows them as the model's "thinking"). Plain text, no markup."""

from __future__ import annotations

from longthink import events as ev


def _one_line(text: object, limit: int = 100) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _plan(plan: dict[str, object]) -> str:
    steps = plan.get("steps")
    lines = []
    for s in steps if isinstance(steps, list) else []:
        if isinstance(s, dict):
            after = f" (after {', '.join(map(str, s.get('depends_on') or []))})" if s.get("depends_on") else ""
            lines.append(f"  {s.get('id')}. {_one_line(s.get('goal', ''))}{after}")
    return "\n".join(lines)


class Narrator:
    """Turns events into reasoning text; keeps the scores it has seen so the choice can cite them."""

    def __init__(self) -> None:
        self._scores: dict[str, dict[str, float]] = {}

    def __call__(self, event: ev.Event) -> str | None:
        handler = getattr(self, f"_on_{event.kind}", None)
        text: str | None = handler(event) if handler is not None else None
        return None if text is None else text + "\n"

    def _on_run_started(self, e: ev.RunStarted) -> str:
        return f"Thinking deliberately about the request (domain: {e.domain})."

    def _on_run_resumed(self, e: ev.RunResumed) -> str:
        return f"Resuming the run{f' after the decision: {e.decision}' if e.decision else ''}."

    def _on_plan_proposed(self, e: ev.PlanProposed) -> str:
        if not e.valid:
            return f"Plan {e.plan_id} proposed but invalid: {_one_line(e.error)}"
        score = f" scored {e.score:.2f}" if e.score is not None else ""
        n = len(e.plan.get("steps", [])) if e.plan else 0
        return f"Plan {e.plan_id} proposed with {n} steps{score}."

    def _on_plan_selected(self, e: ev.PlanSelected) -> str:
        return f"Chose plan {e.plan_id} ({_one_line(e.reason)}):\n{_plan(e.plan)}"

    def _on_approval_requested(self, e: ev.ApprovalRequested) -> str:
        return "The plan waits for approval."

    def _on_clarification_requested(self, e: ev.ClarificationRequested) -> str:
        asked = "\n".join(f"  {q.id}: {_one_line(q.text)} (default: {_one_line(q.default, 60)})" for q in e.questions)
        return f"The request does not state facts the plan needs; waiting for answers:\n{asked}"

    def _on_step_started(self, e: ev.StepStarted) -> str:
        return f"Step {e.step_id}: {_one_line(e.goal)} [strategy {e.strategy or e.step_kind}]"

    def _on_candidate_generated(self, e: ev.CandidateGenerated) -> str:
        c = e.candidate
        outcome = (
            f"-> {_one_line(c.answer, 40)}" if c.answer is not None else f"(no answer: {_one_line(c.parse_error, 60)})"
        )
        return f"  candidate {c.index}: {_one_line(c.text, 80)} {outcome}"

    def _on_candidate_scored(self, e: ev.CandidateScored) -> str | None:
        if e.value is None:
            return None
        self._scores.setdefault(e.candidate_id, {})[e.scorer] = e.value
        return f"  candidate {e.candidate_id} scored {e.value:.3g} by {e.scorer}"

    def _on_search_finished(self, e: ev.SearchFinished) -> str:
        votes = ", ".join(f"{_one_line(a, 30)}: {v:g}" for a, v in sorted(e.votes.items(), key=lambda kv: -kv[1])[:5])
        scores = ", ".join(f"{k}={v:.2f}" for k, v in self._scores.get(e.chosen or "", {}).items())
        return (
            f"  {e.candidates} candidates ({e.strategy})" + (f", votes {votes}" if votes else "")
            + f"; chose {_one_line(e.answer, 60)}" + (f" ({scores})" if scores else "")
            + (f" because {_one_line(e.reason, 80)}" if e.reason else "")
        )  # fmt: skip

    def _on_verification(self, e: ev.Verification) -> str:
        return f"  {'verified' if e.passed else 'verification failed'}: {_one_line(e.reason)}"

    def _on_tool_called(self, e: ev.ToolCalled) -> str:
        shown = e.result if e.ok else f"error: {e.error}"
        return f"  tool {e.tool}({_one_line(e.args, 60)}) -> {_one_line(shown, 80)}"

    def _on_step_finished(self, e: ev.StepFinished) -> str:
        return f"Step {e.step_id} {e.outcome.status}: {_one_line(e.outcome.answer, 80)}"

    def _on_replan(self, e: ev.Replan) -> str:
        return f"Replanning: {_one_line(e.reason)}"

    def _on_error(self, e: ev.Error) -> str:
        return f"Error: {_one_line(e.message)}"


__all__ = ["Narrator"]
