"""Supply-chain routing: capacitated vehicle routing (with time windows), solved by PyVRP, checked by an
independent verifier.

- :mod:`.problem`: the typed problem (one depot or several, identical vehicles or a mixed fleet of vehicle types)
  and solution; :mod:`.io`: CVRPLIB, Solomon, Cordeau (multi-depot), Taillard (mixed fleet), CSV and JSON readers
  and best-known values; :mod:`.verify`: the feasibility verifier and its scorer; :mod:`.plot`: a PNG map;
- :mod:`.structure`: the problem read by rule from the request's own structure (tables, CSV, lists, ``key: value``
  lines; :mod:`.tables`, :mod:`.items`, :mod:`.lexicon`), every value with its span, and what is unclear;
  :mod:`.grounding`: the grounding check every reading must pass, and the questions to ask;
- :mod:`.extract`: the problem from plain English (model extractions checked against the request, voted);
  :mod:`.pipeline`: the pack's plan (extract -> solve -> verify -> report; :mod:`.report` writes the answer);
  :mod:`.generate`: generated requests with their ground truth (benchmark, tests);
- :mod:`.solver`: the PyVRP solver tool (the pack's tool) and the search over solver configurations;
- :mod:`.pack`: the ``routing`` :class:`~longthink.domains.registry.DomainPack` (registered when imported;
  the domain registry imports it on its first lookup).

PyVRP, vrplib and matplotlib (the ``routing`` extra) are imported only when a problem is solved, a
CVRPLIB/Solomon file read, or a map drawn.
"""

from __future__ import annotations

from longthink.domains.routing.io import (
    BestKnown,
    best_known,
    best_known_record,
    read_cordeau,
    read_csv,
    read_json,
    read_problem,
    read_solomon,
    read_taillard,
    read_vrplib,
)
from longthink.domains.routing.plot import plot_routes
from longthink.domains.routing.problem import (
    Customer,
    Depot,
    Fleet,
    Rounding,
    RoutingProblem,
    RoutingSolution,
    VehicleType,
)
from longthink.domains.routing.verify import (
    RoutingVerdict,
    RoutingVerifier,
    Violation,
    parse_routes,
    parse_vehicle_types,
    verify,
)

__all__ = [
    "BestKnown",
    "Customer",
    "Depot",
    "Fleet",
    "Rounding",
    "RoutingProblem",
    "RoutingSolution",
    "RoutingVerdict",
    "RoutingVerifier",
    "VehicleType",
    "Violation",
    "best_known",
    "best_known_record",
    "parse_routes",
    "parse_vehicle_types",
    "plot_routes",
    "read_cordeau",
    "read_csv",
    "read_json",
    "read_problem",
    "read_solomon",
    "read_taillard",
    "read_vrplib",
    "verify",
]
