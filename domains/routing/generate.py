"""Deterministic plain-English routing requests with their ground truth, for benchmarks and tests.

:func:`generate_request` draws a small instance from a seed (a depot, 5-8 customers with integer coordinates
and demands, a fleet) and renders it in one of several phrasings. With time windows, the windows are built
around the arrival times of a feasible plan (customers split into capacity-feasible routes, driven in order),
so the ground-truth problem always has a feasible solution.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from longthink.domains.routing.problem import RoutingProblem

CITIES = ("Lyon", "Leeds", "Porto", "Gdansk", "Turin", "Ghent", "Malmo", "Bilbao", "Graz", "Brno")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


@dataclass(frozen=True, slots=True)
class GeneratedRequest:
    """A request's text and the problem it states (``truth``)."""

    id: str
    text: str
    truth: RoutingProblem


def _plan_windows(rng: random.Random, depot: tuple[int, int], stops: list[dict[str, int]], capacity: int) -> None:
    """Give every stop a window around its arrival time in a feasible plan (greedy routes in list order)."""
    route_load, clock, here = 0, 0.0, depot
    for stop in stops:
        if route_load + stop["demand"] > capacity:  # start a new route from the depot
            route_load, clock, here = 0, 0.0, depot
        clock += math.hypot(stop["x"] - here[0], stop["y"] - here[1])
        early, late = rng.randint(5, 40), rng.randint(10, 60)
        stop["ready"] = max(0, 5 * math.floor((clock - early) / 5))
        stop["due"] = 5 * math.ceil((clock + late) / 5)
        route_load += stop["demand"]
        here = (stop["x"], stop["y"])


def generate_request(
    seed: int, *, customers: tuple[int, int] = (5, 8), windows: bool | None = None
) -> GeneratedRequest:
    """The request number ``seed``: ``customers`` is the (min, max) count; time windows on every third seed
    unless ``windows`` says otherwise."""
    rng = random.Random(f"routing-request-{seed}")
    n = rng.randint(*customers)
    timed = seed % 3 == 2 if windows is None else windows
    depot = (rng.randint(0, 100), rng.randint(0, 100))
    points: set[tuple[int, int]] = {depot}
    stops: list[dict[str, int]] = []
    for i in range(1, n + 1):
        x, y = rng.randint(0, 100), rng.randint(0, 100)
        while (x, y) in points:
            x, y = rng.randint(0, 100), rng.randint(0, 100)
        points.add((x, y))
        stops.append({"id": i, "x": x, "y": y, "demand": rng.randint(5, 30)})
    capacity = rng.choice((40, 50, 60, 80, 100))
    total = sum(s["demand"] for s in stops)
    if timed:
        _plan_windows(rng, depot, stops, capacity)
        vehicles = _greedy_routes(stops, capacity) + rng.randint(0, 1)
    else:
        vehicles = math.ceil(total / capacity) + rng.randint(0, 1)
    truth = RoutingProblem.model_validate(
        {
            "name": f"request-{seed}",
            "depot": {"x": depot[0], "y": depot[1]},
            "customers": stops,
            "fleet": {"vehicles": vehicles, "capacity": capacity},
            "time_windows": timed,
            "rounding": "exact",
        }
    )
    return GeneratedRequest(f"nl{seed:02d}", render(rng, truth), truth)


def _greedy_routes(stops: list[dict[str, int]], capacity: int) -> int:
    routes, load = 1, 0
    for stop in stops:
        if load + stop["demand"] > capacity:
            routes, load = routes + 1, 0
        load += stop["demand"]
    return routes


def render(rng: random.Random, problem: RoutingProblem) -> str:
    """``problem`` in plain English, in a phrasing drawn from ``rng``."""
    d, fleet = problem.depot, problem.fleet
    if fleet.vehicles is None:
        raise ValueError("a generated request states its fleet size")
    city = rng.choice(CITIES)
    count = (
        _NUMBER_WORDS[fleet.vehicles]
        if fleet.vehicles < len(_NUMBER_WORDS) and rng.random() < 0.4
        else str(fleet.vehicles)
    )
    intro = rng.choice(
        (
            f"We run {count} trucks, each carrying up to {fleet.capacity} units, out of our {city} depot at "
            f"({d.x:g}, {d.y:g}).",
            f"Plan delivery routes: {count} vehicles with capacity {fleet.capacity} start and end at the {city} "
            f"depot, located at ({d.x:g}, {d.y:g}).",
            f"Our {city} warehouse at ({d.x:g}, {d.y:g}) is the depot for {count} vans of {fleet.capacity} units each.",
        )
    )
    noun = rng.choice(("Store", "Customer", "Shop"))
    style = rng.randrange(3)
    window_style = rng.randrange(3)
    parts = []
    for c in problem.customers:
        if style == 0:
            line = f"{noun} {c.id} at ({c.x:g}, {c.y:g}) needs {c.demand} units"
        elif style == 1:
            line = f"{noun.lower()} {c.id}: location ({c.x:g}, {c.y:g}), demand {c.demand}"
        else:
            line = f"{noun} {c.id} is at ({c.x:g}, {c.y:g}) and orders {c.demand} units"
        if c.due is not None:
            line += (
                f", between time {c.ready:g} and {c.due:g}",
                f", time window {c.ready:g}-{c.due:g}",
                f", open from {c.ready:g} to {c.due:g}",
            )[window_style]
        parts.append(line)
    body = "\n".join(f"- {p}." for p in parts) if rng.random() < 0.5 else " ".join(f"{p}." for p in parts)
    goal = rng.choice(
        ("Minimise the total distance.", "Find the shortest routes.", "Which routes minimise the total distance?")
    )
    tw = (
        " Each stop must be reached inside its time window; travel time equals distance."
        if problem.time_windows
        else ""
    )
    return f"{intro}{tw}\n{body}\n{goal}"
