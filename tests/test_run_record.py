"""Regression tests of issue 9's bugs: the SQL record agrees with the run (domain, tool and planning steps end,
a failed run is stored as failed), the budget survives approval, rejection, crashes and resumes, and a run's
result belongs to its own handle (no shared "last result" on the agent)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import test_domain_pipeline as tally
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longthink.agents import AgentOptions
from longthink.api import Agent, RunResult
from longthink.errors import BackendError
from longthink.llm.types import Completion, Message, SamplingParams
from longthink.outcome import FINAL_STATUSES
from longthink.store import MemoryStore, Store
from longthink.testing import FunctionLLM

CHAIN = {
    "steps": [
        {"id": "s1", "goal": "Count the loaves sold per day", "answer_kind": "number"},
        {"id": "s2", "goal": "Multiply loaves by price for revenue", "depends_on": ["s1"], "answer_kind": "number"},
    ]
}
REQUEST = "A bakery sells 120 loaves a day at $3 each. What is its daily revenue?"


def chain_reply(prompt: str, params: SamplingParams, index: int) -> str:
    if "careful planner" in prompt:
        return json.dumps(CHAIN)
    if "Your step: Count the loaves" in prompt:
        return "They sell 120 loaves a day, as the request says. Answer: 120"
    if "Your step: Multiply" in prompt:
        return "120 loaves times $3 each is 360 dollars. Answer: 360"
    return "Revenue is 120 * 3. Answer: 360"


def assert_record_matches(store: Store, result: RunResult) -> None:
    """Every stored status equals what the API reports: the run's, and each plan step's; no step of an ended run
    is left running."""
    detail = store.get_run(result.run_id)
    assert detail is not None, result.run_id
    assert (detail.run.status, detail.run.answer) == (result.status, result.answer)
    rows = {s.id: s for s in detail.steps}
    for sid, outcome in result.steps.items():
        assert sid in rows, f"step {sid} has no row"
        row = rows[sid]
        assert (row.status, row.answer, row.verified) == (outcome.status, outcome.answer, outcome.verified), sid
    if result.status in FINAL_STATUSES | {"awaiting_approval", "awaiting_input"}:
        assert [s.id for s in detail.steps if s.status == "running"] == []


# -- the record agrees with the run -----------------------------------------------------------------------------
async def test_domain_steps_end_in_the_store_and_a_failed_run_is_stored_failed(tmp_path: Path) -> None:
    a = tally.agent(tally.TallyPipeline(), tmp_path)
    ok = await a.asolve(tally.REQUEST, run_id="tally-ok")
    assert ok.status == "done"
    assert_record_matches(a.store, ok)
    b = tally.agent(tally.TallyPipeline(fail_report=True), tmp_path)
    failed = await b.asolve(tally.REQUEST, run_id="tally-failed")
    assert failed.status == "failed" and failed.steps["report"].status == "failed"
    assert_record_matches(b.store, failed)  # the answer event used to store "finished"


async def test_a_tool_step_and_the_planning_step_end_in_the_store() -> None:
    plan = {"steps": [{"id": "calc", "goal": "Multiply", "tool": "calculator", "tool_args": {"expression": "120*3"}},
                      {"id": "bad", "goal": "Run a shell", "tool": "shell", "depends_on": ["calc"]}]}  # fmt: skip
    llm = FunctionLLM(lambda p, s, i: json.dumps(plan) if "careful planner" in p else "Answer: 360")
    agent = Agent(llm=llm, options=AgentOptions(max_replans=0), store=MemoryStore(), checkpoints=None)
    result = await agent.asolve(REQUEST, run_id="tools")
    assert result.steps["calc"].status == "done" and result.steps["bad"].status == "failed"
    assert_record_matches(agent.store, result)
    detail = agent.store.get_run("tools")
    assert detail is not None and {s.id: s.status for s in detail.steps}["plan"] == "done"


class Broken(FunctionLLM):
    """A backend whose requests fail (a missing extra, a dead server): the run is stored as interrupted, with why."""

    async def _generate(self, prompts: Sequence[tuple[Message, ...]], params: SamplingParams) -> Any:
        raise ImportError("PyVRP is not installed: pip install 'longthink[routing]'")


async def test_a_run_that_raises_is_stored_interrupted_with_the_reason() -> None:
    agent = Agent(llm=Broken(chain_reply), options=AgentOptions(plan_candidates=1), store=MemoryStore(),
                  checkpoints=None)  # fmt: skip
    with pytest.raises(ImportError):
        await agent.asolve(REQUEST, run_id="broken")
    detail = agent.store.get_run("broken")
    assert detail is not None and detail.run.status == "interrupted"  # it used to stay "running"
    assert detail.run.error is not None and "longthink[routing]" in detail.run.error
    assert (await agent.astatus("broken")).status == "interrupted"  # the API and the record agree: resumable


# -- one result per run -------------------------------------------------------------------------------------
def adder(prompt: str, params: SamplingParams, index: int) -> str:
    n = int(re.findall(r"What is 7 plus (\d+)", prompt)[0])
    if "careful planner" in prompt:
        return json.dumps({"steps": [{"id": "s1", "goal": f"What is 7 plus {n}?", "answer_kind": "number"}]})
    return f"7 plus {n} is {7 + n}. Answer: {7 + n}"


async def test_twenty_concurrent_runs_on_one_agent_each_get_their_own_result() -> None:
    agent = Agent(llm=FunctionLLM(adder), options=AgentOptions(plan_candidates=1), store=MemoryStore(),
                  checkpoints=None)  # fmt: skip
    results = await asyncio.gather(*(agent.asolve(f"What is 7 plus {n}?", run_id=f"add-{n}") for n in range(20)))
    assert [r.run_id for r in results] == [f"add-{n}" for n in range(20)]
    assert [r.answer for r in results] == [str(7 + n) for n in range(20)]
    assert all(f"7 plus {n}" in r.steps["s1"].text for n, r in enumerate(results))
    assert not hasattr(agent, "last_result")
    for r in results:
        assert_record_matches(agent.store, r)


async def test_a_handle_streams_its_own_events_and_result() -> None:
    agent = Agent(llm=FunctionLLM(adder), options=AgentOptions(plan_candidates=1), store=MemoryStore(),
                  checkpoints=None)  # fmt: skip
    one, two = agent.astream("What is 7 plus 1?", run_id="h1"), agent.astream("What is 7 plus 2?", run_id="h2")
    ev_one, ev_two = await asyncio.gather(_collect(one), _collect(two))
    assert {e.run_id for e in ev_one} == {"h1"} and {e.run_id for e in ev_two} == {"h2"}
    assert ev_one[-1].kind == "answer" and ev_one[-1].answer == "8"
    assert (await one.result()).answer == "8" and (await two.result()).answer == "9"


async def _collect(handle: Any) -> list[Any]:
    return [e async for e in handle]


def test_the_sync_handle_yields_events_then_the_result() -> None:
    agent = Agent(llm=FunctionLLM(adder), options=AgentOptions(plan_candidates=1), store=None, checkpoints=None)
    with agent.stream("What is 7 plus 5?", run_id="sync") as handle:
        kinds = [e.kind for e in handle]
        result = handle.result()
    assert kinds[0] == "run_started" and kinds[-1] == "answer" and result.answer == "12"


# -- the budget survives approval, rejection, crashes and resume ---------------------------------------------
async def test_planning_tokens_before_an_approval_count_after_it() -> None:
    llm = FunctionLLM(chain_reply)
    agent = Agent(llm=llm, options=AgentOptions(approve_plan=True), store=MemoryStore(), checkpoints=None)
    first = await agent.asolve(REQUEST, run_id="approve")
    planned = first.spend.completion_tokens
    assert first.status == "awaiting_approval" and planned > 0
    done = await agent.aresume("approve", {"action": "approve"})
    assert done.status == "unverified" and done.answer == "360"
    # everything the model generated in both sessions, planning included (resume used to count steps only)
    assert done.spend.completion_tokens == llm.usage.completion_tokens > planned
    assert_record_matches(agent.store, done)


async def test_rejecting_with_feedback_replans_within_the_budget_without_crashing() -> None:
    llm = FunctionLLM(chain_reply)
    agent = Agent(llm=llm, options=AgentOptions(approve_plan=True, budget_tokens=60), store=MemoryStore(),
                  checkpoints=None)  # fmt: skip
    first = await agent.asolve(REQUEST, run_id="reject")
    assert first.status == "awaiting_approval"
    again = await agent.aresume("reject", {"action": "reject", "feedback": "fewer steps please"})
    assert again.status == "awaiting_approval"  # re-planned (or fell back to one step): asked again, no crash
    assert again.spend.completion_tokens >= first.spend.completion_tokens
    done = await agent.aresume("reject", {"action": "approve"})
    assert done.status in ("partial", "failed")  # 60 tokens cannot pay for every step: the run ends short, not crashed
    assert any(o.status == "failed" and "budget" in o.reason for o in done.steps.values())
    assert done.spend.completion_tokens == llm.usage.completion_tokens


@pytest.mark.parametrize(
    "decision",
    [{"action": "reject", "feedback": "fewer steps please"}, {"action": "edit", "plan": {"steps": []}}],
    ids=["rejected-with-feedback", "invalid-edit"],
)
async def test_no_step_runs_before_the_plan_is_approved(decision: dict[str, Any]) -> None:
    agent = Agent(llm=FunctionLLM(chain_reply), options=AgentOptions(approve_plan=True), store=MemoryStore(),
                  checkpoints=None)  # fmt: skip
    await agent.asolve(REQUEST, run_id="wait")
    again = await agent.aresume("wait", decision)
    assert again.status == "awaiting_approval" and again.steps == {}  # steps used to run while it waited
    started = [e.step_id for e in agent.store.events("wait") if e.kind == "step_started"]
    assert all(s.startswith("plan") for s in started), started
    done = await agent.aresume("wait", {"action": "approve"})
    assert done.status == "unverified" and done.answer == "360"
    answers = [e for e in agent.store.events("wait") if e.kind == "answer"]
    assert len(answers) == 1  # one synthesis, not one per extra path through the graph


class Killable(FunctionLLM):
    """Counts every completion token it returns; ``kill_after`` requests from now, the next one "kills the
    process" (raises before generating)."""

    def __init__(self) -> None:
        super().__init__(chain_reply)
        self.kill_after: int | None = None
        self.generated: list[int] = []

    async def _generate(self, prompts: Sequence[tuple[Message, ...]], params: SamplingParams) -> Any:
        if self.kill_after is not None:
            if self.kill_after == 0:
                self.kill_after = None
                raise Killed("killed")
            self.kill_after -= 1
        out: list[list[Completion]] = await super()._generate(prompts, params)
        self.generated.append(sum(c.completion_tokens for row in out for c in row))
        return out


class Killed(BackendError):
    def __init__(self, message: str) -> None:
        super().__init__(message, endpoint="killable", retryable=False)


Action = tuple[str, int]
ACTIONS = st.lists(
    st.tuples(st.sampled_from(["approve", "reject", "edit", "kill", "resume"]), st.integers(0, 3)), max_size=8
)


async def _drive(agent: Agent, llm: Killable, actions: list[Action]) -> RunResult | None:
    """Start a run and apply ``actions`` to it (each where it makes sense), then finish it."""
    result: RunResult | None = None
    queue = list(actions)
    for _ in range(len(actions) + 6):
        try:
            if result is None:
                result = await agent.asolve(REQUEST, run_id="prop")
            elif result.status == "awaiting_approval":
                action, arg = queue.pop(0) if queue else ("approve", 0)
                decision: dict[str, Any] = {"action": "approve"}
                if action == "reject":
                    decision = {"action": "reject", "feedback": f"try again {arg}"}
                elif action == "edit":
                    decision = {"action": "edit", "plan": CHAIN if arg % 2 else {"steps": []}}
                elif action == "kill":
                    llm.kill_after = arg
                result = await agent.aresume("prop", decision)
            elif result.status in FINAL_STATUSES:
                return result
            else:  # interrupted: resume it, maybe killing it again
                action, arg = queue.pop(0) if queue else ("resume", 0)
                if action == "kill":
                    llm.kill_after = arg
                result = await agent.aresume("prop")
        except Killed:
            result = await agent.astatus("prop")
    return result


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, cap=st.integers(40, 400), first_kill=st.none() | st.integers(0, 4))
def test_approval_kill_and_resume_never_spend_more_than_the_cap_plus_one_request(
    actions: list[Action], cap: int, first_kill: int | None
) -> None:
    llm = Killable()
    llm.kill_after = first_kill
    agent = Agent(llm=llm, options=AgentOptions(approve_plan=True, budget_tokens=cap), store=MemoryStore(),
                  checkpoints=None)  # fmt: skip
    asyncio.run(_drive(agent, llm, actions))
    if llm.generated:
        assert sum(llm.generated) <= cap + max(llm.generated), (llm.generated, cap)
    final = asyncio.run(agent.astatus("prop"))
    assert final.status in FINAL_STATUSES, final.status  # every sequence is driven to an end
    assert final.spend.completion_tokens == sum(llm.generated)  # nothing spent was forgotten
    assert_record_matches(agent.store, final)
