"""The run dialogue the CLI's commands share (``solve``, ``runs resume`` and ``chat``): stream a run's events to
the terminal and return its result; ask a person to approve, edit or reject a plan until the run moves on."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from longthink.cli.render import EventRenderer, plan_tree
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


def approval_loop(agent: Any, result: Any, *, quiet: bool) -> Any:
    """Ask the user to approve, edit or reject a pending plan until the run moves on. With ``quiet`` (``--json``)
    the dialogue goes to stderr, so stdout holds the JSON result only."""
    ui = Console(stderr=True, highlight=False) if quiet else console
    while result.status == "awaiting_approval":
        pending = result.pending or {}
        ui.print(plan_tree(pending.get("plan", {}), "proposed plan (awaiting approval)"))
        if pending.get("error"):
            ui.print(f"[red]edit refused[/red]: {escape(str(pending['error']))}")
        choice = typer.prompt("approve, edit or reject?", default="approve", err=quiet).strip().lower()
        if choice.startswith("e"):
            decision = {"action": "edit", "plan": read_steps(ui)}
        elif choice.startswith("r"):
            feedback = typer.prompt("feedback (empty: stop)", default="", err=quiet)
            decision = {"action": "reject", "feedback": feedback}
        else:
            decision = {"action": "approve"}
        result = run_streamed(agent, agent.astream_resume(result.run_id, decision), quiet=quiet)
    return result


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
