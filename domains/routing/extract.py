"""A routing problem from a plain-language request, extracted by the model with self-consistency.

The model is asked for the problem as JSON (a compact schema and one short example, with time windows only when
the request mentions them); ``K`` extractions are sampled in one batched call. Each one is read on its own
(:func:`read_extraction`): its JSON is mapped onto :class:`RoutingProblem` (which checks every demand against the
capacity, the total against the fleet, unique ids, ordered and reachable time windows) and cross-checked
against the request itself (:class:`RequestFacts`, a deterministic pre-pass): a number the request never states
is *invented* and the extraction is rejected; customers the request numbers ("store 4") must all be there, and
no others; a named customer's values must come from its own passage of the request ("customer 2 ... 20
units"), and an extraction that leaves a number of that passage unused (a dropped time window) is incomplete.
The accepted extractions vote on their canonical form (:func:`vote`; complete ones first); a tie goes to the
one that uses more of the request's numbers.

When no extraction is accepted the reason is the most common rejection, so an invalid request ("customer 3
needs 120 units" with trucks of 100) is reported as such, never silently fixed.

First, though, the request is read *passage by passage* (:func:`extract_problem`): it is split deterministically
into the fleet/depot passage and one passage per named customer (:func:`split_request`), every passage gets a
tiny JSON prompt (a branch of one shared prompt, all sampled in one batched call), each passage's samples are
checked against that passage's own numbers (:func:`read_part`) and voted (:func:`vote_part`), and the voted
passages are assembled and checked as a whole extraction is. A 0.5B model asked for a whole problem at once
stops after two customers or copies a demand into a ready time; one customer of one sentence it reads well.
The whole-request extraction remains the fallback: for requests that do not split, and when a passage gets no
valid reading.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from longthink.domains.routing.io import describe_validation
from longthink.domains.routing.problem import RoutingProblem
from longthink.llm.types import Message
from longthink.search.context import Branch, SearchContext
from longthink.search.types import Candidate, Problem, Score

SYSTEM = (
    "You turn a vehicle routing request into JSON. Copy every number exactly as the request gives it and never "
    "invent one. Reply with the JSON only."
)

SCHEMA = """\
JSON shape:
{"depot": {"x": number, "y": number}, "vehicles": how many vehicles, "capacity": what one vehicle carries,
 "customers": [{"id": integer, "x": number, "y": number, "demand": integer, "ready": number, "due": number}]}
"ready" and "due" are a customer's time window: give them only when the request gives that customer one.
If the depot has opening hours, add "ready" and "due" to the depot."""

EXAMPLES: tuple[tuple[str, str], ...] = (
    (
        "We have 2 vans that carry 30 units each, based at the depot at (5, 5). Shop 1 at (2, 9) orders 10 units. "
        "Shop 2 at (8, 1) orders 15 units. Minimise the distance.",
        '{"depot": {"x": 5, "y": 5}, "vehicles": 2, "capacity": 30, "customers": [{"id": 1, "x": 2, "y": 9, '
        '"demand": 10}, {"id": 2, "x": 8, "y": 1, "demand": 15}]}',
    ),
    (
        "Three trucks of capacity 70 leave the depot at (50, 20). Client 1: (44, 61), 35 units, time window 5 to 90. "
        "Client 2: (12, 30), 20 units, time window 25 to 70.",
        '{"depot": {"x": 50, "y": 20}, "vehicles": 3, "capacity": 70, "customers": [{"id": 1, "x": 44, "y": 61, '
        '"demand": 35, "ready": 5, "due": 90}, {"id": 2, "x": 12, "y": 30, "demand": 20, "ready": 25, "due": 70}]}',
    ),
)
"""Examples (request, JSON): one without and one with time windows; the prompt shows one of them (see
:func:`extraction_problem`). Rows of bare numbers would be shorter to generate, but Qwen2.5-Coder-0.5B dropped
ids and misplaced windows in them; named keys it copies."""

PROBLEM_NAME = "request"
"""The name given to problems read from a request's text."""

_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "a dozen": 12, "a pair of": 2, "a single": 1,
}  # fmt: skip
_WORD = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b", re.I)
_STOP_ID = re.compile(
    r"\b(?:customer|client|store|shop|stop|site|outlet|branch|restaurant|location|point|node)s?\s*(?:no\.?\s*|#\s*)?"
    r"(\d+)\b",
    re.I,
)


def _numbers(text: str) -> set[float]:
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


def _number_list(text: str) -> list[float]:
    """The absolute values of the numbers written in ``text``, each occurrence once (for counting)."""
    values = [abs(float(m.group(0))) for m in re.finditer(r"\d+(?:\.\d+)?", text)]
    return values + [float(_WORDS[m.group(1).lower()]) for m in _WORD.finditer(text)]


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the request states literally: its numbers, the customer numbers it names ("store 4"), and for each
    named customer the numbers of its passage (from its mention to the next customer's), with how often each
    occurs there (the mention's own number not counted)."""

    numbers: frozenset[float]
    stop_ids: frozenset[int]
    passages: Mapping[int, frozenset[float]] = field(default_factory=dict)
    counts: Mapping[int, Mapping[float, int]] = field(default_factory=dict)

    @staticmethod
    def of(text: str) -> RequestFacts:
        mentions = [(m.start(), int(m.group(1))) for m in _STOP_ID.finditer(text) if int(m.group(1)) > 0]
        passages: dict[int, set[float]] = {}
        counts: dict[int, Counter[float]] = {}
        for k, (start, cid) in enumerate(mentions):
            end = next((p for p, other in mentions[k + 1 :] if other != cid), len(text))
            passages.setdefault(cid, set()).update(_numbers(text[start:end]))
            tally = counts.setdefault(cid, Counter())
            tally.update(_number_list(text[start:end]))
            tally[float(cid)] -= 1  # "store 4" names the customer; it states no value
        frozen = {cid: frozenset(values) for cid, values in passages.items()}
        return RequestFacts(frozenset(_numbers(text)), frozenset(frozen), frozen, counts)


class ExtractionError(ValueError):
    """An extraction that cannot be the request's problem (unreadable, invalid, or unfaithful to the request)."""


_TIMED = re.compile(
    r"time[- ]?windows?|between (?:time )?\d|open (?:from|between)|opening hours|\bready\b|\bdue\b|deadline|"
    r"\bno later than\b|\bnot before\b|\d{1,2}:\d{2}",
    re.I,
)


def mentions_time_windows(text: str) -> bool:
    """Whether the request speaks of time windows (then the prompt shows an example with them; otherwise it
    does not, because a small model copies windows from an example into a request that has none)."""
    return _TIMED.search(text) is not None


def extraction_problem(text: str, *, problem_id: str = "extract") -> Problem:
    """The search problem that asks the model for ``text``'s routing problem as JSON. The example shown has time
    windows exactly when the request mentions them. The token limit grows with the numbers in the request
    (every number is copied once, with its key)."""
    numbers = len(re.findall(r"\d+(?:\.\d+)?", text))
    request, answer = EXAMPLES[1] if mentions_time_windows(text) else EXAMPLES[0]
    prompt = (
        Message.system(SYSTEM),
        Message.user(f"{SCHEMA}\n\nRequest: {request}"),
        Message.assistant(answer),
        Message.user(f"Request: {text.strip()}"),
    )
    max_tokens = min(1500, max(160, 9 * numbers + 80))
    return Problem(problem_id, prompt, "json", max_tokens=max_tokens, metadata={"request": text})


# -- reading one extraction ----------------------------------------------------------------------------------------
_FLEET_KEYS = {
    "vehicles": ("vehicles", "num_vehicles", "vehicle_count", "trucks", "vans", "fleet_size", "n_vehicles"),
    "capacity": ("capacity", "vehicle_capacity", "truck_capacity", "capacity_per_vehicle"),
}


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


def json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text`` that has a ``customers`` field (fenced or bare; brackets left open at
    the end of the reply are closed)."""
    first: dict[str, Any] | None = None
    decoder = json.JSONDecoder()
    start = text.find("{")
    if start < 0:
        raise ExtractionError("no JSON object in the reply")
    body = text[start:]
    fence = body.find("```")
    for source in (body[:fence] if fence >= 0 else body, close_json(body[:fence] if fence >= 0 else body)):
        for begin in (i for i, ch in enumerate(source) if ch == "{"):
            try:
                value, _ = decoder.raw_decode(source[begin:])
            except ValueError:
                continue
            if isinstance(value, dict):
                if "customers" in value:
                    return value
                first = first or value
    if first is None:
        raise ExtractionError("no readable JSON object in the reply")
    raise ExtractionError("the JSON has no 'customers' list")


def _num(value: Any, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ExtractionError(f"{where} is missing or not a number ({value!r})")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ExtractionError(f"{where} is not a number: {value!r}") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ExtractionError(f"{where} is not a finite number: {value!r}")
    return float(value)


def _whole(value: Any, where: str) -> int:
    number = _num(value, where)
    if not number.is_integer():
        raise ExtractionError(f"{where} must be a whole number, got {number:g}")
    return int(number)


def _point(item: Mapping[str, Any], where: str) -> tuple[float, float]:
    if "x" in item or "y" in item:
        return _num(item.get("x"), f"{where} x"), _num(item.get("y"), f"{where} y")
    for key in ("location", "coords", "coordinates", "position", "xy"):
        pair = item.get(key)
        if isinstance(pair, list | tuple) and len(pair) == 2:
            return _num(pair[0], f"{where} x"), _num(pair[1], f"{where} y")
        if isinstance(pair, Mapping):
            return _point(pair, where)
    raise ExtractionError(f"{where} has no coordinates")


def _window(item: Mapping[str, Any], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    pair = item.get("time_window", item.get("window"))
    if isinstance(pair, list | tuple) and len(pair) == 2:
        out = {"ready": _num(pair[0], f"{where} ready time"), "due": _num(pair[1], f"{where} due time")}
    if item.get("ready") is not None:
        out["ready"] = _num(item["ready"], f"{where} ready time")
    if item.get("due") is not None:
        out["due"] = _num(item["due"], f"{where} due time")
    if item.get("service") is not None:
        out["service"] = _num(item["service"], f"{where} service time")
    return out


def _fleet(data: Mapping[str, Any]) -> dict[str, int]:
    nested = data.get("fleet")
    source: Mapping[str, Any] = nested if isinstance(nested, Mapping) else data
    fleet: dict[str, int] = {}
    for what, keys in _FLEET_KEYS.items():
        key = next((k for k in keys if k in source), None)
        if key is None:
            raise ExtractionError(f"the fleet's {what} is missing")
        fleet[what] = _whole(source[key], f"the fleet's {what}")
    return fleet


_ROW_FIELDS = {4: ("id", "x", "y", "demand"), 6: ("id", "x", "y", "demand", "ready", "due")}


def _row(raw: Any, position: int) -> Mapping[str, Any]:
    """A customer given as an object, or as a row ``[id, x, y, demand]`` / ``[id, x, y, demand, ready, due]``."""
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, list | tuple):
        names = _ROW_FIELDS.get(len(raw))
        if names is None:
            raise ExtractionError(f"customer #{position} has {len(raw)} values; expected 4 or 6")
        return dict(zip(names, raw, strict=True))
    raise ExtractionError(f"customer #{position} is neither an object nor a row of numbers")


def problem_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`RoutingProblem` fields from a model's JSON (tolerant of the shape: customers as rows or
    objects, ``[x, y]`` pairs, ``time_window: [a, b]``, a ``fleet`` object or top-level ``vehicles``/``capacity``;
    strict on the values)."""
    depot_raw = data.get("depot")
    if isinstance(depot_raw, list | tuple) and len(depot_raw) in (2, 4):
        depot_raw = dict(zip(("x", "y", "ready", "due"), depot_raw, strict=False))
    if not isinstance(depot_raw, Mapping):
        raise ExtractionError("the depot is missing")
    dx, dy = _point(depot_raw, "the depot")
    depot: dict[str, Any] = {"x": dx, "y": dy, **_window(depot_raw, "the depot")}
    depot.pop("service", None)
    raw_customers = data.get("customers")
    if not isinstance(raw_customers, list) or not raw_customers:
        raise ExtractionError("the customers list is missing or empty")
    customers: list[dict[str, Any]] = []
    for position, raw in enumerate(raw_customers, start=1):
        item = _row(raw, position)
        raw_id = item.get("id", position)
        name = ""
        try:
            cid = _whole(raw_id, f"customer #{position} id")
        except ExtractionError:
            cid, name = position, str(raw_id)  # a name such as "Bakery" keeps its place in the list as its id
        where = f"customer {cid}"
        x, y = _point(item, where)
        demand_key = next((k for k in ("demand", "quantity", "units", "load") if k in item), "demand")
        row: dict[str, Any] = {"id": cid, "x": x, "y": y, "demand": _whole(item.get(demand_key), f"{where} demand")}
        row |= _window(item, where)
        if name or item.get("name"):
            row["name"] = name or str(item["name"])
        customers.append(row)
    timed = any(row.get("due") is not None or row.get("ready", 0.0) > 0 for row in (*customers, depot))
    return {
        "name": PROBLEM_NAME,
        "depot": depot,
        "customers": sorted(customers, key=lambda c: int(c["id"])),
        "fleet": _fleet(data),
        "time_windows": timed,
        "rounding": "exact",
    }


def _stated_values(problem: RoutingProblem) -> list[float]:
    """The numbers an extraction claims the request states (not ids; zero is a default, never checked)."""
    d = problem.depot
    values = [
        d.x,
        d.y,
        d.ready,
        *([d.due] if d.due is not None else []),
        problem.fleet.vehicles,
        problem.fleet.capacity,
    ]
    for c in problem.customers:
        values += [c.x, c.y, c.demand, c.ready, c.service, *([c.due] if c.due is not None else [])]
    return [float(v) for v in values if v != 0]


def canonical_key(problem: RoutingProblem) -> str:
    """A problem's canonical JSON (customers by id, names dropped): equal keys mean the same problem."""
    data = problem.model_dump(mode="json")
    for c in data["customers"]:
        c.pop("name", None)
    data["customers"].sort(key=lambda c: c["id"])
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Reading:
    """One extraction: the problem (None when rejected, with ``error`` saying why), its canonical key, the
    share of the request's numbers it uses (``coverage``, the tie-breaker), and whether it uses every number
    each named customer's passage states (``complete``: a dropped time window makes it incomplete)."""

    index: int
    problem: RoutingProblem | None
    error: str | None = None
    key: str | None = None
    coverage: float = 0.0
    complete: bool = True

    @property
    def accepted(self) -> bool:
        return self.problem is not None


def read_extraction(text: str, facts: RequestFacts, index: int = 0) -> Reading:
    """Read one model reply: parse, validate, and check it against the request's literal facts."""
    try:
        problem = RoutingProblem.model_validate(problem_dict(json_object(text)))
    except ExtractionError as exc:
        return Reading(index, None, str(exc))
    except ValidationError as exc:
        return Reading(index, None, f"invalid problem: {describe_validation(exc)}")
    used = _stated_values(problem)
    invented = sorted({v for v in used if v not in facts.numbers})
    if invented:
        shown = ", ".join(f"{v:g}" for v in invented[:8])
        return Reading(index, None, f"numbers not in the request: {shown}")
    ids = {c.id for c in problem.customers}
    if facts.stop_ids and ids != facts.stop_ids:
        missing, extra = sorted(facts.stop_ids - ids), sorted(ids - facts.stop_ids)
        why = "; ".join(
            part
            for part in (
                f"customers {missing} of the request are missing" if missing else "",
                f"customers {extra} are not in the request" if extra else "",
            )
            if part
        )
        return Reading(index, None, why)
    complete = True
    for c in problem.customers:
        passage = facts.passages.get(c.id)
        if passage is None:
            continue
        values = [c.x, c.y, c.demand, c.ready, c.service, *([c.due] if c.due is not None else [])]
        foreign = sorted({float(v) for v in values if v != 0 and float(v) not in passage})
        if foreign:
            shown = ", ".join(f"{v:g}" for v in foreign)
            return Reading(index, None, f"{c.label}: {shown} not stated for this customer")
        stated_times = facts.counts.get(c.id, {})
        for value, times in sorted(Counter(abs(float(v)) for v in values if v != 0).items()):
            if times > (given := stated_times.get(value, 0)):
                # one number of the request filling two fields, e.g. the demand copied into the ready time
                return Reading(index, None, f"{c.label}: {value:g} is used {times} times but stated {given}")
        unused = {abs(v) for v in passage} - {0.0, float(c.id)} - {float(abs(v)) for v in values}
        complete = complete and not unused
    stated = {v for v in facts.numbers if v != 0}
    coverage = len(stated & {*used, *(float(i) for i in ids)}) / len(stated) if stated else 1.0
    return Reading(index, problem, None, canonical_key(problem), coverage, complete)


# -- voting ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Extraction:
    """The voted problem (None when no extraction was accepted, ``reason`` says why) and every reading."""

    problem: RoutingProblem | None
    readings: tuple[Reading, ...]
    votes: int = 0
    reason: str = ""
    parts: tuple[PartVote, ...] = ()
    method: str = "whole"

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.readings)

    @property
    def samples(self) -> int:
        """Every sample drawn: whole-request readings and passage readings."""
        return len(self.readings) + sum(len(p.readings) for p in self.parts)

    def as_data(self) -> dict[str, Any]:
        """JSON-able summary for the trace: per reading, accepted or the rejection reason, and a short hash of its
        canonical problem (equal hashes: the readings agree)."""
        return {
            "method": self.method,
            "samples": len(self.readings),
            "accepted": self.accepted,
            "votes": self.votes,
            "parts": [p.as_data() for p in self.parts],
            "readings": [
                {
                    "index": r.index,
                    "accepted": r.accepted,
                    "error": r.error,
                    "coverage": round(r.coverage, 3),
                    "complete": r.complete,
                    "key": None if r.key is None else hashlib.sha256(r.key.encode()).hexdigest()[:12],
                }
                for r in self.readings
            ],
        }


def vote(readings: Sequence[Reading]) -> Extraction:
    """Majority over the accepted readings' canonical problems (the complete ones, when there are any); ties go
    to the higher coverage of the request's numbers, then to the earlier sample. With none accepted, the most
    common rejection is the reason."""
    valid = [r for r in readings if r.accepted and r.key is not None]
    accepted = [r for r in valid if r.complete] or valid
    if not accepted:
        reasons = Counter(r.error or "rejected" for r in readings)
        if not reasons:
            return Extraction(None, tuple(readings), 0, "no extraction was sampled")
        top, n = reasons.most_common(1)[0]
        others = len(readings) - n
        tail = f" ({others} other extraction(s) failed otherwise)" if others else ""
        return Extraction(None, tuple(readings), 0, f"no valid problem in {len(readings)} extractions: {top}{tail}")
    counts = Counter(r.key for r in accepted)
    best = max(accepted, key=lambda r: (counts[r.key], r.coverage, -r.index))
    n = counts[best.key]
    voters = "" if len(accepted) == len(valid) else f", {len(accepted)} complete"
    reason = f"{n} of {len(readings)} extractions agree ({len(valid)} valid{voters}, {len(counts)} distinct)"
    return Extraction(best.problem, tuple(readings), n, reason)


@dataclass(frozen=True, slots=True)
class ExtractionScorer:
    """A scorer for the trace: 0 for a rejected extraction (the reason as rationale), else its coverage of the
    request's numbers (in (0, 1])."""

    facts: RequestFacts
    name: str = "extraction"

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        out = []
        for c in candidates:
            r = read_extraction(c.text, self.facts, c.index)
            rationale = r.error or f"valid; uses {r.coverage:.0%} of the request's numbers"
            out.append(Score(self.name, r.coverage if r.accepted else 0.0, rationale=rationale))
        return out


async def extract_problem(
    text: str,
    search: SearchContext,
    *,
    samples: int = 5,
    temperature: float | None = None,
    by_passage: bool = True,
    whole_samples: int | None = None,
) -> Extraction:
    """The request's problem: passage by passage when the request splits into a fleet passage and one passage
    per named customer (:func:`split_request`, :func:`extract_by_passage`), else, or when a passage gets no
    valid reading, ``whole_samples`` (default ``samples``) whole-request extractions in one batched call, scored
    into the trace and voted."""
    whole_k = samples if whole_samples is None else whole_samples
    passages = split_request(text) if by_passage else None
    parts: tuple[PartVote, ...] = ()
    if passages is not None:
        problem, parts, why, final = await extract_by_passage(
            text, passages, search, samples=samples, temperature=temperature
        )
        if problem is not None or final:
            votes = min((p.votes for p in parts), default=0)
            return Extraction(problem, (), votes, why, parts, "passages")
        whole = await extract_whole(text, search, samples=whole_k, temperature=temperature)
        return replace(whole, parts=parts, method="whole after passages",
                       reason=f"{whole.reason} (passage by passage: {why})")  # fmt: skip
    return await extract_whole(text, search, samples=whole_k, temperature=temperature)


async def extract_whole(
    text: str, search: SearchContext, *, samples: int = 5, temperature: float | None = None
) -> Extraction:
    """Sample ``samples`` extractions of the whole request in one batched call, score them into the trace, and
    vote."""
    facts = RequestFacts.of(text)
    problem = extraction_problem(text)
    [candidates] = await search.sample(problem, samples, strategy="extract", temperature=temperature)
    await search.score(problem, candidates, ExtractionScorer(facts))
    return vote([read_extraction(c.text, facts, c.index) for c in candidates])


def describe_problem(problem: RoutingProblem) -> str:
    """One line: customers, fleet, total demand, time windows."""
    windows = ", with time windows" if problem.time_windows else ""
    return (
        f"{len(problem.customers)} customers, {problem.fleet.vehicles} vehicles x capacity {problem.fleet.capacity}, "
        f"total demand {problem.total_demand}{windows}"
    )


# -- per-passage extraction ------------------------------------------------------------------------------------------
# A 0.5B model asked for a whole problem in one JSON stops after two customers or copies a demand into a ready
# time; asked for one customer of one sentence it rarely slips. The request is split deterministically into the
# fleet/depot passage and one passage per customer; every passage gets its own tiny JSON prompt, all of them
# sampled in ONE batched call (one branch per passage), each checked against its own passage's numbers and voted.

FLEET = "fleet"
"""The key of the fleet/depot passage."""

_FLEET_WORDS = re.compile(
    r"\b(?:vehicles?|trucks?|vans?|lorr(?:y|ies)|fleet|capacity|depot|warehouse|hub|drivers?|couriers?)\b", re.I
)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_LIST_MARK = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_SERVICE = re.compile(r"\bservice\b|\bunload|\bto (?:load|unload)\b|\bstays?\b|\bspend", re.I)

PART_SYSTEM = (
    "You copy the numbers of one passage of a vehicle routing request into JSON. Copy every number exactly as "
    "the passage gives it and never invent one. Write the JSON on one line."
)

_PART_FLEET_EXAMPLE = (
    "Three trucks of capacity 70 leave the depot at (50, 20).",
    '{"vehicles": 3, "capacity": 70, "depot_x": 50, "depot_y": 20}',
)
_PART_PLAIN_EXAMPLES = (
    ("Shop 2 at (8, 1) orders 15 units.", '{"id": 2, "x": 8, "y": 1, "demand": 15}'),
    ("client 7: location (61, 4), demand 25", '{"id": 7, "x": 61, "y": 4, "demand": 25}'),
)
_PART_TIMED_EXAMPLES = (
    ("Client 4: (44, 61), 35 units, time window 5 to 90.",
     '{"id": 4, "x": 44, "y": 61, "demand": 35, "ready": 5, "due": 90}'),
    ("Shop 2 is at (8, 1), orders 15 units and can receive goods from 30 until 75.",
     '{"id": 2, "x": 8, "y": 1, "demand": 15, "ready": 30, "due": 75}'),
)  # fmt: skip
_PART_SERVICE_EXAMPLE = (
    "Site 6 at (12, 3) needs 20 units between 10 and 60; unloading takes 5.",
    '{"id": 6, "x": 12, "y": 3, "demand": 20, "ready": 10, "due": 60, "service": 5}',
)


@dataclass(frozen=True, slots=True)
class Passage:
    """One part of a request: the fleet and depot (``customer`` None) or one customer's sentences."""

    customer: int | None
    text: str

    @property
    def key(self) -> str:
        return FLEET if self.customer is None else f"customer {self.customer}"

    def tally(self) -> Counter[float]:
        """How often each number occurs in the passage (a customer's own id once less: it names, it states nothing)."""
        counts = Counter(_number_list(self.text))
        if self.customer is not None:
            counts[float(self.customer)] -= 1
        return Counter({v: n for v, n in counts.items() if n > 0})


def _pieces(text: str) -> list[str]:
    """The request's sentences and lines (list markers dropped; "no. 4" does not end a sentence)."""
    pieces: list[str] = []
    for line in text.splitlines():
        line = _LIST_MARK.sub("", line).strip()
        for piece in _SENTENCE_END.split(line):
            if pieces and re.search(r"\bno\.$", pieces[-1], re.I):
                pieces[-1] += " " + piece
            elif piece.strip():
                pieces.append(piece.strip())
    return pieces


def split_request(text: str) -> list[Passage] | None:
    """The fleet/depot passage first, then one passage per customer the request names ("store 4"), in id order;
    None when the request cannot be split that way (no named customers, or a passage without the numbers it
    needs: a fleet with capacity and a depot, a customer with a location and a demand).

    Sentences that name one customer are that customer's; a sentence naming several is cut at each mention
    (text before the first mention goes to the fleet when it speaks of vehicles or the depot, else to the first
    customer); a sentence naming none belongs to the fleet, unless it follows a customer's sentence, states
    numbers and says nothing of the fleet ("It needs 20 units.")."""
    fleet: list[str] = []
    customers: dict[int, list[str]] = {}
    last: int | None = None
    for piece in _pieces(text):
        mentions = [m for m in _STOP_ID.finditer(piece) if int(m.group(1)) > 0]
        if not mentions:
            if last is not None and _number_list(piece) and not _FLEET_WORDS.search(piece):
                customers[last].append(piece)
            else:
                fleet.append(piece)
                last = None
            continue
        head = piece[: mentions[0].start()]
        if _number_list(head) and _FLEET_WORDS.search(head):
            fleet.append(head)
            head = ""
        for k, m in enumerate(mentions):
            end = mentions[k + 1].start() if k + 1 < len(mentions) else len(piece)
            cid = int(m.group(1))
            if k + 1 < len(mentions) and int(mentions[k + 1].group(1)) == cid:
                end = mentions[k + 1].start()
            customers.setdefault(cid, []).append((head if k == 0 else "") + piece[m.start() : end])
            last = cid
    if not customers:
        return None
    passages = [Passage(None, " ".join(fleet))] + [Passage(c, " ".join(customers[c])) for c in sorted(customers)]
    for p in passages:
        if sum(p.tally().values()) < 3:
            return None
    return passages


def part_problem(text: str, *, problem_id: str = "extract-parts") -> Problem:
    """The prompt every passage shares: the two JSON shapes and worked examples (time windows shown only when the
    request mentions them, a service time only when it speaks of one). Each passage is a branch whose prefix
    quotes it and starts its JSON (:func:`part_prefix`)."""
    timed = mentions_time_windows(text)
    examples = [_PART_FLEET_EXAMPLE, *(_PART_TIMED_EXAMPLES if timed else _PART_PLAIN_EXAMPLES)]
    extra = ""
    if timed:
        extra = ' Add "ready" and "due" when the passage gives a time window'
        if _SERVICE.search(text):
            examples.append(_PART_SERVICE_EXAMPLE)
            extra += ', "service" when it gives a service time'
        extra += "."
    shown = "\n".join(f'Passage: "{p}"\nJSON: {j}' for p, j in examples)
    user = (
        'Write the JSON of each passage. The fleet and depot: {"vehicles": how many vehicles, "capacity": what one '
        'vehicle carries, "depot_x": number, "depot_y": number}; add "depot_ready" and "depot_due" if the depot '
        'has opening hours. A customer: {"id": integer, "x": number, "y": number, "demand": integer}.'
        f"{extra}\n\n{shown}"
    )
    prompt = (Message.system(PART_SYSTEM), Message.user(user))
    return Problem(problem_id, prompt, "json", max_tokens=56, metadata={"request": text})


def part_prefix(passage: Passage) -> str:
    """The start of a passage's answer: the passage quoted, and its JSON begun (the customer's id is given)."""
    quoted = passage.text.replace('"', "'")
    start = '{"vehicles": ' if passage.customer is None else f'{{"id": {passage.customer}, "x": '
    return f'Passage: "{quoted}"\nJSON: {start}'


@dataclass(frozen=True, slots=True)
class PartReading:
    """One sample for one passage: its values (None when rejected, ``error`` says why) and whether it uses every
    number the passage states (``complete``)."""

    index: int
    values: Mapping[str, float] | None
    error: str | None = None
    complete: bool = True

    @property
    def accepted(self) -> bool:
        return self.values is not None

    @property
    def key(self) -> str:
        return json.dumps(dict(self.values or {}), sort_keys=True)


def _part_json(text: str) -> dict[str, Any]:
    """The JSON object after the last ``JSON:`` of a passage's answer (brackets left open are closed)."""
    at = text.rfind("JSON:")
    body = text[at + 5 :] if at >= 0 else text
    start = body.find("{")
    if start < 0:
        raise ExtractionError("no JSON object in the reply")
    body = body[start:].split("\n", 1)[0]
    try:
        value, _ = json.JSONDecoder().raw_decode(close_json(body))
    except ValueError:
        raise ExtractionError("unreadable JSON") from None
    if not isinstance(value, dict):
        raise ExtractionError("the JSON is not an object")
    return value


def _part_values(data: Mapping[str, Any], passage: Passage) -> dict[str, float]:
    where = passage.key
    values: dict[str, float] = {}
    if passage.customer is None:
        values["vehicles"] = _whole(data.get("vehicles"), "the fleet's vehicles")
        values["capacity"] = _whole(data.get("capacity"), "the fleet's capacity")
        depot = data.get("depot")
        if isinstance(depot, Mapping | list | tuple) and "depot_x" not in data:
            pair = depot if isinstance(depot, Mapping) else dict(zip(("x", "y"), depot, strict=False))
            values["depot_x"], values["depot_y"] = _point(pair, "the depot")
        else:
            values["depot_x"] = _num(data.get("depot_x"), "the depot x")
            values["depot_y"] = _num(data.get("depot_y"), "the depot y")
        for key in ("depot_ready", "depot_due"):
            if data.get(key) is not None:
                values[key] = _num(data[key], f"the {key.replace('_', ' ')} time")
        return _drop_zero_times(values)
    if _whole(data.get("id"), f"{where} id") != passage.customer:
        raise ExtractionError(f"{where}: the JSON names customer {data.get('id')}")
    values["x"], values["y"] = _point(data, where)
    values["demand"] = _whole(data.get("demand"), f"{where} demand")
    values |= _window(data, where)
    return _drop_zero_times(values)


def _drop_zero_times(values: dict[str, float]) -> dict[str, float]:
    """``values`` without a zero ready, service or depot opening time (zero is the default: a reading that
    writes it and one that leaves it out agree)."""
    return {k: v for k, v in values.items() if not (k in ("ready", "service", "depot_ready") and v == 0)}


def read_part(text: str, passage: Passage, index: int = 0) -> PartReading:
    """Read one passage's answer: parse it and check every value against the passage's own numbers (a number it
    never states is invented; one stated once may fill one field only)."""
    try:
        values = _part_values(_part_json(text), passage)
    except ExtractionError as exc:
        return PartReading(index, None, str(exc))
    stated = passage.tally()
    used = Counter(abs(v) for v in values.values() if v != 0)
    invented = sorted(v for v in used if v not in stated)
    if invented:
        shown = ", ".join(f"{v:g}" for v in invented)
        return PartReading(index, None, f"{passage.key}: {shown} not stated in its passage")
    for value, times in sorted(used.items()):
        if times > stated[value]:
            why = f"{passage.key}: {value:g} is used {times} times but stated {stated[value]}"
            return PartReading(index, None, why)
    unused = {v for v in stated if v != 0} - set(used)
    return PartReading(index, values, None, not unused)


@dataclass(frozen=True, slots=True)
class PartVote:
    """The voted values of one passage (None when no sample was accepted; ``reason`` says why)."""

    passage: Passage
    values: Mapping[str, float] | None
    readings: tuple[PartReading, ...]
    votes: int = 0
    reason: str = ""

    def as_data(self) -> dict[str, Any]:
        return {
            "passage": self.passage.key,
            "text": self.passage.text,
            "samples": len(self.readings),
            "accepted": sum(r.accepted for r in self.readings),
            "votes": self.votes,
            "values": None if self.values is None else dict(self.values),
            "reason": self.reason,
            "readings": [
                {"index": r.index, "accepted": r.accepted, "error": r.error, "complete": r.complete,
                 "values": None if r.values is None else dict(r.values)}
                for r in self.readings
            ],
        }  # fmt: skip


def vote_part(passage: Passage, readings: Sequence[PartReading]) -> PartVote:
    """Majority over a passage's accepted samples (complete ones first); ties go to the one filling more fields,
    then to the earlier sample. With none accepted, the most common rejection is the reason."""
    valid = [r for r in readings if r.accepted]
    pool = [r for r in valid if r.complete] or valid
    if not pool:
        reasons = Counter(r.error or "rejected" for r in readings)
        top = reasons.most_common(1)[0][0] if reasons else "no sample"
        return PartVote(passage, None, tuple(readings), 0, f"{passage.key}: no valid reading in {len(readings)}: {top}")
    counts = Counter(r.key for r in pool)
    best = max(pool, key=lambda r: (counts[r.key], len(r.values or {}), -r.index))
    n = counts[best.key]
    return PartVote(passage, best.values, tuple(readings), n, f"{passage.key}: {n} of {len(readings)} agree")


def assemble(parts: Sequence[PartVote]) -> dict[str, Any]:
    """The problem JSON (the whole-request shape :func:`problem_dict` reads) from voted passages."""
    fleet = next((p.values for p in parts if p.passage.customer is None), None)
    if fleet is None:
        raise ExtractionError("the fleet and depot were not read")
    depot: dict[str, float] = {"x": fleet["depot_x"], "y": fleet["depot_y"]}
    if "depot_ready" in fleet:
        depot["ready"] = fleet["depot_ready"]
    if "depot_due" in fleet:
        depot["due"] = fleet["depot_due"]
    customers = [{"id": p.passage.customer, **(p.values or {})} for p in parts if p.passage.customer is not None]
    return {"depot": depot, "vehicles": fleet["vehicles"], "capacity": fleet["capacity"], "customers": customers}


@dataclass(frozen=True, slots=True)
class PartScorer:
    """A scorer for the trace: 0 for a rejected passage reading (the reason as rationale), 1 for a complete one,
    0.5 for a valid one that leaves a number of its passage unused."""

    passage: Passage
    name: str = "extraction"

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        out = []
        for c in candidates:
            r = read_part(c.text, self.passage, c.index)
            value = 0.0 if not r.accepted else 1.0 if r.complete else 0.5
            out.append(Score(self.name, value, rationale=r.error or f"valid reading of {self.passage.key}"))
        return out


async def extract_by_passage(
    text: str, passages: Sequence[Passage], search: SearchContext, *, samples: int, temperature: float | None
) -> tuple[RoutingProblem | None, tuple[PartVote, ...], str, bool]:
    """Every passage's ``samples`` readings in one batched call (a branch per passage), voted per passage and
    assembled. Returns (problem, votes, reason, final): ``final`` is True when every passage was read and the
    assembled problem is invalid as the request states it (a demand over the capacity): that is the answer, not
    a reason to try the whole request again."""
    problem = part_problem(text)
    branches = [Branch(part_prefix(p)) for p in passages]
    rows = await search.sample(problem, samples, branches=branches, stop=("\n",), strategy="extract_parts",
                               temperature=temperature)  # fmt: skip
    votes = []
    for passage, row in zip(passages, rows, strict=True):
        await search.score(problem, row, PartScorer(passage))
        votes.append(vote_part(passage, [read_part(c.text, passage, c.index) for c in row]))
    failed = [v for v in votes if v.values is None]
    if failed:
        return None, tuple(votes), "; ".join(v.reason for v in failed), False
    try:
        data = assemble(votes)
        assembled = RoutingProblem.model_validate(problem_dict(data))
    except ExtractionError as exc:
        return None, tuple(votes), str(exc), True
    except ValidationError as exc:
        return None, tuple(votes), f"invalid problem: {describe_validation(exc)}", True
    check = read_extraction(json.dumps(data), RequestFacts.of(text))
    if check.problem is None:  # the split and the whole-request checks disagree: not trusted
        return None, tuple(votes), f"the passages' problem fails the request's checks: {check.error}", False
    agree = min(v.votes for v in votes)
    reason = f"read passage by passage ({len(votes)} passages x {samples} samples; at least {agree} agree on each)"
    return assembled, tuple(votes), reason, True
