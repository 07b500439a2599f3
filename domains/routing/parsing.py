"""What the two readings of a request share (:mod:`.extract` reads the whole request, :mod:`.passages` one
passage at a time): the numbers a text states, JSON repair for replies cut short, and values checked as they are
read from a model's JSON (every failure an :class:`ExtractionError` naming the field)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from longthink.domains.routing.lexicon import NUMBER_WORDS, Work, find_fleet, find_locations, mask_distractors


class ExtractionError(ValueError):
    """An extraction that cannot be the request's problem (unreadable, invalid, or unfaithful to the request)."""


_WORDS = NUMBER_WORDS
_WORD = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b", re.I)
STOP_ID = re.compile(
    r"\b(?:customer|client|store|shop|stop|site|outlet|branch|restaurant|location|point|node)s?\s*(?:no\.?\s*|#\s*)?"
    r"(\d+)\b",
    re.I,
)


def stated_numbers(text: str) -> set[float]:
    """Every number written in ``text`` (digits, and small number words such as "three"); each negative number
    also counts as its absolute value (a hyphen may be a dash)."""
    found: set[float] = set()
    for m in re.finditer(r"-?\d+(?:\.\d+)?", text):
        raw = m.group(0)
        if raw.startswith("-") and m.start() > 0 and text[m.start() - 1].isalnum():
            raw = raw[1:]  # "E-n22" or "10-20": a hyphen after a word or a number is not a sign
        value = float(raw)
        found.update({value, abs(value)})
    found.update(float(_WORDS[m.group(1).lower()]) for m in _WORD.finditer(text))
    return found


def number_list(text: str) -> list[float]:
    """The absolute values of the numbers written in ``text``, each occurrence once (for counting)."""
    values = [abs(float(m.group(0))) for m in re.finditer(r"\d+(?:\.\d+)?", text)]
    return values + [float(_WORDS[m.group(1).lower()]) for m in _WORD.finditer(text)]


def stated_fleet_size(text: str) -> int | None:
    """How many vehicles ``text`` says the fleet has or may use ("3 trucks", "at most three vans", "a fleet of 4",
    "2 cargo bikes", "Lorries: 2", "2 couriers"), read line by line (a number on one line never sizes a fleet named
    on the next), or None when it states no limit (a minimum, "at least 3 trucks", is not a limit; "as many vans as
    it takes" is none). Phone numbers, dates and locations are never a fleet size."""
    work = Work(text)
    mask_distractors(work)
    find_locations(work)
    for statement in find_fleet(work):
        if statement.kind == "vehicles" and statement.value is not None and statement.value.is_integer():
            return int(statement.value)
    return None


_TIMED = re.compile(
    r"time[- ]?windows?|\bwindows?\b|between (?:time )?\d|open (?:from|between)|\bopen\s*[=:]?\s*\d|opening hours|"
    r"\bready\b|\bdue\b|\bclose\b|deadline|\bno later than\b|\bnot before\b|\d{1,2}:\d{2}",
    re.I,
)


def mentions_time_windows(text: str) -> bool:
    """Whether the request speaks of time windows (then the prompt shows an example with them; otherwise it
    does not, because a small model copies windows from an example into a request that has none)."""
    return _TIMED.search(text) is not None


def close_json(text: str) -> str:
    """``text`` with the brackets left open at its end closed (a reply that stopped before its last ``}``, a
    common slip of small models); a string cut in the middle is closed too. Data that was never written stays
    missing, for the checks to catch."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}" and stack:
            stack.pop()
    tail = text.rstrip().rstrip(",:")
    return tail + ('"' if in_string else "") + "".join(reversed(stack))


def to_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ExtractionError(f"{where} is missing or not a number ({value!r})")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ExtractionError(f"{where} is not a number: {value!r}") from None
    if not isinstance(value, int | float):
        raise ExtractionError(f"{where} is not a finite number: {value!r}")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond any float
        raise ExtractionError(f"{where} is too large a number") from None
    if not math.isfinite(number):
        raise ExtractionError(f"{where} is not a finite number: {value!r}")
    return number


def to_int(value: Any, where: str) -> int:
    number = to_number(value, where)
    if not number.is_integer():
        raise ExtractionError(f"{where} must be a whole number, got {number:g}")
    return int(number)


def to_point(item: Mapping[str, Any], where: str) -> tuple[float, float]:
    if "x" in item or "y" in item:
        return to_number(item.get("x"), f"{where} x"), to_number(item.get("y"), f"{where} y")
    for key in ("location", "coords", "coordinates", "position", "xy"):
        pair = item.get(key)
        if isinstance(pair, list | tuple) and len(pair) == 2:
            return to_number(pair[0], f"{where} x"), to_number(pair[1], f"{where} y")
        if isinstance(pair, Mapping):
            return to_point(pair, where)
    raise ExtractionError(f"{where} has no coordinates")


def to_window(item: Mapping[str, Any], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    pair = item.get("time_window", item.get("window"))
    if isinstance(pair, list | tuple) and len(pair) == 2:
        out = {"ready": to_number(pair[0], f"{where} ready time"), "due": to_number(pair[1], f"{where} due time")}
    if item.get("ready") is not None:
        out["ready"] = to_number(item["ready"], f"{where} ready time")
    if item.get("due") is not None:
        out["due"] = to_number(item["due"], f"{where} due time")
    if item.get("service") is not None:
        out["service"] = to_number(item["service"], f"{where} service time")
    return out
