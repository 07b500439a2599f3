"""Several depots and mixed fleets read from a request's words (domains/routing/fleet_types.py): a vehicle type is a
clause with one count and one capacity, its depot the one whose name the clause uses; anything less sure asks."""

from __future__ import annotations

from longthink.domains.pipeline import Fact
from longthink.domains.routing.fleet_types import clauses, says_several_depots
from longthink.domains.routing.structure import read_request

TWO_DEPOTS = (
    "Depots: Ridge depot (0, 0) and Vale depot (30, 30).\n"
    "Ridge has 2 vans with capacity 15 crates; Vale has 1 truck with capacity 40 crates.\n"
    "- Oak Store: (4, 2), 9 crates\n- Elm Cafe: (27, 33), 30 crates\n- Ash Deli: (6, 8), 12 crates\n"
)


def test_two_depots_with_a_type_each_read_into_depots_and_vehicle_types() -> None:
    reading = read_request(TWO_DEPOTS)
    assert reading.complete and not reading.issues, reading.incomplete
    problem = reading.problem
    assert problem is not None
    assert [(d.x, d.y) for d in problem.all_depots] == [(0, 0), (30, 30)]
    kinds = sorted((t.capacity, t.count, t.depot) for t in problem.vehicle_types)
    assert kinds == [(15, 2, 0), (40, 1, 1)]
    assert [c.demand for c in problem.customers] == [9, 30, 12]
    assert reading.fleet_size == 3


def test_a_mixed_fleet_at_one_depot_with_fixed_costs() -> None:
    text = ("Depot at (10, 10).\nvans: 3, capacity 20 boxes, fixed cost 15\nlorries: 1, capacity 70 boxes, fixed cost 60\n"
            "- Mill: (12, 4), 18 boxes\n- Quay: (2, 15), 60 boxes\n- Kiln: (18, 18), 7 boxes\n")  # fmt: skip
    reading = read_request(text)
    assert reading.problem is not None and not reading.issues, reading.incomplete
    kinds = sorted((t.capacity, t.count, t.fixed_cost) for t in reading.problem.vehicle_types)
    assert kinds == [(20, 3, 15.0), (70, 1, 60.0)]
    assert reading.problem.fleet.capacity == 70 and not reading.unread


def test_a_type_whose_depot_is_not_said_is_a_question_and_its_answer_places_it() -> None:
    text = TWO_DEPOTS.replace("Ridge has 2 vans", "There are 2 vans")
    reading = read_request(text)
    assert reading.problem is None
    [issue] = reading.issues
    assert issue.id == "vehicle_depots" and "vans" in issue.text and "Ridge" in issue.text and "Vale" in issue.text
    start = len(text) + 1
    answered = read_request(text, [Fact("vehicle depots", "from Vale", False, start, start + 9)])
    assert answered.problem is not None and not answered.issues
    assert sorted((t.capacity, t.depot) for t in answered.problem.vehicle_types) == [(15, 1), (40, 1)]


def test_one_fleet_stated_twice_is_still_a_question_not_a_mixed_fleet() -> None:
    text = ("Depot (0, 0). We have 3 vans, 20 boxes each. Only 2 vans are available tomorrow.\n"
            "- A: (1, 2), 5 boxes\n- B: (3, 1), 6 boxes\n")  # fmt: skip
    reading = read_request(text)
    assert not reading.types and [i.id for i in reading.issues] == ["fleet_size"]


def test_two_starting_points_without_a_mixed_fleet_still_ask_which_depot() -> None:
    text = ("Two depots: North depot (0, 0) and South depot (20, 20). We have 4 vans of 30 crates.\n"
            "- Shop 1: (3, 4), 10 crates\n- Shop 2: (18, 15), 12 crates\n")  # fmt: skip
    reading = read_request(text)
    assert reading.problem is None and [i.id for i in reading.issues] == ["depot"]


def test_clauses_and_plural_depots() -> None:
    text = "2 vans (capacity 40 kg) and 1 lorry (capacity 120 kg); bikes: 2. Next sentence here"
    assert [text[a:b] for a, b in clauses(text)] == ["2 vans (capacity 40 kg)", "1 lorry (capacity 120 kg)",
                                                      " bikes: 2", "Next sentence here"]  # fmt: skip
    assert says_several_depots("from our two depots") and says_several_depots("Depots: A (0, 0)")
    assert not says_several_depots("the depot at (0, 0)")


def test_grounding_rejects_a_reading_that_loses_or_moves_a_vehicle_type() -> None:
    from longthink.domains.routing.grounding import ground

    reading = read_request(TWO_DEPOTS)
    problem = reading.problem
    assert problem is not None and ground(problem, reading) is None
    data = problem.model_dump()
    moved = {**data, "fleet": {"types": [{**t, "depot": 1 - t["depot"]} for t in data["fleet"]["types"]]}}
    one_fleet = {**data, "depots": [], "depot": data["depots"][0], "fleet": {"vehicles": 3, "capacity": 40}}
    for wrong in (moved, one_fleet):
        assert ground(type(problem).model_validate(wrong), reading) is not None


def test_a_fleet_of_unstated_size_is_a_question_not_a_guess() -> None:
    text = "Depot (0, 0). We have several vans, 20 boxes each.\n- A: (1, 2), 15 boxes\n- B: (3, 1), 12 boxes\n"
    reading = read_request(text)
    assert [i.id for i in reading.issues] == ["fleet_count"] and "several vans" in reading.issues[0].text
    end = len(text)
    three = read_request(text, [Fact("fleet count", "3", False, end, end + 1)])
    assert three.problem is not None and three.problem.fleet.vehicles == 3
    default = read_request(text, [Fact("fleet count", reading.issues[0].default, True, end, end + 1)])
    assert default.problem is not None and default.problem.fleet.vehicles is None and default.assumed
    assert not read_request(text.replace("several vans", "as many vans as it takes")).issues


def test_depots_named_inside_a_sentence_are_told_apart_by_their_own_words() -> None:
    from longthink.domains.routing.fleet_types import named_depot

    text = ("Plan today's deliveries from our two depots, North depot at (10, 40) and South depot at (30, 0). North has "
            "2 vans carrying 30 boxes each; South has 1 truck carrying 60 boxes, fixed cost 25. Stops: Ames at (5, 35), "
            "12 boxes; Birch at (15, 48), 9 boxes; Dunn at (35, 6), 11 boxes.")  # fmt: skip
    reading = read_request(text)
    assert reading.problem is not None and not reading.issues, reading.incomplete
    assert sorted((t.capacity, t.count, t.depot, t.fixed_cost) for t in reading.problem.vehicle_types) == [
        (30, 2, 0, 0.0), (60, 1, 1, 25.0)]  # fmt: skip
    names = ["our two depots, North depot", "South depot"]
    assert named_depot(names, {"north", "has"}) == 0 and named_depot(names, {"south"}) == 1
    assert named_depot(names, {"north", "south"}) is None and named_depot(names, {"vans"}) is None


def test_the_same_fleet_stated_twice_is_not_added_up() -> None:
    text = ("Depot (0, 0). We have 2 vans of 40 crates. On Fridays we have 3 vans of 40 crates.\n"
            "- A: (1, 2), 5 crates\n- B: (3, 1), 6 crates\n")  # fmt: skip
    reading = read_request(text)
    assert not reading.types and [i.id for i in reading.issues] == ["fleet_size"]


def test_a_cost_per_route_written_as_a_price_is_the_fixed_cost_and_other_costs_keep_the_reading_open() -> None:
    text = ("Depot at (10, 10).\nvans: 3, capacity 20 boxes, costs $15 per route\nlorries: 1, capacity 70 boxes, "
            "fixed cost $60\n- Mill: (12, 4), 18 boxes\n- Quay: (2, 15), 60 boxes\n")  # fmt: skip
    reading = read_request(text)
    assert reading.complete and reading.problem is not None, reading.incomplete
    assert sorted((t.capacity, t.fixed_cost) for t in reading.problem.vehicle_types) == [(20, 15.0), (70, 60.0)]
    per_km = read_request(text.replace("costs $15 per route", "$0.80 per km"))
    assert not per_km.complete and "numbers not read: 0.8" in per_km.incomplete  # never a problem without that cost
