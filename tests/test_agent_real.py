"""End to end on the embedded default model (Qwen2.5-Coder-0.5B): a multi-step request is planned, every step
is searched, an answer is produced, and everything is in the database."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.config import load_settings
from longthink.store import open_store

pytestmark = pytest.mark.real_model
REQUEST = "A bakery sells 120 loaves a day at $3 each and 40 cakes at $12 each. What is its daily revenue?"


def test_multi_step_request_on_the_embedded_model(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    settings = load_settings(n_threads=1, db_url=db)
    agent = Agent(settings=settings, options=AgentOptions(budget_tokens=4000, seed=0), checkpoints=str(tmp_path / "ck"))
    start = time.perf_counter()
    try:
        result = agent.solve(REQUEST, run_id="real-1")
    finally:
        agent.close()
    elapsed = time.perf_counter() - start
    assert result.plan is not None and len(result.plan.steps) >= 2, result.plan
    assert result.answer, result
    assert result.status in ("done", "unverified", "partial")
    for step in result.plan.steps:
        outcome = result.steps[step.id]
        assert outcome.candidates >= 1 and outcome.strategy, outcome
    assert result.spend.completion_tokens <= 4000 + 3 * 320  # one global budget (+ at most one request)

    store = open_store(db)
    try:
        detail = store.get_run("real-1")
    finally:
        store.close()
    assert detail is not None
    assert detail.run.answer == result.answer
    assert {s.id for s in detail.steps} >= {s.id for s in result.plan.steps}
    stepped = {c.step_id for c in detail.candidates}
    assert {s.id for s in result.plan.steps} <= stepped and "plan" in stepped
    assert detail.scores and detail.plans
    print(
        f"\n{len(result.plan.steps)}-step plan on the embedded model: {elapsed:.1f}s, {len(detail.candidates)} candidates"
    )
