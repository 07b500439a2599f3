"""Store conformance with the real agent: the real ``Agent`` (test doubles for the model) runs general plans,
approvals and each domain pack against the in-memory reference, a SQLite file and the real PostgreSQL server;
every stored status equals the ``RunResult``, and each backend holds the same rows as the reference fed the same
events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_agent as general
import test_business_plan as business
import test_debugging as debugging
import test_domain_pipeline as tally
import test_routing_pipeline as routing
from test_run_record import assert_record_matches

from longthink.agents import AgentOptions
from longthink.api import Agent, RunResult
from longthink.store import MemoryStore, SqlStore, Store
from longthink.testing import FunctionLLM


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        s: Store = MemoryStore()
    elif request.param == "sqlite":
        s = SqlStore(f"sqlite:///{tmp_path / 'runs.db'}")
    else:
        s = SqlStore(str(request.getfixturevalue("pg_url")))
    yield s
    s.close()


def _general(tmp_path: Path) -> Agent:
    return general.make_agent()


def _tools(tmp_path: Path) -> Agent:
    return Agent(llm=FunctionLLM(general.reply), options=AgentOptions(max_replans=1), checkpoints=None, store=None,
                 verifier=lambda step, res: (step.id != "s2", "s2 never checks out"))  # fmt: skip


SCENARIOS: dict[str, tuple[Callable[[Path], Agent], str, str]] = {  # builder, request, the run's expected status
    "general": (_general, general.REQUEST, "unverified"),  # self-certainty alone verifies nothing
    "replanned": (_tools, general.REQUEST, "partial"),  # s2 never verifies: re-planned, then accepted as failed
    "tally-failed": (lambda p: tally.agent(tally.TallyPipeline(fail_report=True), p), tally.REQUEST, "failed"),
    "routing": (lambda p: routing.routing_agent(routing.extractor(routing.extraction()), p), routing.REQUEST, "done"),
    "business_plan": (lambda p: business.make_agent(p), business.STATED, "done"),
    "debugging": (lambda p: debugging.debug_agent(debugging.fixer, p), debugging.REQUEST, "done"),
}


async def _run(agent: Agent, store: Store, request: str, run_id: str) -> RunResult:
    agent.store = store
    return await agent.asolve(request, run_id=run_id)


def _same_as_reference(store: Store, run_id: str) -> None:
    ref = MemoryStore()
    ref.apply(store.events(run_id))
    assert store.get_run(run_id) == ref.get_run(run_id)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_every_stored_status_equals_the_run_result(scenario: str, store: Store, tmp_path: Path) -> None:
    build, request, expected = SCENARIOS[scenario]
    result = await _run(build(tmp_path), store, request, f"conf-{scenario}")
    assert result.status == expected and result.steps, result.justification
    assert_record_matches(store, result)
    _same_as_reference(store, result.run_id)


Step = Callable[[Agent, RunResult], Awaitable[RunResult]]


async def _approve(agent: Agent, r: RunResult) -> RunResult:
    return await agent.aresume(r.run_id, {"action": "approve"})


async def _reject(agent: Agent, r: RunResult) -> RunResult:
    return await agent.aresume(r.run_id, {"action": "reject"})


async def _bad_edit_then_approve(agent: Agent, r: RunResult) -> RunResult:
    bad = await agent.aresume(r.run_id, {"action": "edit", "plan": {"steps": []}})
    assert bad.status == "awaiting_approval" and bad.pending and bad.pending["error"]
    assert_record_matches(agent.store, bad)
    return await _approve(agent, bad)


async def test_questions_are_recorded_as_the_api_reports_them(store: Store, tmp_path: Path) -> None:
    """A business plan without its baseline waits for answers (awaiting_input, in the store too), is asked again
    for an answer it cannot read, then runs with the answers."""
    agent = business.make_agent(tmp_path, ask_missing=True)
    agent.store = store
    waiting = await agent.asolve(business.REQUEST, run_id="conf-questions")
    assert waiting.status == "awaiting_input" and [q.id for q in waiting.questions] == ["yearly_revenue", "profit"]
    assert_record_matches(store, waiting)
    again = await agent.aresume(waiting.run_id, {"action": "answer", "answers": {"yearly_revenue": "lots"}})
    assert again.status == "awaiting_input" and again.pending and again.pending["error"]
    assert_record_matches(store, again)
    answers = {"yearly_revenue": "$2,000,000", "profit": "$200,000"}
    final = await agent.aresume(waiting.run_id, {"action": "answer", "answers": answers})
    assert final.status == "done", final.justification
    assert "| **Profit** | $200,000 |" in (final.answer or "")  # the table starts from the user's figures
    assert_record_matches(store, final)
    _same_as_reference(store, final.run_id)


@pytest.mark.parametrize("decide", [_approve, _reject, _bad_edit_then_approve], ids=lambda f: f.__name__.strip("_"))
async def test_approvals_are_recorded_as_the_api_reports_them(decide: Any, store: Store) -> None:
    agent = general.make_agent(approve_plan=True)
    agent.store = store
    waiting = await agent.asolve(general.REQUEST, run_id="conf-approval")
    assert waiting.status == "awaiting_approval"
    assert_record_matches(store, waiting)
    final = await decide(agent, waiting)
    assert final.status == ("rejected" if decide is _reject else "unverified")  # text mode: self-certainty alone
    assert_record_matches(store, final)
    _same_as_reference(store, final.run_id)
