"""A PNG map of routes: one colour per route (from its vehicle's depot), the depots as black squares, customers
labelled by id.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global state, no display needed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from longthink.domains.routing.problem import RoutingProblem, RoutingSolution
from longthink.errors import ConfigError


def plot_routes(
    problem: RoutingProblem,
    routes: RoutingSolution | Iterable[Sequence[int]],
    path: str | Path,
    *,
    title: str | None = None,
    labels: bool = True,
    dpi: int = 120,
) -> Path:
    """Draw ``routes`` of ``problem`` to the PNG file ``path`` and return its path.

    Unknown customer ids are skipped (the verifier reports them); customers on no route are drawn grey.
    """
    try:
        from matplotlib import colormaps
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError('plotting routes needs matplotlib: pip install "longthink[routing]"') from None

    route_list = [tuple(r) for r in (routes.routes if isinstance(routes, RoutingSolution) else routes)]
    kinds = routes.vehicle_types if isinstance(routes, RoutingSolution) else ()
    by_id = {c.id: c for c in problem.customers}
    types, depots = problem.vehicle_types, problem.all_depots
    fig = Figure(figsize=(7, 7))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    cmap = colormaps["tab20" if len(route_list) > 10 else "tab10"]
    colours = [cmap(i % cmap.N) for i in range(len(route_list))]
    served: set[int] = set()
    for i, route in enumerate(route_list):
        stops = [by_id[c] for c in route if c in by_id]
        served.update(c.id for c in stops)
        kind = kinds[i] if i < len(kinds) and 0 <= kinds[i] < len(types) else 0
        depot = depots[types[kind].depot]
        xs = [depot.x, *(c.x for c in stops), depot.x]
        ys = [depot.y, *(c.y for c in stops), depot.y]
        load = sum(c.demand for c in stops)
        ax.plot(xs, ys, "-o", color=colours[i], markersize=4, linewidth=1.4, label=f"route {i + 1} (load {load})")
    unserved = [c for c in problem.customers if c.id not in served]
    if unserved:
        ax.scatter([c.x for c in unserved], [c.y for c in unserved], color="0.6", s=18, label="not served", zorder=3)
    label = "depots" if len(depots) > 1 else "depot"
    ax.scatter([d.x for d in depots], [d.y for d in depots], marker="s", s=120, color="black", label=label, zorder=4)
    if labels and len(problem.customers) <= 120:
        for c in problem.customers:
            ax.annotate(str(c.id), (c.x, c.y), textcoords="offset points", xytext=(3, 3), fontsize=6)
    if title is None:
        title = problem.name
        if isinstance(routes, RoutingSolution):
            title += f": {len(route_list)} routes, {'cost' if kinds else 'distance'} {routes.cost:g}"
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="datalim")
    if len(route_list) <= 20:
        ax.legend(fontsize=7, loc="best")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=dpi)
    return out
