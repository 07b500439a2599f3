"""The test-time scaling benchmark: the Game-of-24 checker, the loaders, the subsampling / bootstrap statistics, and
one real ``--quick`` run on the embedded SmolLM2 (JSON shape and summary keys)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bench_modules import load_benchmark

from longthink.search.types import Candidate, Problem, Score

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


_load = load_benchmark


D = _load("datasets")
S = _load("scaling_stats")


# -- the Game-of-24 checker ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "numbers"),
    [
        ("(4 + 8) * (6 - 4)", (4, 4, 6, 8)),
        ("(6 - 4) * (4 + 8) = 24", (4, 4, 6, 8)),
        ("(1 + 8 / 4) * 8", (1, 4, 8, 8)),
        ("8 / (3 - 8 / 3)", (3, 3, 8, 8)),  # needs exact fractions: 8 / (1/3)
        ("(11 - 3) × 3 × 1", (1, 3, 3, 11)),
        ("5 + 5 + 5 + 9", (5, 5, 5, 9)),
    ],
)
def test_checker_accepts_valid_solutions(expr: str, numbers: tuple[int, ...]) -> None:
    ok, why = D.check_24(expr, numbers)
    assert ok, why


@pytest.mark.parametrize(
    ("expr", "numbers", "reason"),
    [
        ("(4 + 8) * (6 - 3)", (4, 4, 6, 8), "uses"),  # a number not in the puzzle
        ("4 * 6", (4, 4, 6, 8), "uses"),  # numbers left out
        ("(4 + 4) * (8 - 6) + 4 + 4", (4, 4, 6, 8), "uses"),  # a number reused
        ("11*3-3-3-3", (1, 3, 3, 11), "uses"),  # reused 3, 1 left out
        ("(4 + 8) + (6 - 4)", (4, 4, 6, 8), "evaluates"),  # wrong result
        ("4 * 6 + 8 - 8", (4, 6, 8, 8), "valid"),  # sanity: this one is right (24)
        ("2 ** 3 * 3 * 1", (1, 2, 3, 3), "not allowed"),
        ("(8 // 3) * 8 + 8", (3, 8, 8, 8), "not allowed"),
        ("24 % 25 * 1 * 1", (1, 1, 24, 25), "characters"),
        ("-4 + 4 * 6 + 4", (4, 4, 4, 6), "not allowed"),  # unary minus is not one of the four operations
        ("4 / (8 - 8) + 6", (4, 6, 8, 8), "division by zero"),
        ("__import__('os').system('true')", (1, 2, 3, 4), "characters"),
        ("().__class__", (1, 2, 3, 4), "characters"),
        ("1e2", (1, 2, 3, 4), "characters"),
        ("1.5 * 16", (1, 16, 2, 3), "characters"),
        ("(" * 500 + "1" + ")" * 500, (1, 2, 3, 4), "too long"),
        ("", (1, 2, 3, 4), "empty"),
        ("4 6 8 8", (4, 6, 8, 8), "rejected"),
    ],
)
def test_checker_rejects_what_is_not_a_solution(expr: str, numbers: tuple[int, ...], reason: str) -> None:
    ok, why = D.check_24(expr, numbers)
    if reason == "valid":
        assert ok, why
    else:
        assert not ok, f"{expr!r} accepted"
        assert reason in why


def test_checker_never_accepts_none_and_agrees_with_the_solver() -> None:
    assert D.check_24(None, (1, 2, 3, 4)) == (False, "no expression")
    for numbers in [(4, 4, 6, 8), (1, 3, 3, 11), (3, 3, 8, 8), (2, 9, 10, 12)]:
        solution = D.solve_24(numbers)
        assert solution is not None
        assert D.check_24(solution, numbers)[0], solution
    assert D.solve_24((1, 1, 1, 1)) is None


def test_prompt_examples_are_valid_and_come_from_tuning_ranks(tmp_path: Path) -> None:
    for numbers, steps in D.GAME24_SHOTS_SOLVED:
        answer = steps.split("Answer:")[1].strip()
        assert D.check_24(answer, numbers)[0], answer
    # the loader filters ranks: write a small CSV with the package's columns
    csv = tmp_path / "24.csv"
    csv.write_text(
        "Rank,Puzzles,AMT (s),Solved rate,1-sigma Mean (s),1-sigma STD (s)\n"
        "899,6 8 9 11,10.0,84%,9.7,4.6\n900,1 3 3 11,10.0,88%,9.9,4.6\n901,4 5 6 10,10.0,90%,10.4,4.3\n"
    )
    problems = D.load_game24(range(900, 1000), path=csv)
    assert [p.id for p in problems] == ["game24-900", "game24-901"]
    assert problems[0].metadata["numbers"] == [1, 3, 3, 11]
    assert problems[0].prompt[-1].content == "Input: 1 3 3 11"
    assert problems[0].answer_kind == "expression"


def test_gsm8k_subset_is_seeded_and_nested() -> None:
    assert D.gsm8k_reference("so 3 + 4 = 7\n#### 1,234") == "1234"
    a, b = D.load_gsm8k(3, seed=0), D.load_gsm8k(5, seed=0)
    assert [p.id for p in a] == [p.id for p in b[:3]]
    assert [p.id for p in D.load_gsm8k(3, seed=1)] != [p.id for p in a]
    assert all(p.reference and p.answer_kind == "number" for p in b)


# -- subsampling and bootstrap ---------------------------------------------------------------------------------------
def _pool(
    pid: str, answers: list[str | None], right: str, tokens: int = 100, rewards: list[float] | None = None
) -> Any:
    problem = Problem.from_text(pid, "q", answer_kind="number", reference=right)
    cands = [
        Candidate(
            f"{pid}/{i}",
            pid,
            i,
            "t",
            a,
            None if a else "none",
            "stop",
            10,
            tokens + i,
            0.0,
            "m",
            "h",
            mean_logprob=-0.5,
            scores=(Score("r", rewards[i] if rewards else 0.5),),
        )
        for i, a in enumerate(answers)
    ]
    return S.Pool(problem, cands, [a == right for a in answers])


def test_orders_are_permutations_so_prefixes_are_subsets_without_replacement() -> None:
    perms = S.orders(16, 50, np.random.default_rng(0))
    assert perms.shape == (50, 16)
    assert all(sorted(row) == list(range(16)) for row in perms.tolist())
    assert len({tuple(row[:4]) for row in perms.tolist()}) > 1  # different subsets


def test_subsampled_accuracy_matches_its_expectation() -> None:
    # 4 of 16 samples right, the wrong ones all different: one sample is right with p = 1/4, and the majority of
    # all 16 is the right answer.
    pool = _pool("p", ["7"] * 4 + [str(100 + i) for i in range(12)], "7")
    perms = [S.orders(16, 4000, np.random.default_rng(1))]
    assert S.subsample([pool], perms, 1, "cot", "r").correct.mean() == pytest.approx(0.25, abs=0.02)
    assert S.subsample([pool], perms, 16, "self_consistency", "r").correct.mean() == 1.0
    one = S.subsample([pool], perms, 1, "cot", "r")
    assert np.all(one.samples == 1)
    assert one.tokens.min() >= 100
    assert one.tokens.max() <= 115


def test_best_of_n_follows_the_reward_and_weighted_sums_it() -> None:
    answers = ["1", "2", "2", "3"]
    pool = _pool("p", answers, "1", rewards=[0.9, 0.3, 0.3, 0.1])
    assert S.pick("best_of_n", pool.candidates, "r") == "1"
    assert S.pick("self_consistency", pool.candidates, "r") == "2"
    assert S.pick("weighted_best_of_n", pool.candidates, "r") == "1"  # 0.9 > 0.3 + 0.3
    heavy = _pool("q", answers, "1", rewards=[0.5, 0.3, 0.3, 0.1])
    assert S.pick("weighted_best_of_n", heavy.candidates, "r") == "2"  # 0.6 > 0.5


def test_bootstrap_intervals_cover_the_estimate_and_shrink_with_more_problems() -> None:
    rng = np.random.default_rng(2)

    def width(n_problems: int) -> tuple[float, list[float | None]]:
        pools = [
            _pool(f"p{i}", ["7" if rng.random() < 0.5 else str(k) for k in range(8)], "7") for i in range(n_problems)
        ]
        perms = [S.orders(8, 50, rng) for _ in pools]
        o = S.subsample(pools, perms, 1, "cot", "r")
        rs = S.Resamples.draw(len(pools), 50, 1000, rng)
        band = S.ci(rs.means(o.correct))
        lo, hi = band
        assert lo is not None and hi is not None
        assert lo <= o.correct.mean() <= hi
        return hi - lo, band

    assert width(40)[0] < width(5)[0]
    certain = [_pool(f"c{i}", ["7"] * 4, "7") for i in range(5)]
    rs = S.Resamples.draw(5, 10, 200, rng)
    assert S.ci(rs.means(S.subsample(certain, [S.orders(4, 10, rng) for _ in certain], 2, "cot", "r").correct)) == [
        1.0,
        1.0,
    ]


def test_ci_reports_an_unbounded_end_as_none() -> None:
    assert S.ci(np.array([0.2] * 90 + [math.inf] * 10)) == [0.2, None]


def test_tokens_to_reach_interpolates_along_the_curve() -> None:
    curve = [(200.0, 0.4), (100.0, 0.2), (400.0, 0.6)]
    assert S.tokens_to_reach(curve, 0.5) == pytest.approx(300.0)
    assert S.tokens_to_reach(curve, 0.1) == 100.0
    assert S.tokens_to_reach(curve, 0.7) == math.inf


def test_adaptive_simulation_stops_early_on_agreement_and_reaches_sc16() -> None:
    easy = _pool("easy", ["7"] * 16, "7")
    split = _pool("split", ["7", "8"] * 8, "7")
    perms = [S.orders(16, 30, np.random.default_rng(3)) for _ in range(2)]
    o = S.simulate_adaptive([easy, split], perms, 0.9, 1)
    assert o.samples[0].max() <= 4  # unanimous: confident after a few samples
    assert o.samples[1].mean() > o.samples[0].mean()
    assert o.correct[0].all()
    decided_only = S.simulate_adaptive([easy, split], perms, 1.0, 1)
    full = S.subsample([easy, split], perms, 16, "self_consistency", "r")
    assert np.array_equal(decided_only.correct, full.correct)  # "decided" never changes the final vote
    assert decided_only.tokens.mean() < full.tokens.mean()


def test_analyse_gives_every_strategy_at_every_budget_and_the_ratio() -> None:
    rng = np.random.default_rng(4)
    pools = [
        _pool(f"p{i}", [("7" if rng.random() < 0.6 else str(rng.integers(5))) for _ in range(8)], "7") for i in range(6)
    ]
    out = S.analyse(pools, 8, "r", reps=10, boots=50, seed=0)
    assert set(out["strategies"]["self_consistency"]) == {"1", "2", "4", "8"}
    assert set(out["strategies"]) >= {"cot", "self_consistency", "best_of_n", "weighted_best_of_n", "adaptive_sim_b1"}
    ratio = out["ratio_b1"]
    assert ratio["ratio"] is None or 0 < ratio["ratio"] <= 1.0
    assert ratio["sc_accuracy"] == out["strategies"]["self_consistency"]["8"]["accuracy"]


def test_auroc() -> None:
    assert S.auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert S.auroc([0.1, 0.9], [True, False]) == 0.0
    assert S.auroc([0.5, 0.5], [True, False]) == 0.5
    assert S.auroc([0.5], [True]) is None


# -- the real quick run -------------------------------------------------------------------------------------------
def check_result(result: dict[str, Any]) -> None:
    """The shape every scaling_<dataset>.json has."""
    summary = result["summary"]
    for key in (
        "dataset",
        "model",
        "problems",
        "n_max",
        f"token_ratio_adaptive_vs_sc{summary['n_max']}",
        f"token_ratio_adaptive_vote_vs_sc{summary['n_max']}",
        "best_reward",
        "verifier_auroc",
        "program_mode_sc8_accuracy",
        "cot_sc8_accuracy",
        "small_search_vs_large_single",
        "token_ratio_reason",
        "accuracy",
        "reward",
        "partial",
    ):
        assert key in summary, key
    if summary["n_max"] != 16:  # every ratio is named for the SC@N_max it was measured against
        assert not [key for key in summary if key.endswith("_sc16")]
    ratio = summary[f"token_ratio_adaptive_vs_sc{summary['n_max']}"]
    assert (ratio is None) == (summary["token_ratio_reason"] is not None)
    budgets = [str(b) for b in (1, 2, 4, 8, 16) if b <= summary["n_max"]]
    assert list(summary["accuracy"]["cot"]) == ["1"]
    for name in ("self_consistency", "best_of_n", "weighted_best_of_n"):
        assert list(summary["accuracy"][name]) == budgets, name
    for rows in summary["accuracy"].values():
        for row in rows.values():
            assert 0.0 <= row["accuracy"] <= 1.0
            assert len(row["ci95"]) == 2
            assert row["tokens"] >= 0
    assert len(result["anchors"]) == 3
    assert len(result["pools"]) == summary["problems"] + summary["problems_failed"]


@pytest.mark.real_model
def test_quick_run_writes_the_results_json(tmp_path: Path) -> None:
    """``--quick`` without ``--out`` writes to a fresh temporary folder, never over benchmarks/results."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / "scaling.py"), "--quick", "--cache", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = Path(proc.stdout.strip().splitlines()[-1].split("results in ", 1)[1].split(":", 1)[0])
    assert out.resolve() != (BENCH / "results").resolve()
    result = json.loads((out / "scaling_gsm8k.json").read_text())
    check_result(result)
    summary = result["summary"]
    assert summary["model"] == "smollm2-135m-instruct"
    assert summary["problems"] + summary["problems_failed"] == 4
    assert summary["n_max"] == 4
    assert summary["partial"] is False
    assert {"beam", "tree", "adaptive"} <= set(summary["accuracy"])  # the real runs
    assert result["judge"]["judge_prompt_tokens_per_problem"] > 0
    assert summary["modes"] == ["cot", "program", "mixed"]  # mixed: half of each, voted together
    assert f"bon{summary['n_max']}_accuracy_best_reward" in summary
    program = result["pools_by_mode"]["program"]
    assert len(program) == 4 and all(len(p["answers"]) == 4 for p in program if not p["error"])
    # a failed program is a recorded failed candidate with its reason
    assert all((a is None) == (e is not None) for p in program for a, e in zip(p["answers"], p["errors"], strict=True))
    assert set(result["modes"]["modes"]) == {"cot", "program", "mixed"}
    assert all(len(p["answers"]) == 4 for p in result["pools"] if not p["error"])
    assert "token_ratio_adaptive_vs_sc4" in proc.stdout
    assert "sc16" not in proc.stdout  # N_max is 4: no ratio is reported against SC@16
    provenance = result["provenance"]
    assert provenance["settings"]["n_max"] == 4 and provenance["cpu_count"] >= 1
    assert {"commit", "dirty", "date"} <= set(provenance)


def test_allocation_simulation_matches_uniform_when_nothing_agrees() -> None:
    """With every problem equally contested, allocation spends the same as uniform self-consistency."""
    pools = [_pool(f"p{j}", [str(k) for k in range(8)], "0") for j in range(3)]
    perms = [S.orders(8, 5, np.random.default_rng(0)) for _ in pools]
    o = S.simulate_allocation(pools, perms, 6, first=4)
    assert np.allclose(o.samples, 6)
    agree = [_pool("a", ["1"] * 8, "1"), _pool("b", [str(k) for k in range(8)], "0")]
    o2 = S.simulate_allocation(agree, [S.orders(8, 5, np.random.default_rng(1)) for _ in agree], 6, first=4)
    assert np.allclose(o2.samples[0], 4) and np.allclose(o2.samples[1], 8)
