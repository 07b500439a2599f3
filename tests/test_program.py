"""Program mode: the model writes Python, the sandbox runs it, what it prints is the answer; every failure is a
recorded failed candidate. Hostile programs are contained. One real generation on the embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from longthink.agents.options import AgentOptions
from longthink.agents.steps import answer_mode
from longthink.errors import ConfigError
from longthink.planners.plan import PlanStep
from longthink.program import PROGRAM_INSTRUCTION, SandboxRunner, parse_run, program_instruction, runnable
from longthink.rewards.base import Scorer
from longthink.search import AdaptiveConsistency, SelfConsistency
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem, Score
from longthink.testing import FunctionLLM, ScriptedLLM

ROOT = Path(__file__).resolve().parent.parent


def fenced(code: str) -> str:
    return f"Here is the program:\n```python\n{code}\n```\nIt prints the answer."


def problem(question: str = "What is 17 * 24?", **kw: object) -> Problem:
    return Problem.from_text("p", question, answer_kind="number", mode="program", max_tokens=10_000, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def runner() -> SandboxRunner:
    return SandboxRunner(wall_s=3.0, cpu_s=2, memory_mb=256, concurrency=4)


# -- pure helpers ---------------------------------------------------------------------------------------------------
def test_the_program_instruction_is_appended_in_program_mode() -> None:
    p = problem()
    assert p.mode == "program"
    assert p.question.endswith(PROGRAM_INSTRUCTION)
    assert "as an arithmetic expression" in program_instruction("expression")
    assert Problem.from_text("t", "q").question == "q"


@pytest.mark.parametrize(
    ("code", "printed"),
    [
        ("x = 3\ny = x * 4", "print(y)"),
        ("x = 3\nx * 4", "print(x * 4)"),
        ("def solution():\n    return 5", "print(solution())"),
        ("total: int = 7", "print(total)"),
    ],
)
def test_a_program_that_prints_nothing_gets_its_result_printed(code: str, printed: str) -> None:
    assert runnable(code).rstrip().endswith(printed)


def test_programs_that_print_or_do_not_parse_are_left_alone() -> None:
    assert runnable("print(1)\nx = 2") == "print(1)\nx = 2"
    assert runnable("def f(:") == "def f(:"


def test_parse_run_reads_the_last_printed_line() -> None:
    assert parse_run("thinking...\n408\n", "number").value == "408"
    assert parse_run("$1,200.50", "number").value == "1200.5"
    assert parse_run("", "number").error == "program printed nothing"
    assert "printed no number" in (parse_run("hello", "number").error or "")


# -- executed in the real sandbox ----------------------------------------------------------------------------------
async def test_executed_values_are_the_answers_and_failures_are_recorded(runner: SandboxRunner) -> None:
    replies = [
        fenced("print(17 * 24)"),
        fenced("a = 17\nb = 24\nresult = a * b"),  # prints nothing: its last assignment is printed
        fenced("print(1 / 0)"),
        "I think the answer is 408.",  # no program at all
        fenced("print('no number here')"),
        fenced("x = 17 *"),  # a syntax error
    ]
    llm = ScriptedLLM(replies)
    ctx = SearchContext(llm=llm, runner=runner)
    [cands] = await ctx.sample(problem(), len(replies))
    assert [c.answer for c in cands] == ["408", "408", None, None, None, None]
    assert cands[0].execution is not None and cands[0].execution.ok
    assert "ZeroDivisionError" in (cands[2].parse_error or "")
    assert (cands[3].parse_error or "").startswith("no program")
    assert cands[3].execution is None
    assert "printed no number" in (cands[4].parse_error or "")
    assert "SyntaxError" in (cands[5].parse_error or "")


async def test_hostile_programs_are_contained(runner: SandboxRunner, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    os.environ["LONGTHINK_TEST_SECRET"] = "hunter2"
    replies = [
        fenced("while True:\n    pass"),  # an endless loop: killed at the time limit
        fenced("import socket\ns = socket.create_connection(('127.0.0.1', 5432), timeout=1)\nprint(1)"),
        fenced("print('x' * 10_000_000)"),  # huge output: capped
        fenced(f"print(len(open({str(secret)!r}).read()))"),  # a host file: not visible
        fenced("import os\nprint(len(os.environ.get('LONGTHINK_TEST_SECRET', '')))"),  # host env: not passed
        fenced("import os\nos.system('touch /tmp/pwned-by-program')\nprint(7)"),
    ]
    ctx = SearchContext(llm=ScriptedLLM(replies), runner=runner)
    [cands] = await ctx.sample(problem(), len(replies))
    loop, net, huge, host_file, env, shell = cands
    assert loop.answer is None and "killed" in (loop.parse_error or "")
    assert net.answer is None and "program failed" in (net.parse_error or "")
    assert huge.execution is not None and len(huge.execution.output) <= 4000
    assert host_file.answer is None  # FileNotFoundError inside the sandbox
    if runner.sandbox.kind == "bwrap":
        assert env.answer == "0"
        assert shell.answer == "7" and not Path("/tmp/pwned-by-program").exists()


async def test_self_consistency_votes_on_executed_values(runner: SandboxRunner) -> None:
    def reply(prompt: str, params: object, index: int) -> str:
        return fenced("print(17 * 24)" if index != 1 else "print(17 + 24)")

    ctx = SearchContext(llm=FunctionLLM(reply), runner=runner)
    res = await SelfConsistency(n=5).solve(problem(), ctx)
    assert res.answer == "408"
    assert res.votes == {"408": 4.0, "41": 1.0}


class _FixedScorer:
    """Scores by a table of answers (a stand-in reward that knows which answer is right)."""

    name = "fixed"

    def __init__(self, table: dict[str | None, float]) -> None:
        self.table = table

    async def score(self, problem: Problem, candidates: list[Candidate]) -> list[Score]:
        return [Score(self.name, self.table.get(c.answer, 0.0)) for c in candidates]


async def test_adaptive_stops_when_the_reward_verifies_a_candidate(runner: SandboxRunner) -> None:
    replies = [fenced("print(41)"), fenced("print(408)"), fenced("print(41)"), fenced("print(41)")]
    scorer: Scorer = _FixedScorer({"408": 0.95, "41": 0.2})
    ctx = SearchContext(llm=ScriptedLLM(replies), runner=runner)
    strategy = AdaptiveConsistency(max_samples=4, batch=2, min_samples=4, scorer=scorer, reward_threshold=0.9)
    res = await strategy.solve(problem(), ctx)
    assert res.stopped == "verified" and len(res.candidates) == 2
    assert res.answer == "408"  # the reward-weighted vote: 0.95 > 0.2
    with pytest.raises(ConfigError):
        AdaptiveConsistency(reward_threshold=1.5)


# -- the agent's choice ---------------------------------------------------------------------------------------------
def test_numeric_steps_use_program_mode_on_a_coder_model() -> None:
    class Deps:
        def __init__(self, model: str, mode: str) -> None:
            self.llm = ScriptedLLM(model=model)
            self.options = AgentOptions(answer_mode=mode)

    number = PlanStep(id="s1", goal="Compute the total")
    number = number.model_copy(update={"answer_kind": "number"})
    text = number.model_copy(update={"answer_kind": "text"})
    assert answer_mode(number, Deps("qwen2.5-coder-0.5b-instruct", "auto")) == "program"  # type: ignore[arg-type]
    assert answer_mode(number, Deps("smollm2-135m-instruct", "auto")) == "text"  # type: ignore[arg-type]
    assert answer_mode(number, Deps("smollm2-135m-instruct", "program")) == "program"  # type: ignore[arg-type]
    assert answer_mode(text, Deps("qwen2.5-coder-0.5b-instruct", "program")) == "text"  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="answer_mode"):
        AgentOptions(answer_mode="python")


# -- the real model ---------------------------------------------------------------------------------------------------
@pytest.mark.real_model
def test_program_mode_on_the_embedded_model_from_the_cli(tmp_path: Path) -> None:
    """The newcomer's question, four samples in program mode: the programs run and vote to 408."""
    env = {**os.environ, "LONGTHINK_N_THREADS": "1", "LONGTHINK_CONFIG": str(tmp_path / "none.toml")}
    cmd = [str(Path(sys.executable).parent / "longthink"), "generate", "What is 17 * 24?", "-n", "4",
           "--mode", "program", "--seed", "1", "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["mode"] == "program" and len(out["completions"]) == 4
    assert out["answer"] == "408"
    assert all(c["answer"] == "408" or c["error"] for c in out["completions"])
