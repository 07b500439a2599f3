"""The typed routing problem (depot, customers, fleet, optional time windows) and a solver's solution.

Pydantic models: they sit at the boundary (files, JSON, model output), so every check names its culprit
("customer 7: demand 120 exceeds the vehicle capacity 100"). A problem also fixes how distances are
measured (:data:`Rounding`), so a solver and the verifier agree on what a route costs:

- ``"round"``: Euclidean distance rounded to the nearest integer (TSPLIB ``nint``), the CVRPLIB convention
  of the Augerat A/B/P and Christofides-Eilon E sets, whose best-known values are quoted in these units;
- ``"dimacs"``: Euclidean distance truncated to one decimal, the convention of Solomon's VRPTW best-knowns;
- ``"exact"``: the Euclidean distance as a float (the default for problems typed in by a user or a model).

Travel time equals distance (one distance unit per time unit), as in Solomon's instances.

The fleet is fixed (at most ``Fleet.vehicles`` routes) only where the source says so, by its format's convention
(:mod:`.io`): a fleet-size field in the file (CVRPLIB ``VEHICLES``, Solomon ``VEHICLE NUMBER``), the ``k`` of a
name in the classical CVRPLIB sets (A, B, E, F, M, P: their best-known values use exactly ``k`` routes), or a
request that states how many vehicles there are. Otherwise ``vehicles`` is None and the fleet is unlimited: in
CVRPLIB's X set the ``k`` of a name such as ``X-n101-k25`` is the minimum number of routes, and best-known
solutions use more.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

Rounding = Literal["round", "dimacs", "exact"]


def euclidean(x1: float, y1: float, x2: float, y2: float, rounding: Rounding) -> float:
    """The distance between two points under a rounding convention (see the module docstring)."""
    d = math.hypot(x1 - x2, y1 - y2)
    if rounding == "round":
        return float(math.floor(d + 0.5))
    if rounding == "dimacs":
        return math.floor(10.0 * d + 1e-9) / 10.0
    return d


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Depot(_Frozen):
    """Where every route starts and ends; ``ready``/``due`` bound the vehicles' working day."""

    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)
    ready: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    due: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.due is not None and self.ready > self.due:
            raise ValueError(f"depot: ready time {self.ready:g} is after its due time {self.due:g}")
        return self


class Customer(_Frozen):
    """A stop to serve: ``id`` is a positive integer (0 means the depot in route listings)."""

    id: int = Field(ge=1)
    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)
    demand: int = Field(ge=0)
    ready: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    due: float | None = Field(default=None, allow_inf_nan=False)
    service: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    name: str = ""

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.due is not None and self.ready > self.due:
            raise ValueError(f"customer {self.id}: ready time {self.ready:g} is after its due time {self.due:g}")
        return self

    @property
    def label(self) -> str:
        return f"customer {self.id}" + (f" ({self.name})" if self.name else "")


class VehicleType(_Frozen):
    """One kind of vehicle in a mixed fleet: what it carries, how many there are (``count`` None: unlimited), the
    depot its routes start and end at (an index into :attr:`RoutingProblem.all_depots`), what a route costs
    (``fixed_cost`` once plus ``unit_cost`` per distance unit) and the longest route it may drive
    (``max_distance``) or work (``max_duration``: travel, waiting and service time, depot to depot)."""

    name: str = ""
    capacity: int = Field(ge=1)
    count: int | None = Field(default=None, ge=1)
    depot: int = Field(default=0, ge=0)
    fixed_cost: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    unit_cost: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    max_distance: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_duration: float | None = Field(default=None, gt=0, allow_inf_nan=False)

    def describe(self) -> str:
        """``"4 x capacity 80 at depot 2, at most 310 long"``-style text."""
        parts = [f"{'unlimited' if self.count is None else self.count} x capacity {self.capacity}"]
        if self.name:
            parts[0] = f"{self.name}: {parts[0]}"
        parts.append(f"at depot {self.depot + 1}")
        if self.fixed_cost or self.unit_cost != 1.0:
            parts.append(f"cost {self.fixed_cost:g} + {self.unit_cost:g}/distance")
        if self.max_distance is not None:
            parts.append(f"at most {self.max_distance:g} long")
        if self.max_duration is not None:
            parts.append(f"at most {self.max_duration:g} of work")
        return ", ".join(parts)


class Fleet(_Frozen):
    """The vehicles: identical ones (what each carries and, for a fixed fleet, how many there are; ``vehicles``
    None: unlimited, as many routes as the solution needs), or a mixed fleet of vehicle ``types``. For a mixed
    fleet ``capacity`` is the largest type's and ``vehicles`` the types' total (None when one is unlimited); both
    are filled in from the types when left out."""

    vehicles: int | None = Field(default=None, ge=1)
    capacity: int = Field(ge=1)
    types: tuple[VehicleType, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _from_types(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("types"):
            types = [t if isinstance(t, VehicleType) else VehicleType.model_validate(t) for t in data["types"]]
            counts = [t.count for t in types]
            total = None if None in counts else sum(c for c in counts if c is not None)
            data = {"capacity": max(t.capacity for t in types), "vehicles": total, **data}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.types:
            counts = [t.count for t in self.types]
            total = None if None in counts else sum(c for c in counts if c is not None)
            if self.capacity != max(t.capacity for t in self.types):
                raise ValueError(f"fleet: capacity {self.capacity} is not the largest vehicle type's")
            if self.vehicles != total:
                raise ValueError(f"fleet: {self.vehicles} vehicles, but the types add up to {total or 'unlimited'}")
        return self

    @property
    def fixed(self) -> bool:
        """Whether the number of vehicles (routes) is limited."""
        return self.vehicles is not None

    @property
    def mixed(self) -> bool:
        """Whether the fleet is given as vehicle types (several kinds, depots, costs or route limits)."""
        return bool(self.types)

    def describe(self) -> str:
        """``"3 vehicles x capacity 50"``, ``"unlimited vehicles x capacity 50"``, or the types, one by one."""
        if self.types:
            return "; ".join(t.describe() for t in self.types)
        return f"{self.vehicles if self.fixed else 'unlimited'} vehicles x capacity {self.capacity}"


class RoutingProblem(_Frozen):
    """A capacitated vehicle routing problem, with time windows when ``time_windows`` is true.

    Validation names the culprit: duplicate ids, a demand above the capacity, a total demand above a fixed
    fleet's, a window with ready > due, a time window given while ``time_windows`` is false (it would be
    silently ignored otherwise), and, with time windows, a customer no vehicle can reach in time.
    """

    name: str = "problem"
    depot: Depot
    customers: tuple[Customer, ...] = Field(min_length=1)
    fleet: Fleet
    time_windows: bool = False
    rounding: Rounding = "exact"
    depots: tuple[Depot, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _first_depot(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("depots") and data.get("depot") is None:
            data = {**data, "depot": data["depots"][0]}
        return data

    @property
    def all_depots(self) -> tuple[Depot, ...]:
        """Every depot: ``depots`` when the problem has several (the first is ``depot``), else ``(depot,)``."""
        return self.depots or (self.depot,)

    @property
    def vehicle_types(self) -> tuple[VehicleType, ...]:
        """The fleet as vehicle types: its own, or one type of identical vehicles at the only depot."""
        if self.fleet.types:
            return self.fleet.types
        return (VehicleType(capacity=self.fleet.capacity, count=self.fleet.vehicles),)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.depots and self.depots[0] != self.depot:
            raise ValueError("depot must be the first of depots")
        if len(self.all_depots) > 1 and not self.fleet.types:
            raise ValueError("with several depots, give the fleet as vehicle types (each names its depot)")
        for i, t in enumerate(self.fleet.types):
            if t.depot >= len(self.all_depots):
                raise ValueError(f"vehicle type {i + 1}: depot {t.depot + 1}, but there are {len(self.all_depots)}")
        seen: set[int] = set()
        for c in self.customers:
            if c.id in seen:
                raise ValueError(f"duplicate customer id {c.id}")
            seen.add(c.id)
        capacity = self.fleet.capacity
        for c in self.customers:
            if c.demand > capacity:
                raise ValueError(f"{c.label}: demand {c.demand} exceeds the vehicle capacity {capacity}")
        total = sum(c.demand for c in self.customers)
        vehicles = self.fleet.vehicles
        if vehicles is not None and not self.fleet.types and total > vehicles * capacity:
            raise ValueError(
                f"total demand {total} exceeds the fleet's capacity "
                f"{vehicles} vehicles x {capacity} = {vehicles * capacity}"
            )
        if vehicles is not None and self.fleet.types:
            room = sum((t.count or 0) * t.capacity for t in self.fleet.types)
            if total > room:
                raise ValueError(f"total demand {total} exceeds the fleet's capacity {room} (all vehicle types)")
        if self.time_windows:
            self._reachable()
        else:
            for c in self.customers:
                if c.due is not None or c.ready > 0:
                    raise ValueError(f"{c.label} has a time window but time_windows is false")
            if self.depot.due is not None or self.depot.ready > 0:
                raise ValueError("the depot has a time window but time_windows is false")
        return self

    def _reachable(self) -> None:
        if len(self.all_depots) > 1:
            return  # which depot serves a customer is the solver's choice: the verifier checks each route
        d = self.depot
        for c in self.customers:
            arrival = max(c.ready, d.ready + self.travel(d.x, d.y, c.x, c.y))
            if c.due is not None and arrival > c.due + TIME_TOLERANCE:
                raise ValueError(
                    f"{c.label} cannot be reached in time: the earliest arrival from the depot is "
                    f"{arrival:g}, after its due time {c.due:g}"
                )
            back = arrival + c.service + self.travel(c.x, c.y, d.x, d.y)
            if d.due is not None and back > d.due + TIME_TOLERANCE:
                raise ValueError(
                    f"{c.label} cannot be served within the depot's hours: a vehicle serving it is back "
                    f"at {back:g}, after the depot's due time {d.due:g}"
                )

    def travel(self, x1: float, y1: float, x2: float, y2: float) -> float:
        """Distance (and travel time) between two points under this problem's rounding."""
        return euclidean(x1, y1, x2, y2, self.rounding)

    def customer(self, customer_id: int) -> Customer:
        for c in self.customers:
            if c.id == customer_id:
                return c
        raise KeyError(customer_id)

    @property
    def total_demand(self) -> int:
        return sum(c.demand for c in self.customers)

    @property
    def max_routes(self) -> int:
        """The most routes a solution may use: the fixed fleet's size, else one per customer (unlimited)."""
        return self.fleet.vehicles if self.fleet.vehicles is not None else len(self.customers)

    def type_routes(self, vehicle_type: VehicleType) -> int:
        """The most routes vehicles of this type may drive: its count, else one per customer (unlimited)."""
        return vehicle_type.count if vehicle_type.count is not None else len(self.customers)


TIME_TOLERANCE = 1e-6
"""Slack allowed in time comparisons, for float sums of travel times (``0.1 + 0.2 > 0.3``)."""


class RoutingSolution(_Frozen):
    """Routes as customer ids in visiting order (the depot is implicit at both ends), as a solver reports them.

    ``distances`` and ``loads`` are per route; ``cost`` is the total distance, or with a mixed fleet what the routes
    cost (each type's fixed cost plus its cost per distance). ``vehicle_types`` gives each route's type (an index
    into :attr:`RoutingProblem.vehicle_types`; empty: the only type). These are the solver's claims:
    :func:`longthink.domains.routing.verify.verify` recomputes them from the problem.
    """

    routes: tuple[tuple[int, ...], ...]
    cost: float
    vehicle_types: tuple[int, ...] = ()
    distances: tuple[float, ...] = ()
    loads: tuple[int, ...] = ()
    solver: str = ""
    runtime_s: float = 0.0
    seed: int | None = None

    def summary(self) -> str:
        lines = [f"{len(self.routes)} routes, total {'cost' if self.vehicle_types else 'distance'} {self.cost:g}"]
        for i, route in enumerate(self.routes):
            extra = []
            if i < len(self.loads):
                extra.append(f"load {self.loads[i]}")
            if i < len(self.distances):
                extra.append(f"distance {self.distances[i]:g}")
            if i < len(self.vehicle_types):
                extra.insert(0, f"vehicle type {self.vehicle_types[i] + 1}")
            stops = " -> ".join(str(c) for c in route)
            lines.append(f"route {i + 1}: depot -> {stops} -> depot" + (f" ({', '.join(extra)})" if extra else ""))
        return "\n".join(lines)
