"""Reward-guided selection on benchmark pools (``benchmarks/scaling_rewards.py``): rewards see only the subset a
run would have, best-of-N and weighted votes, reward-gated adaptive sampling, calibration, the FLOP match."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from longthink.search.adaptive import reward_stop, weighted_answer
from longthink.search.types import Candidate, Problem, Score

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCH) not in sys.path:
    sys.path.append(str(BENCH))  # appended: the benchmark's `datasets` must not shadow another package

R = pytest.importorskip("scaling_rewards")
ST = pytest.importorskip("scaling_stats")


def _pool(pid: str, answers: list[str | None], right: str, scores: list[float] | None = None) -> Any:
    problem = Problem.from_text(pid, "q", answer_kind="number", reference=right)
    cands = []
    for i, a in enumerate(answers):
        c = Candidate(f"{pid}/{i}", pid, i, "t", a, None if a else "none", "stop", 10, 100, 0.1, "m", "h")
        if scores is not None:
            c = c.with_scores(Score("judge", scores[i]))
        cands.append(c)
    return ST.Pool(problem, cands, [a == right for a in answers])


def test_agreement_is_the_share_of_siblings_with_the_same_answer() -> None:
    pool = _pool("p", ["1", "1", "2", None], "1")
    assert R.agreement(pool.problem, pool.candidates) == [0.5, 0.5, 0.25, 0.0]


def test_a_dynamic_reward_sees_only_the_subset() -> None:
    seen: list[int] = []

    def fn(problem: Problem, cands: list[Candidate]) -> list[float]:
        seen.append(len(cands))
        return [1.0] * len(cands)

    reward = R.Reward("r", fn)
    pool = _pool("p", ["1", "2", "3", "4"], "1")
    reward.values(0, pool, [0, 2])
    reward.values(0, pool, [0, 2])  # memoised
    reward.values(0, pool, [1, 2, 3])
    assert seen == [2, 3]


def test_best_of_n_follows_the_reward_and_weighted_sums_it() -> None:
    pool = _pool("p", ["7", "3", "3"], "7", scores=[0.9, 0.5, 0.5])
    values = np.array([0.9, 0.5, 0.5])
    assert R.select("best", pool.candidates, values, "judge") == "7"
    assert R.select("weighted", pool.candidates, values, "judge") == "3"  # 1.0 > 0.9
    static = R.Reward("judge")
    assert list(static.values(0, pool, [0, 1])) == [0.9, 0.5]


def test_subsample_reward_beats_the_vote_when_the_reward_knows_better() -> None:
    """The right answer is a minority; a reward that marks it lifts best-of-N above the vote."""
    pools = [_pool(f"p{j}", ["9", "9", "9", "1"], "1", scores=[0.1, 0.1, 0.1, 0.9]) for j in range(3)]
    perms = [ST.orders(4, 30, np.random.default_rng(j)) for j in range(3)]
    judge = R.Reward("judge")
    best = R.subsample_reward(pools, perms, 4, "best", judge)
    vote = ST.subsample(pools, perms, 4, "self_consistency", "")
    assert best.correct.mean() == 1.0 and vote.correct.mean() == 0.0
    one = R.subsample_reward(pools, perms, 1, "best", judge)
    assert 0.0 < one.correct.mean() < 1.0  # a single sample is right 1 time in 4 on average


def test_reward_gated_adaptive_stops_when_a_candidate_is_verified() -> None:
    pools = [_pool("p", ["1", "2", "3", "4"], "1", scores=[0.95, 0.1, 0.1, 0.1])]
    perms = [np.array([[0, 1, 2, 3], [1, 2, 0, 3]])]
    out = R.simulate_reward_adaptive(pools, perms, 0.9, 1, R.Reward("judge"))
    assert list(out.samples[0]) == [1.0, 3.0]  # stops right after the verified candidate
    assert list(out.correct[0]) == [1.0, 1.0]
    never = R.simulate_reward_adaptive(pools, perms, 1.01, 2, R.Reward("judge"))
    assert list(never.samples[0]) == [4.0, 4.0]
    assert reward_stop([0.2, 0.91], 0.9) and not reward_stop([0.2], 0.9) and not reward_stop([0.99], None)
    assert weighted_answer(pools[0].candidates[:2], [0.2, 0.3]) == "2"


def test_calibration_of_a_perfect_and_a_constant_predictor() -> None:
    perfect = R.calibration([1.0, 0.0, 1.0, 0.0], [True, False, True, False])
    assert perfect["brier"] == 0.0 and perfect["ece"] == 0.0
    constant = R.calibration([0.5] * 4, [True, False, True, True])
    assert constant["ece"] == pytest.approx(0.25)
    assert constant["brier"] == pytest.approx(0.25)


def test_flops_matched_picks_the_best_affordable_setting() -> None:
    curves = {
        "sc": {"1": {"accuracy": 0.2, "tokens": 100.0}, "8": {"accuracy": 0.5, "tokens": 800.0}},
        "bon": {"4": {"accuracy": 0.4, "tokens": 400.0}},
    }
    # the large model spends 150 tokens at 3x the parameters: 450 small-model tokens are affordable
    best = R.flops_matched(curves, 150.0, 1.0, 3.0)
    assert best is not None and best["setting"] == "bon@4" and best["accuracy"] == 0.4
    assert R.flops_matched(curves, 10.0, 1.0, 3.0) is None


def test_analyse_rewards_end_to_end_on_two_modes() -> None:
    rng = np.random.default_rng(0)
    by_mode: dict[str, list[Any]] = {"cot": [], "program": []}
    for j in range(6):
        right = str(j)
        cot = [right if rng.random() < 0.3 else str(100 + rng.integers(3)) for _ in range(4)]
        prog = [right if rng.random() < 0.6 else None for _ in range(4)]
        by_mode["cot"].append(_pool(f"c{j}", cot, right))
        by_mode["program"].append(_pool(f"p{j}", prog, right))
    rewards = {m: [R.Reward("agreement", R.agreement)] for m in by_mode}
    out = R.analyse_rewards(by_mode, rewards, 4, reps=20, boots=50, seed=0, adaptive_reps=10)
    assert out["problems"] == 6 and set(out["modes"]) == {"cot", "program"}
    for res in out["modes"].values():
        assert set(res["curves"]) == {"self_consistency", "best_of_n:agreement", "weighted:agreement"}
        assert list(res["curves"]["self_consistency"]) == ["1", "2", "4"]
        assert {"vote", "agreement"} <= set(res["adaptive"])
        assert "auroc" in res["reward_quality"]["agreement"]
    head = R.headline(out, 4)
    assert head["best_reward"] == "agreement"
    assert head["sc4_accuracy"] == out["modes"]["cot"]["curves"]["self_consistency"]["4"]["accuracy"]
    assert "token_ratio_adaptive_vs_sc4" in head and "token_ratio_adaptive_vs_sc16" not in head  # N_max is 4
