"""Plans: parsing and repair of model output, DAG checks, deliberate selection, replanning."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from longthink.events import EventBus, Recorder
from longthink.planners import Plan, Planner, PlanStep, parse_plan
from longthink.search import SearchContext
from longthink.testing import ScriptedLLM

GOOD = {
    "steps": [
        {"id": "s1", "goal": "List the bakery's current costs", "depends_on": []},
        {"id": "s2", "goal": "List the bakery's revenue streams", "depends_on": []},
        {"id": "s3", "goal": "Compute the profit from costs and revenue", "depends_on": ["s1", "s2"],
         "answer_kind": "number"},
    ]
}  # fmt: skip


def test_valid_json_plan_and_layers() -> None:
    parsed = parse_plan("Here is the plan:\n```json\n" + json.dumps(GOOD) + "\n```")
    assert parsed.plan is not None and parsed.error is None and parsed.repaired == ()
    layers = parsed.plan.layers()
    assert [[s.id for s in layer] for layer in layers] == [["s1", "s2"], ["s3"]]
    assert [s.id for s in parsed.plan.ready({"s1"})] == ["s2"]
    assert parsed.plan.step("s3").answer_kind == "number"


def test_repairs_are_noted() -> None:
    messy = {
        "plan": [
            {"goal": "first thing to do", "depends_on": "s9"},
            {"id": "s1", "description": "second thing to do", "dependencies": ["s1"]},
            "third thing to do",
            {"id": "bad id!", "goal": ["a", "list", "goal"], "answer_kind": "essay"},
        ]
    }
    parsed = parse_plan(json.dumps(messy))
    assert parsed.plan is not None
    assert [s.id for s in parsed.plan.steps] == ["s1", "s2", "s3", "s4"]
    assert parsed.plan.steps[0].depends_on == [] and parsed.plan.steps[3].answer_kind == "text"
    assert any("renamed" in n for n in parsed.repaired) and any("dependencies" in n for n in parsed.repaired)


def test_cycle_falls_back_to_listed_order() -> None:
    cyclic = {"steps": [{"id": "a", "goal": "do a thing", "depends_on": ["b"]},
                        {"id": "b", "goal": "do b thing", "depends_on": ["a"]}]}  # fmt: skip
    parsed = parse_plan(json.dumps(cyclic))
    assert parsed.plan is not None
    assert parsed.plan.step("b").depends_on == ["a"] and parsed.plan.step("a").depends_on == []
    with pytest.raises(ValidationError, match="cycle"):
        Plan.model_validate(cyclic)


def test_numbered_list_and_garbage() -> None:
    parsed = parse_plan("1. Gather the data\n2) Analyse the data\n- Write the report")
    assert parsed.plan is not None and [s.depends_on for s in parsed.plan.steps] == [[], ["s1"], ["s2"]]
    bad = parse_plan("I cannot help with that.")
    assert bad.plan is None and bad.error
    with pytest.raises(ValidationError):
        PlanStep(id="x y", goal="g")


async def test_planner_selects_the_best_candidate_in_one_batch() -> None:
    one_step = json.dumps({"steps": [{"id": "s1", "goal": "everything"}]})
    llm = ScriptedLLM([one_step, "garbage", json.dumps(GOOD)])
    bus, rec = EventBus(), Recorder()
    bus.subscribe(rec)
    choice = await Planner(candidates=3).propose("Grow the bakery's profit", SearchContext(llm=llm, events=bus, seed=1))
    assert len(llm.calls) == 1 and llm.calls[0][1].n == 3
    assert choice.chosen_index == 2 and [s.id for s in choice.plan.steps] == ["s1", "s2", "s3"]
    assert len(rec.of("plan_proposed")) == 3 and len(rec.of("plan_selected")) == 1
    assert [c.score("plan_structure") for c in choice.candidates][1] == 0.0


async def test_all_plans_unreadable_falls_back_to_one_step() -> None:
    choice = await Planner(candidates=2).propose("Do it", SearchContext(llm=ScriptedLLM(["no", "nope"]), seed=1))
    assert choice.chosen_index is None and len(choice.plan.steps) == 1 and choice.plan.steps[0].goal == "Do it"


async def test_replan_keeps_finished_steps_and_renames_new_ones() -> None:
    plan = Plan.model_validate(GOOD)
    revised = json.dumps({"steps": [{"id": "s1", "goal": "Estimate profit from the known costs",
                                     "depends_on": ["s1"]}]})  # fmt: skip
    llm = ScriptedLLM([revised, revised])
    choice = await Planner(candidates=2).replan(
        "Grow profit", plan, {"s1": "costs: 10", "s2": "revenue: 12"}, plan.step("s3"), "wrong sum",
        SearchContext(llm=llm, seed=1),
    )  # fmt: skip
    ids = [s.id for s in choice.plan.steps]
    assert ids == ["s1", "s2", "r1_s1"]
    assert "This step failed: s3" in llm.calls[0][0][0] and "wrong sum" in llm.calls[0][0][0]


BAKERY = "A bakery sells 120 loaves a day at $3 each and 40 cakes at $12 each. What is its daily revenue?"


def test_quantities_the_request_does_not_state_are_found() -> None:
    from longthink.intake import quantities
    from longthink.planners.planner import invented_quantities

    assert quantities("1,200.50 and 1200.5, then 3.") == {"1200.5", "3"}
    plan = Plan.model_validate({"steps": [
        {"id": "s1", "goal": "Multiply 120 loaves by $3 to get 360"},
        {"id": "s2", "goal": "Convert it to euros", "tool": "calculator", "tool_args": {"expression": "840*0.92"}},
        {"id": "s3", "goal": "Add the 40 cakes at $12 for 24 hours"},
    ]})  # fmt: skip
    # 24 is a common constant, 360 = 120 * 3 and 840 = 120 * 3 + 40 * 12 are results worked out; 0.92 is made up
    assert invented_quantities(plan, BAKERY) == ["0.92"]
    guessed = Plan.model_validate({"steps": [{"id": "s1", "goal": "Add 6840 to the 17 delivery fees"}]})
    assert invented_quantities(guessed, BAKERY) == ["17", "6840"]


async def test_a_plan_with_made_up_quantities_loses_to_one_without() -> None:
    invented = {"steps": [
        {"id": "s1", "goal": "Compute the loaf revenue as 120 times 3 plus 17 delivery", "answer_kind": "number"},
        {"id": "s2", "goal": "Convert the total revenue from dollars to euros at 0.92", "depends_on": ["s1"],
         "answer_kind": "number"},
    ]}  # fmt: skip
    grounded = {"steps": [
        {"id": "s1", "goal": "Compute the revenue from 120 loaves at $3", "answer_kind": "number"},
        {"id": "s2", "goal": "Compute the revenue from 40 cakes at $12", "answer_kind": "number"},
        {"id": "s3", "goal": "Add the two revenues for the daily total", "depends_on": ["s1", "s2"],
         "answer_kind": "number"},
    ]}  # fmt: skip
    llm = ScriptedLLM([json.dumps(invented), json.dumps(grounded)])
    choice = await Planner(candidates=2).propose(BAKERY, SearchContext(llm=llm, seed=1))
    assert choice.chosen_index == 1
    [bad, good] = choice.candidates
    assert bad.score("plan_structure") == pytest.approx(0.7) and good.score("plan_structure") == 1.0
    assert "quantities not in the request: 17, 0.92" in bad.scores[-1].rationale
