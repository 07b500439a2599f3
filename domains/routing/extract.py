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

First, though, the request is read *passage by passage* (:func:`extract_problem`, :mod:`.passages`): it is split
deterministically into the fleet/depot passage and one passage per named customer, every passage's samples are
drawn in one batched call, checked against that passage's own numbers and voted, and the voted passages are
assembled and checked here as a whole extraction is (:func:`extract_by_passage`). A 0.5B model asked for a whole
problem at once stops after two customers or copies a demand into a ready time; one customer of one sentence it
reads well. The whole-request extraction remains the fallback: for requests that do not split, and when a
passage gets no valid reading. What both readings share (the numbers a text states, JSON repair, checked
values) is in :mod:`.parsing`.

Both take a further ``check`` (the pipeline passes the grounding check of :mod:`.grounding`: every customer from one
span of the request holding its location and demand, the request's count, fleet and depot): an accepted reading that
fails it is rejected with its reason before the vote. ``numbers`` adds amounts the request states in another unit
("2 pallets" with "1 pallet = 20 boxes" states 40) to the numbers a reading may use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from longthink.domains.routing.io import describe_validation
from longthink.domains.routing.parsing import (
    STOP_ID,
    ExtractionError,
    close_json,
    mentions_time_windows,
    number_list,
    stated_fleet_size,
    stated_numbers,
    to_int,
    to_point,
    to_window,
)
from longthink.domains.routing.passages import PartVote, Passage, assemble, read_passages, split_request
from longthink.domains.routing.problem import RoutingProblem
from longthink.llm.types import Message
from longthink.search.context import SearchContext
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


Check = Callable[[RoutingProblem], str | None]
"""A further check of an accepted reading (the grounding check, :func:`~.grounding.ground`): the reason it fails,
or None."""


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the request states literally: its numbers, the customer numbers it names ("store 4"), for each
    named customer the numbers of its passage (from its mention to the next customer's), with how often each
    occurs there (the mention's own number not counted), and the fleet size it states ("3 trucks"; None: the
    fleet is unlimited)."""

    numbers: frozenset[float]
    stop_ids: frozenset[int]
    passages: Mapping[int, frozenset[float]] = field(default_factory=dict)
    counts: Mapping[int, Mapping[float, int]] = field(default_factory=dict)
    fleet_size: int | None = None

    @staticmethod
    def of(text: str) -> RequestFacts:
        mentions = [(m.start(), int(m.group(1))) for m in STOP_ID.finditer(text) if int(m.group(1)) > 0]
        passages: dict[int, set[float]] = {}
        counts: dict[int, Counter[float]] = {}
        for k, (start, cid) in enumerate(mentions):
            end = next((p for p, other in mentions[k + 1 :] if other != cid), len(text))
            passages.setdefault(cid, set()).update(stated_numbers(text[start:end]))
            tally = counts.setdefault(cid, Counter())
            tally.update(number_list(text[start:end]))
            tally[float(cid)] -= 1  # "store 4" names the customer; it states no value
        frozen = {cid: frozenset(values) for cid, values in passages.items()}
        return RequestFacts(frozenset(stated_numbers(text)), frozenset(frozen), frozen, counts, stated_fleet_size(text))

    def with_numbers(self, extra: Iterable[float]) -> RequestFacts:
        """These facts with ``extra`` numbers counted as stated (amounts converted as the request says: "1 pallet =
        20 boxes" states 40 for 2 pallets)."""
        more = frozenset(float(v) for v in extra)
        return self if not more else replace(self, numbers=self.numbers | more)


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
                value, _ = decoder.raw_decode(source, begin)
            except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
                continue
            if isinstance(value, dict):
                if "customers" in value:
                    return value
                first = first or value
    if first is None:
        raise ExtractionError("no readable JSON object in the reply")
    raise ExtractionError("the JSON has no 'customers' list")


def _fleet(data: Mapping[str, Any]) -> dict[str, int]:
    """The fleet's capacity and, when the JSON gives it, its size (absent: an unlimited fleet)."""
    nested = data.get("fleet")
    source: Mapping[str, Any] = nested if isinstance(nested, Mapping) else data
    fleet: dict[str, int] = {}
    for what, keys in _FLEET_KEYS.items():
        key = next((k for k in keys if k in source), None)
        if what == "vehicles" and (key is None or source[key] is None):
            continue
        if key is None:
            raise ExtractionError(f"the fleet's {what} is missing")
        fleet[what] = to_int(source[key], f"the fleet's {what}")
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
    strict on the values). Without ``vehicles`` the fleet is unlimited."""
    depot_raw = data.get("depot")
    if isinstance(depot_raw, list | tuple) and len(depot_raw) in (2, 4):
        depot_raw = dict(zip(("x", "y", "ready", "due"), depot_raw, strict=False))
    if not isinstance(depot_raw, Mapping):
        raise ExtractionError("the depot is missing")
    dx, dy = to_point(depot_raw, "the depot")
    depot: dict[str, Any] = {"x": dx, "y": dy, **to_window(depot_raw, "the depot")}
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
            cid = to_int(raw_id, f"customer #{position} id")
        except ExtractionError:
            cid, name = position, str(raw_id)  # a name such as "Bakery" keeps its place in the list as its id
        where = f"customer {cid}"
        x, y = to_point(item, where)
        demand_key = next((k for k in ("demand", "quantity", "units", "load") if k in item), "demand")
        row: dict[str, Any] = {"id": cid, "x": x, "y": y, "demand": to_int(item.get(demand_key), f"{where} demand")}
        row |= to_window(item, where)
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
        *([problem.fleet.vehicles] if problem.fleet.vehicles is not None else []),
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


def read_extraction(text: str, facts: RequestFacts, index: int = 0, check: Check | None = None) -> Reading:
    """Read one model reply: parse, validate, and check it against the request's literal facts (and ``check``, the
    grounding check, when given)."""
    reading = _read_extraction(text, facts, index)
    if check is not None and reading.problem is not None and (why := check(reading.problem)) is not None:
        return Reading(index, None, why)
    return reading


def _read_extraction(text: str, facts: RequestFacts, index: int) -> Reading:
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
    if facts.fleet_size is not None and problem.fleet.vehicles is None:
        why = f"the request states a fleet of {facts.fleet_size} vehicles; the extraction leaves the fleet unlimited"
        return Reading(index, None, why)
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
    check: Check | None = None

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        out = []
        for c in candidates:
            r = read_extraction(c.text, self.facts, c.index, self.check)
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
    check: Check | None = None,
    numbers: Iterable[float] = (),
) -> Extraction:
    """The request's problem: passage by passage when the request splits into a fleet passage and one passage
    per named customer (:func:`split_request`, :func:`extract_by_passage`), else, or when a passage gets no
    valid reading, ``whole_samples`` (default ``samples``) whole-request extractions in one batched call, scored
    into the trace and voted. ``check`` rejects readings that fail it (the grounding check); ``numbers`` are
    counted as stated (converted amounts)."""
    whole_k = samples if whole_samples is None else whole_samples
    passages = split_request(text) if by_passage else None
    parts: tuple[PartVote, ...] = ()
    if passages is not None:
        problem, parts, why, final = await extract_by_passage(
            text, passages, search, samples=samples, temperature=temperature, check=check, numbers=numbers
        )
        if problem is not None or final:
            votes = min((p.votes for p in parts), default=0)
            return Extraction(problem, (), votes, why, parts, "passages")
        whole = await extract_whole(text, search, samples=whole_k, temperature=temperature, check=check,
                                    numbers=numbers)  # fmt: skip
        return replace(whole, parts=parts, method="whole after passages",
                       reason=f"{whole.reason} (passage by passage: {why})")  # fmt: skip
    return await extract_whole(text, search, samples=whole_k, temperature=temperature, check=check, numbers=numbers)


async def extract_whole(
    text: str,
    search: SearchContext,
    *,
    samples: int = 5,
    temperature: float | None = None,
    check: Check | None = None,
    numbers: Iterable[float] = (),
) -> Extraction:
    """Sample ``samples`` extractions of the whole request in one batched call, score them into the trace, and
    vote (``check`` and ``numbers`` as for :func:`extract_problem`)."""
    facts = RequestFacts.of(text).with_numbers(numbers)
    problem = extraction_problem(text)
    [candidates] = await search.sample(problem, samples, strategy="extract", temperature=temperature)
    await search.score(problem, candidates, ExtractionScorer(facts, check=check))
    return vote([read_extraction(c.text, facts, c.index, check) for c in candidates])


def describe_problem(problem: RoutingProblem) -> str:
    """One line: customers, fleet, total demand, time windows."""
    windows = ", with time windows" if problem.time_windows else ""
    return (
        f"{len(problem.customers)} customers, {problem.fleet.describe()}, total demand {problem.total_demand}{windows}"
    )


async def extract_by_passage(
    text: str,
    passages: Sequence[Passage],
    search: SearchContext,
    *,
    samples: int,
    temperature: float | None,
    check: Check | None = None,
    numbers: Iterable[float] = (),
) -> tuple[RoutingProblem | None, tuple[PartVote, ...], str, bool]:
    """Every passage's ``samples`` readings in one batched call (:func:`~.passages.read_passages`), voted per
    passage, assembled and checked as a whole extraction is. Returns (problem, votes, reason, final): ``final``
    is True when every passage was read and the assembled problem is invalid as the request states it (a demand
    over the capacity): that is the answer, not a reason to try the whole request again."""
    votes = await read_passages(text, passages, search, samples=samples, temperature=temperature)
    failed = [v for v in votes if v.values is None]
    if failed:
        return None, votes, "; ".join(v.reason for v in failed), False
    try:
        data = assemble(votes)
        assembled = RoutingProblem.model_validate(problem_dict(data))
    except ExtractionError as exc:
        return None, votes, str(exc), True
    except ValidationError as exc:
        return None, votes, f"invalid problem: {describe_validation(exc)}", True
    checked = read_extraction(json.dumps(data), RequestFacts.of(text).with_numbers(numbers), check=check)
    if checked.problem is None:  # the split and the whole-request checks disagree: not trusted
        return None, votes, f"the passages' problem fails the request's checks: {checked.error}", False
    agree = min(v.votes for v in votes)
    reason = f"read passage by passage ({len(votes)} passages x {samples} samples; at least {agree} agree on each)"
    return assembled, votes, reason, True
