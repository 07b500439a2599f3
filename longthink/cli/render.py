"""Rendering of a run's events for people: the plan as a tree, each step's candidates with their scores and
the chosen one, a budget bar, the answer. Lines are printed as events arrive (works in any terminal and in
a pseudo-terminal driven by a test)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from longthink import events as ev


def plan_tree(plan: dict[str, Any], title: str = "plan") -> Tree:
    tree = Tree(f"[bold]{escape(title)}[/bold]")
    for s in plan.get("steps", []):
        deps = f" [dim](after {', '.join(s['depends_on'])})[/dim]" if s.get("depends_on") else ""
        kind = f" [dim]{s.get('answer_kind', 'text')}[/dim]"
        tree.add(f"[cyan]{escape(s['id'])}[/cyan] {escape(s['goal'])}{deps}{kind}")
    return tree


def budget_bar(spent: float, cap: float | None, width: int = 24) -> str:
    if not cap:
        return f"budget: {int(spent)} tokens (no cap)"
    frac = min(1.0, spent / cap)
    filled = round(frac * width)
    return f"budget: [{'#' * filled}{'-' * (width - filled)}] {int(spent)}/{int(cap)} tokens"


class EventRenderer:
    """Prints a run's events. ``verbose`` also shows every candidate's text (first line)."""

    def __init__(self, console: Console, *, budget_cap: float | None = None, verbose: bool = False) -> None:
        self.console = console
        self.cap = budget_cap
        self.verbose = verbose
        self._scores: dict[str, dict[str, float]] = {}
        self._spent = 0.0

    def __call__(self, event: ev.Event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_plan_selected(self, e: ev.PlanSelected) -> None:
        self.console.print(plan_tree(e.plan, f"plan ({e.reason})"))

    def _on_step_started(self, e: ev.StepStarted) -> None:
        self.console.print(
            f"[bold]> step {escape(str(e.step_id))}[/bold] {escape(e.goal)} [dim]strategy={escape(e.strategy)}[/dim]"
        )

    def _on_candidate_scored(self, e: ev.CandidateScored) -> None:
        if e.value is not None:
            self._scores.setdefault(e.candidate_id, {})[e.scorer] = e.value

    def _on_candidate_generated(self, e: ev.CandidateGenerated) -> None:
        if self.verbose and e.step_id not in ("plan", None):
            c = e.candidate
            first = (c.text.strip().splitlines() or [""])[0][:90]
            self.console.print(f"    [dim]candidate {c.index}: {escape(first)} -> {escape(str(c.answer))}[/dim]")

    def _on_search_finished(self, e: ev.SearchFinished) -> None:
        if e.step_id in ("plan", None) or str(e.step_id).startswith(("replan", "plan-feedback")):
            return
        shown = ", ".join(f"{escape(str(a))}: {v:g}" for a, v in sorted(e.votes.items(), key=lambda kv: -kv[1])[:4])
        score = self._scores.get(e.chosen or "", {})
        score_txt = ", ".join(f"{k}={v:.2f}" for k, v in score.items())
        self.console.print(
            f"    {e.candidates} candidates"
            + (f" [dim]votes {shown}[/dim]" if shown else "")
            + f" -> chosen [green]{escape(str(e.answer))}[/green]"
            + (f" [dim]({score_txt})[/dim]" if score_txt else "")
        )

    def _on_step_finished(self, e: ev.StepFinished) -> None:
        colour = {"done": "green", "partial": "yellow", "unverified": "yellow"}.get(e.status, "red")
        bar = escape(budget_bar(self._spent, self.cap))
        self.console.print(f"    [{colour}]{e.status}[/{colour}] [dim]{bar}[/dim]")

    def _on_budget(self, e: ev.BudgetUpdate) -> None:
        self._spent = float(e.spend.completion_tokens)
        self.cap = e.cap_tokens if e.cap_tokens is not None else self.cap

    def _on_verification(self, e: ev.Verification) -> None:
        mark = "[green]verified[/green]" if e.passed else "[red]failed[/red]"
        mark = "[yellow]unchecked[/yellow]" if e.unchecked else mark
        self.console.print(f"    {mark} [dim]{escape(e.reason)}[/dim]")

    def _on_tool_called(self, e: ev.ToolCalled) -> None:
        shown = e.result if e.ok else e.error
        self.console.print(f"    tool {escape(e.tool)}({escape(_short(e.args))}) -> {escape(_short(shown))}")

    def _on_replan(self, e: ev.Replan) -> None:
        self.console.print(f"[yellow]replanning[/yellow]: {escape(e.reason)}")

    def _on_approval_requested(self, e: ev.ApprovalRequested) -> None:
        self.console.print("[yellow]the plan waits for approval[/yellow]")

    def _on_clarification_requested(self, e: ev.ClarificationRequested) -> None:
        ids = ", ".join(q.id for q in e.questions)
        self.console.print(
            f"[yellow]the run waits for facts the request does not state[/yellow] [dim]({escape(ids)})[/dim]"
        )

    def _on_error(self, e: ev.Error) -> None:
        self.console.print(f"[red]error[/red]: {escape(e.message)}")


def _short(value: object, limit: int = 160) -> str:
    """A one-line rendering of a tool's arguments or result, cut at ``limit`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
