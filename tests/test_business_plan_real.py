"""The business_plan pack end to end on the embedded default model (Qwen2.5-Coder-0.5B), small budgets: a
sectioned Markdown document with the tool's table, written to a file and recorded in the database."""

from __future__ import annotations

import dataclasses
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.config import load_settings
from longthink.domains.business_plan.model import Projection
from longthink.domains.business_plan.pipeline import BusinessPlanPipeline
from longthink.domains.registry import DomainRegistry, get
from longthink.store import open_store

pytestmark = [pytest.mark.real_model, pytest.mark.slow]
REQUEST = "a business plan to grow our bakery chain's profit by 10% next year"
SMALL = BusinessPlanPipeline(n=2, options_k=2, extract_n=2, section_tokens=96, json_tokens=120, request_chars=400)


def _money(cell: str) -> Decimal:
    return Decimal(cell.strip().replace("$", "").replace(",", ""))


def test_bakery_business_plan_on_the_embedded_model(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    registry = DomainRegistry([dataclasses.replace(get("business_plan"), pipeline=SMALL)])
    agent = Agent(
        settings=load_settings(n_threads=1, db_url=db),
        options=AgentOptions(domain="business_plan", budget_tokens=None, seed=0, artifacts_dir=str(tmp_path / "a")),
        checkpoints=str(tmp_path / "ck"),
        domains=registry,
    )
    start = time.perf_counter()
    try:
        result = agent.solve(REQUEST, run_id="bp-real")
    finally:
        agent.close()
    elapsed = time.perf_counter() - start
    doc = result.answer or ""
    assert result.status in ("done", "partial"), result.justification
    for heading in (
        "Situation",
        "Market and competitors",
        "Options considered",
        "Chosen strategy",
        "Financial projection",
        "Risks and mitigations",
        "Milestones",
    ):
        assert re.search(rf"^## \d\. {heading}$", doc, re.M), heading
    # the table is the tool's, recomputed from the validated assumptions, and every column adds up
    table = Projection.from_json(result.steps["projection"].data["table"])
    assert table.markdown() in doc
    rows = {line.split("|")[1].strip(" *"): line.split("|")[2:-1] for line in table.markdown().splitlines()[2:]}
    for col in range(len(table.rows)):
        revenue, total, profit = (_money(rows[k][col]) for k in ("Revenue", "Total costs", "Profit"))
        assert profit == revenue - total
    assert "Number check:" in doc  # the whole-document verdict is reported either way
    [path] = result.steps["document"].artifacts
    assert Path(path).read_text() == doc
    store = open_store(db)
    try:
        detail = store.get_run("bp-real")
    finally:
        store.close()
    assert detail is not None and detail.run.answer == doc
    assert {s.scorer for s in detail.scores} >= {"rubric_judge", "numbers"}
    print(
        f"\nbusiness plan on the embedded model: {elapsed:.1f}s, {len(detail.candidates)} candidates, "
        f"{result.steps['document']['reason'][:200]}"
    )
