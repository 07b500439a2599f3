"""A sandbox for untrusted Python (model-written patches and their tests), and the ``run_tests`` tool.

Every run is a separate process in a throw-away working directory with an empty environment (only ``PATH``
and ``LANG``: no host secrets), under resource limits set before ``exec``: CPU time (``RLIMIT_CPU``), address
space (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``), no core files, and a process count (``RLIMIT_NPROC``,
which the kernel enforces only for a non-root user: when the host runs as root the child drops to ``nobody``
first). A wall-clock limit kills the whole process group.

When ``bwrap`` (bubblewrap) is installed and works (probed once per process), the child also runs in new
namespaces (``--unshare-all``: no network, its own PIDs, IPC and hostname; ``--die-with-parent``;
``--new-session``) with a file system made of a read-only bind of ``/usr`` and the interpreter's prefix, a
private ``/tmp`` and the work directory as the only writable host path. Without bwrap the resource limits still
apply but the network and the file system are not isolated: a warning says so, and every result's
``sandboxed_by`` names the mechanism (``"bwrap"`` or ``"rlimits"``).

:func:`run_tests` runs a module's source against tests in the sandbox and reports each test's outcome (the
reward of the debugging pack is the share that pass); :class:`RunTestsTool` wraps it as a :class:`Tool`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from longthink.tools.base import ToolResult

log = logging.getLogger(__name__)

SandboxKind = Literal["bwrap", "rlimits"]
NOBODY = 65534
UID_POOL = range(200_000, 260_000)
"""When the host runs as root, each run gets its own unprivileged user id from this range (unnamed ids), so
``RLIMIT_NPROC`` contains a fork bomb in one run without starving the runs beside it; ``nobody`` (65534)
serves where these ids cannot be used."""
_uid_counter = itertools.count(random.randrange(len(UID_POOL)))
WORKDIR = "/work"
"""Where the work directory appears inside a bwrap sandbox."""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-run limits. ``nproc`` counts every process of the sandbox user (runs at the same time share it)."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    file_mb: int = 16
    nproc: int = 256
    output_chars: int = 20_000


@dataclass(frozen=True, slots=True)
class SandboxResult:
    """What a run did. ``killed_by``: ``"timeout"`` (wall clock), ``"cpu"``, ``"memory"``, ``"file_size"`` or
    the signal's name; None when the process exited by itself."""

    exit_code: int | None
    stdout: str
    stderr: str
    timed_out: bool
    killed_by: str | None
    duration_s: float
    sandboxed_by: SandboxKind
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_by is None


def _bwrap_base(interpreter: Path, workdir: Path) -> list[str]:
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise FileNotFoundError("bwrap")
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
    for name in ("lib", "lib64", "bin", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            args += ["--ro-bind", str(target), str(target)]
    prefix = interpreter.parent.parent
    if not prefix.is_relative_to("/usr") and prefix != Path("/"):
        args += ["--ro-bind", str(prefix), str(prefix)]
    if not interpreter.is_relative_to("/usr") and not interpreter.is_relative_to(prefix):
        args += ["--ro-bind", str(interpreter), str(interpreter)]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--bind", str(workdir), WORKDIR]
    args += ["--chdir", WORKDIR, "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8"]
    return args


def default_interpreter() -> Path:
    """The Python that runs sandboxed code: this interpreter's base executable (not a virtual environment's
    wrapper, so nothing installed in the host's environment is visible) when the sandbox user can run it, else
    the system's ``python3``."""
    base = Path(getattr(sys, "_base_executable", None) or sys.executable).resolve()
    for candidate in (base, Path("/usr/bin/python3").resolve(), Path("/usr/local/bin/python3").resolve()):
        if candidate.is_file() and _reachable(candidate):
            return candidate
    return base


def _reachable(path: Path) -> bool:
    """Whether the sandbox user can execute ``path`` (always, unless the host runs as root and drops to
    ``nobody``: then every parent directory must be searchable and the file executable by others)."""
    if os.geteuid() != 0:
        return True
    if path.stat().st_mode & 0o005 != 0o005:
        return False
    return all(parent.stat().st_mode & 0o001 for parent in path.parents)


@cache
def bwrap_available() -> bool:
    """True when ``bwrap`` exists and can start the interpreter in new namespaces here (probed once)."""
    if shutil.which("bwrap") is None:
        return False
    with tempfile.TemporaryDirectory(prefix="longthink-probe-") as tmp:
        workdir = Path(tmp)
        uid = _sandbox_uid()
        _own(workdir, uid)
        cmd = [*_bwrap_base(default_interpreter(), workdir), str(default_interpreter()), "-I", "-c", "print(6*7)"]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=20, check=False, **_drop_kwargs(uid))
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("bwrap probe failed: %s", exc)
            return False
    ok = done.returncode == 0 and done.stdout.strip() == b"42"
    if not ok:
        log.warning("bwrap probe failed (exit %s): %s", done.returncode, done.stderr.decode(errors="replace")[-300:])
    return ok


@cache
def _pool_works() -> bool:
    """Whether this host can switch to ids of :data:`UID_POOL` (not in a user namespace that lacks them)."""
    uid = UID_POOL.start
    try:
        done = subprocess.run(["/bin/sh", "-c", "exit 0"], user=uid, group=uid, extra_groups=[], check=False,
                              capture_output=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _sandbox_uid() -> int | None:
    """The user id a run drops to: None when the host is not root (it already is unprivileged)."""
    if os.geteuid() != 0:
        return None
    if _pool_works():
        return UID_POOL.start + next(_uid_counter) % len(UID_POOL)
    return NOBODY


def _drop_kwargs(uid: int | None) -> dict[str, Any]:
    """Popen arguments that drop root to ``uid`` (RLIMIT_NPROC is not enforced for root)."""
    if uid is None:
        return {}
    return {"user": uid, "group": uid, "extra_groups": []}


def _own(path: Path, uid: int | None) -> None:
    """Make ``path`` usable by the sandbox user only."""
    path.chmod(0o700)
    if uid is not None:
        os.chown(path, uid, uid)


def _limiter(limits: SandboxLimits) -> Callable[[], None]:
    def apply() -> None:  # runs in the child between fork and exec
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
        memory = limits.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        size = limits.file_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        nproc = limits.nproc if hard == resource.RLIM_INFINITY else min(limits.nproc, hard)
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))

    return apply


async def _read_capped(stream: asyncio.StreamReader | None, limit: int) -> tuple[bytes, bool]:
    """Read everything (so the child never blocks on a full pipe) but keep only the first ``limit`` bytes."""
    if stream is None:
        return b"", False
    kept, truncated = bytearray(), False
    while chunk := await stream.read(65536):
        room = limit - len(kept)
        if room > 0:
            kept += chunk[:room]
        truncated = truncated or len(chunk) > room
    return bytes(kept), truncated


_SIGNAL_CAUSE = {
    signal.SIGXCPU: "cpu",
    signal.SIGXFSZ: "file_size",
}


def _cause(code: int | None, kind: SandboxKind, stderr: str, cpu_s: float) -> str | None:
    if code is None:
        return None
    sig = -code if code < 0 else (code - 128 if kind == "bwrap" and 128 < code < 128 + 65 else 0)
    if sig:
        try:
            sig_enum = signal.Signals(sig)
        except ValueError:
            return f"signal {sig}"
        if sig_enum in _SIGNAL_CAUSE:
            return _SIGNAL_CAUSE[sig_enum]
        if sig_enum == signal.SIGKILL and cpu_s:
            return "cpu"
        return sig_enum.name
    if "MemoryError" in stderr[-2000:]:
        return "memory"
    return None


class Sandbox:
    """Runs Python sources in isolated processes, at most ``concurrency`` at a time (see the module docstring).

    ``use_bwrap``: None uses bubblewrap when it works here, False never, True requires it (a clear error
    otherwise)."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        concurrency: int = 4,
        use_bwrap: bool | None = None,
        interpreter: Path | None = None,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.interpreter = interpreter or default_interpreter()
        available = bwrap_available()
        if use_bwrap and not available:
            raise RuntimeError("bubblewrap (bwrap) was required but does not work on this machine")
        self.kind: SandboxKind = "bwrap" if (available if use_bwrap is None else use_bwrap) else "rlimits"
        if self.kind == "rlimits":
            warnings.warn(
                "bubblewrap is not available: sandboxed code runs with resource limits only "
                "(no network or file-system isolation)",
                RuntimeWarning,
                stacklevel=2,
            )
        self._slots = asyncio.Semaphore(max(1, concurrency))

    async def run(
        self,
        files: Mapping[str, str],
        main: str,
        args: Sequence[str] = (),
        *,
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:
        """Write ``files`` (name -> source) into a fresh work directory and run ``python main args`` there."""
        lim = limits or self.limits
        async with self._slots:
            uid = _sandbox_uid()
            with tempfile.TemporaryDirectory(prefix="longthink-sbx-") as tmp:
                host = _prepare(Path(tmp), files, uid)
                return await self._exec(host, main, args, lim, uid)

    async def _exec(
        self, host: Path, main: str, args: Sequence[str], lim: SandboxLimits, uid: int | None
    ) -> SandboxResult:
        python = [str(self.interpreter), "-I", "-B", main, *args]
        if self.kind == "bwrap":
            cmd, cwd, env = [*_bwrap_base(self.interpreter, host), *python], None, None
        else:
            cmd, cwd, env = python, str(host), {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=cwd,
            env=env if env is not None else {},
            start_new_session=True,
            preexec_fn=_limiter(lim),
            **_drop_kwargs(uid),
        )
        readers = asyncio.gather(
            _read_capped(proc.stdout, lim.output_chars), _read_capped(proc.stderr, lim.output_chars)
        )
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout=lim.wall_s)
        except TimeoutError:
            timed_out = True
            _kill_group(proc.pid)
            await proc.wait()
        (out, t1), (err, t2) = await readers
        duration = time.perf_counter() - start
        stderr = err.decode(errors="replace")
        code = proc.returncode
        killed = "timeout" if timed_out else _cause(code, self.kind, stderr, lim.cpu_s)
        if killed == "cpu" and duration < lim.cpu_s * 0.8:
            killed = "SIGKILL"  # killed early: not by the CPU limit
        return SandboxResult(
            exit_code=None if timed_out else code,
            stdout=out.decode(errors="replace"),
            stderr=stderr,
            timed_out=timed_out,
            killed_by=killed,
            duration_s=duration,
            sandboxed_by=self.kind,
            truncated=t1 or t2,
        )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _prepare(tmp: Path, files: Mapping[str, str], uid: int | None) -> Path:
    """The work directory ``tmp/work`` holding ``files``, owned by the sandbox user."""
    tmp.chmod(0o711)  # the sandbox user may pass through, not list
    host = tmp / "work"
    host.mkdir()
    for name, text in files.items():
        path = (host / name).resolve()
        if not path.is_relative_to(host):
            raise ValueError(f"sandbox file name escapes the work directory: {name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if uid is not None:
            os.chown(path, uid, uid)
    _own(host, uid)
    return host


# -- running tests ---------------------------------------------------------------------------------------------------
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
        if self.sandbox is not None:
            return self.sandbox
        if not self._lazy:
            self._lazy.append(Sandbox())
        return self._lazy[0]

    async def run(self, args: Any) -> ToolResult:
        report = await run_tests(self._box(), args.source, args.tests, module=args.module)
        return ToolResult(self.name, report.error is None, report.summary(), report.error, report.as_dict())
