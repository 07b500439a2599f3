"""Rendering of a run's events for people: the plan as a tree, each step's candidates with their scores and
the chosen one, a budget bar, the answer. Lines are printed as events arrive (works in any terminal and in
a pseudo-terminal driven by a test)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree

from longthink.events import Event


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

    def __call__(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _on_plan_selected(self, e: Event) -> None:
        self.console.print(plan_tree(e.data["plan"], f"plan ({e.data.get('reason', '')})"))

    def _on_step_started(self, e: Event) -> None:
        self.console.print(
            f"[bold]> step {escape(str(e.step_id))}[/bold] {escape(str(e.data.get('goal', '')))} "
            f"[dim]strategy={e.data.get('strategy')}[/dim]"
        )

    def _on_candidate_scored(self, e: Event) -> None:
        self._scores.setdefault(e.data["candidate_id"], {})[e.data["scorer"]] = e.data["value"]

    def _on_candidate_generated(self, e: Event) -> None:
        if self.verbose and e.step_id not in ("plan", None):
            c = e.data["candidate"]
            first = (c["text"].strip().splitlines() or [""])[0][:90]
            self.console.print(f"    [dim]candidate {c['index']}: {escape(first)} -> {escape(str(c['answer']))}[/dim]")

    def _on_step_finished(self, e: Event) -> None:
        if e.step_id in ("plan", None) or str(e.step_id).startswith("replan"):
            return
        votes = e.data.get("votes") or {}
        shown = ", ".join(f"{escape(str(a))}: {v:g}" for a, v in sorted(votes.items(), key=lambda kv: -kv[1])[:4])
        chosen = e.data.get("chosen")
        score = self._scores.get(chosen or "", {})
        score_txt = ", ".join(f"{k}={v:.2f}" for k, v in score.items())
        self.console.print(
            f"    {e.data.get('candidates', 0)} candidates"
            + (f" [dim]votes {shown}[/dim]" if shown else "")
            + f" -> chosen [green]{escape(str(e.data.get('answer')))}[/green]"
            + (f" [dim]({score_txt})[/dim]" if score_txt else "")
        )
        self.console.print(f"    [dim]{escape(budget_bar(self._spent, self.cap))}[/dim]")

    def _on_budget(self, e: Event) -> None:
        self._spent = float(e.data.get("completion_tokens", 0))
        self.cap = e.data.get("cap_tokens", self.cap)

    def _on_verification(self, e: Event) -> None:
        mark = "[green]verified[/green]" if e.data.get("passed") else "[red]failed[/red]"
        self.console.print(f"    {mark} [dim]{escape(str(e.data.get('reason', '')))}[/dim]")

    def _on_tool_called(self, e: Event) -> None:
        self.console.print(
            f"    tool {escape(str(e.data.get('tool')))}({escape(_short(e.data.get('args')))}) -> "
            f"{escape(_short(e.data.get('result') or e.data.get('error')))}"
        )

    def _on_replan(self, e: Event) -> None:
        self.console.print(f"[yellow]replanning[/yellow]: {escape(str(e.data.get('reason')))}")

    def _on_error(self, e: Event) -> None:
        self.console.print(f"[red]error[/red]: {escape(str(e.data.get('message')))}")


def _short(value: object, limit: int = 160) -> str:
    """A one-line rendering of a tool's arguments or result, cut at ``limit`` characters."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
