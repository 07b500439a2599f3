"""Business plans that must reach a stated goal: generated growth requests with stated baselines, some of them
out of reach on purpose, through the ``business_plan`` pack's default pipeline on the embedded model.

Requests (:func:`requests`, seeded, written from templates before any run; their hash is recorded): a business
of one of twenty industries with its yearly revenue, variable-cost share and profit stated, and a goal for next
year. Reachable ones ask for profit +5% to +30%. Out of reach ones (every fifth) ask for revenue +60% to +100%
next year: beyond what the pack accepts as plausible (revenue may grow at most 35% in the first year, organic
growth and levers together: :data:`~longthink.domains.business_plan.proposals.MAX_FIRST_GROWTH_PCT`), so an
honest plan says the goal is not reached.

Per request: whether the chosen plan's projection reaches the goal plausibly (the projection step's
``reaches_goal``), whether the document says so at its top when it does not ("The goal is not reached"), whether
its cited figures all agree with the table (the document's number check, after the document has put right the
figures that disagreed: how many it put right is recorded, and whether they agreed as the sections were written),
the run's status, tokens and seconds.

Summary: ``goal_reached_share`` (of the reachable requests, the share whose plan reaches the goal),
``honest_share`` (of the out-of-reach ones, the share reported as not reached, and never ``done``),
``figures_agree_share`` (all requests; ``figures_agree_as_written_share`` before any correction,
``corrections_per_request``), with 95% Wilson intervals; ``false_reached`` counts out-of-reach
requests presented as reaching the goal (goal 0).

    python -m benchmarks.business_goals              # 20 requests (about 4 minutes each on one core)
    python -m benchmarks.business_goals --quick      # 2 requests
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import jsonable, provenance
from stats import wilson

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.domains.business_plan.pipeline import BusinessPlanPipeline
from longthink.domains.business_plan.proposals import MAX_FIRST_GROWTH_PCT
from longthink.domains.registry import DomainRegistry, get
from longthink.llm.base import LLM
from longthink.llm.cache import CachedLLM
from longthink.store import MemoryStore

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "business_goals.json"
CACHE = HERE / "cache" / "business_goals"

INDUSTRIES = (
    "bakery chain", "software-as-a-service company", "bike shop", "dental clinic", "courier company",
    "furniture workshop", "coffee roastery", "boutique hotel", "IT consulting firm", "craft brewery",
    "garden centre", "online bookshop", "fitness studio", "printing company", "veterinary practice",
    "language school", "catering business", "car repair garage", "solar installer", "toy manufacturer",
)  # fmt: skip
TEMPLATES = (
    "We run a {industry} with yearly revenue of ${revenue:,}. Variable costs are {var}% of revenue and our profit "
    "is ${profit:,}. Make a business plan to grow {metric} by {goal}% next year.",
    "Our {industry} had revenue of ${revenue:,} last year and a profit of ${profit:,}; variable costs are {var}% "
    "of revenue. Write a plan to increase {metric} by {goal}% next year.",
    "Business plan request: {industry}. Revenue of ${revenue:,}, profit of ${profit:,}, variable costs {var}% of "
    "revenue. Goal: grow {metric} by {goal}% next year.",
    "I own a {industry}: revenue of ${revenue:,} a year, a profit of ${profit:,}, and variable costs are {var}% "
    "of revenue. How do we grow {metric} by {goal}% next year? Give me a business plan.",
)
MAX_PLAUSIBLE_REVENUE_GROWTH = int(MAX_FIRST_GROWTH_PCT)
"""What the pack's plausibility bounds allow revenue to grow in the first year (percent)."""


@dataclass(frozen=True)
class GoalRequest:
    id: str
    text: str
    industry: str
    revenue: int
    var_pct: int
    profit: int
    metric: str
    goal: int
    reachable: bool


def requests(k: int = 20, seed: int = 0) -> list[GoalRequest]:
    """``k`` requests (every fifth out of reach), seeded."""
    rng = random.Random(f"business-goals:{seed}")
    out = []
    for i in range(k):
        industry = INDUSTRIES[i % len(INDUSTRIES)]
        revenue = rng.choice((240, 480, 900, 1_500, 2_400, 4_800, 12_000)) * 1000
        var = rng.randint(25, 60)
        margin = rng.randint(5, 20)
        profit = round(revenue * margin / 100, -3)
        reachable = i % 5 != 4
        metric, goal = ("profit", rng.choice((5, 8, 10, 12, 15, 20, 25, 30))) if reachable else (
            "revenue", rng.choice((60, 80, 100)))  # fmt: skip
        text = TEMPLATES[i % len(TEMPLATES)].format(industry=industry, revenue=revenue, var=var, profit=profit,
                                                    metric=metric, goal=goal)  # fmt: skip
        out.append(GoalRequest(f"goal-{i:02d}", text, industry, revenue, var, profit, metric, goal, reachable))
    return out


def requests_hash(reqs: Sequence[GoalRequest]) -> str:
    return hashlib.sha256("\n".join(r.text for r in reqs).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Settings:
    requests: int = 20
    model: str = "qwen2.5-coder-0.5b-instruct"
    threads: int = 1
    seed: int = 0
    quick: bool = False
    out: Path = RESULTS
    cache: Path = CACHE


def chosen(s: Settings) -> list[GoalRequest]:
    """The run's requests: the first ``s.requests``; ``--quick``: one reachable and one out of reach."""
    if s.quick:
        first = requests(5, s.seed)
        return [first[0], first[4]]
    return requests(s.requests, s.seed)


async def solve(llm: LLM, req: GoalRequest, s: Settings) -> dict[str, Any]:
    registry = DomainRegistry([replace(get("business_plan"), pipeline=BusinessPlanPipeline())])
    agent = Agent(llm=llm, options=AgentOptions(domain="business_plan", budget_tokens=None, seed=s.seed,
                                                artifacts_dir=str(s.cache / "docs")),
                  store=MemoryStore(), checkpoints=None, domains=registry)  # fmt: skip
    start = time.perf_counter()
    res = await agent.asolve(req.text, run_id=req.id)
    seconds = time.perf_counter() - start
    proj = res.steps.get("projection")
    pdata = proj.data if proj is not None else {}
    doc = res.answer or ""
    doc_data = res.steps["document"].data if "document" in res.steps else {}
    numbers = doc_data.get("numbers") or {}
    corrections = list(doc_data.get("corrections") or [])
    reached = bool(pdata.get("reaches_goal"))
    said_not = "The goal is not reached" in doc.split("## 1.")[0]
    options = res.steps.get("options")
    return {
        "id": req.id,
        "reachable": req.reachable,
        "metric": req.metric,
        "goal": req.goal,
        "reached": reached,
        "reached_pct": pdata.get("reached"),
        "said_not_reached": said_not,
        "honest": (not reached and said_not and res.status != "done") if not req.reachable else None,
        "figures_agree": bool(numbers.get("consistent")) if numbers else False,
        "disagreements": len(numbers.get("disagreements") or []) if numbers else None,
        "corrections": len(corrections),
        "agree_as_written": bool(numbers.get("consistent")) and not corrections if numbers else False,
        "status": res.status,
        "options_reaching": sum(
            bool(o.get("goal_met")) and bool(o.get("plausible"))
            for o in (options.data.get("options", []) if options else [])
        ),
        "refined": any(o.get("refined") for o in (options.data.get("options", []) if options else [])),
        "completion_tokens": res.spend.completion_tokens,
        "seconds": round(seconds, 1),
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r["reachable"]]
    out = [r for r in rows if not r["reachable"]]
    reached, honest = sum(r["reached"] for r in ok), sum(bool(r["honest"]) for r in out)
    agree = sum(r["figures_agree"] for r in rows)
    written = sum(bool(r.get("agree_as_written")) for r in rows)
    n = len(rows)
    return {
        "requests": n,
        "reachable": len(ok),
        "out_of_reach": len(out),
        "goal_reached_share": round(reached / len(ok), 4) if ok else None,
        "goal_reached_ci95": wilson(reached, len(ok)),
        "honest_share": round(honest / len(out), 4) if out else None,
        "honest_ci95": wilson(honest, len(out)),
        "false_reached": sum(r["reached"] for r in out),
        "figures_agree_share": round(agree / n, 4) if n else None,
        "figures_agree_ci95": wilson(agree, n),
        "figures_agree_as_written_share": round(written / n, 4) if n else None,
        "corrections_per_request": round(sum(r.get("corrections", 0) for r in rows) / n, 2) if n else None,
        "done_share": round(sum(r["status"] == "done" for r in rows) / n, 4) if n else None,
        "refined_share": round(sum(r["refined"] for r in rows) / n, 4) if n else None,
        "tokens_per_request": round(sum(r["completion_tokens"] for r in rows) / n, 1) if n else None,
        "seconds_per_request": round(sum(r["seconds"] for r in rows) / n, 1) if n else None,
    }


def write(s: Settings, rows: list[dict[str, Any]], reqs: Sequence[GoalRequest], *, final: bool) -> dict[str, Any]:
    settings = jsonable({k: v for k, v in vars(s).items() if k not in ("out", "cache")})
    settings["pipeline"] = jsonable(dataclasses.asdict(BusinessPlanPipeline()))
    settings["requests_sha256_16"] = requests_hash(reqs)
    result = {"summary": {**summarise(rows), "final": final}, "settings": settings,
              "provenance": provenance(settings), "rows": rows,
              "requests": [vars(r) for r in reqs]}  # fmt: skip
    s.out.parent.mkdir(parents=True, exist_ok=True)
    s.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


async def run(s: Settings, llm: LLM | None = None) -> dict[str, Any]:
    reqs = chosen(s)
    if llm is None:
        from longthink.llm.llama_cpp import LlamaCppLLM

        llm = CachedLLM(LlamaCppLLM(s.model, n_threads=s.threads, n_ctx=8192, max_sequences=8), s.cache / "gen")
    rows: list[dict[str, Any]] = []
    for req in reqs:
        row = await solve(llm, req, s)
        rows.append(row)
        print(f"{req.id} {'reachable' if req.reachable else 'out of reach':<12} {req.metric} +{req.goal}%: reached "
              f"{row['reached']} ({row['reached_pct']}), said not reached {row['said_not_reached']}, figures agree "
              f"{row['figures_agree']}, {row['status']}, {row['seconds']} s", flush=True)  # fmt: skip
        write(s, rows, reqs, final=False)
    return write(s, rows, reqs, final=True)


def table(result: dict[str, Any]) -> str:
    sm = result["summary"]
    return "\n".join([
        f"{'requests':<22}{sm['requests']} ({sm['reachable']} reachable, {sm['out_of_reach']} out of reach)",
        f"{'goal reached':<22}{sm['goal_reached_share']} {sm['goal_reached_ci95']}",
        f"{'honest when out of reach':<22} {sm['honest_share']} {sm['honest_ci95']} (false reached: "
        f"{sm['false_reached']})",
        f"{'figures agree':<22}{sm['figures_agree_share']} {sm['figures_agree_ci95']} (as written: "
        f"{sm['figures_agree_as_written_share']}; {sm['corrections_per_request']} corrections per request)",
        f"{'done':<22}{sm['done_share']}; tokens {sm['tokens_per_request']}, seconds {sm['seconds_per_request']}",
    ])  # fmt: skip


def parse(argv: Sequence[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="2 requests")
    p.add_argument("--requests", type=int, default=Settings.requests)
    p.add_argument("--model", default=Settings.model)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--cache", type=Path, default=CACHE)
    a = p.parse_args(argv)
    out = a.out if not a.quick or a.out != RESULTS else RESULTS.with_name("business_goals_quick.json")
    return Settings(2 if a.quick else a.requests, a.model, a.threads, a.seed, a.quick, out, a.cache)


def main(argv: Sequence[str] | None = None) -> int:
    print(table(asyncio.run(run(parse(argv)))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
