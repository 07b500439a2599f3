"""The routing pack end to end on the embedded default model (Qwen2.5-Coder-0.5B): a plain-English request with
four stores is extracted by the model passage by passage (self-consistency over K samples of each), solved,
verified and drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.config import load_settings
from longthink.domains.routing import RoutingProblem, verify

pytestmark = pytest.mark.real_model

REQUEST = (
    "We run 2 trucks, each carrying up to 60 units, out of our Lyon depot at (50, 50). "
    "Store 1 at (20, 80) needs 25 units. Store 2 at (80, 75) needs 30 units. "
    "Store 3 at (70, 20) needs 15 units. Store 4 at (30, 30) needs 20 units. Minimise the total distance."
)


def test_plain_english_request_on_the_embedded_model(tmp_path: Path) -> None:
    settings = load_settings(n_threads=1, db_url=f"sqlite:///{tmp_path / 'runs.db'}")
    options = AgentOptions(domain="routing", seed=0, artifacts_dir=str(tmp_path / "artifacts"))
    agent = Agent(settings=settings, options=options, checkpoints=None)
    try:
        result = agent.solve(REQUEST, run_id="routing-real")
    finally:
        agent.close()
    assert result.status == "done", result.justification
    extract = result.steps["extract"]
    assert extract.data["extraction"]["method"] == "passages", extract.reason  # the fleet and 4 stores
    problem = RoutingProblem.model_validate(extract.data["problem"])
    assert {c.id: c.demand for c in problem.customers} == {1: 25, 2: 30, 3: 15, 4: 20}, extract.reason
    assert (problem.depot.x, problem.depot.y, problem.fleet.vehicles, problem.fleet.capacity) == (50, 50, 2, 60)
    assert result.steps["verify"].verified, result.steps["verify"].reason
    routes = [r["stops"] for r in result.steps["report"].data["routes"]]
    assert verify(problem, routes).feasible
    [plot] = result.artifacts
    assert Path(plot).is_file() and Path(plot).stat().st_size > 1000
    assert result.answer is not None and "Total distance" in result.answer
