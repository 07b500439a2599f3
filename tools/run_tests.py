"""Running tests in the sandbox with real pytest: :func:`run_project` runs a project's tests (every test, or the
selected node ids) and :func:`run_tests` a module's source against one test file; both report each test's
outcome from pytest's own hooks (the reward of the debugging pack is the share that pass). :class:`RunTestsTool`
wraps :func:`run_tests` as a tool.

pytest and the packages it imports (:func:`pytest_libraries`, found from pytest's installed metadata) are bound
read-only into the sandbox; nothing else of the host's environment is importable there. The runner
(:data:`RUNNER`) is a small pytest plugin of our own: it writes one JSON line per test (its node id, outcome and
pytest's short traceback), one per collection error, the number of collected tests, pytest's exit status and,
when asked to trace files (``cover``), their coverage spectrum (:class:`Spectrum`: which lines the failing and the
passing tests ran; with a ``focus``, only the failures of the tests it names count), each after a random marker
on a copy of the real stdout (pytest captures the test's own output). The terminal reporter is unregistered (its
options stay known to a project's ``addopts``), so pytest's report never crowds the marked lines out of the output
cap. Each test runs under a per-test alarm and with ``random.seed(0)``; setting up, running and tearing down a
test each get the per-test time.

A report says why no test could be judged (:attr:`TestReport.error`, with :attr:`TestReport.error_kind`):
``"collection"`` (a test file does not import or parse), ``"no_tests"`` (nothing collected), ``"usage"`` (pytest
refused its arguments or configuration), ``"crash"``, ``"timeout"`` or ``"killed"``.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from longthink.errors import ConfigError
from longthink.tools.base import ToolResult

if TYPE_CHECKING:  # imported when used: the sandbox module re-exports this one's names
    from longthink.tools.sandbox import Sandbox, SandboxResult

RUNNER_NAME = "_longthink_pytest.py"
RUNNER = r'''
"""Runs pytest in the work directory: each test's outcome as one JSON line after a marker, flushed at once."""
import json, os, random, signal, sys, threading

MARK, PER_TEST, TRACE, ARGS = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4:]
COVER, FOCUS = TRACE.get("files", []), TRACE.get("focus", [])
OUT = os.fdopen(os.dup(1), "w")  # pytest captures fd 1 while a test runs: this copy is the report's
os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
HERE = os.getcwd()
sys.path.insert(0, HERE)  # the project's packages import as they do from its root
if os.path.isdir("src"):
    sys.path.insert(1, os.path.join(HERE, "src"))
import pytest


def emit(**row):
    OUT.write(MARK + json.dumps(row) + "\n")
    OUT.flush()


def on_alarm(signum, frame):
    pytest.fail(f"test took longer than {PER_TEST:g} s", pytrace=False)


signal.signal(signal.SIGALRM, on_alarm)


def timed():
    signal.setitimer(signal.ITIMER_REAL, PER_TEST)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class Spectrum:
    """Which lines of the COVER files each test ran (set-up and tear-down included), counted over the failing and
    the passing tests: a line-tracing function only in frames of those files, nothing else is traced."""

    def __init__(self, files, focus):
        self.files = {os.path.join(HERE, f): f for f in files}
        self.focus = [f.rstrip("/") for f in focus]
        self.ran, self.counts, self.failed, self.passed, self.ignored = set(), {}, 0, 0, 0

    def counts_failure(self, nodeid):
        """Without a focus every failing test counts; with one, only those it names (a node id, or a file or
        folder holding the test): a suite run whole for its passing tests keeps its unrelated failures out."""
        return not self.focus or any(nodeid == f or nodeid.startswith((f + "::", f + "/")) for f in self.focus)

    def line(self, frame, event, arg):
        if event == "line":
            self.ran.add((frame.f_code.co_filename, frame.f_lineno))
        return self.line

    def call(self, frame, event, arg):
        if frame.f_code.co_filename in self.files:
            self.ran.add((frame.f_code.co_filename, frame.f_lineno))
            return self.line
        return None

    def start(self):
        self.ran = set()
        threading.settrace(self.call)
        sys.settrace(self.call)

    def stop(self, nodeid, failed):
        sys.settrace(None)
        threading.settrace(None)
        if failed and not self.counts_failure(nodeid):
            self.ignored += 1
            return
        self.failed, self.passed = self.failed + failed, self.passed + (not failed)
        for key in self.ran:
            self.counts.setdefault(key, [0, 0])[0 if failed else 1] += 1

    def row(self):
        lines = {}
        for (path, line), (f, p) in self.counts.items():
            lines.setdefault(self.files[path], []).append([line, f, p])
        return {"spectrum": lines, "failed": self.failed, "passed": self.passed, "ignored": self.ignored}


class Reporter:
    def __init__(self):
        self.rows = {}
        self.spectrum = Spectrum(COVER, FOCUS) if COVER else None

    def pytest_runtest_logstart(self, nodeid, location):
        if self.spectrum is not None:
            self.spectrum.start()

    @pytest.hookimpl(trylast=True)
    def pytest_configure(self, config):
        config.option.tbstyle = "short"  # failures as pytest's short tracebacks
        terminal = config.pluginmanager.getplugin("terminalreporter")
        if terminal is not None:  # its options stay known (a project's addopts may use them); it prints nothing
            config.pluginmanager.unregister(terminal)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_setup(self, item):
        random.seed(0)  # tests that draw random inputs give the same report on every run
        return (yield from timed())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        return (yield from timed())

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        return (yield from timed())

    def pytest_runtest_logreport(self, report):
        row = self.rows.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
        xfail = hasattr(report, "wasxfail")
        if report.failed and row["outcome"] != "failed":
            where = "" if report.when == "call" else f"error in {report.when}:\n"
            row.update(outcome="failed", message=where + report.longreprtext)
        elif report.skipped and row["outcome"] == "passed":
            row.update(outcome="xfailed" if xfail else "skipped", message=str(report.longrepr)[-300:])
        elif report.passed and report.when == "call" and xfail:
            row["outcome"] = "xpassed"

    def pytest_runtest_logfinish(self, nodeid, location):
        row = self.rows.pop(nodeid, {"outcome": "failed", "message": "no report"})
        if self.spectrum is not None:
            self.spectrum.stop(nodeid, row["outcome"] == "failed")
        emit(test=nodeid, outcome=row["outcome"], message=row["message"][-2500:])

    def pytest_collectreport(self, report):
        if report.failed:
            emit(collect=report.nodeid or ".", message=report.longreprtext[-2500:])

    def pytest_collection_finish(self, session):
        emit(collected=len(session.items))

    def pytest_sessionfinish(self, session, exitstatus):
        if self.spectrum is not None:
            emit(**self.spectrum.row())
        emit(exit=int(exitstatus))


# tmp_path lives in the work directory: the fallback's /tmp is the host's, shared by runs of other sandbox users
args = ["-p", "no:cacheprovider", "--rootdir", HERE, "--confcutdir", HERE,
        "--basetemp", os.path.join(HERE, ".pytest-tmp"), *ARGS]
if FOCUS:  # a whole suite run for its spectrum: a test file that does not import leaves the others running
    args.insert(0, "--continue-on-collection-errors")
sys.exit(pytest.main(args, plugins=[Reporter()]))
'''

REPORT_CHARS = 2_000_000
"""The output cap of a test run (at least): one line per test, so a suite of thousands of tests fits."""
ErrorKind = Literal["collection", "no_tests", "usage", "crash", "timeout", "killed"]
Outcome = Literal["passed", "failed", "skipped", "xfailed", "xpassed"]


@cache
def pytest_libraries() -> tuple[Path, ...]:
    """Where pytest and every package it needs are installed (a package's folder or a module's file each): what
    the sandbox binds read-only so that tests run with real pytest. Found from the installed distributions'
    metadata (pytest's requirements, followed), so a new pytest that needs another package still works."""
    from importlib import metadata

    try:
        from packaging.requirements import Requirement  # one of pytest's own requirements
    except ImportError:
        raise ConfigError("pytest is not installed: the debugging pack runs tests with it (pip install pytest)",
                          field="pytest") from None  # fmt: skip
    found: dict[str, Path] = {}
    todo, seen = ["pytest"], set()
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            if name == "pytest":
                raise ConfigError("pytest is not installed: the debugging pack runs tests with it (pip install pytest)",
                                  field="pytest") from None  # fmt: skip
            continue
        for req in dist.requires or []:
            parsed = Requirement(req)
            if parsed.marker is None or parsed.marker.evaluate({"extra": ""}):
                todo.append(parsed.name)
        for top in {f.parts[0] for f in dist.files or () if len(f.parts) >= 1}:
            if top.endswith((".dist-info", ".egg-info", ".pth", ".data")) or top in ("..", "__pycache__", "bin"):
                continue
            path = Path(str(dist.locate_file(top)))
            if path.is_dir() or (path.suffix == ".py" and path.is_file()):
                found[path.name] = path
    return tuple(found[k] for k in sorted(found))


@cache
def sandbox_libraries() -> tuple[Path, ...]:
    """:func:`pytest_libraries` as the sandbox user can read them: where they are installed when that user can
    (always unless the host runs as root and the environment lies in a private folder such as ``/root``), else a
    copy made once per process in a fresh temporary folder that everyone may read."""
    from longthink.tools.sandbox import readable_by_sandbox

    libs = pytest_libraries()
    if all(readable_by_sandbox(p) for p in libs):
        return libs
    root = Path(tempfile.mkdtemp(prefix="longthink-pytest-"))
    for lib in libs:
        if lib.is_dir():
            shutil.copytree(lib, root / lib.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(lib, root / lib.name)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return tuple(root / lib.name for lib in libs)


@dataclass(frozen=True, slots=True)
class TestOutcome:
    """One test, by its pytest node id. ``passed`` means it did not fail (skipped and expected failures do not
    fail, as pytest's exit status says); ``outcome`` says which."""

    __test__ = False  # not a pytest class

    name: str
    passed: bool
    message: str = ""
    outcome: Outcome = "passed"


@dataclass(frozen=True, slots=True)
class Spectrum:
    """A traced run's coverage spectrum: for each line of the traced files that some test ran, how many failing
    and how many passing tests ran it (``lines[file][line] = (failed, passed)``), and the run's totals. What
    spectrum-based fault localisation ranks lines by. ``ignored``: failing tests outside the run's focus, left
    out of the counts."""

    lines: Mapping[str, Mapping[int, tuple[int, int]]]
    failed: int
    passed: int
    ignored: int = 0

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Spectrum | None:
        """The spectrum of the runner's ``spectrum`` row, or None when the row is malformed."""
        lines: dict[str, dict[int, tuple[int, int]]] = {}
        files, failed, passed = row.get("spectrum"), row.get("failed"), row.get("passed")
        if not isinstance(files, dict) or not isinstance(failed, int) or not isinstance(passed, int):
            return None
        for path, rows in files.items():
            if not isinstance(rows, list):
                return None
            for item in rows:
                if not (isinstance(item, list) and len(item) == 3 and all(isinstance(v, int) for v in item)):
                    return None
                lines.setdefault(str(path), {})[item[0]] = (item[1], item[2])
        ignored = row.get("ignored", 0)
        return cls(lines, failed, passed, ignored if isinstance(ignored, int) else 0)


@dataclass(frozen=True, slots=True)
class TestReport:
    """Each test's outcome, and the sandbox run. ``error`` says why no test could be judged (see the module
    docstring; ``error_kind`` names the case); ``collected`` is how many tests pytest collected (None when it did
    not get that far)."""

    __test__ = False  # not a pytest class

    outcomes: tuple[TestOutcome, ...]
    run: SandboxResult
    error: str | None = None
    expected: int = 0
    error_kind: ErrorKind | None = None
    collected: int | None = None
    collect_errors: tuple[tuple[str, str], ...] = field(default=())
    spectrum: Spectrum | None = None

    @property
    def total(self) -> int:
        return max(len(self.outcomes), self.expected)

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.passed)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.error is None and self.total > 0 and self.passed == self.total

    def failures(self) -> list[TestOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def summary(self, max_chars: int = 1500, max_failures: int = 3) -> str:
        """A short text for prompts and reports: the count, then the first failures' short tracebacks (without
        the ``^^^`` marker lines)."""
        head = f"{self.passed}/{self.total} tests passed"
        skipped = sum(1 for o in self.outcomes if o.outcome in ("skipped", "xfailed"))
        if skipped:
            head += f" ({skipped} skipped or expected to fail)"
        if self.error:
            head += f"; {self.error}"
        lines = [head]
        for where, message in self.collect_errors[:max_failures]:
            lines.append(f"ERROR collecting {where}:\n" + _tail(message, 14))
        failures = self.failures()
        for o in failures[:max_failures]:
            lines.append(f"FAILED {o.name}:\n" + _tail(o.message, 12))
        if len(failures) > max_failures:
            lines.append(f"... and {len(failures) - max_failures} more failing")
        text = "\n".join(lines)
        return text if len(text) <= max_chars else text[: max_chars - 3] + "..."

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "collected": self.collected,
            "error": self.error,
            "error_kind": self.error_kind,
            "tests": [
                {"name": o.name, "passed": o.passed, "outcome": o.outcome, "message": o.message} for o in self.outcomes
            ],
            "collect_errors": [{"where": w, "message": m} for w, m in self.collect_errors],
            "timed_out": self.run.timed_out,
            "killed_by": self.run.killed_by,
            "sandboxed_by": self.run.sandboxed_by,
            "duration_s": round(self.run.duration_s, 3),
        }


def _tail(message: str, lines: int) -> str:
    kept = [line for line in message.strip().splitlines() if line.strip(" ^~")]
    return "\n".join(kept[-lines:])


async def run_project(
    sandbox: Sandbox,
    files: Mapping[str, str],
    *,
    select: Sequence[str] = (),
    per_test_s: float = 3.0,
    expected: int = 0,
    cover: Sequence[str] = (),
    focus: Sequence[str] = (),
) -> TestReport:
    """Run pytest over ``files`` (path -> text: the code, its tests, ``conftest.py``, pytest's configuration) in
    the sandbox: the tests named by ``select`` (pytest node ids or test files), or every test pytest finds. A
    test that is not reached (the run crashed or timed out) counts as failed when ``expected`` says how many
    there are. ``cover`` names files of ``files`` whose lines each test runs are traced: the report's
    :attr:`TestReport.spectrum` (tracing slows the tests down: keep such a run apart from the one that judges).
    ``focus`` (with ``cover``; node ids or test files) names the tests whose failures the spectrum counts: a whole
    suite traced for its passing tests keeps failures unrelated to the bug out (:attr:`Spectrum.ignored`), and
    its test files that do not import leave the others running."""
    for name in cover:
        if name not in files:
            raise ValueError(f"a covered file must be one of the run's files: {name!r}")
    for name in files:
        if name == RUNNER_NAME or name.startswith(("/", "-")) or ".." in Path(name).parts:
            raise ValueError(f"bad file name for a test run: {name!r}")
    for node in (*select, *focus):
        if node.startswith("-"):
            raise ValueError(f"a selected test must be a node id, not an option: {node!r}")
    if focus and not cover:
        raise ValueError("focus names the failing tests of a traced run: give the files to trace (cover)")
    mark = f"@@{secrets.token_hex(8)}@@"
    limits = replace(sandbox.limits, output_chars=max(sandbox.limits.output_chars, REPORT_CHARS))
    argv = [mark, f"{per_test_s:g}", json.dumps({"files": list(cover), "focus": list(focus)}), *select]
    result = await sandbox.run({**files, RUNNER_NAME: RUNNER}, RUNNER_NAME, argv, limits=limits,
                               libraries=sandbox_libraries())  # fmt: skip
    return read_report(result, mark, expected, sandbox.limits.wall_s)


def read_report(result: SandboxResult, mark: str, expected: int = 0, wall_s: float = 0.0) -> TestReport:
    """The :class:`TestReport` of a run of :data:`RUNNER` (its marked lines in ``result.stdout``)."""
    outcomes: list[TestOutcome] = []
    collect_errors: list[tuple[str, str]] = []
    collected: int | None = None
    exit_status: int | None = None
    spectrum: Spectrum | None = None
    for line in result.stdout.splitlines():
        at = line.find(mark)
        if at < 0:
            continue
        try:
            row = json.loads(line[at + len(mark) :])
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        if "test" in row:
            outcome = str(row.get("outcome", "failed"))
            kind: Outcome = outcome if outcome in ("passed", "failed", "skipped", "xfailed", "xpassed") else "failed"  # type: ignore[assignment]
            outcomes.append(TestOutcome(str(row["test"]), kind != "failed", steady(str(row.get("message", ""))), kind))
        elif "collect" in row:
            collect_errors.append((str(row["collect"]), steady(str(row.get("message", "")))))
        elif "collected" in row and isinstance(row["collected"], int):
            collected = row["collected"]
        elif "exit" in row and isinstance(row["exit"], int):
            exit_status = row["exit"]
        elif "spectrum" in row:
            spectrum = Spectrum.from_row(row)
    error, error_kind = _why(result, outcomes, collect_errors, collected, exit_status, wall_s)
    return TestReport(tuple(outcomes), result, error, expected, error_kind, collected, tuple(collect_errors),
                      spectrum)  # fmt: skip


_ADDRESS = re.compile(r"(?<=0x|\.x)[0-9a-f]{6,16}(?=>)")


def steady(message: str) -> str:
    """A test's message with the memory addresses of object reprs (``<f at 0x7f3e0b3bf9c0>``, or pytest's cut
    ``<mod....x7f56b8a36250>``) written as ``…``: they change on every run, so a prompt built from the report (and
    the generations cached under it) would too."""
    return _ADDRESS.sub("…", message)


def _why(
    result: SandboxResult,
    outcomes: list[TestOutcome],
    collect_errors: list[tuple[str, str]],
    collected: int | None,
    exit_status: int | None,
    wall_s: float,
) -> tuple[str | None, ErrorKind | None]:
    """Why the run judged no test, or not every test: (message, kind), or (None, None)."""
    if collect_errors:
        where, message = collect_errors[0]
        last = next((ln.strip().removeprefix("E").strip() for ln in reversed(message.splitlines()) if ln.strip()), "")
        more = f" (and {len(collect_errors) - 1} more)" if len(collect_errors) > 1 else ""
        return f"collection error in {where}{more}: {last[:300]}", "collection"
    if result.timed_out:
        return f"the test run timed out after {wall_s:g} s", "timeout"
    if result.killed_by:
        return f"the test run was killed ({result.killed_by})", "killed"
    if exit_status == 5 or (collected == 0 and not outcomes):
        return "no tests collected: pytest found no test functions (test_*) or test classes", "no_tests"
    if exit_status in (3, 4) or (collected is None and exit_status is None and not outcomes):
        tail = result.stderr.strip()[-300:] or result.stdout.strip()[-300:]
        what = "pytest could not start" if exit_status is None else "pytest refused to run"
        return f"{what} (exit {result.exit_code if exit_status is None else exit_status}): {tail}", "usage"
    if exit_status is None and result.truncated:
        return f"the test run's report was cut at the output cap after {len(outcomes)} tests", "crash"
    if exit_status is None:
        return f"the test run crashed (exit {result.exit_code}) after {len(outcomes)} tests: " \
               f"{result.stderr.strip()[-300:]}", "crash"  # fmt: skip
    return None, None


async def run_tests(
    sandbox: Sandbox,
    source: str,
    tests: str,
    *,
    module: str = "solution",
    per_test_s: float = 3.0,
    expected: int = 0,
    tests_name: str = "test_module.py",
) -> TestReport:
    """Run ``tests`` (one test file that imports ``module``, saved as ``tests_name``) against ``source`` saved as
    ``module.py``, with pytest (see :func:`run_project`)."""
    if not module.isidentifier():
        raise ValueError(f"module name must be an identifier, got {module!r}")
    files = {f"{module}.py": source, tests_name: tests}
    return await run_project(sandbox, files, per_test_s=per_test_s, expected=expected)


class RunTestsArgs(BaseModel):
    source: str = Field(description="the Python module under test")
    tests: str = Field(description="a pytest test file (test_* functions, Test* or unittest.TestCase classes)")
    module: str = Field("solution", description="the module's import name", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class RunTestsTool:
    """The ``run_tests`` tool: runs tests against a module in the sandbox; the output lists the failures."""

    sandbox: Sandbox | None = None
    name: str = "run_tests"
    description: str = "run pytest tests against a module's source in an isolated sandbox; reports each test"
    args_model: type[BaseModel] = RunTestsArgs
    _lazy: list[Sandbox] = field(default_factory=list, repr=False)

    def _box(self) -> Sandbox:
        from longthink.tools.sandbox import Sandbox

        if self.sandbox is not None:
            return self.sandbox
        if not self._lazy:
            self._lazy.append(Sandbox())
        return self._lazy[0]

    async def run(self, args: Any) -> ToolResult:
        report = await run_tests(self._box(), args.source, args.tests, module=args.module)
        return ToolResult(self.name, report.error is None, report.summary(), report.error, report.as_dict())
