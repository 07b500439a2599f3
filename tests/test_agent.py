"""The agent graph with the test doubles: plan -> concurrent steps -> verify -> replan -> answer; approval
interrupts and resumption; everything recorded in the store."""

from __future__ import annotations

import json
from typing import Any

import pytest

from longthink.agents import GRAPH, AgentOptions
from longthink.api import Agent
from longthink.errors import ConfigError
from longthink.llm.types import SamplingParams
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM

PLAN = {
    "steps": [
        {"id": "s1", "goal": "Count the loaves sold per day", "answer_kind": "number"},
        {"id": "s2", "goal": "Find the price of one loaf", "answer_kind": "number"},
        {"id": "s3", "goal": "Multiply loaves by price for revenue", "depends_on": ["s1", "s2"],
         "answer_kind": "number"},
    ]
}  # fmt: skip


def reply(prompt: str, params: SamplingParams, index: int) -> str:
    if "careful planner" in prompt:
        if "This step failed" in prompt:
            return json.dumps(
                {"steps": [{"id": "fix", "goal": "Recount the loaves carefully", "answer_kind": "number"}]}
            )
        return json.dumps(PLAN)
    if "combine the results" in prompt:
        return "Revenue is 120 * 3. Answer: 360"
    if "Your step: Count the loaves" in prompt or "Recount" in prompt:
        return "They sell 120 loaves. Answer: 120"
    if "Your step: Find the price" in prompt:
        return "Each costs $3. Answer: 3"
    if "Your step: Multiply" in prompt:
        return "120 * 3 = 360. Answer: 360"
    return "Answer: 0"


REQUEST = "A bakery sells 120 loaves a day at $3 each. What is its daily revenue?"


def make_agent(llm: Any = None, **options: Any) -> Agent:
    return Agent(llm=llm or FunctionLLM(reply), options=AgentOptions(**options), store=MemoryStore(), checkpoints=None)


def test_graph_is_compiled_at_import() -> None:
    assert set(GRAPH.get_graph().nodes) >= {
        "intake",
        "plan",
        "approve",
        "execute_step",
        "verify",
        "replan",
        "synthesize",
    }


async def test_plan_steps_and_answer_with_search_inside_every_step() -> None:
    llm = FunctionLLM(reply)
    agent = make_agent(llm)
    handle = agent.astream(REQUEST, run_id="run-a")
    events = [e async for e in handle]
    result = await handle.result()
    # text mode, scored by self-certainty alone: every answer stands, none is verified (tests/test_agent_status.py)
    assert result.status == "unverified" and result.answer == "360"
    assert result.plan is not None and [s.id for s in result.plan.steps] == ["s1", "s2", "s3"]
    assert all(result.steps[s].unchecked and result.steps[s].candidates >= 1 for s in ("s1", "s2", "s3"))
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "answer"
    for k in ("plan_proposed", "plan_selected", "step_started", "candidate_generated", "verification", "budget"):
        assert k in kinds
    # s1 and s2 are independent: both start before either finishes verification (one layer, fanned out)
    started = [e.step_id for e in events if e.kind == "step_started"]
    assert started[0] == "plan"  # planning is a step of its own in the record
    assert started[1:3] == ["s1", "s2"] or started[1:3] == ["s2", "s1"]
    first_s1_or_s2 = next(i for i, e in enumerate(events) if e.kind == "step_started" and e.step_id != "plan")
    assert first_s1_or_s2 < kinds.index("verification")
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    # one budget for the whole request
    assert 0 < result.spend.completion_tokens <= 12_000
    # everything is in the store
    detail = agent.store.get_run("run-a")
    assert detail is not None and len(detail.steps) >= 3 and len(detail.candidates) >= 5


async def test_failing_verifier_forces_a_replan() -> None:
    calls: list[str] = []

    def verifier(step: Any, res: Any) -> tuple[bool, str]:
        calls.append(step.id)
        if step.id == "s1":
            return False, "count looks wrong"
        return True, "ok"

    agent = Agent(llm=FunctionLLM(reply), options=AgentOptions(max_replans=1), verifier=verifier, store=MemoryStore(),
                  checkpoints=None)  # fmt: skip
    handle = agent.astream(REQUEST, run_id="run-r")
    events = [e async for e in handle]
    result = await handle.result()
    assert [e for e in events if e.kind == "replan"]
    assert result.plan is not None and "r1_fix" in [s.id for s in result.plan.steps]
    assert result.steps["r1_fix"].verified
    assert result.answer == "360"


async def test_replans_are_bounded_and_failure_is_reported() -> None:
    agent = Agent(llm=FunctionLLM(reply), options=AgentOptions(max_replans=1), verifier=lambda s, r: (False, "never"),
                  store=MemoryStore(), checkpoints=None)  # fmt: skip
    result = await agent.asolve(REQUEST, run_id="run-f")
    assert result.status in ("partial", "failed")
    assert "NOT verified" in result.justification


async def test_plan_approval_interrupt_edit_and_resume() -> None:
    agent = make_agent(approve_plan=True)
    first = await agent.asolve(REQUEST, run_id="run-h")
    assert first.status == "awaiting_approval" and first.pending is not None
    assert first.pending["plan"]["steps"][0]["id"] == "s1" and first.answer is None
    with pytest.raises(ConfigError, match="waits for a plan decision"):
        await agent.aresume("run-h")
    bad = await agent.aresume("run-h", {"action": "edit", "plan": {"steps": []}})
    assert bad.status == "awaiting_approval" and bad.pending and bad.pending["error"]
    edited = {"steps": [{"id": "only", "goal": "Multiply 120 loaves by $3", "answer_kind": "number"}]}
    done = await agent.aresume("run-h", {"action": "edit", "plan": edited})
    assert done.status == "unverified" and [s.id for s in done.plan.steps] == ["only"]  # type: ignore[union-attr]


async def test_reject_ends_the_run() -> None:
    agent = make_agent(approve_plan=True)
    await agent.asolve(REQUEST, run_id="run-x")
    result = await agent.aresume("run-x", {"action": "reject"})
    assert result.status == "rejected" and result.answer is None


async def test_unknown_run_and_bad_request() -> None:
    agent = make_agent()
    with pytest.raises(ConfigError, match="no run"):
        await agent.aresume("nope")
    with pytest.raises(ConfigError, match="non-empty"):
        await agent.asolve("  ")
    with pytest.raises(ConfigError, match="did you mean"):
        AgentOptions(strategy="self_consistancy")


def test_runs_commands_read_the_store(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    from longthink.store import open_store

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    agent = Agent(llm=FunctionLLM(reply), options=AgentOptions(), store=open_store(db), checkpoints=None)
    agent.solve(REQUEST, run_id="cli-run")
    agent.close()
    env = {**os.environ, "LONGTHINK_DB_URL": db, "LONGTHINK_CONFIG": str(tmp_path / "none.toml")}
    bin_ = str(Path(sys.executable).parent / "longthink")
    listed = subprocess.run([bin_, "runs", "list", "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["run_id"] == "cli-run" and row["answer"] == "360"
    shown = subprocess.run(
        [bin_, "runs", "show", "cli-run", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    detail = json.loads(shown.stdout)
    assert {s["id"] for s in detail["steps"]} >= {"s1", "s2", "s3"} and detail["candidates"]
    out = tmp_path / "export.jsonl"
    exported = subprocess.run(
        [bin_, "runs", "export", "--out", str(out)], capture_output=True, text=True, env=env, timeout=60
    )
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all("candidates" in line and "prompt" in line for line in lines)
    step_line = next(line for line in lines if line.get("step_id") == "s1")
    assert step_line["prompt"] and step_line["chosen"] is not None
    missing = subprocess.run([bin_, "runs", "show", "nope"], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr


async def test_postgresql_store_and_checkpointer_interrupt_and_resume(pg_url: str) -> None:
    from longthink.store import open_store

    checkpoints = pg_url.replace("postgresql+psycopg://", "postgresql://")
    agent = Agent(llm=FunctionLLM(reply), options=AgentOptions(approve_plan=True), store=open_store(pg_url),
                  checkpoints=checkpoints)  # fmt: skip
    first = await agent.asolve(REQUEST, run_id="pg-run")
    assert first.status == "awaiting_approval"
    # a new agent (another process, say) resumes the same run from PostgreSQL
    other = Agent(llm=FunctionLLM(reply), options=AgentOptions(approve_plan=True), store=open_store(pg_url),
                  checkpoints=checkpoints)  # fmt: skip
    done = await other.aresume("pg-run", {"action": "approve"})
    assert done.status == "unverified" and done.answer == "360"
    detail = other.store.get_run("pg-run")
    assert detail is not None and detail.run.answer == "360" and len(detail.candidates) >= 5
    await agent.aclose()
    await other.aclose()


async def test_a_planned_tool_step_calls_the_tool() -> None:
    plan = {"steps": [
        {"id": "s1", "goal": "Count the loaves sold per day", "answer_kind": "number"},
        {"id": "calc", "goal": "Multiply loaves by price", "depends_on": ["s1"], "tool": "calculator",
         "tool_args": {"expression": "120 * 3"}},
        {"id": "bad", "goal": "Use a tool that does not exist", "tool": "shell", "tool_args": {"cmd": "ls"}},
    ]}  # fmt: skip

    def with_tools(prompt: str, params: SamplingParams, index: int) -> str:
        return json.dumps(plan) if "careful planner" in prompt else reply(prompt, params, index)

    agent = Agent(
        llm=FunctionLLM(with_tools), options=AgentOptions(max_replans=0), store=MemoryStore(), checkpoints=None
    )
    handle = agent.astream(REQUEST, run_id="run-t")
    events = [e async for e in handle]
    result = await handle.result()
    [call] = [e for e in events if e.kind == "tool_called"]
    assert call.step_id == "calc" and call.ok and call.result == "360"
    assert result.steps["calc"].answer == "360" and result.steps["calc"].verified
    assert not result.steps["bad"].verified and "unknown tool 'shell'" in result.steps["bad"].reason
    detail = agent.store.get_run("run-t")
    assert detail is not None and [t.tool for t in detail.tool_calls] == ["calculator"]
    # the planner was told which tools exist
    planner_prompt = next(p for p, _ in agent.llm.calls if "careful planner" in p[0])[0]  # type: ignore[attr-defined]
    assert "calculator(expression)" in planner_prompt
