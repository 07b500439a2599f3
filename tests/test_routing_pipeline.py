"""The routing pack's pipeline: extraction from plain language (parsing, validation against the request's own
numbers, voting) on hand-made good and bad extractions, the whole extract -> solve -> verify -> report plan
through the agent with a function double, an attached CVRPLIB file (no model), invalid requests reported
clearly, the solver tool's time-out and the request generator of the benchmark.

Solver runs here are 0.25 s per configuration, except the attached E-n22-k4 at 1 s.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.domains import registry
from longthink.domains.pipeline import StepContext, StepOutput, attach_files
from longthink.domains.routing import RoutingProblem, verify
from longthink.domains.routing.extract import (
    Reading,
    RequestFacts,
    canonical_key,
    describe_problem,
    extract_problem,
    extraction_problem,
    read_extraction,
    vote,
)
from longthink.domains.routing.generate import generate_request
from longthink.domains.routing.parsing import close_json
from longthink.domains.routing.passages import Passage, part_prefix, read_part, split_request, vote_part
from longthink.domains.routing.pipeline import RoutingOptions, RoutingPipeline, auto_time_limit, request_time_limit
from longthink.domains.routing.solver import RouteSolver, solve
from longthink.llm.types import SamplingParams
from longthink.search.context import SearchContext
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM
from longthink.tools import ToolRegistry, call_tool, default_tools

REQUEST = (
    "We run two trucks of capacity 50 from the Lyon depot at (0, 0). Store 1 at (3, 4) needs 10 units. "
    "Store 2 at (6, 8) needs 20 units. Store 3 at (-3, 4) needs 15 units. Minimise the total distance."
)
FACTS = RequestFacts.of(REQUEST)


def extraction(**changes: Any) -> dict[str, Any]:
    """The faithful extraction of REQUEST, with ``changes`` (``c2={...}`` updates customer 2; ``c2=None`` drops it)."""
    customers = {
        1: {"id": 1, "x": 3, "y": 4, "demand": 10},
        2: {"id": 2, "x": 6, "y": 8, "demand": 20},
        3: {"id": 3, "x": -3, "y": 4, "demand": 15},
    }
    data: dict[str, Any] = {"depot": {"x": 0, "y": 0}, "vehicles": 2, "capacity": 50}
    for key, value in changes.items():
        if key.startswith("c") and key[1:].isdigit():
            cid = int(key[1:])
            if value is None:
                customers.pop(cid)
            else:
                customers[cid] = {k: v for k, v in {**customers.get(cid, {}), **value}.items() if v is not None}
        else:
            data[key] = value
    return {**data, "customers": list(customers.values())}


def read(data: dict[str, Any] | str, facts: RequestFacts = FACTS, index: int = 0) -> Reading:
    return read_extraction(data if isinstance(data, str) else json.dumps(data), facts, index)


# -- the request's literal facts -------------------------------------------------------------------------------------
def test_request_facts_numbers_words_signs_and_passages() -> None:
    assert {0.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 15.0, 20.0, 50.0, -3.0} <= FACTS.numbers  # "two" counts as 2
    assert 25.0 not in FACTS.numbers
    assert FACTS.stop_ids == {1, 2, 3}
    assert FACTS.passages[2] == {2.0, 6.0, 8.0, 20.0}  # from "Store 2" to "Store 3"
    ranged = RequestFacts.of("Store 7 at (1, 2) needs 3 units, time window 10-60.")
    assert {10.0, 60.0} <= ranged.numbers and -60.0 not in ranged.numbers  # "10-60" is a range, not minus 60


# -- one extraction at a time: good ones accepted, bad ones rejected with the reason ---------------------------------
def test_a_faithful_extraction_is_accepted_in_any_reasonable_shape() -> None:
    good = read(extraction())
    assert good.accepted and good.complete and good.coverage == 1.0, good
    assert good.problem is not None and good.problem.fleet.vehicles == 2 and good.problem.rounding == "exact"
    shaped = {
        "depot": [0, 0],
        "fleet": {"vehicles": 2, "capacity": 50},
        "customers": [
            {"id": "3", "location": [-3, 4], "demand": 15},
            {"id": 1, "coords": [3, 4], "quantity": 10},
            {"id": 2, "x": 6, "y": 8, "demand": 20.0},
        ],
    }
    fenced = f"Here is the problem:\n```json\n{json.dumps(shaped)}\n```\nGood luck!"
    other = read(fenced)
    assert other.accepted and other.key == good.key  # same canonical problem
    rows = (
        '{"depot": [0, 0], "vehicles": 2, "capacity": 50, "customers": [[1, 3, 4, 10], [2, 6, 8, 20], [3, -3, 4, 15]]}'
    )
    assert read(rows).key == good.key  # the prompt's compact shape
    assert "has 5 values" in (read(rows.replace("[1, 3, 4, 10]", "[1, 3, 4, 10, 0]")).error or "")
    unclosed = json.dumps(extraction())[:-1]  # a small model's favourite slip: the last brace is missing
    assert read(unclosed).key == good.key


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (extraction(c2={"demand": 25}), "numbers not in the request: 25"),  # an invented demand
        (extraction(c2={"demand": 15}), "customer 2: 15 not stated for this customer"),  # another customer's number
        (extraction(c2={"x": 8}), "customer 2: 8 is used 2 times but stated 1"),  # one number filling two fields
        (extraction(c3={"y": None}), "customer 3 y is missing"),  # a missing coordinate
        (extraction(c3={"x": None, "y": None}), "customer 3 has no coordinates"),
        (extraction(c3=None), "customers [3] of the request are missing"),
        (extraction(c4={"id": 4, "x": 3, "y": 4, "demand": 10}), "customers [4] are not in the request"),
        (extraction(capacity=None), "the fleet's capacity is missing"),
        (extraction(c2={"demand": 20.5}), "customer 2 demand must be a whole number"),
        ("I am sorry, I cannot do that.", "no JSON object"),
        ('{"depot": {"x": 0, "y": 0}, "vehicles": 2}', "no 'customers' list"),
    ],
)
def test_bad_extractions_are_rejected_with_the_culprit(data: dict[str, Any] | str, reason: str) -> None:
    r = read(data)
    assert not r.accepted and r.problem is None
    assert r.error is not None and reason in r.error, r.error


# -- the fleet: fixed only where the request states its size ---------------------------------------------------------
OPEN_FLEET = REQUEST.replace("We run two trucks of capacity 50", "Our trucks carry 50 units each")


def test_a_fleet_size_is_kept_only_where_the_request_states_one() -> None:
    assert FACTS.fleet_size == 2  # "two trucks"
    assert RequestFacts.of("We need at least 3 trucks of capacity 50.").fleet_size is None  # a minimum, not a limit
    assert RequestFacts.of("Use at most 4 vans.").fleet_size == 4 and RequestFacts.of(OPEN_FLEET).fleet_size is None
    dropped = read(extraction(vehicles=None))  # the request says two trucks: an unlimited fleet is unfaithful
    assert not dropped.accepted and "states a fleet of 2 vehicles" in (dropped.error or ""), dropped.error
    free = read(extraction(vehicles=None), RequestFacts.of(OPEN_FLEET))
    assert free.accepted and free.problem is not None and free.problem.fleet.vehicles is None, free.error
    assert "unlimited vehicles x capacity 50" in describe_problem(free.problem)


def test_a_demand_over_capacity_is_reported_not_fixed() -> None:
    request = REQUEST.replace("needs 20 units", "needs 60 units")
    r = read(extraction(c2={"demand": 60}), RequestFacts.of(request))
    assert not r.accepted and r.error is not None
    assert "customer 2: demand 60 exceeds the vehicle capacity 50" in r.error
    verdict = vote([r, read(extraction(c2={"demand": 60}), RequestFacts.of(request), 1)])
    assert verdict.problem is None and "demand 60 exceeds the vehicle capacity 50" in verdict.reason


def test_total_demand_over_the_fleet_and_bad_windows_are_invalid() -> None:
    one_truck = REQUEST.replace("two trucks of capacity 50", "one truck of capacity 40")
    r = read(extraction(vehicles=1, capacity=40), RequestFacts.of(one_truck))
    assert not r.accepted and r.error is not None and "total demand 45 exceeds the fleet's capacity" in r.error
    timed = REQUEST.replace("needs 20 units.", "needs 20 units between time 40 and 5.")
    r = read(extraction(c2={"ready": 40, "due": 5}), RequestFacts.of(timed))
    assert not r.accepted and r.error is not None and "ready time 40 is after its due time 5" in r.error


# -- voting -----------------------------------------------------------------------------------------------------------
def test_voting_rejects_a_majority_of_invalid_extractions() -> None:
    """Three identical extractions that invent a demand outnumber the two faithful ones: a voter that counted
    every extraction would pick the invented problem."""
    bad, good = extraction(c2={"demand": 25}), extraction()
    result = vote(
        [read(bad, index=0), read(bad, index=1), read(bad, index=2), read(good, index=3), read(good, index=4)]
    )
    assert result.problem is not None and result.problem.customer(2).demand == 20
    assert result.votes == 2 and result.accepted == 2


def test_majority_among_valid_extractions_then_coverage() -> None:
    swapped = extraction(c1={"x": 4, "y": 3})  # every number is in the request, but customer 1 is misplaced
    good = extraction()
    order = [swapped, good, swapped, good, good]
    result = vote([read(d, index=i) for i, d in enumerate(order)])
    assert result.problem is not None and result.problem.customer(1).x == 3 and result.votes == 3
    assert "3 of 5 extractions agree (5 valid, 2 distinct)" in result.reason
    timed_request = REQUEST.replace("needs 20 units.", "needs 20 units, between time 5 and 40.")
    facts = RequestFacts.of(timed_request)
    dropped = read(extraction(), facts, 0)  # valid, but forgets the stated time window
    kept = read(extraction(c2={"ready": 5, "due": 40}), facts, 1)
    assert dropped.accepted and not dropped.complete and kept.complete
    result = vote([dropped, kept])
    assert result.problem is not None and result.problem.time_windows and result.problem.customer(2).due == 40


def test_close_json_and_the_extraction_prompt() -> None:
    assert json.loads(close_json('{"a": [1, {"b": 2}')) == {"a": [1, {"b": 2}]}
    assert json.loads(close_json('{"a": "x\\"y')) == {"a": 'x"y'}
    problem = extraction_problem(REQUEST)
    assert problem.answer_kind == "json" and REQUEST in problem.prompt[-1].content
    assert 160 <= problem.max_tokens <= 1500


# -- passage by passage -------------------------------------------------------------------------------------------------
PASSAGE_END = re.compile(r'JSON: \{(?:"(vehicles|capacity)": |"id": (\d+), "x": )$')


def passage_reply(prompt: str, data: dict[str, Any]) -> str:
    """What a faithful model writes after a passage's prefix, from ``data`` (the whole-request JSON shape)."""
    m = PASSAGE_END.search(prompt)
    assert m is not None, prompt[-200:]
    if m.group(2) is None:  # the fleet passage: its JSON starts at the vehicles, or at the capacity
        depot = data["depot"]
        fleet = {"vehicles": data.get("vehicles"), "capacity": data["capacity"], "depot_x": depot["x"],
                 "depot_y": depot["y"]}  # fmt: skip
        rest = {k: v for k, v in fleet.items() if k != m.group(1) and v is not None}
        return f"{fleet[m.group(1)]}, " + json.dumps(rest)[1:]
    row = next(c for c in data["customers"] if c["id"] == int(m.group(2)))
    return f"{row['x']}, " + json.dumps({k: v for k, v in row.items() if k not in ("id", "x")})[1:]


def test_a_request_splits_into_the_fleet_and_one_passage_per_customer() -> None:
    passages = split_request(REQUEST)
    assert passages is not None and [p.customer for p in passages] == [None, 1, 2, 3]
    assert "two trucks of capacity 50" in passages[0].text and "Minimise" in passages[0].text
    assert passages[2].text == "Store 2 at (6, 8) needs 20 units."
    prose = (
        "Our depot is at (10, 10) and we have 3 vans.\n1. Client no. 4 is at (1, 2). It orders 7 units.\n"
        "2. Client 5 at (3, 4) wants 8 units, client 6 at (5, 6) wants 9 units. Each van carries 30 units."
    )
    passages = split_request(prose)
    assert passages is not None, prose
    by_id = {p.customer: p.text for p in passages}
    assert by_id[4] == "Client no. 4 is at (1, 2). It orders 7 units."  # "It orders ..." is client 4's
    assert by_id[5] == "Client 5 at (3, 4) wants 8 units, " and by_id[6] == "client 6 at (5, 6) wants 9 units."
    assert "Each van carries 30 units." in by_id[None]  # a fleet sentence after a customer stays the fleet's
    assert split_request("Route 3 trucks of capacity 50 from (0, 0) to (1, 2), (3, 4).") is None  # nobody named
    assert split_request("Two trucks of capacity 50 at (0, 0). Store 1 needs 10 units.") is None  # no location


def test_passage_readings_good_and_bad() -> None:
    store = Passage(2, "Store 2 at (6, 8) needs 20 units, time window 20-90.")
    good = read_part(part_prefix(store) + '6, "y": 8, "demand": 20, "ready": 20, "due": 90}', store)
    assert good.accepted and good.complete and good.values == {"x": 6, "y": 8, "demand": 20, "ready": 20, "due": 90}
    assert read_part(part_prefix(store) + '6, "y": 8, "demand": 20, "ready": 20, "due": 90', store).key == good.key
    dropped = read_part(part_prefix(store) + '6, "y": 8, "demand": 20}', store)
    assert dropped.accepted and not dropped.complete  # the window is missing: valid, but voted after complete ones
    bad = {
        '6, "y": 8, "demand": 25}': "customer 2: 25 not stated in its passage",  # invented
        '6, "y": 8, "demand": 20, "ready": 20, "due": 20}': "20 is used 3 times but stated 2",  # a number copied
        '6, "y": 8}': "customer 2 demand is missing",
        '6, "y": 8, "demand": 20.5}': "must be a whole number",
        "I cannot help with that": "unreadable JSON",
    }
    for reply, why in bad.items():
        r = read_part(part_prefix(store) + reply, store)
        assert not r.accepted and r.error is not None and why in r.error, (reply, r)
    other = read_part('Passage: "x"\nJSON: {"id": 3, "x": 6, "y": 8, "demand": 20}', store)
    assert not other.accepted and "names customer 3" in (other.error or "")
    fleet = Passage(None, "We run two trucks of capacity 50 from the Lyon depot at (0, 0).")
    ok = read_part(part_prefix(fleet) + '2, "capacity": 50, "depot_x": 0, "depot_y": 0}', fleet)
    assert ok.accepted and ok.complete and ok.values == {"vehicles": 2, "capacity": 50, "depot_x": 0, "depot_y": 0}
    wrong = read_part(part_prefix(fleet) + '5, "capacity": 50, "depot_x": 0, "depot_y": 0}', fleet)
    assert not wrong.accepted and "5 not stated" in (wrong.error or "")
    twice = read_part(part_prefix(fleet) + '50, "capacity": 50, "depot_x": 0, "depot_y": 0}', fleet)
    assert not twice.accepted and "50 is used 2 times" in (twice.error or "")


def test_passage_voting_ignores_an_invalid_majority() -> None:
    store = Passage(2, "Store 2 at (6, 8) needs 20 units.")
    texts = ['6, "y": 8, "demand": 25}'] * 3 + ['6, "y": 8, "demand": 20}', '8, "y": 6, "demand": 20}']
    texts.append('6, "y": 8, "demand": 20}')
    result = vote_part(store, [read_part(part_prefix(store) + t, store, i) for i, t in enumerate(texts)])
    assert result.values == {"x": 6, "y": 8, "demand": 20} and result.votes == 2
    none = vote_part(store, [read_part(part_prefix(store) + texts[0], store, 0)])
    assert none.values is None and "25 not stated" in none.reason


def passage_double(data: dict[str, Any], bad: dict[str, Any] | None = None, bad_from: int = 2) -> FunctionLLM:
    """Answers passage prompts from ``data`` (samples from ``bad_from`` on from ``bad``); a whole-request prompt
    is answered from ``data`` too."""

    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        chosen = bad if bad is not None and index >= bad_from else data
        return passage_reply(prompt, chosen) if PASSAGE_END.search(prompt) else json.dumps(data)

    return FunctionLLM(reply)


async def test_extraction_passage_by_passage_in_one_batched_call() -> None:
    llm = passage_double(extraction(), extraction(c2={"demand": 25}), bad_from=3)
    result = await extract_problem(REQUEST, SearchContext(llm=llm, seed=0), samples=4)
    assert result.method == "passages" and result.problem is not None, result.reason
    assert canonical_key(result.problem) == read(extraction()).key
    assert len(llm.calls) == 1 and len(llm.calls[0][0]) == 4  # one call: the fleet and three customers
    assert result.samples == 16 and [p.votes for p in result.parts] == [4, 4, 3, 4]
    data = result.as_data()
    assert data["method"] == "passages" and data["parts"][2]["readings"][3]["error"] is not None


async def test_a_passage_without_a_valid_reading_falls_back_to_the_whole_request() -> None:
    llm = passage_double(extraction(), extraction(c3={"x": 7}), bad_from=0)  # 7 is nowhere in the request
    result = await extract_problem(REQUEST, SearchContext(llm=llm, seed=0), samples=3, whole_samples=5)
    assert result.method == "whole after passages" and result.problem is not None
    assert len(llm.calls) == 2 and "customer 3: no valid reading in 3" in result.reason
    assert len(result.readings) == 5 and result.samples == 4 * 3 + 5
    assert canonical_key(result.problem) == read(extraction()).key


async def test_a_demand_over_capacity_read_passage_by_passage_is_reported() -> None:
    request = REQUEST.replace("needs 20 units", "needs 60 units")
    llm = passage_double(extraction(c2={"demand": 60}))
    result = await extract_problem(request, SearchContext(llm=llm, seed=0), samples=2)
    assert result.problem is None and len(llm.calls) == 1  # read consistently: reported, not retried whole
    assert "demand 60 exceeds the vehicle capacity 50" in result.reason


async def test_a_request_without_a_fleet_size_is_read_with_an_unlimited_fleet() -> None:
    fleet = Passage(None, "Our trucks carry 50 units each from the Lyon depot at (0, 0).")
    assert part_prefix(fleet).endswith('JSON: {"capacity": ')  # no count to copy: the JSON starts at the capacity
    assert part_prefix(Passage(None, "At most 2 trucks of capacity 50 at (0, 0).")).endswith('JSON: {"vehicles": ')
    r = read_part(part_prefix(fleet) + '50, "depot_x": 0, "depot_y": 0}', fleet)
    assert r.accepted and r.complete and r.values == {"capacity": 50, "depot_x": 0, "depot_y": 0}, r
    llm = passage_double(extraction(vehicles=None))
    result = await extract_problem(OPEN_FLEET, SearchContext(llm=llm, seed=0), samples=2)
    assert result.method == "passages" and result.problem is not None, result.reason
    assert result.problem.fleet.vehicles is None and result.problem.fleet.capacity == 50


async def test_generated_requests_are_read_passage_by_passage() -> None:
    for seed in range(6):
        req = generate_request(seed, customers=(5, 8))
        data = req.truth.model_dump(mode="json")
        whole = {"depot": data["depot"], "vehicles": req.truth.fleet.vehicles, "capacity": req.truth.fleet.capacity,
                 "customers": [{k: v for k, v in c.items() if v is not None} for c in data["customers"]]}  # fmt: skip
        result = await extract_problem(req.text, SearchContext(llm=passage_double(whole), seed=0), samples=2)
        assert result.method == "passages" and result.problem is not None, (result.reason, req.text)
        assert canonical_key(result.problem) == canonical_key(req.truth.model_copy(update={"name": "request"}))


# -- the pipeline through the agent ---------------------------------------------------------------------------------
def extractor(good: dict[str, Any], bad: dict[str, Any] | None = None) -> FunctionLLM:
    """A double that answers the extraction prompts (a passage's or the whole request's): the first three samples
    from ``good``, the others from ``bad``."""

    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        data = good if index < 3 or bad is None else bad
        if PASSAGE_END.search(prompt):
            return passage_reply(prompt, data)
        assert "JSON shape" in prompt, "only the extraction step calls the model"
        return json.dumps(data)

    return FunctionLLM(reply)


def routing_agent(llm: FunctionLLM, tmp_path: Path, **options: Any) -> Agent:
    opts = AgentOptions(domain="routing", artifacts_dir=str(tmp_path / "artifacts"), **options)
    return Agent(llm=llm, options=opts, store=MemoryStore(), checkpoints=None)


async def test_pipeline_end_to_end_with_a_double(tmp_path: Path) -> None:
    a = routing_agent(extractor(extraction(), extraction(c2={"demand": 25})), tmp_path)
    result = await a.asolve(REQUEST, run_id="route-1")
    assert result.domain == "routing" and result.status == "done", result.justification
    assert result.plan is not None and [s.id for s in result.plan.steps] == ["extract", "solve", "verify", "report"]
    extract = result.steps["extract"]
    extraction_data = extract.data["extraction"]
    assert extract.verified and extraction_data["method"] == "passages", extract
    assert [p["accepted"] for p in extraction_data["parts"]] == [4, 4, 3, 4]  # customer 2's 4th sample invents 25
    problem = RoutingProblem.model_validate(extract.data["problem"])
    report = result.steps["report"].data
    routes = [r["stops"] for r in report["routes"]]
    assert verify(problem, routes).feasible and sorted(c for r in routes for c in r) == [1, 2, 3]
    assert sum(r["load"] for r in report["routes"]) == 45 and all(r["load"] <= 50 for r in report["routes"])
    assert report["best_known"] is None and report["gap_pct"] is None
    assert result.answer is not None and "vehicle 1: depot ->" in result.answer and "Total distance" in result.answer
    [plot] = result.artifacts
    assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot in result.answer
    solve_data = result.steps["solve"].data
    assert len(solve_data["attempts"]) == 3 and solve_data["time_limit_s"] == auto_time_limit(3)
    detail = a.store.get_run("route-1")
    assert detail is not None
    assert len(detail.candidates_of("extract")) == 16 and len(detail.candidates_of("solve")) == 3
    scored = {s.scorer for s in detail.scores}
    assert {"extraction", "routing"} <= scored  # extraction checks and the verifier's verdicts are in the trace


async def test_an_invalid_request_fails_with_the_reason(tmp_path: Path) -> None:
    request = REQUEST.replace("needs 20 units", "needs 60 units")
    a = routing_agent(extractor(extraction(c2={"demand": 60})), tmp_path)
    result = await a.asolve(request)
    assert result.status == "failed" and result.answer is None
    assert "demand 60 exceeds the vehicle capacity 50" in result.justification
    assert "solve" not in result.steps or not result.steps["solve"].verified


CVRP = (
    Path(next(iter(spec.submodule_search_locations))) / "demos" / "data" / "CVRP"
    if (spec := importlib.util.find_spec("VRPSolverEasy")) is not None and spec.submodule_search_locations
    else None
)


@pytest.mark.skipif(CVRP is None, reason="VRPSolverEasy (data only) is not installed")
async def test_an_attached_cvrplib_file_reaches_the_best_known_value(tmp_path: Path) -> None:
    assert CVRP is not None
    content = (CVRP / "E-n22-k4.vrp").read_text()

    def no_model(prompt: str, params: SamplingParams, index: int) -> str:
        raise AssertionError("an attached file is read without the model")

    a = routing_agent(FunctionLLM(no_model), tmp_path)
    result = await a.asolve(attach_files("Route these deliveries, time limit 1 s.", {"E-n22-k4.vrp": content}))
    assert result.status == "done", result.justification
    assert result.steps["extract"].reason == "read from the attached file E-n22-k4.vrp"
    assert result.steps["solve"].data["time_limit_s"] == 1.0
    report = result.steps["report"].data
    assert report["best_known"] == 375 and report["total_distance"] == 375 and report["gap_pct"] == 0
    assert result.answer is not None and "gap +0.00%" in result.answer
    assert Path(report["plot"]).is_file()


async def run_steps(request: str, tmp_path: Path, options: RoutingOptions) -> dict[str, StepOutput]:
    """The routing pipeline's steps in order, each given its dependencies' outputs, without a model."""

    def no_model(prompt: str, params: SamplingParams, index: int) -> str:
        raise AssertionError("an attached file is read without the model")

    pipeline = RoutingPipeline(options)
    outputs: dict[str, StepOutput] = {}
    for step in pipeline.plan(request).steps:
        inputs = {d: outputs[d].outcome(d) for d in step.depends_on}
        search = SearchContext(llm=FunctionLLM(no_model), seed=0, step_id=step.id)
        ctx = StepContext(request, "fleet", step, inputs, search, ToolRegistry(), tmp_path, seed=0)
        outputs[step.id] = await pipeline.run_step(ctx)
    return outputs


@pytest.mark.skipif(CVRP is None, reason="VRPSolverEasy (data only) is not installed")
async def test_the_fleet_is_capped_only_when_the_request_says_so_and_the_routes_used_are_reported(
    tmp_path: Path,
) -> None:
    """X-n101-k25's optimum uses 26 routes: the k of its name is a minimum. An attached file without a fleet
    field is solved with an unlimited fleet; a request that says "at most 25 trucks" keeps that cap."""
    assert CVRP is not None
    files = {"X-n101-k25.vrp": (CVRP / "X-n101-k25.vrp").read_text()}
    options = RoutingOptions(seeds=1, time_limit_s=0.5)
    free = await run_steps(attach_files("Route these deliveries.", files), tmp_path / "free", options)
    capped = await run_steps(attach_files("Route these with at most 25 trucks.", files), tmp_path / "capped", options)
    assert free["extract"].data["problem"]["fleet"]["vehicles"] is None
    assert capped["extract"].data["problem"]["fleet"]["vehicles"] == 25
    assert all(o.verified for o in (*free.values(), *capped.values()))
    used, cap_used = free["solve"].data["routes_used"], capped["solve"].data["routes_used"]
    assert used > 25 >= cap_used and free["solve"].data["fleet_vehicles"] is None  # more routes than k
    assert capped["solve"].data["fleet_vehicles"] == 25 and f"{used} routes" in (free["solve"].answer or "")
    report, cap_report = free["report"].data, capped["report"].data
    assert report["routes_used"] == len(report["routes"]) == used and cap_report["routes_used"] == cap_used
    assert f"with {used} routes (fleet: unlimited; verified feasible)" in free["report"].text
    assert f"with {cap_used} routes (fleet: at most 25 vehicles; verified feasible)" in capped["report"].text
    assert report["gap_pct"] < cap_report["gap_pct"]  # capped at k, PyVRP stays far from the best-known value
    at_least = await run_steps(attach_files("Use at least 25 trucks.", files), tmp_path / "min", options)
    assert at_least["extract"].data["problem"]["fleet"]["vehicles"] is None  # a minimum is not a fleet limit


def test_time_limits_and_options() -> None:
    assert request_time_limit("solve it, time limit 10 s") == 10.0
    assert request_time_limit("Solve for 2.5 seconds please") == 2.5
    assert request_time_limit("between time 10 and 60") is None
    assert auto_time_limit(5) == 0.25 and auto_time_limit(50) == 2.0 and auto_time_limit(500) == 5.0
    with pytest.raises(ValueError, match="samples"):
        RoutingOptions(samples=0)


# -- the solver tool: the pack's, not the engine's ---------------------------------------------------------------------
async def test_route_solver_is_the_packs_tool_and_outlives_the_call_timeout() -> None:
    assert "route_solver" not in default_tools().names()  # the engine's default tools are generic
    assert [t.name for t in registry.get("routing").tools] == ["route_solver"]
    args = {"problem": read(extraction()).problem, "time_limit_s": 0.3}
    result = await call_tool(RouteSolver(), args, timeout_s=0.05)  # the tool asks for its time limit + 30 s
    assert result.ok, result.error


# -- the benchmark's request generator -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_generated_requests_state_their_ground_truth(seed: int) -> None:
    req = generate_request(seed)
    assert req.truth.time_windows == (seed % 3 == 2)
    truth = req.truth.model_copy(update={"name": "request"})
    data = truth.model_dump(mode="json")
    faithful = {"depot": data["depot"], "vehicles": truth.fleet.vehicles, "capacity": truth.fleet.capacity,
                "customers": data["customers"]}  # fmt: skip
    r = read(faithful, RequestFacts.of(req.text))
    assert r.accepted and r.complete and r.key == canonical_key(truth), (r, req.text)
    assert generate_request(seed).text == req.text  # deterministic
    if truth.time_windows:  # the windows are built around a feasible plan: the solver finds one
        assert verify(truth, solve(truth, time_limit_s=0.2, seed=0)).feasible


# -- the benchmark, with a double that extracts every generated request faithfully -------------------------------
def _load_benchmark() -> Any:
    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    spec = importlib.util.spec_from_file_location("bench_routing", folder / "routing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    saved = list(sys.path)
    sys.path.insert(0, str(folder))  # the benchmark imports its sibling provenance.py
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


@pytest.mark.skipif(CVRP is None, reason="VRPSolverEasy (data only) is not installed")
async def test_the_benchmark_end_to_end_with_a_faithful_double(tmp_path: Path) -> None:
    bench = _load_benchmark()
    requests = [generate_request(i, customers=(5, 6)) for i in range(3)]

    def oracle(prompt: str, params: SamplingParams, index: int) -> str:
        req = next(r for r in requests if any(p.text in prompt for p in split_request(r.text) or ()))
        data = req.truth.model_dump(mode="json")
        return passage_reply(prompt, {"depot": data["depot"], "vehicles": req.truth.fleet.vehicles,
                                      "capacity": req.truth.fleet.capacity,
                                      "customers": [{k: v for k, v in c.items() if v is not None}
                                                    for c in data["customers"]]})  # fmt: skip

    s = bench.Settings(instances=1, limits=(0.2,), requests=3, samples=2, out=tmp_path, cache=tmp_path / "cache")
    result = await bench.run(s, llm_factory=lambda _: FunctionLLM(oracle))
    summary = result["summary"]
    assert summary["instances"] == 1 and summary["feasible_0.2s"] == 1 and summary["median_gap_0.2s"] is not None
    assert summary["feasible_share_nl"] == 1.0 and summary["extraction_accuracy"] == 1.0
    # the bulleted requests are read by rule, without the model (no samples); the other one passage by passage
    assert [r["method"] for r in result["requests"]] == ["structure", "structure", "passages"]
    assert result["requests"][2]["sample_accuracy"] == 1.0 and summary["median_gap_nl"] is not None
    written = json.loads((tmp_path / "routing.json").read_text())
    assert written["summary"] == summary and set(written) == set(result)  # every key comes from the code
    assert {"commit", "dirty", "settings", "date", "cpu_count"} <= written["provenance"].keys()
    assert written["provenance"]["parts_run"] == ["instances", "nl"] and "merged" not in written["provenance"]
    assert len(written["provenance"]["load_average"]["end"]) == 3  # how busy the machine was
    assert set(written["wall_s_parts"]) == {"instances", "nl"}
    assert (tmp_path / "routing.png").is_file()
    assert (tmp_path / "cache" / "routing_solver.json").is_file()  # solver results are cached for a rerun
    [row] = result["instances"]  # P-n16-k8, the smallest: a classical set, whose k is its fleet
    assert row["instance"] == "P-n16-k8" and row["k"] == 8 and row["fleet"] == 8 and row["routes_0.2s"] == 8
    assert summary["by_set"]["P"]["instances"] == 1 and summary["routes_above_k_0.2s"] == 0

    # the X set, capped at k, with the requests merged from the first file: by code, recorded
    again = replace(s, sets=("X",), out=tmp_path / "again", merge=tmp_path / "routing.json", fleet="k")
    merged = await bench.run(again, parts=("instances",), llm_factory=lambda _: FunctionLLM(oracle))
    assert merged["requests"] == result["requests"]
    [capped] = merged["instances"]
    assert capped["instance"] == "X-n101-k25" and capped["fleet"] == 25 and capped["routes_0.2s"] <= 25
    [free] = bench.run_instances(replace(s, sets=("X",)))  # the X set's own convention: an unlimited fleet
    assert free["fleet"] is None and free["k"] == 25
    assert {k: v for k, v in merged["summary"].items() if k.endswith("_nl")} == {
        k: v for k, v in summary.items() if k.endswith("_nl")
    }
    [record] = merged["provenance"]["merged"]
    assert record["parts"] == ["nl"] and record["provenance"] == written["provenance"]
    assert record["settings"] == written["settings"] and merged["provenance"]["parts_run"] == ["instances"]
    assert (tmp_path / "again" / "routing.json").is_file() and set(merged["wall_s_parts"]) == {"instances"}
    with pytest.raises(SystemExit, match="use it with --part instances or --part nl"):
        await bench.run(again)
    s2, parts = bench.parse(["--part", "instances", "--merge", "old.json", "--fleet", "k", "--sets", "X", "E"])
    assert parts == ("instances",) and s2.merge == Path("old.json") and s2.fleet == "k" and s2.sets == ("X", "E")
