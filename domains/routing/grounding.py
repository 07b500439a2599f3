"""The grounding check: any reading of a request (the model's, or the deterministic one) against the request's own
spans, and the questions a request leaves open.

:func:`ground` accepts a :class:`RoutingProblem` only when every customer is grounded in ONE span of the request
that states its location and its demand together (a table row, a list line, a clause: the items of the
deterministic reading, :mod:`.structure`), no two customers come from the same span, the window and service time
are the ones that span states, the number of customers is the number of stops the request states, the fleet's size
and capacity are the ones its fleet statements give, and the depot is the one it names. Amounts may be in any one
unit the request converts to ("1 pallet = 20 boxes", tonnes and kg), the same for every amount and the capacity.
Numbers the request never means as values (phone numbers, dates, prices, references) are in no span. A reading
that fails gets the reason, naming the culprit.

:func:`questions` turns what the deterministic reading found unclear into :class:`~longthink.events.Question` s.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from longthink.domains.routing.lexicon import NUMBER_WORDS, VEHICLE, Conversion, Work, mask_distractors
from longthink.domains.routing.problem import Customer, RoutingProblem
from longthink.domains.routing.structure import StructuredReading, unit_factor
from longthink.domains.routing.tables import Item, Value
from longthink.events import Question

_TOLERANCE = 1e-6


def _scales(reading: StructuredReading) -> list[dict[str | None, float]]:
    """The ways to count the request's amounts in one unit: per unit stated, how many of the chosen unit it is."""
    units = {v.unit for c in reading.customers for v in c.demands if v.unit} | {v.unit for v in reading.capacity
                                                                                 if v.unit}  # fmt: skip
    conv: list[Conversion] = list(reading.conversions)
    out: list[dict[str | None, float]] = [{None: 1.0}]
    for base in units:
        scale: dict[str | None, float] = {None: 1.0, base: 1.0}
        for other in units - {base}:
            factor = unit_factor(base, other, conv)
            if factor is not None:
                scale[other] = factor
        out.append(scale)
    return out


def _in(value: Value, scale: dict[str | None, float]) -> float | None:
    factor = scale.get(value.unit)
    return None if factor is None else value.value * factor


def _words(name: str) -> set[str]:
    """A name's words, accents and case aside, without "the", "of"... (unless the name is only such words: "A")."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    words = set(re.findall(r"[a-z0-9]+", plain))
    return words - {"the", "a", "an", "of", "and"} or words


def _same(a: float, b: float | None) -> bool:
    return b is not None and abs(a - b) <= _TOLERANCE


def _fleet_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(rf"(?<![a-z]){VEHICLE}(?![a-z])|fleet|capacity|payload|"
                                                           r"load", line, re.I)]  # fmt: skip


def _stated_on(lines: Sequence[str], value: float) -> bool:
    """Whether ``value`` is written (as digits or a number word) on one of ``lines``."""
    words = [w for w, n in NUMBER_WORDS.items() if n == value]
    pattern = rf"(?<![\w.]){value:g}(?![\w]|\.\d)" + "".join(rf"|\b{re.escape(w)}\b" for w in words)
    return any(re.search(pattern, line, re.I) for line in lines)


def _match(c: Customer, items: Sequence[Item]) -> list[Item]:
    return [i for i in items if any(_same(c.x, p.x.value) and _same(c.y, p.y.value) for p in i.locations)]


def ground(problem: RoutingProblem, reading: StructuredReading) -> str | None:
    """Why ``problem`` is not what the request states (None: every value is grounded; see the module docstring)."""
    why = _ground_fleet_and_depot(problem, reading)
    if why is not None:
        return why
    items = list(reading.customers)
    if not items:
        return _ground_in_sentences(problem, reading)
    stated = len(items) + sum(i.id.startswith(("demand_", "location_", "include_")) for i in reading.issues)
    if len(problem.customers) != stated and not reading.unread:
        return f"the request states {stated} customers; the reading has {len(problem.customers)}"
    if len(problem.customers) < stated:
        return f"the request states {stated} customers; the reading has only {len(problem.customers)}"
    owner: dict[int, Customer] = {}
    scales = _scales(reading)
    fits = [s for s in scales if _capacity_fits(problem, reading, s)]
    if not fits:
        return f"the capacity {problem.fleet.capacity} is not what the request states"
    for c in problem.customers:
        found = _match(c, items)
        if not found:
            depot = reading.depot is not None and _match(c, [reading.depot])
            where = "the depot's location" if depot else "not a location the request states for a stop"
            return f"{c.label}: ({c.x:g}, {c.y:g}) is {where}"
        item = found[0]
        k = items.index(item)
        if k in owner:
            return f"{owner[k].label} and {c.label} are both read from one stop of the request ({item.label!r})"
        owner[k] = c
        why = _ground_customer(c, item, reading, fits)
        if why is not None:
            return why
        fits = [s for s in fits if _demand_fits(c, item, s)] or fits
    if not any(all(_demand_fits(c, items[k], s) for k, c in owner.items()) for s in fits):
        return "the amounts are not all counted in the same unit as the capacity"
    return None


def _ground_in_sentences(problem: RoutingProblem, reading: StructuredReading) -> str | None:
    """Where the rules found no stop, each customer must still come from one sentence (or line) of the request,
    distractors blanked, that writes its x and y side by side and its demand."""
    work = Work(reading.text)
    mask_distractors(work)
    sentences = [work.s[a:b] for a, b in _sentence_spans(work.s)]
    for c in problem.customers:
        pair = rf"(?<![\w.]){_num(c.x)}(?![\w.])[^\d\n]{{1,12}}?(?<![\w.]){_num(c.y)}(?![\w.]|\.\d)"
        here = [s for s in sentences if re.search(pair, s)]
        if not here:
            return f"{c.label}: ({c.x:g}, {c.y:g}) is not a location the request states"
        if not any(_stated_on([re.sub(pair, " ", s, count=1)], c.demand) for s in here):
            return f"{c.label}: demand {c.demand} is not stated with its location"
    return None


def _num(value: float) -> str:
    return re.escape(f"{value:g}") if value >= 0 else rf"[-−]?{re.escape(f'{-value:g}')}"


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    out, begin = [], 0
    for m in re.finditer(r"(?<=[.!?;])\s+|\n+", text):
        out.append((begin, m.start()))
        begin = m.end()
    return [*out, (begin, len(text))]


def _capacity_fits(problem: RoutingProblem, reading: StructuredReading, scale: dict[str | None, float]) -> bool:
    if reading.types or problem.fleet.mixed:  # a mixed fleet: the same types, each as its own clause states it
        return _types_fit(problem, reading, scale)
    caps = {_in(v, scale) for v in reading.capacity}
    if not reading.capacity:
        return _stated_on(_fleet_lines(reading.text), problem.fleet.capacity)
    return len(caps) == 1 and _same(problem.fleet.capacity, next(iter(caps)))


def _types_fit(problem: RoutingProblem, reading: StructuredReading, scale: dict[str | None, float]) -> bool:
    """Whether the problem's vehicle types are the reading's (capacity in ``scale``, count, depot, fixed cost), in
    any order; the depots are the reading's, in its order."""
    depots = [d.location.xy for d in reading.depots or [reading.depot] if d is not None and d.location is not None]
    if [(d.x, d.y) for d in problem.all_depots] != depots:
        return False
    stated = sorted((_in(t.capacity, scale) or -1.0, t.count.value, t.depot or 0,
                     t.fixed_cost.value if t.fixed_cost else 0.0) for t in reading.types)  # fmt: skip
    read = sorted((float(t.capacity), float(t.count or -1), t.depot, t.fixed_cost) for t in problem.vehicle_types)
    if len(stated) != len(read):
        return False
    return all(_same(a[0], b[0]) and a[1:] == b[1:] for a, b in zip(stated, read, strict=True))


def _demand_fits(c: Customer, item: Item, scale: dict[str | None, float]) -> bool:
    if item.demand is None:
        return True
    return _same(c.demand, _in(item.demand, scale))


def _ground_customer(
    c: Customer, item: Item, reading: StructuredReading, scales: Sequence[dict[str | None, float]]
) -> str | None:
    """Why customer ``c`` is not what ``item`` (its span of the request) states."""
    if item.demand is not None:
        if not any(_demand_fits(c, item, s) for s in scales):
            shown = f"{item.demand.value:g}" + (f" {item.demand.unit}" if item.demand.unit else "")
            return f"{c.label}: demand {c.demand} is not what its own line states ({shown}, {item.label!r})"
    elif not _stated_on([reading.text[item.span[0] : item.span[1]]], c.demand):
        return f"{c.label}: demand {c.demand} is not stated for it ({item.label!r})"
    for what, mine, theirs in (("ready time", c.ready, item.ready), ("due time", c.due, item.due)):
        if theirs is None and mine not in (None, 0.0):
            return f"{c.label}: the {what} {mine:g} is not stated for it ({item.label!r})"
        if theirs is not None and (mine is None or not _same(mine, theirs.value)):
            return f"{c.label}: its {what} is {theirs.value:g} in the request, not {mine}"
    service = item.service or reading.service
    if not _same(c.service, service.value if service is not None else 0.0):
        return f"{c.label}: service time {c.service:g} is not what the request states"
    if item.number is not None and c.id != item.number:
        return f"{c.label} is stated as {item.label!r} (number {item.number})"
    if c.name and item.name and item.number is None and not _words(c.name) & _words(item.name):
        return f"{c.label}: the name {c.name!r} is not the one its line states ({item.name!r})"
    return None


def _ground_fleet_and_depot(problem: RoutingProblem, reading: StructuredReading) -> str | None:
    vehicles = problem.fleet.vehicles
    size = reading.fleet_size
    if reading.unlimited and vehicles is not None:
        return f"the request leaves the fleet open; the reading fixes {vehicles} vehicles"
    if size is not None and vehicles != size:
        span = next(v.span for v in reading.vehicles)
        said = reading.text[span[0] : span[1]]
        got = "an unlimited fleet" if vehicles is None else f"{vehicles} vehicles"
        return f"the request states a fleet of {size} ({said!r}); the reading has {got}"
    if size is None and vehicles is not None and not reading.vehicles and not _stated_on(_fleet_lines(reading.text),
                                                                                           vehicles):  # fmt: skip
        return f"the request states no fleet of {vehicles} vehicles"
    d = problem.depot
    if reading.depot is not None and reading.depot.location is not None:
        x, y = reading.depot.location.xy
        if not (_same(d.x, x) and _same(d.y, y)):
            return f"the depot is at ({x:g}, {y:g}) in the request, not ({d.x:g}, {d.y:g})"
        for what, mine, theirs in (("opens", d.ready, reading.depot.ready), ("closes", d.due, reading.depot.due)):
            if theirs is not None and (mine is None or not _same(mine, theirs.value)):
                return f"the depot {what} at {theirs.value:g} in the request"
            if theirs is None and mine not in (None, 0.0):
                return f"the request states no depot hours ({what} {mine:g})"
    return None


def stated_amounts(reading: StructuredReading) -> set[float]:
    """The request's amounts and capacity counted in each unit it converts between ("2 pallets" with "1 pallet = 20
    boxes" also states 40): numbers a faithful reading may use that the request does not write."""
    values = [v for c in reading.customers for v in c.demands] + list(reading.capacity)
    out = set()
    for scale in _scales(reading):
        for v in values:
            converted = _in(v, scale)
            if converted is not None and converted != v.value and float(converted).is_integer():
                out.add(float(converted))
    return out


def questions(reading: StructuredReading) -> list[Question]:
    """What the reading found unclear, as questions asked before planning (none when the request is clear)."""
    return [Question(id=i.id, text=i.text, default=i.default, why=i.why) for i in reading.issues]
