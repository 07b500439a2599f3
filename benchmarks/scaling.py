"""Test-time scaling curves: accuracy vs generated tokens for cot, self-consistency, best-of-N, weighted best-of-N,
adaptive, beam and tree search, on GSM8K and Game of 24.

    .venv/bin/python benchmarks/scaling.py --quick                      # CI: SmolLM2, 4 problems, JSON to a tmp dir
    .venv/bin/python benchmarks/scaling.py --dataset all --problems 30  # the full run (Qwen2.5-Coder-0.5B)
    .venv/bin/python benchmarks/scaling.py --endpoint http://host:8000/v1 --model NAME ...

Method (as the literature does it, sized for a CPU): for the sampling strategies, N_max samples per problem are
drawn ONCE (one batched, seeded call per problem, through the on-disk generation cache, so a rerun or a resumed
run costs nothing), scored once, and every budget 1, 2, 4, ... N_max is derived by subsampling without
replacement. Accuracy is averaged over many random subsets; 95% intervals come from a bootstrap that resamples
problems *and* subsets (one paired set of resamples for every strategy). Adaptive consistency is simulated with
``longthink.search.adaptive.stop_point`` on random orders of each problem's pool, sweeping the confidence
threshold; beam, tree and adaptive also run for real (through the strategies and SearchContext) at two budgets
on a smaller subset. Tokens are the policy model's generated tokens per problem; reward (judge) tokens are
reported separately. Results: ``benchmarks/results/scaling_<dataset>.json`` (top-level ``summary``) and a PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import check_24, load_game24, load_gsm8k, problem_seed
from scaling_stats import Pool, analyse, auroc, plot, summarise_real, table

from longthink.budget import Budget
from longthink.errors import BackendError, SearchFailed
from longthink.llm.base import LLM, BaseLLM
from longthink.llm.cache import CachedLLM
from longthink.llm.types import Completion, Message, SamplingParams
from longthink.rewards.base import Scorer
from longthink.rewards.judge import Judge
from longthink.rewards.self_certainty import SelfCertainty
from longthink.rewards.verifier import ReferenceMatch, Verdict, Verifier
from longthink.search import AdaptiveConsistency, BeamSearch, TreeSearch
from longthink.search.base import Strategy
from longthink.search.context import SearchContext
from longthink.search.types import Problem

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "cache"
ANCHORS = (
    "self-consistency: +17.9 points on GSM8K over chain of thought (Wang et al. 2022, PaLM 540B)",
    "Tree of Thoughts: Game of 24 from 4% (CoT) to 74% (ToT, b=5) with GPT-4 (Yao et al. 2023)",
    "compute-optimal test-time scaling: >4x more efficient than best-of-N (Snell et al. 2024)",
)


@dataclass(frozen=True)
class Settings:
    """Everything one run depends on (the one options object)."""

    datasets: tuple[str, ...] = ("gsm8k",)
    model: str = "qwen2.5-coder-0.5b-instruct"
    endpoint: str | None = None
    threads: int = 1
    problems: int = 28
    n_max: int = 16
    max_tokens: int = 320
    game24_n_max: int = 8
    game24_max_tokens: int = 128
    temperature: float = 0.7
    seed: int = 0
    real_problems: int = 4
    judge_probe: int = 2
    reward: str = "self_certainty"
    reps: int = 200
    boots: int = 1000
    out: Path = RESULTS
    cache: Path = CACHE
    plot: bool = True
    quick: bool = False


# -- the model --------------------------------------------------------------------------------------------------
class SeededLLM(BaseLLM):
    """Gives unseeded requests a fixed seed so the generation cache stores them (the judge runs at T=0, where
    the seed changes nothing); usage through this wrapper is the judge's own."""

    def __init__(self, inner: LLM, seed: int = 0) -> None:
        super().__init__(inner.model)
        self.inner, self.seed = inner, seed

    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], p: SamplingParams
    ) -> list[list[Completion]]:
        return await self.inner.generate(prompts, p if p.seed is not None else replace(p, seed=self.seed))


def build_llm(s: Settings) -> LLM:
    if s.endpoint:
        from longthink.llm.openai_compat import OpenAICompatLLM

        return OpenAICompatLLM(s.endpoint, model=s.model)
    from longthink.llm.llama_cpp import LlamaCppLLM

    return LlamaCppLLM(s.model, n_threads=s.threads, n_ctx=8192, max_sequences=16)


# -- pools: N_max samples per problem, drawn once and scored once -------------------------------------------------


def correctness_scorer(dataset: str) -> Scorer:
    if dataset == "game24":
        return Verifier(lambda p, c: Verdict(*check_24(c.answer, p.metadata["numbers"])), name="correct")
    return ReferenceMatch(name="correct")


async def draw_pool(
    problem: Problem, llm: CachedLLM, n: int, s: Settings, reward: Scorer, reward_llm: LLM | None, dataset: str
) -> Pool:
    """One batched, seeded call of ``n`` samples (from the cache when it was drawn before), scored for
    correctness and by the reward; a failed generation is recorded on the pool."""
    ctx = SearchContext(llm=llm, seed=problem_seed(s.seed, problem.id), temperature=s.temperature, logprobs=True)
    hits, start = llm.hits, time.perf_counter()
    try:
        [cands] = await ctx.sample(problem, n, strategy="pool")
    except BackendError as exc:  # recorded: the run goes on with the other problems
        return Pool(problem, error=f"generation failed: {exc}")
    wall = time.perf_counter() - start
    cands = await ctx.score(problem, cands, correctness_scorer(dataset))
    reward_before = reward_llm.usage.total_tokens if reward_llm else 0
    cands = await ctx.score(problem, cands, reward)
    reward_tokens = reward_llm.usage.total_tokens - reward_before if reward_llm else 0
    ok = [(c.score("correct") or 0.0) >= 1.0 for c in cands]
    return Pool(problem, cands, ok, reward_tokens, wall, llm.hits > hits)


# -- strategies on a subset of a pool (the same helpers the strategies use) ----------------------------------------
# -- real runs of beam, tree and adaptive ---------------------------------------------------------------------------
def real_configs(quick: bool) -> dict[str, list[tuple[str, Strategy]]]:
    if quick:
        return {
            "beam": [("w1x2", BeamSearch(width=1, expand=2, max_steps=2, step_tokens=48))],
            "tree": [
                ("e2", TreeSearch(expand=2, frontier_batch=1, max_expansions=2, target_finished=1, step_tokens=48))
            ],
            "adaptive": [("c0.8", AdaptiveConsistency(max_samples=4, batch=2, confidence=0.8, min_samples=2))],
        }
    return {
        "beam": [
            ("w2x2", BeamSearch(width=2, expand=2, max_steps=8, step_tokens=160)),
            ("w2x4", BeamSearch(width=2, expand=4, max_steps=8, step_tokens=160)),
        ],
        "tree": [
            ("e2", TreeSearch(expand=2, frontier_batch=2, max_expansions=6, target_finished=2, step_tokens=160)),
            ("e3", TreeSearch(expand=3, frontier_batch=2, max_expansions=8, target_finished=4, step_tokens=160)),
        ],
        "adaptive": [
            ("c0.8", AdaptiveConsistency(max_samples=16, batch=2, confidence=0.8, min_samples=2)),
            ("c0.95", AdaptiveConsistency(max_samples=16, batch=2, confidence=0.95, min_samples=2)),
        ],
    }


async def run_real(
    problems: Sequence[Problem],
    llm: CachedLLM,
    s: Settings,
    dataset: str,
    n_max: int,
    log: Callable[[str], None],
    progress: Callable[[list[dict[str, Any]]], None],
) -> list[dict[str, Any]]:
    """Each config on each problem, with self-certainty as the (process) reward, under a token budget of
    N_max full samples; failures are recorded, and ``progress`` gets the rows after every run."""
    reward, checker, rows = SelfCertainty(), correctness_scorer(dataset), []
    for name, configs in real_configs(s.quick).items():
        for label, strategy in configs:
            for p in problems:
                budget = Budget(tokens=n_max * p.max_tokens, completion_only=True, name=f"{name}/{label}")
                ctx = SearchContext(
                    llm=llm,
                    budget=budget,
                    scorer=reward,
                    process_scorer=reward,
                    temperature=s.temperature,
                    seed=problem_seed(s.seed, f"{p.id}/{name}/{label}"),
                )
                start = time.perf_counter()
                row: dict[str, Any] = {"strategy": name, "config": label, "problem_id": p.id}
                try:
                    res = await strategy.solve(p, ctx)
                except (BackendError, SearchFailed) as exc:
                    rows.append({**row, "error": f"{type(exc).__name__}: {exc}"})
                    log(f"  real {name}/{label} {p.id}: FAILED {exc}")
                    progress(rows)
                    continue
                ok = res.chosen is not None and (await checker.score(p, [res.chosen]))[0].value >= 1.0
                rows.append(
                    {
                        **row,
                        "answer": res.answer,
                        "correct": ok,
                        "tokens": res.spend.completion_tokens,
                        "prompt_tokens": res.spend.prompt_tokens,
                        "samples": res.spend.samples,
                        "requests": res.spend.requests,
                        "nodes": len(res.candidates),
                        "stopped": res.stopped,
                        "wall_s": round(time.perf_counter() - start, 1),
                    }
                )
                log(f"  real {name}/{label} {p.id}: {res.answer!r} correct={ok} tokens={res.spend.completion_tokens}")
                progress(rows)
    return rows


async def judge_probe(pools: Sequence[Pool], base: LLM, s: Settings) -> dict[str, Any] | None:
    pools = [p for p in pools if p.candidates][: s.judge_probe]
    if not pools:
        return None
    judge_llm = SeededLLM(CachedLLM(base, s.cache))
    judge = Judge(judge_llm)
    start = time.perf_counter()
    values, certainty, labels = [], [], []
    for pool in pools:
        scores = await judge.score(pool.problem, pool.candidates)
        values += [sc.value for sc in scores]
        certainty += [c.score("self_certainty") or 0.0 for c in pool.candidates]
        labels += pool.correct
    wall = time.perf_counter() - start
    gen_wall = sum(p.wall_s for p in pools)
    return {
        "problems": len(pools),
        "candidates": len(values),
        "judge_prompt_tokens_per_problem": judge_llm.usage.prompt_tokens / len(pools),
        "judge_completion_tokens_per_problem": judge_llm.usage.completion_tokens / len(pools),
        "judge_wall_s_per_problem": wall / len(pools),
        "generation_wall_s_per_problem": gen_wall / len(pools),
        "from_cache": any(p.cached for p in pools) or wall < 1.0,
        "auroc_judge": auroc(values, labels),
        "auroc_self_certainty": auroc(certainty, labels),
        "correct_fraction": sum(labels) / len(labels),
    }


def assemble(
    dataset: str,
    s: Settings,
    pools: Sequence[Pool],
    analysis: dict[str, Any] | None,
    real_rows: Sequence[dict[str, Any]],
    probe: dict[str, Any] | None,
    partial: bool,
    model: str,
    reward: str,
    n_max: int,
) -> dict[str, Any]:
    ok = [p for p in pools if p.candidates]
    real = summarise_real(real_rows, s.boots, s.seed)
    accuracy: dict[str, Any] = {}
    if analysis:
        accuracy.update(analysis["strategies"])
    for name, configs in real.items():
        accuracy[name] = configs
    headline = (analysis or {}).get("ratio_b1", {})
    gen_pools = [p for p in ok if not p.cached]
    summary = {
        "dataset": dataset,
        "model": model,
        "problems": len(ok),
        "problems_failed": len(pools) - len(ok),
        "n_max": n_max,
        "reward": reward,
        "real_problems": len({r["problem_id"] for r in real_rows}),
        "token_ratio_adaptive_vs_sc16": headline.get("ratio"),
        "token_ratio_ci95": headline.get("ci95"),
        "token_ratio_reason": headline.get("reason") if headline else "no pools yet",
        "token_ratio_batch4": (analysis or {}).get("ratio_b4", {}).get("ratio"),
        f"sc{n_max}_accuracy": headline.get("sc_accuracy"),
        f"sc{n_max}_tokens": headline.get("sc_tokens"),
        "oracle_any_correct": float(np.mean([any(p.correct) for p in ok])) if ok else None,
        "accuracy": accuracy,
        "partial": partial,
    }
    return {
        "summary": summary,
        "anchors": list(ANCHORS),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(s).items()},
        "method": __doc__.split("Method", 1)[1].strip() if __doc__ else "",
        "judge_probe": probe,
        "generation": {
            "tokens_per_s": sum(c.completion_tokens for p in gen_pools for c in p.candidates)
            / max(1e-9, sum(p.wall_s for p in gen_pools))
            if gen_pools
            else None,
            "pools_from_cache": sum(p.cached for p in ok),
        },
        "analysis": analysis,
        "real_runs": list(real_rows),
        "pools": [_pool_json(p) for p in pools],
    }


def _pool_json(p: Pool) -> dict[str, Any]:
    return {
        "problem_id": p.problem.id,
        "reference": p.problem.reference,
        "error": p.error,
        "correct": p.correct,
        "answers": [c.answer for c in p.candidates],
        "tokens": [c.completion_tokens for c in p.candidates],
        "mean_logprob": [c.mean_logprob for c in p.candidates],
        "finish": [c.finish_reason for c in p.candidates],
        "wall_s": round(p.wall_s, 2),
        "cached": p.cached,
    }


# -- the run -------------------------------------------------------------------------------------------------------
async def run(s: Settings) -> dict[str, dict[str, Any]]:
    s.out.mkdir(parents=True, exist_ok=True)
    base = build_llm(s)
    llm = CachedLLM(base, s.cache)
    results: dict[str, dict[str, Any]] = {}
    pools_by: dict[str, list[Pool]] = {}
    probes: dict[str, dict[str, Any] | None] = {}
    analyses: dict[tuple[str, int, bool], dict[str, Any] | None] = {}

    def log(msg: str) -> None:
        print(msg, flush=True)

    def write(dataset: str, pools: list[Pool], real_rows: list[dict[str, Any]], partial: bool, final: bool) -> None:
        n_max = s.game24_n_max if dataset == "game24" else s.n_max
        reward = "rule_check" if dataset == "game24" else s.reward
        ok = [p for p in pools if p.candidates]
        reps, boots = (s.reps, s.boots) if final else (min(s.reps, 20), min(s.boots, 200))
        key = (dataset, len(ok), final)  # the analysis depends only on the pools: computed once per state
        if key not in analyses:
            analyses[key] = analyse(ok, n_max, reward, reps, boots, s.seed) if ok else None
        analysis = analyses[key]
        result = assemble(
            dataset, s, pools, analysis, real_rows, probes.get(dataset), partial, base.model, reward, n_max
        )
        path = s.out / f"scaling_{dataset}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)
        results[dataset] = result
        if final and s.plot and analysis:
            plot(result, s.out / f"scaling_{dataset}.png")

    try:
        for dataset in s.datasets:
            if dataset == "game24":
                problems, n = (
                    load_game24(max_tokens=s.game24_max_tokens)[: s.problems if s.quick else None],
                    s.game24_n_max,
                )
                reward: Scorer = Verifier(
                    lambda p, c: Verdict(*check_24(c.answer, p.metadata["numbers"])), name="rule_check"
                )
                reward_llm: LLM | None = None
            else:
                problems, n = load_gsm8k(s.problems, seed=s.seed, max_tokens=s.max_tokens), s.n_max
                reward_llm = SeededLLM(CachedLLM(base, s.cache)) if s.reward == "judge" else None
                reward = Judge(reward_llm) if reward_llm else SelfCertainty()
            log(f"== {dataset}: {len(problems)} problems x {n} samples, model {base.model}")
            pools: list[Pool] = []
            for i, p in enumerate(problems):
                pool = await draw_pool(p, llm, n, s, reward, reward_llm, dataset)
                pools.append(pool)
                fresh = [q.wall_s for q in pools if not q.cached and q.candidates]
                toks = sum(c.completion_tokens for c in pool.candidates)
                eta = (
                    (sum(fresh) / len(fresh) if fresh else 0.0) * (len(problems) - i - 1) / 60
                )  # cached pools are free
                status = f"ERROR {pool.error}" if pool.error else f"{sum(pool.correct)}/{len(pool.candidates)} correct"
                cache = " (cache)" if pool.cached else ""
                log(f"[{i + 1}/{len(problems)}] {p.id}: {status} {toks} tok {pool.wall_s:.0f}s{cache} ETA {eta:.0f}m")
                write(dataset, pools, [], partial=True, final=False)
            pools_by[dataset] = pools
            if dataset == "gsm8k" and s.judge_probe:
                probes[dataset] = await judge_probe(pools, base, s)
                log(f"judge probe: {probes[dataset]}")
            write(dataset, pools, [], partial=s.real_problems > 0 and dataset == "gsm8k", final=True)
            log(table(results[dataset]))
        if s.real_problems and "gsm8k" in pools_by:
            subset = [p.problem for p in pools_by["gsm8k"] if p.candidates][: s.real_problems]
            log(f"== gsm8k real runs of beam, tree, adaptive on {len(subset)} problems")
            gsm8k_pools = pools_by["gsm8k"]
            rows = await run_real(
                subset,
                llm,
                s,
                "gsm8k",
                s.n_max,
                log,
                lambda r: write("gsm8k", gsm8k_pools, r, partial=True, final=True),
            )
            write("gsm8k", pools_by["gsm8k"], rows, partial=False, final=True)
            log(table(results["gsm8k"]))
    finally:
        await llm.aclose()
    for dataset, result in results.items():
        sm = result["summary"]
        log(
            f"{dataset}: token_ratio_adaptive_vs_sc16 = {sm['token_ratio_adaptive_vs_sc16']} "
            f"(CI {sm['token_ratio_ci95']}; {sm['token_ratio_reason'] or 'interpolated on the batch-1 curve'})"
        )
    log("anchors:\n  " + "\n  ".join(ANCHORS))
    return results


def parse(argv: Sequence[str] | None = None) -> Settings:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--dataset", choices=("gsm8k", "game24", "all"), default="gsm8k")
    ap.add_argument("--quick", action="store_true", help="SmolLM2, 4 problems, N_max=4, tiny limits; JSON to a tmp dir")
    ap.add_argument("--model", default=None)
    ap.add_argument("--endpoint", default=None, help="an OpenAI-compatible base URL instead of the embedded engine")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--problems", type=int, default=None)
    ap.add_argument("--n-max", type=int, default=None)
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--game24-n-max", type=int, default=8)
    ap.add_argument("--real-problems", type=int, default=None)
    ap.add_argument("--judge-probe", type=int, default=None, help="judge the pools of this many problems (cost)")
    ap.add_argument("--reward", choices=("self_certainty", "judge"), default="self_certainty")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--no-plot", action="store_true")
    a = ap.parse_args(argv)
    datasets = ("gsm8k", "game24") if a.dataset == "all" else (a.dataset,)
    if a.quick:
        s = Settings(
            datasets=datasets,
            model="smollm2-135m-instruct",
            problems=4,
            n_max=4,
            max_tokens=96,
            game24_n_max=4,
            game24_max_tokens=48,
            real_problems=2,
            judge_probe=1,
            reps=20,
            boots=200,
            out=Path(tempfile.mkdtemp(prefix="scaling-quick-")),
            plot=False,
            quick=True,
        )
    else:
        s = Settings(datasets=datasets, game24_n_max=a.game24_n_max)
    overrides = {
        "model": a.model,
        "problems": a.problems,
        "n_max": a.n_max,
        "max_tokens": a.max_tokens,
        "real_problems": a.real_problems,
        "judge_probe": a.judge_probe,
        "out": a.out,
    }
    s = replace(
        s,
        **{k: v for k, v in overrides.items() if v is not None},
        endpoint=a.endpoint,
        threads=a.threads,
        reward=a.reward,
        seed=a.seed,
        cache=a.cache,
        plot=s.plot and not a.no_plot,
    )
    for n in (s.n_max, s.game24_n_max):
        if n < 1 or n > 64 or n & (n - 1):
            ap.error(f"N_max must be a power of two from 1 to 64 (the budgets are 1, 2, 4, ...), got {n}")
    return s


def main(argv: Sequence[str] | None = None) -> int:
    s = parse(argv)
    results = asyncio.run(run(s))
    print(f"results in {s.out}: {', '.join(f'scaling_{d}.json' for d in results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
