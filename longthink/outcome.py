"""One status vocabulary and one typed outcome for every kind of plan step (strategy, tool, domain).

The API (:class:`~longthink.api.RunResult`), the CLI and the store all speak :data:`Status`; a step's outcome
travels in the graph's state and checkpoint as JSON (``model_dump``) and back as a :class:`StepOutcome`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from longthink.budget import Spend

#: Where a run or a step stands. Runs: running -> (awaiting_input ->) (awaiting_approval ->) done | unverified |
#: partial | failed | rejected, or interrupted (killed or stopped by an exception; resumable); awaiting_input: the run
#: asks for facts its request lacks, before planning. ``done`` means the answer passed a check that could have failed
#: it (programs that executed to the same value, a tool's result, tests, a domain verifier, a judge model's verdict);
#: ``unverified``: an answer no such check passed (only the policy model's own confidence stood behind it), with the
#: reason; ``partial``: a step failed its check or produced nothing. Steps: running -> done (answer, verified) |
#: unverified (answer, no check could fail it) | partial (answer that failed its check) | failed (no answer).
Status = Literal[
    "running",
    "awaiting_input",
    "awaiting_approval",
    "interrupted",
    "done",
    "unverified",
    "partial",
    "failed",
    "rejected",
]
FINAL_STATUSES: frozenset[str] = frozenset({"done", "unverified", "partial", "failed", "rejected"})

StepKind = Literal["strategy", "tool", "domain", "plan", "answer"]


class StepOutcome(BaseModel):
    """What one plan step produced, whatever ran it.

    ``answer``: the short result (None when the step failed); ``text``: the full text (a reasoning, a section, a
    diff, a tool's output); ``verified`` and ``reason``: the verifier's verdict (True only when a check that could
    have failed the answer passed it); ``unchecked``: the answer stands although no such check ran (self-certainty
    alone, one program with nothing to agree with) — the step is settled, not re-planned, and reported
    ``unverified``; ``accepted``: a failed step the
    agent accepted as failed (no more re-planning); ``data``: JSON-able values a domain pack passes to the steps
    that depend on this one; ``artifacts``: files written.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    step_id: str
    goal: str = ""
    kind: StepKind = "strategy"
    strategy: str = ""
    answer: str | None = None
    text: str = ""
    verified: bool = False
    unchecked: bool = False
    accepted: bool = False
    reason: str = ""
    candidates: int = 0
    chosen: str | None = None
    votes: dict[str, float] = Field(default_factory=dict)
    stopped: str | None = None
    spend: Spend = Field(default_factory=Spend)
    data: dict[str, Any] = Field(default_factory=dict)
    artifacts: list[str] = Field(default_factory=list)

    @property
    def status(self) -> Status:
        """done (an answer that passed verification), unverified (an answer no check could fail), partial (an answer
        that failed its check), failed (no answer)."""
        if self.answer is None:
            return "failed"
        if self.verified:
            return "done"
        return "unverified" if self.unchecked else "partial"

    @property
    def settled(self) -> bool:
        """The step needs no more work: verified, standing unchecked (nothing could fail it, so re-planning would
        not help), or accepted as failed."""
        return self.verified or (self.unchecked and self.answer is not None) or self.accepted

    def accept(self, reason: str | None = None) -> StepOutcome:
        """This outcome accepted as failed (the agent stops re-planning it)."""
        return self.model_copy(update={"accepted": True, **({"reason": reason} if reason is not None else {})})

    @classmethod
    def load(cls, value: StepOutcome | Mapping[str, Any]) -> StepOutcome:
        """From the graph state's JSON form (or an outcome already)."""
        return value if isinstance(value, StepOutcome) else cls.model_validate(dict(value))


def outcomes(results: Mapping[str, Any] | None) -> dict[str, StepOutcome]:
    """The graph state's ``results`` (step id -> JSON) as typed outcomes."""
    return {sid: StepOutcome.load(v) for sid, v in (results or {}).items()}


__all__ = ["FINAL_STATUSES", "Status", "StepKind", "StepOutcome", "outcomes"]
