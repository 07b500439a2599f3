"""The routing pack's own plan: extract -> solve -> verify -> report, run by the agent graph.

- **extract**: an attached problem file (``.vrp``, Solomon ``.txt``, ``.csv``, ``.json``) is read directly;
  otherwise the request is read by rule (:mod:`.structure`: tables, CSV blocks, lists, ``key: value`` lines, every
  value with its span). A complete structured reading is the problem (``read_by: "structure"``, no model). Otherwise
  the model extracts the problem with self-consistency (:mod:`.extract`): passage by passage (the fleet, then each
  customer; one batched call), the whole request at once as the fallback; every model reading must pass the
  grounding check (:mod:`.grounding`) against the rule-based reading, or it is rejected with the reason.
- **questions**: what the request leaves unclear (no capacity, two fleet sizes, two depots, a customer without a
  demand or a location...) is asked before planning (:meth:`RoutingPipeline.questions`); a run that does not ask
  takes the stated defaults, and a problem that rests on an assumption (a default, or a rule-based reading no model
  reading confirmed) is solved and reported under "Assumed", its routes checked against the assumed problem and
  never reported as verified.
- **solve**: test-time search over solver configurations (PyVRP seeds) via
  :func:`~longthink.domains.routing.solver.solve_configs`; every run is a candidate in the trace, scored by the
  independent verifier (feasibility, then cost), and the best feasible one is kept.
- **verify**: the verifier again, on the chosen routes only, recomputing loads, distances and time windows.
- **report**: routes per vehicle with load and distance, the total, the gap to the best-known value when the
  instance is a named CVRPLIB/Solomon one, and a PNG map.

The solver's time per configuration is :attr:`RoutingOptions.time_limit_s`, by default scaled with the
instance size; a request can set it ("time limit 10 s").

The fleet follows the source's convention (:mod:`.problem`): fixed where the file has a fleet-size field or the
request states one ("at most 3 trucks"), unlimited otherwise (the ``k`` of a CVRPLIB name is the minimum number of
routes, not a limit). The solve and report steps say how many routes the solution uses.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import PurePath
from typing import Any

from longthink.domains.pipeline import (
    StepContext,
    StepOutput,
    added_facts,
    attached_files,
    request_text,
    without_facts,
)
from longthink.domains.routing.extract import Extraction, Reading, describe_problem, extract_problem
from longthink.domains.routing.grounding import ground, questions, stated_amounts
from longthink.domains.routing.io import best_known, read_problem
from longthink.domains.routing.parsing import mentions_time_windows, stated_fleet_size
from longthink.domains.routing.passages import PartReading
from longthink.domains.routing.problem import RoutingProblem, RoutingSolution
from longthink.domains.routing.report import render_report, render_scenarios
from longthink.domains.routing.scenarios import Uncertainty, find_uncertainty, has_scenarios, robust_plans
from longthink.domains.routing.structure import StructuredReading, read_request
from longthink.domains.routing.verify import RoutingVerifier, verify
from longthink.errors import ConfigError
from longthink.events import CandidateGenerated, Question, ToolCalled
from longthink.llm.types import Message
from longthink.outcome import StepOutcome
from longthink.planners.plan import Plan, PlanStep
from longthink.search.types import Candidate, Problem, prompt_hash

PROBLEM_SUFFIXES = (".vrp", ".txt", ".csv", ".json")
_TIME_LIMIT = re.compile(
    r"\b(?:time limit|solver time|time budget|solve (?:it )?for)\s*(?:of\s*|:\s*)?(\d+(?:\.\d+)?)\s*"
    r"(?:s|sec|secs|seconds?)\b",
    re.I,
)
_CAPACITY = re.compile(r"\bcapacity(?:\s+of)?\s*:?\s*(\d+)\b|\b(\d+)\s+units?\s+(?:each|per vehicle|per truck)\b", re.I)


@dataclass(frozen=True, slots=True)
class RoutingOptions:
    """``samples``: model extractions voted over, per passage when the request is read passage by passage
    (``timed_samples`` for a whole request that mentions time windows: the small model reads those far less
    reliably at once, so more samples buy a valid one; one passage at a time it reads them well); ``temperature``: their
    sampling temperature (None: the run's); ``seeds``: solver configurations tried; ``time_limit_s``: solver
    seconds per configuration (None: by size, :func:`auto_time_limit`); ``by_passage``: read the request passage
    by passage first (``samples`` readings of every passage), the whole request only as the fallback."""

    samples: int = 4
    timed_samples: int = 8
    temperature: float | None = 0.4
    seeds: int = 3
    time_limit_s: float | None = None
    by_passage: bool = True

    def __post_init__(self) -> None:
        if self.samples < 1 or self.timed_samples < 1:
            raise ConfigError("samples and timed_samples must be >= 1", field="samples")
        if self.seeds < 1:
            raise ConfigError("seeds must be >= 1", field="seeds")
        if self.time_limit_s is not None and not (0 < self.time_limit_s <= 600):
            raise ConfigError("time_limit_s must be in (0, 600] seconds", field="time_limit_s")


def auto_time_limit(customers: int) -> float:
    """Solver seconds per configuration for an instance of this size: 0.25 s for a handful of customers,
    about 1 s at 25, at most 5 s."""
    return min(5.0, max(0.25, customers / 25))


def request_time_limit(text: str) -> float | None:
    """A time limit the request states ("time limit 10 s", "solve for 2 seconds"), if any."""
    m = _TIME_LIMIT.search(text)
    if m is None:
        return None
    value = float(m.group(1))
    return value if 0 < value <= 600 else None


class RoutingPipeline:
    """The :class:`~longthink.domains.pipeline.DomainPipeline` of the ``routing`` pack."""

    def __init__(self, options: RoutingOptions | None = None) -> None:
        self.options = options or RoutingOptions()

    def questions(self, request: str) -> list[Question]:
        """What ``request`` leaves unclear (:func:`~.grounding.questions` of its rule-based reading, answers and
        assumed defaults already added taken into account); none for an attached problem file or a clear request."""
        if _problem_files(request):
            return []
        return questions(_reading(request))

    def plan(self, request: str) -> Plan:
        source = "the attached problem file" if _problem_files(request) else "the request's text"
        return Plan(
            goal="vehicle routes that serve every customer within capacity (and time windows) at least distance",
            steps=[
                PlanStep(id="extract", kind="extract", answer_kind="json",
                         goal=f"Read the routing problem (depot, customers, demands, fleet) from {source}",
                         success_check="a valid problem: demands within capacity, coordinates present, ids unique"),
                PlanStep(id="solve", kind="solve", answer_kind="json", depends_on=["extract"],
                         goal="Search solver configurations with PyVRP; keep the cheapest feasible routes",
                         success_check="the verifier accepts the routes"),
                PlanStep(id="verify", kind="verify", depends_on=["extract", "solve"],
                         goal="Check the routes independently: every customer once, loads, fleet, time windows"),
                PlanStep(id="report", kind="report", depends_on=["extract", "solve", "verify"],
                         goal="Report routes per vehicle with load and distance, the total, and a map"),
            ],
        )  # fmt: skip

    async def run_step(self, ctx: StepContext) -> StepOutput:
        steps = {"extract": self._extract, "solve": self._solve, "verify": self._verify, "report": self._report}
        run = steps.get(ctx.step.id)
        if run is None:
            return StepOutput(None, reason=f"unknown routing step {ctx.step.id!r} (known: {', '.join(steps)})")
        # the report still shows routes the verifier rejected (with why); nothing runs without a problem or routes
        failed = [d for d in ctx.step.depends_on if d != "verify" and not _verified(ctx.inputs.get(d))]
        if failed:
            return StepOutput(None, reason=f"skipped: step {failed[0]} failed")
        return await run(ctx)

    # -- extract ---------------------------------------------------------------------------------------------
    async def _extract(self, ctx: StepContext) -> StepOutput:
        files = _problem_files(ctx.request)
        text = request_text(ctx.request)
        if files:
            name, content = next(iter(files.items()))
            path = ctx.artifact_path(PurePath(name).name)
            path.write_text(content, encoding="utf-8")
            try:  # a fleet size the request states fixes the fleet; else the file's own convention
                problem = read_problem(path, vehicles=stated_fleet_size(text), capacity=_first_int(_CAPACITY, text))
            except ConfigError as exc:
                return StepOutput(None, reason=f"the attached file {name} is not a usable problem: {exc}")
            read = {"problem": problem.model_dump(mode="json"), "source": f"file {name}"}
            return StepOutput(
                describe_problem(problem), problem.model_dump_json(), True, f"read from the attached file {name}", read
            )
        if not text:
            return StepOutput(None, reason="the request is empty: describe the depot, customers and fleet")
        reading = _reading(ctx.request)
        data: dict[str, Any] = {"source": "text", "reading": reading.as_data()}
        if reading.issues:  # unclear, and neither answered nor given a default this pack can read
            why = "the request is unclear: " + " ".join(i.text for i in reading.issues)
            return StepOutput(None, verified=False, reason=why, data=data, strategy="structure")
        if reading.structured and not reading.incomplete and reading.problem is None:  # read whole, invalid as stated
            return StepOutput(None, verified=False, reason=reading.error, data=data, strategy="structure")
        if reading.complete and reading.problem is not None and ground(reading.problem, reading) is None:
            return _read(reading.problem, "structure", _read_reason(reading), data, list(reading.assumed))
        whole = self.options.timed_samples if mentions_time_windows(text) else self.options.samples
        extraction = await extract_problem(  # the model reads the request with the answers added to it
            text, ctx.search, samples=self.options.samples if self.options.by_passage else whole,
            whole_samples=whole, temperature=self.options.temperature, by_passage=self.options.by_passage,
            check=lambda problem: ground(problem, reading), numbers=stated_amounts(reading),
        )  # fmt: skip
        data["extraction"] = extraction.as_data()
        assumed = list(reading.assumed)
        if extraction.problem is None:
            if reading.problem is None or reading.incomplete or ground(reading.problem, reading) is not None:
                return StepOutput(None, verified=False, reason=extraction.reason, data=data,
                                  candidates=extraction.samples, strategy="self_consistency")  # fmt: skip
            assumed.append(f"the problem as read by rule from the request's wording (no model reading was "
                           f"accepted: {extraction.reason})")  # fmt: skip
            return _read(reading.problem, "structure, unconfirmed", "read by rule; " + extraction.reason, data,
                         assumed, extraction.samples)  # fmt: skip
        problem = extraction.problem
        split = _disagreement(extraction)
        if split:
            assumed.append(split)
        if reading.problem is not None:
            if _same_values(problem, reading.problem):
                problem = reading.problem  # the same problem: keep the names and ids the request states
            elif not reading.incomplete:  # both grounded, yet different: neither is certain
                problem = reading.problem
                assumed.append("the model's reading and the rule-based reading of the request differ; the rule-based "
                               "one is used")  # fmt: skip
            else:
                assumed.append("the model's reading differs from the rules' partial reading; the model's is used")
        return _read(problem, "model", extraction.reason, data, assumed, extraction.samples)

    # -- solve -----------------------------------------------------------------------------------------------
    def time_limit(self, problem: RoutingProblem, request: str) -> float:
        stated = request_time_limit(request_text(request))
        if stated is not None:
            return stated
        if self.options.time_limit_s is not None:
            return self.options.time_limit_s
        return auto_time_limit(len(problem.customers))

    async def _solve(self, ctx: StepContext) -> StepOutput:
        from longthink.domains.routing.solver import SolverConfig, solve_configs

        problem = _problem(ctx)
        seconds = self.time_limit(problem, ctx.request)
        base = ctx.seed or 0
        uncertainty = find_uncertainty(request_text(ctx.request))
        if uncertainty is not None and not has_scenarios(problem, uncertainty):
            uncertainty = None  # a breakdown with an unlimited fleet: another vehicle always takes over, plan as usual
        if uncertainty is not None:
            return await self._solve_robust(ctx, problem, uncertainty, seconds, base)
        configs = [SolverConfig(base + k, seconds) for k in range(self.options.seeds)]
        search = await solve_configs(problem, configs)
        spec = Problem(
            f"{ctx.run_id}:solve",
            (Message.user(problem.model_dump_json()),),
            "json",
            metadata={"routing_problem": problem},
        )
        candidates = [_candidate(spec, i, a.solution) for i, a in enumerate(search.attempts)]
        for a, c in zip(search.attempts, candidates, strict=True):
            ctx.emit(CandidateGenerated(problem_id=spec.id, candidate=c))
            args = {"seed": a.config.seed, "time_limit_s": a.config.time_limit_s}
            error = None if a.verdict.feasible else a.verdict.rationale()
            ctx.emit(ToolCalled(call_id=f"{ctx.run_id}:solve:{c.index}", tool="route_solver", args=args,
                                ok=error is None, result=a.solution.summary(), error=error,
                                latency_s=a.solution.runtime_s))  # fmt: skip
        await ctx.search.score(spec, candidates, RoutingVerifier(problem))
        attempts = [
            {"seed": a.config.seed, "time_limit_s": a.config.time_limit_s, "feasible": a.verdict.feasible,
             "cost": a.verdict.cost, "verdict": a.verdict.rationale(3)}
            for a in search.attempts
        ]  # fmt: skip
        data: dict[str, Any] = {"attempts": attempts, "time_limit_s": seconds}
        best = search.best
        if best is None:
            nearest = min(search.attempts, key=lambda a: len(a.verdict.violations))
            data["solution"] = nearest.solution.model_dump(mode="json")
            why = f"no feasible routes in {len(attempts)} solver runs; nearest: {nearest.verdict.rationale()}"
            return StepOutput(None, reason=why, data=data, candidates=len(attempts), strategy="solver_configs")
        data["solution"] = best.solution.model_dump(mode="json")
        data["chosen"] = search.attempts.index(best)
        data["routes_used"] = len(best.solution.routes)
        data["fleet_vehicles"] = problem.fleet.vehicles  # None: unlimited
        costs = ", ".join(f"{a.verdict.cost:g}" if a.verdict.feasible else "infeasible" for a in search.attempts)
        reason = (
            f"best of {len(attempts)} solver runs ({seconds:g} s each; costs {costs}): seed {best.config.seed}, "
            f"{len(best.solution.routes)} routes ({problem.fleet.describe()})"
        )
        return StepOutput(
            f"{len(best.solution.routes)} routes, total distance {best.verdict.cost:g}",
            json.dumps(_answer_json(best.solution)),
            True, reason, data, candidates=len(attempts), strategy="solver_configs",
        )  # fmt: skip

    async def _solve_robust(
        self, ctx: StepContext, problem: RoutingProblem, uncertainty: Uncertainty, seconds: float, base: int
    ) -> StepOutput:
        """Plans for uncertain demand (:mod:`.scenarios`): candidates solved with demand buffers, each verified on
        the stated problem and evaluated on every sampled scenario; the best by the request's criterion."""
        seeds = [base + k for k in range(self.options.seeds)]
        try:
            search = await robust_plans(problem, uncertainty, time_limit_s=seconds, seeds=seeds, scenario_seed=base)
        except ValueError as exc:
            return StepOutput(None, reason=str(exc), data={"time_limit_s": seconds}, strategy="scenarios")
        spec = Problem(f"{ctx.run_id}:solve", (Message.user(problem.model_dump_json()),), "json",
                       metadata={"routing_problem": problem})  # fmt: skip
        candidates = [_candidate(spec, i, plan.solution) for i, plan in enumerate(search.plans)]
        for plan, c in zip(search.plans, candidates, strict=True):
            ctx.emit(CandidateGenerated(problem_id=spec.id, candidate=c))
            args = {"seed": plan.seed, "time_limit_s": seconds, "demand_buffer": plan.buffer * uncertainty.share,
                    "spare_type": plan.spare + 1 if plan.spare >= 0 else None}  # fmt: skip
            ctx.emit(ToolCalled(call_id=f"{ctx.run_id}:solve:{c.index}", tool="route_solver", args=args, ok=True,
                                result=plan.solution.summary(), latency_s=plan.solution.runtime_s))  # fmt: skip
        await ctx.search.score(spec, candidates, RoutingVerifier(problem))
        best = search.best
        mean = search.plans[search.mean_plan].summary() if search.mean_plan is not None else None
        data: dict[str, Any] = {
            "time_limit_s": seconds,
            "solution": best.solution.model_dump(mode="json"),
            "chosen": search.chosen,
            "routes_used": len(best.solution.routes),
            "fleet_vehicles": problem.fleet.vehicles,
            "scenarios": {
                "uncertainty": uncertainty.describe(),
                "criterion": uncertainty.criterion,
                "share": uncertainty.share,
                "breakdown": uncertainty.breakdown,
                "types": [t.name for t in problem.vehicle_types],
                "plans": [p.summary() for p in search.plans],
                "chosen": best.summary(),
                "mean_plan": mean,
                "per_scenario": [
                    {"scenario": sc.label, "cost": round(o.cost, 4), "detours": o.detours}
                    for sc, o in zip(search.scenarios, best.outcomes, strict=True)
                ],
                "skipped": list(search.skipped),
            },
        }
        reason = (
            f"{len(search.plans)} candidate plans ({uncertainty.describe()}): chosen worst {best.worst:g}, "
            f"expected {best.expected:g}, served as planned in {best.feasible_share:.0%} of scenarios"
        )
        if mean is not None:
            which = "the mean-scenario plan" if uncertainty.share > 0 else "the plan with no spare"
            reason += f"; {which}: worst {mean['worst']:g}, expected {mean['expected']:g}"
        return StepOutput(
            f"{len(best.solution.routes)} routes, total distance {best.stated_cost:g}",
            json.dumps(_answer_json(best.solution)),
            True, reason, data, candidates=len(search.plans), strategy="scenarios",
        )  # fmt: skip

    # -- verify ----------------------------------------------------------------------------------------------
    async def _verify(self, ctx: StepContext) -> StepOutput:
        problem = _problem(ctx)
        solution = _solution(ctx)
        verdict = verify(problem, solution)
        data = {
            "feasible": verdict.feasible,
            "cost": verdict.cost,
            "distances": list(verdict.distances),
            "loads": list(verdict.loads),
            "violations": [v.message for v in verdict.violations],
            "claimed_cost": solution.cost,
        }
        reason = verdict.rationale()
        # The solver works in scaled integers: its claimed cost may differ by rounding, never by more.
        slack = 1e-6 * max(1.0, verdict.cost) + 0.5 * (len(problem.customers) + len(solution.routes)) / 1000
        if verdict.feasible and abs(solution.cost - verdict.cost) > slack:
            reason += f"; note: the solver claimed {solution.cost:g}, recomputed {verdict.cost:g}"
        assumed = list(ctx.input_data("extract").get("assumed") or [])
        if assumed:  # the routes are checked against a problem the request does not state: never "verified"
            data["assumed"] = assumed
            reason = (
                f"checked against an ASSUMED problem, not verified against the request ({'; '.join(assumed)}): "
                + reason
            )
            answer = f"feasible for the assumed problem, total distance {verdict.cost:g}" if verdict.feasible else None
            return StepOutput(answer, reason, False, reason, data, candidates=1, strategy="verifier")
        answer = f"feasible, total distance {verdict.cost:g}" if verdict.feasible else None
        return StepOutput(answer, reason, verdict.feasible, reason, data, candidates=1, strategy="verifier")

    # -- report ----------------------------------------------------------------------------------------------
    async def _report(self, ctx: StepContext) -> StepOutput:
        problem = _problem(ctx)
        solution = _solution(ctx)
        verdict = verify(problem, solution)
        reference = best_known(problem.name) if problem.name else None
        gap = None if reference is None or reference <= 0 else 100.0 * (verdict.cost - reference) / reference
        artifacts: tuple[str, ...] = ()
        plot_note = ""
        try:
            from longthink.domains.routing.plot import plot_routes

            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", problem.name) or "routes"
            path = plot_routes(problem, solution, ctx.artifact_path(f"{stem}_routes.png"))
            artifacts = (str(path),)
        except (ConfigError, OSError, ValueError) as exc:
            plot_note = f"no map: {exc}"
        routes = []
        types = problem.vehicle_types
        for i, route in enumerate(solution.routes):
            kind = solution.vehicle_types[i] if i < len(solution.vehicle_types) else 0
            row = {"vehicle": i + 1, "stops": list(route), "load": verdict.loads[i],
                   "distance": round(verdict.distances[i], 4)}  # fmt: skip
            if problem.fleet.mixed and 0 <= kind < len(types):
                row.update(vehicle_type=kind + 1, type_name=types[kind].name, depot=types[kind].depot + 1,
                           capacity=types[kind].capacity)  # fmt: skip
            routes.append(row)
        data = {
            "name": problem.name,
            "routes": routes,
            "total_distance": round(math.fsum(verdict.distances), 4),
            "total_cost": round(verdict.cost, 4),
            "routes_used": len(routes),
            "fleet_vehicles": problem.fleet.vehicles,
            "feasible": verdict.feasible,
            "best_known": reference,
            "gap_pct": None if gap is None else round(gap, 4),
            "plot": artifacts[0] if artifacts else None,
        }
        assumed = list(ctx.input_data("extract").get("assumed") or [])
        data["assumed"] = assumed
        text = render_report(problem, routes, verdict.cost, verdict.feasible, reference, gap, artifacts, plot_note,
                             assumed)  # fmt: skip
        scenarios = ctx.input_data("solve").get("scenarios")
        if isinstance(scenarios, dict):
            data["scenarios"] = scenarios
            text = f"{text}\n{render_scenarios(scenarios)}"
        answer = f"{len(routes)} routes, total distance {verdict.cost:g}"
        return StepOutput(answer, text, verdict.feasible, verdict.rationale(), data, artifacts, 1, "report")

    # -- synthesis -------------------------------------------------------------------------------------------
    def synthesize(self, request: str, plan: Plan, results: Mapping[str, StepOutcome]) -> tuple[str | None, str]:
        lines = []
        for step in plan.steps:
            out = results.get(step.id)
            if out is None:
                lines.append(f"{step.id}: not run")
                continue
            mark = "ok" if out.verified else "FAILED"
            lines.append(f"{step.id} [{mark}]: {out.reason or out.answer or ''}")
        justification = "\n".join(lines)
        report = results.get("report")
        if report is not None and report.answer and report.verified:
            return report.text or report.answer, justification
        failed = next((s.id for s in plan.steps if not _verified(results.get(s.id))), None)
        if failed is None:
            return None, justification
        out = results.get(failed)
        why = (out.reason if out is not None else "") or "no result"
        return None, f"routing failed at step {failed}: {why}\n{justification}"


def _reading(request: str) -> StructuredReading:
    """The rule-based reading of ``request``'s text, with the answers (or assumed defaults) added to it."""
    text = request_text(request)
    return read_request(without_facts(text), added_facts(text))


def _read_reason(reading: StructuredReading) -> str:
    kinds = sorted({c.source for c in reading.customers})
    units = f"; {', '.join(reading.notes)}" if reading.notes else ""
    return f"read by rule from the request's structure ({', '.join(kinds)}; {len(reading.customers)} customers{units})"


def _read(
    problem: RoutingProblem, read_by: str, reason: str, data: dict[str, Any], assumed: list[str], samples: int = 0
) -> StepOutput:
    """The extract step's output for ``problem``: ``read_by`` says who read it, ``assumed`` what it rests on that the
    request does not state (the verify step then never says "verified")."""
    data |= {"problem": problem.model_dump(mode="json"), "read_by": read_by, "assumed": assumed}
    data.setdefault("extraction", {"method": "structure", "samples": 0, "accepted": 0, "votes": 0, "parts": [],
                                   "readings": []})  # fmt: skip
    if assumed:
        reason = f"{reason}; ASSUMED: {'; '.join(assumed)}"
    strategy = "structure" if read_by == "structure" else "self_consistency"
    return StepOutput(describe_problem(problem), problem.model_dump_json(), True, reason, data, candidates=samples,
                      strategy=strategy)  # fmt: skip


def _disagreement(extraction: Extraction) -> str:
    """How the accepted model readings disagree ("" when a majority of them agrees on every part)."""
    if extraction.parts and not extraction.readings:
        for part in extraction.parts:
            n = _pool(part.readings)
            if part.votes * 2 <= n:
                return f"the model's readings of {part.passage.key} disagree ({part.votes} of {n} agree)"
        return ""
    n = _pool(extraction.readings)
    if n and extraction.votes * 2 <= n:
        return f"the model's readings disagree ({extraction.votes} of {n} agree)"
    return ""


def _pool(readings: Sequence[Reading | PartReading]) -> int:
    """How many readings voted: the accepted complete ones, else the accepted ones."""
    return sum(r.accepted and r.complete for r in readings) or sum(r.accepted for r in readings)


def _same_values(a: RoutingProblem, b: RoutingProblem) -> bool:
    """The same problem whatever the customers' ids and names, and whatever one unit its amounts are counted in."""

    def key(p: RoutingProblem) -> tuple[Any, ...]:
        cap = p.fleet.capacity
        stops = sorted((c.x, c.y, Fraction(c.demand, cap), c.ready, c.due, c.service) for c in p.customers)
        return p.depot, p.fleet.vehicles, p.time_windows, tuple(stops)

    return key(a) == key(b)


def _problem_files(request: str) -> dict[str, str]:
    return {n: c for n, c in attached_files(request).items() if PurePath(n).suffix.lower() in PROBLEM_SUFFIXES}


def _first_int(pattern: re.Pattern[str], text: str) -> int | None:
    m = pattern.search(text)
    if m is None:
        return None
    value = next(g for g in m.groups() if g is not None)
    return int(value) if int(value) > 0 else None


def _problem(ctx: StepContext) -> RoutingProblem:
    raw = ctx.input_data("extract").get("problem")
    if raw is None:
        raise ConfigError("the extract step produced no routing problem", field="extract")
    return RoutingProblem.model_validate(raw)


def _answer_json(solution: RoutingSolution) -> dict[str, Any]:
    """A solution as the answer's JSON: its routes and, for a mixed fleet, each route's vehicle type."""
    out: dict[str, Any] = {"routes": [list(r) for r in solution.routes]}
    if solution.vehicle_types:
        out["vehicle_types"] = list(solution.vehicle_types)
    return out


def _solution(ctx: StepContext) -> RoutingSolution:
    raw = ctx.input_data("solve").get("solution")
    if raw is None:
        raise ConfigError("the solve step produced no routes", field="solve")
    return RoutingSolution.model_validate(raw)


def _candidate(spec: Problem, index: int, solution: RoutingSolution) -> Candidate:
    routes = json.dumps(_answer_json(solution))
    return Candidate(
        id=f"{spec.id}/pyvrp{index}",
        problem_id=spec.id,
        index=index,
        text=solution.summary(),
        answer=routes,
        parse_error=None,
        finish_reason="stop",
        prompt_tokens=0,
        completion_tokens=0,
        latency_s=solution.runtime_s,
        model=solution.solver,
        prompt_hash=prompt_hash(spec.prompt, {"seed": solution.seed}),
        seed=solution.seed,
    )


def _verified(out: StepOutcome | None) -> bool:
    return out is not None and out.verified
