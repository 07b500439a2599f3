"""The routing pack's answer text: routes per vehicle (by type and depot for a mixed fleet), the total, the gap to a
best-known value and the map; for uncertain demand, the chosen plan in every scenario beside the mean-scenario plan."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from longthink.domains.routing.extract import describe_problem
from longthink.domains.routing.problem import RoutingProblem


def render_report(
    problem: RoutingProblem,
    routes: list[dict[str, Any]],
    total: float,
    feasible: bool,
    reference: float | None,
    gap: float | None,
    artifacts: tuple[str, ...],
    plot_note: str = "",
    assumed: Sequence[str] = (),
) -> str:
    """The human-readable answer: what was assumed (first, when anything was), one line per vehicle, the total, the
    gap and the map. Routes for an assumed problem are "feasible for the assumed problem", never "verified"."""
    names = {c.id: c.name for c in problem.customers if c.name}
    head = f"Routes for {problem.name} ({describe_problem(problem)}):"
    lines = []
    if assumed:
        lines.append("Assumed (not stated in the request; the routes are checked against this assumed problem, not "
                     "verified against the request):")  # fmt: skip
        lines += [f"- {a}" for a in assumed]
    lines.append(head)
    for r in routes:
        stops = " -> ".join(f"{s} ({names[s]})" if s in names else str(s) for s in r["stops"])
        home = f"depot {r['depot']}" if "depot" in r and len(problem.all_depots) > 1 else "depot"
        kind = ""
        if "vehicle_type" in r:
            kind = f" ({r['type_name'] or 'type ' + str(r['vehicle_type'])})"
        capacity = r.get("capacity", problem.fleet.capacity)
        lines.append(
            f"  vehicle {r['vehicle']}{kind}: {home} -> {stops} -> {home} | load {r['load']}/{capacity}, "
            f"distance {r['distance']:g}"
        )
    status = "verified feasible" if feasible else "NOT feasible"
    if assumed:
        status = "feasible for the assumed problem, not verified" if feasible else "NOT feasible"
    limit = problem.fleet.vehicles
    fleet = f"at most {limit} vehicles" if limit is not None else "unlimited"
    if problem.fleet.mixed:
        distance = math.fsum(float(r["distance"]) for r in routes)
        lines.append(f"Total cost {total:g} (distance {distance:g}) with {len(routes)} routes "
                     f"(fleet: {problem.fleet.describe()}; {status}).")  # fmt: skip
    else:
        lines.append(f"Total distance {total:g} with {len(routes)} routes (fleet: {fleet}; {status}).")
    if reference is not None and gap is not None:
        lines.append(f"Best-known value for {problem.name}: {reference:g}; gap {gap:+.2f}%.")
    if artifacts:
        lines.append(f"Map: {artifacts[0]}")
    elif plot_note:
        lines.append(plot_note)
    return "\n".join(lines)


def render_scenarios(scenarios: Mapping[str, Any]) -> str:
    """The robust plan's section of the report: the uncertainty, the chosen plan against the mean-scenario plan,
    and the chosen plan's cost and detours in every scenario."""
    chosen, mean = scenarios["chosen"], scenarios.get("mean_plan")
    per = scenarios["per_scenario"]
    demand = scenarios.get("share", 1.0) > 0
    how_planned = []
    if demand:
        how_planned.append(f"with demand {100 * chosen['buffer']:g}% of the way to the highest")
    if scenarios.get("breakdown"):
        spare = chosen.get("spare", -1)
        names = scenarios.get("types") or []
        held = (names[spare] if 0 <= spare < len(names) else "") or "vehicle"
        how_planned.append(f"holding back one {held} as a spare" if spare >= 0 else "with no spare held back")
    title = "Uncertain demand" if demand and not scenarios.get("breakdown") else "Uncertainty"
    lines = [f"{title} ({scenarios['uncertainty']}):",
             f"  this plan: worst {chosen['worst']:g}, expected {chosen['expected']:g}, served as planned in "
             f"{round(chosen['feasible_share'] * len(per))} of {len(per)} scenarios (planned "
             f"{' and '.join(how_planned)})"]  # fmt: skip
    if mean is not None:
        which = "the plan for the mean scenario" if demand else "the cheapest plan with no spare"
        lines.append(f"  {which}: worst {mean['worst']:g}, expected {mean['expected']:g}, "
                     f"served as planned in {round(mean['feasible_share'] * len(per))} of {len(per)}")  # fmt: skip
    notes = ["extra trips back to the depot to unload when a vehicle is full"] if demand else []
    if scenarios.get("breakdown"):
        notes.append("a second trip when no spare takes over the route of the vehicle out of service")
    lines.append(f"  per scenario (cost; {'; '.join(notes)}):")
    start = 0
    for i in range(1, len(per) + 1):  # consecutive scenarios with the same outcome share a line
        if i < len(per) and (per[i]["cost"], per[i]["detours"]) == (per[start]["cost"], per[start]["detours"]):
            continue
        row = per[start]
        n = int(row["detours"])
        how = "as planned" if n == 0 else f"{n} extra trip{'s' if n > 1 else ''}"
        which = f"{start + 1}. {row['scenario']}"
        if i - start == len(per) > 1:
            which = f"all {len(per)} scenarios"
        elif i - start > 1:
            which = f"{start + 1}-{i}. {row['scenario']} to {per[i - 1]['scenario']}"
        lines.append(f"    {which}: {row['cost']:g} ({how})")
        start = i
    return "\n".join(lines)
