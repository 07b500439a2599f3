"""A separate judge (reward) model: settings, the backend builder, agent options, and the real agent end to end with
a policy double and a judge double — the judge prompts (plan judge, step scoring) reach the judge and only it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.config import load_settings
from longthink.errors import ConfigError
from longthink.llm.registry import build_judge_llm
from longthink.llm.types import SamplingParams
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM

PLAN = {
    "steps": [
        {"id": "s1", "goal": "Count the loaves sold per day", "answer_kind": "number"},
        {"id": "s2", "goal": "Multiply loaves by the $3 price for revenue", "depends_on": ["s1"],
         "answer_kind": "number"},
    ]
}  # fmt: skip
REQUEST = "A bakery sells 120 loaves a day at $3 each. What is its daily revenue?"
JUDGE_MARK = "Evaluate a solution"  # the opening of every judge prompt (longthink.rewards.judge.DEFAULT_TEMPLATE)


def policy_reply(prompt: str, params: SamplingParams, index: int) -> str:
    if JUDGE_MARK in prompt:
        return "Yes"  # never reached when a judge model is set (asserted below)
    if "careful planner" in prompt:
        return json.dumps(PLAN)
    if "Your step: Count the loaves" in prompt:
        return "They sell 120 loaves. Answer: 120"
    if "Your step: Multiply" in prompt:
        return "120 * 3 = 360. Answer: 360"
    return "Answer: 360"


def judge_reply(prompt: str, params: SamplingParams, index: int) -> str:
    if "Rate the solution from 1" in prompt:
        return "4"
    if "Answer Yes or No" in prompt:
        return "Yes"
    raise AssertionError(f"the judge got a prompt that is not a judge prompt: {prompt[:200]!r}")


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGTHINK_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("LONGTHINK_JUDGE_MODEL", raising=False)


async def test_the_judge_model_judges_plans_and_scores_steps_and_the_policy_model_does_not() -> None:
    policy = FunctionLLM(policy_reply, model="policy-double")
    judge = FunctionLLM(judge_reply, model="judge-double")
    options = AgentOptions(strategy="best_of_n", strategy_options={"n": 2}, plan_candidates=2, max_replans=0)
    agent = Agent(llm=policy, judge_llm=judge, options=options, store=MemoryStore(), checkpoints=None)
    handle = agent.astream(REQUEST, run_id="judged")
    events = [e async for e in handle]
    result = await handle.result()
    assert result.status == "done" and result.answer == "360"

    judge_prompts = [p for prompts, _ in judge.calls for p in prompts]
    assert judge_prompts and all(JUDGE_MARK in p for p in judge_prompts)
    assert any("Rate the solution from 1 (wrong) to 5" in p and "Judge the plan" in p for p in judge_prompts)
    assert any("Answer Yes or No" in p and "Your step: Count the loaves" in p for p in judge_prompts)
    assert all(params.temperature == 0.0 for _, params in judge.calls)
    assert not [p for prompts, _ in policy.calls for p in prompts if JUDGE_MARK in p]

    [started] = [e for e in events if e.kind == "run_started"]
    assert started.options["model"] == "policy-double"
    assert started.options["judge_model"] == "judge-double"
    proposed = [e for e in events if e.kind == "plan_proposed"]
    assert proposed and all(e.scores.get("plan_judge") == pytest.approx(0.75) for e in proposed)
    step_scores = [e for e in events if e.kind == "candidate_scored" and e.scorer == "judge"]
    assert {e.step_id for e in step_scores} == {"s1", "s2"}
    assert all(e.value == pytest.approx(1.0) for e in step_scores)  # P(yes) from the judge's logprobs
    # the judge's calls are charged to the run budget too
    judge_samples = sum(len(prompts) for prompts, _ in judge.calls)
    assert result.spend.samples >= judge_samples
    await agent.aclose()


async def test_without_a_judge_model_the_policy_model_judges_and_steps_use_self_certainty() -> None:
    policy = FunctionLLM(policy_reply, model="policy-double")
    options = AgentOptions(strategy="best_of_n", strategy_options={"n": 2}, plan_candidates=2, max_replans=0)
    agent = Agent(llm=policy, options=options, store=MemoryStore(), checkpoints=None)
    handle = agent.astream(REQUEST, run_id="self-judged")
    events = [e async for e in handle]
    assert (await handle.result()).answer == "360" and agent.judge_llm is None
    assert any(JUDGE_MARK in p and "Judge the plan" in p for prompts, _ in policy.calls for p in prompts)
    scorers = {e.scorer for e in events if e.kind == "candidate_scored" and e.step_id == "s1"}
    assert scorers == {"self_certainty"}
    [started] = [e for e in events if e.kind == "run_started"]
    assert started.options["judge_model"] is None


async def test_the_business_plan_pack_judges_sections_with_the_judge_model(tmp_path: Path) -> None:
    from test_business_plan import STATED as PLAN_REQUEST  # its baseline stated: nothing assumed
    from test_business_plan import reply as consultant

    def policy_only(prompt: str, params: SamplingParams, index: int) -> str:
        if JUDGE_MARK in prompt:
            raise AssertionError("the policy model was asked to judge")
        return consultant(prompt, params, index)

    policy = FunctionLLM(policy_only, model="policy-double")
    judge = FunctionLLM(consultant, model="judge-double")
    options = AgentOptions(domain="business_plan", budget_tokens=None, artifacts_dir=str(tmp_path))
    agent = Agent(llm=policy, judge_llm=judge, options=options, store=MemoryStore(), checkpoints=None)
    result = await agent.asolve(PLAN_REQUEST, run_id="bp-judged")
    assert result.status == "done", result.justification
    assert "**Office catering** (judge score 0.75) — **chosen**" in (result.answer or "")
    judged = [p for prompts, _ in judge.calls for p in prompts]
    assert judged and all(JUDGE_MARK in p and "Rubric:" in p for p in judged)
    assert not [p for prompts, _ in policy.calls for p in prompts if JUDGE_MARK in p]


def test_settings_read_the_judge_model_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().judge_model is None
    monkeypatch.setenv("LONGTHINK_JUDGE_MODEL", " qwen-1.5b ")
    assert load_settings().judge_model == "qwen-1.5b"
    assert load_settings(judge_model="other.gguf").judge_model == "other.gguf"  # keyword arguments win
    monkeypatch.setenv("LONGTHINK_JUDGE_MODEL", "")
    assert load_settings().judge_model is None


def test_build_judge_llm_is_none_without_a_separate_judge_model() -> None:
    assert build_judge_llm(load_settings()) is None
    assert build_judge_llm(load_settings(model="qwen", judge_model="qwen2.5-coder-0.5b-instruct")) is None  # an alias
    assert build_judge_llm(load_settings(model="x.gguf", judge_model="x.gguf")) is None


def test_build_judge_llm_uses_the_same_backend_for_the_judge_model() -> None:
    settings = load_settings(endpoints=["http://127.0.0.1:9"], model="policy-served", judge_model="judge-served")
    judge = build_judge_llm(settings)
    assert judge is not None and type(judge).__name__ == "OpenAICompatLLM" and judge.model == "judge-served"
    judge.close()


def test_agent_options_judge_model_overrides_the_settings() -> None:
    settings = load_settings(endpoints=["http://127.0.0.1:9"], model="policy-served", judge_model="from-settings")
    policy = FunctionLLM(policy_reply)
    agent = Agent(llm=policy, settings=settings, options=AgentOptions(judge_model="from-options"), store=None,
                  checkpoints=None)  # fmt: skip
    assert agent.judge_llm is not None and agent.judge_llm.model == "from-options"
    plain = Agent(llm=policy, settings=settings, store=None, checkpoints=None)
    assert plain.judge_llm is not None and plain.judge_llm.model == "from-settings"
    agent.close()
    plain.close()
    with pytest.raises(ConfigError, match="judge_model"):
        AgentOptions(judge_model=" ")


def test_cli_solve_and_chat_take_a_judge_model() -> None:
    from typer.testing import CliRunner

    from longthink.cli import app

    runner = CliRunner()
    for command in ("solve", "chat"):
        out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert out.exit_code == 0 and "--judge-model" in out.output
