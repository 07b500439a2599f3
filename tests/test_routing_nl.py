"""The frozen natural-language routing set (``benchmarks/data/routing_nl.jsonl``) and its harness
(``benchmarks/routing.py --nl``): the set is valid and unchanged, :func:`same_problem` compares problems canonically,
and the harness runs requests through the agent with a scripted double, counting a wrong problem that gets
"verified" and a run that asks.

Solver runs here are the pack's default for a handful of customers (0.25 s per configuration, 3 configurations).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from longthink.domains import registry
from longthink.domains.routing.generate import generate_request
from longthink.domains.routing.passages import split_request
from longthink.domains.routing.problem import RoutingProblem
from longthink.events import Question
from longthink.llm.types import SamplingParams
from longthink.testing import FunctionLLM

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("bench_routing_nl", BENCH / "routing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    saved = list(sys.path)
    sys.path.insert(0, str(BENCH))  # the benchmark imports its sibling provenance.py
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


B = _load()
ROWS = [json.loads(line) for line in B.NL_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- the set --------------------------------------------------------------------------------------------------------
def test_the_set_is_frozen() -> None:
    assert hashlib.sha256(B.NL_SET.read_bytes()).hexdigest() == B.NL_SET_SHA256, (
        "benchmarks/data/routing_nl.jsonl changed: the set is frozen (written before the reading rules changed); "
        "an edit must be deliberate and update NL_SET_SHA256"
    )


def test_every_frozen_set_is_unchanged_and_loads() -> None:
    for path, sha, results in B.NL_SETS.values():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, f"{path.name} changed: the set is frozen"
        requests = B.load_nl_set(path)
        assert len(requests) >= 10 and results.endswith(".json")
    fleets = B.load_nl_set(B.NL_SETS["fleets"][0])
    assert sum(len(r.truth.all_depots) > 1 for r in fleets if r.truth) >= 4
    assert sum(len(r.truth.vehicle_types) > 1 and len(r.truth.all_depots) == 1 for r in fleets if r.truth) >= 3


def test_every_truth_is_a_valid_problem_of_the_pack() -> None:
    requests = B.load_nl_set()
    assert len(requests) == len(ROWS) >= 48
    for raw, req in zip(ROWS, requests, strict=True):
        assert set(raw) == {"id", "format", "text", "truth", "ambiguous", "unclear", "distractors"}, raw["id"]
        assert raw["ambiguous"] is (raw["truth"] is None) and bool(raw["unclear"]) is raw["ambiguous"], raw["id"]
        if raw["truth"] is None:
            continue
        problem = RoutingProblem.model_validate(raw["truth"])  # demands, total, windows, reachability checked
        assert req.truth == problem
        cap, vehicles = problem.fleet.capacity, problem.fleet.vehicles
        assert all(c.demand <= cap for c in problem.customers), raw["id"]
        assert vehicles is None or problem.total_demand <= vehicles * cap, raw["id"]
        assert 3 <= len(problem.customers) <= 12, raw["id"]


def test_ids_formats_ambiguity_and_distractors() -> None:
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids))
    formats = Counter(r["format"] for r in ROWS)
    assert len(formats) >= 8 and min(formats.values()) >= 4, formats
    ambiguous = [r for r in ROWS if r["ambiguous"]]
    assert len(ambiguous) >= 8 and all(
        r["unclear"] and all(isinstance(u, str) for u in r["unclear"]) for r in ambiguous
    )
    assert sum(bool(r["distractors"]) for r in ROWS) >= 10
    sizes = [len(r["truth"]["customers"]) for r in ROWS if r["truth"]]
    assert min(sizes) == 3 and max(sizes) == 12
    assert any(r["truth"] and r["truth"].get("time_windows") for r in ROWS)
    assert any(r["truth"] and r["truth"]["fleet"]["vehicles"] is None for r in ROWS)  # "as many vans as it takes"
    assert set(B.NL_QUICK) <= set(ids) and any(r["ambiguous"] for r in ROWS if r["id"] in B.NL_QUICK)


def test_the_truth_is_written_in_the_request() -> None:
    """Every coordinate of a truth is a number of its request, and so is every demand outside the mixed-units
    requests (whose truth converts tonnes, pallets or bottles into one unit): a guard against typos."""
    for r in ROWS:
        if r["truth"] is None:
            continue
        numbers = {float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", r["text"])}
        numbers |= {abs(n) for n in numbers}
        t = r["truth"]
        values = [t["depot"]["x"], t["depot"]["y"], *(v for c in t["customers"] for v in (c["x"], c["y"]))]
        if r["format"] != "mixed_units":
            values += [t["fleet"]["capacity"], *(c["demand"] for c in t["customers"])]
        assert all(float(v) in numbers for v in values), (r["id"], [v for v in values if float(v) not in numbers])


def test_the_requests_do_not_look_like_the_generators() -> None:
    generated = " ".join(generate_request(seed).text for seed in range(30))
    for phrase in ("each carrying up to", "start and end at the", "is the depot for", "Minimise the total distance"):
        assert phrase in generated
        assert not any(phrase in r["text"] for r in ROWS), phrase


def test_a_bad_line_names_itself(tmp_path: Path) -> None:
    row = dict(ROWS[0], truth={**ROWS[0]["truth"], "fleet": {"vehicles": 1, "capacity": 18}})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[1]) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(
        ValueError, match=r"line 2: customer 3 \(Hotel Marina\): demand 20 exceeds the vehicle capacity 18$"
    ):
        B.load_nl_set(bad)


# -- same_problem ---------------------------------------------------------------------------------------------------
def problem(customers: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"depot": {"x": 0, "y": 0}, "fleet": {"vehicles": 2, "capacity": 30}}
    return {**base, **top, "customers": customers}


NUMBERED = problem([{"id": 4, "x": 1, "y": 2, "demand": 10}, {"id": 7, "x": 3, "y": 4, "demand": 12},
                    {"id": 9, "x": -5, "y": 6, "demand": 8}])  # fmt: skip
NAMED = problem([{"id": 1, "name": "Bakery Rossi", "x": 1, "y": 2, "demand": 10},
                 {"id": 2, "name": "Café Bruno", "x": 3, "y": 4, "demand": 12},
                 {"id": 3, "name": "Deli Kowalski", "x": -5, "y": 6, "demand": 8}])  # fmt: skip


def edit(data: dict[str, Any], *rows: dict[str, Any] | None, **top: Any) -> dict[str, Any]:
    """``data`` with its customers replaced position by position by ``rows`` (None keeps one; a dict updates it; a
    key set to None is dropped), and top-level keys replaced."""
    customers = []
    for i, c in enumerate(data["customers"]):
        change = rows[i] if i < len(rows) else None
        merged = {**c, **(change or {})}
        customers.append({k: v for k, v in merged.items() if v is not None})
    return {**data, **top, "customers": customers}


def test_same_problem_ignores_order_and_names_of_a_numbered_truth() -> None:
    assert B.same_problem(NUMBERED, NUMBERED)
    assert B.same_problem(problem(list(reversed(NUMBERED["customers"]))), NUMBERED)
    named = edit(NUMBERED, {"name": "Store 4"}, {"name": "anything"})
    assert B.same_problem(named, NUMBERED)  # the truth names no one: names are irrelevant
    assert B.same_problem(RoutingProblem.model_validate(NUMBERED).model_copy(update={"name": "request"}), NUMBERED)


def test_same_problem_numbers_are_exact_and_ids_are_labels() -> None:
    swapped = edit(NUMBERED, {"id": 7}, {"id": 4})  # stores 4 and 7 swapped: the numbers are right, the labels not
    assert not B.same_problem(swapped, NUMBERED) and B.same_problem(swapped, NUMBERED, labels=False)
    for wrong in (
        edit(NUMBERED, None, {"demand": 13}),
        edit(NUMBERED, {"x": 1.5}),
        edit(NUMBERED, depot={"x": 0, "y": 1}),
        edit(NUMBERED, fleet={"vehicles": None, "capacity": 30}),  # an unlimited fleet for "2 vans"
        edit(NUMBERED, fleet={"vehicles": 3, "capacity": 30}),
        edit(NUMBERED, fleet={"vehicles": 2, "capacity": 40}),  # the capacity alone changed: not a unit
        problem(NUMBERED["customers"][:2]),  # a customer dropped
        problem([*NUMBERED["customers"], {"id": 10, "x": 3, "y": 4, "demand": 8}]),  # one invented
        edit(NUMBERED, {"ready": 5, "due": 40}, time_windows=True),
    ):
        assert not B.same_problem(wrong, NUMBERED), wrong
        assert not B.same_problem(wrong, NUMBERED, labels=False), wrong


def test_same_problem_compares_depots_and_vehicle_types() -> None:
    mixed = problem(NUMBERED["customers"], depot=None, depots=[{"x": 0, "y": 0}, {"x": 9, "y": 9}],
                    fleet={"types": [{"capacity": 30, "count": 2, "depot": 0}, {"capacity": 15, "count": 1, "depot": 1}]})  # fmt: skip
    reordered = {**mixed, "fleet": {"types": mixed["fleet"]["types"][::-1]}}
    assert B.same_problem(mixed, mixed) and B.same_problem(reordered, mixed)
    halved = {**mixed, "customers": [{**c, "demand": c["demand"] * 2} for c in mixed["customers"]],
              "fleet": {"types": [{"capacity": 60, "count": 2, "depot": 0}, {"capacity": 30, "count": 1, "depot": 1}]}}  # fmt: skip
    assert B.same_problem(halved, mixed)  # the same problem in another unit
    for wrong in (
        {**mixed, "fleet": {"types": [{"capacity": 30, "count": 2, "depot": 1}, {"capacity": 15, "count": 1}]}},
        {**mixed, "fleet": {"types": [{"capacity": 30, "count": 2}, {"capacity": 15, "count": 1, "fixed_cost": 5}]}},
        {**mixed, "depots": [{"x": 0, "y": 0}, {"x": 9, "y": 8}]},
        edit(NUMBERED, fleet={"vehicles": 3, "capacity": 30}),
    ):
        assert not B.same_problem(wrong, mixed), wrong


def test_same_problem_with_a_named_truth() -> None:
    assert B.same_problem(NAMED, NAMED)
    unnamed = edit(NAMED, {"name": None}, {"name": None}, {"name": None})
    assert B.same_problem(unnamed, NAMED)  # no names: each customer is its place in the request
    shuffled = edit(unnamed, {"id": 2}, {"id": 1})
    assert not B.same_problem(shuffled, NAMED) and B.same_problem(shuffled, NAMED, labels=False)
    renumbered = problem([{**c, "id": 10 + i, "name": c["name"].upper().replace("É", "E")}
                          for i, c in enumerate(reversed(NAMED["customers"]))])  # fmt: skip
    assert B.same_problem(renumbered, NAMED)  # named: the name decides, whatever the id or case or accent
    assert B.same_problem(edit(NAMED, {"name": "Rossi"}, {"name": "the cafe bruno"}), NAMED)
    assert not B.same_problem(edit(NAMED, {"name": "Café Bruno"}, {"name": "Bakery Rossi"}), NAMED)
    assert B.names_match("St Mary's church", "St. Mary's Church") and not B.names_match("Rossi", "Bruno")


def test_same_problem_units_windows_and_missing_problems() -> None:
    kg = problem([{"id": 1, "x": 1, "y": 2, "demand": 800}, {"id": 2, "x": 3, "y": 4, "demand": 1200}],
                 fleet={"vehicles": 2, "capacity": 3000})  # fmt: skip
    hundred_kg = edit(kg, {"demand": 8}, {"demand": 12}, fleet={"vehicles": 2, "capacity": 30})
    assert B.same_problem(hundred_kg, kg)  # the same problem in another unit
    assert not B.same_problem(edit(hundred_kg, {"demand": 9}), kg)
    timed = edit(NUMBERED, {"ready": 5, "due": 40, "service": 3}, time_windows=True)
    assert B.same_problem(timed, timed)
    assert not B.same_problem(edit(timed, {"service": 4}), timed)
    assert not B.same_problem(edit(timed, {"due": None}), timed)
    assert not B.same_problem(edit(NUMBERED, depot={"x": 0, "y": 0, "due": 90}, time_windows=True), NUMBERED)
    assert not B.same_problem(None, NUMBERED) and not B.same_problem(NUMBERED, None)  # ambiguous: no right problem
    assert not B.same_problem(edit(NUMBERED, {"demand": 99}), NUMBERED)  # an invalid problem (over capacity)


def test_wilson_interval() -> None:
    assert B.wilson(0, 0) is None
    lo, hi = B.wilson(5, 10)
    assert lo < 0.5 < hi and B.wilson(0, 8)[0] == 0.0 and B.wilson(8, 8)[1] == 1.0


# -- the harness end to end, with a scripted double ----------------------------------------------------------------
def reply_json(truth: dict[str, Any], *, names: bool, **changes: Any) -> str:
    """The whole-request JSON a model writes for ``truth`` (``changes``: ``capacity=...``, or ``demands={id: d}``)."""
    demands = changes.pop("demands", {})
    customers = []
    for c in truth["customers"]:
        row = {"id": c["id"], **({"name": c["name"]} if names and c.get("name") else {}), "x": c["x"], "y": c["y"],
               "demand": demands.get(c["id"], c["demand"])}  # fmt: skip
        customers.append(row)
    data = {"depot": truth["depot"], "vehicles": truth["fleet"]["vehicles"], "capacity": truth["fleet"]["capacity"],
            "customers": customers, **changes}  # fmt: skip
    return json.dumps(data)


def by_id(rid: str) -> dict[str, Any]:
    return next(r for r in ROWS if r["id"] == rid)


# The same three requests the issue found failing, each with a model reply: bullets-1 read faithfully (with names);
# prose_at-1 read with two demands swapped (every number is in the request, so the old checks passed it and the run
# said "verified" for the wrong problem); bullets-4 (ambiguous: no capacity) read with a demand as the capacity.
REPLIES = {
    "bullets-1": reply_json(by_id("bullets-1")["truth"], names=True),
    "prose_at-1": reply_json(by_id("prose_at-1")["truth"], names=False, demands={1: 9, 2: 7}),
    "bullets-4": json.dumps({"depot": {"x": 20, "y": 20}, "vehicles": 3, "capacity": 22, "customers": [
        {"id": 1, "x": 25, "y": 30, "demand": 18}, {"id": 2, "x": 12, "y": 26, "demand": 9},
        {"id": 3, "x": 30, "y": 14, "demand": 22}, {"id": 4, "x": 16, "y": 8, "demand": 11}]}),
}  # fmt: skip


def double() -> FunctionLLM:
    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        assert "JSON shape" in prompt, "these requests name no numbered customer: read whole, never by passage"
        rid = next(r["id"] for r in ROWS if r["text"].strip() in prompt)
        return REPLIES[rid]

    return FunctionLLM(reply)


async def test_the_harness_counts_exact_readings_and_false_verified(tmp_path: Path) -> None:
    """The bulleted request is read by rule (no model call) and verified; the swapped demands are rejected by the
    grounding check, so the run never says "verified" (it states the rule-based reading as an assumption); the
    request without a capacity asks. No wrong problem is verified."""
    assert all(split_request(by_id(rid)["text"]) is None for rid in REPLIES)
    s = B.NLSettings(ids=tuple(REPLIES), out=tmp_path, cache=tmp_path / "cache")
    result = await B.run_nl(s, llm_factory=lambda _: double())
    rows = {r["id"]: r for r in result["requests"]}
    good, swapped, unclear = rows["bullets-1"], rows["prose_at-1"], rows["bullets-4"]
    assert good["exact"] and good["values_exact"] and good["said_verified"] and not good["false_verified"]
    assert good["status"] == "done" and good["method"] == "structure" and good["completion_tokens"] == 0
    assert B.same_problem(good["extracted"], by_id("bullets-1")["truth"])
    assert swapped["method"] == "whole" and swapped["completion_tokens"] > 0  # the model was asked, and rejected
    assert "demand 9 is not what its own line states" in swapped["extract_reason"], swapped["extract_reason"]
    assert not swapped["said_verified"] and not swapped["false_verified"] and swapped["assumed"], swapped
    assert swapped["exact"] and swapped["status"] == "partial"  # the rule-based reading, stated as assumed
    assert unclear["ambiguous"] and unclear["asked"] and not unclear["said_verified"] and not unclear["false_verified"]
    assert unclear["status"] == "awaiting_input" and unclear["extracted"] is None
    assert unclear["questions"] == ["How much does one vehicle carry? (the request does not say)"]
    summary = result["summary"]
    assert summary["nl_requests"] == 3 and summary["nl_formats"] == 2 and summary["nl_ambiguous"] == 1
    assert summary["nl_exact_share"] == 1.0 and summary["nl_false_verified"] == 0
    assert summary["nl_asked_share_on_ambiguous"] == 1.0 and summary["nl_asked_on_clear"] == 0
    assert summary["nl_verified_share"] == 0.5  # the swapped reading is not verified
    assert summary["nl_set_sha256"] == B.NL_SET_SHA256 and summary["nl_set_frozen"]
    assert summary["nl_asked_ci95"] == B.wilson(1, 1)
    assert summary["nl_by_format"]["bullets"] == {"requests": 2, "clear": 1, "exact_share": 1.0,
                                                  "exact_ci95": B.wilson(1, 1), "false_verified": 0}  # fmt: skip
    written = json.loads((tmp_path / "routing_formats.json").read_text())
    assert written["summary"] == summary and set(written) == set(result)
    block = written["provenance"]
    assert {"commit", "dirty", "settings", "date", "cpu_count", "nl_set_sha256", "pipeline"} <= block.keys()
    assert block["settings"]["data"] == "benchmarks/data/routing_nl.jsonl" and block["pipeline"]["samples"] == 4
    assert not re.search(r'"(/|~/)', json.dumps(block["settings"])), block["settings"]  # no machine paths


async def test_a_run_that_asks_is_counted_as_asking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipeline that asks stops the run ``awaiting_input``, which the harness records as asked, and not verified
    (here its question is replaced by another, to show the harness reports the pipeline's own)."""
    pipeline = registry.get("routing").pipeline
    question = Question(id="capacity", text="How many units does one van carry?", default="20")
    monkeypatch.setattr(pipeline, "questions", lambda request: [question], raising=False)
    s = B.NLSettings(ids=("bullets-4",), out=tmp_path, cache=tmp_path / "cache")
    result = await B.run_nl(s, llm_factory=lambda _: double())
    [row] = result["requests"]
    assert row["status"] == "awaiting_input" and row["asked"] and row["questions"] == [question.text]
    assert not row["said_verified"] and not row["false_verified"] and row["extracted"] is None
    assert result["summary"]["nl_asked_share_on_ambiguous"] == 1.0 and result["summary"]["nl_exact_share"] is None


def test_parse_nl() -> None:
    assert B.parse_nl(["--quick"]) is None and B.parse(["--quick"])[1] == B.PARTS  # the other parts are unchanged
    quick = B.parse_nl(["--nl", "--quick"])
    assert quick is not None and quick.quick and quick.ids == B.NL_QUICK and len(quick.ids) == 4
    assert quick.out != B.RESULTS and quick.ask_missing
    full = B.parse_nl(["--nl", "--ids", "email-1", "csv_inline-3", "--threads", "2"])
    assert full is not None and full.ids == ("email-1", "csv_inline-3") and full.threads == 2 and full.out == B.RESULTS
