"""Running a module's tests in the sandbox: :func:`run_tests` runs a module's source against tests (``test_*``
functions or ``unittest.TestCase`` classes) in a :class:`~longthink.tools.sandbox.Sandbox` and reports each test's
outcome (the reward of the debugging pack is the share that pass); :class:`RunTestsTool` wraps it as a tool.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from longthink.tools.base import ToolResult

if TYPE_CHECKING:  # imported when used: the sandbox module re-exports this one's names
    from longthink.tools.sandbox import Sandbox, SandboxResult

RUNNER = r'''
"""Runs the tests in the sandbox: each test's outcome as one JSON line after a marker, flushed at once."""
import ast, json, linecache, random, signal, sys, traceback, types, unittest

MARK, TEST_FILE, MODULE, PER_TEST = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
sys.path.insert(0, ".")


def report(name, passed, message=""):
    sys.stdout.write(MARK + json.dumps({"test": name, "passed": passed, "message": message[-1500:]}) + "\n")
    sys.stdout.flush()


class TestTimeout(BaseException):
    pass


def on_alarm(signum, frame):
    raise TestTimeout(f"test took longer than {PER_TEST:g} s")


signal.signal(signal.SIGALRM, on_alarm)


def explain_assert(exc):
    """For a bare ``assert left <op> right``: the values of both sides (what pytest would show), from evaluating
    them again (a side with side effects, such as a random draw, shows its second value)."""
    try:
        frame = exc.__traceback__
        while frame.tb_next is not None:
            frame = frame.tb_next
        line = linecache.getline(frame.tb_frame.f_code.co_filename, frame.tb_lineno).strip()
        node = ast.parse(line).body[0]
        if not isinstance(node, ast.Assert) or not isinstance(node.test, ast.Compare) or len(node.test.ops) != 1:
            return ""
        scope = (frame.tb_frame.f_globals, frame.tb_frame.f_locals)
        left = eval(compile(ast.Expression(node.test.left), "<assert>", "eval"), *scope)
        right = eval(compile(ast.Expression(node.test.comparators[0]), "<assert>", "eval"), *scope)
        return f"  where the left side is {left!r:.300} and the right side is {right!r:.300}\n"
    except BaseException:
        return ""


def run(name, fn):
    random.seed(0)  # tests that draw random inputs give the same report on every run
    signal.setitimer(signal.ITIMER_REAL, PER_TEST)
    try:
        fn()
    except (Exception, TestTimeout) as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.endswith("_runner.py")]
        detail = explain_assert(exc) if isinstance(exc, AssertionError) and not str(exc) else ""
        text = "".join(traceback.format_list(frames[-3:])) + "".join(traceback.format_exception_only(type(exc), exc))
        report(name, False, text + detail)
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)
        report(name, True)


source = open(TEST_FILE).read()
try:
    tree = ast.parse(source, TEST_FILE)
except SyntaxError as exc:
    report("<collect>", False, f"SyntaxError in {TEST_FILE}: {exc}")
    sys.exit(2)
namespace = {"__name__": "__tests__", "__file__": TEST_FILE}
random.seed(0)
try:
    signal.setitimer(signal.ITIMER_REAL, PER_TEST)
    exec(compile(tree, TEST_FILE, "exec"), namespace)
    signal.setitimer(signal.ITIMER_REAL, 0)
except (Exception, TestTimeout) as exc:
    signal.setitimer(signal.ITIMER_REAL, 0)
    report("<collect>", False, "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:]))
    sys.exit(2)
found = 0
for key, value in list(namespace.items()):
    if key.startswith("test") and isinstance(value, types.FunctionType):
        found += 1
        run(key, value)
    elif isinstance(value, type) and issubclass(value, unittest.TestCase):
        for case in unittest.defaultTestLoader.loadTestsFromTestCase(value):
            found += 1
            def call(case=case):
                outcome = unittest.TestResult()
                case.run(outcome)
                problems = outcome.failures + outcome.errors
                if problems:
                    raise AssertionError(problems[0][1])
            run(case.id().split(".", 1)[-1], call)
if not found:
    report("<collect>", False, f"no test functions (test_*) or TestCase classes found in {TEST_FILE}")
'''


@dataclass(frozen=True, slots=True)
class TestOutcome:
    __test__ = False  # not a pytest class

    name: str
    passed: bool
    message: str = ""


@dataclass(frozen=True, slots=True)
class TestReport:
    """Each test's outcome, and the sandbox run. ``error`` says why no test could run (syntax error, crash)."""

    __test__ = False  # not a pytest class

    outcomes: tuple[TestOutcome, ...]
    run: SandboxResult
    error: str | None = None
    expected: int = 0

    @property
    def total(self) -> int:
        return max(len([o for o in self.outcomes if o.name != "<collect>"]), self.expected)

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
        """A short text for prompts and reports: the count, then the first failures' messages (without the
        ``^^^`` marker lines)."""
        head = f"{self.passed}/{self.total} tests passed"
        if self.error:
            head += f"; {self.error}"
        failures = self.failures()
        lines = [head]
        for o in failures[:max_failures]:
            kept = [line for line in o.message.strip().splitlines() if line.strip(" ^~")]
            lines.append(f"FAILED {o.name}: " + "\n".join(kept))
        if len(failures) > max_failures:
            lines.append(f"... and {len(failures) - max_failures} more failing")
        text = "\n".join(lines)
        return text if len(text) <= max_chars else text[: max_chars - 3] + "..."

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "error": self.error,
            "tests": [{"name": o.name, "passed": o.passed, "message": o.message} for o in self.outcomes],
            "timed_out": self.run.timed_out,
            "killed_by": self.run.killed_by,
            "sandboxed_by": self.run.sandboxed_by,
            "duration_s": round(self.run.duration_s, 3),
        }


async def run_tests(
    sandbox: Sandbox,
    source: str,
    tests: str,
    *,
    module: str = "solution",
    per_test_s: float = 3.0,
    expected: int = 0,
) -> TestReport:
    """Run ``tests`` (``test_*`` functions or ``unittest.TestCase`` classes, which import ``module``) against
    ``source`` saved as ``module.py``. A test that is not reached (the run crashed or timed out) counts as
    failed when ``expected`` says how many there are."""
    if not module.isidentifier():
        raise ValueError(f"module name must be an identifier, got {module!r}")
    mark = f"@@{secrets.token_hex(8)}@@"
    files = {f"{module}.py": source, "test_module.py": tests, "_runner.py": RUNNER}
    result = await sandbox.run(files, "_runner.py", [mark, "test_module.py", module, f"{per_test_s:g}"])
    outcomes: list[TestOutcome] = []
    for line in result.stdout.splitlines():
        if not line.startswith(mark):
            continue
        try:
            row = json.loads(line[len(mark) :])
            outcomes.append(TestOutcome(str(row["test"]), bool(row["passed"]), str(row.get("message", ""))))
        except (ValueError, KeyError, TypeError):
            continue
    error: str | None = None
    collect = next((o for o in outcomes if o.name == "<collect>"), None)
    if collect is not None:
        error = collect.message.strip().splitlines()[-1] if collect.message.strip() else "tests could not be collected"
    elif result.timed_out:
        error = f"the test run timed out after {sandbox.limits.wall_s:g} s"
    elif result.killed_by:
        error = f"the test run was killed ({result.killed_by})"
    elif not outcomes:
        error = f"no test results (exit {result.exit_code}): {result.stderr.strip()[-300:]}"
    return TestReport(tuple(outcomes), result, error, expected)


class RunTestsArgs(BaseModel):
    source: str = Field(description="the Python module under test")
    tests: str = Field(description="test functions (test_*) or unittest.TestCase classes importing the module")
    module: str = Field("solution", description="the module's import name", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class RunTestsTool:
    """The ``run_tests`` tool: runs tests against a module in the sandbox; the output lists the failures."""

    sandbox: Sandbox | None = None
    name: str = "run_tests"
    description: str = "run Python tests against a module's source in an isolated sandbox; reports each test"
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
