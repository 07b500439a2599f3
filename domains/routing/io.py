"""Reading routing problems: CVRPLIB (VRPLIB format), Solomon VRPTW, Cordeau's multi-depot (MDVRP) and
Taillard's mixed-fleet (HFVRP) instances, CSV and JSON; best-known values.

Every reader returns a validated :class:`RoutingProblem` or raises :class:`ConfigError` naming the file and
the culprit (line, column, customer). CVRPLIB and Solomon files are parsed by ``vrplib`` (the ``routing``
extra), imported only when such a file is read.

The fleet follows each format's convention (see :mod:`.problem`): a ``vehicles`` argument (a request's "at most
3 trucks"), a CVRPLIB ``VEHICLES`` field, Solomon's ``VEHICLE NUMBER`` and the JSON's ``fleet.vehicles`` fix it; so
does the ``k`` of a name in the classical CVRPLIB sets, whose best-known values use exactly ``k`` routes
(:data:`FIXED_K_SETS`). Otherwise it is unlimited: in the X set (Uchoa et al.) and later ones the ``k`` of a name
is the minimum number of routes, and best-known solutions use more (X-n101-k25: 26 routes).

Customer ids: CVRPLIB nodes are numbered 1..n with the depot first; customers get ids 1..n-1 in file order
(the numbering of CVRPLIB's ``.sol`` files). Solomon customers keep their numbers (depot 0). CSV and JSON
keep the ids they give.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from longthink.domains.routing.problem import Rounding, RoutingProblem
from longthink.errors import ConfigError

_INSTALL_HINT = 'install the routing extra: pip install "longthink[routing]"'


def describe_validation(exc: ValidationError) -> str:
    """A pydantic error as one line per problem, culprit first (``customers.3.demand: ...``)."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"])
        msg = str(e["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _validated(source: str, data: dict[str, Any]) -> RoutingProblem:
    try:
        return RoutingProblem.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid routing problem: {describe_validation(exc)}", field="problem") from None


def _vrplib_instance(path: Path, instance_format: str) -> dict[str, Any]:
    try:
        import vrplib
    except ImportError:
        raise ConfigError(f"reading {path.name} needs vrplib; {_INSTALL_HINT}") from None
    if not path.is_file():
        raise ConfigError(f"no such file: {path}", field="path")
    try:
        # distances are computed from the coordinates under the problem's rounding, never read from the file
        data: dict[str, Any] = vrplib.read_instance(path, instance_format=instance_format, compute_edge_weights=False)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError) as exc:
        # vrplib's parser fails with whatever its last step raised; all of them mean "not this format"
        raise ConfigError(f"{path}: not a readable {instance_format} file ({type(exc).__name__}: {exc})") from None
    return data


def _need(path: Path, data: dict[str, Any], key: str, what: str) -> Any:
    if key not in data:
        raise ConfigError(f"{path}: missing {what}", field=key)
    return data[key]


def read_vrplib(path: str | Path, *, vehicles: int | None = None, rounding: Rounding = "round") -> RoutingProblem:
    """A CVRPLIB instance (``.vrp``, coordinates with ``EDGE_WEIGHT_TYPE : EUC_2D``, one depot).

    The fleet is fixed at ``vehicles`` if given, else at the file's ``VEHICLES`` field, else at the ``k`` of a
    name in a classical set (:data:`FIXED_K_SETS`); otherwise it is unlimited (the X set's convention: ``k`` is
    the minimum number of routes). Distances follow ``rounding`` ("round": CVRPLIB's convention for the A, B, E,
    P and X sets).
    """
    path = Path(path)
    data = _vrplib_instance(path, "vrplib")
    weight_type = str(data.get("edge_weight_type", "")).upper()
    if weight_type != "EUC_2D":
        raise ConfigError(
            f"{path}: EDGE_WEIGHT_TYPE {weight_type or '(none)'} is not supported, only EUC_2D coordinates",
            field="edge_weight_type",
        )
    coords = _need(path, data, "node_coord", "NODE_COORD_SECTION")
    demands = _need(path, data, "demand", "DEMAND_SECTION")
    capacity = _need(path, data, "capacity", "CAPACITY")
    depots = [int(d) for d in data.get("depot", [0])]
    if len(depots) != 1:
        raise ConfigError(f"{path}: {len(depots)} depots; only single-depot instances are supported", field="depot")
    if len(coords) != len(demands):
        raise ConfigError(f"{path}: {len(coords)} coordinates but {len(demands)} demands", field="demand")
    name = str(data.get("name") or path.stem)
    windows = data.get("time_window")
    service = data.get("service_time", 0)
    depot_index = depots[0]
    if not 0 <= depot_index < len(coords):
        raise ConfigError(f"{path}: depot node {depot_index + 1} is not among the {len(coords)} nodes", field="depot")
    customers: list[dict[str, Any]] = []
    for index in range(len(coords)):
        if index == depot_index:
            continue
        row: dict[str, Any] = {
            "id": len(customers) + 1,
            "x": float(coords[index][0]),
            "y": float(coords[index][1]),
            "demand": int(demands[index]),
        }
        if windows is not None:
            row |= {"ready": float(windows[index][0]), "due": float(windows[index][1])}
            row["service"] = float(service if isinstance(service, int | float) else service[index])
        customers.append(row)
    depot: dict[str, Any] = {"x": float(coords[depot_index][0]), "y": float(coords[depot_index][1])}
    if windows is not None:
        depot |= {"ready": float(windows[depot_index][0]), "due": float(windows[depot_index][1])}
    if vehicles is None:
        vehicles = _file_fleet(data, name)
    return _validated(
        str(path),
        {
            "name": name,
            "depot": depot,
            "customers": customers,
            "fleet": {"vehicles": vehicles, "capacity": int(capacity)},
            "time_windows": windows is not None,
            "rounding": rounding,
        },
    )


FIXED_K_SETS = frozenset("ABEFMP")
"""The classical CVRPLIB sets (Augerat A, B, P; Christofides-Eilon E; Fisher F; Christofides-Mingozzi-Toth M)
whose best-known values are for a fleet of exactly the ``k`` of the name: with more routes some cost less than
their proven optimum (E-n30-k3: 503 with four routes, optimum 534 with three), so ``k`` is their fleet."""

_NAME_K = re.compile(r"^([A-Z])-n\d+-k(\d+)$")


def _file_fleet(data: dict[str, Any], name: str) -> int | None:
    """A CVRPLIB file's own fleet: its ``VEHICLES`` field, else the ``k`` of a classical set's name, else None
    (unlimited)."""
    if "vehicles" in data:
        return int(data["vehicles"])
    match = _NAME_K.match(name)
    return int(match.group(2)) if match and match.group(1) in FIXED_K_SETS else None


def read_solomon(path: str | Path, *, rounding: Rounding = "dimacs") -> RoutingProblem:
    """A Solomon VRPTW instance (``C101.txt``): depot row 0, time windows and service times; the fleet is fixed at
    the file's ``VEHICLE NUMBER``.

    Distances follow ``rounding`` ("dimacs", truncation to one decimal: the convention of the best-known
    values for these instances).
    """
    path = Path(path)
    data = _vrplib_instance(path, "solomon")
    coords = _need(path, data, "node_coord", "customer coordinates")
    demands = _need(path, data, "demand", "customer demands")
    windows = _need(path, data, "time_window", "time windows")
    service = _need(path, data, "service_time", "service times")
    customers = [
        {
            "id": index,
            "x": float(coords[index][0]),
            "y": float(coords[index][1]),
            "demand": int(demands[index]),
            "ready": float(windows[index][0]),
            "due": float(windows[index][1]),
            "service": float(service[index]),
        }
        for index in range(1, len(coords))
    ]
    return _validated(
        str(path),
        {
            "name": str(data.get("name") or path.stem),
            "depot": {
                "x": float(coords[0][0]),
                "y": float(coords[0][1]),
                "ready": float(windows[0][0]),
                "due": float(windows[0][1]),
            },
            "customers": customers,
            "fleet": {
                "vehicles": int(_need(path, data, "vehicles", "VEHICLE NUMBER")),
                "capacity": int(_need(path, data, "capacity", "VEHICLE CAPACITY")),
            },
            "time_windows": True,
            "rounding": rounding,
        },
    )


def _numbers(path: Path, text: str) -> list[list[float]]:
    """Each non-empty line of ``text`` as numbers; a ConfigError names the first line that is not."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append([float(v) for v in line.split()])
            except ValueError:
                raise ConfigError(f"{path}: line {number} is not a row of numbers: {line.strip()[:80]!r}") from None
    return rows


def read_cordeau(path: str | Path, *, rounding: Rounding = "exact") -> RoutingProblem:
    """A multi-depot instance in Cordeau's format (VRPSolverEasy's ``MDVRP/p01``): a first line ``2 m n t`` (type 2,
    ``m`` vehicles at each of the ``t`` depots, ``n`` customers), ``t`` lines ``D Q`` (a route's longest duration,
    0 for none, and the capacity), ``n`` customer lines ``i x y d q ...`` (``d`` the service time, ``q`` the
    demand) and ``t`` depot lines ``i x y ...``. Each depot's vehicles become one vehicle type; distances are
    exact Euclidean (the convention of the published best-known values)."""
    path = Path(path)
    rows = _numbers(path, _text_of(path)[0])
    if not rows or len(rows[0]) != 4 or int(rows[0][0]) != 2:
        raise ConfigError(f"{path}: not a multi-depot instance of Cordeau's format (a first line '2 m n t')")
    m, n, t = (int(v) for v in rows[0][1:])
    if len(rows) < 1 + t + n + t:
        raise ConfigError(f"{path}: {len(rows)} lines, but {t} depots and {n} customers need {1 + 2 * t + n}")
    limits, people, places = rows[1 : 1 + t], rows[1 + t : 1 + t + n], rows[1 + t + n : 1 + t + n + t]
    for i, row in enumerate([*people, *places]):
        if len(row) < 5:
            raise ConfigError(f"{path}: line {2 + t + i}: a customer or depot line needs 'i x y d q'")
    types = [{"capacity": int(q), "count": m, "depot": k, **({"max_duration": d} if d > 0 else {})}
             for k, (d, q, *_) in enumerate(limits)]  # fmt: skip
    return _validated(
        str(path),
        {
            "name": path.stem,
            "depots": [{"x": row[1], "y": row[2]} for row in places],
            "customers": [
                {"id": int(row[0]), "x": row[1], "y": row[2], "service": row[3], "demand": int(row[4])}
                for row in people
            ],
            "fleet": {"types": types},
            "rounding": rounding,
        },
    )


def read_taillard(path: str | Path, *, rounding: Rounding = "exact") -> RoutingProblem:
    """A mixed-fleet instance in Taillard's format (VRPSolverEasy's ``HFVRP/c50_13fsmf.txt``, Golden et al.'s
    instances): ``n``, the depot line ``0 x y 0``, ``n`` customer lines ``i x y q``, the number of vehicle types
    and one line per type ``capacity fixed_cost unit_cost min max``. A type's count is its ``max``; a route costs
    its type's fixed cost plus its cost per distance (exact Euclidean distances)."""
    path = Path(path)
    rows = _numbers(path, _text_of(path)[0])
    if len(rows) < 3 or len(rows[0]) != 1 or len(rows[1]) != 4:
        raise ConfigError(f"{path}: not a mixed-fleet instance of Taillard's format (n, then '0 x y 0')")
    n = int(rows[0][0])
    if len(rows) < 3 + n or len(rows[2 + n]) != 1:
        raise ConfigError(f"{path}: expected {n} customer lines and then the number of vehicle types")
    k = int(rows[2 + n][0])
    kinds = rows[3 + n : 3 + n + k]
    if len(kinds) != k or any(len(row) != 5 for row in kinds):
        raise ConfigError(f"{path}: expected {k} vehicle type lines 'capacity fixed_cost unit_cost min max'")
    for i, row in enumerate(rows[2 : 2 + n]):
        if len(row) != 4:
            raise ConfigError(f"{path}: customer line {i + 1} needs 'i x y demand'")
    types = [{"name": f"type {i + 1}", "capacity": int(c), "fixed_cost": f, "unit_cost": u, "count": int(top)}
             for i, (c, f, u, _, top) in enumerate(kinds)]  # fmt: skip
    depot = rows[1]
    return _validated(
        str(path),
        {
            "name": path.stem,
            "depot": {"x": depot[1], "y": depot[2]},
            "customers": [
                {"id": int(row[0]), "x": row[1], "y": row[2], "demand": int(row[3])} for row in rows[2 : 2 + n]
            ],
            "fleet": {"types": types},
            "rounding": rounding,
        },
    )


def _sniff(text: str) -> str:
    """Which format a ``.txt`` or suffix-less file is in, from its first lines: "solomon", "cordeau", "taillard"
    or "vrplib"."""
    head = text[:2000].upper()
    if "VEHICLE" in head and "CUSTOMER" in head:
        return "solomon"
    lines = [ln.split() for ln in text.splitlines()[:2] if ln.strip()]
    numeric = all(re.fullmatch(r"-?\d+(\.\d*)?", v) for ln in lines for v in ln)
    if numeric and len(lines) == 2 and len(lines[0]) == 4 and lines[0][0] == "2" and len(lines[1]) == 2:
        return "cordeau"
    if numeric and len(lines) == 2 and len(lines[0]) == 1 and len(lines[1]) == 4:
        return "taillard"
    return "vrplib"


_TRUE = {"1", "true", "yes", "y", "depot"}
_REQUIRED = ("id", "x", "y", "demand")


def read_csv(
    source: str | Path,
    *,
    capacity: int,
    vehicles: int | None = None,
    name: str | None = None,
    rounding: Rounding = "exact",
) -> RoutingProblem:
    """A CSV with a header ``id,x,y,demand`` and optionally ``ready,due,service``, ``name`` and ``depot``. The
    fleet: vehicles of ``capacity``, at most ``vehicles`` of them (None: unlimited).

    The depot is the row whose ``depot`` column is true (1/true/yes), or without that column the row with
    id 0. An empty ``due`` means no deadline. Time windows are on when a ``ready`` or ``due`` value is
    given. ``source`` is a path, or the CSV text itself when it contains a newline.
    """
    text, label, stem = _text_of(source)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in _REQUIRED if c not in header]
    if missing:
        raise ConfigError(f"{label}: missing column(s) {', '.join(missing)} (header: {','.join(header)})", field="csv")
    depot: dict[str, Any] | None = None
    customers: list[dict[str, Any]] = []
    timed = False
    for line, raw in enumerate(reader, start=2):
        row = {str(k).strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(row.values()):
            continue
        where = f"{label}, line {line}"
        is_depot = row["depot"].lower() in _TRUE if "depot" in row else row["id"] == "0"
        values: dict[str, Any] = {
            "x": _number(row, "x", where, required=True),
            "y": _number(row, "y", where, required=True),
            "ready": _number(row, "ready", where) or 0.0,
            "due": _number(row, "due", where),
        }
        timed = timed or bool(row.get("ready") or row.get("due"))
        if is_depot:
            if depot is not None:
                raise ConfigError(f"{where}: a second depot row (only one depot is supported)", field="depot")
            depot = values
            continue
        customer_id = _number(row, "id", where, required=True)
        demand = _number(row, "demand", where, required=True)
        if customer_id is None or not customer_id.is_integer():
            raise ConfigError(f"{where}: id {row['id']!r} is not an integer", field="id")
        if demand is None or not demand.is_integer():
            raise ConfigError(f"{where}: demand {row['demand']!r} is not an integer", field="demand")
        values |= {
            "id": int(customer_id),
            "demand": int(demand),
            "service": _number(row, "service", where) or 0.0,
            "name": row.get("name", ""),
        }
        customers.append(values)
    if depot is None:
        hint = "a row with depot=1" if "depot" in header else "a row with id 0"
        raise ConfigError(f"{label}: no depot row ({hint})", field="depot")
    return _validated(
        label,
        {
            "name": name or stem,
            "depot": depot,
            "customers": customers,
            "fleet": {"vehicles": vehicles, "capacity": capacity},
            "time_windows": timed,
            "rounding": rounding,
        },
    )


def _number(row: dict[str, str], column: str, where: str, *, required: bool = False) -> float | None:
    """The float in ``row[column]``; None for an empty or absent cell (an error when ``required``)."""
    cell = row.get(column, "")
    if cell == "":
        if required:
            raise ConfigError(f"{where}: column {column!r} is empty", field=column)
        return None
    try:
        value = float(cell)
    except ValueError:
        raise ConfigError(f"{where}: column {column!r} is not a number: {cell!r}", field=column) from None
    if not math.isfinite(value):
        raise ConfigError(f"{where}: column {column!r} is not finite: {cell!r}", field=column)
    return value


def _text_of(source: str | Path) -> tuple[str, str, str]:
    """(text, label for errors, default name) of a path or of inline text (a string with a newline)."""
    if isinstance(source, str) and "\n" in source:
        return source, "<text>", "problem"
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8"), str(path), path.stem
    except FileNotFoundError:
        raise ConfigError(f"no such file: {path}", field="path") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file ({exc})", field="path") from None


def read_json(source: str | Path) -> RoutingProblem:
    """A problem in the JSON shape of :class:`RoutingProblem` (a path, or the JSON text itself)."""
    if isinstance(source, str) and source.lstrip().startswith("{"):
        text, label = source, "<json>"
    else:
        text, label, _ = _text_of(source)
    try:
        return RoutingProblem.model_validate_json(text)
    except ValidationError as exc:
        raise ConfigError(f"{label}: invalid routing problem: {describe_validation(exc)}", field="problem") from None


def read_problem(
    path: str | Path,
    *,
    vehicles: int | None = None,
    capacity: int | None = None,
) -> RoutingProblem:
    """Read a problem file, choosing the reader by suffix (``.vrp``, ``.csv``, ``.json``) or, for ``.txt`` and no
    suffix, by content (Solomon's ``VEHICLE``/``CUSTOMER`` sections, Cordeau's multi-depot and Taillard's
    mixed-fleet layouts, else VRPLIB). ``vehicles`` fixes the fleet of a
    CVRPLIB or CSV file (else: the file's own fleet field, or unlimited); CSV needs ``capacity``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return read_json(path)
    if suffix == ".csv":
        if capacity is None:
            raise ConfigError(f"{path}: a CSV problem needs the vehicles' capacity", field="fleet")
        return read_csv(path, vehicles=vehicles, capacity=capacity)
    if suffix == ".vrp":
        return read_vrplib(path, vehicles=vehicles)
    if suffix in {".txt", ""}:
        kind = _sniff(_text_of(path)[0])
        if kind == "solomon":
            return read_solomon(path)
        if kind == "cordeau":
            return read_cordeau(path)
        if kind == "taillard":
            return read_taillard(path)
        return read_vrplib(path, vehicles=vehicles)
    raise ConfigError(f"{path}: unknown problem format {suffix!r} (known: .vrp, .txt, .csv, .json)", field="path")


@dataclass(frozen=True, slots=True)
class BestKnown:
    """A row of vrplib's instance table: the best-known objective and whether it is proven optimal."""

    name: str
    customers: int
    vehicles: int | None
    capacity: int | None
    value: float
    optimal: bool


def instance_table_path() -> Path:
    """``vrplib/download/instance_data.csv`` of the installed vrplib (found without importing vrplib)."""
    spec = importlib.util.find_spec("vrplib")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"best-known values come from vrplib; {_INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "download" / "instance_data.csv"
    if not path.is_file():
        raise ConfigError(f"{path} is missing: best-known values need vrplib==1.5.1 ({_INSTALL_HINT})")
    return path


@lru_cache(maxsize=1)
def _best_known_table() -> dict[str, BestKnown]:
    table: dict[str, BestKnown] = {}
    for row in csv.reader(instance_table_path().read_text(encoding="utf-8").splitlines()):
        if len(row) < 6 or not row[0]:
            continue
        name, customers, vehicles, capacity, value, optimal = (cell.strip() for cell in row[:6])
        table[name] = BestKnown(
            name=name,
            customers=int(customers),
            vehicles=int(vehicles) if vehicles else None,
            capacity=int(capacity) if capacity else None,
            value=float(value),
            optimal=optimal.lower() == "yes",
        )
    return table


def best_known_record(name: str) -> BestKnown | None:
    """vrplib 1.5.1's record of the instance called ``name`` (e.g. ``"E-n22-k4"``), or None if unlisted."""
    return _best_known_table().get(name)


FLEETS_TABLE = Path(__file__).with_name("best_known_fleets.csv")
"""Published best-known values of the multi-depot and mixed-fleet instances (its header says where from)."""


@lru_cache(maxsize=1)
def _fleets_table() -> dict[str, float]:
    rows = [ln for ln in FLEETS_TABLE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    return {row["name"]: float(row["value"]) for row in csv.DictReader(rows)}


def best_known(name: str) -> float | None:
    """The best-known objective of a CVRPLIB/Solomon instance (vrplib 1.5.1's table) or of a multi-depot or
    mixed-fleet one (:data:`FLEETS_TABLE`), or None if unlisted."""
    record = best_known_record(name)
    return record.value if record is not None else _fleets_table().get(name)
