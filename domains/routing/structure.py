"""The deterministic reading of a routing request: every stop from the one span that states it, the depot, the fleet
from the span that states it, units converted as the request says, and what is unclear.

:func:`read_request` blanks the numbers that are never values (phone numbers, dates, prices, references), reads the
tabular blocks (:func:`.tables.read_blocks`), the stated unit conversions, the locations, the service time stated
for every stop and the fleet statements (line by line), and then cuts the rest into items: a line with one
location is one item; a line with several is cut at its semicolons, then at its sentences, then at its commas
around the locations. Each item's name, number, demand, time window and service time are read from its own span
only. The depot is the item that says so ("depot", "warehouse", "hub", "base", "yard", "start", "HQ"...) and states
no demand, else the only item without a demand; a list of locations and a separate list of amounts by name
("Orders: Alvarez 5, Brennan 7") are joined by the name.

The reading is *structured* when every customer comes from a table row, a list line or a semicolon-separated
clause, and *complete* when it is structured and nothing is unclear or unread: then it is the request's problem
and the model is not needed. Otherwise it is the deterministic partial reading that a model's readings are checked
against (:mod:`.grounding`). What is unclear (no capacity, two fleet sizes, two depots, a customer without a demand
or a location, a demand range, a customer the request doubts, units without a conversion) is an :class:`Issue`: a
question to ask, with the default that a run which does not ask assumes (and says so).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from longthink.domains.pipeline import Fact
from longthink.domains.routing.fleet_types import (
    VAGUE_FLEET,
    TypeReading,
    named_depot,
    read_types,
    says_several_depots,
)
from longthink.domains.routing.io import describe_validation
from longthink.domains.routing.items import MARKER, clean_name, join_amounts, loose_stops, read_item
from longthink.domains.routing.items import segments as segments_of
from longthink.domains.routing.lexicon import (
    BUILTIN,
    NUM,
    SPAN,
    Conversion,
    FleetStatement,
    Work,
    find_conversions,
    find_fleet,
    find_line_locations,
    find_locations,
    find_service,
    lines_of,
    mask_distractors,
    unit_of,
)
from longthink.domains.routing.problem import RoutingProblem
from longthink.domains.routing.tables import Item, Point, Value, read_blocks

STRUCTURED_SOURCES = frozenset({"table", "csv", "yaml", "line", "clause"})
"""Items delimited by the request's own structure (a row, a line, a semicolon), not by sentence heuristics."""

_NO = re.compile(r"^\s*(?:n|no|none|nope|exclude|excluded|skip|drop|leave (?:it |them )?out|left out|false|"
                 r"not (?:included|delivered))\b", re.I)  # fmt: skip
_PAIR = re.compile(rf"\(?\s*({NUM})\s*[,;]\s*({NUM})\s*\)?")


@dataclass(frozen=True, slots=True)
class Issue:
    """Something the request leaves unclear: a question (``id``, ``text``), the ``default`` a run that does not ask
    assumes, and why it matters."""

    id: str
    text: str
    default: str
    why: str


@dataclass(frozen=True, slots=True)
class StructuredReading:
    """What the request states, read by rule. ``customers``/``depot`` are the items (with spans); ``vehicles`` and
    ``capacity`` every fleet statement (distinct values: a contradiction); ``unit`` the demands' unit once
    converted (``conversions`` the ones stated); ``ignored`` the distractors; ``unread`` numbers no rule accounts
    for; ``issues`` what is unclear; ``assumed`` the defaults used for questions nobody answered; ``problem`` the
    problem when it can be built (``error`` says why not)."""

    text: str
    customers: tuple[Item, ...]
    depot: Item | None
    depot_candidates: tuple[Item, ...] = ()
    vehicles: tuple[Value, ...] = ()
    capacity: tuple[Value, ...] = ()
    unlimited: bool = False
    service: Value | None = None
    unit: str | None = None
    conversions: tuple[Conversion, ...] = ()
    ignored: tuple[tuple[str, SPAN, str], ...] = ()
    unread: tuple[Value, ...] = ()
    issues: tuple[Issue, ...] = ()
    assumed: tuple[str, ...] = ()
    answered: tuple[str, ...] = ()
    problem: RoutingProblem | None = None
    error: str = ""
    notes: tuple[str, ...] = field(default=())
    depots: tuple[Item, ...] = ()
    types: tuple[TypeReading, ...] = ()

    @property
    def structured(self) -> bool:
        """Every customer comes from a table row, a list line or a semicolon-separated clause."""
        return bool(self.customers) and all(c.source in STRUCTURED_SOURCES for c in self.customers)

    @property
    def incomplete(self) -> list[str]:
        """What keeps this reading from being all the request states (empty: every number is read and nothing is
        unclear; the problem may still be invalid as stated, ``error`` says why)."""
        why = [i.text for i in self.issues]
        if self.unread:
            why.append("numbers not read: " + ", ".join(f"{v.value:g}" for v in self.unread[:6]))
        why += [f"{c.label}: {p}" for c in self.customers for p in c.problems]
        return why

    @property
    def complete(self) -> bool:
        """Structured, nothing unclear or unread, and a problem built: the reading *is* the request's problem."""
        return self.structured and self.problem is not None and not self.incomplete

    @property
    def fleet_size(self) -> int | None:
        if self.types:
            return int(sum(t.count.value for t in self.types))
        sizes = {v.value for v in self.vehicles}
        return int(sizes.pop()) if len(sizes) == 1 and not self.unlimited else None

    def as_data(self) -> dict[str, Any]:
        """JSON-able: every value with its span, for the trace."""

        def item(c: Item) -> dict[str, Any]:
            return {"name": c.name, "number": c.number, "source": c.source, "span": list(c.span),
                    "locations": [{"x": p.x.as_data(), "y": p.y.as_data()} for p in c.locations],
                    "demands": [d.as_data() for d in c.demands],
                    **{k: v.as_data() for k, v in (("ready", c.ready), ("due", c.due), ("service", c.service)) if v},
                    **({"problems": list(c.problems)} if c.problems else {})}  # fmt: skip

        return {
            "structured": self.structured,
            "complete": self.complete,
            "customers": [item(c) for c in self.customers],
            "depot": None if self.depot is None else item(self.depot),
            **({"depots": [item(d) for d in self.depots]} if self.depots else {}),
            **({"types": [t.as_data() for t in self.types]} if self.types else {}),
            "vehicles": [v.as_data() for v in self.vehicles],
            "capacity": [v.as_data() for v in self.capacity],
            "unlimited": self.unlimited,
            "unit": self.unit,
            "conversions": [{"text": c.text, "span": list(c.span)} for c in self.conversions],
            "ignored": [{"kind": k, "text": t, "span": list(s)} for k, s, t in self.ignored],
            "unread": [v.as_data() for v in self.unread],
            "issues": [i.text for i in self.issues],
            "assumed": list(self.assumed),
            "notes": list(self.notes),
            "error": self.error,
        }


_SETTING = re.compile(r"\b(?:time limit|solver time|time budget|solve (?:it )?for)\s*(?:of\s*|:\s*)?\d+(?:\.\d+)?"
                      r"\s*(?:s|sec|secs|seconds?|min(?:ute)?s?)\b", re.I)  # fmt: skip
"""A solver setting ("time limit 10 s"): read by the pipeline, never a value of the problem."""


# -- units ---------------------------------------------------------------------------------------------------------
def unit_factor(small: str, big: str, conversions: Sequence[Conversion]) -> float | None:
    """How many ``small`` make one ``big`` (stated, or built in: 1000 kg a tonne)."""
    for c in conversions:
        if (c.small, c.big) == (small, big):
            return c.factor
        if (c.small, c.big) == (big, small):
            return 1.0 / c.factor
    if (small, big) in BUILTIN:
        return BUILTIN[(small, big)]
    if (big, small) in BUILTIN:
        return 1.0 / BUILTIN[(big, small)]
    return None


def _in_unit(value: Value, unit: str | None, conversions: Sequence[Conversion]) -> Value | None:
    if value.unit is None or unit is None or value.unit == unit:
        return value
    factor = unit_factor(unit, value.unit, conversions)
    if factor is None:
        return None
    converted = value.value * factor
    return replace(value, value=round(converted, 6), unit=unit,
                   note=f"{value.value:g} {value.unit} = {converted:g} {unit}")  # fmt: skip


def _base_unit(values: Sequence[Value], capacity_unit: str | None, conversions: Sequence[Conversion]) -> str | None:
    """The unit every amount is counted in: the capacity's when every amount converts to a whole number of it, else
    the smallest unit that does; None when the amounts name no unit or only one."""
    units = {v.unit for v in values if v.unit} | ({capacity_unit} if capacity_unit else set())
    if len(units) <= 1:
        return next(iter(units), None)
    ranked = sorted(
        units, key=lambda u: (u != capacity_unit, -max((unit_factor(u, o, conversions) or 0) for o in units))
    )
    for unit in ranked:
        converted = [_in_unit(v, unit, conversions) for v in values]
        if all(c is not None and float(c.value).is_integer() for c in converted):
            return unit
    return None


# -- the reading ---------------------------------------------------------------------------------------------------
def read_request(text: str, facts: Sequence[Fact] = ()) -> StructuredReading:
    """The deterministic reading of ``text`` (the request without added facts and files); ``facts`` are the
    answers to its questions, or the defaults assumed for them (:func:`~longthink.domains.pipeline.added_facts`)."""
    work = Work(text)
    ignored = mask_distractors(work)
    for m in list(_SETTING.finditer(work.s)):
        ignored.append(("setting", m.span(), m.group(0)))
        work.consume(*m.span())
    blocks = read_blocks(text, work)
    conversions = find_conversions(work)
    locations = find_locations(work)
    every = find_service(work, 0, len(text), every=True)
    fleet = find_fleet(work)
    locations = sorted(locations + find_line_locations(work), key=lambda loc: loc.span)
    for m in list(MARKER.finditer(work.s)):
        work.consume(*m.span())
    segments = segments_of(work, locations)
    items = [read_item(work, a, b, source, locations) for a, b, source in segments]
    covered = [(a, b) for a, b, _ in segments] + [c.span for c in blocks]
    rest = _rest(text, covered)
    items = join_amounts(work, items)
    items += loose_stops(work, rest)
    items = sorted(blocks + items, key=lambda c: c.span)
    unread = tuple(Value(v, sp) for v, sp in work.numbers())  # in no statement: neither an item's value nor the fleet
    return _resolve(text, items, fleet, every, conversions, ignored, unread, facts)


def _rest(text: str, covered: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The spans of ``text`` outside every item, line by line."""
    out = []
    for start, end in lines_of(text):
        cuts = sorted((max(a, start), min(b, end)) for a, b in covered if a < end and b > start)
        begin = start
        for a, b in cuts:
            if a > begin:
                out.append((begin, a))
            begin = max(begin, b)
        if begin < end:
            out.append((begin, end))
    return out


def slug(label: str) -> str:
    plain = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode().lower()
    return "_".join(re.findall(r"[a-z0-9]+", plain))[:40] or "stop"


def _resolve(text: str, items: list[Item], fleet: Sequence[FleetStatement], every: Sequence[tuple[float, SPAN, str]],
             conversions: Sequence[Conversion], ignored: list[tuple[str, SPAN, str]], unread: tuple[Value, ...],
             facts: Sequence[Fact]) -> StructuredReading:  # fmt: skip
    issues: list[Issue] = []
    answers = {f.label.strip().lower().replace(" ", "_"): f for f in facts}
    used: list[Fact] = []

    def answer(issue_id: str) -> str | None:
        fact = answers.get(issue_id)
        if fact is not None:
            used.append(fact)
            return fact.value
        return None

    # the depot: an item that says so and states no amount; else the only item without an amount
    def amountless(c: Item) -> bool:
        return not c.demands or all(d.value == 0 for d in c.demands)

    cued = [c for c in items if c.depot_cue and amountless(c) and c.locations]
    pool = cued or [c for c in items if not c.demands and c.locations and not c.problems]
    places = {p.xy for c in pool for p in c.locations}
    depot = None
    depots: list[Item] = []
    options = [(c, p) for c in pool for p in c.locations]
    names = [_place(c, p, near=True) for c, p in options] if len(places) > 1 else []
    types, typed, missed = read_types(text, fleet, unread, names)
    if types:  # what the types read leaves the unread numbers; a cost in their clauses they could not read joins them
        unread = tuple(v for v in unread if v not in typed) + tuple(missed)
    if len(places) == 1:
        depot = pool[0]
    elif len(places) > 1 and (cued or len(pool) == len([c for c in items if not c.demands])):
        chosen = answer("depot")
        pick = _pick_depot(options, chosen) if chosen is not None else None
        spread = len({t.depot for t in types if t.depot is not None}) > 1
        if pick is not None:
            depot = replace(pick[0], locations=(pick[1],))
            types = [replace(t, depot=None) for t in types]
        elif cued and types and (spread or says_several_depots(text)):  # the mixed fleet starts from every depot
            depots = [replace(c, locations=(p,), name=n) for (c, p), n in zip(options, names, strict=True)]
            depot = depots[0]
            unplaced = [t for t in types if t.depot is None]
            reply = answer("vehicle_depots") if unplaced else None
            index = _pick_index([d.name for d in depots], reply) if reply is not None else None
            if index is not None:
                types = [t if t.depot is not None else replace(t, depot=index) for t in types]
            elif unplaced:
                what = " and ".join(f"the {t.name or 'vehicles'}" for t in unplaced)
                issues.append(Issue("vehicle_depots", f"Which depot do {what} start from "
                                    f"({' or '.join(d.name for d in depots)})?", depots[0].name,
                                    "the request names several depots but not where these vehicles start"))  # fmt: skip
        else:
            shown = " or ".join(f"{_place(c, p)} at ({p.x.value:g}, {p.y.value:g})" for c, p in options)
            first = options[0]
            issues.append(Issue("depot", f"Which depot do the vehicles start from: {shown}?",
                                f"{_place(*first)} at ({first[1].x.value:g}, {first[1].y.value:g})",
                                "the request names more than one starting point"))  # fmt: skip
        pool = [c for c, _ in options]
    customers = [c for c in items if c not in pool]
    if depot is None and not issues and customers:
        chosen = answer("depot")
        pair = _PAIR.search(chosen or "")
        if pair is not None:
            point = Point(Value(float(pair.group(1)), (0, 0)), Value(float(pair.group(2)), (0, 0)))
            depot = Item((0, 0), "fact", "depot", None, (point,))
        else:
            issues.append(Issue("depot", "Where is the depot the vehicles start from and return to (x, y)?",
                                "not stated", "routes start and end at the depot"))  # fmt: skip

    # the customers: each one's questions, answered or not
    kept: list[Item] = []
    for c in customers:
        key = slug(c.label)
        if c.hedged and not c.alternatives:
            reply = answer(f"include_{key}")
            if reply is None:
                issues.append(Issue(f"include_{key}", f"Should {c.label} be served? The request is not sure.", "yes",
                                    "a stop the request doubts changes the routes"))  # fmt: skip
            elif _NO.match(reply):
                continue
        if not c.locations or (len(c.locations) > 1 and c.alternatives):
            reply = answer(f"location_{key}")
            pair = _PAIR.search(reply or "")
            if reply is not None and _NO.match(reply):
                continue
            if pair is None:
                shown = " or ".join(f"({p.x.value:g}, {p.y.value:g})" for p in c.locations)
                text_q = f"Where is {c.label}: {shown}?" if c.locations else f"Where is {c.label} (x, y)?"
                default = shown.split(" or ")[0] if c.locations else "left out (no location stated)"
                issues.append(Issue(f"location_{key}", text_q, default, "a stop without one location cannot be routed"))
                continue
            c = replace(c, locations=(Point(Value(float(pair.group(1)), (0, 0)), Value(float(pair.group(2)), (0, 0))),))
        ranged = [p for p in c.problems if p.startswith("a range")]
        if not c.demands or ranged:
            reply = answer(f"demand_{key}")
            number = re.search(NUM, reply or "")
            if reply is not None and _NO.match(reply):
                continue
            if number is None:
                what = f"{c.label} states {ranged[0]}" if ranged else f"{c.label} states no amount"
                high = re.findall(r"\d+(?:\.\d+)?", ranged[0]) if ranged else []
                default = f"{float(high[-1]):g}" if high else "left out (no amount stated)"
                issues.append(Issue(f"demand_{key}", f"How much does {c.label} need? ({what})", default,
                                    "the loads and routes depend on every stop's amount"))  # fmt: skip
                continue
            c = replace(c, demands=(Value(float(number.group(0)), (0, 0), None, "stated in an answer"),),
                        problems=tuple(p for p in c.problems if p not in ranged))  # fmt: skip
        kept.append(c)

    # the fleet
    sizes = [Value(s.value or 0, s.span) for s in fleet if s.kind == "vehicles"]
    caps = [Value(s.value or 0, s.span, s.unit) for s in fleet if s.kind == "capacity"]
    unlimited = any(s.kind == "unlimited" for s in fleet)
    if types:  # a mixed fleet: each type's size and capacity come from its own clause
        sizes, caps = [t.count for t in types], [t.capacity for t in types]
    elif len({v.value for v in sizes}) > 1:
        reply = answer("fleet_size")
        number = re.search(r"\d+", reply or "")
        if number is not None:
            sizes = [Value(float(number.group(0)), (0, 0), None, "stated in an answer")]
        else:
            shown = " or ".join(f"{v:g}" for v in dict.fromkeys(v.value for v in sizes))
            issues.append(Issue("fleet_size", f"How many vehicles are on the road: {shown}?", f"{sizes[-1].value:g}",
                                "the request states two fleet sizes"))  # fmt: skip
    vague = VAGUE_FLEET.search(text) if not sizes and not unlimited else None
    if vague is not None:
        reply = answer("fleet_count")
        number = re.search(r"\d+", reply or "")
        if number is not None:
            sizes = [Value(float(number.group(0)), (0, 0), None, "stated in an answer")]
        elif reply is None:
            issues.append(Issue("fleet_count", f"How many {vague.group(1)} are there? (the request says "
                                f"{vague.group(0)!r})", "as many as the routes need",
                                "the fleet's size limits the routes"))  # fmt: skip
        else:
            unlimited = True
    unit_values = [d for c in kept for d in c.demands]
    same = [_in_unit(v, caps[0].unit, conversions) for v in caps] if caps else []
    if not types and (not caps or None in same or len({v.value for v in same if v is not None}) > 1):
        reply = answer("vehicle_capacity")
        number = re.search(NUM, reply or "")
        if number is not None:
            word = re.search(r"[A-Za-z]+", reply[number.end() :] if reply else "")
            caps = [Value(float(number.group(0)), (0, 0), unit_of(word.group(0)) if word else None,
                          "stated in an answer")]  # fmt: skip
        elif not _fleet_numbers_unread(text, unread):
            n = int(sizes[0].value) if len({v.value for v in sizes}) == 1 else None
            shown = " or ".join(f"{v.value:g}" for v in caps)
            what = f"the request states {shown}" if caps else "the request does not say"
            issues.append(Issue("vehicle_capacity", f"How much does one vehicle carry? ({what})",
                                f"{_fit_capacity([d.value for d in unit_values], n):g} (enough for the stated fleet to "
                                f"carry every amount; illustrative)",
                                "without it the loads cannot be checked"))  # fmt: skip
    capacity = caps[0] if caps and not any(i.id == "vehicle_capacity" for i in issues) else None

    # units: every amount in one unit
    unit = _base_unit(unit_values + ([capacity] if capacity else []), capacity.unit if capacity else None,
                      conversions)  # fmt: skip
    units = {v.unit for v in unit_values + ([capacity] if capacity else []) if v.unit}
    stated = list(conversions)
    if unit is None and len(units) > 1:
        small, big = sorted(units, key=lambda u: sum(v.unit == u for v in unit_values), reverse=True)[:2]
        qid = f"{_plural(small)}_per_{big}"
        reply = answer(qid)
        number = re.search(NUM, reply or "")
        if number is not None:
            stated.append(
                Conversion(small, big, float(number.group(0)), (0, 0), f"1 {big} = {number.group(0)} {small}")
            )
            unit = _base_unit(unit_values + ([capacity] if capacity else []),
                              capacity.unit if capacity else None, stated)  # fmt: skip
        if unit is None:
            ask = f"How many {_plural(small)} make one {big}? The capacity and the amounts are in different units."
            issues.append(Issue(qid, ask, "not stated", "loads cannot be compared across units"))
    notes = [c.text for c in stated]

    assumed = tuple(f"{f.label}: {f.value}" for f in used if f.assumed)
    answered = tuple(f"{f.label}: {f.value}" for f in used if not f.assumed)
    service = Value(every[0][0], every[0][1]) if every else None
    reading = StructuredReading(text, tuple(kept), depot, tuple(pool) if len(places) > 1 else (), tuple(sizes),
                                tuple(caps), unlimited, service, unit, tuple(stated), tuple(ignored), unread,
                                tuple(issues), assumed, answered, notes=tuple(notes), depots=tuple(depots),
                                types=tuple(types))  # fmt: skip
    if issues:
        return reading
    try:
        problem = _problem(reading, capacity)
    except ValueError as exc:
        why = describe_validation(exc) if isinstance(exc, ValidationError) else str(exc)
        return replace(reading, error=f"invalid problem: {why}" if isinstance(exc, ValidationError) else why)
    return replace(reading, problem=problem)


def _fit_capacity(amounts: Sequence[float], vehicles: int | None) -> float:
    """The least capacity with which ``vehicles`` vehicles carry every amount (first fit, largest first), for a
    default nobody stated; with an unlimited fleet, the largest amount."""
    if not amounts:
        return 1.0
    capacity = max(max(amounts), math.ceil(sum(amounts) / vehicles) if vehicles else 0)
    while vehicles:
        loads: list[float] = []
        for a in sorted(amounts, reverse=True):
            k = next((i for i, load in enumerate(loads) if load + a <= capacity), None)
            if k is None:
                loads.append(a)
            else:
                loads[k] += a
        if len(loads) <= vehicles:
            break
        capacity += 1
    return float(math.ceil(capacity))


def _fleet_numbers_unread(text: str, unread: Sequence[Value]) -> bool:
    """Whether an unread number stands on a line that speaks of the fleet (a capacity no rule read: the model may)."""
    fleet = re.compile(r"vehicle|truck|van|lorr|bike|courier|fleet|capacity|load|carr|hold", re.I)
    lines = [(a, b) for a, b in lines_of(text) if fleet.search(text, a, b)]
    return any(a <= v.span[0] < b for v in unread for a, b in lines)


def _place(c: Item, point: Point | None = None, *, near: bool = False) -> str:
    """A depot option's name: for one of several places in one span (or with ``near``, for any), the words just
    before it ("... from the north warehouse at (5, 20) or the south warehouse at (10, 0)")."""
    if point is None or (len(c.locations) < 2 and not near):
        return c.name or "the stop"
    k = c.locations.index(point)
    begin = c.span[0] if k == 0 else c.locations[k - 1].y.span[1] + 1
    text = c.span_text[begin - c.span[0] : point.x.span[0] - c.span[0]].rstrip(" ({[")
    before = re.split(r"[,:;.()]|\b(?:from|or|and|either)\b", text)[-1]
    return clean_name(before) or c.name or "the stop"


def _plural(unit: str) -> str:
    return {"box": "boxes", "loaf": "loaves", "kg": "kg", "t": "tonnes", "l": "litres", "m3": "m3"}.get(
        unit, unit + "s"
    )


def _pick_depot(options: Sequence[tuple[Item, Point]], reply: str) -> tuple[Item, Point] | None:
    pair = _PAIR.search(reply)
    if pair is not None:
        xy = (float(pair.group(1)), float(pair.group(2)))
        return next(((c, p) for c, p in options if p.xy == xy), None)
    words = set(re.findall(r"[a-z]+", reply.lower()))
    hits = [(c, p) for c, p in options if set(re.findall(r"[a-z]+", _place(c, p).lower())) & words - {"the", "depot"}]
    return hits[0] if len(hits) == 1 else None


def _pick_index(names: Sequence[str], reply: str) -> int | None:
    """The one depot of ``names`` whose distinctive words the reply uses (None: none or several)."""
    return named_depot(names, set(re.findall(r"[a-z]+", reply.lower())))


def _problem(reading: StructuredReading, capacity: Value | None) -> RoutingProblem:
    """The :class:`RoutingProblem` the reading states (raises ``ValueError`` naming what is missing or invalid)."""
    if reading.depot is None or reading.depot.location is None:
        raise ValueError("no depot location")
    if capacity is None:
        raise ValueError("no vehicle capacity")
    if not reading.customers:
        raise ValueError("no customers")
    unit, conv = reading.unit, reading.conversions
    cap = _in_unit(capacity, unit, conv)
    if cap is None or not float(cap.value).is_integer():
        raise ValueError(f"the capacity {capacity.value:g} is not a whole number of {unit or 'units'}")
    taken = {c.number for c in reading.customers if c.number is not None}
    if len(taken) < sum(c.number is not None for c in reading.customers):
        raise ValueError("a customer number is stated twice")
    free = (i for i in range(1, 10**6) if i not in taken)
    rows = []
    for c in reading.customers:
        demand = _in_unit(c.demand, unit, conv) if c.demand is not None else None
        if demand is None or c.location is None or not float(demand.value).is_integer():
            raise ValueError(f"{c.label}: its amount is not a whole number of {unit or 'units'}")
        service = c.service or reading.service
        row: dict[str, Any] = {"id": c.number if c.number is not None else next(free), "x": c.location.x.value,
                               "y": c.location.y.value, "demand": int(demand.value)}  # fmt: skip
        if c.number is None and c.name:
            row["name"] = c.name
        if c.ready is not None:
            row["ready"] = c.ready.value
        if c.due is not None:
            row["due"] = c.due.value
        if service is not None:
            row["service"] = service.value
        rows.append(row)
    d = reading.depot
    depot: dict[str, Any] = {"x": d.location.x.value, "y": d.location.y.value}  # type: ignore[union-attr]
    if d.due is not None:
        depot["due"] = d.due.value
    if d.ready is not None:
        depot["ready"] = d.ready.value
    timed = any("due" in r or r.get("ready", 0) > 0 for r in rows) or "due" in depot or depot.get("ready", 0) > 0
    if not timed:
        depot.pop("ready", None)
    fleet: dict[str, Any] = {"vehicles": reading.fleet_size, "capacity": int(cap.value)}
    if reading.types:
        fleet = {"types": [_vehicle_type(t, unit, conv) for t in reading.types]}
    where: dict[str, Any] = {"depot": depot}
    if reading.depots:
        where = {"depots": [{"x": d.location.x.value, "y": d.location.y.value}  # type: ignore[union-attr]
                            for d in reading.depots]}  # fmt: skip
    return RoutingProblem.model_validate(
        {"name": "request", **where, "customers": sorted(rows, key=lambda r: r["id"]), "fleet": fleet,
         "time_windows": timed, "rounding": "exact"}
    )  # fmt: skip


def _vehicle_type(t: TypeReading, unit: str | None, conv: Sequence[Conversion]) -> dict[str, Any]:
    cap = _in_unit(t.capacity, unit, conv)
    if cap is None or not float(cap.value).is_integer():
        raise ValueError(f"the {t.name or 'vehicles'}' capacity {t.capacity.value:g} is not a whole number of "
                         f"{unit or 'units'}")  # fmt: skip
    out: dict[str, Any] = {"name": t.name, "capacity": int(cap.value), "count": int(t.count.value),
                           "depot": t.depot or 0}  # fmt: skip
    if t.fixed_cost is not None:
        out["fixed_cost"] = t.fixed_cost.value
    return out
