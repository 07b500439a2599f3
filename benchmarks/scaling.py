"""Test-time scaling curves: accuracy vs generated tokens for votes and reward-guided selection, in two answer modes
(chain of thought and program mode), on GSM8K and Game of 24.

    .venv/bin/python benchmarks/scaling.py --quick                      # CI: SmolLM2, 4 problems, JSON to a tmp dir
    .venv/bin/python benchmarks/scaling.py --problems 40 --judge-probe 4 --real-problems 0   # the issue-8 run
    .venv/bin/python benchmarks/scaling.py --endpoint http://host:8000/v1 --model NAME ...

Method (as the literature does it, sized for a CPU): for every answer mode, N_max samples per problem are drawn ONCE
(one batched, seeded call per problem, through the on-disk generation cache, so a rerun or a resumed run costs
nothing), scored once, and every budget 1, 2, 4, ... N_max is derived by subsampling without replacement. Program
mode runs every sampled program in the sandbox; its printed value is the answer. The ``mixed`` mode votes N_max/2
samples of each mode together. Rewards: self-certainty, agreement (execution agreement in program mode), agreement
with the other mode (mixed), the learned verifier of ``benchmarks/verifier_data.py`` (trained on reasoning-gym
problems, never on GSM8K) and a separate judge model on the first candidates of the first problems; a reward that
reads siblings sees only the N a run would have. Accuracy is averaged over many random subsets; 95% intervals come
from a bootstrap that resamples problems *and* subsets (one paired set of resamples for every strategy and mode).
Adaptive sampling is simulated along random orders: by vote (``longthink.search.adaptive.stop_point``) and gated by
a reward threshold (``reward_stop``); its token ratio is against chain-of-thought SC@N_max. The larger model's
single-sample accuracy on the same problems gives the FLOP comparison (parameters x generated tokens). The first
run's GSM8K and Game-of-24 chain-of-thought pools (``REUSED_POOLS``, answers without texts) are kept and extended.
Tokens are the policy model's generated tokens per problem; judge tokens are reported separately. Results:
``benchmarks/results/scaling_<dataset>.json`` (top-level ``summary``), a PNG of the vote curves and one of every
mode and reward.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import check_24, load_game24, load_gsm8k, problem_seed
from provenance import provenance, relative
from scaling_rewards import (
    PARAMS,
    Reward,
    agreement,
    aligned,
    analyse_rewards,
    cross_mode_agreement,
    flops_matched,
    headline,
    plot_rewards,
    pool_values,
    reward_table,
    select,
    single_sample,
)
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
from longthink.search.base import Strategy, leader, tally
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "cache"
ANCHORS = (
    "self-consistency: +17.9 points on GSM8K over chain of thought (Wang et al. 2022, PaLM 540B)",
    "Tree of Thoughts: Game of 24 from 4% (CoT) to 74% (ToT, b=5) with GPT-4 (Yao et al. 2023)",
    "compute-optimal test-time scaling: >4x more efficient than best-of-N (Snell et al. 2024)",
)


REUSED_POOLS = "8316a65:benchmarks/results/scaling_gsm8k.json"
"""The 24 GSM8K chain-of-thought pools of the first scaling run (same model, prompt, seeds and settings, drawn by the
benchmark at that commit): kept, as the issue asks, and extended with new pools for problems 25-40. They hold the
answers, tokens, finish reasons and mean logprobs (all that the vote, self-certainty, agreement and the learned
verifier's features read), not the texts."""


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
    judge_probe: int = 2  # problems whose pools the judge model scores (its cost is the limit)
    judge_candidates: int = 8  # the first K candidates of each judged pool
    judge_model: str | None = "qwen2.5-coder-1.5b-instruct"  # None: the policy model judges
    reward: str = "self_certainty"
    modes: tuple[str, ...] = ("cot", "program")
    game24_modes: tuple[str, ...] = ("cot", "program")
    game24_problems: int | None = None  # puzzles of ranks 900-999 to use (None: all 100)
    game24_program_max_tokens: int = 320  # a program that searches the expressions needs more than 128 tokens
    verifier: Path | None = RESULTS / "verifier.json"  # the learned verifier (from benchmarks/verifier_data.py)
    large_model: str | None = "qwen2.5-coder-1.5b-instruct"  # single-sample baseline of a larger model
    large_n: int = 2
    large_modes: tuple[str, ...] = ("program",)
    reuse: str | None = REUSED_POOLS  # git "commit:path" of an earlier results file whose GSM8K cot pools are kept
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


def rule_checker() -> Scorer:
    """Game of 24's rule checker as a reward (1 for a valid expression)."""
    return Verifier(lambda p, c: Verdict(*check_24(c.answer, p.metadata["numbers"])), name="rule_check")


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


async def judge_scores(pools: Sequence[Pool], judge_llm: LLM, s: Settings) -> dict[str, Any] | None:
    """The judge model's P(yes) on the first ``judge_candidates`` candidates of the first ``judge_probe`` pools
    (stored on the candidates as score ``judge``), with its cost."""
    todo = [p for p in pools if p.candidates][: s.judge_probe]
    if not todo:
        return None
    judge = Judge(judge_llm, name="judge")
    before = judge_llm.usage.prompt_tokens, judge_llm.usage.completion_tokens
    start = time.perf_counter()
    for pool in todo:
        k = min(s.judge_candidates, len(pool.candidates))
        scores = await judge.score(pool.problem, pool.candidates[:k])
        pool.candidates[:k] = [c.with_scores(sc) for c, sc in zip(pool.candidates[:k], scores, strict=True)]
    wall = time.perf_counter() - start
    return {
        "model": judge_llm.model,
        "problems": len(todo),
        "candidates_per_problem": min(s.judge_candidates, min(len(p.candidates) for p in todo)),
        "judge_prompt_tokens_per_problem": (judge_llm.usage.prompt_tokens - before[0]) / len(todo),
        "judge_completion_tokens_per_problem": (judge_llm.usage.completion_tokens - before[1]) / len(todo),
        "judge_wall_s_per_problem": wall / len(todo),
        "from_cache": wall < 1.0,  # then the wall time says nothing: see the run that filled the cache
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
        # adaptive sampling by vote against self-consistency at N_max (the key names the N_max measured)
        f"token_ratio_adaptive_vote_vs_sc{n_max}": headline.get("ratio"),
        "token_ratio_ci95": headline.get("ci95"),
        "token_ratio_reason": headline.get("reason") if headline else "no pools yet",
        "token_ratio_batch4": (analysis or {}).get("ratio_b4", {}).get("ratio"),
        f"sc{n_max}_accuracy": headline.get("sc_accuracy"),
        f"sc{n_max}_tokens": headline.get("sc_tokens"),
        "oracle_any_correct": float(np.mean([any(p.correct) for p in ok])) if ok else None,
        "accuracy": accuracy,
        "partial": partial,
    }
    block = provenance(s, reused_pools=reuse_spec(s, dataset))
    return {
        "summary": summary,
        "provenance": block,
        "anchors": list(ANCHORS),
        "settings": block["settings"],
        "method": __doc__.split("Method", 1)[1].strip() if __doc__ else "",
        "judge": probe,
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
        "errors": [c.parse_error for c in p.candidates],
        "scores": {
            name: [c.score(name) for c in p.candidates]
            for name in sorted({sc.scorer for c in p.candidates for sc in c.scores})
        },
        "wall_s": round(p.wall_s, 2),
        "cached": p.cached,
    }


# -- the run -------------------------------------------------------------------------------------------------------
def load_problems(dataset: str, mode: str, s: Settings) -> list[Problem]:
    text_mode = "text" if mode == "cot" else "program"
    if dataset == "game24":
        tokens = s.game24_max_tokens if mode == "cot" else s.game24_program_max_tokens
        problems = load_game24(max_tokens=tokens, mode=text_mode)
        limit = s.problems if s.quick else s.game24_problems
        return problems[:limit] if limit else problems
    return load_gsm8k(s.problems, seed=s.seed, max_tokens=s.max_tokens, mode=text_mode)


def git_show(spec: str) -> str:
    """A file as committed (``commit:path``), read with git."""
    import subprocess

    try:
        return subprocess.run(["git", "show", spec], capture_output=True, text=True, check=True, cwd=HERE).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"cannot read {spec} from git: {exc}") from exc


def reuse_spec(s: Settings, dataset: str) -> str | None:
    """The git ``commit:path`` of the earlier results file whose chain-of-thought pools a run on ``dataset`` keeps."""
    if s.reuse is None:
        return None
    return s.reuse.replace("scaling_gsm8k.json", f"scaling_{dataset}.json")


async def reused_pools(s: Settings, dataset: str, mode: str, n: int) -> dict[str, Pool]:
    """The earlier run's pools (by problem id) that this run keeps: chain-of-thought only, read from git."""
    spec = reuse_spec(s, dataset)
    if spec is None or mode != "cot":
        return {}
    old = json.loads(git_show(spec))
    tokens = s.max_tokens if dataset == "gsm8k" else s.game24_max_tokens
    key = "max_tokens" if dataset == "gsm8k" else "game24_max_tokens"
    if old["settings"][key] != tokens or old["settings"]["temperature"] != s.temperature:
        raise SystemExit(f"the reused pools {spec} were drawn with other settings")
    problems = {p.id: p for p in load_problems(dataset, mode, s)}
    out: dict[str, Pool] = {}
    for row in old["pools"]:
        problem = problems.get(row["problem_id"])
        if problem is None or row.get("error") or len(row["answers"]) != n:
            continue
        cands = []
        for k, (answer, tokens, lp, finish) in enumerate(
            zip(row["answers"], row["tokens"], row["mean_logprob"], row["finish"], strict=True)
        ):
            c = Candidate(f"{problem.id}/reused.{k}", problem.id, k, "", answer,
                          None if answer is not None else "no answer (reused pool)", finish, 0, tokens, 0.0,
                          old["summary"]["model"], "", mean_logprob=lp)  # fmt: skip
            cands.append(c)
        scores = await SelfCertainty().score(problem, cands)
        cands = [c.with_scores(sc) for c, sc in zip(cands, scores, strict=True)]
        if dataset == "game24":
            checked = await rule_checker().score(problem, cands)
            cands = [c.with_scores(sc) for c, sc in zip(cands, checked, strict=True)]
        out[problem.id] = Pool(problem, cands, list(row["correct"]), cached=True)
    return out


def with_mixed(by_mode: dict[str, list[Pool]], n_max: int) -> dict[str, list[Pool]]:
    """Adds the ``mixed`` mode: half chain-of-thought, half program samples of the same problem (the first
    N_max/2 of each pool, interleaved), voted together; two ways of solving make errors less alike."""
    if not {"cot", "program"} <= set(by_mode):
        return by_mode
    half = n_max // 2
    mixed = []
    for cot, prog in zip(by_mode["cot"], by_mode["program"], strict=False):
        if len(cot.candidates) < half or len(prog.candidates) < half:
            mixed.append(Pool(cot.problem, error="a mode has no full pool"))
            continue
        cands = [c for pair in zip(cot.candidates[:half], prog.candidates[:half], strict=True) for c in pair]
        ok = [y for pair in zip(cot.correct[:half], prog.correct[:half], strict=True) for y in pair]
        mixed.append(Pool(cot.problem, cands, ok, cached=cot.cached and prog.cached))
    return {**by_mode, "mixed": mixed}


def rewards_for(s: Settings, mode: str, verifier: Path | None) -> list[Reward]:
    """The rewards compared on every pool: self-certainty, execution/answer agreement and, when trained, the
    learned verifier (features from the N siblings a run would have, see ``scaling_rewards``)."""
    out = [Reward("self_certainty"), Reward("agreement", agreement)]
    if mode == "mixed":
        out.append(Reward("cross_mode_agreement", cross_mode_agreement))
    if verifier is not None:
        from longthink.rewards.learned import VerifierArtifact, candidate_features, sigmoid

        art = VerifierArtifact.load(verifier)
        if art.embedder_model is None:
            program = mode == "program"

            def verify(problem: Problem, cands: Sequence[Candidate]) -> Any:
                x = candidate_features(cands, program_mode=program, question=problem.question)
                return sigmoid(art.logits(x))

            out.append(Reward("learned_verifier", verify))
    return out


async def run(s: Settings) -> dict[str, dict[str, Any]]:
    s.out.mkdir(parents=True, exist_ok=True)
    base = build_llm(s)
    llm = CachedLLM(base, s.cache)
    second: dict[str, CachedLLM] = {}  # the judge / larger model, loaded once when first needed
    results: dict[str, dict[str, Any]] = {}
    cot_pools: dict[str, list[Pool]] = {}
    verifier = s.verifier if s.verifier is not None and s.verifier.is_file() else None

    def log(msg: str) -> None:
        print(msg, flush=True)

    def other(model: str) -> CachedLLM:
        if model == base.model:
            return llm
        if model not in second:
            second[model] = CachedLLM(build_llm(replace(s, model=model, endpoint=None)), s.cache)
        return second[model]

    def write(
        dataset: str, by_mode: dict[str, list[Pool]], real_rows: list[dict[str, Any]], extra: dict[str, Any],
        partial: bool, final: bool,
    ) -> None:  # fmt: skip
        n_max = s.game24_n_max if dataset == "game24" else s.n_max
        reward = "rule_check" if dataset == "game24" else s.reward
        pools = by_mode.get("cot") or next(iter(by_mode.values()), [])
        ok = [p for p in pools if p.candidates]
        reps, boots = (s.reps, s.boots) if final else (min(s.reps, 20), min(s.boots, 200))
        analysis = analyse(ok, n_max, reward, reps, boots, s.seed) if ok and final else None
        result = assemble(
            dataset, s, pools, analysis, real_rows, extra.get("judge"), partial, base.model, reward, n_max
        )
        if final:
            by_mode = with_mixed(by_mode, n_max)
            rewards = {m: rewards_for(s, m, verifier) for m in by_mode}
            if dataset == "game24":  # the rule checker is the reward: best-of-N = any valid expression
                rewards = {m: [*r, Reward("rule_check")] for m, r in rewards.items()}
            modes = analyse_rewards(by_mode, rewards, n_max, reps, boots, s.seed)
            result["modes"] = modes
            result["summary"].update(headline(modes, n_max))
            result["summary"]["verifier_auroc"] = _pooled_auroc(by_mode, rewards, "learned_verifier", n_max)
            result["summary"]["verifier"] = relative(verifier) if verifier else None
            for mode in by_mode:
                label = "program_mode" if mode == "program" else mode
                result["summary"][f"{label}_sc8_accuracy"] = (result["summary"]["sc8_accuracy_by_mode"] or {}).get(mode)
            result["judge_quality"] = judge_quality(by_mode, rewards, s)
            large = extra.get("large")
            result["summary"]["small_search_vs_large_single"] = None
            if large:
                result["large_model"] = large
                result["summary"].update(compare_large(modes, large, base.model))
            for key in ("program_mode_sc8_accuracy", "cot_sc8_accuracy", f"token_ratio_adaptive_vs_sc{n_max}"):
                result["summary"].setdefault(key, None)
        result["summary"]["modes"] = list(by_mode)
        result["pools_by_mode"] = {m: [_pool_json(p) for p in ps] for m, ps in by_mode.items() if m != "cot"}
        path = s.out / f"scaling_{dataset}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)
        results[dataset] = result
        if final and s.plot and analysis:
            plot(result, s.out / f"scaling_{dataset}.png")
            plot_rewards(result, s.out / f"scaling_{dataset}_rewards.png")

    try:
        for dataset in s.datasets:
            n = s.game24_n_max if dataset == "game24" else s.n_max
            reward: Scorer = correctness_scorer(dataset) if dataset == "game24" else SelfCertainty()
            if dataset == "game24":
                reward = rule_checker()
            by_mode: dict[str, list[Pool]] = {}
            extra: dict[str, Any] = {}
            for mode in s.game24_modes if dataset == "game24" else s.modes:
                problems = load_problems(dataset, mode, s)
                log(f"== {dataset} ({mode}): {len(problems)} problems x {n} samples, model {base.model}")
                pools: list[Pool] = []
                by_mode[mode] = pools
                kept = await reused_pools(s, dataset, mode, n)
                for i, p in enumerate(problems):
                    pool = kept.get(p.id) or await draw_pool(p, llm, n, s, reward, None, dataset)
                    pools.append(pool)
                    fresh = [q.wall_s for q in pools if not q.cached and q.candidates]
                    toks = sum(c.completion_tokens for c in pool.candidates)
                    eta = (sum(fresh) / len(fresh) if fresh else 0.0) * (len(problems) - i - 1) / 60
                    ok = f"{sum(pool.correct)}/{len(pool.candidates)} ok"
                    status = f"ERROR {pool.error}" if pool.error else ok
                    took = f"{toks} tok {pool.wall_s:.0f}s" + (" (cache)" if pool.cached else "")
                    log(f"[{i + 1}/{len(problems)}] {p.id}: {status} {took} ETA {eta:.0f}m")
                    write(dataset, by_mode, [], extra, partial=True, final=False)
            if dataset == "gsm8k":
                cot_pools[dataset] = by_mode.get("cot", [])
                if s.judge_probe:
                    judge_pools = by_mode.get("program") or by_mode.get("cot") or []
                    extra["judge"] = await judge_scores(judge_pools, SeededLLM(other(s.judge_model or base.model)), s)
                    log(f"judge: {extra['judge']}")
                if s.large_model:
                    extra["large"] = await large_single(s, other(s.large_model), log)
            write(dataset, by_mode, [], extra, partial=s.real_problems > 0 and dataset == "gsm8k", final=True)
            log(table(results[dataset]))
            log(reward_table(results[dataset]))
        if s.real_problems and cot_pools.get("gsm8k"):
            subset = [p.problem for p in cot_pools["gsm8k"] if p.candidates][: s.real_problems]
            log(f"== gsm8k real runs of beam, tree, adaptive on {len(subset)} problems")
            rows = await run_real(subset, llm, s, "gsm8k", s.n_max, log, lambda r: None)
            prev = results["gsm8k"]
            prev["real_runs"] = rows
            prev["summary"]["accuracy"].update(summarise_real(rows, s.boots, s.seed))
            prev["summary"]["real_problems"] = len({r["problem_id"] for r in rows})
            prev["summary"]["partial"] = False
            (s.out / "scaling_gsm8k.json").write_text(json.dumps(prev, indent=1))
    finally:
        await llm.aclose()
        for extra_llm in second.values():
            await extra_llm.aclose()
    for dataset, result in results.items():
        sm = result["summary"]
        n_max = sm["n_max"]
        bon, sc = sm.get(f"bon{n_max}_accuracy_best_reward"), sm.get(f"sc{n_max}_accuracy")
        log(
            f"{dataset}: best reward {sm.get('best_reward')} ({sm.get('best_reward_mode')}): BoN@{n_max} {bon} vs "
            f"SC@{n_max} {sc}; token_ratio_adaptive_vs_sc{n_max} = {sm.get(f'token_ratio_adaptive_vs_sc{n_max}')} "
            f"(CI {sm.get('token_ratio_ci95')})"
        )
    log("anchors:\n  " + "\n  ".join(ANCHORS))
    return results


async def large_single(s: Settings, large: CachedLLM, log: Callable[[str], None]) -> dict[str, Any]:
    """The larger model's single-sample accuracy on the same GSM8K problems (``large_n`` samples each)."""
    out: dict[str, Any] = {"model": large.model, "modes": {}}
    for mode in s.large_modes:
        problems = load_problems("gsm8k", mode, s)
        pools = []
        for i, p in enumerate(problems):
            pool = await draw_pool(p, large, s.large_n, s, SelfCertainty(), None, "gsm8k")
            pools.append(pool)
            log(f"  large {large.model} {mode} [{i + 1}/{len(problems)}] {p.id}: {sum(pool.correct)}/{s.large_n}")
        out["modes"][mode] = {**single_sample(pools, s.boots, s.seed), "pools": [_pool_json(p) for p in pools]}
    return out


def compare_large(modes: dict[str, Any], large: dict[str, Any], small_model: str) -> dict[str, Any]:
    """small_search_vs_large_single: the small model's best setting within the large model's single-sample FLOPs
    (params x generated tokens) minus the large model's best single-sample accuracy."""
    best_mode, best = max(
        ((m, r) for m, r in large["modes"].items() if r.get("accuracy") is not None),
        key=lambda mr: mr[1]["accuracy"],
        default=(None, None),
    )
    if best is None or best_mode is None:
        return {"small_search_vs_large_single": None}
    small_p, large_p = PARAMS.get(small_model), PARAMS.get(large["model"])
    if small_p is None or large_p is None:
        return {"small_search_vs_large_single": None, "small_search_reason": "unknown parameter counts"}
    curves: dict[str, dict[str, Any]] = {}
    for mode, res in modes.get("modes", {}).items():
        for name, rows in res["curves"].items():
            curves[f"{mode}:{name}"] = rows
        for name, rows in res["adaptive"].items():
            curves[f"{mode}:adaptive:{name}"] = rows
    matched = flops_matched(curves, best["tokens"], small_p, large_p)
    return {
        "large_model": large["model"],
        "large_single_accuracy": best["accuracy"],
        "large_single_ci95": best["ci95"],
        "large_single_mode": best_mode,
        "large_single_tokens": best["tokens"],
        "small_search_setting": matched["setting"] if matched else None,
        "small_search_accuracy": matched["accuracy"] if matched else None,
        "small_search_tokens": matched["tokens"] if matched else None,
        "small_search_vs_large_single": matched["accuracy"] - best["accuracy"] if matched else None,
    }


def _pooled_auroc(by_mode: dict[str, list[Pool]], rewards: dict[str, list[Reward]], name: str, n_max: int) -> Any:
    """A reward's AUROC on every evaluation candidate of every mode (whole pools as siblings)."""
    values: list[float] = []
    labels: list[bool] = []
    for mode, pools in aligned(by_mode, n_max).items():
        reward = next((r for r in rewards.get(mode, []) if r.name == name), None)
        if reward is None:
            return None
        v, y = pool_values(pools, replace(reward, memo={}))
        values += v
        labels += y
    return auroc(values, labels) if values else None


def judge_quality(by_mode: dict[str, list[Pool]], rewards: dict[str, list[Reward]], s: Settings) -> dict[str, Any]:
    """On the judged candidates (the first K of the first pools): every reward's AUROC with the same K siblings,
    and best-of-K / weighted-of-K accuracy by each, next to the vote of the same K."""
    out: dict[str, Any] = {}
    for mode, pools in by_mode.items():
        judged = [p for p in pools if p.candidates and p.candidates[0].score("judge") is not None]
        if not judged:
            continue
        k = min(sum(c.score("judge") is not None for c in p.candidates) for p in judged)
        subs = [Pool(p.problem, p.candidates[:k], p.correct[:k]) for p in judged]
        labels = [y for p in subs for y in p.correct]
        row: dict[str, Any] = {"problems": len(subs), "candidates": k, "auroc": {}, f"accuracy_at_{k}": {}}
        right = [p.correct_answers for p in subs]
        for reward in [Reward("judge"), *[replace(r, memo={}) for r in rewards.get(mode, [])]]:
            values = [v for i, p in enumerate(subs) for v in reward.values(i, p, list(range(k)))]
            row["auroc"][reward.name] = auroc(values, labels)
            for rule in ("best", "weighted"):
                hits = [
                    select(rule, p.candidates, reward.values(i, p, list(range(k))), reward.name) in right[i]
                    for i, p in enumerate(subs)
                ]
                row[f"accuracy_at_{k}"][f"{rule}:{reward.name}"] = float(np.mean(hits))
        votes = [leader(tally(p.candidates), p.candidates) in right[i] for i, p in enumerate(subs)]
        row[f"accuracy_at_{k}"]["self_consistency"] = float(np.mean(votes))
        out[mode] = row
    return out


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
    ap.add_argument("--judge-candidates", type=int, default=None, help="judge the first K candidates of each")
    ap.add_argument("--judge-model", default=None, help="the judge model ('policy': the policy model judges)")
    ap.add_argument("--modes", default=None, help="answer modes on GSM8K, comma-separated: cot,program")
    ap.add_argument("--game24-modes", default=None, help="answer modes on Game of 24: cot,program")
    ap.add_argument("--game24-problems", type=int, default=None, help="puzzles of ranks 900-999 (default all)")
    ap.add_argument("--verifier", type=Path, default=None, help="learned verifier artifact (default results/)")
    ap.add_argument("--large-model", default=None, help="single-sample baseline model ('none' to skip)")
    ap.add_argument("--large-n", type=int, default=None, help="samples per problem of the large model")
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
            judge_candidates=2,
            judge_model=None,
            large_model=None,
            verifier=None,
            reps=20,
            boots=200,
            out=Path(tempfile.mkdtemp(prefix="scaling-quick-")),
            plot=False,
            quick=True,
            reuse=None,
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
        "judge_candidates": a.judge_candidates,
        "game24_problems": a.game24_problems,
        "verifier": a.verifier,
        "large_n": a.large_n,
        "modes": tuple(a.modes.split(",")) if a.modes else None,
        "game24_modes": tuple(a.game24_modes.split(",")) if a.game24_modes else None,
        "out": a.out,
    }
    if a.judge_model:
        overrides["judge_model"] = None if a.judge_model == "policy" else a.judge_model
    if a.large_model:
        overrides["large_model"] = None if a.large_model == "none" else a.large_model
    s = replace(
        s,
        **{k: v for k, v in overrides.items() if v is not None or k in ("judge_model", "large_model")},
        endpoint=a.endpoint,
        threads=a.threads,
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
    out = s.out.resolve()
    shown = relative(out) if out.is_relative_to(HERE.parent) else out  # no machine path in the log
    print(f"results in {shown}: {', '.join(f'scaling_{d}.json' for d in results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
