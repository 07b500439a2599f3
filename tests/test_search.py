"""Search strategies with the seeded test doubles: selection, ties, budget stops, parse failures, batching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from pydantic import BaseModel

from longthink.answers import extract_number
from longthink.budget import Budget
from longthink.errors import BudgetExceeded, ConfigError
from longthink.events import EventBus, Recorder, to_json
from longthink.llm.types import SamplingParams
from longthink.rewards.verifier import Verifier
from longthink.search import (
    AdaptiveConsistency,
    BeamSearch,
    BestOfN,
    Branch,
    ChainOfThought,
    Problem,
    Refine,
    Score,
    SearchContext,
    SelfConsistency,
    TreeSearch,
    WeightedBestOfN,
    make_strategy,
)
from longthink.search.adaptive import prob_leader_ahead, stop_point
from longthink.search.feedback import RefineWithFeedback
from longthink.search.types import Candidate, Reading
from longthink.testing import FunctionLLM, RandomLLM, ScriptedLLM

MATH = Problem.from_text("p1", "What is 6 * 7?", answer_kind="number", max_tokens=64)


class AnswerIs:
    """A scorer that likes one answer (1.0), dislikes others (0.2) and gives 0 without an answer."""

    def __init__(self, good: str, name: str = "oracle") -> None:
        self.good, self._name = good, name

    @property
    def name(self) -> str:
        return self._name

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return [
            Score(self._name, 0.0 if c.answer is None else (1.0 if c.answer == self.good else 0.2)) for c in candidates
        ]


def ctx_for(llm, **kw) -> SearchContext:  # type: ignore[no-untyped-def]
    return SearchContext(llm=llm, seed=kw.pop("seed", 1), **kw)


async def test_self_consistency_votes_in_one_batched_call() -> None:
    llm = ScriptedLLM(["Answer: 42", "Answer: 41", "so 42.", "Answer: 42", "no idea", "#### 41"])
    rec = Recorder()
    bus = EventBus("run1")
    bus.subscribe(rec)
    res = await SelfConsistency(n=6).solve(MATH, ctx_for(llm, events=bus))
    assert res.answer == "42"
    assert res.votes == {"42": 3.0, "41": 2.0}
    assert len(llm.calls) == 1 and llm.calls[0][1].n == 6  # siblings in one call
    assert len(res.candidates) == 6
    assert res.candidates[4].answer is None and res.candidates[4].parse_error == "no number found"
    assert len(rec.of("candidate_generated")) == 6 and len(rec.of("search_finished")) == 1
    assert [e.seq for e in rec.events] == sorted(e.seq for e in rec.events)
    assert res.spend.samples == 6 and res.spend.completion_tokens > 0


async def test_all_candidates_failing_to_parse_is_recorded_not_raised() -> None:
    llm = ScriptedLLM(["hmm", "no clue", "dunno"])
    res = await SelfConsistency(n=3).solve(MATH, ctx_for(llm))
    assert res.answer is None and res.chosen is None and res.failed
    assert "no candidate produced a parsable answer" in res.reason
    assert all(c.parse_error for c in res.candidates)


async def test_ties_are_broken_by_self_certainty_then_order() -> None:
    # same votes for 7 and 9; RandomLLM logprobs are deterministic per word, so certainty decides
    llm = ScriptedLLM(["Answer: 7", "Answer: 9", "Answer: 9", "Answer: 7"])
    res = await SelfConsistency(n=4).solve(MATH, ctx_for(llm))
    assert res.votes == {"7": 2.0, "9": 2.0}
    certainty = {a: sum(2.718281828**c.mean_logprob for c in res.candidates if c.answer == a) for a in ("7", "9")}  # type: ignore[operator]
    assert res.answer == max(certainty, key=certainty.__getitem__)
    no_logprobs = await SelfConsistency(n=4).solve(
        MATH, ctx_for(ScriptedLLM(["Answer: 7", "Answer: 9"] * 2), logprobs=False)
    )
    assert no_logprobs.answer == "7"  # first seen


async def test_budget_shrinks_the_batch_and_then_stops() -> None:
    llm = FunctionLLM(lambda p, params, i: "Answer: 42")
    budget = Budget(samples=5)
    ctx = ctx_for(llm, budget=budget)
    first = await SelfConsistency(n=4).solve(MATH, ctx)
    second = await SelfConsistency(n=4).solve(MATH, ctx)
    third = await SelfConsistency(n=4).solve(MATH, ctx)
    assert len(first.candidates) == 4 and first.stopped is None
    assert len(second.candidates) == 1 and second.stopped == "budget"
    assert third.candidates == () and third.stopped == "budget" and third.answer is None
    assert budget.spent.samples == 5
    with pytest.raises(BudgetExceeded, match="5/5 samples"):
        budget.reserve(1)


async def test_token_budget_never_exceeded_by_more_than_one_request() -> None:
    llm = FunctionLLM(lambda p, params, i: "word " * 30 + "Answer: 1")
    budget = Budget(tokens=200, completion_only=True)
    ctx = ctx_for(llm, budget=budget)
    results = [await AdaptiveConsistency(max_samples=16, batch=2, confidence=0.99).solve(MATH, ctx) for _ in range(5)]
    per_request = 2 * 33
    assert budget.spent.completion_tokens <= 200 + per_request
    assert results[-1].stopped == "budget"


async def test_best_of_n_and_weighted_pick_by_reward() -> None:
    replies = ["Answer: 41", "Answer: 41", "Answer: 41", "Answer: 42"]
    res = await BestOfN(n=4, scorer=AnswerIs("42")).solve(MATH, ctx_for(ScriptedLLM(replies)))
    assert res.answer == "42" and res.chosen is not None and res.chosen.score("oracle") == 1.0
    # weighted: three 41s at 0.2 (=0.6) beat one 42 at 1.0? no: 1.0 > 0.6
    w = await WeightedBestOfN(n=4, scorer=AnswerIs("42")).solve(MATH, ctx_for(ScriptedLLM(replies)))
    assert w.answer == "42" and w.votes["41"] == pytest.approx(0.6)
    w2 = await WeightedBestOfN(n=4, scorer=AnswerIs("42")).solve(
        MATH, ctx_for(ScriptedLLM(["Answer: 41"] * 6 + ["Answer: 42", "x"]))
    )
    assert w2.answer == "42" or w2.votes["41"] > w2.votes.get("42", 0)
    with pytest.raises(ConfigError, match="scorer"):
        await BestOfN(n=2).solve(MATH, ctx_for(ScriptedLLM(["a", "b"])))


async def test_cot_takes_its_single_answer() -> None:
    res = await ChainOfThought().solve(MATH, ctx_for(ScriptedLLM(["6*7 = 42. Answer: 42"])))
    assert res.answer == "42" and len(res.candidates) == 1


def _stepper(prompt: str, params: SamplingParams, i: int) -> str:
    """Writes two steps, then an answer; branch i of the second step goes wrong when i is odd."""
    steps = prompt.count("Step ")
    if steps == 0:
        return f"Step 1: 6*7 is {42 if i % 2 == 0 else 40}\n\nStep 2: done"
    if steps == 1:
        return ("Step 2: so Answer: 42" if "is 42" in prompt else "Step 2: so Answer: 40") + "\n\nextra"
    return "Answer: 42"


class StepScorer:
    name = "prm"

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return [Score("prm", 0.1 if "40" in c.text else 0.9, steps=(0.5,)) for c in candidates]


async def test_beam_search_expands_all_beams_in_one_call_per_step() -> None:
    llm = FunctionLLM(_stepper)
    res = await BeamSearch(width=2, expand=2, max_steps=4).solve(MATH, ctx_for(llm, process_scorer=StepScorer()))
    assert res.answer == "42"
    assert all(params.stop == ("\n\n",) for _, params in llm.calls)
    assert len(llm.calls[0][0]) == 1 and llm.calls[0][1].n == 4  # root: width * expand
    assert len(llm.calls[1][0]) == 2 and llm.calls[1][1].n == 2  # then each kept beam, batched
    partial = [c for c in res.candidates if c.partial]
    assert partial and all(c.text.endswith("\n\n") for c in partial)
    children = [c for c in res.candidates if c.parent_id]
    assert children and {c.depth for c in children} == {1, 2}
    assert res.chosen is not None and res.chosen.finished


async def test_tree_search_best_first() -> None:
    llm = FunctionLLM(_stepper)
    res = await TreeSearch(expand=2, frontier_batch=1, max_expansions=5, target_finished=2).solve(
        MATH, ctx_for(llm, process_scorer=StepScorer())
    )
    assert res.answer == "42"
    assert all(len(prompts) == 1 and params.n == 2 for prompts, params in llm.calls)
    # best-first: the second expansion continues the well-scored branch (is 42), not the bad one
    assert "is 42" in llm.calls[1][0][0]


async def test_refine_keeps_the_best_revision() -> None:
    llm = ScriptedLLM(["Answer: 40", "Answer: 41", "Corrected. Answer: 42", "Answer: 43"])
    res = await Refine(n=2, rounds=1, scorer=AnswerIs("42")).solve(MATH, ctx_for(llm))
    assert res.answer == "42" and len(res.candidates) == 4
    assert "Check it step by step" in llm.calls[1][0][0]


async def test_adaptive_stops_early_on_agreement_and_samples_more_when_split() -> None:
    easy = FunctionLLM(lambda p, params, i: "Answer: 42")
    res = await AdaptiveConsistency(max_samples=16, batch=4).solve(MATH, ctx_for(easy))
    assert len(res.candidates) == 4 and res.stopped in ("confident", "decided") and res.answer == "42"
    hard = RandomLLM({"Answer: 1": 1, "Answer: 2": 1, "Answer: 3": 1}, seed=3)
    res2 = await AdaptiveConsistency(max_samples=16, batch=4).solve(MATH, ctx_for(hard))
    assert len(res2.candidates) > 4


def test_adaptive_rules() -> None:
    assert prob_leader_ahead(8, 0) > 0.99 and 0.45 < prob_leader_ahead(3, 3) < 0.55
    assert stop_point(["1"] * 16, batch=4, max_samples=16, confidence=0.95, min_samples=4) == (4, "confident")
    n, why = stop_point(["1", "2"] * 8, batch=4, max_samples=16, confidence=0.95, min_samples=4)
    assert n == 16 and why is None
    # the leader cannot be overtaken: 9 votes vs 0 with 7 left
    assert (
        stop_point(["1"] * 9 + ["2"] * 7, batch=16, max_samples=16, confidence=0.999999, min_samples=99)[1] == "decided"
    )


def test_strategies_by_name() -> None:
    assert make_strategy("self-consistency", n=3).name == "self_consistency"
    with pytest.raises(ConfigError, match="did you mean 'self_consistency'"):
        make_strategy("self_consistancy")
    with pytest.raises(ConfigError, match="bad options"):
        make_strategy("beam", nonsense=1)
    with pytest.raises(ConfigError):
        SelfConsistency(n=0)


def test_budget_split_and_refund() -> None:
    parent = Budget(tokens=1000, samples=10)
    a, b = parent.split([3, 1])
    assert a.tokens == 750 and b.samples == 2
    r = a.reserve(2)
    r.settle(prompt_tokens=10, completion_tokens=90)
    assert parent.spent.tokens == 100 and a.remaining_tokens() == 650
    assert parent.remaining_tokens() == 900  # what a leaves unspent stays with the parent
    with pytest.raises(BudgetExceeded):
        b.reserve(3)
    with pytest.raises(ConfigError):
        Budget(tokens=-1)


def test_allocation_spends_more_on_contested_problems() -> None:
    from longthink.search.allocation import allocate

    assert allocate([0.0, 0.5, 0.25], 12, 12) == [0, 8, 4]
    assert sum(allocate([0.9, 0.1, 0.7], 10, 4)) == 10 and allocate([0.9, 0.1, 0.7], 10, 4)[0] == 4
    assert allocate([0.0, 0.0], 5, 8) == [0, 0]  # everyone agrees: nothing more to spend
    assert allocate([1.0], 10, 3) == [3]


async def test_solve_many_allocates_by_early_agreement() -> None:
    from longthink.search.allocation import solve_many

    easy = Problem.from_text("easy", "2+2?", answer_kind="number", max_tokens=8)
    hard = Problem.from_text("hard", "a hard one", answer_kind="number", max_tokens=8)

    def fn(prompt: str, params: SamplingParams, index: int) -> str:
        if "2+2" in prompt:
            return "Answer: 4"
        return f"Answer: {index % 3}"

    results = await solve_many([easy, hard], ctx_for(FunctionLLM(fn)), per_problem=8, first=4, cap=12)
    assert [len(r.candidates) for r in results] == [4, 12]
    assert results[0].answer == "4" and results[1].answer in {"0", "1", "2"}


# -- several prompts in one call, typed payloads, refine with feedback -------------------------------------------
async def test_sample_batches_different_prompts_in_one_call() -> None:
    llm = FunctionLLM(lambda p, params, i: "Answer: 42" if "6 * 7" in p else "Answer: B")
    rec, bus = Recorder(), EventBus("run1")
    bus.subscribe(rec)
    budget = Budget(samples=10)
    ctx = ctx_for(llm, events=bus, budget=budget)
    choice = Problem.from_text("p2", "Pick A or B.", answer_kind="choice", max_tokens=16)
    rows = await ctx.sample([MATH, choice], 2, strategy="both")
    assert len(llm.calls) == 1 and len(llm.calls[0][0]) == 2 and llm.calls[0][1].n == 2  # one batched call
    assert llm.calls[0][1].max_tokens == 64  # shared parameters: the largest of the problems' limits
    assert [[c.problem_id for c in row] for row in rows] == [["p1", "p1"], ["p2", "p2"]]
    assert [row[0].answer for row in rows] == ["42", "B"]  # each read by its own problem's answer kind
    assert budget.spent.samples == 4 and budget.spent.requests == 1
    assert [e.problem_id for e in rec.of("candidate_generated")] == ["p1", "p1", "p2", "p2"]
    rows = await ctx.sample([MATH, choice], 1, branches=[Branch("So "), Branch("I pick ")])  # a branch each
    assert rows[0][0].text.startswith("So ") and rows[1][0].text.startswith("I pick ")
    assert "assistant: So " in llm.calls[1][0][0] and "assistant: I pick " in llm.calls[1][0][1]
    with pytest.raises(ConfigError, match="one branch or one each"):
        await ctx.sample([MATH, choice], 1, branches=[Branch(), Branch(), Branch()])
    assert budget.spent.samples == 6  # the refused request was never charged


class Doubled(BaseModel):
    value: int
    doubled: int


async def test_a_parser_reads_each_reply_once_into_a_typed_payload() -> None:
    reads: list[str] = []

    def parser(text: str, truncated: bool) -> Reading:
        reads.append(text)
        number = extract_number(text, truncated=truncated)
        if number.value is None:
            return Reading(None, f"unreadable: {number.error}")
        return Reading(number.value, None, Doubled(value=int(number.value), doubled=2 * int(number.value)))

    problem = replace(MATH, parser=parser)
    rec, bus = Recorder(), EventBus("run1")
    bus.subscribe(rec)
    llm = ScriptedLLM(["Answer: 21", "no idea", "Answer: 20"])

    def twice_is_42(_: Problem, c: Candidate) -> bool:
        return isinstance(c.payload, Doubled) and c.payload.doubled == 42  # the payload, not the text

    res = await BestOfN(n=3, scorer=Verifier(twice_is_42, name="doubled")).solve(problem, ctx_for(llm, events=bus))
    good, bad, other = res.candidates
    assert good.answer == "21" and good.payload == Doubled(value=21, doubled=42)
    assert bad.payload is None and bad.answer is None and bad.parse_error == "unreadable: no number found"
    assert res.chosen is good and other.score("doubled") == 0.0
    assert len(reads) == 3  # read once, when sampled; the scorer and the selection use the payload
    events = rec.of("candidate_generated")
    assert events[0].candidate.payload == Doubled(value=21, doubled=42) and events[1].candidate.payload is None
    assert to_json(events[0])["candidate"]["payload"] == {"value": 21, "doubled": 42}  # on the wire, as JSON
    assert events[1].candidate.parse_error == "unreadable: no number found"


class Closeness:
    """1 - |answer - target| / 10 (0 without an answer), with the distance as rationale."""

    name = "closeness"

    def __init__(self, target: int) -> None:
        self.target = target

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        out = []
        for c in candidates:
            if c.answer is None:
                out.append(Score(self.name, 0.0, rationale="no answer"))
            else:
                gap = abs(int(c.answer) - self.target)
                out.append(Score(self.name, 1 - gap / 10, rationale=f"off by {gap}"))
        return out


async def test_refine_with_feedback_shows_each_parent_its_feedback_and_keeps_the_best() -> None:
    def reply(prompt: str, params: SamplingParams, i: int) -> str:
        if "That is not right yet" in prompt:
            return "Answer: 42" if "too small: 40" in prompt and i == 1 else "Answer: 39"
        return ["Answer: 40", "Answer: 41", "oops"][i]

    llm = FunctionLLM(reply)
    rec, bus = Recorder(), EventBus("run1")
    bus.subscribe(rec)
    budget = Budget(samples=20)
    strategy = RefineWithFeedback(lambda c: f"too small: {c.answer}", n=3, rounds=3, parents=2, children=2,
                                  scorer=Closeness(42))  # fmt: skip
    res = await strategy.solve(MATH, ctx_for(llm, events=bus, budget=budget))
    assert res.answer == "42" and res.chosen is not None and res.chosen.score("closeness") == 1.0
    drafts = res.candidates[:3]
    assert res.chosen.parent_id == drafts[0].id and res.chosen.depth == 1  # a revision of the draft "40"
    # round 1: the two best drafts (41, then 40) revised in ONE call, each prompt with its own parent's feedback
    prompts, params = llm.calls[1]
    assert len(prompts) == 2 and params.n == 2
    assert "too small: 41" in prompts[0] and "Answer: 41" in prompts[0] and "too small: 40" in prompts[1]
    assert "oops" not in prompts[0] + prompts[1]  # the draft without an answer is not revised
    assert res.rounds == 1 and len(llm.calls) == 2  # a candidate with full marks ends the rounds
    assert res.spend.samples == 7 and budget.spent.samples == 7 and res.spend.requests == 2  # charged
    assert len(rec.of("candidate_generated")) == 7 and len(rec.of("candidate_scored")) == 7
    [finished] = rec.of("search_finished")
    assert finished.chosen == res.chosen.id and finished.strategy == "refine_feedback"


async def test_refine_with_feedback_defaults_to_the_scores_rationales_and_stops_at_the_budget() -> None:
    llm = FunctionLLM(lambda p, params, i: "Answer: 40" if "not right yet" not in p else f"Answer: {38 + i}")
    budget = Budget(samples=5)
    res = await RefineWithFeedback(n=3, rounds=2, parents=2, children=2, scorer=Closeness(42)).solve(
        MATH, ctx_for(llm, budget=budget)
    )
    assert "closeness: off by 2" in llm.calls[1][0][0]  # the default feedback: what the reward said
    assert len(llm.calls[1][0]) == 1 and llm.calls[1][1].n == 2  # 2 samples left: one parent, two children
    assert res.stopped == "budget" and budget.spent.samples == 5 and len(res.candidates) == 5
    assert res.answer == "40"  # the revisions (38, 39) are worse: the best over all rounds is kept


def test_refine_feedback_by_name_and_validation() -> None:
    strategy = make_strategy("refine-feedback", n=2, rounds=1)
    assert isinstance(strategy, RefineWithFeedback) and strategy.name == "refine_feedback"
    with pytest.raises(ConfigError, match="did you mean 'refine_feedback'"):
        make_strategy("refine_fedback")
    with pytest.raises(ConfigError, match="children"):
        RefineWithFeedback(children=0)
    with pytest.raises(ConfigError, match="feedback"):
        RefineWithFeedback(template="try again")


async def test_a_parser_that_raises_gives_failed_candidates_and_keeps_the_samples() -> None:
    def parser(text: str, truncated: bool) -> Reading:
        if "3" in text:
            raise SyntaxError("invalid syntax")
        return Reading(text.strip()[-1], None)

    problem = replace(MATH, id="raising", parser=parser)
    ctx = SearchContext(FunctionLLM(lambda prompt, params, i: f"Answer: {i + 1}"), seed=1)
    [cands] = await ctx.sample(problem, 4)
    assert [c.answer for c in cands] == ["1", "2", None, "4"]
    assert cands[2].parse_error is not None and "the parser failed: SyntaxError" in cands[2].parse_error
    assert cands[2].text == "Answer: 3"
