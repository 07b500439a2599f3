"""The debugging pack on multi-file projects with test doubles: reading a project (``--repo``, a folder given to
``--file``), localising across files from pytest's tracebacks, a pasted traceback and the functions the failing
tests call, patches that land in the right file, a multi-file diff that real ``git apply`` accepts, and the early
stops (no tests collected, a collection error, tests that already pass) that sample nothing."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.cli.agent_cmds import _with_files
from longthink.domains.debugging.localise import (
    frames,
    project_path,
    ranked,
    strong,
    suspects,
    suspicion,
    trace,
)
from longthink.domains.debugging.localise import test_names as names_in_test  # not a test itself
from longthink.domains.debugging.pipeline import DebuggingPipeline
from longthink.domains.debugging.repair import PatchReader, RepairSettings, patch_files, patch_prompt
from longthink.domains.debugging.source import DebugInput, parse_request, project_diff
from longthink.domains.pipeline import attach_files
from longthink.domains.registry import REGISTRY, DomainRegistry
from longthink.llm.types import SamplingParams
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM
from longthink.tools.sandbox import Sandbox, SandboxLimits, Spectrum, run_project

EXAMPLE = Path(__file__).resolve().parent.parent / "domains" / "debugging" / "examples" / "shop"
FIX = 'def parse_price(text: str) -> float:\n    return float(text.strip().lstrip("$").replace(",", ""))\n'


def example_files() -> dict[str, str]:
    return {p.relative_to(EXAMPLE).as_posix(): p.read_text() for p in sorted(EXAMPLE.rglob("*")) if p.is_file()}


def example_request(text: str = "Prices with a dollar sign crash; fix the bug.") -> str:
    return attach_files(text, example_files())


# -- reading a project ---------------------------------------------------------------------------------------------
def test_a_project_request_keeps_the_layout_and_tells_code_tests_and_config_apart() -> None:
    inp = parse_request(example_request("tests/test_cart.py::test_big_order fails"))
    assert inp.is_project and set(inp.code_files) == {"shop/__init__.py", "shop/cart.py", "shop/prices.py"}
    assert inp.test_files == ("tests/test_cart.py",)
    assert {"tests/conftest.py", "pyproject.toml"} <= set(inp.files)
    assert inp.select == ("tests/test_cart.py::test_big_order",)
    assert ("shop/prices.py", "parse_price") in inp.definitions()


def test_the_cli_attaches_a_repo_and_a_folder_by_their_paths(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    shutil.copytree(EXAMPLE, project)
    (project / ".venv" / "lib").mkdir(parents=True)
    (project / ".venv" / "lib" / "junk.py").write_text("x = 1\n")
    (project / "shop" / "__pycache__").mkdir()
    (project / "shop" / "__pycache__" / "cart.py").write_text("x = 1\n")
    for request in (_with_files("fix it", [], project), _with_files("fix it", [project])):
        inp = parse_request(request)
        assert set(inp.files) == set(example_files()), sorted(inp.files)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "README.md").write_text("# nothing to run\n")
    with pytest.raises(typer.BadParameter, match="no Python files"):
        _with_files("fix it", [], tmp_path / "docs")


# -- localisation ----------------------------------------------------------------------------------------------------
REPORT = """2/3 tests passed
FAILED tests/test_cart.py::test_big_order:
tests/test_cart.py:23: in test_big_order
    cart.add("laptop", "$1,299.00")
shop/cart.py:14: in add
    self.lines.append((name, parse_price(price), quantity))
shop/prices.py:6: in parse_price
    return float(text.strip().rstrip("$").replace(",", ""))
E   ValueError: could not convert string to float: '$1299.00'"""


def test_the_innermost_frame_in_the_code_is_the_first_suspect() -> None:
    inp = parse_request(example_request())
    assert [f.function for f in frames(REPORT)] == ["test_big_order", "add", "parse_price"]
    assert project_path(inp, "/work/shop/prices.py") == "shop/prices.py"
    assert project_path(inp, "/elsewhere/lib/python3.11/json/decoder.py") is None
    ranked_ = suspects(inp, REPORT)
    assert ranked_[0] == ("shop/prices.py", "parse_price") and ("shop/cart.py", "Cart") in ranked_[:3]
    weights = ranked(inp, REPORT * 3)  # three failures through the same frames: the evidence adds up
    assert weights[0][0] == ("shop/prices.py", "parse_price") and weights[0][1] >= 12.0  # 4 for each innermost frame
    assert weights[1][0] == ("shop/cart.py", "Cart") and weights[1][1] < weights[0][1] / 2
    assert strong(weights) == [("shop/prices.py", "parse_price")]  # Cart is under half the weight: not shown
    assert strong(weights, share=0.1)[:2] == [("shop/prices.py", "parse_price"), ("shop/cart.py", "Cart")]


def test_a_pasted_python_traceback_localises_without_tests() -> None:
    files = {k: v for k, v in example_files().items() if not k.startswith("tests/")}
    traceback = (
        "Traceback (most recent call last):\n"
        '  File "/home/me/shop/app.py", line 3, in <module>\n'
        '  File "/home/me/shop/shop/cart.py", line 14, in add\n'
        "    self.lines.append((name, parse_price(price), quantity))\n"
        '  File "/home/me/shop/shop/prices.py", line 6, in parse_price\n'
        "ValueError: could not convert string to float: '$1299.00'"
    )
    inp = parse_request(attach_files(f"It crashes:\n{traceback}", files))
    assert not inp.test_files and "ValueError" in inp.error
    assert suspects(inp, inp.error)[0] == ("shop/prices.py", "parse_price")


def test_without_frames_the_functions_the_failing_test_calls_and_their_callees_are_suspects() -> None:
    files = example_files()
    files["shop/prices.py"] = files["shop/prices.py"].replace('rstrip("$")', 'lstrip("$")')
    files["shop/prices.py"] = files["shop/prices.py"].replace("(100 - percent)", "(100 + percent)")
    inp = parse_request(attach_files("the discount is wrong", files))
    failure = (
        "FAILED tests/test_cart.py::test_total_with_discount:\ntests/test_cart.py:18: in test_total_with_discount\n"
        "    assert cart.total(discount=10) == pytest.approx(8.1)\nE   assert 9.9 == 8.1 ± 8.1e-06"
    )
    ranked = suspects(inp, failure)
    assert ranked[0] == ("shop/cart.py", "Cart") and ("shop/prices.py", "apply_discount") in ranked


# -- patches across files ---------------------------------------------------------------------------------------------
def test_a_patch_goes_to_the_file_that_defines_the_function_and_the_diff_applies_with_git(tmp_path: Path) -> None:
    inp = parse_request(example_request())
    read = PatchReader(inp, ("shop/prices.py",))(f"```python\n{FIX}```", False)
    assert read.payload is not None and set(read.payload.files) == {"shop/prices.py"}
    two, error = patch_files(inp, FIX + "\n\nclass Cart:\n    def total(self, discount=0.0):\n        return 0.0\n")
    assert error is None and two is not None and set(two) == {"shop/prices.py", "shop/cart.py"}
    diff = project_diff(inp.files, two)
    assert diff.count("--- a/") == 2 and "+++ b/shop/cart.py" in diff and "+++ b/shop/prices.py" in diff
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (tmp_path / "fix.diff").write_text(diff)
    subprocess.run(["git", "apply", "--check", str(tmp_path / "fix.diff")], cwd=repo, check=True)
    subprocess.run(["git", "apply", str(tmp_path / "fix.diff")], cwd=repo, check=True)
    assert (repo / "shop" / "prices.py").read_text() == two["shop/prices.py"]
    assert (repo / "shop" / "cart.py").read_text() == two["shop/cart.py"]
    missing, why = patch_files(inp, "def nowhere():\n    return 1\n")
    assert missing is None and "none of the project's functions" in (why or "")


def test_a_patch_replaces_only_the_functions_the_prompt_showed() -> None:
    inp = parse_request(example_request())
    blind = "\n\nclass Cart:\n    def total(self, discount=0.0):\n        return 0.0\n"
    read = PatchReader(inp, ("shop/prices.py",), ("parse_price",))(f"```python\n{FIX}{blind}```", False)
    assert read.payload is not None and set(read.payload.files) == {"shop/prices.py"}  # Cart was never shown
    only = PatchReader(inp, ("shop/prices.py",), ("parse_price",))(f"```python\n{blind}```", False)
    assert only.payload is None and "rewrites only functions it was not shown (Cart)" in (only.error or "")
    helper = "def _clean(text):\n    return text.strip()\n\n" + FIX
    added = PatchReader(inp, (), ("parse_price",))(f"```python\n{helper}```", False)
    assert added.payload is not None and "def _clean" in added.payload.files["shop/prices.py"]  # a new helper is kept


def test_the_project_prompt_shows_the_suspects_with_their_files() -> None:
    inp = parse_request(example_request())
    [_, user] = patch_prompt(inp, ["shop/prices.py::parse_price", "shop/cart.py::Cart"], REPORT)
    assert "From `shop/prices.py`:" in user.content and "def parse_price" in user.content
    assert "From `shop/cart.py`:" in user.content and "`parse_price` (in `shop/prices.py`)" in user.content
    assert "def apply_discount" not in user.content  # only the suspects, not whole files


# -- the pack end to end with a double --------------------------------------------------------------------------------
def agent_for(fn: object, tmp_path: Path) -> Agent:
    small = DebuggingPipeline(RepairSettings(n=3, rounds=1, parents=1, children=1))
    registry = DomainRegistry([dataclasses.replace(REGISTRY.get("debugging"), pipeline=small)])
    opts = AgentOptions(domain="debugging", artifacts_dir=str(tmp_path / "artifacts"))
    return Agent(llm=FunctionLLM(fn), options=opts, store=MemoryStore(), checkpoints=None,  # type: ignore[arg-type]
                 domains=registry)  # fmt: skip


def fixer(prompt: str, params: SamplingParams, index: int) -> str:
    if "Which function contains the bug" in prompt:
        return "parse_price"
    if "Explain in two or three sentences" in prompt:
        return "rstrip removed the dollar sign from the wrong end; lstrip removes the leading one."
    return FIX if index > 0 else "def parse_price(text):\n    return 0.0\n"


async def test_the_pack_fixes_the_example_project_across_files(tmp_path: Path) -> None:
    agent = agent_for(fixer, tmp_path)
    result = await agent.asolve(example_request(), run_id="proj-1")
    steps = result.steps
    assert steps["reproduce"].answer == "1/7 tests pass", steps["reproduce"].reason
    assert steps["localise"].data["suspects"][0] == "shop/prices.py::parse_price"
    assert steps["patch"].data["files"] == ["shop/prices.py"] and steps["validate"].answer == "7/7 tests pass"
    answer = result.answer or ""
    assert answer.startswith("**Fixed: every test passes.**") and "+++ b/shop/prices.py" in answer
    assert result.status == "done"


async def test_selected_node_ids_are_the_tests_that_run(tmp_path: Path) -> None:
    agent = agent_for(fixer, tmp_path)
    result = await agent.asolve(example_request("tests/test_cart.py::test_big_order crashes, fix it"))
    assert result.steps["reproduce"].answer == "0/1 tests pass" and result.steps["validate"].answer == "1/1 tests pass"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"tests/test_cart.py": "def helper():\n    return 1\n"}, "no tests collected from tests/test_cart.py"),
        ({"tests/test_cart.py": "from shop.cart import Missing\n\ndef test_x():\n    pass\n"}, "collection error in"),
        ({"shop/prices.py": example_files()["shop/prices.py"].replace('rstrip("$")', 'lstrip("$")')},
         "the tests already pass on the original code (7/7)"),
    ],
    ids=["no-tests", "collection-error", "already-passing"],
)  # fmt: skip
async def test_nothing_is_sampled_when_there_is_nothing_to_reproduce(
    tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    llm_calls: list[str] = []

    def never(prompt: str, params: SamplingParams, index: int) -> str:
        llm_calls.append(prompt)
        return FIX

    agent = agent_for(never, tmp_path)
    result = await agent.asolve(attach_files("fix the bug", {**example_files(), **change}), run_id="stop")
    assert llm_calls == [] and result.answer is None
    assert expected in result.steps["reproduce"].reason
    assert result.justification.startswith(f"Stopped before any patch was sampled: {result.steps['reproduce'].reason}")
    assert result.steps["patch"].reason.startswith("skipped: ") and result.spend.completion_tokens == 0
    detail = agent.store.get_run("stop")
    assert detail is not None and detail.candidates_of("patch") == [] and detail.candidates_of("localise") == []


def test_single_file_inputs_keep_their_names() -> None:
    inp = DebugInput.single("def f():\n    return 1\n", "def test_f():\n    assert f() == 1\n", "calc")
    assert inp.code_files == ("calc.py",) and inp.test_files == ("test_calc.py",) and not inp.is_project
    assert inp.module == "calc" and inp.tests.startswith("def test_f")


# -- the coverage spectrum ----------------------------------------------------------------------------------------------
SCALED = {
    "calc/__init__.py": "",
    "calc/helpers.py": (
        "def scale(x, factor):\n"
        "    if factor == 0:\n"
        "        return 0\n"
        "    return x * factor + 1\n"  # the bug: a wrong value deep below the function the tests call
    ),
    "calc/api.py": (
        "from calc.helpers import scale\n\n\n"
        "def total(items, factor):\n"
        "    return sum(scale(x, factor) for x in items)\n\n\n"
        "def unused(x):\n"
        "    return x\n"
    ),
    "tests/test_api.py": (
        "from calc.api import total\n\n\n"
        "def test_zero():\n    assert total([1, 2], 0) == 0\n\n\n"
        "def test_empty():\n    assert total([], 3) == 0\n\n\n"
        "def test_scaled():\n    assert total([1, 2], 3) == 9\n"
    ),
}


async def test_a_traced_run_finds_a_wrong_value_below_the_function_the_test_calls() -> None:
    inp = parse_request(attach_files("total is wrong", SCALED))
    assert inp.code_files and set(inp.code_files) >= {"calc/helpers.py", "calc/api.py"}
    plain = await run_project(Sandbox(SandboxLimits(wall_s=30.0)), inp.files)
    failure = plain.summary()
    assert [o.name for o in plain.failures()] == ["tests/test_api.py::test_scaled"]
    traced = await trace(Sandbox(SandboxLimits(wall_s=30.0)), inp)
    spectrum = traced.spectrum
    assert spectrum is not None and (spectrum.failed, spectrum.passed) == (1, 2)
    assert spectrum.lines["calc/helpers.py"][4] == (1, 0)  # the buggy line: only the failing test ran it
    assert spectrum.lines["calc/helpers.py"][2] == (1, 1)  # test_empty never calls scale
    assert spectrum.lines["calc/api.py"][5] == (1, 2) and 9 not in spectrum.lines["calc/api.py"]
    scores = suspicion(inp, spectrum)
    assert scores[("calc/helpers.py", "scale")] == pytest.approx(1.0)
    assert scores[("calc/api.py", "total")] == pytest.approx(1 / 3**0.5)
    assert ("calc/api.py", "unused") not in scores
    assert suspects(inp, failure)[0] == ("calc/api.py", "total")  # frames and names alone: the function called
    assert suspects(inp, failure, scores=scores)[0] == ("calc/helpers.py", "scale")


def test_spectrum_scores_need_a_failing_test_and_stay_in_the_code_files() -> None:
    inp = parse_request(attach_files("total is wrong", SCALED))
    lines = {"calc/helpers.py": {4: (0, 3)}, "tests/test_api.py": {5: (1, 0)}}
    assert suspicion(inp, Spectrum(lines, failed=0, passed=3)) == {}
    assert suspicion(inp, Spectrum(lines, failed=1, passed=3)) == {}  # the test file is not under repair
    assert Spectrum.from_row({"spectrum": {"a.py": [[1, 2]]}, "failed": 1, "passed": 0}) is None
    assert Spectrum.from_row({"spectrum": {"a.py": [[3, 1, 0]]}, "failed": 1, "passed": 0}) == Spectrum(
        {"a.py": {3: (1, 0)}}, 1, 0
    )


async def test_a_whole_suite_traced_for_the_selected_tests_counts_only_their_failures() -> None:
    files = {k: v for k, v in SCALED.items() if k != "tests/test_api.py"}
    files["tests/test_api.py"] = (
        "from calc.api import total\n\n\ndef test_scaled():\n    assert total([1, 2], 3) == 9\n"
    )
    files["tests/test_totals.py"] = "from calc.api import total\n\n\ndef test_empty():\n    assert total([], 3) == 0\n"
    files["tests/test_flaky.py"] = (
        "from calc.api import total\n\n\ndef test_unrelated():\n    assert total([1], 0) == 1\n"
    )
    files["tests/test_noimport.py"] = "import not_installed_anywhere\n\n\ndef test_never():\n    pass\n"
    inp = dataclasses.replace(parse_request(attach_files("total is wrong", files)), select=("tests/test_api.py",))
    sandbox = Sandbox(SandboxLimits(wall_s=30.0))
    alone = await trace(sandbox, inp, whole=False)
    assert alone.spectrum is not None and (alone.spectrum.failed, alone.spectrum.passed) == (1, 0)
    tied = suspicion(inp, alone.spectrum)  # one failing test and nothing else: both functions it runs score 1
    assert tied[("calc/helpers.py", "scale")] == tied[("calc/api.py", "total")] == pytest.approx(1.0)
    whole = await trace(sandbox, inp)
    spectrum = whole.spectrum
    assert spectrum is not None and whole.error_kind == "collection"  # the broken file did not stop the others
    assert (spectrum.failed, spectrum.passed, spectrum.ignored) == (1, 1, 1)  # test_unrelated failed: not counted
    scores = suspicion(inp, spectrum)
    assert scores[("calc/helpers.py", "scale")] == pytest.approx(1.0)
    assert scores[("calc/api.py", "total")] == pytest.approx(1 / 2**0.5)  # test_empty passes through it
    with pytest.raises(ValueError, match="cover"):
        await run_project(sandbox, files, focus=["tests/test_api.py"])


def test_a_test_imported_from_a_helper_module_is_read_where_it_is_defined() -> None:
    files = dict(SCALED)
    files["tests/test_star.py"] = "from tests.shared import *  # noqa: F403\n"
    files["tests/shared.py"] = (
        "from calc.helpers import scale\n\n\ndef test_scale_by_two():\n    assert scale(1, 2) == 2\n"
    )
    inp = parse_request(attach_files("scale is wrong", files))
    assert "tests/shared.py" not in inp.code_files
    assert names_in_test(inp, "tests/test_star.py::test_scale_by_two") == {"scale"}
    assert names_in_test(inp, "tests/test_star.py::test_missing") == set()


async def test_a_covered_file_must_be_one_of_the_runs_files() -> None:
    with pytest.raises(ValueError, match="covered file"):
        await run_project(Sandbox(SandboxLimits(wall_s=30.0)), SCALED, cover=["calc/missing.py"])


async def test_the_reproduce_step_records_the_spectrum_and_the_localise_step_ranks_by_it(tmp_path: Path) -> None:
    def patcher(prompt: str, params: SamplingParams, index: int) -> str:
        if "Which function contains the bug" in prompt:
            return "scale"
        if "Explain in two or three sentences" in prompt:
            return "scale added one to every product."
        return "def scale(x, factor):\n    if factor == 0:\n        return 0\n    return x * factor\n"

    agent = agent_for(patcher, tmp_path)
    result = await agent.asolve(attach_files("total is wrong", SCALED), run_id="spectrum")
    steps = result.steps
    assert steps["reproduce"].data["suspicion"][0] == ["calc/helpers.py", "scale", 1.0]
    assert steps["localise"].data["static"][0] == "calc/helpers.py::scale"
    assert steps["patch"].data["files"] == ["calc/helpers.py"] and result.status == "done"
    detail = agent.store.get_run("spectrum")
    assert detail is not None
    [traced] = [t for t in detail.tool_calls if t.id.endswith(":traced")]
    assert traced.error is None and traced.result == "2 functions ran in failing tests"


def test_model_votes_decide_close_calls_and_never_overturn_a_clear_ranking() -> None:
    """The localise step's votes add at most VOTE_WEIGHT of the best static weight: unanimous votes for a caller
    the evidence scores 0.82 of the raising function leave the order alone; between scores within 10% they decide."""
    from collections import Counter

    from longthink.domains.debugging.pipeline import _with_votes

    top = ["shop/prices.py::parse_price", "shop/cart.py::Cart"]
    clear = {"shop/prices.py::parse_price": 8.4, "shop/cart.py::Cart": 6.9}
    assert _with_votes(top, clear, Counter({"Cart": 3})) == top
    close = {"shop/prices.py::parse_price": 8.4, "shop/cart.py::Cart": 7.8}
    assert _with_votes(top, close, Counter({"Cart": 3})) == top[::-1]
    assert _with_votes(top, close, Counter({"Cart": 1, "parse_price": 2})) == top
    assert _with_votes(top, close, Counter()) == top
