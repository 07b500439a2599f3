"""A run's status means something: ``done`` only when every answer passed a check that could have failed it
(programs that executed to the same value, a verifier, a real scorer), ``unverified`` with the reason otherwise —
never "verified" by the policy model's own confidence alone — in the API, the events, the store and the CLI."""

from __future__ import annotations

import json
import re
from typing import Any

import test_agent as general

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.events import Answer, Verification
from longthink.llm.types import SamplingParams
from longthink.outcome import StepOutcome
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM

PLAN, REQUEST = general.PLAN, general.REQUEST  # the bakery's three-step plan
PROGRAMS = {"Count the loaves": "print(120)", "Find the price": "print(3)", "Multiply": "print(120 * 3)"}


def replies(*, combined: Any = "120 * 3", s1: Any = None) -> FunctionLLM:
    """The planner's plan; each step's program (program mode) or reasoning (text mode); ``s1(index)`` overrides the
    first step's program; ``combined``: the expression the combining step's programs print (or ``combined(index)``).
    Programs read a figure the request states or compute (see ``agreement``)."""

    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        if "careful planner" in prompt:
            return json.dumps(PLAN)
        if "combine the results" in prompt:
            value = combined(index) if callable(combined) else combined
            if "Python program" in prompt:
                return f"```python\nprint({value})\n```"
            return f"Revenue is 120 * 3. Answer: {eval(value)}"  # the test's own expressions
        step = re.search(r"Your step: (.*)", prompt)
        goal = step.group(1) if step else ""
        program = next((p for k, p in PROGRAMS.items() if goal.startswith(k)), "print(0)")
        if s1 is not None and goal.startswith("Count the loaves"):
            program = s1(index)
        if "Python program" in prompt:
            return f"```python\n{program}\n```"
        return f"Worked out. Answer: {eval(program.removeprefix('print'))}"  # the test's own constant programs

    return FunctionLLM(reply)


def agent(llm: FunctionLLM, **options: Any) -> Agent:
    return Agent(llm=llm, options=AgentOptions(**options), store=MemoryStore(), checkpoints=None)


async def run(a: Agent, run_id: str) -> tuple[Any, list[Any]]:
    handle = a.astream(REQUEST, run_id=run_id)
    events = [e async for e in handle]
    return await handle.result(), events


async def test_programs_that_agree_verify_every_step_and_the_run_is_done() -> None:
    a = agent(replies(), answer_mode="program")
    result, events = await run(a, "agree")
    assert result.status == "done" and result.answer == "360", result.justification
    for sid in ("s1", "s2", "s3"):
        step = result.steps[sid]
        assert step.verified and not step.unchecked and step.status == "done"
        assert step.reason.startswith("execution agreement: 3 of 3 programs printed"), step.reason
    [answer] = [e for e in events if isinstance(e, Answer)]
    assert answer.status == "done" and answer.reason == "every step passed its check" == result.reason
    assert "Unverified" not in result.justification
    record = a.store.get_run("agree")
    assert record is not None and record.run.status == "done"


async def test_self_certainty_alone_never_verifies_the_run_is_unverified_and_says_why() -> None:
    a = agent(replies(), answer_mode="text")
    result, events = await run(a, "text")
    assert result.answer == "360" and result.status == "unverified"
    for sid in ("s1", "s2", "s3"):
        step = result.steps[sid]
        assert not step.verified and step.unchecked and step.status == "unverified" and step.settled
        assert "self_certainty alone" in step.reason
    checks = [e for e in events if isinstance(e, Verification) and e.step_id in ("s1", "s2", "s3")]
    assert len(checks) == 3 and all(e.unchecked and not e.passed for e in checks)
    assert not [e for e in events if e.kind == "replan"]  # an unchecked answer is not a failed one: no re-planning
    assert "self_certainty alone" in result.reason and "Unverified: s1:" in result.justification
    assert "unchecked" in result.justification and "NOT verified" not in result.justification
    assert result.summary()["reason"] == result.reason
    record = a.store.get_run("text")
    assert record is not None and record.run.status == "unverified"


async def test_programs_that_disagree_leave_the_answer_unverified() -> None:
    a = agent(replies(s1=lambda i: f"print(120 + {i})"), answer_mode="program")
    result, _ = await run(a, "disagree")
    s1 = result.steps["s1"]
    assert s1.unchecked and not s1.verified and "the programs disagree (1 of 3 printed" in s1.reason
    assert result.steps["s2"].verified and result.status == "unverified"
    assert result.reason.startswith("s1: unverified: the programs disagree")


async def test_one_program_is_no_agreement() -> None:
    a = agent(replies(), answer_mode="program", strategy="cot")
    result, _ = await run(a, "one")
    assert result.status == "unverified"
    assert all(
        result.steps[s].reason == "unverified: one program ran, with nothing to agree with" for s in ("s1", "s2")
    )


async def test_a_combined_number_no_verified_step_produced_is_unverified_unless_its_programs_agree() -> None:
    a = agent(replies(combined=lambda i: f"350 + {10 * (i > 0) + i}"), answer_mode="program")  # 350, 361, 362
    result, _ = await run(a, "combined")
    assert all(result.steps[s].verified for s in ("s1", "s2", "s3"))
    picked = result.answer
    assert picked in ("350", "361", "362") and result.status == "unverified"
    assert result.reason == (
        f"the combined answer {picked} is none of the verified steps' results "
        f"(unverified: the programs disagree (1 of 3 printed {picked}))"
    )
    # programs that combine the results and agree are a check of their own
    agreed, _ = await run(agent(replies(combined="120 * 3 - 5"), answer_mode="program"), "agreed")
    assert agreed.answer == "355" and agreed.status == "done"


async def test_a_verifier_that_passes_makes_done_and_an_injected_scorer_is_a_real_check() -> None:
    from longthink.rewards.verifier import Verifier

    passed = Agent(llm=replies(), options=AgentOptions(answer_mode="text"), verifier=lambda s, r: (True, "checked"),
                   store=MemoryStore(), checkpoints=None)  # fmt: skip
    result, _ = await run(passed, "verifier")
    assert result.status == "done" and all(result.steps[s].reason == "checked" for s in ("s1", "s2", "s3"))

    scored = Agent(llm=replies(), options=AgentOptions(answer_mode="text"), store=MemoryStore(), checkpoints=None,
                   scorer=Verifier(lambda problem, c: 1.0, name="exact_check"))  # fmt: skip
    result, _ = await run(scored, "scorer")
    assert result.status == "done", result.reason
    assert result.steps["s1"].reason == "exact_check scored 1.000 >= 0.0"


def test_an_old_outcome_without_the_field_reads_as_before() -> None:
    """Outcomes checkpointed before ``unchecked`` existed: a failed check is still unsettled (re-planned)."""
    old = StepOutcome.load({"step_id": "s1", "answer": "3", "verified": False, "reason": "below threshold"})
    assert old.status == "partial" and not old.settled
    assert StepOutcome(step_id="s1", answer=None, unchecked=True).status == "failed"


def test_the_chat_says_why_an_answer_is_unverified() -> None:
    import io

    from rich.console import Console

    from longthink.cli.chat import ChatSession

    out = io.StringIO()
    session = ChatSession(agent(replies(), answer_mode="text"), Console(file=out, width=200, no_color=True))
    session.ask(REQUEST)
    shown = out.getvalue()
    assert "unverified: s1: unverified: no check could fail the answer (self_certainty alone)" in shown
    assert "· unverified ·" in shown and "[yellow]unchecked[/yellow]" not in shown and "unchecked" in shown

    out.truncate(0)
    ChatSession(agent(replies(), answer_mode="program"), Console(file=out, width=200, no_color=True)).ask(REQUEST)
    assert "· done ·" in out.getvalue() and "unverified:" not in out.getvalue()


async def test_programs_that_print_a_number_they_were_written_with_verify_nothing() -> None:
    """Three programs that print a number the request does not state (``hours = 60; print(hours)``) agree on a
    guess; a program that prints a figure the request states (the 120 loaves) reads it, which is evidence."""
    a = agent(replies(s1=lambda i: "loaves = 125\nprint(loaves)"), answer_mode="program")
    result, _ = await run(a, "guess")
    assert result.steps["s1"].unchecked and result.steps["s1"].answer == "125"
    assert result.steps["s1"].reason.startswith("unverified: the programs print a number they were written with")
    assert result.steps["s2"].verified and result.status == "unverified"


def test_what_computes() -> None:
    from longthink.program import computes

    assert computes("print(120 * 3)") and computes("x = 5\nx += 1\nprint(x)") and computes("print(round(2.5))")
    assert not computes("hours = 60\nprint(hours)") and not computes("print(42)") and not computes("not python(")


async def test_a_result_and_its_rounding_to_cents_agree() -> None:
    from longthink.agents.steps import same_figure

    # two programs print the price per loaf whole, one rounds it to cents: three programs agree
    s1 = lambda i: "print(round(361 / 3, 2))" if i == 0 else "print(361 / 3)"  # noqa: E731
    result, _ = await run(agent(replies(s1=s1), answer_mode="program"), "cents")
    step = result.steps["s1"]
    assert step.verified and step.reason.startswith("execution agreement: 3 of 3 programs printed"), step.reason
    assert same_figure("99.068629", "99.07") and same_figure("99.07", "99.068629") and same_figure("5", "5")
    for a, b in [("100", "99.5"), ("12.5", "12.46"), ("0.001", "0.004"), ("1.23", "1.236"), ("x", "1")]:
        assert not same_figure(a, b), (a, b)
    assert not same_figure("1", None)
