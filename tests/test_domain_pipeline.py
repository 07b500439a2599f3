"""Domain pipelines inside the agent graph (with a toy pack and test doubles): the pack's plan replaces the
model's, its steps get their dependencies' data, a search context bound to the step and an artifact directory;
a failing pack step is a failed step, not a crashed run; detection picks the pack; a starved budget still ends
in an answer."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.domains.pipeline import StepContext, StepOutput, attach_files, attached_files, request_text
from longthink.domains.registry import DomainPack, DomainRegistry
from longthink.errors import ConfigError
from longthink.llm.types import Message, SamplingParams
from longthink.planners.plan import Plan, PlanStep
from longthink.search.types import Problem
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM


class TallyPipeline:
    """Counts the words of the attached file by asking the model three times and voting, then reports."""

    def __init__(self, *, fail_report: bool = False) -> None:
        self.fail_report = fail_report

    def plan(self, request: str) -> Plan:
        return Plan(
            goal=request_text(request),
            steps=[
                PlanStep(id="count", goal="count the words", kind="count", answer_kind="number"),
                PlanStep(id="report", goal="write the report", kind="report", depends_on=["count"]),
            ],
        )

    async def run_step(self, ctx: StepContext) -> StepOutput:
        if ctx.step.kind == "count":
            text = next(iter(attached_files(ctx.request).values()))
            problem = Problem("count", (Message.user(f"How many words? {text}"),), "number", max_tokens=16)
            [cands] = await ctx.search.sample(problem, 3, strategy="tally")
            votes = Counter(c.answer for c in cands if c.answer is not None)
            answer, n = votes.most_common(1)[0]
            truth = len(text.split())
            ok = int(answer) == truth
            return StepOutput(answer, verified=ok, reason=f"{n}/3 votes; truth {truth}",
                              data={"count": int(answer)}, candidates=len(cands), strategy="vote")  # fmt: skip
        if self.fail_report:
            raise RuntimeError("the report printer is on fire")
        count = ctx.input_data("count")["count"]
        path = ctx.artifact_path("report.txt")
        path.write_text(f"{count} words\n")
        return StepOutput(f"{count} words", text=f"The file has {count} words.", verified=True, reason="written",
                          data={"count": count}, artifacts=(str(path),))  # fmt: skip

    def synthesize(self, request: str, plan: Plan, results: Mapping[str, Mapping[str, Any]]) -> tuple[str | None, str]:
        report = results.get("report", {})
        return report.get("text") or None, f"count: {results.get('count', {}).get('reason')}"


def registry(pipeline: Any) -> DomainRegistry:
    return DomainRegistry(
        [
            DomainPack(
                name="tally",
                description="word counts",
                detect=lambda r: 1.0 if "count the words" in r.lower() else 0.0,
                planner_hints="",
                answer_kind="number",
                pipeline=pipeline,
            )
        ]
    )


def reply(prompt: str, params: SamplingParams, index: int) -> str:
    return "Answer: 4" if index < 2 else "Answer: 5"  # two of three samples are right


REQUEST = attach_files("Count the words in this file.", {"note.txt": "bread cakes and buns"})


def agent(pipeline: Any, tmp_path: Path, **options: Any) -> Agent:
    opts = AgentOptions(artifacts_dir=str(tmp_path / "artifacts"), **options)
    return Agent(llm=FunctionLLM(reply), options=opts, store=MemoryStore(), checkpoints=None,
                 domains=registry(pipeline))  # fmt: skip


def test_attached_files_round_trip_with_fences_inside() -> None:
    files = {"a.py": "def f():\n    return 1", "notes.md": "```py\nx = 1\n```"}
    request = attach_files("Fix it.", files)
    assert attached_files(request) == files
    assert request_text(request) == "Fix it."


async def test_detected_pack_runs_its_plan_with_data_search_and_artifacts(tmp_path: Path) -> None:
    a = agent(TallyPipeline(), tmp_path)
    events = [e async for e in a.stream(REQUEST, run_id="tally-1")]
    result = a.last_result
    assert result.domain == "tally" and result.status == "done"
    assert result.answer == "The file has 4 words."
    assert result.plan is not None and [s.id for s in result.plan.steps] == ["count", "report"]
    assert result.steps["count"]["data"] == {"count": 4} and result.steps["count"]["candidates"] == 3
    [artifact] = result.artifacts
    assert Path(artifact).read_text() == "4 words\n" and Path(artifact).parent.name == "tally-1"
    started = {e.step_id: e.data for e in events if e.kind == "step_started"}
    assert started["count"]["strategy"] == "domain:count"
    assert not any(e.kind == "plan_proposed" for e in events)  # the model did not plan
    generated = [e for e in events if e.kind == "candidate_generated"]
    assert len(generated) == 3 and {e.step_id for e in generated} == {"count"}
    detail = a.store.get_run("tally-1")
    assert detail is not None and len(detail.candidates_of("count")) == 3
    assert detail.run.meta is not None and detail.run.meta["domain"] == "tally"
    assert json.loads(json.dumps(result.steps))  # step outputs are JSON (they are checkpointed)


async def test_a_failing_pack_step_fails_the_step_not_the_run(tmp_path: Path) -> None:
    a = agent(TallyPipeline(fail_report=True), tmp_path)
    result = await a.asolve(REQUEST)
    assert result.steps["count"]["verified"] is True
    report = result.steps["report"]
    assert report["verified"] is False and "on fire" in report["reason"] and report["answer"] is None
    assert result.status == "failed" and result.answer is None  # nothing to synthesise from, but no crash
    assert result.steps["count"]["data"] == {"count": 4}  # what was computed is kept


async def test_general_domain_and_unknown_names(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown domain 'talyy'.*did you mean 'tally'"):
        agent(TallyPipeline(), tmp_path, domain="talyy")
    a = agent(TallyPipeline(), tmp_path, domain="general", plan_candidates=1)
    result = await a.asolve(REQUEST)
    assert result.domain == "general" and "count" not in result.steps


async def test_a_starved_budget_still_plans_and_answers() -> None:
    """Planning may use only a share of the run budget: K plans of 400 tokens do not eat a 300-token budget, and
    a budget spent before synthesis leaves the last step's result as a partial answer."""

    def talker(prompt: str, params: SamplingParams, index: int) -> str:
        if "careful planner" in prompt:
            steps = [{"id": "s1", "goal": "Name a colour"}, {"id": "s2", "goal": "Name another", "depends_on": ["s1"]}]
            return json.dumps({"steps": steps}) + " filler" * 150
        return "red " * 60

    a = Agent(llm=FunctionLLM(talker), options=AgentOptions(budget_tokens=300, plan_candidates=3),
              store=MemoryStore(), checkpoints=None)  # fmt: skip
    result = await a.asolve("Name two colours.")
    assert result.status in ("done", "partial") and result.answer
    assert result.spend["completion_tokens"] <= 300 + 256  # over by at most one request
