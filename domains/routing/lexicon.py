"""The words of routing requests and the spans they mark: numbers, distractors, locations, quantities with their
units, unit conversions, fleet statements, time windows and service times.

Every finder works on a :class:`Work` — the request's text with the spans already read blanked out, offsets kept —
and returns what it found with the character offsets it came from, so a reading can say where each value stands in
the request (:mod:`.structure`). Fleet statements are read line by line: a number on one line never sizes a fleet
named on the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90, "a hundred": 100, "one hundred": 100, "a dozen": 12, "a pair of": 2, "a single": 1,
}  # fmt: skip
"""Small numbers written as words, read as counts and amounts ("two vans", "a dozen crates")."""

NUM = r"-?\d+(?:\.\d+)?"
_NUMBER = re.compile(rf"(?<![\w.]){NUM}(?![\w]|\.\d)")
_WORD_NUM = "|".join(sorted((re.escape(w) for w in NUMBER_WORDS), key=len, reverse=True))
COUNT = rf"(?:\d+|{_WORD_NUM})"
"""A count: digits or a small number word ("two", "a dozen")."""
QTY = rf"(?:{NUM}|{_WORD_NUM})"

SPAN = tuple[int, int]


def number_value(raw: str) -> float:
    """The value of a number as a finder matched it: digits or a number word."""
    raw = raw.strip().lower()
    return float(NUMBER_WORDS[raw]) if raw in NUMBER_WORDS else float(raw)


class Work:
    """A request's text with what has been read blanked out (offsets kept): later finders see only the rest."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._chars = list(text)
        self._cached: str | None = text

    def copy(self) -> Work:
        """An independent copy (to try a reading without blanking anything here)."""
        other = Work(self.text)
        other._chars = list(self._chars)
        other._cached = None
        return other

    @property
    def s(self) -> str:
        if self._cached is None:
            self._cached = "".join(self._chars)
        return self._cached

    def consume(self, start: int, end: int, fill: str = " ") -> None:
        for i in range(start, end):
            if self._chars[i] != "\n":
                self._chars[i] = fill
        self._cached = None

    def numbers(self, start: int = 0, end: int | None = None) -> list[tuple[float, SPAN]]:
        """The numbers still unread in ``[start, end)``, with their spans."""
        s = self.s
        stop = len(s) if end is None else end
        out = []
        for m in _NUMBER.finditer(s, start, stop):
            raw = m.group(0)
            begin = m.start()
            if raw.startswith("-") and begin > 0 and (s[begin - 1].isalnum() or s[begin - 1] in "–"):
                raw, begin = raw[1:], begin + 1  # "10-20": a range, not minus twenty
            out.append((float(raw), (begin, m.end())))
        return out


# -- distractors ----------------------------------------------------------------------------------------------------
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
    r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DISTRACTORS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}\b|\b\d{1,2}[/.]\d{1,2}[/.]\d{2,4}\b|\(\d{1,2}/\d{1,2}\)")),
    ("date", re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\b(?:\s+\d{{4}})?|"
                        rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b")),
    ("price", re.compile(r"[£$€¥]\s?\d+(?:[.,]\d+)?(?:\s*(?:/|per|an?)\s*[a-z]+\b)?|\b\d+(?:\.\d+)?\s*(?:EUR|GBP|USD|"
                         r"euros?|dollars?|pounds?|pence|cents?)\b", re.I)),
    ("rate", re.compile(r"\b\d+(?:\.\d+)?\s*(?:/|per|an?)\s*(?:km|kilomet(?:re|er)s?|miles?|mi|hours?|hr|h|litres?|"
                        r"liters?|gallons?|days?|weeks?|months?|shifts?)\b", re.I)),
    ("reference", re.compile(r"\b(?:invoice|inv|order|po|ref(?:erence)?|ticket|booking|job|batch|account|acct|"
                             r"shipment|tracking|ext(?:ension)?)\b\.?\s*(?:no\.?|number|nr\.?|"
                             r"#)?\s*[:#-]?\s*[A-Z]{0,4}-?\d[\d-]*\b", re.I)),
    ("reference", re.compile(r"\b[A-Z]{2,5}-\d{2,}\b")),
    ("address", re.compile(r"\b(?:Unit|Flat|Suite|Apt\.?|Building|Gate|Bay|Room|Floor|Plot)\s+\d+[A-Za-z]?\b")),
)  # fmt: skip
UNCERTAIN_DEMAND = re.compile(
    r"\bdemands?\b[^.\n]{0,60}?\b(?:may|might|could|can|will)\b[^.\n]{0,30}?\b(?:up\s+to\s+|by\s+|as\s+much\s+as\s+)?"
    r"(\d{1,3}(?:\.\d+)?)\s*(?:%|per\s*cent|percent)",
    re.I,
)
"""A statement that demand is uncertain ("demand may be up to 20% higher"): not a value of the problem; the share is
read by :func:`longthink.domains.routing.scenarios.find_uncertainty`."""
BREAKDOWN_VEHICLE = (
    r"(?:vehicles?|trucks?|vans?|lorr(?:y|ies)|(?:cargo[- ])?bikes?|bicycles?|cars?|scooters?|motorbikes?|pick-?ups?|"
    r"hgvs?|reefers?)"
)
BREAKDOWN = re.compile(
    rf"\b(?:one|a|any|1|either|some)\s+(?:of\s+(?:the|our|these|those)\s+)?(?:[a-z-]+\s+)?{BREAKDOWN_VEHICLE}\s+"
    rf"(?:may|might|could|can|will\s+(?:probably|likely|possibly))\s+(?:well\s+)?(?:break\s*down|fail|be\s+"
    rf"(?:unavailable|out\s+of\s+service|off\s+the\s+road|in\s+the\s+(?:garage|shop|workshop)|down))|"
    rf"\b(?:in\s+case|if|should|when)\s+(?:one|a|any|1|either)\s+(?:of\s+(?:the|our)\s+)?(?:[a-z-]+\s+)?"
    rf"{BREAKDOWN_VEHICLE}\s+(?:breaks?\s*down|fails?|is\s+(?:unavailable|out\s+of\s+service|off\s+the\s+road))",
    re.I,
)
"""A statement that a vehicle may break down ("one truck may break down", "in case a van breaks down"): not a
fleet size; read by :func:`longthink.domains.routing.scenarios.find_uncertainty`."""
_PHONE = re.compile(r"(?<![\w.,])\+?\(?\d[\d ()-]{7,}\d(?![\w,])")
_PHONE_CUE = re.compile(r"(?:tel|phone|call|ring|contact|mobile|fax|whatsapp|text|on)\W{0,3}$", re.I)


def mask_distractors(work: Work) -> list[tuple[str, SPAN, str]]:
    """Blank out the numbers that are never values: phone numbers, dates, prices and rates ("45 per hour"),
    invoice/order/reference numbers, address numbers ("Unit 4"), a demand uncertainty ("demand may be 20% higher"),
    a vehicle that may break down ("one truck may break down").
    Returns (kind, span, text) of each."""
    found: list[tuple[str, SPAN, str]] = []
    s = work.s
    for m in _PHONE.finditer(s):
        raw = m.group(0)
        digits = sum(ch.isdigit() for ch in raw)
        groups = len(re.findall(r"\d+", raw))
        first = raw.lstrip("+( ")
        cue = _PHONE_CUE.search(s[max(0, m.start() - 12) : m.start()]) is not None
        if digits >= 9 and groups >= 2 and (raw.startswith("+") or first.startswith("0") or cue):
            found.append(("phone", (m.start(), m.end()), raw))
            work.consume(m.start(), m.end())
    for m in BREAKDOWN.finditer(work.s):  # no number in it, but "one truck" would read as a fleet of one
        found.append(("breakdown", (m.start(), m.end()), m.group(0)))
        work.consume(m.start(), m.end())
    for kind, pattern in (("uncertainty", UNCERTAIN_DEMAND), *_DISTRACTORS):
        for m in pattern.finditer(work.s):
            if any(ch.isdigit() for ch in m.group(0)):
                found.append((kind, (m.start(), m.end()), m.group(0)))
                work.consume(m.start(), m.end())
    return found


# -- locations ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Location:
    """A point as the request writes it: "(3, 4)", "x=3, y=4", "pos 3,4", "3 4" at the end of a line."""

    x: float
    y: float
    span: SPAN
    x_span: SPAN
    y_span: SPAN


_DIST = r"(?:\s*(?:km|m|mi|miles?)\b)?"
_PAREN = re.compile(rf"\(\s*({NUM}){_DIST}\s*[,;]\s*({NUM}){_DIST}\s*\)")
_XY = re.compile(
    rf"(?:[({{]\s*)?\bx\s*[=:]\s*({NUM}){_DIST}\s*[,;/]?\s*(?:and\s+)?\by\s*[=:]\s*({NUM}){_DIST}(?:\s*[}})])?",
    re.I,
)
_LATLON = re.compile(rf"\blat(?:itude)?\s*[=:]?\s*({NUM})\s*[,;/]?\s*\blon(?:g|gitude)?\s*[=:]?\s*({NUM})", re.I)
_BARE = re.compile(rf"(?<![\w.,-])({NUM})\s*,\s*({NUM})(?!\w|\.\d|,\s*-?\d)")
_BARE_CUE = re.compile(
    r"(?:[:=]|->|→|\b(?:at|is|pos|position|point|depot|located|location|loc|coords?|coordinates|start|base|xy|"
    r"hub|yard|warehouse))\s*$",
    re.I,
)
_SPACED = re.compile(rf"[A-Za-z)'’.][^\d\n]*?\s({NUM})\s+({NUM})\s*$")


def find_locations(work: Work) -> list[Location]:
    """Every location still unread in ``work`` written inline ("(3, 4)", "x=3, y=4", "pos 3,4", "lat 51.5, lon
    -0.1"), blanked with ``§`` once found, so that its numbers are not read again and a clause still shows where
    it stood."""
    found: list[Location] = []
    for pattern in (_PAREN, _XY, _LATLON):
        for m in list(pattern.finditer(work.s)):
            found.append(_take(work, m, swap=pattern is _LATLON))
    for m in list(_BARE.finditer(work.s)):
        before = work.s[max(0, m.start() - 16) : m.start()]
        after = work.s[m.end() : m.end() + 12]
        if _BARE_CUE.search(before) and not re.match(rf"\s*(?:{UNIT_WORDS}|each|per)\b", after, re.I):
            found.append(_take(work, m))
    return sorted(found, key=lambda loc: loc.span)


def find_line_locations(work: Work) -> list[Location]:
    """Lines that end in two bare numbers after a name ("Alvarez Garage 14 22"): the name's location (read after
    the fleet statements are blanked, so that "VEHICLES 2 CAPACITY 16" is not one)."""
    found: list[Location] = []
    for start, end in lines_of(work.s):
        line = work.s[start:end]
        m = _SPACED.search(line)
        if m is not None and "§" not in line and len(_NUMBER.findall(line)) == 2:
            x, y = float(m.group(1)), float(m.group(2))
            sx, sy = (start + m.start(1), start + m.end(1)), (start + m.start(2), start + m.end(2))
            found.append(Location(x, y, (sx[0], sy[1]), sx, sy))
            work.consume(sx[0], sy[1], "§")
    return found


def _take(work: Work, m: re.Match[str], *, swap: bool = False) -> Location:
    """The location matched by ``m`` (x then y; ``swap``: "lat, lon" is y then x, as in a table's lat/lon columns)."""
    work.consume(m.start(), m.end(), "§")
    x, y = (2, 1) if swap else (1, 2)
    return Location(float(m.group(x)), float(m.group(y)), (m.start(), m.end()), m.span(x), m.span(y))


# -- units and quantities ------------------------------------------------------------------------------------------
_UNITS = {
    "unit": ("units", "unit"), "crate": ("crates", "crate"), "box": ("boxes", "box"),
    "pallet": ("pallets", "pallet"), "parcel": ("parcels", "parcel"), "case": ("cases", "case"),
    "bouquet": ("bouquets", "bouquet"), "loaf": ("loaves", "loaf"), "bottle": ("bottles", "bottle"),
    "item": ("items", "item"), "package": ("packages", "package", "packs", "pack"), "bag": ("bags", "bag"),
    "carton": ("cartons", "carton"), "tray": ("trays", "tray"), "keg": ("kegs", "keg"), "sack": ("sacks", "sack"),
    "roll": ("rolls", "roll"), "piece": ("pieces", "piece", "pcs"), "can": ("cans",), "barrel": ("barrels", "barrel"),
    "drum": ("drums", "drum"), "container": ("containers", "container"), "tote": ("totes", "tote"),
    "kg": ("kg", "kgs", "kilos", "kilo", "kilograms", "kilogram"), "t": ("t", "tonnes", "tonne", "tons", "ton"),
    "l": ("litres", "litre", "liters", "liter"), "m3": ("m3", "m³", "cubic metres", "cubic meters"),
}  # fmt: skip
UNIT_OF = {word: unit for unit, words in _UNITS.items() for word in words}
UNIT_WORDS = "|".join(sorted((re.escape(w) for w in UNIT_OF), key=len, reverse=True))
BUILTIN: dict[tuple[str, str], float] = {("kg", "t"): 1000.0}
"""Conversions every request may use: (small, big) -> how many small in one big."""


def unit_of(word: str | None) -> str | None:
    """The canonical unit of a word ("crates" -> "crate"; "units" and None are no unit in particular)."""
    if word is None:
        return None
    unit = UNIT_OF.get(word.lower().strip())
    return None if unit == "unit" else unit


_QUANTITY = re.compile(rf"(?<![\w.])(?:(?:about|around|approx\.?|~)\s*)?({QTY})\s*({UNIT_WORDS})\b(?![-/]\w)", re.I)
_RANGE = re.compile(rf"(?<![\w.])(?:(?:about|around|approx\.?|~|roughly)\s*)?({NUM})\s*(?:-|–|to|or)\s*({NUM})\s*"
                    rf"({UNIT_WORDS})\b", re.I)  # fmt: skip
_KEYED = re.compile(
    rf"\b(?:qty|quantity|demand|load|needs?|wants?|requires?|orders?|takes?|weight|volume|amount|drop|deliver)\b"
    rf"\s*[:=]?\s*(?:of\s+)?(?:about\s+)?({QTY})\b(?:\s*({UNIT_WORDS})\b)?",
    re.I,
)


@dataclass(frozen=True, slots=True)
class Quantity:
    """An amount as stated: its value, its unit (None: none given, or plain "units") and where it stands."""

    value: float
    unit: str | None
    span: SPAN
    text: str


def find_quantities(work: Work, start: int, end: int) -> list[Quantity]:
    """The amounts in ``[start, end)`` with a unit ("15 crates", "1.2 t") or a key ("qty 11", "needs 9")."""
    out: list[Quantity] = []
    s = work.s
    for pattern in (_QUANTITY, _KEYED):
        for m in pattern.finditer(s, start, end):
            if any(m.start(1) < q.span[1] and q.span[0] < m.end(1) for q in out):
                continue
            unit_word = m.group(2) if m.lastindex and m.lastindex >= 2 else None
            out.append(Quantity(number_value(m.group(1)), unit_of(unit_word), (m.start(1), m.end(1)), m.group(0)))
    return sorted(out, key=lambda q: q.span)


def find_ranges(work: Work, start: int, end: int) -> list[tuple[float, float, SPAN]]:
    """Amounts stated as a range ("about 10-12 crates"): not one value."""
    return [(float(m.group(1)), float(m.group(2)), m.span()) for m in _RANGE.finditer(work.s, start, end)]


# -- unit conversions ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Conversion:
    """``factor`` ``small`` make one ``big`` ("a pallet is 40 boxes": small box, big pallet, factor 40)."""

    small: str
    big: str
    factor: float
    span: SPAN
    text: str


_CONV_IS = re.compile(
    rf"\b(?:a|an|one|1|each|every)\s+({UNIT_WORDS})\s*(?:is|=|holds|contains|has|equals|takes|of)\s+({NUM})\s+"
    rf"({UNIT_WORDS})\b",
    re.I,
)
_CONV_PER = re.compile(
    rf"\b({NUM})\s+({UNIT_WORDS})\s+(?:per|to a|to an|in a|in an|in one|to one|/)\s*({UNIT_WORDS})\b", re.I
)
_CONV_PAREN = re.compile(rf"({UNIT_WORDS})\s*\(\s*({NUM})\s+(?:per|to a|to an|a|/)\s*({UNIT_WORDS})\s*\)", re.I)


def find_conversions(work: Work) -> list[Conversion]:
    """Conversions the request states ("1 pallet = 20 boxes", "a pallet is 40 boxes", "6 bottles per case",
    "120 bottles (6 per case)"), blanked once read (the quantity before a parenthesis is kept)."""
    out: list[Conversion] = []
    for m in list(_CONV_IS.finditer(work.s)):
        big, small = unit_of(m.group(1)), unit_of(m.group(3))
        if big and small and big != small:
            out.append(Conversion(small, big, float(m.group(2)), m.span(), m.group(0)))
            work.consume(*m.span())
    for m in list(_CONV_PER.finditer(work.s)):
        small, big = unit_of(m.group(2)), unit_of(m.group(3))
        if big and small and big != small:
            out.append(Conversion(small, big, float(m.group(1)), m.span(), m.group(0)))
            work.consume(*m.span())
    for m in list(_CONV_PAREN.finditer(work.s)):
        small, big = unit_of(m.group(1)), unit_of(m.group(3))
        if big and small and big != small:
            begin = m.start(2) - 1
            while begin > 0 and work.s[begin] != "(":
                begin -= 1
            out.append(Conversion(small, big, float(m.group(2)), (begin, m.end()), m.group(0)))
            work.consume(begin, m.end())
    return out


# -- the fleet ------------------------------------------------------------------------------------------------------
VEHICLE = (
    r"(?:vehicles?|trucks?|vans?|lorr(?:y|ies)|(?:cargo[- ])?bikes?|bicycles?|couriers?|drivers?|cars?|riders?|"
    r"scooters?|motorbikes?|pick-?ups?|hgvs?|reefers?)"
)
_ADJ = rf"(?:(?!(?:{UNIT_WORDS}|of|per|each|and|or|with|at|to|from|in)\b)[a-z][a-z-]*\s+){{0,2}}"


@dataclass(frozen=True, slots=True)
class FleetStatement:
    """What one span says of the fleet: a size (``vehicles``), a capacity with its unit, or that the fleet is
    unlimited ("as many vans as it takes")."""

    kind: str  # "vehicles" | "capacity" | "unlimited"
    value: float | None
    unit: str | None
    span: SPAN
    text: str


_COUNTS = (
    re.compile(rf"(?<!least )(?<!minimum of )(?<![\w.])({COUNT})\s+{_ADJ}{VEHICLE}\b", re.I),
    re.compile(rf"\b{VEHICLE}\s*[:=]\s*({COUNT})\b(?!\s*(?:{UNIT_WORDS})\b)", re.I),
    re.compile(rf"\b{VEHICLE}\s+({COUNT})\b(?=\s*(?:$|[,;.)]|capacity\b|and\b|cap\b))", re.I | re.M),
    re.compile(rf"\b{VEHICLE}\s*\(\s*({COUNT})\s*(?=[,)])", re.I),
    re.compile(rf"\bfleet(?:\s+size)?\s*(?:of|[:=])?\s*({COUNT})\b(?!\s*(?:{UNIT_WORDS})\b)", re.I),
    re.compile(rf"(?<![\w.])({COUNT})\s+(?:of them\s+)?(?:are|is)\s+(?:on the road|available|in service|working|"
               rf"running|free|usable|free to use)\b", re.I),
)  # fmt: skip
_CAPACITIES = (
    re.compile(rf"\b(?:capacity|cap|payload)(?:[ _](?:per|of each|of one|of a)[ _]{VEHICLE})?(?:\s+of)?\s*[:=]?\s*"
               rf"(?:up to\s+)?({QTY})\s*({UNIT_WORDS})?\b", re.I),
    re.compile(rf"\b{VEHICLE}\s*[,(:]\s*({QTY})\s*({UNIT_WORDS})\b(?!\s*(?:each|per)\b)", re.I),
    re.compile(rf"(?<![\w.])({QTY})\s*({UNIT_WORDS})\s*(?:of\s+)?(?:capacity|payload)\b", re.I),
    re.compile(rf"(?<![\w.])({QTY})\s*({UNIT_WORDS})\s+(?:max(?:imum)?\s+)?(?:each|apiece|per (?:{VEHICLE}|"
               rf"trip|route|load))\b", re.I),
    re.compile(rf"\b(?:each|every|a full|one|the|per)\s+(?:full\s+)?(?:{VEHICLE}\s+)?(?:that\s+|which\s+)?"
               rf"(?:can\s+)?(?:takes?|holds?|carr(?:y|ies)|carrying|fits?|is|has room for|loads?|moves?)\s+"
               rf"(?:up to\s+|at most\s+|max(?:imum)?\s+)?({QTY})\s*({UNIT_WORDS})\b", re.I),
    re.compile(rf"\beach\s+(?:with\s+)?({QTY})\s*({UNIT_WORDS})\b", re.I),
    re.compile(rf"\b{VEHICLE}\s+(?:that\s+|which\s+)?(?:each\s+)?(?:can\s+)?(?:takes?|holds?|carr(?:y|ies)|carrying|"
               rf"fits?|with room for|of|loads?)\s+(?:up to\s+|at most\s+|max(?:imum)?\s+)?({QTY})\s*({UNIT_WORDS})?\b",
               re.I),
    re.compile(rf"\b(?:max(?:imum)?|full)\s*(?:load|weight|payload)?\s*[:=]?\s*({QTY})\s*({UNIT_WORDS})\b", re.I),
    re.compile(rf"\b(?:{VEHICLE}|\d+)\s*(?:x|×|\*)\s*({QTY})\s*({UNIT_WORDS})?\b", re.I),
    re.compile(rf"\b(?:room for|up to)\s+({QTY})\s*({UNIT_WORDS})\b", re.I),
)  # fmt: skip
_BARE_CAPACITY = re.compile(rf"(?<![\w.])({QTY})\s+(?:max(?:imum)?\s+)?(?:each|apiece|per {VEHICLE})\b", re.I)
"""A capacity without a unit ("2 vans, 30 each", "limit 30 per van"), read only on a line that names a vehicle."""
_UNLIMITED = re.compile(
    rf"\b(?:as many {VEHICLE} as (?:it takes|needed|necessary|required|you (?:like|need|want)|we need)|"
    rf"unlimited {VEHICLE}|any number of {VEHICLE}|no limit on (?:the )?{VEHICLE})",
    re.I,
)
_FLEET_CONTEXT = re.compile(
    rf"(?<![a-z]){VEHICLE}(?![a-z])|\bfleet|capacity|payload|\bmax(?:imum)?\s+load|\beach\b", re.I
)


def find_fleet(work: Work) -> list[FleetStatement]:
    """The fleet statements of ``work``, line by line (a number on one line never sizes a fleet named on the next):
    sizes ("2 cargo bikes", "Lorries: 2", "VEHICLES 2", "fleet of 4", "only 2 are on the road"), capacities ("40
    crates each", "capacity 60", "each takes 10 tonnes", "2 vans of 25 units", "Max load: 40 t", "3 x 40 crates"),
    and an unlimited fleet ("as many vans as it takes"). "At least 3 trucks" is a minimum, not a size. Each
    statement is blanked once read."""
    out: list[FleetStatement] = []
    offset = 0
    for line in work.s.split("\n"):
        if _FLEET_CONTEXT.search(line):
            out += _line_fleet(work, offset, offset + len(line))
        offset += len(line) + 1
    return out


def _line_fleet(work: Work, start: int, end: int) -> list[FleetStatement]:
    out: list[FleetStatement] = []
    for m in list(_UNLIMITED.finditer(work.s, start, end)):
        out.append(FleetStatement("unlimited", None, None, m.span(), m.group(0)))
        work.consume(*m.span())
    bare = (_BARE_CAPACITY,) if re.search(rf"(?<![a-z]){VEHICLE}(?![a-z])", work.s[start:end], re.I) else ()
    for pattern in (*_CAPACITIES, *bare):
        for m in list(pattern.finditer(work.s, start, end)):
            value = number_value(m.group(1))
            unit_word = m.group(2) if (m.lastindex or 0) >= 2 else None
            out.append(FleetStatement("capacity", value, unit_of(unit_word), m.span(1), m.group(0)))
            work.consume(m.start(1), m.end(2) if unit_word else m.end(1))
    for pattern in _COUNTS:
        for m in list(pattern.finditer(work.s, start, end)):
            value = number_value(m.group(1))
            if value > 0:
                out.append(FleetStatement("vehicles", value, None, m.span(1), m.group(0)))
                work.consume(*m.span(1))
    return out


# -- time windows and service times --------------------------------------------------------------------------------
_WINDOWS = (
    re.compile(rf"\bbetween\s+(?:time\s+)?({NUM})\s+and\s+(?:time\s+)?({NUM})\b", re.I),
    re.compile(rf"\b(?:open|opens|available|accepts? deliveries|delivery window|window|time window|hours?)\s*"
               rf"[=:]?\s*(?:from\s+)?(?:time\s+)?({NUM})\s*(?:-|–|to|until|till)\s*(?:time\s+)?({NUM})\b", re.I),
    re.compile(rf"\bfrom\s+(?:time\s+)?({NUM})\s+(?:to|until|till)\s+(?:time\s+)?({NUM})\b", re.I),
    re.compile(rf"\bready\s*[=:]?\s*(?:at\s+)?({NUM})\b[,;]?\s*(?:and\s+)?due\s*[=:]?\s*(?:at\s+|by\s+)?"
               rf"({NUM})\b", re.I),
)  # fmt: skip
_DUE = re.compile(
    rf"\b(?:no later than|not after|by time|latest|due(?:\s+by)?|deadline|before time|closes?(?:\s+at)?)\s*[=:]?\s*"
    rf"({NUM})\b",
    re.I,
)
_READY = re.compile(
    rf"\b(?:not before|after time|earliest|ready(?:\s+at)?|at time|opens?(?:\s+at)?)\s*[=:]?\s*({NUM})\b", re.I
)


@dataclass(frozen=True, slots=True)
class Window:
    """A time window as stated (``ready`` or ``due`` None where only one end is given)."""

    ready: float | None
    due: float | None
    span: SPAN
    ready_span: SPAN | None
    due_span: SPAN | None


def find_windows(work: Work, start: int, end: int) -> list[Window]:
    """The time windows in ``[start, end)`` ("between 10 and 40", "open from 10 to 40", "window=10-40", "open
    0-120", "no later than 50"), blanked once read."""
    out: list[Window] = []
    for pattern in _WINDOWS:
        for m in list(pattern.finditer(work.s, start, end)):
            out.append(Window(float(m.group(1)), float(m.group(2)), m.span(), m.span(1), m.span(2)))
            work.consume(*m.span())
    for pattern, kind in ((_DUE, "due"), (_READY, "ready")):
        for m in list(pattern.finditer(work.s, start, end)):
            value = float(m.group(1))
            if kind == "due":
                out.append(Window(None, value, m.span(), None, m.span(1)))
            else:
                out.append(Window(value, None, m.span(), m.span(1), None))
            work.consume(*m.span())
    return out


_STOP = r"(?:stops?|customers?|clients?|deliver(?:y|ies)|drops?|visits?|sites?|shops?|stores?|locations?)"
_SERVICE_ITEM = re.compile(
    rf"\b(?:service(?:\s+time)?|unload(?:ing)?(?:\s+time)?|handover|dwell(?:\s+time)?|stop time)\s*(?:takes|is|of|=|:|"
    rf"lasts)?\s*({NUM})\b(?:\s*min(?:ute)?s?\b)?",
    re.I,
)
_SERVICE_ALL = (
    re.compile(rf"\b(?:each|every|per|at each|at every)\s+{_STOP}\s+(?:takes|needs|requires|lasts|is)\s+({NUM})\b"
               rf"(?:\s*min(?:ute)?s?\b)?(?:\s+(?:to unload|of service|for service|to hand over))?", re.I),
    re.compile(rf"\b(?:service(?:\s+time)?|unload(?:ing)?(?:\s+time)?|handover|dwell(?:\s+time)?|stop time)\s*"
               rf"(?:takes|is|of|=|:|lasts)?\s*({NUM})\b(?:\s*min(?:ute)?s?\b)?\s*(?:at|per|for|in)\s+(?:each|every|"
               rf"a|all)\s+{_STOP}", re.I),
    re.compile(rf"\b({NUM})\s*min(?:ute)?s?\s+(?:of service |to unload |unloading )?(?:at|per|for)\s+(?:each|every)\s+"
               rf"{_STOP}", re.I),
)  # fmt: skip


def find_service(work: Work, start: int, end: int, *, every: bool) -> list[tuple[float, SPAN, str]]:
    """Service times in ``[start, end)``: with ``every``, ones stated for every stop ("each stop takes 5 minutes to
    unload", "handover takes 3 at every stop"); else one stop's own ("service=4", "unloading takes 5")."""
    out = []
    for pattern in _SERVICE_ALL if every else (_SERVICE_ITEM,):
        for m in list(pattern.finditer(work.s, start, end)):
            out.append((float(m.group(1)), m.span(1), m.group(0)))
            work.consume(*m.span())
    return out


def spans_overlap(a: SPAN, b: SPAN) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def lines_of(text: str) -> Iterator[tuple[int, int]]:
    """The (start, end) of every line of ``text``."""
    offset = 0
    for line in text.split("\n"):
        yield offset, offset + len(line)
        offset += len(line) + 1
