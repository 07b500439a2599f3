"""Statistics and reporting of the test-time scaling benchmark (``benchmarks/scaling.py``), kept pure so that it
is unit-tested without a model.

- A :class:`Pool` holds one problem's N_max samples, scored once.
- :func:`subsample` derives budget b from a pool: the first b samples of each of many random orders (a subset
  drawn without replacement), with the strategy's selection made by the library's own helpers (``tally``,
  ``leader`` with its tie-breaking, ``best_scored``).
- :func:`simulate_adaptive` applies ``longthink.search.adaptive.stop_point`` along the same random orders.
- :class:`Resamples` is one *paired* bootstrap (problems resampled, and a random order for each), shared by every
  strategy, so differences and ratios get honest intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from longthink.search.adaptive import stop_point
from longthink.search.allocation import allocate, difficulty
from longthink.search.base import best_scored, leader, tally
from longthink.search.types import Candidate, Problem

THRESHOLDS = (0.6, 0.7, 0.8, 0.875, 0.9, 0.95, 0.97, 0.99, 0.999, 1.0)  # 1.0: stop only when decided
SAMPLED = ("self_consistency", "best_of_n", "weighted_best_of_n")


@dataclass
class Pool:
    problem: Problem
    candidates: list[Candidate] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    reward_tokens: int = 0  # judge tokens (prompt + completion) spent scoring the whole pool
    wall_s: float = 0.0
    cached: bool = False
    error: str | None = None

    @property
    def correct_answers(self) -> set[str]:
        return {c.answer for c, ok in zip(self.candidates, self.correct, strict=True) if ok and c.answer}


def pick(strategy: str, cands: Sequence[Candidate], reward: str) -> str | None:
    if strategy in ("cot", "self_consistency"):
        return leader(tally(cands), cands)
    if strategy == "best_of_n":
        best = best_scored(cands, reward)
        return best.answer if best else None
    if strategy == "weighted_best_of_n":
        weights = [max(0.0, c.score(reward) or 0.0) for c in cands]
        return leader(tally(cands, weights), cands)
    raise ValueError(f"unknown pooled strategy {strategy!r}")


def orders(n: int, reps: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """``reps`` random orders of ``n`` samples; the first b of an order is a subset of size b drawn without
    replacement (nested across budgets: common random numbers make the curves smoother)."""
    return np.argsort(rng.random((reps, n)), axis=1)


@dataclass
class Outcomes:
    """Per problem (rows) and random order (columns): was the answer right, how many tokens were generated."""

    correct: npt.NDArray[np.float64]
    tokens: npt.NDArray[np.float64]
    samples: npt.NDArray[np.float64]


Chooser = Callable[[int, Pool, list[int]], "str | None"]
"""Picks the answer of pool ``i`` from the candidates at the given indices."""


def subsample_with(pools: Sequence[Pool], perms: Sequence[npt.NDArray[np.int64]], b: int, choose: Chooser) -> Outcomes:
    """Budget ``b``: the first ``b`` samples of every random order, the answer picked by ``choose``."""
    shape = (len(pools), perms[0].shape[0])
    correct, tokens = np.zeros(shape), np.zeros(shape)
    for i, (pool, perm) in enumerate(zip(pools, perms, strict=True)):
        right = pool.correct_answers
        for r, order in enumerate(perm):
            idx = [int(k) for k in order[:b]]
            answer = choose(i, pool, idx)
            correct[i, r] = answer is not None and answer in right
            tokens[i, r] = sum(pool.candidates[k].completion_tokens for k in idx)
    return Outcomes(correct, tokens, np.full(shape, float(b)))


def subsample(
    pools: Sequence[Pool], perms: Sequence[npt.NDArray[np.int64]], b: int, strategy: str, reward: str
) -> Outcomes:
    return subsample_with(
        pools, perms, b, lambda i, pool, idx: pick(strategy, [pool.candidates[k] for k in idx], reward)
    )


def simulate_adaptive(
    pools: Sequence[Pool], perms: Sequence[npt.NDArray[np.int64]], confidence: float, batch: int
) -> Outcomes:
    shape = (len(pools), perms[0].shape[0])
    correct, tokens, samples = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for i, (pool, perm) in enumerate(zip(pools, perms, strict=True)):
        right, n = pool.correct_answers, len(pool.candidates)
        for r, order in enumerate(perm):
            seq = [pool.candidates[k] for k in order]
            used, _ = stop_point(
                [c.answer for c in seq], batch=batch, max_samples=n, confidence=confidence, min_samples=batch
            )
            answer = leader(tally(seq[:used]), seq[:used])
            correct[i, r] = answer is not None and answer in right
            tokens[i, r] = sum(c.completion_tokens for c in seq[:used])
            samples[i, r] = used
    return Outcomes(correct, tokens, samples)


def simulate_allocation(
    pools: Sequence[Pool], perms: Sequence[npt.NDArray[np.int64]], per_problem: int, first: int = 4
) -> Outcomes:
    """The library's per-problem allocation (``longthink.search.allocation``) on the pools: in random order r,
    every problem gets its first ``first`` samples, then the rest of ``per_problem`` x problems is split by
    early disagreement (capped at the pool size); the answer is the vote."""
    shape = (len(pools), perms[0].shape[0])
    correct, tokens, samples = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    first = min(first, per_problem)
    for r in range(shape[1]):
        seqs = [[pool.candidates[k] for k in perm[r]] for pool, perm in zip(pools, perms, strict=True)]
        cap = min(len(s) for s in seqs)
        extra = allocate([difficulty(s[:first]) for s in seqs], (per_problem - first) * len(pools), cap - first)
        for i, (pool, seq, k) in enumerate(zip(pools, seqs, extra, strict=True)):
            used = seq[: first + k]
            answer = leader(tally(used), used)
            correct[i, r] = answer is not None and answer in pool.correct_answers
            tokens[i, r] = sum(c.completion_tokens for c in used)
            samples[i, r] = len(used)
    return Outcomes(correct, tokens, samples)


@dataclass(frozen=True)
class Resamples:
    """One paired bootstrap: replicate j takes problems ``problems[j]`` and, for each, random order ``orders[j]``."""

    problems: npt.NDArray[np.int64]
    orders: npt.NDArray[np.int64]

    @staticmethod
    def draw(n_problems: int, reps: int, boots: int, rng: np.random.Generator) -> Resamples:
        return Resamples(
            rng.integers(n_problems, size=(boots, n_problems)), rng.integers(reps, size=(boots, n_problems))
        )

    def means(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return values[self.problems, self.orders].mean(axis=1)  # type: ignore[no-any-return]


def ci(values: npt.NDArray[np.float64]) -> list[float | None]:
    """The 95% percentile interval; an infinite end (a ratio whose curve never got there) is None."""
    bounds = np.quantile(values, [0.025, 0.975], method="inverted_cdf")
    return [float(b) if np.isfinite(b) else None for b in bounds]


def point(o: Outcomes, rs: Resamples, **extra: Any) -> dict[str, Any]:
    return {
        "accuracy": float(o.correct.mean()),
        "ci95": ci(rs.means(o.correct)),
        "tokens": float(o.tokens.mean()),
        "tokens_ci95": ci(rs.means(o.tokens)),
        "samples": float(o.samples.mean()),
        **extra,
    }


def tokens_to_reach(curve: Sequence[tuple[float, float]], target: float) -> float:
    """Tokens at which an accuracy-vs-tokens curve first reaches ``target`` (linear interpolation between the
    points around the crossing); inf if it never does."""
    pts = sorted(curve)
    for k, (tok, acc) in enumerate(pts):
        if acc >= target - 1e-12:
            if k == 0:
                return tok
            t0, a0 = pts[k - 1]
            return t0 + (target - a0) / (acc - a0) * (tok - t0) if acc > a0 else tok
    return math.inf


def analyse(pools: Sequence[Pool], n_max: int, reward: str, reps: int, boots: int, seed: int) -> dict[str, Any]:
    """Every pooled strategy at every budget and the adaptive curves, with paired bootstrap intervals."""
    rng = np.random.default_rng(seed)
    perms = [orders(len(p.candidates), reps, rng) for p in pools]
    rs = Resamples.draw(len(pools), reps, boots, rng)
    budgets = [b for b in (1, 2, 4, 8, 16, 32, 64) if b <= n_max]
    reward_per_sample = [p.reward_tokens / max(1, len(p.candidates)) for p in pools]
    out: dict[str, Any] = {"budgets": budgets, "strategies": {}}
    cot = subsample(pools, perms, 1, "cot", reward)
    out["strategies"]["cot"] = {"1": point(cot, rs)}
    sc_full: Outcomes | None = None
    for name in SAMPLED:
        rows = {}
        for b in budgets:
            o = subsample(pools, perms, b, name, reward)
            extra = {"reward_tokens": float(np.mean(reward_per_sample) * b)} if name != "self_consistency" else {}
            rows[str(b)] = point(o, rs, **extra)
            if name == "self_consistency" and b == n_max:
                sc_full = o
        out["strategies"][name] = rows
    if sc_full is None:
        raise ValueError(f"N_max={n_max} is not one of the budgets {budgets}")
    # per-problem allocation of the same average budget (spend more where the first samples disagree)
    out["strategies"]["allocated"] = {
        str(b): point(simulate_allocation(pools, perms, b), rs, samples_per_problem=b) for b in budgets if b >= 4
    }
    target, sc_tokens = float(sc_full.correct.mean()), float(sc_full.tokens.mean())
    boot_target, boot_tokens = rs.means(sc_full.correct), rs.means(sc_full.tokens)
    for batch in sorted({1, min(4, n_max)}):
        sims = {t: simulate_adaptive(pools, perms, t, batch) for t in THRESHOLDS}
        out["strategies"][f"adaptive_sim_b{batch}"] = {str(t): point(o, rs, confidence=t) for t, o in sims.items()}
        ratio = tokens_to_reach([(float(o.tokens.mean()), float(o.correct.mean())) for o in sims.values()], target)
        # The same ratio on every bootstrap replicate (paired: the same problems and orders for SC and adaptive).
        curves = [(rs.means(o.tokens), rs.means(o.correct)) for o in sims.values()]
        boot = np.array(
            [
                tokens_to_reach([(float(t[j]), float(a[j])) for t, a in curves], float(boot_target[j])) / boot_tokens[j]
                for j in range(boots)
            ]
        )
        if target <= 0:
            value, reason = None, f"SC@{n_max} answers nothing correctly: there is no accuracy to reach"
        elif math.isinf(ratio):
            value, reason = None, f"the adaptive curve never reaches SC@{n_max}'s accuracy {target:.3f}"
        else:
            value, reason = ratio / sc_tokens, None
        out[f"ratio_b{batch}"] = {
            "ratio": value,
            "ci95": ci(boot) if value is not None else [None, None],
            "reason": reason,
            "sc_accuracy": target,
            "sc_tokens": sc_tokens,
        }
    return out


def summarise_real(rows: Sequence[dict[str, Any]], boots: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for key in sorted({(r["strategy"], r["config"]) for r in rows}):
        mine = [r for r in rows if (r["strategy"], r["config"]) == key and "error" not in r]
        if not mine:
            continue
        acc, tok = np.array([float(r["correct"]) for r in mine]), np.array([float(r["tokens"]) for r in mine])
        idx = rng.integers(len(mine), size=(boots, len(mine)))
        out.setdefault(key[0], {})[key[1]] = {
            "accuracy": float(acc.mean()),
            "ci95": ci(acc[idx].mean(axis=1)),
            "tokens": float(tok.mean()),
            "tokens_ci95": ci(tok[idx].mean(axis=1)),
            "problems": len(mine),
            "failed": sum(1 for r in rows if (r["strategy"], r["config"]) == key and "error" in r),
        }
    return out


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


# -- reporting -----------------------------------------------------------------------------------------------------
def table(result: dict[str, Any]) -> str:
    lines = [f"{'strategy':<26}{'budget':>8}{'accuracy':>10}{'95% CI':>18}{'tokens':>10}"]
    for name, rows in result["summary"]["accuracy"].items():
        for budget, r in rows.items():
            lo, hi = r["ci95"]
            band = f"[{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else "-"
            lines.append(f"{name:<26}{budget:>8}{r['accuracy']:>10.3f}{band:>18}{r['tokens']:>10.0f}")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = result["summary"]["accuracy"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for name in ("self_consistency", "best_of_n", "weighted_best_of_n", "adaptive_sim_b1", "allocated"):
        rows = sorted(acc.get(name, {}).values(), key=lambda r: r["tokens"])
        if not rows:
            continue
        x, y = [r["tokens"] for r in rows], [r["accuracy"] for r in rows]
        lo = [r["ci95"][0] if r["ci95"][0] is not None else r["accuracy"] for r in rows]
        hi = [r["ci95"][1] if r["ci95"][1] is not None else r["accuracy"] for r in rows]
        (line,) = ax.plot(
            x,
            y,
            marker="o",
            ms=3,
            label=name.replace("_sim_b1", " (simulated, batch 1)").replace("allocated", "allocated by difficulty"),
        )
        ax.fill_between(x, lo, hi, alpha=0.15, color=line.get_color())
    markers = {"cot": "*", "beam": "s", "tree": "^", "adaptive": "D"}
    for name, marker in markers.items():
        for label, r in acc.get(name, {}).items():
            lo, hi = r["ci95"]
            err = [
                [r["accuracy"] - (lo if lo is not None else r["accuracy"])],
                [(hi if hi is not None else r["accuracy"]) - r["accuracy"]],
            ]
            ax.errorbar(
                [r["tokens"]],
                [r["accuracy"]],
                yerr=err,
                fmt=marker,
                ms=8,
                capsize=3,
                label=f"{name} {label}" + ("" if name == "cot" else " (real run)"),
            )
    s = result["summary"]
    tops = [r["ci95"][1] if r["ci95"][1] is not None else r["accuracy"] for rows in acc.values() for r in rows.values()]
    ax.set_ylim(0, min(1.0, max([0.05, *tops]) * 1.15))
    ax.set_xscale("log")
    ax.set_xlabel("generated tokens per problem (policy model)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{s['dataset']}: {s['model']}, {s['problems']} problems (real runs: {s['real_problems']})")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
