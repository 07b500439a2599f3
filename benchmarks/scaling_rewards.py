"""Reward-guided selection on the scaling benchmark's pools, kept pure (no model) so that it is unit-tested.

A *reward* maps a subset of a pool (the candidates a best-of-N at budget N would have) to one value per
candidate. It is computed from that subset only: a learned verifier that reads agreement between siblings, or
execution agreement, sees the N siblings a real run would have seen, never the whole pool of 16. Static
rewards (self-certainty, a judge) are read from the candidates' scores.

Rules: ``best`` (best-of-N: the top-scored candidate, ties as :func:`longthink.search.base.best_scored`) and
``weighted`` (the reward-weighted vote). Adaptive sampling with a reward stops when the best candidate so far
reaches a threshold (:func:`longthink.search.adaptive.reward_stop`), the rule the library's
``AdaptiveConsistency(scorer=..., reward_threshold=...)`` applies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scaling_stats import Outcomes, Pool, Resamples, ci, point, subsample_with, tokens_to_reach

from longthink.search.adaptive import reward_stop, weighted_answer
from longthink.search.base import best_scored, leader, tally
from longthink.search.types import Candidate, Problem, Score

Values = npt.NDArray[np.float64]
SubsetReward = Callable[[Problem, Sequence[Candidate]], Sequence[float]]
REWARD_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.01)  # 1.01: never stops early (= SC/weighted@N)


@dataclass
class Reward:
    """A named reward: ``static`` reads the candidates' stored score of that name; otherwise ``fn`` computes the
    values from the subset. Results are memoised per (pool, subset)."""

    name: str
    fn: SubsetReward | None = None
    memo: dict[tuple[int, tuple[int, ...]], Values] = field(default_factory=dict)

    def values(self, pool_index: int, pool: Pool, idx: Sequence[int]) -> Values:
        key = (pool_index, tuple(idx))
        hit = self.memo.get(key)
        if hit is not None:
            return hit
        cands = [pool.candidates[k] for k in idx]
        if self.fn is None:
            out = np.array([c.score(self.name) or 0.0 for c in cands], dtype=float)
        else:
            out = np.asarray(self.fn(pool.problem, cands), dtype=float)
        self.memo[key] = out
        return out


def agreement(problem: Problem, cands: Sequence[Candidate]) -> list[float]:
    """Execution (or answer) agreement: the share of the siblings that reached the same answer (0 without one)."""
    votes = tally(cands)
    return [votes[c.answer] / len(cands) if c.answer is not None else 0.0 for c in cands]


def cross_mode_agreement(problem: Problem, cands: Sequence[Candidate]) -> list[float]:
    """For mixed pools: agreement with the siblings of the *other* answer mode (executed programs for a text
    answer, text answers for a program), which errs differently; 0 without an answer or other-mode siblings."""
    out = []
    for c in cands:
        others = [o for o in cands if (o.execution is None) != (c.execution is None)]
        same = sum(o.answer == c.answer for o in others) if c.answer is not None else 0
        out.append(same / len(others) if others else 0.0)
    return out


def select(rule: str, cands: Sequence[Candidate], values: Values, name: str) -> str | None:
    scored = [c.with_scores(Score(name, float(v))) for c, v in zip(cands, values, strict=True)]
    if rule == "best":
        best = best_scored(scored, name)
        return best.answer if best else None
    if rule == "weighted":
        return leader(tally(scored, [max(0.0, float(v)) for v in values]), scored)
    raise ValueError(f"unknown rule {rule!r}")


def subsample_reward(
    pools: Sequence[Pool], perms: Sequence[npt.NDArray[np.int64]], b: int, rule: str, reward: Reward
) -> Outcomes:
    def choose(i: int, pool: Pool, idx: list[int]) -> str | None:
        return select(rule, [pool.candidates[k] for k in idx], reward.values(i, pool, idx), reward.name)

    return subsample_with(pools, perms, b, choose)


def simulate_reward_adaptive(
    pools: Sequence[Pool], perms: Sequence[npt.NDArray[np.int64]], threshold: float, batch: int, reward: Reward
) -> Outcomes:
    """Sample ``batch`` at a time along each random order; stop when the best reward so far reaches
    ``threshold`` (or the pool is used up); answer by the reward-weighted vote of what was drawn."""
    shape = (len(pools), perms[0].shape[0])
    correct, tokens, samples = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for i, (pool, perm) in enumerate(zip(pools, perms, strict=True)):
        right, n = pool.correct_answers, len(pool.candidates)
        for r, order in enumerate(perm):
            used = 0
            values: Values = np.zeros(0)
            while used < n:
                used = min(n, used + batch)
                values = reward.values(i, pool, [int(k) for k in order[:used]])
                if reward_stop(list(values), threshold):
                    break
            sub = [pool.candidates[int(k)] for k in order[:used]]
            answer = weighted_answer(sub, list(values))
            correct[i, r] = answer is not None and answer in right
            tokens[i, r] = sum(c.completion_tokens for c in sub)
            samples[i, r] = used
    return Outcomes(correct, tokens, samples)


def reward_curves(
    pools: Sequence[Pool],
    perms: Sequence[npt.NDArray[np.int64]],
    rs: Resamples,
    rewards: Sequence[Reward],
    budgets: Sequence[int],
) -> dict[str, dict[str, Any]]:
    """``best_of_n:<reward>`` and ``weighted:<reward>`` at every budget."""
    out: dict[str, dict[str, Any]] = {}
    for reward in rewards:
        for rule in ("best", "weighted"):
            label = f"{'best_of_n' if rule == 'best' else 'weighted'}:{reward.name}"
            out[label] = {str(b): point(subsample_reward(pools, perms, b, rule, reward), rs) for b in budgets}
    return out


def adaptive_curve(
    pools: Sequence[Pool],
    perms: Sequence[npt.NDArray[np.int64]],
    rs: Resamples,
    reward: Reward,
    batch: int,
    thresholds: Sequence[float] = REWARD_THRESHOLDS,
) -> tuple[dict[str, Any], list[Outcomes]]:
    """The accuracy-vs-tokens curve of reward-gated adaptive sampling over the thresholds, and its outcomes."""
    sims = [simulate_reward_adaptive(pools, perms, t, batch, reward) for t in thresholds]
    return {str(t): point(o, rs, threshold=t) for t, o in zip(thresholds, sims, strict=True)}, sims


def tokens_ratio(
    curve: dict[str, Any],
    sims: Sequence[Outcomes],
    rs: Resamples,
    target: Outcomes,
    boots: int,
) -> dict[str, Any]:
    """Tokens the adaptive curve needs to reach ``target``'s accuracy, as a share of ``target``'s tokens, with a
    paired bootstrap interval (None where the curve never gets there)."""
    goal, goal_tokens = float(target.correct.mean()), float(target.tokens.mean())
    pts = [(float(r["tokens"]), float(r["accuracy"])) for r in curve.values()]
    if goal <= 0:
        return {"ratio": None, "ci95": [None, None], "reason": "the target answers nothing correctly", "target": goal}
    need = tokens_to_reach(pts, goal)
    boot_goal, boot_tok = rs.means(target.correct), rs.means(target.tokens)
    paths = [(rs.means(o.tokens), rs.means(o.correct)) for o in sims]
    boot = np.array(
        [
            tokens_to_reach([(float(t[j]), float(a[j])) for t, a in paths], float(boot_goal[j])) / boot_tok[j]
            for j in range(boots)
        ]
    )
    if math.isinf(need):
        return {"ratio": None, "ci95": [None, None], "reason": f"never reaches {goal:.3f}", "target": goal}
    return {"ratio": need / goal_tokens, "ci95": ci(boot), "reason": None, "target": goal, "target_tokens": goal_tokens}


# -- reward quality on whole pools ----------------------------------------------------------------------------------
def pool_values(pools: Sequence[Pool], reward: Reward) -> tuple[list[float], list[bool]]:
    """Every candidate's value with the whole pool as its siblings, and its label."""
    values: list[float] = []
    labels: list[bool] = []
    for i, pool in enumerate(pools):
        values += [float(v) for v in reward.values(i, pool, list(range(len(pool.candidates))))]
        labels += list(pool.correct)
    return values, labels


def calibration(values: Sequence[float], labels: Sequence[bool], bins: int = 10) -> dict[str, Any]:
    """Brier score and expected calibration error of values read as P(correct) (clipped to [0, 1])."""
    p = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
    y = np.asarray(labels, dtype=float)
    if len(p) == 0:
        return {"brier": None, "ece": None, "bins": []}
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for k in range(bins):
        mask = which == k
        if not mask.any():
            continue
        conf, acc = float(p[mask].mean()), float(y[mask].mean())
        ece += mask.mean() * abs(conf - acc)
        table.append({"bin": k, "count": int(mask.sum()), "mean_value": round(conf, 4), "accuracy": round(acc, 4)})
    return {"brier": float(np.mean((p - y) ** 2)), "ece": float(ece), "bins": table}


def flops_matched(
    curves: dict[str, dict[str, Any]], budget_tokens: float, small_params: float, large_params: float
) -> dict[str, Any] | None:
    """The best point of the small model's curves whose generated-token FLOPs (params x tokens) do not exceed
    the large model's ``budget_tokens`` x ``large_params``."""
    cap = budget_tokens * large_params / small_params
    best: dict[str, Any] | None = None
    for name, rows in curves.items():
        for label, r in rows.items():
            if r["tokens"] <= cap and (best is None or r["accuracy"] > best["accuracy"]):
                best = {"setting": f"{name}@{label}", **r}
    return best


__all__ = [
    "PARAMS",
    "REWARD_THRESHOLDS",
    "Reward",
    "adaptive_curve",
    "agreement",
    "aligned",
    "analyse_rewards",
    "calibration",
    "cross_mode_agreement",
    "flops_matched",
    "headline",
    "plot_rewards",
    "pool_values",
    "reward_curves",
    "reward_table",
    "select",
    "simulate_reward_adaptive",
    "single_sample",
    "subsample_reward",
    "tokens_ratio",
]


# -- the whole analysis of one dataset ------------------------------------------------------------------------------
PARAMS = {
    "qwen2.5-coder-0.5b-instruct": 0.494e9,
    "qwen2.5-coder-1.5b-instruct": 1.544e9,
    "smollm2-135m-instruct": 0.135e9,
}
"""Parameter counts for the FLOP comparison (params x generated tokens)."""


def aligned(pools_by: dict[str, list[Pool]], n_max: int) -> dict[str, list[Pool]]:
    """The pools of the problems that have a full pool in every mode (same order in every mode), so that one
    paired bootstrap serves every mode."""
    modes = list(pools_by)
    count = min(len(p) for p in pools_by.values()) if pools_by else 0
    keep = [k for k in range(count) if all(len(pools_by[m][k].candidates) == n_max for m in modes)]
    return {m: [pools_by[m][k] for k in keep] for m in modes}


def analyse_rewards(
    pools_by: dict[str, list[Pool]],
    rewards_by: dict[str, list[Reward]],
    n_max: int,
    reps: int,
    boots: int,
    seed: int,
    *,
    baseline: str = "cot",
    adaptive_reps: int = 50,
) -> dict[str, Any]:
    """Self-consistency, best-of-N and weighted votes with every reward, reward-gated adaptive sampling, and each
    reward's AUROC / calibration, per answer mode; the adaptive token ratios are against ``baseline``'s SC@N_max."""
    from scaling_stats import auroc, orders, simulate_adaptive, subsample

    pools_by = aligned(pools_by, n_max)
    if not pools_by or not next(iter(pools_by.values())):
        return {"modes": {}, "problems": 0}
    rng = np.random.default_rng(seed)
    count = len(next(iter(pools_by.values())))
    rs = Resamples.draw(count, reps, boots, rng)
    budgets = [b for b in (1, 2, 4, 8, 16, 32, 64) if b <= n_max]
    out: dict[str, Any] = {"problems": count, "budgets": budgets, "modes": {}}
    full: dict[str, Outcomes] = {}
    perms_by = {m: [orders(n_max, reps, rng) for _ in pools] for m, pools in pools_by.items()}
    for mode, pools in pools_by.items():
        perms = perms_by[mode]
        curves: dict[str, dict[str, Any]] = {}
        sc_rows = {}
        for b in budgets:
            o = subsample(pools, perms, b, "self_consistency", "")
            sc_rows[str(b)] = point(o, rs)
            if b == n_max:
                full[mode] = o
        curves["self_consistency"] = sc_rows
        curves.update(reward_curves(pools, perms, rs, rewards_by.get(mode, []), budgets))
        short = [p[:, :adaptive_reps] for p in perms]
        rs_short = Resamples(rs.problems, rs.orders % adaptive_reps)
        confidences = (0.6, 0.8, 0.9, 0.95, 0.99, 1.0)
        vote_sims = [simulate_adaptive(pools, short, t, 1) for t in confidences]
        vote_curve = {str(t): point(o, rs_short, confidence=t) for t, o in zip(confidences, vote_sims, strict=True)}
        adaptive: dict[str, Any] = {"vote": (vote_curve, vote_sims, rs_short)}
        for reward in rewards_by.get(mode, []):
            curve, sims = adaptive_curve(pools, short, rs_short, reward, 1)
            adaptive[reward.name] = (curve, sims, rs_short)
        quality = {}
        for reward in rewards_by.get(mode, []):
            values, labels = pool_values(pools, reward)
            quality[reward.name] = {"auroc": auroc(values, labels), **calibration(values, labels)}
        out["modes"][mode] = {
            "curves": curves,
            "adaptive": adaptive,
            "reward_quality": quality,
            "oracle_any_correct": float(np.mean([any(p.correct) for p in pools])),
            "single_sample": float(np.mean([np.mean(p.correct) for p in pools])),
            "failed_share": float(np.mean([c.answer is None for p in pools for c in p.candidates])),
            "tokens_per_sample": float(np.mean([c.completion_tokens for p in pools for c in p.candidates])),
        }
    # token ratios of every adaptive curve against the baseline's (and its own mode's) SC@N_max
    for mode, res in out["modes"].items():
        ratios = {}
        for name, (curve, sims, rs_a) in res["adaptive"].items():
            ratios[name] = {
                f"vs_{baseline}_sc{n_max}": tokens_ratio(
                    curve, sims, rs_a, _short(full[baseline], adaptive_reps), boots
                )
                if baseline in full
                else None,
                f"vs_{mode}_sc{n_max}": tokens_ratio(curve, sims, rs_a, _short(full[mode], adaptive_reps), boots),
            }
            res["adaptive"][name] = curve
        res["adaptive_token_ratios"] = ratios
    return out


def _short(o: Outcomes, reps: int) -> Outcomes:
    """The first ``reps`` random orders of an outcome (the adaptive simulations use that many)."""
    return Outcomes(o.correct[:, :reps], o.tokens[:, :reps], o.samples[:, :reps])


def headline(analysis: dict[str, Any], n_max: int, baseline: str = "cot") -> dict[str, Any]:
    """The summary figures: the best reward by best-of-N_max accuracy (any mode; ties broken by the mean accuracy
    over every budget, the area under the curve), and its adaptive token ratio."""
    modes = analysis.get("modes", {})
    best: tuple[float, float, str, str] | None = None
    for mode, res in modes.items():
        for name, rows in res["curves"].items():
            if name.startswith("best_of_n:") and str(n_max) in rows:
                key = (rows[str(n_max)]["accuracy"], float(np.mean([r["accuracy"] for r in rows.values()])))
                if best is None or key > best[:2]:
                    best = (*key, mode, name.split(":", 1)[1])
    out: dict[str, Any] = {
        f"sc{n_max}_accuracy": _acc(modes, baseline, "self_consistency", n_max),
        f"sc{n_max}_ci95": _ci(modes, baseline, "self_consistency", n_max),
        f"sc{n_max}_accuracy_by_mode": {m: _acc(modes, m, "self_consistency", n_max) for m in modes},
        "sc8_accuracy_by_mode": {m: _acc(modes, m, "self_consistency", 8) for m in modes},
    }
    if best is not None:
        acc, _, mode, reward = best
        ratio = modes[mode]["adaptive_token_ratios"].get(reward, {}).get(f"vs_{baseline}_sc{n_max}") or {}
        out.update(
            {
                f"bon{n_max}_accuracy_best_reward": acc,
                f"bon{n_max}_ci95": _ci(modes, mode, f"best_of_n:{reward}", n_max),
                "best_reward": reward,
                "best_reward_mode": mode,
                "bon_curve_best_reward": {
                    b: r["accuracy"] for b, r in modes[mode]["curves"][f"best_of_n:{reward}"].items()
                },
                f"token_ratio_adaptive_vs_sc{n_max}": ratio.get("ratio"),
                "token_ratio_ci95": ratio.get("ci95"),
                "token_ratio_reason": ratio.get("reason"),
            }
        )
    return out


def _acc(modes: dict[str, Any], mode: str, curve: str, b: int) -> float | None:
    row = modes.get(mode, {}).get("curves", {}).get(curve, {}).get(str(b))
    return None if row is None else float(row["accuracy"])


def _ci(modes: dict[str, Any], mode: str, curve: str, b: int) -> list[float | None] | None:
    row = modes.get(mode, {}).get("curves", {}).get(curve, {}).get(str(b))
    return None if row is None else list(row["ci95"])


def single_sample(pools: Sequence[Pool], boots: int, seed: int) -> dict[str, Any]:
    """A model's single-sample accuracy (mean over its samples) with a bootstrap CI over problems."""
    ok = [p for p in pools if p.candidates]
    if not ok:
        return {"accuracy": None, "problems": 0}
    acc = np.array([np.mean(p.correct) for p in ok])
    tok = np.array([np.mean([c.completion_tokens for c in p.candidates]) for p in ok])
    idx = np.random.default_rng(seed).integers(len(ok), size=(boots, len(ok)))
    return {
        "accuracy": float(acc.mean()),
        "ci95": ci(acc[idx].mean(axis=1)),
        "tokens": float(tok.mean()),
        "problems": len(ok),
        "samples_per_problem": float(np.mean([len(p.candidates) for p in ok])),
    }


# -- reporting ------------------------------------------------------------------------------------------------------
def reward_table(result: dict[str, Any]) -> str:
    """Accuracy at every budget for each mode's vote and reward-guided selections, then the rewards' AUROC."""
    modes = result.get("modes", {}).get("modes", {})
    budgets = result.get("modes", {}).get("budgets", [])
    head = f"{'mode':<9}{'selection':<30}" + "".join(f"{'N=' + str(b):>8}" for b in budgets)
    lines = [head]
    for mode, res in modes.items():
        for name, rows in res["curves"].items():
            cells = "".join(f"{rows[str(b)]['accuracy']:>8.3f}" if str(b) in rows else f"{'-':>8}" for b in budgets)
            lines.append(f"{mode:<9}{name:<30}{cells}")
    lines.append(f"{'mode':<9}{'reward':<30}{'AUROC':>8}{'Brier':>8}{'ECE':>8}")
    for mode, res in modes.items():
        for name, q in res["reward_quality"].items():
            vals = [q.get("auroc"), q.get("brier"), q.get("ece")]
            lines.append(f"{mode:<9}{name:<30}" + "".join(f"{v:>8.3f}" if v is not None else f"{'-':>8}" for v in vals))
    return "\n".join(lines)


def plot_rewards(result: dict[str, Any], path: Any) -> None:
    """Accuracy vs generated tokens per problem for every mode x selection (95% CI bands), the adaptive curves
    with the best reward, and the larger model's single sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = result.get("modes", {}).get("modes", {})
    if not modes:
        return
    fig, axes = plt.subplots(1, len(modes), figsize=(7 * len(modes), 5.5), sharey=True, squeeze=False)
    summary = result["summary"]
    for ax, (mode, res) in zip(axes[0], modes.items(), strict=True):
        curves = dict(res["curves"])
        for name in ("vote", summary.get("best_reward")):
            if name in res["adaptive"]:
                curves[f"adaptive:{name}"] = res["adaptive"][name]
        for name, rows in curves.items():
            pts = sorted(rows.values(), key=lambda r: r["tokens"])
            x, y = [r["tokens"] for r in pts], [r["accuracy"] for r in pts]
            lo = [r["ci95"][0] if r["ci95"][0] is not None else r["accuracy"] for r in pts]
            hi = [r["ci95"][1] if r["ci95"][1] is not None else r["accuracy"] for r in pts]
            style = "--" if name.startswith("adaptive") else "-"
            (line,) = ax.plot(x, y, style, marker="o", ms=3, label=name)
            ax.fill_between(x, lo, hi, alpha=0.08, color=line.get_color())
        large = summary.get("large_single_accuracy")
        if large is not None:
            lo, hi = summary.get("large_single_ci95") or [large, large]
            ax.errorbar([summary["large_single_tokens"]], [large], yerr=[[large - lo], [hi - large]], fmt="*", ms=12,
                        capsize=3, color="black", label=f"{summary['large_model']} single sample")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("generated tokens per problem (policy model)")
        ax.set_title(f"{summary['dataset']} - {mode} mode, {result['modes']['problems']} problems")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=6, loc="lower right")
    axes[0][0].set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
