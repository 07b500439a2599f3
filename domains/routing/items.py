"""A request's free text cut into stops: every stop read from its own span only.

A line with one location is one stop; a line with several is cut at its semicolons, then at its sentences, then at
its commas around the locations (:func:`segments`). Each stop's name (the words before its first value), number
("store 4", "C1"), amount, time window and service time are read from its span alone (:func:`read_item`); a list of
locations and a separate list of amounts by name are joined by the name (:func:`join_amounts`); a sentence that
asks an amount for a named stop without a location is a stop without one (:func:`loose_stops`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import replace

from longthink.domains.routing.lexicon import (
    NUM,
    Location,
    Work,
    find_quantities,
    find_ranges,
    find_service,
    find_windows,
    lines_of,
    spans_overlap,
    unit_of,
)
from longthink.domains.routing.parsing import STOP_ID
from longthink.domains.routing.tables import DEPOT_WORDS, Item, Point, Value, numbered

MARKER = re.compile(r"^[ \t]*(?:[-*•·▪◦]|\d{1,3}[.)]|\(\d{1,3}\)|[a-h][.)])[ \t]+", re.M)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=\S)")
_ABBREVIATION = re.compile(r"\b(?:no|nr|tel|ext|st|mr|mrs|ms|dr|approx|e\.g|i\.e|vs|etc)\.$", re.I)
_HEDGE = re.compile(
    r"\b(?:maybe|perhaps|possibly|if (?:they|it|he|she|we) (?:confirm|confirms|say|agree)|if confirmed|unconfirmed|"
    r"not (?:yet )?confirmed|tentative(?:ly)?|not sure|might|to be confirmed|tbc)\b",
    re.I,
)
_LEAD = re.compile(r"^(?:(?:and|the|plus|also|then|finally|or|a|an|our|maybe|perhaps|possibly)\b[\s,]+)+(?=\S)", re.I)
_TRAIL = re.compile(
    r"(?:[\s,;:=(\-–—>→/]+|\b(?:is|sits|located|lies|at|pos|position|in|on|needs?|wants?|orders?|takes?|requires?|"
    r"gets?|with|of|to|and|location|loc|coords?|coordinates|address|demand|qty|quantity|load|amount)\b)+$",
    re.I,
)


def _split(work: Work, start: int, end: int, pattern: re.Pattern[str] | str) -> list[tuple[int, int]]:
    """``[start, end)`` cut at ``pattern`` (outside brackets), as spans."""
    s = work.s
    out, begin, depth = [], start, 0
    regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
    i = start
    while i < end:
        ch = s[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0:
            m = regex.match(s, i, end)
            if m is not None and m.end() > i:
                out.append((begin, i))
                begin = i = m.end()
                continue
        i += 1
    out.append((begin, end))
    return [(a, b) for a, b in out if s[a:b].strip()]


def _sentences(work: Work, start: int, end: int) -> list[tuple[int, int]]:
    out, begin = [], start
    for m in _SENTENCE.finditer(work.s, start, end):
        if _ABBREVIATION.search(work.text[begin : m.start()]):
            continue
        out.append((begin, m.start()))
        begin = m.end()
    out.append((begin, end))
    return [(a, b) for a, b in out if work.s[a:b].strip()]


def _locs(locations: Sequence[Location], start: int, end: int) -> list[Location]:
    return [loc for loc in locations if start <= loc.span[0] and loc.span[1] <= end]


def _alternatives(work: Work, locs: Sequence[Location]) -> bool:
    """Whether several locations in one span are alternatives ("at (9, 3) — or at (11, 5)")."""
    return len(locs) > 1 and all(
        re.search(r"\bor\b", work.s[a.span[1] : b.span[0]]) for a, b in itertools.pairwise(locs)
    )


def _has_amount(work: Work, start: int, end: int) -> bool:
    probe = Work(work.s[start:end])
    return bool(find_quantities(probe, 0, end - start)) or bool(find_ranges(probe, 0, end - start))


def _group(work: Work, start: int, end: int, locations: Sequence[Location]) -> list[tuple[int, int]]:
    """A sentence with several stops cut into one span per stop: at its commas (and "and"s), a new stop starting
    at a piece with a location when the current one has one, or at a piece with an amount when the current one
    already has an amount."""
    pieces = _split(work, start, end, re.compile(r",\s*(?:and\s+)?|;\s*|\s+and\s+"))
    groups: list[list[int]] = []  # [start, end, has_location, has_amount]
    for a, b in pieces:
        loc, amount = bool(_locs(locations, a, b)), _has_amount(work, a, b)
        mention = STOP_ID.match(work.text, a + len(work.text[a:b]) - len(work.text[a:b].lstrip())) is not None
        if groups:
            g = groups[-1]
            new = (loc and (g[2] or (g[3] and amount))) or (not loc and amount and g[3]) or (mention and g[2])
            if not new:
                g[1], g[2], g[3] = b, g[2] or loc, g[3] or amount
                continue
        groups.append([a, b, int(loc), int(amount)])
    return [(g[0], g[1]) for g in groups]


def segments(work: Work, locations: Sequence[Location]) -> list[tuple[int, int, str]]:
    """The free text's stop spans: (start, end, source). A line is cut at its semicolons when several of its
    clauses hold a location (a semicolon list: each clause a stop), else at its sentences; a sentence with a location
    starts a stop, and the sentence after it joins that stop when it states an amount and nothing else ("Shop 2 is
    at (8, 1). It needs 15 units."). A sentence holding several locations is cut at its commas (:func:`_group`).
    Source: "line" when the stop is its whole line, "clause" for a semicolon list, else "sentence" or "phrase"."""
    out: list[tuple[int, int, str]] = []
    for start, end in lines_of(work.s):
        if not _locs(locations, start, end):
            continue
        clauses = _split(work, start, end, ";")
        if sum(bool(_locs(locations, a, b)) for a, b in clauses) > 1:
            parts = [(a, b, "clause") for a, b in clauses]
        else:
            parts = [(start, end, "line")]
        found: list[tuple[int, int, str]] = []
        for a, b, kind in parts:
            found += _stops_in(work, a, b, kind, locations)
        if len(found) == 1 and found[0][2] == "line":  # one stop on its line, whatever else the line says
            found = [(start, end, "line")] if _only_stop(work, found[0], start, end) else found
        out += found
    return out


def _stops_in(work: Work, start: int, end: int, kind: str, locations: Sequence[Location]) -> list[tuple[int, int, str]]:
    """The stops of one line or clause: its sentences grouped around their locations."""
    sentences = _sentences(work, start, end)
    if len(sentences) == 1 and (len(here := _locs(locations, start, end)) == 1 or _alternatives(work, here)):
        return [(start, end, kind)]
    out: list[list[int]] = []  # [start, end, has_amount]
    source = "sentence" if kind == "line" else kind
    for a, b in sentences:
        here = _locs(locations, a, b)
        if len(here) > 1 and not _alternatives(work, here):
            out += [[ga, gb, 2] for ga, gb in _group(work, a, b, locations)]
            continue
        if here:
            out.append([a, b, int(_has_amount(work, a, b))])
        elif out and out[-1][2] == 0 and _has_amount(work, a, b) and len(work.numbers(a, b)) <= 1:
            out[-1][1], out[-1][2] = b, 1
    if len(out) > 1:  # several stops in one line or clause, cut by sentence: prose, not a list
        source = "sentence"
    return [(a, b, "phrase" if flag == 2 else source) for a, b, flag in out]


def _only_stop(work: Work, stop: tuple[int, int, str], start: int, end: int) -> bool:
    """Whether the rest of a line around its one stop states no number (a list line, a depot line)."""
    return not work.numbers(start, stop[0]) and not work.numbers(stop[1], end)


def clean_name(raw: str) -> str:
    """A stop's name from the words before its first value: list markers, labels ("Deliveries:"), field words
    ("location", "at", "needs") and punctuation dropped."""
    name = _TRAIL.sub("", MARKER.sub("", raw).strip())
    if ":" in name:
        head, tail = name.rsplit(":", 1)
        name = tail if re.search(r"[A-Za-z]", tail) else head
    for dash in (" — ", " – ", " - ", " -- "):
        if dash in name:
            head, tail = name.rsplit(dash, 1)
            name = tail if re.search(r"[A-Za-z]", tail) else head
    name = _TRAIL.sub("", _LEAD.sub("", name.strip(" \t,;:.-–—|*\"'"))).strip(" \t,;:.-–—|*\"'()")
    return re.sub(r"\s+", " ", name)


def read_item(work: Work, start: int, end: int, source: str, locations: Sequence[Location]) -> Item:
    """One stop from its own span: the name before its first value, its location(s), amount, window, service."""
    text = work.text
    locs = _locs(locations, start, end)
    windows = find_windows(work, start, end)
    service = find_service(work, start, end, every=False)
    problems = [f"a range of amounts ({lo:g} to {hi:g})" for lo, hi, _ in find_ranges(work, start, end)]
    for _, _, sp in find_ranges(work, start, end):
        work.consume(*sp)
    quantities = find_quantities(work, start, end)
    name_end = min([loc.span[0] for loc in locs] + [q.span[0] for q in quantities] + [end])
    name = clean_name(text[start:name_end])
    at = text.rfind(name, start, name_end) if name and len(name.split()) <= 6 else -1
    for _, sp in work.numbers(at, at + len(name)) if at >= 0 else []:  # "Customer 101": the number names the stop
        work.consume(*sp)
    demands = tuple(Value(q.value, q.span, q.unit) for q in quantities if q.span[0] >= name_end)
    for q in quantities:
        work.consume(*q.span)
    after = max([loc.span[1] for loc in locs] + [name_end])
    rest = work.numbers(start, end)
    cue = DEPOT_WORDS.search(text[start:name_end] + " " + work.s[start:end]) is not None
    if not demands and not problems and not cue:  # a bare number after the location: "Stop #1 (10, 10) 20"
        bare = [(v, sp) for v, sp in rest if sp[0] >= after]
        if len(bare) == 1:
            demands = (Value(bare[0][0], bare[0][1]),)
            rest = [r for r in rest if r != bare[0]]
            work.consume(*bare[0][1])
    problems += [f"number {v:g} not read" for v, _ in rest]
    if len({d.value for d in demands}) > 1:
        problems.append("several amounts: " + ", ".join(f"{d.value:g}" for d in demands))
    ready = next((Value(w.ready, w.ready_span) for w in windows if w.ready is not None and w.ready_span), None)
    due = next((Value(w.due, w.due_span) for w in windows if w.due is not None and w.due_span), None)
    points = tuple(Point(Value(loc.x, loc.x_span), Value(loc.y, loc.y_span)) for loc in locs)
    number = numbered(name)
    if number is None:
        mention = STOP_ID.search(name)
        number = int(mention.group(1)) if mention is not None and mention.end() == len(name) else None
    span_text = text[start:end]
    one = demands[:1] if len({d.value for d in demands}) == 1 else demands  # "4 units (qty 4)" states one amount
    return Item(
        (start, end), source, name, number, points, one, ready, due,
        Value(service[0][0], service[0][1]) if service else None,
        cue,
        _HEDGE.search(span_text) is not None, tuple(problems), _alternatives(work, locs), span_text,
    )  # fmt: skip


def join_amounts(work: Work, items: list[Item]) -> list[Item]:
    """Items without an amount whose name's first word is followed by a number elsewhere ("Orders in crates:
    Alvarez 5, Brennan 7"): the amount joined by the name."""
    out = []
    for c in items:
        if c.demands or not c.name or c.locations == ():
            out.append(c)
            continue
        word = re.escape(c.name.split()[0])
        hits = [m for m in re.finditer(rf"\b{word}\b\W{{0,3}}({NUM})\b(?!\s*[,;]\s*-?\d)", work.s, re.I)
                if not spans_overlap(m.span(), c.span)]  # fmt: skip
        if len(hits) == 1:
            m = hits[0]
            line = work.text[work.text.rfind("\n", 0, m.start()) + 1 : m.start()]
            words = re.findall(r"[A-Za-z]+", line)
            unit = next((u for w in words if (u := unit_of(w)) is not None), None)
            c = replace(c, demands=(Value(float(m.group(1)), m.span(1), unit, "joined by name"),))
            work.consume(*m.span(1))
        out.append(c)
    return out


_ASKS = re.compile(r"\b(?:needs?|wants?|orders?|requires?|takes?|gets?)\b", re.I)


def loose_stops(work: Work, spans: Sequence[tuple[int, int]]) -> list[Item]:
    """Sentences outside every item that still state an amount for a stop they name by number, or with a verb of
    asking ("customer 3 needs 8 units", "Rosa wants 4 boxes"): stops without a location."""
    out = []
    for start, end in spans:
        for a, b in _sentences(work, start, end):
            named = STOP_ID.search(work.s, a, b) is not None or _ASKS.search(work.s, a, b) is not None
            if named and re.search(r"\d", work.s[a:b]) and _has_amount(work, a, b):
                probe = read_item(work.copy(), a, b, "sentence", ())
                if probe.name and probe.demand is not None and not probe.problems:  # else: numbers left unread
                    out.append(read_item(work, a, b, "sentence", ()))
    return out
