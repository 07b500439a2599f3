"""What a request asks for: a number when it states figures and its question asks for a quantity; a numeric
question stays with the general agent unless a pack's detector is certain. The examples are this file's own."""

from __future__ import annotations

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.events import RunStarted
from longthink.intake import asks_for_number, questions_of
from longthink.store import MemoryStore
from longthink.testing import arithmetic_llm

NUMBERS = [
    "What is 17 + 25?",
    "Calculate 15% of 240.",
    "My car does 34 miles per gallon. How far can I drive on 12 gallons?",
    "I earn 2,400 a month and pay 30% tax. What do I take home each month after tax?",
    "Our rent is 1200 and we split it 3 ways; what does each of us pay?",
    "We sold 40 mugs at $9 and 25 at $7. Work out the total revenue for me.",
    "Prices rose from 80 to 92. By how much did they rise, in percent?",
    "A tank holds 500 litres and leaks 3 litres an hour. What's the volume left after 2 days?",
]
TEXTS = [
    "Plan a 3-day trip to Lyon on a 600 euro budget and total the costs.",
    "We have 3 warehouses and 12 trucks. Write a plan to reduce delivery times.",
    "Explain why a 5% discount on 200 items matters.",
    "Make a business plan to grow our company profit by 10% next year.",
    "Summarise the history of Rome in 3 sentences.",
    "What is the capital of France?",
    "Our revenue fell 8% last quarter. How can we win customers back?",
]


@pytest.mark.parametrize("request_", NUMBERS)
def test_questions_that_ask_for_a_quantity_are_numbers(request_: str) -> None:
    assert asks_for_number(request_)


@pytest.mark.parametrize("request_", TEXTS)
def test_plans_explanations_advice_and_questions_without_figures_are_texts(request_: str) -> None:
    assert not asks_for_number(request_)


def test_the_question_is_the_sentence_that_asks() -> None:
    assert questions_of("We sell 3 kinds. Which sells best? Tell me the total.") == ["Which sells best?"]
    assert questions_of("We sell 3 kinds. Tell me the total.") == ["Tell me the total."]


VAN = ("A van drives from the depot 42 km to the first customer, then 17 km to the second and 55 km back. "
       "At 8 litres per 100 km, how much fuel does it use?")  # fmt: skip


async def started(request: str, **options: object) -> RunStarted:
    agent = Agent(llm=arithmetic_llm(0), options=AgentOptions(**options), store=MemoryStore(), checkpoints=None)
    handle = agent.astream(request)
    events = [e async for e in handle]
    await handle.result()
    return next(e for e in events if isinstance(e, RunStarted))


async def test_a_numeric_question_stays_with_the_general_agent_unless_a_pack_is_certain() -> None:
    from longthink.domains.registry import REGISTRY

    assert REGISTRY.detect(VAN) == "routing" and REGISTRY.scores(VAN)["routing"] < 1.0  # the routing pack would take it
    run = await started(VAN)
    assert (run.domain, run.answer_kind) == ("general", "number")
    chosen = await started(VAN, domain="routing")  # a pack the caller names is used
    assert chosen.domain == "routing"


def test_steps_that_ask_for_a_quantity_answer_with_a_number_in_a_numeric_request() -> None:
    from longthink.intake import asks_for_quantity, numeric_steps
    from longthink.planners import Plan

    assert asks_for_quantity("Calculate Anna's total cost") and asks_for_quantity("How many hours are over 40?")
    assert not asks_for_quantity("List the costs") and not asks_for_quantity("Explain the pricing strategy")
    plan = Plan.model_validate({"steps": [
        {"id": "s1", "goal": "Calculate the total revenue for the month"},
        {"id": "s2", "goal": "List the expenses"},
        {"id": "s3", "goal": "Compute the sum", "tool": "calculator", "tool_args": {"expression": "1+2"}},
    ]})  # fmt: skip
    numeric = numeric_steps(plan, "We sold 40 mugs at $9. What was the revenue?")
    assert [s.answer_kind for s in numeric.steps] == ["number", "text", "text"]
    assert numeric_steps(plan, "Write a plan to sell 40 mugs.") == plan  # a text request keeps the planner's kinds


async def test_the_selected_plan_has_numeric_steps_for_a_numeric_request() -> None:
    import json

    from longthink.planners import Planner
    from longthink.search import SearchContext
    from longthink.testing import ScriptedLLM

    text_kinds = {"steps": [{"id": "s1", "goal": "Calculate the revenue from 40 mugs at $9"},
                            {"id": "s2", "goal": "Calculate the profit after $100 of costs", "depends_on": ["s1"]}]}  # fmt: skip
    choice = await Planner(candidates=1).propose(
        "We sold 40 mugs at $9 and spent $100. What was the profit?",
        SearchContext(llm=ScriptedLLM([json.dumps(text_kinds)]), seed=1),
    )
    assert [s.answer_kind for s in choice.plan.steps] == ["number", "number"]
