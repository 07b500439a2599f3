"""The run dialogue the CLI's commands share (``solve``, ``runs resume`` and ``chat``): stream a run's events to
the terminal and return its result; ask a person for the facts the request lacks and to approve, edit or reject a
plan, until the run moves on."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from longthink.cli.render import EventRenderer, plan_tree
from longthink.events import Question
from longthink.handle import RunHandle

console = Console(highlight=False)


async def _drive(handle: RunHandle | Awaitable[RunHandle], renderer: EventRenderer | None) -> Any:
    if not isinstance(handle, RunHandle):
        handle = await handle
    async for event in handle:
        if renderer is not None:
            renderer(event)
    return await handle.result()


def run_streamed(
    agent: Any, handle: RunHandle | Awaitable[RunHandle], *, quiet: bool, verbose: bool = False, ui: Console = console
) -> Any:
    """Render the events of the run behind ``handle`` (unless ``quiet``) and return its :class:`RunResult`."""
    from longthink.llm.base import run_sync

    renderer = None if quiet else EventRenderer(ui, budget_cap=agent.options.budget_tokens, verbose=verbose)
    return run_sync(_drive(handle, renderer))


def wait_loop(agent: Any, result: Any, *, quiet: bool, yes: bool = False) -> Any:
    """Answer what the run waits for until it moves on: the facts its request lacks (asked one by one, the default
    shown: Enter keeps it, as an assumption; with ``yes`` every default is taken without asking) and a pending plan
    (approve, edit or reject). With ``quiet`` (``--json``) the dialogue goes to stderr, so stdout holds the JSON
    result only."""
    ui = Console(stderr=True, highlight=False) if quiet else console
    while result.status in ("awaiting_input", "awaiting_approval"):
        if result.status == "awaiting_input":
            decision = {"action": "defaults"} if yes else ask_questions(result, ui=ui, err=quiet)
        else:
            decision = decide_plan(result, ui=ui, err=quiet)
        result = run_streamed(agent, agent.astream_resume(result.run_id, decision), quiet=quiet)
    return result


def ask_questions(result: Any, *, ui: Console = console, err: bool = False) -> dict[str, Any]:
    """Ask each of the run's questions (``typer.prompt``, the default shown); the decision that answers them. An
    answer left as its default is not sent: the run uses the default, labelled as an assumption."""
    pending = result.pending or {}
    if pending.get("error"):
        ui.print(f"[red]asked again[/red]: {escape(str(pending['error']))}")
    ui.print("[bold]The request does not state facts the plan needs[/bold] [dim](Enter keeps the default, which the "
             "plan then labels as an assumption)[/dim]")  # fmt: skip
    answers: dict[str, str] = {}
    for q in result.questions:
        if q.why:
            ui.print(f"[dim]{escape(q.why)}[/dim]")
        text = " ".join(str(typer.prompt(q.text, default=q.default, err=err)).split())
        if text and text != q.default:
            answers[q.id] = text
    return {"action": "answer", "answers": answers} if answers else {"action": "defaults"}


def decide_plan(result: Any, *, ui: Console = console, err: bool = False) -> dict[str, Any]:
    """Show the plan waiting for approval and ask: approve, edit or reject (with feedback)."""
    pending = result.pending or {}
    ui.print(plan_tree(pending.get("plan", {}), "proposed plan (awaiting approval)"))
    if pending.get("error"):
        ui.print(f"[red]edit refused[/red]: {escape(str(pending['error']))}")
    choice = typer.prompt("approve, edit or reject?", default="approve", err=err).strip().lower()
    if choice.startswith("e"):
        return {"action": "edit", "plan": read_steps(ui)}
    if choice.startswith("r"):
        feedback = typer.prompt("feedback (empty: stop)", default="", err=err)
        return {"action": "reject", "feedback": feedback}
    return {"action": "approve"}


_LABELLED = re.compile(r"^\s*([A-Za-z][\w ]{0,60}?)\s*[:=]\s*(.+)$")


def parse_answers(text: str, questions: Sequence[Question]) -> dict[str, str]:
    """Answers typed on one line (chat): parts separated by ";" or new lines, each ``id: text`` / ``label = text``
    or, unlabelled, the answer to the next unanswered question in order; an empty part or "-" keeps that
    question's default."""
    by_name = {n.lower(): q.id for q in questions for n in (q.id, q.label)}
    answers: dict[str, str] = {}
    loose: list[str] = []
    for part in re.split(r"[;\n]", text):
        m = _LABELLED.match(part)
        if m and m.group(1).strip().lower() in by_name:
            answers[by_name[m.group(1).strip().lower()]] = m.group(2).strip()
        else:
            loose.append(part.strip())
    todo = [q.id for q in questions if q.id not in answers]
    for qid, value in zip(todo, loose, strict=False):
        if value and value != "-":
            answers[qid] = value
    return {k: v for k, v in answers.items() if v and v != "-"}


def read_steps(ui: Console = console) -> dict[str, Any]:
    """Read a plan from the terminal: one step goal per line (a chain), empty line to finish, or JSON."""
    ui.print("[dim]enter one step per line (or a JSON plan); an empty line ends[/dim]")
    lines: list[str] = []
    while True:
        line = sys.stdin.readline()
        if not line or not line.strip():
            break
        lines.append(line.rstrip("\n"))
    text = "\n".join(lines)
    if text.strip().startswith("{"):
        try:
            return dict(json.loads(text))
        except ValueError:
            return {"steps": []}
    return {
        "steps": [
            {"id": f"s{i + 1}", "goal": g.strip(), "depends_on": [f"s{i}"] if i else []} for i, g in enumerate(lines)
        ]
    }
