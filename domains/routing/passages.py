"""Reading a request passage by passage: the fleet/depot passage and one passage per named customer.

The request is split deterministically (:func:`split_request`), every passage gets a tiny JSON prompt (a
branch of one shared prompt, all sampled in one batched call: :func:`read_passages`), each passage's samples are
checked against that passage's own numbers (:func:`read_part`) and voted (:func:`vote_part`), and the voted
passages are assembled into the whole-request JSON shape (:func:`assemble`), which :mod:`.extract` then checks
as it checks a whole extraction.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from longthink.domains.routing.lexicon import Work, mask_distractors
from longthink.domains.routing.parsing import (
    STOP_ID,
    ExtractionError,
    close_json,
    mentions_time_windows,
    number_list,
    stated_fleet_size,
    to_int,
    to_number,
    to_point,
    to_window,
)
from longthink.llm.types import Message
from longthink.search.context import Branch, SearchContext
from longthink.search.types import Candidate, Problem, Score

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

    @property
    def states_fleet_size(self) -> bool:
        """Whether this is the fleet passage and it says how many vehicles there are (else: unlimited)."""
        return self.customer is None and stated_fleet_size(self.text) is not None

    def tally(self) -> Counter[float]:
        """How often each number occurs in the passage (a customer's own id once less: it names, it states nothing)."""
        counts = Counter(number_list(self.text))
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


def _values(piece: str) -> list[float]:
    """The numbers of ``piece`` that may be values: not phone numbers, dates, prices, rates or references."""
    work = Work(piece)
    mask_distractors(work)
    return [v for v, _ in work.numbers()]


def split_request(text: str) -> list[Passage] | None:
    """The fleet/depot passage first, then one passage per customer the request names ("store 4"), in id order;
    None when the request cannot be split that way (no named customers, or a passage without the numbers it
    needs: a fleet with capacity and a depot, a customer with a location and a demand).

    Sentences that name one customer are that customer's; a sentence naming several is cut at each mention
    (text before the first mention goes to the fleet when it speaks of vehicles or the depot, else to the first
    customer); a sentence naming none belongs to the fleet, unless it follows a customer's sentence, states
    numbers and says nothing of the fleet ("It needs 20 units."); a sentence whose only numbers are distractors
    ("Our rate is 45 per hour plus 0.80 per km", a phone number) belongs to no passage."""
    fleet: list[str] = []
    customers: dict[int, list[str]] = {}
    last: int | None = None
    for piece in _pieces(text):
        mentions = [m for m in STOP_ID.finditer(piece) if int(m.group(1)) > 0]
        if not mentions and number_list(piece) and not _values(piece):
            continue  # only distractors ("our rate is 45 per hour", a phone number): no passage's values
        if not mentions:
            if last is not None and number_list(piece) and not _FLEET_WORDS.search(piece):
                customers[last].append(piece)
            else:
                fleet.append(piece)
                last = None
            continue
        head = piece[: mentions[0].start()]
        if number_list(head) and _FLEET_WORDS.search(head):
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
    """The start of a passage's answer: the passage quoted, and its JSON begun (the customer's id is given; a
    fleet passage that states no fleet size starts at the capacity: the fleet is unlimited)."""
    quoted = passage.text.replace('"', "'")
    if passage.customer is not None:
        start = f'{{"id": {passage.customer}, "x": '
    else:
        start = '{"vehicles": ' if passage.states_fleet_size else '{"capacity": '
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
    except (ValueError, RecursionError):
        raise ExtractionError("unreadable JSON") from None
    if not isinstance(value, dict):
        raise ExtractionError("the JSON is not an object")
    return value


def _part_values(data: Mapping[str, Any], passage: Passage) -> dict[str, float]:
    where = passage.key
    values: dict[str, float] = {}
    if passage.customer is None:
        if passage.states_fleet_size or data.get("vehicles") is not None:
            values["vehicles"] = to_int(data.get("vehicles"), "the fleet's vehicles")
        values["capacity"] = to_int(data.get("capacity"), "the fleet's capacity")
        depot = data.get("depot")
        if isinstance(depot, Mapping | list | tuple) and "depot_x" not in data:
            pair = depot if isinstance(depot, Mapping) else dict(zip(("x", "y"), depot, strict=False))
            values["depot_x"], values["depot_y"] = to_point(pair, "the depot")
        else:
            values["depot_x"] = to_number(data.get("depot_x"), "the depot x")
            values["depot_y"] = to_number(data.get("depot_y"), "the depot y")
        for key in ("depot_ready", "depot_due"):
            if data.get(key) is not None:
                values[key] = to_number(data[key], f"the {key.replace('_', ' ')} time")
        return _drop_zero_times(values)
    if to_int(data.get("id"), f"{where} id") != passage.customer:
        raise ExtractionError(f"{where}: the JSON names customer {data.get('id')}")
    values["x"], values["y"] = to_point(data, where)
    values["demand"] = to_int(data.get("demand"), f"{where} demand")
    values |= to_window(data, where)
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
    size = {"vehicles": fleet["vehicles"]} if "vehicles" in fleet else {}  # none: the fleet is unlimited
    return {"depot": depot, **size, "capacity": fleet["capacity"], "customers": customers}


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


async def read_passages(
    text: str, passages: Sequence[Passage], search: SearchContext, *, samples: int, temperature: float | None
) -> tuple[PartVote, ...]:
    """Every passage's ``samples`` readings in one batched call (a branch per passage), scored into the trace and
    voted per passage."""
    problem = part_problem(text)
    branches = [Branch(part_prefix(p)) for p in passages]
    rows = await search.sample(problem, samples, branches=branches, stop=("\n",), strategy="extract_parts",
                               temperature=temperature)  # fmt: skip
    votes = []
    for passage, row in zip(passages, rows, strict=True):
        await search.score(problem, row, PartScorer(passage))
        votes.append(vote_part(passage, [read_part(c.text, passage, c.index) for c in row]))
    return tuple(votes)
