"""Strategies on a real model (the embedded engine): complete traces and budgets respected.

The statistical test (self-consistency@8 beats a single sample on GSM8K) is marked slow: it samples
8 x 30 problems with Qwen 0.5B (about 15 minutes on 2 cores; cached after the first run).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from longthink.budget import Budget
from longthink.events import EventBus, Recorder
from longthink.llm.cache import CachedLLM
from longthink.rewards.self_certainty import SelfCertainty
from longthink.search import Problem, SearchContext, make_strategy

pytestmark = pytest.mark.real_model
ROOT = Path(__file__).resolve().parent.parent
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
INSTRUCTION = "Solve the problem step by step. End with 'Answer: <number>'."

ARITH = Problem.from_text("arith", "What is 12 + 30? " + INSTRUCTION, answer_kind="number", max_tokens=48)

CASES: list[tuple[str, dict[str, Any]]] = [
    ("cot", {}),
    ("self_consistency", {"n": 3}),
    ("best_of_n", {"n": 3}),
    ("weighted_best_of_n", {"n": 3}),
    ("adaptive", {"max_samples": 6, "batch": 3}),
    ("beam", {"width": 2, "expand": 2, "max_steps": 3, "step_tokens": 24}),
    ("tree", {"expand": 2, "frontier_batch": 2, "max_expansions": 3, "target_finished": 2, "step_tokens": 24}),
    ("refine", {"n": 2, "rounds": 1}),
]


@pytest.mark.parametrize(("name", "options"), CASES, ids=[c[0] for c in CASES])
async def test_strategy_on_the_embedded_model(smollm2: Any, name: str, options: dict[str, Any]) -> None:
    bus = EventBus()
    rec = Recorder()
    bus.subscribe(rec)
    budget = Budget(tokens=600, completion_only=True, name="test budget")
    ctx = SearchContext(
        llm=smollm2, budget=budget, scorer=SelfCertainty(), process_scorer=SelfCertainty(), events=bus, seed=5
    )
    res = await make_strategy(name, **options).solve(ARITH, ctx)
    # the trace is complete: every candidate was generated and (where a scorer is used) scored, one result
    generated = {e.data["candidate"]["id"] for e in rec.of("candidate_generated")}
    assert res.candidates and {c.id for c in res.candidates} <= generated
    assert all(c.completion_tokens > 0 and c.model == "smollm2-135m-instruct" for c in res.candidates)
    if name in ("best_of_n", "weighted_best_of_n", "beam", "tree", "refine"):
        scored = {e.data["candidate_id"] for e in rec.of("candidate_scored")}
        assert {c.id for c in res.candidates} <= scored
    [finished] = rec.of("step_finished")
    assert finished.data["strategy"] == res.strategy and finished.data["answer"] == res.answer
    assert res.chosen is None or res.chosen in res.candidates
    # the budget: spend recorded, and never over the cap by more than one request
    assert res.spend.completion_tokens == budget.spent.completion_tokens > 0
    largest_request = max(2 * 3, 4) * ARITH.max_tokens
    assert budget.spent.completion_tokens <= 600 + largest_request


def _gsm8k(n: int) -> list[Problem]:
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines()]
    random.Random(0).shuffle(rows)
    return [
        Problem.from_text(
            f"gsm8k-{i}",
            r["question"] + "\n" + INSTRUCTION,
            answer_kind="number",
            max_tokens=320,
            reference=r["answer"].split("####")[-1].strip().replace(",", ""),
        )
        for i, r in enumerate(rows[:n])
    ]


@pytest.mark.slow
async def test_self_consistency_beats_a_single_sample_on_gsm8k(tmp_path: Path) -> None:
    """Paired: on the same 8 samples per problem, the majority vote vs the mean single-sample accuracy."""
    from longthink.llm.llama_cpp import LlamaCppLLM

    cache = ROOT / "benchmarks" / "cache" / "tests"
    llm = CachedLLM(LlamaCppLLM("qwen2.5-coder-0.5b-instruct", n_threads=1, n_ctx=8192, max_sequences=8), cache)
    diffs = []
    try:
        for p in _gsm8k(30):
            res = await make_strategy("self_consistency", n=8).solve(p, SearchContext(llm=llm, seed=11))
            single = sum(c.answer == p.reference for c in res.candidates) / len(res.candidates)
            diffs.append(float(res.answer == p.reference) - single)
    finally:
        await llm.aclose()
    mean = sum(diffs) / len(diffs)
    # bootstrap lower bound of the paired improvement
    rng = random.Random(1)
    boots = sorted(sum(rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(2000))
    lower = boots[int(0.05 * len(boots))]
    assert mean > 0, f"self-consistency@8 did not beat a single sample (mean paired gain {mean:.3f})"
    assert lower > -0.01 or math.isclose(lower, 0.0), f"gain {mean:.3f} not reliable (5% bound {lower:.3f})"
