"""A sandbox for untrusted Python (model-written patches and their tests), and the ``run_tests`` tool.

Every run is a separate process in a throw-away working directory with an empty environment (only ``PATH``
and ``LANG``: no host secrets), under resource limits set before ``exec``: CPU time (``RLIMIT_CPU``), address
space (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``), no core files, and a process count (``RLIMIT_NPROC``,
which the kernel enforces only for a non-root user: when the host runs as root the child drops to ``nobody``
first). A wall-clock limit kills the whole process group.

When ``bwrap`` (bubblewrap) is installed and works (probed once per process), the child also runs in new
namespaces (``--unshare-all``: no network, its own PIDs, IPC and hostname; ``--die-with-parent``;
``--new-session``; no further user namespaces where bwrap can forbid them) with a file system made of a read-only
bind of ``/usr`` and the interpreter's prefix, and nothing of the host writable: the work directory, ``/tmp`` and
``/dev/shm`` are private tmpfs mounts of ``disk_mb`` each (the files are copied in; a run that fills one gets
``ENOSPC``, never the host's disk or memory), and the root and ``/dev`` are read-only. No host path appears inside
(``/proc/self/mountinfo`` shows none but the interpreter's and those of the read-only libraries a run
may import, such as pytest's). Without bwrap the resource limits still apply but the
network and the file system are not isolated: a warning says so, and every result's ``sandboxed_by`` names the
mechanism (``"bwrap"`` or ``"rlimits"``).

:func:`run_project` and :func:`run_tests` (in :mod:`longthink.tools.run_tests`, re-exported here) run tests with
real pytest in the sandbox (pytest is one of the read-only ``libraries`` a run may import) and report each test's
outcome; :class:`RunTestsTool` wraps them as a :class:`Tool`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

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
LIBDIR = "/opt/sandbox-lib"
"""Where the libraries a run may import (:meth:`Sandbox.run`'s ``libraries``) appear inside a bwrap sandbox, each
bound read-only under its own name."""
BOOTSTRAP = (
    "import runpy, sys\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "sys.argv = sys.argv[2:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)
"""The ``-c`` program that starts ``main`` with the library directory on ``sys.path`` (``-I`` ignores
``PYTHONPATH``)."""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-run limits. ``nproc`` counts every process of the sandbox user (runs at the same time share it);
    ``disk_mb`` is the size of each writable mount of a bwrap sandbox (the work directory, ``/tmp``, ``/dev/shm``)."""

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 512
    file_mb: int = 16
    nproc: int = 256
    output_chars: int = 20_000
    disk_mb: int = 64


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


@cache
def _bwrap_options() -> frozenset[str]:
    """The options this bwrap knows (``--size`` since 0.5, ``--disable-userns`` since 0.8), from its ``--help``."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return frozenset()
    try:
        done = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(word for word in (done.stdout + done.stderr).split() if word.startswith("--"))


def _bwrap_base(
    interpreter: Path, files: Sequence[tuple[int, str]], disk_mb: int, libraries: Sequence[Path] = ()
) -> list[str]:
    """The bwrap command line up to the program: ``files`` are (open file descriptor, name) pairs copied into the
    work directory (the descriptors must be passed to the child); ``libraries`` are bound read-only under
    :data:`LIBDIR`, each by its name."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise FileNotFoundError("bwrap")
    known = _bwrap_options()
    no_userns = ["--unshare-user", "--disable-userns"] if "--disable-userns" in known else []
    size = ["--size", str(disk_mb * 2**20)] if "--size" in known else []
    args = [bwrap, "--unshare-all", *no_userns, "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr"]
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
    args += ["--proc", "/proc", "--dev", "/dev", *size, "--tmpfs", "/dev/shm", *size, "--tmpfs", "/tmp"]
    args += [*size, "--tmpfs", WORKDIR]
    for lib in libraries:
        args += ["--ro-bind", str(lib), f"{LIBDIR}/{lib.name}"]
    for fd, name in files:
        args += ["--file", str(fd), f"{WORKDIR}/{name}"]
    args += ["--remount-ro", "/dev", "--remount-ro", "/"]  # last: after every mount point is made
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
    uid = _sandbox_uid()
    cmd = [*_bwrap_base(default_interpreter(), [], 1), str(default_interpreter()), "-I", "-c", "print(6*7)"]
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


def _limiter(limits: SandboxLimits, uid: int | None = None) -> Callable[[], None]:
    """The child's set-up between fork and exec: the resource limits, then (when the host is root) the switch to
    ``uid`` — done here rather than by Popen's ``user``/``group``/``extra_groups``, which event loops other than
    asyncio's own (uvloop, as uvicorn runs the service) refuse."""

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
        if uid is not None:  # groups first: once the user id is dropped, they cannot be changed
            os.setgroups([])
            os.setregid(uid, uid)
            os.setreuid(uid, uid)

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
        libraries: Sequence[Path] = (),
    ) -> SandboxResult:
        """Write ``files`` (name -> source) into a fresh work directory and run ``python main args`` there.

        ``libraries`` are host paths (a package's folder or a module's file, e.g. pytest's) that the run may import:
        bound read-only inside a bwrap sandbox (nothing else of the host's environment is visible), linked from a
        folder beside the work directory in the fallback; they must be readable by the sandbox user."""
        lim = limits or self.limits
        libs = _check_libraries(libraries)
        async with self._slots:
            uid = _sandbox_uid()
            with tempfile.TemporaryDirectory(prefix="longthink-sbx-") as tmp:
                host = _prepare(Path(tmp), files, uid)
                lib_dir = LIBDIR if self.kind == "bwrap" else _link_libraries(Path(tmp), libs)
                with contextlib.ExitStack() as opened:
                    fds = _open_all(host, files, opened) if self.kind == "bwrap" else []
                    return await self._exec(host, fds, main, args, lim, uid, libs, lib_dir)

    async def _exec(
        self,
        host: Path,
        fds: list[tuple[int, str]],
        main: str,
        args: Sequence[str],
        lim: SandboxLimits,
        uid: int | None,
        libs: Sequence[Path] = (),
        lib_dir: str = "",
    ) -> SandboxResult:
        boot = ["-c", BOOTSTRAP, lib_dir] if libs else []
        python = [str(self.interpreter), "-I", "-B", *boot, main, *args]
        if self.kind == "bwrap":  # the files are copied into the sandbox's own work directory
            cmd, cwd, env = [*_bwrap_base(self.interpreter, fds, lim.disk_mb, libs), *python], None, None
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
            preexec_fn=_limiter(lim, uid),
            pass_fds=[fd for fd, _ in fds],
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


def _open_all(host: Path, names: Mapping[str, str], stack: contextlib.ExitStack) -> list[tuple[int, str]]:
    """Read-only descriptors of the prepared files with their paths in the work directory (bwrap's ``--file``)."""
    out = []
    for name in names:
        path = (host / name).resolve()
        out.append((stack.enter_context(path.open("rb")).fileno(), path.relative_to(host).as_posix()))
    return out


def _check_libraries(libraries: Sequence[Path]) -> list[Path]:
    """``libraries`` resolved; a clear error for one that is missing, that the sandbox user cannot read, or whose
    name another one already takes."""
    out: list[Path] = []
    for lib in libraries:
        path = Path(lib).resolve()
        if not path.exists():
            raise FileNotFoundError(f"sandbox library not found: {lib}")
        if not readable_by_sandbox(path):
            raise PermissionError(f"the sandbox user cannot read the library {path}")
        if any(p.name == path.name for p in out):
            raise ValueError(f"two sandbox libraries named {path.name!r}")
        out.append(path)
    return out


def readable_by_sandbox(path: Path) -> bool:
    """Whether the sandbox user can read ``path`` (a folder: list and enter it) through its parents."""
    if os.geteuid() != 0:
        return True
    need = 0o005 if path.is_dir() else 0o004
    return path.stat().st_mode & need == need and all(parent.stat().st_mode & 0o001 for parent in path.parents)


def _link_libraries(tmp: Path, libraries: Sequence[Path]) -> str:
    """The fallback's library folder: ``tmp/lib`` with a link to each library (outside the work directory)."""
    lib = tmp / "lib"
    lib.mkdir()
    for path in libraries:
        (lib / path.name).symlink_to(path)
    lib.chmod(0o755)
    return str(lib)


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


from longthink.tools.run_tests import (  # noqa: E402
    RUNNER,
    RunTestsArgs,
    RunTestsTool,
    Spectrum,
    TestOutcome,
    TestReport,
    pytest_libraries,
    run_project,
    run_tests,
)  # fmt: skip

__all__ = [
    "RUNNER", "RunTestsArgs", "RunTestsTool", "Sandbox", "SandboxKind", "SandboxLimits", "SandboxResult", "Spectrum",
    "TestOutcome", "TestReport", "bwrap_available", "default_interpreter", "pytest_libraries", "run_project",
    "run_tests",
]  # fmt: skip
