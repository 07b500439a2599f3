"""The routing pack's deterministic reading (:mod:`longthink.domains.routing.structure`): requests in the formats
people write — Markdown tables with their columns in any order, CSV pasted inline, bullet and numbered lists,
``key: value`` and ``key = value`` lines, YAML-like item lists, semicolon lists, prose — read without the model,
every value with the span it came from; distractor numbers never become values; fleet sizes under any vehicle word,
never read across a line break; stated unit conversions applied; what is unclear becomes a question.

Every request here is written for these tests (none is from the frozen benchmark set)."""

from __future__ import annotations

import pytest

from longthink.domains.pipeline import Fact, add_facts, added_facts, without_facts
from longthink.domains.routing.lexicon import Work, find_fleet, find_locations, mask_distractors
from longthink.domains.routing.parsing import stated_fleet_size
from longthink.domains.routing.problem import RoutingProblem
from longthink.domains.routing.structure import StructuredReading, read_request


def complete(text: str) -> RoutingProblem:
    """The problem of a request the rules read completely (no model needed)."""
    reading = read_request(text)
    assert reading.complete and reading.problem is not None, (reading.incomplete, reading.error)
    return reading.problem


def stops(problem: RoutingProblem) -> list[tuple[object, ...]]:
    return [(c.id, c.name, c.x, c.y, c.demand) for c in problem.customers]


def spanned(reading: StructuredReading, value: float, text: str) -> bool:
    """Whether ``value`` is read from a span of ``text`` that writes it."""
    found = [
        v
        for c in reading.customers
        for v in (*c.demands, *(p.x for p in c.locations), *(p.y for p in c.locations))
        if v.value == value
    ]
    return any(text[v.span[0] : v.span[1]].lstrip("-") == f"{abs(value):g}" for v in found)


# -- tables ---------------------------------------------------------------------------------------------------------
TABLE = """Deliveries for the east side:

| Qty (crates) | Client | Lon | Lat | From | To | Service |
|---|---|---|---|---|---|---|
| 6 | Ostrich Deli | 3 | 9 | 0 | 50 | 2 |
| 0 | Main depot | 0 | 0 | | | |
| 4 | Pelican Bar | 7 | 1 | 10 | 60 | 2 |
| 9 | Heron Inn | -4 | 5 | 5 | 70 | 3 |

Fleet = 2 x 15 crates. Call me on 0131 496 0022."""


def test_a_markdown_table_in_any_column_order_with_the_depot_as_a_row() -> None:
    reading = read_request(TABLE)
    problem = complete(TABLE)
    assert stops(problem) == [(1, "Ostrich Deli", 3, 9, 6), (2, "Pelican Bar", 7, 1, 4), (3, "Heron Inn", -4, 5, 9)]
    assert (problem.depot.x, problem.depot.y) == (0, 0) and problem.fleet.vehicles == 2 and problem.fleet.capacity == 15
    assert problem.time_windows and [(c.ready, c.due, c.service) for c in problem.customers] == [
        (0, 50, 2), (10, 60, 2), (5, 70, 3)]  # fmt: skip
    assert [kind for kind, _, _ in reading.ignored] == ["phone"]  # the phone number is never a value
    assert {c.source for c in reading.customers} == {"table"} and spanned(reading, 9, TABLE)
    heron = reading.customers[2]
    assert TABLE[heron.span[0] : heron.span[1]].startswith("| 9 | Heron Inn")  # the row it came from


def test_a_location_column_a_numbered_column_and_a_window_column() -> None:
    text = """Morning run. 3 trucks, 20 units each; depot (50, 50).

| # | location | units | window |
|---|---|---|---|
| 7 | (40, 62) | 8 | 0–45 |
| 8 | (58, 41) | 11 | 20–80 |
| 9 | (66, 70) | 5 | 30–90 |"""
    problem = complete(text)
    assert stops(problem) == [(7, "", 40, 62, 8), (8, "", 58, 41, 11), (9, "", 66, 70, 5)]
    assert [(c.ready, c.due) for c in problem.customers] == [(0, 45), (20, 80), (30, 90)]
    assert problem.fleet.vehicles == 3 and problem.fleet.capacity == 20


# -- CSV pasted inline ------------------------------------------------------------------------------------------------
def test_csv_with_semicolons_open_and_close_columns_and_a_depot_row() -> None:
    text = """Pasted from the planner (12.09.2024):
client;x;y;qty;ready;due
Harbour Kiosk;2;8;3;0;40
Lido Bar;9;9;5;10;80
Depot;5;5;0;;
Pier Shop;8;1;4;0;60
Vans: 2, capacity 10 each."""
    problem = complete(text)
    assert stops(problem) == [(1, "Harbour Kiosk", 2, 8, 3), (2, "Lido Bar", 9, 9, 5), (3, "Pier Shop", 8, 1, 4)]
    assert [(c.ready, c.due) for c in problem.customers] == [(0, 40), (10, 80), (0, 60)]
    assert (problem.depot.x, problem.depot.y, problem.fleet.vehicles, problem.fleet.capacity) == (5, 5, 2, 10)


def test_quoted_csv_with_ids() -> None:
    text = '"id","x","y","boxes"\n3,1,1,2\n4,6,2,3\n5,2,7,4\nOne van that carries 9 boxes, based at (4, 4).'
    problem = complete(text)
    assert stops(problem) == [(3, "", 1, 1, 2), (4, "", 6, 2, 3), (5, "", 2, 7, 4)]
    assert problem.fleet.vehicles == 1 and problem.fleet.capacity == 9 and (problem.depot.x, problem.depot.y) == (4, 4)


# -- lists -------------------------------------------------------------------------------------------------------------
BULLETS = """Please plan Wednesday (12/03) deliveries.
- Corner Bakery — (2, 5) — 8 trays
- Riverside Café — (9, 1) — 5 trays
- Old Mill B&B — (6, 8) — 7 trays
- Start and finish at our kitchen, (4, 4)
Fleet: 2 vans, 12 trays each. Any issue, ring 07911 123456."""


def test_bullets_with_the_depot_last_and_distractors() -> None:
    reading = read_request(BULLETS)
    problem = complete(BULLETS)
    assert stops(problem) == [
        (1, "Corner Bakery", 2, 5, 8),
        (2, "Riverside Café", 9, 1, 5),
        (3, "Old Mill B&B", 6, 8, 7),
    ]
    assert (problem.depot.x, problem.depot.y, problem.fleet.vehicles, problem.fleet.capacity) == (4, 4, 2, 12)
    assert sorted(kind for kind, _, _ in reading.ignored) == ["date", "phone"]


def test_a_numbered_list_of_key_value_stops() -> None:
    text = """1) client 12: x=3 y=7 load=4
2) client 15: x=-2 y=6 load=6
3) client 19: x=5 y=-4 load=3
trucks: 2
capacity per truck = 8
depot x=0 y=0"""
    problem = complete(text)
    assert stops(problem) == [(12, "", 3, 7, 4), (15, "", -2, 6, 6), (19, "", 5, -4, 3)]  # the list numbers are not ids
    assert problem.fleet.vehicles == 2 and problem.fleet.capacity == 8


def test_key_value_lines_with_windows_and_service() -> None:
    text = """HUB x=10 y=10 open 0-200
FLEET 3 x 25 units
S7 x=4 y=12 units=9 window=15-90 service=6
S8 x=17 y=3 units=12 window=40-150 service=6"""
    problem = complete(text)
    assert stops(problem) == [(7, "", 4, 12, 9), (8, "", 17, 3, 12)]
    assert [(c.ready, c.due, c.service) for c in problem.customers] == [(15, 90, 6), (40, 150, 6)]
    assert problem.depot.due == 200 and problem.fleet.vehicles == 3 and problem.fleet.capacity == 25


def test_a_yaml_like_list_and_a_fleet_block() -> None:
    text = """depot: {x: 1, y: 1}
fleet:
  vans: 2
  capacity: 9
stops:
  - name: Kiln Studio
    x: 4
    y: 2
    boxes: 3
  - name: Loom Works
    x: -1
    y: 6
    boxes: 5"""
    problem = complete(text)
    assert stops(problem) == [(1, "Kiln Studio", 4, 2, 3), (2, "Loom Works", -1, 6, 5)]
    assert problem.fleet.vehicles == 2 and problem.fleet.capacity == 9


def test_a_semicolon_list_on_one_line() -> None:
    text = "Depot is at 3,3 and we have one van of 20 units.\nStop 4: 2,3 (5 units); stop 7: 6,1 (8 units); stop 9: 4,5 (6 units)"
    reading = read_request(text)
    assert {c.source for c in reading.customers} == {"clause"}
    assert stops(complete(text)) == [(4, "", 2, 3, 5), (7, "", 6, 1, 8), (9, "", 4, 5, 6)]


def test_locations_and_amounts_in_two_lists_joined_by_name() -> None:
    text = """Where they are:
Aster Clinic 11 4
Birch School 3 9
Depot 6 6
Amounts in boxes: Aster 7, Birch 4. One courier with room for 12 boxes."""
    problem = complete(text)
    assert stops(problem) == [(1, "Aster Clinic", 11, 4, 7), (2, "Birch School", 3, 9, 4)]
    assert (problem.depot.x, problem.depot.y, problem.fleet.vehicles, problem.fleet.capacity) == (6, 6, 1, 12)


# -- the depot anywhere, named like a customer ----------------------------------------------------------------------
def test_the_depot_in_the_middle_named_like_a_customer() -> None:
    text = """Stops (our base is Ferris Yard):
- Hale Nursery (3, 7) 4 crates
- Ferris Yard (0, 0)
- Ink & Paper (6, 2) 3 crates
Trucks: 1, capacity 10 crates."""
    problem = complete(text)
    assert stops(problem) == [(1, "Hale Nursery", 3, 7, 4), (2, "Ink & Paper", 6, 2, 3)]
    assert (problem.depot.x, problem.depot.y) == (0, 0)


def test_a_customer_named_like_a_depot_is_a_customer() -> None:
    text = "- Depot Street Café: (2, 2), 5 units\n- Yard Sale Co: (4, 1), 3 units\n- our warehouse: (0, 0)\n2 vans, 10 units each"
    problem = complete(text)
    assert [c.name for c in problem.customers] == ["Depot Street Café", "Yard Sale Co"]
    assert (problem.depot.x, problem.depot.y) == (0, 0)


# -- distractors ------------------------------------------------------------------------------------------------------
def test_distractors_never_become_values() -> None:
    text = """Invoice INV-5521, order no. 7781, sent 2024-11-02. Rates: £2.20 per mile plus 30 per hour.
Depot at (3, 3). 2 vans, 10 crates each.
- Flat 3A: (1, 7), 4 crates
- Studio 9: (6, 6), 5 crates
Questions? +44 7700 900321 (ext. 12)"""
    reading = read_request(text)
    problem = complete(text)
    assert stops(problem) == [(1, "Flat 3A", 1, 7, 4), (2, "Studio 9", 6, 6, 5)]  # "3A", "9": names
    kinds = sorted({kind for kind, _, _ in reading.ignored})
    assert kinds == ["address", "date", "phone", "price", "rate", "reference"]
    assert not reading.unread


# -- the fleet ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "size"),
    [
        ("We have 2 cargo bikes, 5 boxes each.", 2),
        ("three cargo bikes", 3),
        ("Lorries: 4", 4),
        ("trucks: 3", 3),
        ("2 couriers with 12 units capacity each", 2),
        ("vans = 2", 2),
        ("VEHICLES 5 CAPACITY 30", 5),
        ("a fleet of 6", 6),
        ("fleet = 3 x 40 crates", 3),
        ("two refrigerated vans", 2),
        ("Vehicles: 2 lorries", 2),
        ("at most 4 vans", 4),
        ("at least 3 trucks of capacity 50", None),  # a minimum, not a size
        ("as many vans as it takes, each carries 8", None),  # unlimited
        ("Phone 07700 900111 about the vans", None),  # a phone number is no fleet
    ],
)
def test_fleet_sizes_under_any_vehicle_word(line: str, size: int | None) -> None:
    assert stated_fleet_size(line) == size


@pytest.mark.parametrize(
    ("text", "capacity"),
    [
        ("2 vans of 100", 100),
        ("vans: 2, capacity 100 each", 100),
        ("fleet = 3 x 40 crates", 40),
        ("capacity per van 120", 120),
        ("3 trucks × 100 units", 100),
        ("Our 2 trucks each take 3 tonnes", 3),
        ("Max load: 40 t", 40),
        ("a full van is 24 crates", 24),
        ("1 van that holds 30 bouquets", 30),
        ("two lorries with a payload of 5000 kg", 5000),
        ("4 lorries, 50 cases max each", 50),
        ("One van, 20 units.", 20),
    ],
)
def test_capacities_in_any_wording(text: str, capacity: int) -> None:
    work = Work(text)
    mask_distractors(work)
    find_locations(work)
    assert [s.value for s in find_fleet(work) if s.kind == "capacity"] == [capacity]


def test_a_fleet_size_is_never_read_across_a_line_break() -> None:
    assert stated_fleet_size("Parcels today: 5 boxes\nVan depot at (2, 2)") is None
    assert stated_fleet_size("depot = 12,12\nvans = 2") == 2
    assert stated_fleet_size("DEPOT x=0 y=0 open 0-120\nVEHICLES 2 CAPACITY 16") == 2
    text = "Stock note: 5 boxes\nVan depot at (2, 2).\n- Acorn: (1, 4), 3 boxes\n- Beacon: (4, 1), 2 boxes\nVans = 2, 6 boxes each"
    reading = read_request(text)
    assert reading.fleet_size == 2 and [v.value for v in reading.unread] == [5]  # the stray 5 is left unread
    assert not reading.complete  # an unread number: the model reads it, checked against this reading


def test_an_unlimited_fleet_is_stated() -> None:
    problem = complete("As many vans as needed, each carries 8 boxes. Depot (0, 0).\n- North: (0, 5), 4 boxes\n"
                       "- East: (5, 0), 7 boxes")  # fmt: skip
    assert problem.fleet.vehicles is None and problem.fleet.capacity == 8


# -- units ----------------------------------------------------------------------------------------------------------
def test_a_stated_conversion_is_applied_and_recorded() -> None:
    text = """Depot: Harlow DC at (0, 0)
Vans: 3, capacity 2 pallets each (1 pallet = 20 boxes)
Shop Amber: (5, 5), 15 boxes
Shop Birch: (-3, 6), 1 pallet
Shop Cobalt: (4, -6), 25 boxes"""
    reading = read_request(text)
    problem = complete(text)
    assert reading.unit == "box" and reading.notes == ("1 pallet = 20 boxes",)
    assert problem.fleet.capacity == 40 and [c.demand for c in problem.customers] == [15, 20, 25]


def test_tonnes_and_kilograms() -> None:
    text = """Two lorries with a payload of 5000 kg leave the yard at (10, 10).
- Quarry Hill: (14, 18), 1.5 t
- Brook Farm: (3, 12), 2 tonnes
- Elm Works: (18, 4), 800 kg"""
    problem = complete(text)
    assert problem.fleet.capacity == 5000 and [c.demand for c in problem.customers] == [1500, 2000, 800]
    same_unit = complete("- Pit A: (1, 1), 3 t\n- Pit B: (2, 2), 4 t\nDepot (0, 0); 1 lorry, max load 8 t")
    assert same_unit.fleet.capacity == 8 and [c.demand for c in same_unit.customers] == [3, 4]  # kept in tonnes


def test_a_per_unit_conversion_inside_a_stop() -> None:
    text = "- Cellar Bar: (1, 1), 48 bottles (12 per case)\n- Wine Shop: (3, 2), 5 cases\nDepot (0, 0), 1 van, 10 cases each"
    problem = complete(text)
    assert [c.demand for c in problem.customers] == [4, 5] and problem.fleet.capacity == 10


# -- prose: read by rule, but left to the model (checked against this reading) ---------------------------------------
def test_prose_is_read_but_not_complete() -> None:
    text = ("Three cargo bikes (capacity 6 boxes each) start from the hub at (1, 1). The florist at (2, 4) needs 3 "
            "boxes, the pharmacy at (5, 1) needs 2 boxes and the bakery at (4, 4) needs 5 boxes.")  # fmt: skip
    reading = read_request(text)
    assert not reading.structured and not reading.complete and not reading.incomplete
    assert reading.problem is not None and stops(reading.problem) == [
        (1, "florist", 2, 4, 3), (2, "pharmacy", 5, 1, 2), (3, "bakery", 4, 4, 5)]  # fmt: skip
    assert reading.problem.fleet.vehicles == 3


# -- what is unclear: questions, with defaults --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "issue", "default"),
    [
        ("Depot: (0, 0). 2 vans.\n- Moss: (1, 2), 4 units\n- Reed: (3, 1), 5 units\n- Sage: (2, 5), 3 units",
         "vehicle_capacity", "7 (enough for the stated fleet to carry every amount; illustrative)"),
        ("We have 4 trucks of 30 units.\nOnly 3 trucks are available on Monday.\n- Ash: (1, 1), 10 units\n"
         "- Oak: (5, 2), 12 units\nDepot (0, 0)", "fleet_size", "3"),
        ("Vans leave from the north depot (0, 10) or the south depot (0, -10); 2 vans, 20 units each.\n"
         "- Ivy: (3, 3), 5 units\n- Fern: (-2, 4), 6 units", "depot", "north depot at (0, 10)"),
        ("Depot: (0, 0). 2 vans, capacity 10.\n- Moss: (1, 2), 4 units\n- Reed: (3, 1)\n- Sage: (2, 5), 3 units",
         "demand_reed", "left out (no amount stated)"),
        ("Depot (0, 0), 2 vans of 10 units. Customer 1 at (1, 1) needs 3 units, customer 2 needs 4 units, customer 3 "
         "at (2, 2) needs 5 units.", "location_customer_2", "left out (no location stated)"),
        ("Depot (0, 0), 2 vans of 10 units. Kim at (1, 1) needs 2-4 units; Lee at (3, 3) needs 5 units.",
         "demand_kim", "4"),
        ("Depot (0, 0), 2 vans of 10 units. Kim at (1, 1), 2 units; possibly Lee at (3, 3), 5 units, if they confirm.",
         "include_lee", "yes"),
        ("Depot (0, 0). 2 vans, capacity 3 pallets each.\n- Kim: (1, 1), 20 boxes\n- Lee: (3, 3), 10 boxes",
         "boxes_per_pallet", "not stated"),
    ],
)  # fmt: skip
def test_what_is_unclear_is_a_question_with_a_default(text: str, issue: str, default: str) -> None:
    reading = read_request(text)
    assert [i.id for i in reading.issues] == [issue], reading.issues
    assert reading.issues[0].default == default and reading.problem is None


def test_answers_and_assumed_defaults_resolve_the_questions() -> None:
    text = "Depot: (0, 0). 2 vans.\n- Moss: (1, 2), 4 units\n- Reed: (3, 1), 5 units"
    answered = add_facts(text, {"vehicle capacity": "9 units"})
    reading = read_request(without_facts(answered), added_facts(answered))
    assert reading.complete and reading.problem is not None and reading.problem.fleet.capacity == 9
    assert reading.answered == ("vehicle capacity: 9 units",) and not reading.assumed
    assumed = read_request(text, [Fact("vehicle capacity", "7 (illustrative)", True, 0, 0)])
    assert assumed.problem is not None and assumed.problem.fleet.capacity == 7
    assert assumed.assumed == ("vehicle capacity: 7 (illustrative)",)
    depots = "Vans leave from the north depot (0, 10) or the south depot (0, -10); 2 vans, 20 units each.\n- Ivy: (3, 3), 5 units"
    south = read_request(depots, [Fact("depot", "the south one", False, 0, 0)])
    assert south.problem is not None and (south.problem.depot.x, south.problem.depot.y) == (0, -10)
    unread = read_request(depots, [Fact("depot", "whichever", False, 0, 0)])
    assert [i.id for i in unread.issues] == ["depot"]  # an answer it cannot read: asked again


def test_an_invalid_request_is_read_and_reported_not_fixed() -> None:
    reading = read_request(
        "Depot (0, 0)\n- Big order: (1, 1), 60 units\n- Small: (2, 2), 5 units\n2 vans, 50 units each"
    )
    assert reading.structured and not reading.incomplete and reading.problem is None
    assert "demand 60 exceeds the vehicle capacity 50" in reading.error


def test_a_column_no_rule_reads_leaves_the_table_to_the_model() -> None:
    text = "| Customer | X | Y | Demand | Priority |\n|---|---|---|---|---|\n| Ann | 1 | 2 | 3 | 1 |\n| Bo | 4 | 5 | 6 | 2 |\n" \
           "Depot (0, 0), 1 van of 10 units"  # fmt: skip
    reading = read_request(text)
    assert reading.structured and not reading.complete
    assert "Ann: a value in a column not read: '1'" in reading.incomplete


def test_a_sentence_of_distractors_belongs_to_no_passage() -> None:
    from longthink.domains.routing.passages import split_request

    text = ("Depot at (0, 10). Fleet: 2 trucks, capacity 50 each. Stop 1 (10, 10) needs 20 units; stop 2 (15, 0) "
            "needs 15 units. Our rate is 45 per hour plus 0.80 per km.")  # fmt: skip
    passages = split_request(text)
    assert passages is not None and passages[-1].text == "stop 2 (15, 0) needs 15 units."
    assert all("per hour" not in p.text for p in passages)
