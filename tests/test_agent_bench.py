"""The end-to-end agent benchmark: its frozen request set (valid, and refused when edited), reading the number an
answer states, and the harness run end to end on three requests with a scripted double model."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bench_modules import load_benchmark

from longthink.llm.types import SamplingParams
from longthink.testing import FunctionLLM

bench = load_benchmark("agent")
ROWS = bench.load_set()
MONEY = {"$", "€"}


# -- the set ------------------------------------------------------------------------------------------------------
def test_the_set_is_the_frozen_one() -> None:
    assert bench.file_sha256(bench.DATA) == bench.SET_SHA256
    assert re.fullmatch(r"[0-9a-f]{64}", bench.SET_SHA256)


def test_the_set_has_enough_requests_in_enough_categories() -> None:
    assert len(ROWS) >= 48
    ids = [r["id"] for r in ROWS]
    assert len(set(ids)) == len(ids)
    counts = Counter(r["category"] for r in ROWS)
    assert len(counts) >= 8 and min(counts.values()) >= 4, counts
    for r in ROWS:
        assert list(r) == list(bench.FIELDS), r["id"]
        assert r["id"].startswith(r["category"] + "-")


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r["id"])
def test_every_request_has_a_numeric_answer_and_a_tolerance_by_the_rule(row: dict[str, Any]) -> None:
    answer = Decimal(row["answer"])  # every answer parses as a number
    assert answer.is_finite() and answer > 0
    assert bench.read_number(row["answer"]) == answer and bench.is_correct(answer, row)
    tol = row["tolerance"]
    assert isinstance(tol, int | float) and tol >= 0
    if row["unit"] in MONEY:
        assert tol == 0.005 and answer == answer.quantize(Decimal("0.01")), "money: to the cent, half a cent"
    elif tol == 0:
        assert answer == answer.to_integral_value(), "tolerance 0 only for whole numbers"
    elif re.search(r"(?i)round to (one|two) decimal", row["request"]):
        places = 1 if re.search(r"(?i)one decimal", row["request"]) else 2
        assert tol == pytest.approx(0.5 * 10**-places) and -answer.as_tuple().exponent == places
    else:
        assert tol == pytest.approx(1e-6 * float(answer)), "otherwise a relative 1e-6"
    assert 20 <= len(row["request"]) <= 600 and row["unit"]
    assert row["steps"] and all(isinstance(s, str) and s for s in row["steps"])
    assert not bench.is_correct(answer + Decimal("0.01") + Decimal(str(tol)), row)


def test_an_edited_set_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    edited = tmp_path / "agent_requests.jsonl"
    edited.write_text(bench.DATA.read_text(encoding="utf-8").replace('"answer": "26"', '"answer": "25"'))
    with pytest.raises(SystemExit, match="not the frozen .*the set is frozen"):
        bench.load_set(edited)
    with pytest.raises(SystemExit, match="missing"):
        bench.load_set(tmp_path / "none.jsonl")
    assert len(bench.load_set(edited, bench.file_sha256(edited))) == len(ROWS)


def test_selection_quick_ids_and_results_names() -> None:
    quick = bench.select(ROWS, bench.Settings(quick=True))
    assert len(quick) == 4 and len({r["category"] for r in quick}) == 4
    some = bench.select(ROWS, bench.Settings(ids=("payroll-02", "business-01")))
    assert [r["id"] for r in some] == ["business-01", "payroll-02"]  # in the set's order
    with pytest.raises(SystemExit, match="no request nope"):
        bench.select(ROWS, bench.Settings(ids=("nope",)))
    assert bench.select(ROWS, bench.Settings()) == ROWS
    assert bench.out_path("qwen2.5-coder-0.5b-instruct", False).name == "agent.json"
    assert bench.out_path("qwen-1.5b", False).name == "agent_1.5b.json"  # an alias of the 1.5B
    assert bench.out_path("qwen2.5-coder-1.5b-instruct", True).name == "agent_1.5b_quick.json"
    assert bench.parse(["--model", "qwen2.5-coder-1.5b-instruct"]).out.name == "agent_1.5b.json"
    assert bench.parse(["--quick", "--ids", "a, b"]).ids == ("a", "b")
    assert bench.model_name("/somewhere/on/disk/m.gguf") == "m.gguf"


# -- reading the answer -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,234.50", "1234.50"),
        ("1 234,5 €", "1234.5"),
        ("1\u00a0234,5\u00a0€", "1234.5"),
        ("1.234,50 €", "1234.50"),
        ("Total: €47,06", "47.06"),
        ("0,125", "0.125"),
        ("14,099 users", "14099"),
        ("1,000,000", "1000000"),
        ("about 12.5 hours", "12.5"),
        ("It is 18.4%.", "18.4"),
        ("The profit is $4,304. Hope that helps with the planning!", "4304"),
        ("Step 1: 3 x 4 = 12\nStep 2: 12 + 5 = 17", "17"),
        ("Answer: 40*22 + 6.5*33 = 1094.50", "1094.50"),
        ("Answer: 1094.50 (40 x 22 = 880 plus 214.50)", "1094.50"),
        ("Answer: 3 trucks (14 pallets per truck). Any more than 3 would be wasteful, say 4.", "3"),
        ("**Answer:** $79.66 each", "79.66"),
        ("The final answer is: 26.", "26"),
        ("So 0.6 / 2.4 = 0.25, and the answer is 25%. That's 0.25 as a fraction.", "25"),
        ("\\boxed{541.14} dollars each", "541.14"),
        ("#### 3", "3"),
        ("Answer: -$12.50", "-12.50"),
        ("a loss of −8.5", "-8.5"),
        ("between 10-12 items", "12"),
        ("about $1.2 million", "1200000"),
        ("$12k a year", "12000"),
        ("on the 4th day 5 units are left", "5"),
        ("USD 541.14", "541.14"),
    ],
)
def test_read_number(text: str, expected: str) -> None:
    assert bench.read_number(text) == Decimal(expected)


@pytest.mark.parametrize("text", [None, "", "no number here", "the fourth one"])
def test_read_number_without_a_number(text: str | None) -> None:
    assert bench.read_number(text) is None


def test_correct_within_the_tolerance_exactly() -> None:
    money = {"answer": "79.66", "tolerance": 0.005}
    assert bench.is_correct(Decimal("79.658"), money) and bench.is_correct(Decimal("79.655"), money)
    assert not bench.is_correct(Decimal("79.65"), money) and not bench.is_correct(None, money)
    whole = {"answer": "26", "tolerance": 0.0}
    assert bench.is_correct(Decimal("26.00"), whole) and not bench.is_correct(Decimal("25.18"), whole)


def test_summary_shares_and_intervals() -> None:
    def row(i: int, correct: bool, status: str) -> dict[str, Any]:
        return {"id": str(i), "category": "c" if i < 2 else "d", "correct": correct, "status": status,
                "tokens": 100, "seconds": 2.0, "domain": "general", "answer_kind": "number", "number": "1"}  # fmt: skip

    sm = bench.summarise([row(0, True, "done"), row(1, False, "done"), row(2, False, "partial"),
                          row(3, False, "unverified")])  # fmt: skip
    assert sm["accuracy"] == 0.25 and sm["false_done_share"] == 0.25 and sm["unverified_share"] == 0.25
    assert sm["per_category"] == {"c": {"requests": 2, "correct": 1, "accuracy": 0.5},
                                  "d": {"requests": 2, "correct": 0, "accuracy": 0.0}}  # fmt: skip
    lo, hi = sm["accuracy_ci95"]
    assert 0 < lo < 0.25 < hi < 1
    assert bench.wilson(0, 0) is None and bench.wilson(0, 10)[0] == 0.0


# -- the harness end to end with a double -------------------------------------------------------------------------
PICKED = ("payroll-02", "inventory-04", "split_bill-03")
WRONG = "split_bill-03"


def scripted(rows: list[dict[str, Any]]) -> FunctionLLM:
    """A one-step plan for every request; the step answers the ground truth, except for ``WRONG`` (off by 8)."""

    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        if "careful planner" in prompt:
            return json.dumps(
                {"steps": [{"id": "s1", "goal": "Compute the requested number", "answer_kind": "number"}]}
            )
        for r in rows:
            if "Your step:" in prompt and r["request"] in prompt:
                value = Decimal(r["answer"]) + (8 if r["id"] == WRONG else 0)
                if "Python program" in prompt:  # a coder model: numeric steps are programs, verified by agreement
                    return f"```python\nprint({value} * 1)\n```"  # (a program that computes, if barely)
                return f"Working through it step by step. Answer: {value}"
        return "Answer: 0"

    return FunctionLLM(reply, model="scripted-coder")


async def test_the_harness_end_to_end_with_a_double(tmp_path: Path) -> None:
    rows = [r for r in ROWS if r["id"] in PICKED]
    s = replace(bench.Settings(ids=PICKED), out=tmp_path / "agent.json", cache=tmp_path / "cache")
    result = await bench.run(s, llm=scripted(rows))
    sm = result["summary"]
    for key in ("accuracy", "false_done_share", "unverified_share", "tokens_per_request", "seconds_per_request",
                "requests", "set_sha256", "accuracy_ci95", "false_done_ci95", "unverified_ci95", "per_category"):  # fmt: skip
        assert key in sm, key
    assert sm["requests"] == 3 and sm["set_sha256"] == bench.SET_SHA256 and sm["final"] is True
    by_id = {r["id"]: r for r in result["rows"]}
    assert [r["id"] for r in result["rows"]] == list(PICKED)
    wrong = by_id[WRONG]
    assert wrong["status"] == "done" and not wrong["correct"] and wrong["number"] == "200"
    assert all(by_id[i]["correct"] and by_id[i]["status"] == "done" for i in PICKED if i != WRONG)
    assert sm["accuracy"] == round(2 / 3, 4) and sm["false_done_share"] == round(1 / 3, 4)
    assert sm["unverified_share"] == 0.0 and sm["tokens_per_request"] > 0 and sm["seconds_per_request"] >= 0
    assert all(r["domain"] == "general" and r["answer_kind"] == "number" and r["plan"] for r in result["rows"])
    assert sm["per_category"]["split_bill"] == {"requests": 1, "correct": 0, "accuracy": 0.0}
    # the file: the same result, with provenance, and no machine path in the settings
    saved = json.loads(s.out.read_text())
    assert saved["summary"] == sm and saved["provenance"]["settings"]["set_sha256"] == bench.SET_SHA256
    assert saved["settings"]["agent_options"]["budget_tokens"] == 12_000  # the defaults, recorded
    assert not re.search(r'"(/|~/|[A-Za-z]:\\\\)', json.dumps(saved["settings"]))
    shown = bench.table(saved)
    assert WRONG in shown and "accuracy 0.6667" in shown and "false done 0.3333" in shown


async def test_a_rerun_is_answered_from_the_generation_cache(tmp_path: Path) -> None:
    from scaling import SeededLLM  # the wrapping the benchmark's own model gets (benchmarks/ is on the path)

    from longthink.llm.cache import CachedLLM

    rows = [r for r in ROWS if r["id"] in PICKED[:2]]
    s = replace(bench.Settings(ids=PICKED[:2]), out=tmp_path / "agent.json", cache=tmp_path / "cache")
    llm = SeededLLM(CachedLLM(scripted(rows), tmp_path / "cache" / "generations"), seed=0)
    first = await bench.run(s, llm=llm)
    again = await bench.run(s, llm=llm)
    assert all(r["generations_new"] > 0 for r in first["rows"])
    assert all(r["generations_new"] == 0 and r["generations_cached"] > 0 for r in again["rows"])
    keep = ("answer", "number", "correct", "status", "tokens")
    assert [{k: r[k] for k in keep} for r in again["rows"]] == [{k: r[k] for k in keep} for r in first["rows"]]
