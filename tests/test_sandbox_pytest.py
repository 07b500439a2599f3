"""Real pytest inside the sandbox: parametrize, fixtures, ``conftest.py``, ``raises``, ``approx``, markers (skip,
xfail), unittest classes, packages in folders, node-id selection; collection errors, no tests and crashes reported
as such; only pytest (and what it needs) is importable there, read-only; the resource-limit fallback runs pytest too.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from longthink.tools.run_tests import steady
from longthink.tools.sandbox import Sandbox, SandboxLimits, bwrap_available, pytest_libraries, run_project

needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap (bwrap) does not work on this machine")
LIMITS = SandboxLimits(wall_s=30.0, cpu_s=15)

PROJECT = {
    "shop/__init__.py": "",
    "shop/prices.py": "def discount(price, pct):\n    return price * (1 - pct / 100)\n\n\n"
    "def parse(text):\n    return float(text.strip().lstrip('$'))\n",
    "shop/cart.py": "from shop.prices import discount\n\n\nclass Cart:\n    def __init__(self):\n        self.items = []\n\n"
    "    def add(self, price, qty=1):\n        if qty <= 0:\n            raise ValueError('qty must be positive')\n"
    "        self.items.append((price, qty))\n\n    def total(self, pct=0):\n"
    "        return sum(discount(p, pct) * q for p, q in self.items)\n",
    "tests/conftest.py": "import pytest\nfrom shop.cart import Cart\n\n\n@pytest.fixture\ndef cart():\n"
    "    c = Cart()\n    c.add(10.0, 2)\n    return c\n",
    "tests/test_cart.py": """import sys
import unittest

import pytest
from shop.cart import Cart
from shop.prices import parse


@pytest.mark.parametrize(("text", "value"), [("$3.50", 3.5), (" 2 ", 2.0), ("$0.1", 0.1)])
def test_parse(text, value):
    assert parse(text) == pytest.approx(value)


def test_total_with_fixture(cart):
    assert cart.total() == 20.0
    assert cart.total(pct=10) == pytest.approx(18.0)


def test_bad_quantity(cart):
    with pytest.raises(ValueError, match="positive"):
        cart.add(1.0, 0)


@pytest.mark.skip(reason="not today")
def test_skipped():
    raise AssertionError


@pytest.mark.xfail(reason="known")
def test_expected_failure():
    assert Cart().total() == 1


@pytest.mark.skipif(sys.version_info < (3,), reason="old")
def test_tmp_path(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    assert (tmp_path / "a.txt").read_text() == "x"


class TestCartClass:
    def test_empty(self):
        assert Cart().total() == 0


class CartCase(unittest.TestCase):
    def test_add(self):
        c = Cart()
        c.add(2.0, 3)
        self.assertEqual(c.total(), 6.0)
""",
    "pytest.ini": "[pytest]\nmarkers =\n    slowish: a custom marker\n",
}


def box() -> Sandbox:
    return Sandbox(LIMITS, use_bwrap=None)


async def test_every_pytest_feature_runs_and_reports_each_test() -> None:
    report = await run_project(box(), PROJECT)
    assert report.error is None and report.collected == 10, report.summary()
    outcomes = {o.name: o.outcome for o in report.outcomes}
    assert outcomes["tests/test_cart.py::test_parse[$3.50-3.5]"] == "passed"
    assert outcomes["tests/test_cart.py::test_skipped"] == "skipped"
    assert outcomes["tests/test_cart.py::test_expected_failure"] == "xfailed"
    assert outcomes["tests/test_cart.py::TestCartClass::test_empty"] == "passed"
    assert outcomes["tests/test_cart.py::CartCase::test_add"] == "passed"
    assert outcomes["tests/test_cart.py::test_tmp_path"] == "passed"
    assert report.all_passed and report.passed == report.total == 10
    assert report.run.sandboxed_by == ("bwrap" if bwrap_available() else "rlimits")


async def test_a_bug_in_one_file_fails_the_tests_that_reach_it_with_pytests_traceback() -> None:
    buggy = {**PROJECT, "shop/prices.py": PROJECT["shop/prices.py"].replace("1 - pct", "1 + pct")}
    report = await run_project(box(), buggy)
    failed = [o for o in report.failures()]
    assert [o.name for o in failed] == ["tests/test_cart.py::test_total_with_fixture"]
    message = failed[0].message
    assert "assert 22.0 == 18.0 ± 1.8e-05" in message or "18.0" in message
    assert "tests/test_cart.py:16: in test_total_with_fixture" in message  # pytest's short traceback
    assert report.passed == 9 and report.total == 10 and not report.all_passed
    assert "FAILED tests/test_cart.py::test_total_with_fixture" in report.summary()


async def test_selected_node_ids_run_alone() -> None:
    report = await run_project(
        box(), PROJECT, select=["tests/test_cart.py::test_parse", "tests/test_cart.py::CartCase"]
    )
    assert sorted(o.name for o in report.outcomes) == [
        "tests/test_cart.py::CartCase::test_add", "tests/test_cart.py::test_parse[ 2 -2.0]",
        "tests/test_cart.py::test_parse[$0.1-0.1]", "tests/test_cart.py::test_parse[$3.50-3.5]",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="node id"):
        await run_project(box(), PROJECT, select=["--co"])


async def test_collection_error_no_tests_and_a_crash_are_reported_as_such() -> None:
    broken = {**PROJECT, "tests/test_cart.py": "import pytest\nfrom shop.cart import Nope\n\ndef test_x():\n    pass\n"}
    report = await run_project(box(), broken)
    assert report.error_kind == "collection" and "tests/test_cart.py" in (report.error or "")
    assert "ImportError" in (report.error or "") and not report.all_passed
    assert "ERROR collecting tests/test_cart.py" in report.summary()
    syntax = await run_project(box(), {**PROJECT, "tests/test_cart.py": "def test_x(:\n    pass\n"})
    assert syntax.error_kind == "collection" and "SyntaxError" in (syntax.error or "")
    empty = await run_project(box(), {**PROJECT, "tests/test_cart.py": "def helper():\n    return 1\n"})
    assert empty.error_kind == "no_tests" and empty.total == 0 and not empty.all_passed
    crash = await run_project(box(), {"test_a.py": "import os\n\ndef test_a():\n    pass\n\ndef test_b():\n    os._exit(3)\n"},
                              expected=2)  # fmt: skip
    assert crash.error_kind == "crash" and crash.passed == 1 and crash.total == 2 and not crash.all_passed


async def test_a_hanging_fixture_and_a_hanging_test_hit_the_per_test_alarm() -> None:
    files = {
        "conftest.py": "import pytest, time\n\n@pytest.fixture\ndef slow():\n    time.sleep(30)\n",
        "test_h.py": "def test_fixture(slow):\n    pass\n\ndef test_loop():\n    while True:\n        pass\n\n"
        "def test_ok():\n    pass\n",
    }
    report = await run_project(box(), files, per_test_s=0.5)
    by = {o.name: o for o in report.outcomes}
    assert not by["test_h.py::test_fixture"].passed and "error in setup" in by["test_h.py::test_fixture"].message
    assert "longer than 0.5 s" in by["test_h.py::test_loop"].message and by["test_h.py::test_ok"].passed


@needs_bwrap
async def test_only_pytest_is_importable_and_read_only() -> None:
    probe = """
import importlib, os, sys
import pytest

def test_probe():
    seen = {}
    for name in ("numpy", "longthink", "pydantic", "sqlalchemy"):
        try:
            importlib.import_module(name)
            seen[name] = True
        except ImportError:
            seen[name] = False
    where = os.path.dirname(pytest.__file__)
    try:
        open(os.path.join(where, "pwned.py"), "w").write("x")
        wrote = True
    except OSError:
        wrote = False
    print("SEEN", seen, "WROTE", wrote, "WHERE", where, file=sys.stderr)
    assert not any(seen.values()), seen
    assert not wrote
    assert where.startswith("/opt/sandbox-lib/")
"""
    report = await run_project(Sandbox(LIMITS, use_bwrap=True), {"test_probe.py": probe})
    assert report.all_passed, report.summary()
    assert not any((lib / "pwned.py").exists() for lib in pytest_libraries() if lib.is_dir())


def test_pytest_libraries_are_pytest_and_its_requirements() -> None:
    names = {p.name for p in pytest_libraries()}
    assert {"pytest", "_pytest", "pluggy", "iniconfig", "packaging"} <= names
    assert not names & {"longthink", "numpy", "pydantic"}


async def test_the_rlimits_fallback_runs_pytest_too() -> None:
    with pytest.warns(RuntimeWarning):
        fallback = Sandbox(LIMITS, use_bwrap=False)
    report = await run_project(fallback, PROJECT)
    assert report.all_passed and report.run.sandboxed_by == "rlimits", report.summary()


async def test_libraries_the_sandbox_user_cannot_read_are_copied_where_it_can(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that runs as root with its environment in a private folder (``/root/...``): pytest is copied once into
    a fresh temporary folder that everyone may read, and the tests still run."""
    import longthink.tools.run_tests as rt
    import longthink.tools.sandbox as sbx

    installed = set(pytest_libraries())
    monkeypatch.setattr(sbx, "readable_by_sandbox", lambda path: Path(path) not in installed)
    rt.sandbox_libraries.cache_clear()
    copies: tuple[Path, ...] = ()
    try:
        copies = rt.sandbox_libraries()
        assert [c.name for c in copies] == [p.name for p in pytest_libraries()] and not set(copies) & installed
        assert all(c.exists() and oct(c.stat().st_mode)[-3:] in ("755", "644") for c in copies)
        report = await run_project(box(), PROJECT)
        assert report.all_passed, report.summary()
    finally:
        rt.sandbox_libraries.cache_clear()
        for c in {c.parent for c in copies}:
            shutil.rmtree(c, ignore_errors=True)


async def test_a_failure_reads_the_same_on_every_run_without_memory_addresses() -> None:
    files = {"test_obj.py": "class Box:\n    pass\n\n\ndef test_box():\n    f = lambda: 0\n    assert Box() is f\n"}
    first, second = await run_project(box(), files), await run_project(box(), files)
    [failure] = first.failures()
    assert "0x…>" in failure.message and not re.search(r"0x[0-9a-f]{6,}>", failure.message), failure.message
    assert first.summary() == second.summary()
    assert steady("<f at 0x7f3e0b3bf9c0> and <m....x7f56b8a36250>") == "<f at 0x…> and <m....x…>"
