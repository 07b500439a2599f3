"""Strategies on a real model (the embedded engine): complete traces and budgets respected.

The statistical test (self-consistency@8 beats a single sample on GSM8K) is marked slow: it samples
8 x 30 problems with Qwen 0.5B (about 15 minutes on 2 cores; cached after the first run).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from longthink.budget import Budget
from longthink.events import EventBus, Recorder
from longthink.llm.cache import CachedLLM
from longthink.rewards.self_certainty import SelfCertainty
from longthink.search import Problem, SearchContext, leader, make_strategy, tally

pytestmark = pytest.mark.real_model
ROOT = Path(__file__).resolve().parent.parent
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
    generated = {e.candidate.id for e in rec.of("candidate_generated")}
    assert res.candidates and {c.id for c in res.candidates} <= generated
    assert all(c.completion_tokens > 0 and c.model == "smollm2-135m-instruct" for c in res.candidates)
    if name in ("best_of_n", "weighted_best_of_n", "beam", "tree", "refine"):
        scored = {e.candidate_id for e in rec.of("candidate_scored")}
        assert {c.id for c in res.candidates} <= scored
    [finished] = rec.of("search_finished")
    assert finished.strategy == res.strategy and finished.answer == res.answer
    assert res.chosen is None or res.chosen in res.candidates
    # the budget: spend recorded, and never over the cap by more than one request
    assert res.spend.completion_tokens == budget.spent.completion_tokens > 0
    largest_request = max(2 * 3, 4) * ARITH.max_tokens
    assert budget.spent.completion_tokens <= 600 + largest_request


@pytest.mark.slow
async def test_self_consistency_beats_a_single_sample_on_gsm8k() -> None:
    """Paired, on the scaling benchmark's 24 GSM8K problems (the same seeded draws of 16 samples, so a machine
    that ran the benchmark answers from its cache; otherwise about 40 minutes on 2 cores): per problem, the
    majority of the first 8 samples against the mean accuracy of a single one of those 8 samples."""
    import importlib.util
    import sys

    from longthink.llm.llama_cpp import LlamaCppLLM
    from longthink.rewards import ReferenceMatch

    spec = importlib.util.spec_from_file_location("bench_datasets", ROOT / "benchmarks" / "datasets.py")
    assert spec is not None and spec.loader is not None
    datasets = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = datasets
    spec.loader.exec_module(datasets)

    llm = CachedLLM(LlamaCppLLM("qwen2.5-coder-0.5b-instruct", n_threads=1, n_ctx=8192, max_sequences=16),
                    ROOT / "benchmarks" / "cache")  # fmt: skip
    diffs = []
    try:
        for p in datasets.load_gsm8k(24):
            ctx = SearchContext(llm=llm, seed=datasets.problem_seed(0, p.id), temperature=0.7, logprobs=True)
            [pool] = await ctx.sample(p, 16, strategy="pool")
            first8 = await ctx.score(p, pool[:8], ReferenceMatch(name="correct"))
            single = sum(c.score("correct") or 0.0 for c in first8) / 8
            votes = tally(first8)
            majority = leader(votes, first8)
            diffs.append(float(majority == p.reference) - single)
    finally:
        await llm.aclose()
    mean = sum(diffs) / len(diffs)
    rng = random.Random(1)
    boots = sorted(sum(rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(4000))
    lower = boots[int(0.05 * len(boots))]
    assert mean > 0, f"self-consistency@8 did not beat a single sample (mean paired gain {mean:.3f})"
    assert lower > 0, f"gain {mean:.3f} is not reliable on 24 problems (one-sided 95% bound {lower:.3f})"
