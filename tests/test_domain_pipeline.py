"""Domain pipelines inside the agent graph (with a toy pack and test doubles): the pack's plan replaces the
model's, its steps get their dependencies' data, a search context bound to the step and an artifact directory;
a failing pack step is a failed step, not a crashed run; detection picks the pack; a starved budget still ends
in an answer."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.domains.pipeline import StepContext, StepOutput, attach_files, attached_files, request_text
from longthink.domains.registry import DomainPack, DomainRegistry
from longthink.errors import ConfigError
from longthink.llm.types import Message, SamplingParams
from longthink.outcome import StepOutcome
from longthink.planners.plan import Plan, PlanStep
from longthink.search.types import Problem, Score
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM
from longthink.tools import ToolResult, default_tools


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

    def synthesize(self, request: str, plan: Plan, results: Mapping[str, StepOutcome]) -> tuple[str | None, str]:
        report, count = results.get("report"), results.get("count")
        return (report.text if report else "") or None, f"count: {count.reason if count else None}"


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
    handle = a.astream(REQUEST, run_id="tally-1")
    events = [e async for e in handle]
    result = await handle.result()
    assert result.domain == "tally" and result.status == "done"
    assert result.answer == "The file has 4 words."
    assert result.plan is not None and [s.id for s in result.plan.steps] == ["count", "report"]
    assert result.steps["count"].data == {"count": 4} and result.steps["count"].candidates == 3
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
    assert json.loads(
        json.dumps({k: o.model_dump(mode="json") for k, o in result.steps.items()})
    )  # step outputs are JSON (they are checkpointed)


async def test_a_failing_pack_step_fails_the_step_not_the_run(tmp_path: Path) -> None:
    a = agent(TallyPipeline(fail_report=True), tmp_path)
    result = await a.asolve(REQUEST)
    assert result.steps["count"].verified is True
    report = result.steps["report"]
    assert report.verified is False and "on fire" in report.reason and report.answer is None
    assert result.status == "failed" and result.answer is None  # nothing to synthesise from, but no crash
    assert result.steps["count"].data == {"count": 4}  # what was computed is kept


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
    assert result.status == "unverified" and result.answer  # self-certainty alone: answered, unchecked
    assert result.spend.completion_tokens <= 300 + 256  # over by at most one request


# -- a pack without its own plan: the engine reads its tools, planner hints and scorers ------------------------
class SkuArgs(BaseModel):
    sku: str


@dataclasses.dataclass(frozen=True)
class PriceLookup:
    name: str = "price_lookup"
    description: str = "the unit price of a product by its SKU"
    args_model: type[BaseModel] = SkuArgs

    async def run(self, args: SkuArgs) -> ToolResult:
        prices = {"LOAF-1": "3"}
        if args.sku not in prices:
            return ToolResult(self.name, False, "", f"unknown SKU {args.sku}")
        return ToolResult(self.name, True, prices[args.sku])


class ShopScorer:
    name = "shop_check"

    async def score(self, problem: Problem, candidates: Any) -> list[Score]:
        return [Score(self.name, 1.0 if c.answer == "360" else 0.0) for c in candidates]


SHOP_PLAN = {"steps": [
    {"id": "price", "goal": "Look up the loaf's price", "tool": "price_lookup", "tool_args": {"sku": "LOAF-1"}},
    {"id": "revenue", "goal": "Multiply 120 loaves by the price", "depends_on": ["price"], "answer_kind": "number",
     "strategy": "best_of_n"},
]}  # fmt: skip


async def test_a_pack_without_a_pipeline_brings_its_tools_hints_and_scorers() -> None:
    seen: list[str] = []

    def shop_reply(prompt: str, params: SamplingParams, index: int) -> str:
        seen.append(prompt)
        return json.dumps(SHOP_PLAN) if "careful planner" in prompt else "120 * 3 = 360. Answer: 360"

    shop = DomainPack(name="shop", description="shop sums", detect=lambda r: 1.0 if "loaf" in r else 0.0,
                      planner_hints="Prices come from price_lookup, never from memory.", tools=(PriceLookup(),),
                      scorers=(ShopScorer(),), answer_kind="number")  # fmt: skip
    a = Agent(llm=FunctionLLM(shop_reply), options=AgentOptions(plan_candidates=1), store=MemoryStore(),
              checkpoints=None, domains=DomainRegistry([shop]))  # fmt: skip
    result = await a.asolve("We sell 120 loaf a day; what is the revenue?", run_id="shop")
    assert result.domain == "shop" and result.answer == "360" and result.status == "done"
    planner_prompt = next(p for p in seen if "careful planner" in p)
    assert "price_lookup(sku)" in planner_prompt and "never from memory" in planner_prompt
    assert result.steps["price"].answer == "3" and result.steps["price"].kind == "tool"
    assert "price_lookup" not in default_tools().names()  # the pack's tool reaches only its own runs
    detail = a.store.get_run("shop")
    assert detail is not None and "shop_check" in {s.scorer for s in detail.scores if s.step_id == "revenue"}
