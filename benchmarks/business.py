"""Business-plan benchmark: WritingBench's English Finance & Business queries, single pass vs longthink.

For each query (5 rubric criteria each, from ``inspect_evals/writingbench/benchmark_all.jsonl`` of the
``inspect-evals`` package, installed with ``pip install --no-deps inspect-evals==0.26.0``: only its data file is
read, none of its code is imported):

(a) single pass: one sample of the whole document from the same model;
(b) longthink: the ``business_plan`` pack through ``Agent.solve`` (plan, best-of-N sections under a rubric
    judge, options explored, financial model, number-consistency verifier);

both scored by the SAME judge — the embedded model, or the separate ``--judge-model`` (e.g. the 1.5B, which then
also judges longthink's sections) — one prompt per criterion with the criterion's five bands as a 1..5 scale, the
expected rating read from the verdict token's logprobs (normalised to [0, 1]); ``rubric_diff_ci95`` is a paired
bootstrap interval of the per-query difference. Limits: a 0.5B judge is a weak, length- and format-sensitive
reader; documents are cut to the same number of characters before judging; without ``--judge-model`` the judge is
also the model that generated both documents.
(c) the share of longthink documents whose cited figures all agree with their table (single-pass documents have
no table: we report how many figures they cite and whether they contain a Markdown table at all).
(d) the summary also carries the growth-request part, measured by ``benchmarks/business_goals.py`` in its own run
(``goal_reached_share``, ``honest_share``, ``figures_agree_share`` and the commit they were measured at).

Queries: English Finance & Business rows whose sub-domain is plan-like (Product Proposal, Investment Analysis,
Market Analysis, Market Research, Pitch Deck, Risk Management, Strategic Planning) and whose query is at most
2,000 characters, by index — the first ten. Generations are cached under ``benchmarks/cache/business`` by
model, prompt, parameters and seed, so a rerun resumes.

    python benchmarks/business.py            # 10 queries, the 0.5B judging
    python benchmarks/business.py --judge-model qwen2.5-coder-1.5b-instruct --threads 2   # the 1.5B judge: ~2 h
    python benchmarks/business.py --quick    # 1 query, small N
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import jsonable, provenance
from scaling import SeededLLM
from stats import mean_ci

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.budget import Budget
from longthink.domains.business_plan.claims import extract_numbers
from longthink.domains.business_plan.pipeline import BusinessPlanPipeline
from longthink.domains.registry import DomainRegistry, get
from longthink.llm.base import LLM
from longthink.llm.cache import CachedLLM
from longthink.llm.types import Message
from longthink.rewards.judge import Judge
from longthink.search.context import SearchContext
from longthink.search.types import Problem
from longthink.store import MemoryStore

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "business.json"
CACHE = HERE / "cache" / "business"
DATA = "writingbench/benchmark_all.jsonl"
PLAN_LIKE = (
    "Product Proposal",
    "Investment Analysis",
    "Market Analysis",
    "Market Research",
    "Pitch Deck",
    "Risk Management",
    "Strategic Planning",
)
SCALE_NOTE = "rubric values are (E[rating] - 1) / 4 for a 1..5 rating read from logprobs, averaged over 5 criteria"
JUDGE_TEMPLATE = (
    "Evaluate a response to a writing request against one criterion.\n\nRequest:\n{question}\n\n"
    "Response:\n{solution}\n\n{rubric}{instruction}"
)


@dataclass(frozen=True)
class Settings:
    queries: int = 10
    model: str = "qwen2.5-coder-0.5b-instruct"
    threads: int = 1
    n: int = 2
    options_k: int = 3
    section_tokens: int = 160
    single_tokens: int = 700
    judge_chars: int = 8000  # both documents whole (longthink's run ~7,000 characters); fits the 8k context
    query_chars: int = 1000
    seed: int = 0
    quick: bool = False
    out: Path = RESULTS
    cache: Path = CACHE
    wheel: Path | None = None
    finalize: str | None = None
    indices: tuple[int, ...] = ()  # only these of the selected queries (a check of one query; empty = all)
    judge_model: str | None = None  # a separate, stronger judge (e.g. qwen2.5-coder-1.5b-instruct): None = the policy


def load_queries(wheel: Path | None = None) -> list[dict[str, Any]]:
    """Every WritingBench row: from the installed ``inspect_evals`` package's data file (its code is not
    imported), or from an ``inspect-evals`` wheel."""
    raw: str
    if wheel is not None:
        with zipfile.ZipFile(wheel) as z:
            raw = z.read(f"inspect_evals/{DATA}").decode("utf-8")
    else:
        spec = importlib.util.find_spec("inspect_evals")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("WritingBench data not found: pip install --no-deps inspect-evals==0.26.0 (or --wheel)")
        raw = (Path(next(iter(spec.submodule_search_locations))) / DATA).read_text(encoding="utf-8")
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def is_english(text: str) -> bool:
    return sum(ord(ch) < 128 for ch in text) / max(1, len(text)) > 0.95


def select(rows: Sequence[dict[str, Any]], k: int, indices: Sequence[int] = ()) -> list[dict[str, Any]]:
    """The benchmark's queries (see the module docstring), by index; with ``indices``, only those of them."""
    chosen = [
        r
        for r in rows
        if r["domain1"] == "Finance & Business"
        and r["domain2"] in PLAN_LIKE
        and is_english(r["query"])
        and len(r["query"]) <= 2000
    ]
    first = sorted(chosen, key=lambda r: int(r["index"]))[:k]
    if indices:
        unknown = sorted(set(indices) - {int(r["index"]) for r in first})
        if unknown:
            raise ValueError(f"queries {unknown} are not among the benchmark's first {k}")
        first = [r for r in first if int(r["index"]) in indices]
    return first


def criterion_rubric(c: dict[str, Any]) -> str:
    """One WritingBench criterion as a 1..5 rubric (its five bands 1-2, 3-4, ..., 9-10)."""
    bands = [f"{i}: {c[key]}" for i, key in enumerate(("1-2", "3-4", "5-6", "7-8", "9-10"), 1) if key in c]
    return f"Criterion: {c['name']}. {c['criteria_description']}\n" + "\n".join(bands)


async def judge_documents(
    llm: LLM, query: str, docs: Sequence[str], criteria: Sequence[dict[str, Any]], s: Settings
) -> list[list[float]]:
    """Scores in [0, 1] of every document (rows) under every criterion (columns), one batched call per criterion."""
    problem = Problem.from_text("judge", query[: s.query_chars])
    cut = [d[: s.judge_chars] for d in docs]
    scores = [[0.0] * len(criteria) for _ in docs]
    for j, c in enumerate(criteria):
        judge = Judge(llm, rubric=criterion_rubric(c), scale=5, name="writingbench", template=JUDGE_TEMPLATE)
        for i, (value, _) in enumerate(await judge.judge(problem, cut)):
            scores[i][j] = value
    return scores


async def single_pass(llm: LLM, query: str, s: Settings, seed: int) -> tuple[str, int]:
    prompt = (
        Message.system("You are a business consultant and a careful writer."),
        Message.user(query[: s.query_chars] + "\n\nWrite the complete document in Markdown."),
    )
    ctx = SearchContext(llm=llm, budget=Budget(), seed=seed, temperature=0.7)
    [[cand]] = await ctx.sample(Problem("single", prompt, "text", max_tokens=s.single_tokens), 1)
    return cand.text, cand.completion_tokens


async def longthink(
    llm: LLM, query: str, s: Settings, run_id: str, judge: LLM | None = None
) -> tuple[str, dict[str, Any], int]:
    registry = DomainRegistry(
        [
            replace(
                get("business_plan"),
                pipeline=BusinessPlanPipeline(
                    n=s.n, options_k=s.options_k, section_tokens=s.section_tokens, request_chars=s.query_chars
                ),
            )
        ]
    )
    agent = Agent(
        llm=llm,
        judge_llm=judge,
        options=AgentOptions(
            domain="business_plan", budget_tokens=None, seed=s.seed, artifacts_dir=str(s.cache / "docs")
        ),
        store=MemoryStore(),
        checkpoints=None,
        domains=registry,
    )
    res = await agent.asolve(query[: s.query_chars], run_id=run_id)
    document = res.steps.get("document")
    doc = document.data if document is not None else {}
    tokens = res.spend.completion_tokens
    return (
        res.answer or "",
        {"numbers": doc.get("numbers"), "missing": doc.get("missing"), "status": res.status},
        tokens,
    )


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


def has_table(text: str) -> bool:
    return any(line.strip().startswith("|") and line.count("|") >= 3 for line in text.splitlines())


async def run(s: Settings) -> dict[str, Any]:
    from longthink.llm.llama_cpp import LlamaCppLLM

    base = LlamaCppLLM(s.model, n_threads=s.threads, n_ctx=8192, max_sequences=8)
    llm = SeededLLM(CachedLLM(base, s.cache / "generations"), seed=s.seed)
    judge: LLM = llm
    if s.judge_model is not None:  # the stronger judge scores both documents and longthink's sections
        judge_base = LlamaCppLLM(s.judge_model, n_threads=s.threads, n_ctx=8192, max_sequences=8)
        judge = SeededLLM(CachedLLM(judge_base, s.cache / "generations"), seed=s.seed)
    queries = select(load_queries(s.wheel), s.queries, s.indices)
    rows: list[dict[str, Any]] = []
    print(f"{len(queries)} queries: {[q['index'] for q in queries]}", flush=True)
    for q in queries:
        t0 = time.perf_counter()
        single, single_tokens = await single_pass(llm, q["query"], s, seed=s.seed * 1000 + int(q["index"]))
        t1 = time.perf_counter()
        doc, info, lt_tokens = await longthink(llm, q["query"], s, f"wb-{q['index']}",
                                               judge if s.judge_model is not None else None)  # fmt: skip
        t2 = time.perf_counter()
        [single_scores, lt_scores] = await judge_documents(judge, q["query"], [single, doc], q["checklist"], s)
        t3 = time.perf_counter()
        numbers = info.get("numbers") or {}
        row = {
            "index": q["index"],
            "domain2": q["domain2"],
            "rubric_single": mean(single_scores),
            "rubric_longthink": mean(lt_scores),
            "criteria_single": single_scores,
            "criteria_longthink": lt_scores,
            "numbers_consistent": bool(numbers.get("consistent")) if numbers else None,
            "figures_checked": numbers.get("checked"),
            "disagreements": numbers.get("disagreements"),
            "missing_sections": info.get("missing"),
            "status": info.get("status"),
            "single_figures": sum(n.kind != "plain" for n in extract_numbers(single)),
            "single_has_table": has_table(single),
            "chars_single": len(single),
            "chars_longthink": len(doc),
            "tokens_single": single_tokens,
            "tokens_longthink": lt_tokens,
            "seconds": {"single": round(t1 - t0, 1), "longthink": round(t2 - t1, 1), "judge": round(t3 - t2, 1)},
        }
        rows.append(row)
        print(
            f"#{q['index']:>4} {q['domain2']:<20} single {row['rubric_single']:.3f}  longthink "
            f"{row['rubric_longthink']:.3f}  numbers consistent {row['numbers_consistent']}  "
            f"({row['seconds']})",
            flush=True,
        )
        write(s, rows, final=False)
    await llm.aclose()
    if judge is not llm:
        await judge.aclose()
    return write(s, rows, final=True)


def write(
    s: Settings,
    rows: list[dict[str, Any]],
    *,
    final: bool,
    note: str | None = None,
    origin: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the results file; ``origin``: the provenance of the run whose rows these are (``--finalize``)."""
    consistent = [r["numbers_consistent"] for r in rows if r["numbers_consistent"] is not None]
    rs, rl = mean([r["rubric_single"] for r in rows]), mean([r["rubric_longthink"] for r in rows])
    summary = {
        "queries": len(rows),
        "query_indices": [r["index"] for r in rows],
        "rubric_single": round(rs, 4),
        "rubric_longthink": round(rl, 4),
        "rubric_diff": round(rl - rs, 4),
        "rubric_diff_ci95": mean_ci([r["rubric_longthink"] - r["rubric_single"] for r in rows]),
        "longthink_wins": sum(r["rubric_longthink"] > r["rubric_single"] for r in rows),
        "numbers_consistent_share": round(sum(consistent) / len(consistent), 4) if consistent else None,
        "single_has_table_share": round(mean([float(r["single_has_table"]) for r in rows]), 4),
        "single_figures_mean": round(mean([float(r["single_figures"]) for r in rows]), 2),
        "tokens_single_mean": round(mean([float(r["tokens_single"]) for r in rows]), 1),
        "tokens_longthink_mean": round(mean([float(r["tokens_longthink"]) for r in rows]), 1),
        "final": final,
    }
    if note:
        summary["note"] = note
    summary.update(goals_summary())
    settings = jsonable({k: v for k, v in s.__dict__.items() if k not in ("out", "cache", "finalize")})
    # a finalized run keeps the stopped run's own provenance and records who finalized it
    block = provenance(settings) if origin is None else {**origin, "finalized": provenance({"note": note})}
    out = {"summary": summary, "provenance": block, "settings": settings, "rows": rows, "scale": SCALE_NOTE}
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(json.dumps(out, indent=1))
    return out


GOALS = RESULTS.with_name("business_goals.json")


def goals_summary(path: Path = GOALS) -> dict[str, Any]:
    """The growth-request part of this benchmark (``benchmarks/business_goals.py``, its own run and results file):
    its ``goal_reached_share``, ``honest_share`` and ``figures_agree_share`` with their intervals, and the commit
    they were measured at; empty when it has not been run."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    sm = data.get("summary", {})
    keys = ("goal_reached_share", "goal_reached_ci95", "honest_share", "honest_ci95", "figures_agree_share",
            "figures_agree_ci95", "requests")  # fmt: skip
    return {**{f"goals_{k}" if k == "requests" else k: sm.get(k) for k in keys},
            "goals_commit": data.get("provenance", {}).get("commit")}  # fmt: skip


def table(out: dict[str, Any]) -> str:
    lines = [f"{'query':>6} {'sub-domain':<20} {'single':>7} {'longthink':>9} {'numbers ok':>10} {'single table':>12}"]
    for r in out["rows"]:
        lines.append(
            f"{r['index']:>6} {r['domain2']:<20} {r['rubric_single']:>7.3f} {r['rubric_longthink']:>9.3f} "
            f"{r['numbers_consistent']!s:>10} {r['single_has_table']!s:>12}"
        )
    sm = out["summary"]
    lines.append(
        f"{'mean':>6} {'':<20} {sm['rubric_single']:>7.3f} {sm['rubric_longthink']:>9.3f} "
        f"{sm['numbers_consistent_share']!s:>10} {sm['single_has_table_share']:>12}"
    )
    lines.append(
        f"difference (longthink - single): {sm['rubric_diff']:+.3f}; longthink better on "
        f"{sm['longthink_wins']}/{sm['queries']} queries"
    )
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="1 query, N=1, 2 options, short sections")
    p.add_argument("--queries", type=int, default=10)
    p.add_argument("--indices", type=int, nargs="+", default=[], help="only these WritingBench indices of the queries")
    p.add_argument("--model", default=Settings.model)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n", type=int, default=Settings.n)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--cache", type=Path, default=CACHE)
    p.add_argument("--judge-chars", type=int, default=Settings.judge_chars, help="characters of a document judged")
    p.add_argument("--wheel", type=Path, default=None, help="read the data from an inspect-evals wheel instead")
    p.add_argument("--judge-model", default=None, help="a separate judge model (both documents, longthink's sections)")
    p.add_argument(
        "--finalize",
        default=None,
        metavar="NOTE",
        help="mark the rows already in --out as the final result (a run stopped early), with NOTE",
    )
    a = p.parse_args(argv)
    s = Settings(
        queries=a.queries,
        model=a.model,
        threads=a.threads,
        n=a.n,
        out=a.out,
        cache=a.cache,
        wheel=a.wheel,
        finalize=a.finalize,
        judge_chars=a.judge_chars,
        judge_model=a.judge_model,
        indices=tuple(a.indices),
    )
    if a.quick:
        s = replace(
            s,
            quick=True,
            queries=1,
            n=1,
            options_k=2,
            section_tokens=120,
            single_tokens=400,
            judge_chars=2500,
            out=a.out if a.out != RESULTS else RESULTS.with_name("business_quick.json"),
        )
    return s


def main(argv: Sequence[str] | None = None) -> int:
    s = parse(argv)
    if s.finalize is not None:  # a run stopped early: its rows so far become the result, with the reason
        partial = json.loads(s.out.read_text())
        if "provenance" not in partial:
            raise SystemExit(f"{s.out} has no provenance: only a run of this code can be finalized")
        out = write(s, partial["rows"], final=True, note=s.finalize, origin=partial["provenance"])
    else:
        out = asyncio.run(run(s))
    print(table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
