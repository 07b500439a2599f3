"""How a domain pack runs its own typed plan inside the agent graph.

A pack with a :class:`DomainPipeline` replaces the model-written plan with the domain's plan (for routing:
extract -> solve -> verify -> report). The agent graph still runs it: steps fan out by their dependencies,
each step runs under its share of the one run budget, its candidates, scores, tool calls and events go to the
run's trace, plan approval and durable resume work as for any plan. The pack only says what each step does:

- :meth:`DomainPipeline.plan` — the typed plan for a request (steps with ids, goals, dependencies, ``kind``);
- :meth:`DomainPipeline.run_step` — one step, given a :class:`StepContext` (the step, its dependencies'
  outputs, a :class:`~longthink.search.context.SearchContext` bound to the step and its budget share, the
  tools, a directory for files); it returns a :class:`StepOutput`;
- :meth:`DomainPipeline.synthesize` — the final answer (a document, routes, a diff) from the step outputs;
- optionally ``questions(request)`` — the facts the request lacks and the plan needs (a :class:`Question` each:
  id, text, the stated default, why it matters), asked before planning. The agent interrupts with them when
  ``AgentOptions.ask_missing`` is on (the run is ``awaiting_input`` until answered); the answers, or the defaults
  labelled as assumptions, are added to the request the pipeline sees (:func:`add_facts`). A pipeline without
  the method is never asked.

Step outputs travel between steps and into the checkpoint as JSON: ``data`` must be JSON-able.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from longthink.events import Event, Question
from longthink.outcome import StepOutcome
from longthink.planners.plan import Plan, PlanStep
from longthink.search.context import SearchContext
from longthink.tools.base import ToolRegistry

_FILE = re.compile(r"^File `([^`\n]+)`:\n(`{3,})[^\n]*\n(.*?)\n\2[ \t]*$", re.M | re.S)


def attach_files(request: str, files: Mapping[str, str]) -> str:
    """``request`` followed by each file as a fenced block headed ``File `NAME`:`` (how the CLI's ``--file``
    passes code, tests, instances or tables to a pack; :func:`attached_files` reads them back)."""
    parts = [request.rstrip()]
    for name, content in files.items():
        fence = "```"
        while fence in content:
            fence += "`"
        parts.append(f"File `{name}`:\n{fence}\n{content.rstrip(chr(10))}\n{fence}")
    return "\n\n".join(parts)


def attached_files(request: str) -> dict[str, str]:
    """The files attached to ``request`` by :func:`attach_files`, by name, in order."""
    return {m.group(1): m.group(3) for m in _FILE.finditer(request)}


def request_text(request: str) -> str:
    """``request`` without its attached files."""
    return _FILE.sub("", request).strip()


FACTS_HEADER = "Facts from the user:"
"""Heads the answers a person gave to a run's questions, where :func:`add_facts` adds them to the request."""
ASSUMED_HEADER = "Assumed (not stated; illustrative):"
"""Heads the defaults used for questions nobody answered: assumptions, never facts about the user's case."""
_FACTS = re.compile(rf"^({re.escape(FACTS_HEADER)}|{re.escape(ASSUMED_HEADER)})[ \t]*\n((?:- [^\n]*(?:\n|$))+)", re.M)
_FACT_LINE = re.compile(r"^- ([^:\n]{1,80}): (.*)$", re.M)


@dataclass(frozen=True, slots=True)
class Fact:
    """One line :func:`add_facts` added to a request: ``label: value``, ``assumed`` when it is a default nobody
    stated. ``start``/``end``: where the value stands in the request."""

    label: str
    value: str
    assumed: bool
    start: int
    end: int


def add_facts(request: str, facts: Mapping[str, str], *, assumed: bool = False) -> str:
    """``request`` followed by ``facts`` (label -> value), one ``- label: value`` line each, under
    :data:`FACTS_HEADER` (a person's answers) or, with ``assumed``, :data:`ASSUMED_HEADER` (defaults nobody stated,
    which a pack must present as assumptions); :func:`added_facts` reads them back."""
    if not facts:
        return request
    header = ASSUMED_HEADER if assumed else FACTS_HEADER
    lines = "\n".join(f"- {' '.join(label.split())}: {' '.join(value.split())}" for label, value in facts.items())
    return f"{request.rstrip()}\n\n{header}\n{lines}"


def added_facts(request: str) -> list[Fact]:
    """The facts :func:`add_facts` added to ``request``, in order."""
    out = []
    for block in _FACTS.finditer(request):
        assumed = block.group(1) == ASSUMED_HEADER
        for line in _FACT_LINE.finditer(block.group(2)):
            offset = block.start(2)
            out.append(Fact(line.group(1).strip(), line.group(2).strip(), assumed, offset + line.start(2),
                            offset + line.end(2)))  # fmt: skip
    return out


def without_facts(request: str) -> str:
    """``request`` without the facts :func:`add_facts` added (the user's own words, and any attached files)."""
    return _FACTS.sub("", request).strip()


@dataclass(frozen=True, slots=True)
class StepOutput:
    """What a domain step produced.

    ``answer``: the short result shown in the plan tree (None when the step failed); ``text``: the full text
    (a document section, a diff, a report); ``verified``: whether the domain's verifier accepted it, and
    ``reason`` why (or why not); ``data``: JSON-able values for the steps that depend on this one and for
    :meth:`DomainPipeline.synthesize`; ``artifacts``: files written (plots, documents), as paths.
    """

    answer: str | None
    text: str = ""
    verified: bool = False
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    artifacts: tuple[str, ...] = ()
    candidates: int = 0
    strategy: str = "domain"

    def outcome(self, step_id: str, goal: str = "") -> StepOutcome:
        """This output as the step's typed outcome (``data`` made JSON: it is checkpointed)."""
        return StepOutcome(
            step_id=step_id,
            goal=goal,
            kind="domain",
            strategy=self.strategy,
            answer=self.answer,
            text=self.text,
            verified=self.verified,
            reason=self.reason,
            candidates=self.candidates,
            stopped=None if self.answer is not None else "error",
            data=json.loads(json.dumps(dict(self.data), default=str)),
            artifacts=list(self.artifacts),
        )


@dataclass(frozen=True, slots=True)
class StepContext:
    """What one domain step gets.

    ``inputs`` maps each dependency's step id to its typed :class:`~longthink.outcome.StepOutcome` (``answer``,
    ``text``, ``verified``, ``reason``, ``data``, ``artifacts``, ...). ``search`` samples and scores under this
    step's budget share and records every candidate in the run's trace (``search.step_id`` is the step id).
    ``artifacts_dir`` is this run's directory for files; it is created on first use by :meth:`artifact_path`.
    """

    request: str
    run_id: str
    step: PlanStep
    inputs: Mapping[str, StepOutcome]
    search: SearchContext
    tools: ToolRegistry
    artifacts_dir: Path
    seed: int | None = None

    def input_data(self, step_id: str) -> Mapping[str, Any]:
        """The ``data`` of dependency ``step_id`` ({} when it produced none)."""
        out = self.inputs.get(step_id)
        return out.data if out is not None else {}

    def input_text(self, step_id: str) -> str:
        """The full text of dependency ``step_id`` ("" when it did not run)."""
        out = self.inputs.get(step_id)
        return out.text if out is not None else ""

    def artifact_path(self, name: str) -> Path:
        """A path for file ``name`` in this run's artifact directory (the directory is created)."""
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        return self.artifacts_dir / name

    def emit(self, event: Event) -> None:
        """An event in the run's stream (and store), tagged with this step's id."""
        self.search.emit(event)


@runtime_checkable
class DomainPipeline(Protocol):
    """A domain's own plan and step implementations (see the module docstring).

    A pipeline may also define ``questions(self, request: str) -> Sequence[Question]``: the facts ``request`` lacks
    that the plan needs (none when it states them). It is optional (looked up with ``getattr``), so it is not part
    of the protocol's required members; :class:`Questions` is its type."""

    def plan(self, request: str) -> Plan: ...

    async def run_step(self, ctx: StepContext) -> StepOutput: ...

    def synthesize(self, request: str, plan: Plan, results: Mapping[str, StepOutcome]) -> tuple[str | None, str]:
        """The final ``(answer, justification)`` from every step's typed outcome (as in :attr:`StepContext.inputs`)."""
        ...


class Questions(Protocol):
    """The optional ``DomainPipeline.questions``: what to ask before planning ``request`` (empty: nothing)."""

    def __call__(self, request: str) -> Sequence[Question]: ...


def questions_of(pipeline: DomainPipeline | None, request: str) -> list[Question]:
    """What ``pipeline`` asks before planning ``request`` (none when it has no ``questions`` method)."""
    ask: Questions | None = getattr(pipeline, "questions", None) if pipeline is not None else None
    return list(ask(request)) if callable(ask) else []


__all__ = [
    "ASSUMED_HEADER",
    "FACTS_HEADER",
    "DomainPipeline",
    "Fact",
    "Question",
    "Questions",
    "StepContext",
    "StepOutput",
    "add_facts",
    "added_facts",
    "attach_files",
    "attached_files",
    "questions_of",
    "request_text",
    "without_facts",
]
