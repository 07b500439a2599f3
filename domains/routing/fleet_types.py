"""A mixed fleet and several depots read from a request's words: "2 vans (capacity 40 kg) and 1 lorry (capacity 120
kg)", "At the main depot we keep 2 vans (35 cases each); at the overflow depot 1 lorry (90 cases)", "small vans: 4,
capacity 25 pallets, fixed cost 30".

The fleet statements (:func:`~longthink.domains.routing.lexicon.find_fleet`) are grouped by the clause that states
them: a line cut at its semicolons, its sentences and its "and"s. A clause with one vehicle count and one capacity
is one vehicle type; its depot is the one whose own name words the clause uses ("North", "Leeds", "overflow"), and
its fixed cost the number after "fixed cost". The fleet is mixed when two clauses or more each state a type and no
count or capacity stands outside them: anything less sure is left to the single-fleet reading, which asks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from longthink.domains.routing.lexicon import NUM, SPAN, UNIT_WORDS, VEHICLE, FleetStatement, lines_of, unit_of
from longthink.domains.routing.tables import Value

_CUT = re.compile(r";|(?<=[a-z0-9)\]])\.\s+(?=[A-Z])|,?\s+(?:and|plus|while|whereas)\s+", re.I)
_FIXED = re.compile(rf"\b(?:fixed cost|cost per (?:route|trip|day|use|vehicle|{VEHICLE}))\s*(?:of\s*)?[:=]?\s*"
                    rf"[$€£]?\s*({NUM})", re.I)  # fmt: skip
_PER_ROUTE = re.compile(rf"[$€£]\s*({NUM})\s*(?:per|a|an|for each|each)\s+(?:route|trip|day|run|tour|use|vehicle|"
                        rf"{VEHICLE})\b", re.I)  # fmt: skip
_MONEY = re.compile(rf"[$€£]\s*({NUM})")
_PLURAL_DEPOTS = re.compile(
    r"\b(?:two|three|four|2|3|4|both|several|multiple|all|our|the)\s+(?:depots|warehouses|sites|hubs|yards|bases)\b|"
    r"\bdepots\s*:|\beither (?:depot|warehouse|site|hub|yard|base)\b",
    re.I,
)
VAGUE_FLEET = re.compile(
    rf"(?<!\bas )\b(?:some|several|a few|a number of|multiple|a fleet of)\s+((?:[a-z][a-z-]*\s+){{0,2}}?{VEHICLE})\b",
    re.I,
)
"""A fleet whose size the request does not state ("some vans", "several trucks"): a question, not a guess."""
_GENERIC = frozenset({
    "the", "a", "an", "our", "at", "in", "of", "and", "from", "to", "is",
    "depot", "depots", "warehouse", "warehouses", "hub", "hubs", "site", "sites", "yard", "yards", "base", "bases",
})  # fmt: skip
"""Words every depot's name may have: they never tell one depot from another."""
_NAME = re.compile(rf"(?<![\w.])\d+\s+((?:[a-z][a-z-]*\s+){{0,2}}?{VEHICLE})\b|\b({VEHICLE})\s*[:=(]", re.I)


@dataclass(frozen=True, slots=True)
class TypeReading:
    """One vehicle type as a clause of the request states it: its name ("vans"), how many (``count``), what each
    carries (``capacity``, with its unit), its fixed cost per route, and the depot it starts from (an index into
    the depots read, None when the clause names none)."""

    name: str
    count: Value
    capacity: Value
    span: SPAN
    fixed_cost: Value | None = None
    depot: int | None = None

    def as_data(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "count": self.count.as_data(),
                                  "capacity": self.capacity.as_data(), "span": list(self.span)}  # fmt: skip
        if self.fixed_cost is not None:
            out["fixed_cost"] = self.fixed_cost.as_data()
        if self.depot is not None:
            out["depot"] = self.depot
        return out


def clauses(text: str) -> list[SPAN]:
    """``text`` cut into clauses: each line at its semicolons, sentence ends and "and"s."""
    out: list[SPAN] = []
    for start, end in lines_of(text):
        begin = start
        for m in _CUT.finditer(text, start, end):
            if m.start() > begin:
                out.append((begin, m.start()))
            begin = m.end()
        if begin < end:
            out.append((begin, end))
    return out


def says_several_depots(text: str) -> bool:
    """Whether the request speaks of its depots in the plural ("our two depots", "both warehouses", "Depots:")."""
    return _PLURAL_DEPOTS.search(text) is not None


def depot_words(name: str) -> set[str]:
    """The words that tell one depot from another ("north", "leeds", "overflow"): its name less the generic ones."""
    return {w for w in re.findall(r"[a-z]+", name.lower()) if w not in _GENERIC and len(w) > 1}


def named_depot(names: Sequence[str], words: set[str]) -> int | None:
    """The one depot of ``names`` that ``words`` name by a word only its name has ("north" of "North depot" and
    "South depot"); None when no depot or several are named."""
    own = [depot_words(n) for n in names]
    unique = [w - set().union(*(o for j, o in enumerate(own) if j != i)) for i, w in enumerate(own)]
    hits = [i for i, u in enumerate(unique) if u & words]
    return hits[0] if len(hits) == 1 else None


def read_types(
    text: str, fleet: Sequence[FleetStatement], unread: Sequence[Value], depots: Sequence[str] = ()
) -> tuple[list[TypeReading], list[Value], list[Value]]:
    """The vehicle types the request states (empty unless the fleet is mixed: see the module docstring) and the
    unread numbers the types account for (a capacity no fleet rule read, "1 truck at the South depot, 60 boxes";
    a fixed cost), and the amounts of money in a type's clause that are not its fixed cost ("$0.80 per km": a cost
    these rules do not read, so the reading is not complete). ``depots`` are the depots' names, in the order of the
    problem's depots."""
    sizes = [s for s in fleet if s.kind == "vehicles"]
    caps = [s for s in fleet if s.kind == "capacity"]
    if len(sizes) < 2 or any(s.kind == "unlimited" for s in fleet):
        return [], [], []
    types: list[TypeReading] = []
    used: list[Value] = []
    missed: list[Value] = []
    placed: set[int] = set()
    for a, b in clauses(text):
        mine = [s for s in sizes if a <= s.span[0] < b]
        if not mine:
            continue
        if len(mine) > 1:
            return [], [], []
        size = mine[0]
        their = [c for c in caps if a <= c.span[0] < b]
        if len(their) > 1:
            return [], [], []
        if their:
            cap = Value(their[0].value or 0, their[0].span, their[0].unit)
        else:
            late = [v for v in unread if size.span[1] <= v.span[0] < b]
            word = re.match(rf"\s*({UNIT_WORDS})\b", text[late[0].span[1] : b], re.I) if len(late) == 1 else None
            if word is None:
                return [], [], []
            cap = Value(late[0].value, late[0].span, unit_of(word.group(1)))
            used.append(late[0])
        placed.update(id(s) for s in (size, *their))
        fixed = None
        m = _FIXED.search(text, a, b) or _PER_ROUTE.search(text, a, b)
        for money in _MONEY.finditer(text, a, b):  # a cost the rules do not read ("$0.80 per km") is not dropped
            if m is None or money.span(1) != m.span(1):
                missed.append(Value(float(money.group(1)), money.span(1)))
        if m is not None:
            hit = next((v for v in unread if v.span == m.span(1)), None)
            fixed = Value(float(m.group(1)), m.span(1))
            if hit is not None:
                used.append(hit)
        words = set(re.findall(r"[a-z]+", text[a:b].lower()))
        where = named_depot(depots, words)
        name = _NAME.search(text, a, b)
        label = next((g for g in name.groups() if g), "") if name is not None else ""
        types.append(TypeReading(label.lower(), Value(size.value or 0, size.span), cap, (a, b), fixed,
                                 where))  # fmt: skip
    if len(types) < 2 or any(id(s) not in placed for s in (*sizes, *caps)):
        return [], [], []
    kinds = [(t.name.rstrip("s"), t.capacity.value, t.capacity.unit, t.depot, t.fixed_cost and t.fixed_cost.value)
             for t in types]  # fmt: skip
    if len(set(kinds)) < len(kinds):  # "2 vans of 40 ... on Fridays 3 vans of 40": one fleet stated twice, a question
        return [], [], []
    return types, used, missed
