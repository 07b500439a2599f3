"""The graph's state: JSON-able values only, so any LangGraph checkpointer can persist it."""

from __future__ import annotations

import operator
from typing import Annotated, Any, NotRequired, TypedDict

from longthink.budget import Spend


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for step results written by concurrent steps: later writes of a key win."""
    out = dict(left or {})
    out.update(right or {})
    return out


def add_spend(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer for what the run spent: each node adds what its own (child) budget spent, so the total survives
    interrupts, approvals, crashes and resumes (it lives in the checkpoint, not in a process)."""
    return (Spend.of(left) + Spend.of(right)).as_dict()


class AgentState(TypedDict, total=False):
    request: str  # with the facts the run asked for added (clarify), as every later node sees it
    run_id: str
    domain: str
    answer_kind: str
    plan: dict[str, Any]
    results: Annotated[dict[str, Any], merge]
    failures: Annotated[list[dict[str, Any]], operator.add]
    replans: int
    answer: str | None
    justification: str
    status: str
    status_reason: str  # why the final status: what verified the answer, or why nothing could
    spend: Annotated[dict[str, Any], add_spend]
    ask_missing: bool  # the run's AgentOptions.ask_missing (whoever resumes it)
    approve_plan: bool  # the run's AgentOptions.approve_plan (whoever resumes it)
    clarified: bool  # the missing facts were asked for (or assumed): never asked again
    clarify_error: str | None  # why the last answers were not enough: asked again


class StepTask(TypedDict):
    """What one concurrent step execution receives (a LangGraph ``Send`` payload)."""

    request: str
    run_id: str
    step: dict[str, Any]
    inputs: dict[str, str]
    steps_left: int
    domain: NotRequired[str]
    dep_results: NotRequired[dict[str, Any]]  # the dependencies' full outputs (domain steps read their data)
