"""The grounding check (:mod:`longthink.domains.routing.grounding`) and what the routing pipeline does with it: any
reading of a request — the model's or the rules' — is accepted only when every customer comes from ONE span of the
request holding its location and its demand together, the customer count, the fleet and the depot are the ones the
request states, and no distractor became a value. Through the agent with scripted doubles: a complete structured
request is read without the model; a wrong model reading is rejected and the run does not say "verified"; an
unclear request asks, or (not asking) states what it assumed at the top of the answer and is never "verified".

Every request here is written for these tests. Solver runs are the pack's default (0.25 s x 3 configurations)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.domains.routing.grounding import ground, questions
from longthink.domains.routing.pipeline import RoutingPipeline
from longthink.domains.routing.problem import RoutingProblem
from longthink.domains.routing.structure import read_request
from longthink.llm.types import SamplingParams
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM

LIST = """Orders for Friday — call 01632 960 555 with changes.
- Depot: Canal Basin at (10, 10)
- 2 vans, 30 crates each
- Nook Books: (4, 14), 12 crates
- Pine Pharmacy: (15, 3), 9 crates
- Quill Café: (17, 16), 14 crates"""


def problem(**changes: Any) -> RoutingProblem:
    """LIST's problem as a faithful reading has it, with ``changes`` (``c2={...}`` updates customer 2; a
    ``customers`` list replaces them all)."""
    customers = {
        1: {"id": 1, "x": 4, "y": 14, "demand": 12},
        2: {"id": 2, "x": 15, "y": 3, "demand": 9},
        3: {"id": 3, "x": 17, "y": 16, "demand": 14},
    }
    data: dict[str, Any] = {"depot": {"x": 10, "y": 10}, "fleet": {"vehicles": 2, "capacity": 30}}
    for key, value in changes.items():
        if key.startswith("c") and key[1:].isdigit():
            customers[int(key[1:])] |= value
        elif key == "customers":
            customers = dict(enumerate(value, start=1))
        else:
            data[key] = value
    return RoutingProblem.model_validate({**data, "customers": list(customers.values())})


READING = read_request(LIST)


def test_a_faithful_reading_is_grounded_and_so_is_the_rules_own() -> None:
    assert READING.complete and READING.problem is not None
    assert ground(problem(), READING) is None
    assert ground(READING.problem, READING) is None
    named = problem(c1={"name": "Nook Books"}, c3={"name": "quill cafe"})  # names may be written another way
    assert ground(named, READING) is None


@pytest.mark.parametrize(
    ("reading", "why"),
    [
        # a customer assembled from two lines: Nook's location with Pine's demand
        (problem(c1={"demand": 9}), "customer 1: demand 9 is not what its own line states (12 crate, 'Nook Books')"),
        # a demand copied from another customer
        (problem(c3={"demand": 12}), "customer 3: demand 12 is not what its own line states"),
        # two customers read from one line
        (problem(c2={"x": 4, "y": 14, "demand": 12}), "customer 1 and customer 2 are both read from one stop"),
        # a location no line states (x and y from two customers)
        (problem(c2={"x": 15, "y": 14}), "customer 2: (15, 14) is not a location the request states for a stop"),
        # a customer at the depot
        (problem(c2={"x": 10, "y": 10}), "customer 2: (10, 10) is the depot's location"),
        # one customer dropped, or one invented
        (problem(customers=[{"id": 1, "x": 4, "y": 14, "demand": 12}, {"id": 2, "x": 15, "y": 3, "demand": 9}]),
         "the request states 3 customers; the reading has 2"),
        # the fleet: left unlimited, a size from the phone number, the capacity of a demand
        (problem(fleet={"vehicles": None, "capacity": 30}), "the request states a fleet of 2 ('2'); the reading has an "
                                                            "unlimited fleet"),
        (problem(fleet={"vehicles": 5, "capacity": 30}), "the request states a fleet of 2"),
        (problem(fleet={"vehicles": 3, "capacity": 14}), "the request states a fleet of 2"),
        (problem(fleet={"vehicles": 2, "capacity": 20}), "the capacity 20 is not what the request states"),
        (problem(depot={"x": 4, "y": 14}), "the depot is at (10, 10) in the request, not (4, 14)"),
        # a time window the request never states for this stop
        (problem(time_windows=True, c2={"ready": 0, "due": 55}), "customer 2: the due time 55 is not stated for it"),
        # another customer's name on this one's values
        (problem(c1={"name": "Quill Café"}), "customer 1 (Quill Café): the name 'Quill Café' is not the one its line "
                                             "states ('Nook Books')"),
    ],
)  # fmt: skip
def test_an_ungrounded_reading_is_rejected_with_the_culprit(reading: RoutingProblem, why: str) -> None:
    reason = ground(reading, READING)
    assert reason is not None and why in reason, reason


def test_numbered_customers_keep_their_numbers() -> None:
    reading = read_request("Depot (0, 0); 1 truck, 20 units.\n- store 4: (1, 2), 5 units\n- store 9: (3, 1), 6 units")
    good = RoutingProblem.model_validate({"depot": {"x": 0, "y": 0}, "fleet": {"vehicles": 1, "capacity": 20},
                                          "customers": [{"id": 4, "x": 1, "y": 2, "demand": 5},
                                                        {"id": 9, "x": 3, "y": 1, "demand": 6}]})  # fmt: skip
    assert ground(good, reading) is None
    renumbered = good.model_copy(update={"customers": tuple(c.model_copy(update={"id": i}) for i, c in
                                                            enumerate(good.customers, start=1))})  # fmt: skip
    assert "is stated as 'store 4' (number 4)" in (ground(renumbered, reading) or "")


def test_amounts_in_any_one_unit_the_request_converts_to() -> None:
    reading = read_request("Depot (0, 0); 1 lorry, max load 3 t.\n- Pit A: (1, 1), 1.5 t\n- Pit B: (2, 2), 900 kg")
    kg = {"depot": {"x": 0, "y": 0}, "fleet": {"vehicles": 1, "capacity": 3000},
          "customers": [{"id": 1, "x": 1, "y": 1, "demand": 1500}, {"id": 2, "x": 2, "y": 2, "demand": 900}]}  # fmt: skip
    assert ground(RoutingProblem.model_validate(kg), reading) is None
    mixed = {**kg, "customers": [{"id": 1, "x": 1, "y": 1, "demand": 2}, {"id": 2, "x": 2, "y": 2, "demand": 900}]}
    reason = ground(RoutingProblem.model_validate(mixed), reading)  # 1.5 t read as 2 of some unit, 900 kg as kg
    assert "customer 1: demand 2 is not what its own line states (1.5 t, 'Pit A')" in (reason or ""), reason


def test_questions_are_the_readings_issues() -> None:
    unclear = read_request(
        "Depot (0, 0). We have 3 vans — no, 2 vans, 10 units each.\n- A: (1, 1), 3 units\n- B: (2, 2), 4 units"
    )
    [q] = questions(unclear)
    assert q.id == "fleet_size" and q.text == "How many vehicles are on the road: 3 or 2?" and q.default == "2"
    assert questions(READING) == []
    assert RoutingPipeline().questions(LIST) == [] and RoutingPipeline().questions(LIST.replace(", 30 crates each", ""))


# -- through the agent ---------------------------------------------------------------------------------------------
def no_model(prompt: str, params: SamplingParams, index: int) -> str:
    raise AssertionError("a complete structured request is read without the model")


def agent(llm: FunctionLLM, tmp_path: Path, **options: Any) -> Agent:
    opts = AgentOptions(domain="routing", artifacts_dir=str(tmp_path / "artifacts"), **options)
    return Agent(llm=llm, options=opts, store=MemoryStore(), checkpoints=None)


async def test_a_structured_request_is_read_without_the_model_and_verified(tmp_path: Path) -> None:
    result = await agent(FunctionLLM(no_model), tmp_path).asolve(LIST, run_id="list")
    assert result.status == "done", result.justification
    extract = result.steps["extract"]
    assert extract.data["read_by"] == "structure" and extract.candidates == 0 and extract.data["assumed"] == []
    assert extract.data["reading"]["ignored"][0]["kind"] == "phone"
    assert result.steps["verify"].verified and result.answer is not None and "verified feasible" in result.answer
    assert "Nook Books" in result.answer and result.spend.completion_tokens == 0


PROSE = ("Two vans, 12 crates each, leave our depot at (5, 5). The bakery at (1, 8) needs 6 crates, the deli at "
         "(9, 2) needs 4 crates and the café at (7, 9) needs 5 crates.")  # fmt: skip


def whole_reply(demands: tuple[int, int, int], capacity: int = 12) -> str:
    customers = [{"id": i, "x": x, "y": y, "demand": d} for i, ((x, y), d) in
                 enumerate(zip(((1, 8), (9, 2), (7, 9)), demands, strict=True), start=1)]  # fmt: skip
    return json.dumps({"depot": {"x": 5, "y": 5}, "vehicles": 2, "capacity": capacity, "customers": customers})


def replying(text: str) -> FunctionLLM:
    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        assert "JSON shape" in prompt, "named customers: the whole request is read at once"
        return text

    return FunctionLLM(reply)


async def test_prose_confirmed_by_the_model_is_verified(tmp_path: Path) -> None:
    assert not read_request(PROSE).structured  # prose: the model reads it, checked against the rules' reading
    result = await agent(replying(whole_reply((6, 4, 5))), tmp_path).asolve(PROSE)
    assert result.status == "done", result.justification
    extract = result.steps["extract"]
    assert extract.data["read_by"] == "model" and extract.data["assumed"] == [] and extract.candidates == 4
    assert [c["name"] for c in extract.data["problem"]["customers"]] == ["bakery", "deli", "café"]  # the rules' names
    assert result.steps["verify"].verified and "verified feasible" in (result.answer or "")


async def test_a_wrong_model_reading_is_rejected_and_the_run_does_not_say_verified(tmp_path: Path) -> None:
    """Every sample copies the bakery's demand to the café: each number is in the request, so the old checks passed
    it; the grounding check rejects it, the run states the rules' reading as an assumption and verifies nothing."""
    result = await agent(replying(whole_reply((6, 4, 6))), tmp_path).asolve(PROSE)
    extract, check = result.steps["extract"], result.steps["verify"]
    assert "customer 3: demand 6 is not what its own line states" in extract.reason, extract.reason
    assert extract.data["read_by"] == "structure, unconfirmed"
    assert [c["demand"] for c in extract.data["problem"]["customers"]] == [6, 4, 5]  # what the request states
    assert not check.verified and "ASSUMED" in check.reason
    assert result.status == "partial" and result.answer is not None
    assert result.answer.startswith("Assumed (not stated in the request")
    assert (
        "verified feasible" not in result.answer and "feasible for the assumed problem, not verified" in result.answer
    )


async def test_without_a_rule_reading_a_wrong_model_reading_fails_the_run(tmp_path: Path) -> None:
    unclear = PROSE.replace("Two vans, 12 crates each, leave", "Two vans, with a limit of 12 on board, leave")
    reading = read_request(unclear)
    assert reading.problem is None and not reading.issues  # a number the rules cannot place: no question, no problem
    result = await agent(replying(whole_reply((6, 4, 6))), tmp_path).asolve(unclear)
    assert result.status == "failed" and result.answer is None
    assert "demand 6 is not what its own line states" in result.justification
    good = await agent(replying(whole_reply((6, 4, 5))), tmp_path).asolve(unclear)
    assert good.status == "done" and good.steps["verify"].verified, good.justification


UNCLEAR = "Depot: (0, 0). 2 vans.\n- Moss: (1, 2), 4 units\n- Reed: (3, 1), 5 units\n- Sage: (2, 5), 3 units"


async def test_an_unclear_request_asks_and_the_answer_is_a_fact(tmp_path: Path) -> None:
    a = agent(FunctionLLM(no_model), tmp_path, ask_missing=True)
    waiting = await a.asolve(UNCLEAR, run_id="ask")
    assert waiting.status == "awaiting_input" and [q.id for q in waiting.questions] == ["vehicle_capacity"]
    assert waiting.answer is None and "extract" not in waiting.steps
    done = await a.aresume("ask", {"action": "answer", "answers": {"vehicle_capacity": "8 units"}})
    assert done.status == "done" and done.steps["verify"].verified, done.justification
    assert done.steps["extract"].data["problem"]["fleet"]["capacity"] == 8 and "Assumed" not in (done.answer or "")


async def test_an_unclear_request_not_asked_states_its_assumption_and_is_not_verified(tmp_path: Path) -> None:
    result = await agent(FunctionLLM(no_model), tmp_path).asolve(UNCLEAR)
    assert result.status == "partial" and result.answer is not None, result.justification
    first = result.answer.splitlines()[:2]
    assert first[0].startswith("Assumed (not stated in the request")
    assert first[1] == "- vehicle capacity: 7 (enough for the stated fleet to carry every amount; illustrative)"
    assert not result.steps["verify"].verified and "not verified" in result.answer


async def test_an_unclear_request_with_an_unusable_default_fails_with_the_question(tmp_path: Path) -> None:
    text = "Depot (0, 0). 2 vans, capacity 3 pallets each.\n- Kim: (1, 1), 20 boxes\n- Lee: (3, 3), 10 boxes"
    result = await agent(FunctionLLM(no_model), tmp_path).asolve(text)
    assert result.status == "failed" and result.answer is None
    assert "How many boxes make one pallet?" in result.justification
