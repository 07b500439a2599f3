"""The ``routing`` domain pack: detector, planner hints, the route-solver tool, the verifier scorer and the
pipeline (extract -> solve -> verify -> report, see :mod:`.pipeline`).

Importing this module registers the pack in the default domain registry (which imports it on its first
lookup). It lives apart from the package's ``__init__`` because the pipeline and the solver tool
(:mod:`.solver`) import the package's modules. The pack's tools reach an agent through ``DomainPack.tools``:
the engine's default tools are generic only.
"""

from __future__ import annotations

import re

from longthink.domains.registry import DomainPack, register
from longthink.domains.routing.pipeline import RoutingPipeline
from longthink.domains.routing.solver import RouteSolver
from longthink.domains.routing.verify import RoutingVerifier

_DECISIVE = re.compile(
    r"\b(vehicle routing|c?vrp(tw)?|cvrplib)\b|\.vrp\b|\b[abefmpx]-n\d+-k\d+\b|\b(c|r|rc)[12]_?\d{2,3}\b"
)
_STRONG = re.compile(r"\b(depots?|time windows?|trucks?|fleet|vans?|routes?|routing|deliver(y|ies)?|solomon)\b")
_WEAK = re.compile(
    r"\b(capacity|capacities|customers?|stores?|shops?|warehouses?|demands?|vehicles?|logistics|"
    r"minimi[sz]e (the )?(total )?(distance|mileage|travel)|shortest|units?|drivers?|stops?)\b"
)


def detect_routing(request: str) -> float:
    """Confidence in [0, 1] that ``request`` asks for vehicle routes: 1 for an explicit VRP term or a CVRPLIB
    or Solomon instance name ("CVRP", "E-n22-k4", "C101", "x.vrp"); else 0.35 per distinct routing term
    ("depot", "trucks", "time windows", ...) and 0.15 per distinct supporting term ("capacity", "stores", ...)."""
    text = request.lower()
    if _DECISIVE.search(text):
        return 1.0
    strong = {m.group(0) for m in _STRONG.finditer(text)}
    weak = {m.group(0) for m in _WEAK.finditer(text)}
    return min(1.0, 0.35 * len(strong) + 0.15 * len(weak))


PLANNER_HINTS = """\
Vehicle routing. Steps: (1) extract the problem as JSON: depot {x, y}, customers [{id, x, y, demand,
ready?, due?, service?}], fleet {vehicles, capacity}, time_windows; check every demand fits a vehicle and the
total fits the fleet; (2) solve it with the route_solver tool (never invent routes by hand); (3) verify:
every customer served exactly once, loads within capacity, no more routes than vehicles, time windows
kept; (4) answer with the routes as JSON {"routes": [[customer ids in order], ...]} plus each route's load
and distance and the total distance."""

ROUTING = register(
    DomainPack(
        name="routing",
        description="supply-chain vehicle routing: depots, trucks with capacities, customers with demands "
        "and time windows; minimise total distance",
        detect=detect_routing,
        planner_hints=PLANNER_HINTS,
        tools=(RouteSolver(),),
        scorers=(RoutingVerifier(),),
        answer_kind="json",
        pipeline=RoutingPipeline(),
    )
)
