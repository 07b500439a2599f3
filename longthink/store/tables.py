"""The store's schema: the SQLAlchemy 2.0 models of every table and their ``Table`` objects.

Runs, plans, steps and tool calls are tied by foreign keys; the high-volume, append-only tables (events,
candidates, scores, budget snapshots) have none (see :mod:`longthink.store.sql`). The Alembic revisions in
``migrations/`` create these tables (never ``create_all`` in product code) and autogenerate compares against
``Base.metadata``. This module imports nothing else of the store, so :mod:`longthink.store.sql` and the migrations
both read it without importing each other.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
JSONType = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
Json = dict[str, Any]


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("runs.id", ondelete="CASCADE")


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(32), index=True)
    request: Mapped[str | None] = mapped_column(sa.Text)
    answer: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    plan_id: Mapped[str | None] = mapped_column(sa.String)
    meta: Mapped[Json | None] = mapped_column(JSONType)
    spend: Mapped[Json | None] = mapped_column(JSONType)
    created_at: Mapped[float] = mapped_column(sa.Double, index=True)
    finished_at: Mapped[float | None] = mapped_column(sa.Double)


class PlanRow(Base):
    __tablename__ = "plans"

    run_id: Mapped[str] = mapped_column(sa.String, _run_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    plan: Mapped[Json | None] = mapped_column(JSONType)
    score: Mapped[float | None] = mapped_column(sa.Double)
    selected: Mapped[bool] = mapped_column(sa.Boolean)
    created_at: Mapped[float] = mapped_column(sa.Double)


class StepRow(Base):
    __tablename__ = "steps"

    run_id: Mapped[str] = mapped_column(sa.String, _run_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    plan_id: Mapped[str | None] = mapped_column(sa.String)
    problem_id: Mapped[str | None] = mapped_column(sa.String)
    goal: Mapped[str | None] = mapped_column(sa.Text)
    kind: Mapped[str | None] = mapped_column(sa.String)
    strategy: Mapped[str | None] = mapped_column(sa.String)
    status: Mapped[str] = mapped_column(sa.String(32))
    prompt: Mapped[list[Json] | None] = mapped_column(JSONType)
    depends_on: Mapped[list[str] | None] = mapped_column(JSONType)
    answer: Mapped[str | None] = mapped_column(sa.Text)
    chosen_id: Mapped[str | None] = mapped_column(sa.String)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    stopped: Mapped[str | None] = mapped_column(sa.String)
    verified: Mapped[bool | None] = mapped_column(sa.Boolean)
    error: Mapped[str | None] = mapped_column(sa.Text)
    spend: Mapped[Json | None] = mapped_column(JSONType)
    votes: Mapped[Json | None] = mapped_column(JSONType)
    started_at: Mapped[float] = mapped_column(sa.Double)
    finished_at: Mapped[float | None] = mapped_column(sa.Double)


class CandidateRow(Base):
    __tablename__ = "candidates"
    __table_args__ = (sa.Index(None, "run_id", "step_id"),)

    run_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    step_id: Mapped[str | None] = mapped_column(sa.String)
    problem_id: Mapped[str | None] = mapped_column(sa.String)
    index: Mapped[int] = mapped_column(sa.Integer)
    text: Mapped[str] = mapped_column(sa.Text)
    reasoning: Mapped[str | None] = mapped_column(sa.Text)
    answer: Mapped[str | None] = mapped_column(sa.Text)
    parse_error: Mapped[str | None] = mapped_column(sa.Text)
    finish_reason: Mapped[str | None] = mapped_column(sa.String(32))
    prompt_tokens: Mapped[int] = mapped_column(sa.Integer)
    completion_tokens: Mapped[int] = mapped_column(sa.Integer)
    latency_s: Mapped[float | None] = mapped_column(sa.Double)
    model: Mapped[str | None] = mapped_column(sa.String)
    prompt_hash: Mapped[str | None] = mapped_column(sa.String(64))
    seed: Mapped[int | None] = mapped_column(sa.BigInteger)
    parent_id: Mapped[str | None] = mapped_column(sa.String)
    depth: Mapped[int] = mapped_column(sa.Integer)
    mean_logprob: Mapped[float | None] = mapped_column(sa.Double)
    partial: Mapped[bool] = mapped_column(sa.Boolean)
    created_at: Mapped[float] = mapped_column(sa.Double)


class ScoreRow(Base):
    __tablename__ = "scores"

    run_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    candidate_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    scorer: Mapped[str] = mapped_column(sa.String, primary_key=True)
    value: Mapped[float | None] = mapped_column(sa.Double)
    steps: Mapped[list[float | None]] = mapped_column(JSONType)
    rationale: Mapped[str] = mapped_column(sa.Text)
    step_id: Mapped[str | None] = mapped_column(sa.String)
    created_at: Mapped[float] = mapped_column(sa.Double)


class ToolCallRow(Base):
    __tablename__ = "tool_calls"

    run_id: Mapped[str] = mapped_column(sa.String, _run_fk(), primary_key=True)
    id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    step_id: Mapped[str | None] = mapped_column(sa.String)
    tool: Mapped[str] = mapped_column(sa.String)
    args: Mapped[Json | None] = mapped_column(JSONType)
    result: Mapped[Any] = mapped_column(JSONType, nullable=True)
    error: Mapped[str | None] = mapped_column(sa.Text)
    latency_s: Mapped[float | None] = mapped_column(sa.Double)
    created_at: Mapped[float] = mapped_column(sa.Double)


class EventRow(Base):
    """The raw event log; the primary key ``(run_id, seq)`` makes appending idempotent."""

    __tablename__ = "events"

    run_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    ts: Mapped[float] = mapped_column(sa.Double)
    step_id: Mapped[str | None] = mapped_column(sa.String)
    data: Mapped[Json | None] = mapped_column(JSONType)


class BudgetRow(Base):
    __tablename__ = "budgets"

    run_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    step_id: Mapped[str | None] = mapped_column(sa.String)
    ts: Mapped[float | None] = mapped_column(sa.Double)
    prompt_tokens: Mapped[int] = mapped_column(sa.BigInteger)
    completion_tokens: Mapped[int] = mapped_column(sa.BigInteger)
    samples: Mapped[int] = mapped_column(sa.BigInteger)
    requests: Mapped[int] = mapped_column(sa.BigInteger)
    cost: Mapped[float | None] = mapped_column(sa.Double)
    exhausted: Mapped[bool] = mapped_column(sa.Boolean)


_T = Base.metadata.tables
RUNS, PLANS, STEPS, CANDIDATES = _T["runs"], _T["plans"], _T["steps"], _T["candidates"]
SCORES, TOOL_CALLS, EVENTS, BUDGETS = _T["scores"], _T["tool_calls"], _T["events"], _T["budgets"]

__all__ = [
    "BUDGETS",
    "CANDIDATES",
    "EVENTS",
    "PLANS",
    "RUNS",
    "SCORES",
    "STEPS",
    "TOOL_CALLS",
    "Base",
    "BudgetRow",
    "CandidateRow",
    "EventRow",
    "PlanRow",
    "RunRow",
    "ScoreRow",
    "StepRow",
    "ToolCallRow",
]
