"""The debugging pack with test doubles: reading requests, applying patches, the test-run reward on hand-made good
and bad patches, deterministic mutations, detection, the benchmark's helpers, and the whole pack through the
agent (a FunctionLLM that writes a fix; the diff, the test results before/after and the trace are checked)."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.domains.debugging.mutate import KINDS, mutate, mutation_sites, normalise, pick
from longthink.domains.debugging.pack import detect_debugging
from longthink.domains.debugging.pipeline import DebuggingPipeline
from longthink.domains.debugging.repair import Patch, PatchReader, RepairSettings, TestScorer, search_patch
from longthink.domains.debugging.source import BadInput, apply_patch, parse_request, unified_diff
from longthink.domains.pipeline import attach_files
from longthink.domains.registry import REGISTRY, DomainPack, DomainRegistry
from longthink.llm.types import Message, SamplingParams
from longthink.search.context import SearchContext
from longthink.search.types import Candidate, Problem
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM
from longthink.tools.sandbox import Sandbox, run_tests


def _bench() -> ModuleType:
    """The benchmark module, loaded by path (``benchmarks`` is not a package)."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "debugging.py"
    spec = importlib.util.spec_from_file_location("bench_debugging", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


B = _bench()
CODE = '''import math


def mean(xs):
    """Average of xs."""
    total = 0
    for x in xs:
        total += x
    return total / (len(xs) - 1)


def spread(xs):
    return max(xs) - min(xs)
'''
TESTS = """from stats import mean, spread


def test_mean():
    assert mean([1, 2, 3]) == 2


def test_single():
    assert mean([5]) == 5


def test_spread():
    assert spread([1, 4]) == 3
"""
GOOD_BODY = "def mean(xs):\n    return sum(xs) / len(xs)\n"
HALF_BODY = "def mean(xs):\n    return sum(xs) / max(1, len(xs) - 1)\n"  # fixes [5], not [1, 2, 3]
GOOD, HALF = f"```python\n{GOOD_BODY}```", f"```python\n{HALF_BODY}```"
# The pack's replies start inside a ```python block (the prompt ends with it): doubles continue from there.
REQUEST = attach_files("The average is wrong. Please fix the bug.", {"stats.py": CODE, "test_stats.py": TESTS})


# -- reading requests and applying patches --------------------------------------------------------------------------
def test_request_with_attached_files() -> None:
    inp = parse_request(REQUEST)
    assert inp.module == "stats" and inp.source == CODE and inp.tests == TESTS
    assert inp.functions() == ["mean", "spread"] and inp.description == "The average is wrong. Please fix the bug."


def test_request_with_snippets_and_a_traceback() -> None:
    request = (
        "My function crashes:\n```python\ndef inv(x):\n    return 1 / x\n```\n"
        "```python\ndef test_inv():\n    assert inv(0) == 0\n```\n"
        'Traceback (most recent call last):\n  File "a.py", line 2, in inv\nZeroDivisionError: division by zero\n'
    )
    inp = parse_request(request)
    assert inp.module == "solution" and "def inv" in inp.source
    assert inp.tests.startswith("from solution import *") and "def test_inv" in inp.tests
    assert "ZeroDivisionError" in inp.error


def test_request_without_code_is_a_clear_error() -> None:
    with pytest.raises(BadInput, match="no code found"):
        parse_request("Please fix my bug, the tests fail.")
    with pytest.raises(BadInput, match="does not parse"):
        parse_request(attach_files("fix", {"broken.py": "def f(:\n  pass"}))


def test_apply_patch_replaces_the_function_keeps_the_docstring_and_adds_imports() -> None:
    patch = "from typing import *\nimport json\nimport statistics\n\ndef mean(xs):\n    return statistics.fmean(xs)\n"
    patched = apply_patch(CODE, patch)
    assert patched.error is None and patched.replaced == ("mean",) and patched.source is not None
    assert '"""Average of xs."""' in patched.source and "statistics.fmean" in patched.source
    # the used import goes after the existing ones; the star import and the unused one are left out
    assert patched.source.startswith("import math\nimport statistics\n\n\ndef mean(xs):")
    assert "typing" not in patched.source and "json" not in patched.source
    assert "def spread(xs):\n    return max(xs)" in patched.source
    diff = unified_diff(CODE, patched.source, "stats.py")
    assert diff.startswith("--- a/stats.py\n+++ b/stats.py") and "-    return total / (len(xs) - 1)" in diff
    assert "+    return statistics.fmean(xs)" in diff and '-    """Average' not in diff


@pytest.mark.parametrize(
    ("patch", "error"),
    [
        (None, "no code"),
        ("def mean(xs:\n    return 0\n", "does not parse"),
        ("def median(xs):\n    return 0\n", "none of the file's functions"),
    ],
)
def test_bad_patches_are_failed_candidates(patch: str | None, error: str) -> None:
    result = apply_patch(CODE, patch)
    assert result.source is None and error in (result.error or "")


# -- the reward: tests run in the sandbox ---------------------------------------------------------------------------
def candidate(text: str, i: int = 0) -> Candidate:
    from longthink.answers import extract_code

    parsed = extract_code(text)
    return Candidate(f"c{i}", "p", i, text, parsed.value, parsed.error, "stop", 0, 10, 0.0, "double", "h")


async def test_test_scorer_on_hand_made_good_half_and_bad_patches() -> None:
    inp = parse_request(REQUEST)
    scorer = TestScorer(inp, Sandbox(use_bwrap=None), expected=3)
    texts = [
        GOOD,
        HALF,
        "```python\ndef mean(xs):\n    return 0\n```",
        "I think it is fine.",
        "```python\ndef mean(\n```",
    ]
    scores = await scorer.score(Problem("p", ()), [candidate(t, i) for i, t in enumerate(texts)])
    values = [s.value for s in scores]
    assert values[0] == 1.0 and scorer.reports["c0"].all_passed  # the real fix passes every test
    assert values[1] == pytest.approx(2 / 3) and "FAILED test_stats.py::test_mean" in scores[1].rationale
    assert values[2] == pytest.approx(1 / 3)  # only the untouched spread() test passes
    assert values[3] == 0.0 and scores[3].rationale.startswith("failed candidate")
    assert values[4] == 0.0 and "does not parse" in scores[4].rationale
    assert set(scorer.reports) == {"c0", "c1", "c2"}  # failed candidates never reach the sandbox
    original = await run_tests(Sandbox(use_bwrap=None), CODE, TESTS, module="stats")
    assert original.passed == 1 and not original.all_passed  # the bug is real: a scorer that accepts all fails


def test_a_reply_is_read_once_into_a_patch() -> None:
    read = PatchReader(CODE)(f"```python\n```python\n{GOOD_BODY}", False)  # a doubled fence is forgiven
    assert isinstance(read.payload, Patch) and read.answer == read.payload.code == GOOD_BODY
    assert "return sum(xs) / len(xs)" in read.payload.source and "def spread(xs)" in read.payload.source
    assert PatchReader(CODE)("I think it is fine.", False).error == "no code block found"
    failed = PatchReader(CODE)("```python\ndef median(xs):\n    return 0\n```", False)
    assert failed.payload is None and failed.answer is None and "none of the file's functions" in str(failed.error)


async def test_the_test_scorer_uses_the_payload_and_a_failed_reading_as_is() -> None:
    inp = parse_request(REQUEST)
    scorer = TestScorer(inp, Sandbox(use_bwrap=None), expected=3)
    problem = Problem("p", (), "code", parser=PatchReader(inp))
    good = PatchReader(inp)(GOOD, False).payload
    # the text says nothing usable: a scorer that re-read it would fail the first and pass nothing
    trusted = dataclasses.replace(candidate("(text not read again)", 0), answer=GOOD_BODY, payload=good)
    failed = dataclasses.replace(candidate(GOOD, 1), answer=None, parse_error="the patch does not parse: x")
    scores = await scorer.score(problem, [trusted, failed])
    assert scores[0].value == 1.0 and scorer.reports["c0"].all_passed
    assert scores[1].value == 0.0 and scores[1].rationale == "failed candidate: the patch does not parse: x"
    assert set(scorer.reports) == {"c0"}


async def test_among_passing_patches_the_smallest_change_wins() -> None:
    from longthink.domains.debugging.repair import choose

    inp = parse_request(REQUEST)
    scorer = TestScorer(inp, Sandbox(use_bwrap=None), expected=3)
    wordy = "```python\ndef mean(xs):\n    count = len(xs)\n    total = sum(xs)\n    return total / count\n```"
    cands = [candidate(wordy, 0), candidate(GOOD, 1), candidate(HALF, 2)]
    cands = [c.with_scores(s) for c, s in zip(cands, await scorer.score(Problem("p", ()), cands), strict=True)]
    assert [c.score("tests") for c in cands] == [1.0, 1.0, pytest.approx(2 / 3)]
    chosen = choose(cands, scorer)
    assert chosen is not None and chosen.id == "c1"


async def test_iterative_repair_shows_a_child_its_parents_test_output() -> None:
    prompts: list[str] = []

    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        prompts.append(prompt)
        return GOOD_BODY if "That fix is not right yet" in prompt and "where 3.0 = mean" in prompt else HALF_BODY

    inp = parse_request(REQUEST)
    scorer = TestScorer(inp, Sandbox(use_bwrap=None), expected=3)
    ctx = SearchContext(llm=FunctionLLM(reply), seed=1)
    problem = Problem("p", (Message.user("fix mean"),), "code", max_tokens=200)
    found = await search_patch(problem, ctx, scorer, RepairSettings(n=2, rounds=2, parents=1, children=2))
    assert found.rounds == 1 and found.chosen is not None and scorer.reports[found.chosen.id].all_passed
    children = [c for c in found.candidates if c.parent_id is not None]
    assert len(found.candidates) == 4 and len(children) == 2
    assert {c.parent_id for c in children} <= {c.id for c in found.candidates[:2]}
    assert any("FAILED test_stats.py::test_mean" in p for p in prompts)  # the child saw the parent's failing test
    assert all(isinstance(c.payload, Patch) for c in found.candidates)  # every reply read once, into a patch


async def test_repair_revises_the_best_parents_in_one_batched_call() -> None:
    def reply(prompt: str, params: SamplingParams, index: int) -> str:
        return GOOD_BODY if "That fix is not right yet" in prompt and index == 1 else HALF_BODY

    llm = FunctionLLM(reply)
    inp = parse_request(REQUEST)
    scorer = TestScorer(inp, Sandbox(use_bwrap=None), expected=3)
    ctx = SearchContext(llm=llm, seed=1)
    problem = Problem("p", (Message.user("fix mean"),), "code", max_tokens=200)
    found = await search_patch(problem, ctx, scorer, RepairSettings(n=3, rounds=2, parents=2, children=2))
    calls = [len(prompts) for prompts, _ in llm.calls]
    assert calls == [1, 2]  # the drafts, then both parents' revisions in one call; solved: no second round
    assert found.rounds == 1 and found.chosen is not None and scorer.solved(found.chosen)
    assert found.chosen.parent_id in {c.id for c in found.candidates[:3]}
    assert len(found.candidates) == 7 and ctx.budget.spent.samples == 7


# -- mutations ----------------------------------------------------------------------------------------------------
FUNC = '''def count_big(xs, limit):
    """How many items exceed limit."""
    n = 0
    for x in xs:
        if x > limit and x != 0:
            n += 1
    return n
'''
FUNC_TESTS = """from solution import count_big


def test_some():
    assert count_big([1, 5, 7], 4) == 2


def test_edge():
    assert count_big([4, 5], 4) == 1


def test_none():
    assert count_big([], 0) == 0
"""


def test_mutation_sites_cover_every_kind_and_skip_the_docstring() -> None:
    sites = mutation_sites(FUNC, "count_big")
    assert {s.kind for s in sites} == set(KINDS)
    assert not any("How many" in s.what for s in sites)


def test_mutants_are_deterministic_distinct_and_valid() -> None:
    base = normalise(FUNC)
    order = pick(FUNC, "count_big", "HumanEval/0", seed=3)
    assert order == pick(FUNC, "count_big", "HumanEval/0", seed=3)  # same seed and key: same order
    assert order != pick(FUNC, "count_big", "HumanEval/0", seed=4) or len(order) < 3
    mutants = {mutate(FUNC, "count_big", s) for s in mutation_sites(FUNC, "count_big")}
    assert base not in mutants and len(mutants) >= len(mutation_sites(FUNC, "count_big")) - 2
    for m in mutants:
        ast.parse(m)
    swapped = mutate(FUNC, "count_big", next(s for s in mutation_sites(FUNC, "count_big") if s.what == "Gt -> GtE"))
    assert "x >= limit" in swapped and "x > limit" not in swapped and "How many items exceed limit." in swapped


async def test_mutants_are_caught_by_the_tests() -> None:
    sandbox = Sandbox(use_bwrap=None)
    assert (await run_tests(sandbox, normalise(FUNC), FUNC_TESTS)).all_passed
    caught = 0
    for kind in KINDS:
        site = pick(FUNC, "count_big", "k", kind=kind)[0]
        report = await run_tests(sandbox, mutate(FUNC, "count_big", site), FUNC_TESTS)
        caught += not report.all_passed
    assert caught >= 3  # a mutation the tests cannot see is possible (e.g. the `x != 0` guard), not the rule


def test_benchmark_helpers() -> None:
    test = "METADATA = {}\n\ndef check(candidate):\n    x = 2\n    assert candidate(x) == 4\n    assert True\n" \
           "    for i in range(3):\n        assert candidate(i) == 2 * i\n"  # fmt: skip
    text, n = B.split_tests(test, "double")
    assert n == 2 and "def test_00():\n    candidate = double\n    x = 2\n    assert candidate(x) == 4" in text
    assert text.startswith("from solution import *\nMETADATA = {}") and "assert True" not in text
    source, doc = B.without_docstring(FUNC, "count_big")
    assert doc == "How many items exceed limit." and '"""' not in source and "n += 1" in source
    assert B.pass_at_k(16, 0, 1) == 0.0 and B.pass_at_k(16, 16, 4) == 1.0
    assert B.pass_at_k(16, 4, 1) == pytest.approx(0.25) and B.pass_at_k(16, 1, 16) == 1.0
    assert B.pass_at_k(16, 4, 2) == pytest.approx(1 - (12 * 11) / (16 * 15))


# -- detection and registration -----------------------------------------------------------------------------------
def test_detection_and_registration() -> None:
    assert detect_debugging("Traceback (most recent call last):\n  ...\nKeyError: 'x'") == 1.0
    assert detect_debugging(REQUEST) >= 0.5
    assert detect_debugging("fix this function, it returns the wrong value") >= 0.5
    assert detect_debugging("A business plan to grow our bakery chain's profit by 10% next year") < 0.5
    assert detect_debugging("3 trucks of 100 units from the Lyon depot to 40 stores, minimise distance") < 0.5
    assert REGISTRY.detect(REQUEST) == "debugging"
    pack = REGISTRY.get("debugging")
    assert isinstance(pack.pipeline, DebuggingPipeline) and [t.name for t in pack.tools] == ["run_tests"]


# -- the pack end to end through the agent, with a double --------------------------------------------------------
def fixer(prompt: str, params: SamplingParams, index: int) -> str:
    """Localise: votes for mean; patch: the first sample is wrong (no code), the others fix it; explain: prose."""
    if "Which function contains the bug" in prompt:
        return "mean"
    if "Explain in two or three sentences" in prompt:
        return "The mean divided by len(xs) - 1 instead of len(xs). The fix divides by the number of items."
    return "I am not sure what is wrong here.\n```" if index == 0 else GOOD_BODY


def debug_agent(fn: object, tmp_path: Path, pipeline: DebuggingPipeline | None = None) -> Agent:
    registry = DomainRegistry(
        [dataclasses.replace(REGISTRY.get("debugging"), pipeline=pipeline or DebuggingPipeline())]
    )
    opts = AgentOptions(domain="debugging", artifacts_dir=str(tmp_path / "artifacts"))
    return Agent(llm=FunctionLLM(fn), options=opts, store=MemoryStore(), checkpoints=None,  # type: ignore[arg-type]
                 domains=registry)  # fmt: skip


async def test_pack_end_to_end_with_a_double(tmp_path: Path) -> None:
    agent = debug_agent(fixer, tmp_path)
    result = await agent.asolve(REQUEST, run_id="dbg-1")
    assert result.domain == "debugging" and result.status == "done", result.justification
    assert [s.id for s in result.plan.steps] == ["reproduce", "localise", "patch", "validate", "explain"]  # type: ignore[union-attr]
    steps = result.steps
    assert steps["reproduce"].answer == "1/3 tests pass" and steps["reproduce"].verified is True
    assert steps["localise"].data["suspects"][0] == "mean"
    assert steps["patch"].verified is True and steps["validate"].answer == "3/3 tests pass"
    answer = result.answer or ""
    assert answer.startswith("**Fixed: every test passes.**")
    assert "- Tests before: 1/3 tests pass" in answer and "- Tests after: 3/3 tests pass" in answer
    assert "```diff\n--- a/stats.py\n+++ b/stats.py" in answer and "+    return sum(xs) / len(xs)" in answer
    assert "len(xs) - 1 instead of len(xs)" in answer
    detail = agent.store.get_run("dbg-1")
    patch_cands = detail.candidates_of("patch")
    assert len(patch_cands) == RepairSettings().n  # solved in the first round: no repair round
    scores = {c.id: [s.value for s in detail.scores_of(c.id) if s.scorer == "tests"] for c in patch_cands}
    assert sorted(v[0] for v in scores.values()) == [0.0] + [1.0] * (RepairSettings().n - 1)
    assert any(t.tool == "run_tests" for t in detail.tool_calls)


async def test_pack_ends_in_a_clear_failure_when_no_patch_works(tmp_path: Path) -> None:
    def hopeless(prompt: str, params: SamplingParams, index: int) -> str:
        return "mean" if "Which function" in prompt else "def mean(xs):\n    return 0\n"

    pipeline = DebuggingPipeline(RepairSettings(n=3, rounds=1, parents=1, children=2))
    agent = debug_agent(hopeless, tmp_path, pipeline)
    result = await agent.asolve(REQUEST, run_id="dbg-2")
    assert result.steps["patch"].verified is False and result.steps["validate"].verified is False
    assert (result.answer or "").startswith("**Not fixed")
    assert result.status != "done"
    detail = agent.store.get_run("dbg-2")
    assert len(detail.candidates_of("patch")) == 5  # 3 drafts + 2 revisions, every one recorded and scored
    assert all(detail.scores_of(c.id) for c in detail.candidates_of("patch"))


async def test_pack_without_code_fails_clearly(tmp_path: Path) -> None:
    result = await debug_agent(fixer, tmp_path).asolve("Please fix the bug, my tests are failing.")
    assert result.answer is None and "no code found" in result.steps["reproduce"].reason


def test_registry_runs_on_a_loop_of_its_own() -> None:  # the pipeline keeps no loop-bound state between runs
    pipeline = DebuggingPipeline()
    pack = DomainPack("debugging", "", detect_debugging, "", pipeline=pipeline)
    assert DomainRegistry([pack]).get("debugging").pipeline is pipeline
    asyncio.run(run_tests(pipeline._sandbox(), CODE, TESTS, module="stats"))
    asyncio.run(run_tests(pipeline._sandbox(), CODE, TESTS, module="stats"))


def test_a_splice_that_does_not_parse_is_a_failed_patch_even_when_imports_are_added(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A spliced function that breaks the file (seen with a docstring kept at the wrong place) is reported, not
    raised, also on the path that adds the patch's imports (which parses the file itself)."""
    from longthink.domains.debugging import source

    monkeypatch.setattr(source, "_keep_docstring", lambda *args: "def f(x):\nreturn math.floor(x)\n")
    orig = 'import os\n\n\ndef f(x):\n    """Doc of f."""\n    return x + 1\n'
    patched = apply_patch(orig, "import math\n\ndef f(x):\n    return math.floor(x)\n")
    assert patched.source is None
    assert patched.error is not None and "does not parse" in patched.error
