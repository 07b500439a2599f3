"""Missing facts are asked for, not invented: a domain pipeline's questions stop the run before planning
(``awaiting_input``, an interrupt checkpointed like plan approval) when ``ask_missing`` is on; the answers reach the
request the pipeline sees as facts, the defaults as labelled assumptions; a resumed or killed run is not asked
again; the store, the events and the API agree. A tiny pack whose questions are the business pack's own
(``missing_facts``) keeps these fast; the business pack itself is checked at the end."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent, check_decision
from longthink.domains.business_plan.pipeline import BusinessPlanPipeline
from longthink.domains.business_plan.request import (
    DEFAULT_MARGIN_PCT,
    DEFAULT_REVENUE,
    baseline_assumptions,
    missing_facts,
    read_request,
)
from longthink.domains.pipeline import (
    ASSUMED_HEADER,
    FACTS_HEADER,
    Question,
    StepContext,
    StepOutput,
    add_facts,
    added_facts,
    questions_of,
    request_text,
)
from longthink.domains.registry import DomainPack, DomainRegistry
from longthink.errors import ConfigError
from longthink.events import ClarificationRequested
from longthink.outcome import StepOutcome
from longthink.planners.plan import Plan, PlanStep
from longthink.store import MemoryStore, open_store
from longthink.testing import FunctionLLM

REQUEST = "Make a business plan to grow our company's profit by 10% next year."
STATED = "Grow our company's profit by 10% next year. Revenue is $2,400,000 and profit $180,000."


@dataclasses.dataclass
class EchoPipeline:
    """One step that returns the request it was given (what the pack sees); asks what the business pack asks.
    ``hang``: the step never ends (until its run is stopped: a run killed after its questions were answered)."""

    hang: bool = False
    asked: list[str] = dataclasses.field(default_factory=list)

    def questions(self, request: str) -> list[Question]:
        self.asked.append(request)
        return missing_facts(request_text(request))

    def plan(self, request: str) -> Plan:
        return Plan(goal="echo", steps=[PlanStep(id="echo", goal="repeat the request", kind="echo")])

    async def run_step(self, ctx: StepContext) -> StepOutput:
        if self.hang:
            await asyncio.Event().wait()
        return StepOutput(ctx.request, ctx.request, verified=True, reason="echoed")

    def synthesize(self, request: str, plan: Plan, results: Mapping[str, StepOutcome]) -> tuple[str | None, str]:
        return results["echo"].answer, "echoed"


class NoQuestions(EchoPipeline):
    """A pipeline without ``questions``: never asked."""

    questions = None  # type: ignore[assignment]


def make_agent(pipeline: Any, *, store: Any = None, checkpoints: str | None = None, **options: Any) -> Agent:
    pack = DomainPack(name="facts", description="test", detect=lambda r: 0.0, planner_hints="", pipeline=pipeline)
    return Agent(llm=FunctionLLM(lambda p, s, i: "unused"), options=AgentOptions(domain="facts", **options),
                 store=store if store is not None else MemoryStore(), checkpoints=checkpoints,
                 domains=DomainRegistry([pack]))  # fmt: skip


# -- the agent ---------------------------------------------------------------------------------------------------
async def test_missing_facts_interrupt_and_the_answers_reach_the_pipeline() -> None:
    pipeline = EchoPipeline()
    agent = make_agent(pipeline, ask_missing=True)
    handle = agent.astream(REQUEST, run_id="ask-1")
    events = [e async for e in handle]
    first = await handle.result()
    assert first.status == "awaiting_input" and first.answer is None and first.plan is None and first.steps == {}
    assert [q.id for q in first.questions] == ["yearly_revenue", "profit"]
    assert first.questions[0].default == f"${DEFAULT_REVENUE:,} revenue (illustrative)"
    assert first.questions[1].default == f"a {DEFAULT_MARGIN_PCT}% margin (illustrative)"
    assert events[-1].kind == "clarification_requested"
    assert isinstance(events[-1], ClarificationRequested) and events[-1].questions == first.questions
    assert agent.store.get_run("ask-1").run.status == "awaiting_input"  # the store says what the API says
    assert (await agent.astatus("ask-1")).status == "awaiting_input"

    with pytest.raises(ConfigError, match="waits for answers"):
        await agent.aresume("ask-1")
    with pytest.raises(ConfigError, match="waits for answers"):
        await agent.aresume("ask-1", {"action": "approve"})
    with pytest.raises(ConfigError, match="no question 'nope'"):
        await agent.aresume("ask-1", {"action": "answer", "answers": {"nope": "1"}})

    done = await agent.aresume(
        "ask-1", {"action": "answer", "answers": {"yearly_revenue": "$2,400,000", "profit": "$180,000"}}
    )
    assert done.status == "done", done.justification
    seen = done.answer or ""
    assert seen.startswith(REQUEST) and f"{FACTS_HEADER}\n- yearly revenue: $2,400,000\n- profit: $180,000" in seen
    assert ASSUMED_HEADER not in seen  # every fact was stated: nothing assumed
    facts = read_request(seen)  # the pack's reader picks the answers up as the baseline
    assert facts.figures == {"revenue": 2_400_000, "profit": 180_000} and not facts.assumed
    assert facts.target is not None and facts.target.pct == 10  # the goal is still the request's
    assert agent.store.get_run("ask-1").run.status == "done"
    kinds = [e.kind for e in agent.store.events("ask-1")]
    assert kinds.count("clarification_requested") == 1 and "run_resumed" in kinds


async def test_an_unanswered_question_takes_its_default_labelled_as_an_assumption() -> None:
    agent = make_agent(EchoPipeline(), ask_missing=True)
    await agent.asolve(REQUEST, run_id="ask-2")
    done = await agent.aresume("ask-2", {"action": "answer", "answers": {"yearly_revenue": "2400000"}})
    seen = done.answer or ""
    assert f"{FACTS_HEADER}\n- yearly revenue: 2400000" in seen
    assert f"{ASSUMED_HEADER}\n- profit: a 10% margin (illustrative)" in seen
    facts = read_request(seen)
    assert facts.figures == {"revenue": 2_400_000, "margin": 10} and facts.assumed == {"margin"}


async def test_an_unreadable_answer_is_asked_again_and_defaults_end_the_questions() -> None:
    agent = make_agent(EchoPipeline(), ask_missing=True)
    await agent.asolve(REQUEST, run_id="ask-3")
    again = await agent.aresume("ask-3", {"action": "answer", "answers": {"yearly_revenue": "quite a lot",
                                                                          "profit": "a 12% margin"}})  # fmt: skip
    assert again.status == "awaiting_input" and [q.id for q in again.questions] == ["yearly_revenue"]
    assert again.pending is not None and "quite a lot" in str(again.pending["error"])
    done = await agent.aresume("ask-3", {"action": "defaults"})
    seen = done.answer or ""
    assert "- profit: a 12% margin" in seen and f"{ASSUMED_HEADER}\n- yearly revenue: $1,000,000 revenue" in seen
    facts = read_request(seen)
    assert facts.figures == {"margin": 12, "revenue": DEFAULT_REVENUE} and facts.assumed == {"revenue"}
    kinds = [e.kind for e in agent.store.events("ask-3")]
    assert kinds.count("clarification_requested") == 2


async def test_with_asking_off_the_defaults_are_used_and_labelled() -> None:
    pipeline = EchoPipeline()
    agent = make_agent(pipeline)  # ask_missing is off by default for the Python API
    result = await agent.asolve(REQUEST, run_id="ask-4")
    assert result.status == "done" and not result.questions
    seen = result.answer or ""
    assert f"{ASSUMED_HEADER}\n- yearly revenue: $1,000,000 revenue (illustrative)\n- profit: a 10% margin" in seen
    assert [(f.label, f.assumed) for f in added_facts(seen)] == [("yearly revenue", True), ("profit", True)]
    a, notes = baseline_assumptions(read_request(seen), None)
    assert a.revenue == DEFAULT_REVENUE and a.fixed_costs == 500_000  # 40% variable, a 10% margin
    assert any(n.startswith("revenue: assumed $1,000,000") for n in notes)
    assert any("derived from the assumed 10% margin" in n for n in notes)
    assert "clarification_requested" not in [e.kind for e in agent.store.events("ask-4")]


async def test_a_request_that_states_its_figures_or_a_pack_without_questions_asks_nothing() -> None:
    for pipeline, request in ((EchoPipeline(), STATED), (NoQuestions(), REQUEST)):
        agent = make_agent(pipeline, ask_missing=True)
        result = await agent.asolve(request, run_id="ask-5")
        assert result.status == "done" and result.answer == request  # not interrupted, nothing added
        assert "clarification_requested" not in [e.kind for e in agent.store.events("ask-5")]
    assert questions_of(None, REQUEST) == [] and questions_of(NoQuestions(), REQUEST) == []  # type: ignore[arg-type]


async def test_a_run_killed_after_its_answers_resumes_without_asking_again(tmp_path: Path) -> None:
    db, ckpt = f"sqlite:///{tmp_path / 'runs.db'}", str(tmp_path / "checkpoints.sqlite")
    pipeline = EchoPipeline(hang=True)
    agent = make_agent(pipeline, store=open_store(db), checkpoints=ckpt, ask_missing=True)
    assert (await agent.asolve(REQUEST, run_id="ask-k")).status == "awaiting_input"
    handle = await agent.astream_resume(
        "ask-k", {"action": "answer", "answers": {"yearly_revenue": "$3M", "profit": "$90k"}}
    )
    async for event in handle:  # answered and planned; the step hangs: the run is stopped there
        if event.kind == "step_started" and event.step_id == "echo":
            break
    await handle.cancel()
    await agent.aclose()
    pipeline.hang = False
    asked = len(pipeline.asked)
    # a fresh agent (another process, say) resumes the run from its checkpoint: the answers are kept, no question
    other = make_agent(pipeline, store=open_store(db), checkpoints=ckpt, ask_missing=True)
    assert (await other.astatus("ask-k")).status == "interrupted"
    done = await other.aresume("ask-k")
    assert done.status == "done" and read_request(done.answer or "").figures == {"revenue": 3_000_000,
                                                                                  "profit": 90_000}  # fmt: skip
    assert len(pipeline.asked) == asked  # not even asked itself again
    kinds = [e.kind for e in other.store.events("ask-k")]
    assert kinds.count("clarification_requested") == 1 and kinds[-1] == "answer"
    assert other.store.get_run("ask-k").run.status == "done"
    await other.aclose()


def test_decisions_are_checked() -> None:
    assert check_decision({"action": "defaults"}) == {"action": "defaults"}
    assert check_decision({"action": "answer", "answers": {"profit": "$1"}})["answers"] == {"profit": "$1"}
    for bad in ({"action": "answer"}, {"action": "answer", "answers": {}}, {"action": "answer", "answers": {"a": 1}},
                {"action": "answr"}):  # fmt: skip
        with pytest.raises(ConfigError):
            check_decision(bad)
    with pytest.raises(ConfigError, match="ask_missing"):
        AgentOptions(ask_missing="yes")  # type: ignore[arg-type]


# -- the business pack -------------------------------------------------------------------------------------------
def test_the_business_pack_asks_for_the_baseline_it_lacks() -> None:
    pipeline = BusinessPlanPipeline()
    assert [q.id for q in pipeline.questions(REQUEST)] == ["yearly_revenue", "profit"]
    assert pipeline.questions(STATED) == []
    assert [q.id for q in missing_facts("Grow profit 10%; revenue is $2M")] == ["profit"]
    assert [q.id for q in missing_facts("Grow profit 10%; our margin is 8%")] == ["yearly_revenue"]
    assert missing_facts("Grow profit 10%; revenue $2M, fixed costs $500k") == []
    assert [q.id for q in missing_facts("Grow quarterly sales by 5%")] == ["quarterly_revenue", "profit"]
    euros = missing_facts("Grow our profit by 10%; we sell in €")  # the request's currency
    assert euros[0].default == "€1,000,000 revenue (illustrative)" and "€180,000 profit" in euros[1].text
    # files attached to the request are not read as its figures
    attached = REQUEST + "\n\nFile `notes.txt`:\n```\nrevenue $9,999,999\n```"
    assert [q.id for q in pipeline.questions(attached)] == ["yearly_revenue", "profit"]


@pytest.mark.parametrize(
    ("answers", "figures"),
    [
        ({"yearly revenue": "$2,400,000", "profit": "$180,000"}, {"revenue": 2_400_000, "profit": 180_000}),
        ({"yearly revenue": "2.4M", "profit": "a 12% margin"}, {"revenue": 2_400_000, "margin": 12}),
        ({"yearly revenue": "2400000", "profit": "180k"}, {"revenue": 2_400_000, "profit": 180_000}),
        (
            {"yearly revenue": "$2.4M", "profit": "costs of $2,200,000"},
            {"revenue": 2_400_000, "total_costs": 2_200_000},
        ),
    ],
)
def test_read_request_picks_up_the_answers(answers: dict[str, str], figures: dict[str, int]) -> None:
    facts = read_request(add_facts(REQUEST, answers))
    assert facts.figures == figures and not facts.assumed
    assert missing_facts(add_facts(REQUEST, answers)) == []


def test_the_request_s_own_figures_win_over_added_facts() -> None:
    facts = read_request(add_facts(STATED, {"yearly revenue": "$5M"}))
    assert facts.figures["revenue"] == 2_400_000
    defaults = {q.label: q.default for q in missing_facts(REQUEST)}
    assumed = read_request(add_facts(REQUEST, defaults, assumed=True))
    assert assumed.figures == {"revenue": DEFAULT_REVENUE, "margin": DEFAULT_MARGIN_PCT}
    assert assumed.assumed == {"revenue", "margin"}
    assert missing_facts(add_facts(REQUEST, defaults, assumed=True)) == []  # the defaults answer every question


async def test_an_agent_that_resumes_the_run_keeps_its_choice_to_ask(tmp_path: Path) -> None:
    """``longthink runs resume`` builds an agent with default options (asking off): the answers still count."""
    db, ckpt = f"sqlite:///{tmp_path / 'runs.db'}", str(tmp_path / "checkpoints.sqlite")
    asking = make_agent(EchoPipeline(), store=open_store(db), checkpoints=ckpt, ask_missing=True)
    assert (await asking.asolve(REQUEST, run_id="ask-r")).status == "awaiting_input"
    await asking.aclose()
    other = make_agent(EchoPipeline(), store=open_store(db), checkpoints=ckpt)
    done = await other.aresume("ask-r", {"action": "answer", "answers": {"yearly_revenue": "$3M", "profit": "$90k"}})
    assert read_request(done.answer or "").figures == {"revenue": 3_000_000, "profit": 90_000}
    assert ASSUMED_HEADER not in (done.answer or "")
    await other.aclose()


async def test_an_agent_that_resumes_a_run_keeps_its_choice_to_approve(tmp_path: Path) -> None:
    """The same holds for plan approval: a resuming agent with default options (approval off) still takes the
    person's decision instead of approving the plan itself."""
    db, ckpt = f"sqlite:///{tmp_path / 'runs.db'}", str(tmp_path / "checkpoints.sqlite")
    stated = REQUEST + "; revenue is $2,000,000 and profit $200,000"
    asking = make_agent(EchoPipeline(), store=open_store(db), checkpoints=ckpt, approve_plan=True)
    assert (await asking.asolve(stated, run_id="appr-r")).status == "awaiting_approval"
    await asking.aclose()
    other = make_agent(EchoPipeline(), store=open_store(db), checkpoints=ckpt)
    assert (await other.aresume("appr-r", {"action": "reject"})).status == "rejected"
    await other.aclose()


# -- the CLI -----------------------------------------------------------------------------------------------------
@pytest.fixture
def cli_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The CLI's agents get a scripted model (every prompt it sees is kept) and a store in ``tmp_path``."""
    seen: list[str] = []

    def reply(prompt: str, params: Any, index: int) -> str:
        seen.append(prompt)
        return "A specific section."

    monkeypatch.setattr("longthink.llm.registry.build_llm", lambda settings: FunctionLLM(reply))
    monkeypatch.setenv("LONGTHINK_DB_URL", f"sqlite:///{tmp_path / 'runs.db'}")
    monkeypatch.setenv("LONGTHINK_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the document goes to the run's artifacts there
    monkeypatch.delenv("LONGTHINK_JUDGE_MODEL", raising=False)
    return seen


def _solve(*args: str, input: str | None = None) -> Any:
    from typer.testing import CliRunner

    from longthink.cli import app

    return CliRunner().invoke(app, ["solve", "--domain", "business_plan", REQUEST, *args], input=input,
                              env={"COLUMNS": "200"})  # fmt: skip


def _facts_seen(seen: list[str]) -> list[tuple[str, str, bool]]:
    """The facts the business pack's prompts carried (every prompt quotes the request)."""
    found = {(f.label, f.value, f.assumed) for p in seen for f in added_facts(p)}
    return sorted(found)


def test_solve_asks_each_question_and_enter_keeps_the_default_as_an_assumption(cli_model: list[str]) -> None:
    res = _solve(input="2400000\n\n")
    assert res.exit_code == 0, res.output
    assert (
        "What is the company's yearly revenue today" in res.output
        and "[$1,000,000 revenue (illustrative)]" in res.output
    )
    assert "What is its yearly profit, margin or total costs today" in res.output
    assert _facts_seen(cli_model) == [
        ("profit", "a 10% margin (illustrative)", True),
        ("yearly revenue", "2400000", False),
    ]
    assert "awaiting_input" not in res.output.splitlines()[-1]  # the run went on to its end


@pytest.mark.parametrize("flag", ["--yes", "--json"])
def test_solve_with_yes_or_json_takes_the_defaults_without_reading_stdin(cli_model: list[str], flag: str) -> None:
    res = _solve(flag)  # no input at all: asking would abort on the closed stdin
    assert res.exit_code == 0, res.output
    assert "What is the company's yearly revenue" not in res.output
    assert _facts_seen(cli_model) == [("profit", "a 10% margin (illustrative)", True),
                                      ("yearly revenue", "$1,000,000 revenue (illustrative)", True)]  # fmt: skip
    if flag == "--json":
        import json

        assert json.loads(res.stdout)["status"] != "awaiting_input"  # it ran on, with the defaults


def test_runs_resume_answers_a_run_awaiting_input(cli_model: list[str], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from longthink.cli import app

    agent = Agent(llm=FunctionLLM(lambda p, s, i: "unused"), store=open_store(f"sqlite:///{tmp_path / 'runs.db'}"),
                  checkpoints=str(tmp_path / "checkpoints.sqlite"),
                  options=AgentOptions(domain="business_plan", ask_missing=True))  # fmt: skip
    assert agent.solve(REQUEST, run_id="cli-ask").status == "awaiting_input"
    agent.close()
    res = CliRunner().invoke(app, ["runs", "resume", "cli-ask"], input="$3M\n$90,000\n", env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "What is the company's yearly revenue today" in res.output
    assert _facts_seen(cli_model) == [("profit", "$90,000", False), ("yearly revenue", "$3M", False)]


def test_the_chat_takes_answers_as_a_message_or_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from longthink.cli.chat import ChatSession

    for lines, want in (
        ([REQUEST, "2.4M; 180k", "/quit"], {"revenue": 2_400_000, "profit": 180_000}),
        ([REQUEST, "/approve", "profit: a 12% margin", "/quit"], {"margin": 12, "revenue": DEFAULT_REVENUE}),
        ([REQUEST, "/defaults", "/quit"], {"revenue": DEFAULT_REVENUE, "margin": DEFAULT_MARGIN_PCT}),
    ):
        agent = make_agent(EchoPipeline(), ask_missing=True)
        typed = iter(lines)
        monkeypatch.setattr("builtins.input", lambda prompt="", typed=typed: next(typed))
        out = io.StringIO()
        session = ChatSession(agent, Console(file=out, width=200, highlight=False))
        session._setup_history = lambda: None  # type: ignore[method-assign]
        session.loop()
        shown = out.getvalue()
        assert "the request does not state facts the plan needs" in shown
        assert "What is the company's yearly revenue today" in shown and "(default: $1,000,000 revenue" in shown
        [(asked, answer)] = session.turns
        assert asked == REQUEST and read_request(answer or "").figures == want, shown
        if "/approve" in lines:
            assert "no plan is waiting" in shown


def test_parse_answers() -> None:
    from longthink.cli.dialogue import parse_answers

    qs = missing_facts(REQUEST)
    assert parse_answers("2.4M; 180k", qs) == {"yearly_revenue": "2.4M", "profit": "180k"}
    assert parse_answers("profit: 12% margin", qs) == {"profit": "12% margin"}
    assert parse_answers("yearly revenue = $2M; -", qs) == {"yearly_revenue": "$2M"}
    assert parse_answers("; a 9% margin", qs) == {"profit": "a 9% margin"}
    assert parse_answers("", qs) == {}
