"""The typed deterministic reading of a request, and its readers for tabular blocks.

A reading holds, for every value, the span of the request it came from (:class:`Value`): each stated stop is an
:class:`Item` (one table row, one list line, one clause) with its name or number, location, demand, time window
and service time. :func:`read_blocks` reads the blocks that are tables whatever their wording: a Markdown table,
a CSV-like block pasted inline (a header line, then rows), and YAML-like item lists (``- name: X`` followed by
``x: ...`` lines). Columns are found by their header, in any order: a name or id, ``x``/``y`` (or ``lon``/``lat``)
or one ``location`` column holding ``(x, y)``, the demand under any amount word (demand, qty, load, boxes, crates,
pallets, kg, tonnes...; a unit in the header, "Demand (pallets)", is the demand's unit), a window column
("0–60") or ``open``/``close`` (``ready``/``due``, ``from``/``to``) columns, and a service column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from longthink.domains.routing.lexicon import NUM, SPAN, UNIT_WORDS, Work, lines_of, unit_of


@dataclass(frozen=True, slots=True)
class Value:
    """A number read from the request: where it stands (``span``, offsets in the request), its unit as stated
    (None: none given), and a note when it was converted ("1.2 t = 1200 kg")."""

    value: float
    span: SPAN
    unit: str | None = None
    note: str = ""

    def as_data(self) -> dict[str, object]:
        out: dict[str, object] = {"value": self.value, "span": list(self.span)}
        if self.unit:
            out["unit"] = self.unit
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class Point:
    x: Value
    y: Value

    @property
    def xy(self) -> tuple[float, float]:
        return self.x.value, self.y.value


@dataclass(frozen=True, slots=True)
class Item:
    """One stop as one span of the request states it (a table row, a list line, a clause): ``source`` says which
    kind of span. ``locations`` holds more than one point only when the span offers alternatives ("at (9, 3) — or
    at (11, 5)"); ``demands`` more than one when it states several amounts; ``problems`` what keeps it from being
    read (a demand range, numbers left unread); ``hedged`` when the span doubts the stop ("maybe", "if they
    confirm"); ``depot_cue`` when it speaks of a depot, warehouse, hub, base..."""

    span: SPAN
    source: str
    name: str = ""
    number: int | None = None
    locations: tuple[Point, ...] = ()
    demands: tuple[Value, ...] = ()
    ready: Value | None = None
    due: Value | None = None
    service: Value | None = None
    depot_cue: bool = False
    hedged: bool = False
    problems: tuple[str, ...] = ()
    alternatives: bool = False
    span_text: str = ""

    @property
    def location(self) -> Point | None:
        return self.locations[0] if len(self.locations) == 1 else None

    @property
    def demand(self) -> Value | None:
        return self.demands[0] if len(self.demands) == 1 else None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"customer {self.number}" if self.number is not None else f"the stop at {self.span[0]}"


DEPOT_WORDS = re.compile(
    r"\b(?:depots?|warehouses?|hubs?|base|based|yard|hq|headquarters|head office|distribution cent(?:re|er)|"
    r"cellar|start(?:s|ing)?|start/end|origin|leaves?|leaving|depart\w*|we(?:'|’)re at|we are at|garage)\b",
    re.I,
)
_NUMBERED = re.compile(
    r"^(?:(?:customer|client|store|shop|stop|site|outlet|branch|restaurant|location|point|node|drop|delivery|"
    r"destination|address|order)s?\s*(?:no\.?|nr\.?|#)?\s*|#\s*|[A-Za-z]{1,2}-?)?(\d{1,6})$",
    re.I,
)


def numbered(name: str) -> int | None:
    """The number a stop's name gives it ("store 4", "Stop #1", "C1", "#3", "7"), if the name is only that."""
    m = _NUMBERED.match(name.strip())
    return int(m.group(1)) if m is not None and int(m.group(1)) > 0 else None


# -- column roles --------------------------------------------------------------------------------------------------
_ROLES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("window", re.compile(r"^(?:time\s*)?windows?$|^tw$|^(?:opening\s+)?hours$|^slot$", re.I)),
    ("ready", re.compile(r"^(?:open(?:s|ing)?|ready(?: time)?|from|earliest|start|tw[ _]?start|window[ _]?start)$",
                         re.I)),
    ("due", re.compile(r"^(?:close[sd]?|closing|due(?: time)?|to|until|latest|end|deadline|tw[ _]?end|window[ _]?end)$",
                       re.I)),
    ("service", re.compile(r"^(?:service(?: time)?|unload(?:ing)?(?: time)?|handling|dwell(?: time)?|stop time)$",
                           re.I)),
    ("x", re.compile(r"^(?:x|lon|lng|long|longitude|easting|x coord(?:inate)?)$", re.I)),
    ("y", re.compile(r"^(?:y|lat|latitude|northing|y coord(?:inate)?)$", re.I)),
    ("xy", re.compile(r"^(?:location|loc|coords?|coordinates|position|pos|xy|x\s*,\s*y|point)$", re.I)),
    ("demand", re.compile(rf"^(?:demand|qty|quantity|amount|load|volume|weight|orders?|order size|need|needs|size|"
                          rf"{UNIT_WORDS})$", re.I)),
    ("name", re.compile(r"^(?:name|customer|client|stop|site|store|shop|outlet|recipient|destination|drop|id|#|no|nr|"
                        r"number|branch|location name|stop name|customer name|place)$", re.I)),
)  # fmt: skip
"""Column roles by header, tried in order (a "window" column before "from"/"to" ones; the name last)."""


def _role(header: str) -> tuple[str | None, str | None]:
    """The role of a column by its header, and the unit a demand column names ("Demand (pallets)" -> pallet)."""
    text = header.strip().strip("\"'*_ ").lower()
    unit = None
    inner = re.search(r"[(\[]\s*([^)\]]+?)\s*[)\]]", text)
    if inner is not None:
        unit = unit_of(inner.group(1))
        text = (text[: inner.start()] + text[inner.end() :]).strip()
    text = re.sub(r"\s+", " ", text.replace("_", " "))
    for role, pattern in _ROLES:
        if pattern.match(text):
            if role == "demand" and unit is None:
                unit = unit_of(text)
            return role, unit
    return None, unit


def _cells(line: str, offset: int, delimiter: str) -> list[tuple[str, SPAN]]:
    """``line`` split at ``delimiter`` (outside double quotes), each cell with its span in the request."""
    cells: list[tuple[str, SPAN]] = []
    start, quoted = 0, False
    for i, ch in enumerate(line + delimiter):
        if ch == '"':
            quoted = not quoted
        elif (ch == delimiter and not quoted) or i == len(line):
            raw = line[start:i]
            lead = len(raw) - len(raw.lstrip())
            body = raw.strip()
            if body.startswith('"') and body.endswith('"') and len(body) >= 2:
                body, lead = body[1:-1], lead + 1
            cells.append((body.strip(), (offset + start + lead, offset + start + lead + len(body.strip()))))
            start = i + 1
    return cells


_CELL_NUM = re.compile(rf"^\s*({NUM})\s*({UNIT_WORDS})?\s*$", re.I)
_CELL_PAIR = re.compile(rf"^\(?\s*({NUM})\s*[,;]\s*({NUM})\s*\)?$")
_CELL_RANGE = re.compile(rf"^\s*({NUM})\s*(?:-|–|—|to)\s*({NUM})\s*$")


def _num(cell: str, span: SPAN, unit: str | None = None) -> Value | None:
    m = _CELL_NUM.match(cell)
    if m is None:
        return None
    start = span[0] + m.start(1)
    return Value(float(m.group(1)), (start, span[0] + m.end(1)), unit_of(m.group(2)) or unit)


def _row_item(cells: Sequence[tuple[str, SPAN]], roles: Sequence[tuple[str | None, str | None]], source: str,
              span: SPAN) -> Item:  # fmt: skip
    """One row (a table's or a YAML item's) as an :class:`Item`."""
    got: dict[str, Value] = {}
    name, number, problems, points = "", None, [], []
    for (cell, cspan), (role, unit) in zip(cells, roles, strict=False):
        if not cell or cell in {"-", "–", "—", "n/a", "N/A"}:
            continue
        if role == "name":
            name = cell
            number = numbered(cell)
        elif role == "xy":
            m = _CELL_PAIR.match(cell)
            if m is None:
                problems.append(f"unread location {cell!r}")
                continue
            base = cspan[0]
            points.append(Point(Value(float(m.group(1)), (base + m.start(1), base + m.end(1))),
                                Value(float(m.group(2)), (base + m.start(2), base + m.end(2)))))  # fmt: skip
        elif role == "window":
            m = _CELL_RANGE.match(cell)
            if m is None:
                problems.append(f"unread window {cell!r}")
                continue
            base = cspan[0]
            got["ready"] = Value(float(m.group(1)), (base + m.start(1), base + m.end(1)))
            got["due"] = Value(float(m.group(2)), (base + m.start(2), base + m.end(2)))
        elif role is None:
            if re.search(r"\d", cell):  # a number in a column no role reads: not silently dropped
                problems.append(f"a value in a column not read: {cell!r}")
        else:
            value = _num(cell, cspan, unit)
            if value is None:
                problems.append(f"unread {role} {cell!r}")
            elif role in got and got[role].value != value.value:
                problems.append(f"two {role} values: {got[role].value:g} and {value.value:g}")
            else:
                got[role] = value
    if "x" in got and "y" in got:
        points.append(Point(got["x"], got["y"]))
    demands = (got["demand"],) if "demand" in got else ()
    return Item(span, source, name, number, tuple(points), demands, got.get("ready"), got.get("due"),
                got.get("service"), DEPOT_WORDS.search(name) is not None, False, tuple(problems))  # fmt: skip


def _located(roles: Sequence[tuple[str | None, str | None]]) -> bool:
    found = {r for r, _ in roles}
    return "xy" in found or {"x", "y"} <= found


# -- Markdown tables -------------------------------------------------------------------------------------------------
_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _markdown(text: str, work: Work) -> list[Item]:
    items: list[Item] = []
    block: list[tuple[int, int]] = []
    for start, end in [*lines_of(text), (len(text) + 1, len(text) + 1)]:
        line = text[start:end] if start <= len(text) else ""
        if line.strip().startswith("|") and line.count("|") >= 2:
            block.append((start, end))
            continue
        if len(block) >= 2:
            items += _markdown_block(text, work, block)
        block = []
    return items


def _markdown_block(text: str, work: Work, block: list[tuple[int, int]]) -> list[Item]:
    def cells(start: int, end: int) -> list[tuple[str, SPAN]]:
        line = text[start:end]
        first, last = line.index("|"), line.rindex("|")
        return _cells(line[first + 1 : last], start + first + 1, "|")

    header = cells(*block[0])
    rows = [b for b in block[1:] if not _RULE.match(text[b[0] : b[1]])]
    roles = [_role(c) for c, _ in header]
    if not _located(roles) or not any(r == "demand" for r, _ in roles):
        return []
    for start, end in block:
        work.consume(start, end)
    return [_row_item(cells(*b), roles, "table", b) for b in rows]


# -- CSV-like blocks -------------------------------------------------------------------------------------------------
def _csv(text: str, work: Work) -> list[Item]:
    items: list[Item] = []
    spans = list(lines_of(text))
    i = 0
    while i < len(spans):
        start, end = spans[i]
        line = text[start:end]
        found = False
        for delimiter in (",", ";", "\t"):
            header = _cells(line, start, delimiter)
            if len(header) < 3 or any(re.fullmatch(NUM, c) for c, _ in header):
                continue
            roles = [_role(c) for c, _ in header]
            if not _located(roles) or sum(r is not None for r, _ in roles) < len(roles) - 1:
                continue
            rows = []
            j = i + 1
            while j < len(spans) and len(row := _cells(text[spans[j][0] : spans[j][1]], spans[j][0], delimiter)) == len(
                header
            ):
                rows.append((spans[j], row))
                j += 1
            if not rows:
                continue
            for s, e in spans[i:j]:
                work.consume(s, e)
            items += [_row_item(row, roles, "csv", sp) for sp, row in rows]
            i, found = j, True
            break
        if not found:
            i += 1
    return items


# -- YAML-like item lists --------------------------------------------------------------------------------------------
_YAML_HEAD = re.compile(r"^(\s*)-\s+([A-Za-z][\w ]*?)\s*:\s*(.*?)\s*$")
_YAML_KEY = re.compile(r"^(\s+)([A-Za-z][\w ]*?)\s*:\s*(.*?)\s*$")


def _yaml(text: str, work: Work) -> list[Item]:
    items: list[Item] = []
    spans = list(lines_of(text))
    i = 0
    while i < len(spans):
        start, end = spans[i]
        head = _YAML_HEAD.match(text[start:end])
        if head is None:
            i += 1
            continue
        indent = len(head.group(1))
        keys = [(head.group(2), head.group(3), (start + head.start(3), start + head.end(3)))]
        j = i + 1
        while j < len(spans):
            s, e = spans[j]
            m = _YAML_KEY.match(text[s:e])
            if m is None or len(m.group(1)) <= indent:
                break
            keys.append((m.group(2), m.group(3), (s + m.start(3), s + m.end(3))))
            j += 1
        roles = [_role(k) for k, _, _ in keys]
        if len(keys) >= 3 and _located(roles):
            for s, e in spans[i:j]:
                work.consume(s, e)
            items.append(_row_item([(v, sp) for _, v, sp in keys], roles, "yaml", (start, spans[j - 1][1])))
        i = max(j, i + 1)
    return items


def read_blocks(text: str, work: Work) -> list[Item]:
    """Every row of the request's Markdown tables, CSV-like blocks and YAML-like item lists that name locations,
    in order (the blocks' lines are blanked in ``work``)."""
    items = _markdown(text, work) + _csv(text, work) + _yaml(text, work)
    return sorted(items, key=lambda item: item.span)
