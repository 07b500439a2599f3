"""``longthink chat``: a chat session over the Agent API.

Commands: ``/approve on|off`` (ask before executing plans), ``/approve`` ``/edit`` ``/reject [feedback]`` (answer a
waiting plan), ``/answer ...`` and ``/defaults`` (answer the questions of a run that waits for facts its request
lacks; a plain message answers them too), ``/strategy NAME``, ``/budget N``, ``/domain NAME``, ``/history``,
``/help``, ``/quit``.
Earlier turns are given to later requests as context. Input history is kept between sessions (readline, in the
user data directory).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from longthink.errors import LongthinkError

HELP = """commands:
  /approve on|off      ask me to approve each plan before it runs (now: {approve})
  /approve             approve the waiting plan        /reject [feedback]  reject it (re-plan with feedback)
  /edit                replace the waiting plan (one step per line, empty line ends)
  /answer A; B         answer the waiting questions in order (or "id: text; id: text"; a message works too)
  /defaults            take every question's default (the plan labels it as an assumption)
  /strategy NAME       strategy for every step (auto, cot, self_consistency, best_of_n, adaptive, ...)
  /budget N            generated-token budget per request (now: {budget})
  /domain NAME         a domain pack (routing, debugging, business_plan), general, or auto (now: {domain})
  /history             this session's requests and answers
  /quit                leave"""


def _history_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("longthink")) / "chat_history"


class ChatSession:
    def __init__(self, agent: Any, console: Console) -> None:
        self.agent = agent
        self.console = console
        self.turns: list[tuple[str, str | None]] = []
        self.pending: Any = None

    # -- input --------------------------------------------------------------------------------------------
    def _setup_history(self) -> None:
        with contextlib.suppress(ImportError, OSError):
            import readline

            path = _history_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                readline.read_history_file(path)
            readline.set_history_length(1000)
            import atexit

            atexit.register(readline.write_history_file, path)

    def loop(self) -> None:
        self._setup_history()
        self.console.print("[bold]longthink chat[/bold] — type a request, /help for commands")
        try:
            while True:
                try:
                    line = input("waiting> " if self.pending else "you> ").strip()
                except EOFError:
                    break
                if not line:
                    continue
                if line.startswith("/"):
                    if not self.command(line):
                        break
                    continue
                self.ask(line)
        finally:
            self.agent.close()
            self.console.print("bye")

    # -- commands -----------------------------------------------------------------------------------------
    def command(self, line: str) -> bool:
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        opts = self.agent.options
        if name in ("/quit", "/exit"):
            return False
        if name == "/help":
            self.console.print(
                HELP.format(approve=opts.approve_plan, budget=opts.budget_tokens, domain=opts.domain or "auto"),
                markup=False,
                highlight=False,
            )
        elif name == "/approve" and arg in ("on", "off"):
            self._set(approve_plan=arg == "on")
            self.console.print(f"plan approval {arg}")
        elif name == "/approve":
            self._decide({"action": "approve"})
        elif name == "/reject":
            self._decide({"action": "reject", "feedback": arg})
        elif name == "/edit":
            from longthink.cli.dialogue import read_steps

            self._decide({"action": "edit", "plan": read_steps()})
        elif name == "/answer":
            self._answer(arg)
        elif name == "/defaults":
            self._decide({"action": "defaults"}, kind="awaiting_input")
        elif name == "/strategy" and arg:
            self._set(strategy=arg)
            self.console.print(f"strategy: {escape(arg)}")
        elif name == "/budget" and arg.isdigit():
            self._set(budget_tokens=int(arg))
            self.console.print(f"budget: {arg} tokens")
        elif name == "/domain" and arg:
            try:
                self.agent.domains.resolve(arg, "")
            except LongthinkError as exc:
                self.console.print(f"[red]error:[/red] {escape(str(exc))}")
            else:
                self._set(domain=None if arg.lower() == "auto" else arg)
                self.console.print(f"domain: {escape(arg)}")
        elif name == "/history":
            for i, (q, a) in enumerate(self.turns, 1):
                self.console.print(f"{i}. {escape(q)}\n   -> {escape(str(a))}")
            if not self.turns:
                self.console.print("(no turns yet)")
        else:
            self.console.print(f"unknown command {escape(line)}; /help lists them")
        return True

    def _set(self, **changes: Any) -> None:
        try:
            self.agent.options = dataclasses.replace(self.agent.options, **changes)
        except LongthinkError as exc:
            self.console.print(f"[red]error:[/red] {escape(str(exc))}")

    # -- running ------------------------------------------------------------------------------------------
    def _context(self, request: str) -> str:
        if not self.turns:
            return request
        earlier = "\n".join(f"Q: {q}\nA: {a}" for q, a in self.turns[-3:])
        return f"Earlier in this conversation:\n{earlier}\n\nNow: {request}"

    def ask(self, request: str) -> None:
        if self.pending is not None and self.pending[2] == "awaiting_input":
            self._answer(request)  # a message while questions wait answers them
            return
        if self.pending is not None:
            self.console.print("a plan is waiting: /approve, /edit or /reject it first")
            return
        from longthink.cli.dialogue import run_streamed

        try:
            result = run_streamed(self.agent, self.agent.astream(self._context(request)), quiet=False, ui=self.console)
        except LongthinkError as exc:
            self.console.print(f"[red]error:[/red] {escape(str(exc))}")
            return
        self._after(request, result)

    def _answer(self, text: str) -> None:
        """Answers to the waiting questions, from one line (see :func:`~longthink.cli.dialogue.parse_answers`)."""
        if self.pending is None or self.pending[2] != "awaiting_input":
            self.console.print("no question is waiting")
            return
        from longthink.cli.dialogue import parse_answers

        answers = parse_answers(text, self.pending[3])
        decision = {"action": "answer", "answers": answers} if answers else {"action": "defaults"}
        self._decide(decision, kind="awaiting_input")

    def _decide(self, decision: dict[str, Any], kind: str = "awaiting_approval") -> None:
        if self.pending is None or self.pending[2] != kind:
            self.console.print("no plan is waiting" if kind == "awaiting_approval" else "no question is waiting")
            return
        from longthink.cli.dialogue import run_streamed

        request, run_id = self.pending[:2]
        self.pending = None
        try:
            result = run_streamed(self.agent, self.agent.astream_resume(run_id, decision), quiet=False, ui=self.console)
        except LongthinkError as exc:
            self.console.print(f"[red]error:[/red] {escape(str(exc))}")
            return
        self._after(request, result)

    def _after(self, request: str, result: Any) -> None:
        from longthink.cli.render import plan_tree

        if result.status == "awaiting_input":
            self.pending = (request, result.run_id, result.status, result.questions)
            if (result.pending or {}).get("error"):
                self.console.print(f"[red]asked again[/red]: {escape(str(result.pending['error']))}")
            self.console.print("[bold]the request does not state facts the plan needs[/bold]; answer them in order "
                               "(separated by ';'), or /defaults to take the defaults as assumptions:")  # fmt: skip
            for i, q in enumerate(result.questions, 1):
                self.console.print(f"  {i}. {escape(q.text)} [dim](default: {escape(q.default)})[/dim]")
            return
        if result.status == "awaiting_approval":
            self.pending = (request, result.run_id, result.status, [])
            plan = (result.pending or {}).get("plan", {})
            self.console.print(plan_tree(plan, "proposed plan: /approve, /edit or /reject [feedback]"))
            if (result.pending or {}).get("error"):
                self.console.print(f"[red]edit refused[/red]: {escape(str(result.pending['error']))}")
            return
        self.turns.append((request, result.answer))
        self.console.rule("answer")
        self.console.print(escape(str(result.answer)) if result.answer is not None else "[red]no answer[/red]")
        if result.status == "unverified":  # answered, but nothing that could have failed it checked it
            self.console.print(f"[yellow]unverified[/yellow]: {escape(result.reason)}")
        spent = result.spend.completion_tokens
        self.console.print(f"[dim]run {result.run_id} · {result.status} · {spent:g} tokens[/dim]")
