"""The sandbox's hostile battery, extended (tests/test_sandbox.py has the first one): code that reads ``/proc``
for host processes and paths, escapes through symbolic and hard links, floods signals, stops its parent, leaves
daemons behind, fills the disk, probes the environment, ptraces, reaches for the network and host sockets, writes
outside its work directory and tries to gain privileges. Every attack checks a host-side canary (a process, a
file, a secret, a listening socket) and counts as an escape if the canary is touched; ``ATTACKS`` counts them
(printed with ``pytest -s``): 0 escapes."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from longthink.tools.sandbox import Sandbox, SandboxLimits, SandboxResult, bwrap_available

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap (bwrap) does not work on this machine")
LIMITS = SandboxLimits(wall_s=4.0, cpu_s=3, memory_mb=256, file_mb=4, output_chars=20_000, disk_mb=8)
ATTACKS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\nhostile sandbox battery: {sum(ATTACKS.values())} attacks in {len(ATTACKS)} groups, 0 escapes: "
          + ", ".join(f"{k} {v}" for k, v in sorted(ATTACKS.items())))  # fmt: skip


async def attack(group: str, code: str, limits: SandboxLimits = LIMITS, **files: str) -> SandboxResult:
    ATTACKS[group] += code.count("# attack")
    return await Sandbox(limits, use_bwrap=True).run({"main.py": code, **files}, "main.py")


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """A host process whose command line and environment hold a secret, and a host file holding it."""
    token = secrets.token_hex(12)
    proc = subprocess.Popen(["/bin/sh", "-c", f"sleep 60; : {token}"], env={**os.environ, "CANARY_SECRET": token},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    path = tmp_path / "canary" / "secret.txt"
    path.parent.mkdir()
    path.write_text(token)
    path.chmod(0o644)
    yield proc, token, path
    os.killpg(proc.pid, 9)  # the shell and its sleep
    proc.wait()


def alive_and_running(proc: subprocess.Popen[bytes]) -> bool:
    """Not exited, and not stopped (state T) or traced (t)."""
    if proc.poll() is not None:
        return False
    state = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state not in ("T", "t")


PRIVILEGES = """
import ctypes, os
status = {k: v.strip() for k, v in (line.split(":", 1) for line in open("/proc/self/status"))}
print("uid", os.getuid(), os.geteuid())
print("caps", status["CapEff"], status["CapBnd"], "nnp", status["NoNewPrivs"])
try:  # attack: become root
    os.setuid(0)
    print("SETUID OK")
except OSError as exc:
    print("setuid refused", exc.errno)
libc = ctypes.CDLL(None, use_errno=True)
print("userns", libc.unshare(0x10000000), ctypes.get_errno())  # attack: a nested user namespace (root inside)
print("mountns", libc.unshare(0x00020000), ctypes.get_errno())  # attack: a mount namespace of its own
print("mount", libc.mount(b"none", b"/usr", b"tmpfs", 0, None), ctypes.get_errno())  # attack: mount over /usr
if os.path.exists("/usr/bin/mount"):  # attack: a setuid-root binary (no new privileges: the bit is ignored)
    import subprocess
    done = subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp"], capture_output=True)
    print("setuid mount", done.returncode)
"""


async def test_code_runs_unprivileged_and_cannot_gain_privileges() -> None:
    result = await attack("privileges", PRIVILEGES)
    out = result.stdout
    assert result.exit_code == 0, result.stderr
    uid = int(out.split("uid ")[1].split()[0])
    assert uid != 0 and "SETUID OK" not in out
    assert "caps 0000000000000000 0000000000000000 nnp 1" in out
    assert "userns -1" in out and "mountns -1" in out and "mount -1" in out
    assert "setuid mount 0" not in out


PROC = """
import os, sys
token, (host_pid, path) = open("token.txt").read(), sys.argv[1:]  # not in argv: its own cmdline would hold it
pids = [p for p in os.listdir("/proc") if p.isdigit()]
print("pids", len(pids))
for pid in pids:  # attack: every process's command line and environment
    for what in ("cmdline", "environ"):
        try:
            if token.encode() in open(f"/proc/{pid}/{what}", "rb").read():
                print("LEAK", pid, what)
        except OSError:
            pass
print("host pid visible", os.path.exists(f"/proc/{host_pid}"))  # attack: the host canary by its pid
print("root", sorted(os.listdir("/proc/1/root")))  # attack: pid 1's root
for via in (path, "/proc/1/root" + path, "/proc/1/cwd" + path, "/proc/self/root" + path):  # attack: the host file
    try:
        print("READ", open(via).read())
    except OSError as exc:
        print("unreadable", exc.errno)
print(open("/proc/self/mountinfo").read())  # attack: host paths in the mount table
"""


async def test_proc_shows_no_host_process_file_or_path(canary: tuple[subprocess.Popen[bytes], str, Path]) -> None:
    proc, token, path = canary
    await asyncio.sleep(0.2)  # the canary's shell has started
    assert token.encode() in Path(f"/proc/{proc.pid}/cmdline").read_bytes()  # the host itself can see it
    files = {"main.py": PROC, "token.txt": token}
    result = await Sandbox(LIMITS, use_bwrap=True).run(files, "main.py", [str(proc.pid), str(path)])
    ATTACKS["proc"] += 8
    out = result.stdout
    assert result.exit_code == 0, result.stderr
    assert token not in out and "LEAK" not in out and "READ" not in out
    assert int(out.split("pids ")[1].split()[0]) <= 4  # bwrap's init, python (and nothing of the host)
    assert "host pid visible True" not in out or proc.pid <= 4
    assert "'etc'" not in out.split("root ")[1].splitlines()[0]  # the sandbox's root, not the host's
    mounts = out.split("]\n", 1)[1]
    assert "longthink-sbx" not in mounts and str(path.parent) not in mounts and "/tmp" in mounts
    assert alive_and_running(proc)


LINKS = """
import os, sys
target = sys.argv[1]
for name, to in (("link", target), ("via_proc", "/proc/1/root" + target), ("up", "../../../../..")):
    try:
        os.symlink(to, name)  # attack: a link to the host
    except OSError as exc:
        print("symlink refused", name, exc.errno)
    for mode in ("r", "w"):  # attack: read, then write, through it
        try:
            with open(name if name != "up" else "up" + target, mode) as f:
                print("GOT" if mode == "r" else "WROTE", name, f.read() if mode == "r" else f.write("pwned"))
        except OSError as exc:
            print("refused", name, mode, exc.errno)
try:  # attack: a hard link to the host file, and to the interpreter
    os.link(target, "hard")
    print("HARD LINKED")
except OSError as exc:
    print("link refused", exc.errno)
try:
    os.link(sys.executable, "python")
    print("HARD LINKED PYTHON")
except OSError as exc:
    print("link refused", exc.errno)
os.symlink("/", "rootlink")  # attack: links left behind for the host's clean-up to follow
os.symlink(os.path.dirname(target), "hostdir")
"""


async def test_symbolic_and_hard_links_do_not_reach_the_host(canary: tuple[subprocess.Popen[bytes], str, Path]) -> None:
    _, token, path = canary
    result = await Sandbox(LIMITS, use_bwrap=True).run({"main.py": LINKS}, "main.py", [str(path)])
    ATTACKS["links"] += 10
    assert result.exit_code == 0, result.stderr
    assert token not in result.stdout and "GOT" not in result.stdout and "HARD LINKED" not in result.stdout
    assert path.read_text() == token and sorted(p.name for p in path.parent.iterdir()) == ["secret.txt"]


async def test_links_in_the_rlimits_fallback_do_not_make_the_clean_up_escape(
    canary: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    """Without bwrap the work directory is on the host: links left in it must not lead its clean-up outside."""
    if os.geteuid() != 0:
        pytest.skip("without root the fallback runs as this user: no isolation to test (a warning says so)")
    _, token, path = canary
    with pytest.warns(RuntimeWarning):
        fallback = Sandbox(LIMITS, use_bwrap=False)
    result = await fallback.run({"main.py": LINKS}, "main.py", [str(path)])
    ATTACKS["links (rlimits)"] += 10
    assert token not in result.stdout and "WROTE" not in result.stdout  # dropped to a user who cannot read it
    assert path.read_text() == token and sorted(p.name for p in path.parent.iterdir()) == ["secret.txt"]
    assert Path(sys.executable).is_file()  # the clean-up removed the links, not what they point to


SIGNALS = """
import os, signal, sys, time
host = [int(p) for p in sys.argv[1:]]
for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP, signal.SIGSEGV):  # attack: signal everyone
    for pid in [1, os.getppid(), *host]:
        try:
            os.kill(pid, sig)
            print("sent", pid, sig)
        except OSError as exc:
            print("refused", pid, int(sig), exc.errno)
children = []
for _ in range(16):  # attack: a storm of forked signallers, each killing everything it may
    pid = os.fork()
    if pid == 0:
        end = time.time() + 1.0
        while time.time() < end:
            for sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCONT, signal.SIGTERM):
                for target in (-1, 1, *host):
                    try:
                        os.kill(target, sig)
                    except OSError:
                        pass
        os._exit(0)
    children.append(pid)
print("stormed", len(children))
"""


async def test_signal_floods_and_stopping_the_parent_stay_inside(
    canary: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    privileges = await attack("privileges", PRIVILEGES)  # never flood signals from a sandbox that runs as root
    assert "caps 0000000000000000" in privileges.stdout and "uid 0 " not in privileges.stdout
    proc, _, _ = canary
    start = time.perf_counter()
    box = Sandbox(LIMITS, use_bwrap=True)
    result = await box.run({"main.py": SIGNALS}, "main.py", [str(os.getpid()), str(proc.pid)])
    ATTACKS["signals"] += 20
    assert time.perf_counter() - start < LIMITS.wall_s + 3
    await asyncio.sleep(0.3)
    assert alive_and_running(proc)
    sent = [line for line in result.stdout.splitlines() if line.startswith("sent ")]
    assert not [line for line in sent if line.split()[1] in (str(proc.pid), str(os.getpid()))], sent
    stop_self = await attack("signals", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)  # attack\n")
    assert stop_self.timed_out and stop_self.killed_by == "timeout"  # a stopped run still ends at the wall clock
    after = await box.run({"main.py": "print('still here')"}, "main.py")
    assert after.stdout.strip() == "still here" and alive_and_running(proc)


DAEMON = """
import os, sys, time
marker = sys.argv[1]
if os.fork() == 0:  # attack: a daemon that outlives the run
    os.setsid()
    if os.fork() == 0:
        os.execv("/bin/sh", ["/bin/sh", "-c", f"sleep 30; : {marker}"])
    os._exit(0)
time.sleep(0.3)
print("daemonised", flush=True)
if sys.argv[2] == "hang":
    time.sleep(60)
"""


def host_processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


@pytest.mark.parametrize("how", ["exit", "hang"])
async def test_daemons_do_not_outlive_the_run(how: str) -> None:
    marker = secrets.token_hex(10)
    result = await Sandbox(LIMITS, use_bwrap=True).run({"main.py": DAEMON}, "main.py", [marker, how])
    ATTACKS["daemons"] += 1
    assert "daemonised" in result.stdout and (result.timed_out == (how == "hang"))
    for _ in range(30):  # the kernel may take a moment to reap them
        if not host_processes_with(marker):
            break
        await asyncio.sleep(0.1)
    assert host_processes_with(marker) == []


FILL = """
import errno, os
for where in ("/work", "/tmp", "/dev/shm", "/dev", "/", "/usr", "/proc"):  # attack: fill every writable place
    written, why = 0, "UNBOUNDED"
    while written < 64:  # never more than 64 MiB, should the limit regress
        try:
            with open(f"{where}/fill-{written}", "wb") as f:
                f.write(b"\\0" * 2**20)
        except OSError as exc:
            why = errno.errorcode.get(exc.errno, str(exc.errno))
            break
        written += 1
    print(where, written, why)
"""


async def test_filling_the_disk_is_bounded_and_never_reaches_the_host() -> None:
    result = await attack("disk", FILL + "# attack\n" * 6)
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: (int(line.split()[1]), line.split()[2]) for line in result.stdout.splitlines()}
    for where in ("/work", "/tmp", "/dev/shm"):  # private tmpfs mounts of disk_mb each: full, then ENOSPC
        written, why = rows[where]
        assert written <= LIMITS.disk_mb and why == "ENOSPC", (where, rows)
    for where in ("/dev", "/", "/usr", "/proc"):  # read-only, or nothing to write
        assert rows[where][0] == 0, (where, rows)
    big = await attack("disk", "open('one', 'wb').write(b'0' * 6 * 2**20)  # attack\n")  # over file_mb
    assert not big.ok and ("File too large" in big.stderr or big.killed_by == "file_size")


ENVIRONMENT = """
import os, sys
print(sorted(os.environ))
print(open("/proc/self/environ", "rb").read())  # attack: the environment, three ways
print(open("/proc/1/environ", "rb").read())
for path in sys.argv[1:]:  # attack: host files and directories
    print(path, os.path.exists(path))
print(os.path.expanduser("~"), os.getcwd())
"""


async def test_environment_probing_finds_no_host_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token = secrets.token_hex(12)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", token)
    monkeypatch.setenv("LONGTHINK_DB_URL", f"postgresql://user:{token}@db/prod")
    secret_file = tmp_path / "secret.env"
    secret_file.write_text(token)
    probes = [str(Path(__file__)), str(secret_file), str(Path.home() / ".ssh"), "/etc/shadow", "/etc/passwd", "/root",
              "/var/run/postgresql", "/sys/class/net"]  # fmt: skip
    result = await Sandbox(LIMITS, use_bwrap=True).run({"main.py": ENVIRONMENT}, "main.py", probes)
    ATTACKS["environment"] += 3 + len(probes)
    assert result.exit_code == 0, result.stderr
    assert token not in result.stdout + result.stderr
    assert set(ast.literal_eval(result.stdout.splitlines()[0])) <= {"LANG", "PATH", "PWD"}  # PWD: from --chdir
    assert all(f"{p} False" in result.stdout for p in probes), result.stdout


PTRACE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_SEIZE, PTRACE_TRACEME = 16, 0x4206, 0
host = [int(pid) for pid in sys.argv[1:]]
for pid in host:  # attack: attach to the host's processes
    for request in (PTRACE_ATTACH, PTRACE_SEIZE):
        print("attach", pid, request, libc.ptrace(request, pid, None, None), ctypes.get_errno(), flush=True)
# attack: seize the parent, bwrap's init (PTRACE_ATTACH would stop it for good: the run then ends at the wall clock)
print("seize", os.getppid(), libc.ptrace(PTRACE_SEIZE, os.getppid(), None, None), ctypes.get_errno(), flush=True)
print("init fds", sorted(os.readlink(f"/proc/1/fd/{fd}").split(":")[0] for fd in os.listdir("/proc/1/fd")))
print("traceme", libc.ptrace(PTRACE_TRACEME, 0, None, None), ctypes.get_errno())  # attack: be traced by the parent
try:  # attack: read a host process's memory
    open(f"/proc/{host[0]}/mem", "rb").read(1)
    print("MEM READ")
except OSError as exc:
    print("mem refused", exc.errno)
"""


async def test_ptrace_reaches_no_host_process(canary: tuple[subprocess.Popen[bytes], str, Path]) -> None:
    proc, _, _ = canary
    host = [pid for pid in (proc.pid, os.getpid()) if pid > 10]  # a low pid would name a sandbox process
    result = await Sandbox(LIMITS, use_bwrap=True).run({"main.py": PTRACE}, "main.py", [str(p) for p in host])
    ATTACKS["ptrace"] += 2 * len(host) + 3
    assert "MEM READ" not in result.stdout and not result.timed_out, result.stdout + result.stderr
    # pid 1 is bwrap's init, inside the sandbox: tracing it is allowed, and it holds no host file or directory
    fds = ast.literal_eval(result.stdout.split("init fds ")[1].splitlines()[0])
    assert set(fds) <= {"/dev/null", "pipe", "anon_inode", "socket"}, fds
    for pid in host:
        for line in result.stdout.splitlines():
            if line.startswith(f"attach {pid} "):
                assert line.split()[3] == "-1", line  # no such process in the sandbox
    await asyncio.sleep(0.2)
    assert alive_and_running(proc)
    assert "TracerPid:\t0" in Path(f"/proc/{proc.pid}/status").read_text()


NETWORK = """
import socket, sys
port, abstract = int(sys.argv[1]), sys.argv[2]
def attempt(what, make, address):
    try:
        s = make()
        s.settimeout(2)
        s.connect(address)
        s.send(b"hello")
        print("CONNECTED", what)
    except OSError as exc:
        print("blocked", what, exc.errno)
attempt("tcp", lambda: socket.socket(), ("127.0.0.1", port))  # attack: the host's loopback
attempt("tcp6", lambda: socket.socket(socket.AF_INET6), ("::1", port))
attempt("udp", lambda: socket.socket(type=socket.SOCK_DGRAM), ("8.8.8.8", 53))  # attack: the internet
attempt("abstract", lambda: socket.socket(socket.AF_UNIX), "\\0" + abstract)  # attack: a host abstract socket
attempt("postgres", lambda: socket.socket(socket.AF_UNIX), "/var/run/postgresql/.s.PGSQL.5432")
print(sorted(n for _, n in socket.if_nameindex()))
"""


async def test_network_and_host_sockets_are_unreachable() -> None:
    tcp = socket.create_server(("127.0.0.1", 0))
    abstract_name = f"longthink-canary-{secrets.token_hex(6)}"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind("\0" + abstract_name)
    unix.listen()
    tcp.setblocking(False)
    unix.setblocking(False)
    try:
        port = tcp.getsockname()[1]
        result = await Sandbox(LIMITS, use_bwrap=True).run({"main.py": NETWORK}, "main.py", [str(port), abstract_name])
        ATTACKS["network"] += 5
        assert "CONNECTED" not in result.stdout, result.stdout
        assert result.stdout.count("blocked") == 5
        assert result.stdout.strip().splitlines()[-1] in ("['lo']", "[]")  # no interface but loopback
        for server in (tcp, unix):
            with pytest.raises(BlockingIOError):
                server.accept()  # nobody knocked
    finally:
        tcp.close()
        unix.close()


WRITES = """
import os, sys
for path in sys.argv[1:]:  # attack: write where the host would see it
    try:
        with open(path, "w") as f:
            f.write("h")
        print("WROTE", path)
    except OSError as exc:
        print("refused", path, exc.errno)
"""


async def test_writes_outside_the_sandbox_fail(tmp_path: Path) -> None:
    from longthink.tools.sandbox import default_interpreter

    prefix = default_interpreter().parent.parent
    token = secrets.token_hex(6)
    targets = [f"{prefix}/lib/longthink-escape-{token}.py", f"/usr/longthink-escape-{token}",
               f"{tmp_path}/longthink-escape-{token}", f"/longthink-escape-{token}",
               "/proc/sys/kernel/hostname", "/proc/sysrq-trigger", "/proc/self/oom_score_adj",
               f"/dev/longthink-escape-{token}"]  # fmt: skip
    hostname = socket.gethostname()
    result = await Sandbox(LIMITS, use_bwrap=True).run({"main.py": WRITES}, "main.py", targets)
    ATTACKS["writes"] += len(targets)
    wrote = [line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("WROTE")]
    assert set(wrote) <= {"/proc/self/oom_score_adj"}, wrote  # its own OOM score: allowed, and only its own
    for target in targets[:4] + targets[-1:]:
        assert not Path(target).exists(), target
    assert socket.gethostname() == hostname


PYTEST_ATTACK = """
import os, sys
import pytest

TARGET = open("target.txt").read()
RESULTS = []


def pytest_configure(config):  # attack: a conftest runs before any test, inside pytest itself
    for where in [os.path.dirname(pytest.__file__), os.path.dirname(os.path.dirname(pytest.__file__)), TARGET]:
        for name in ("pwned.py", ""):
            path = os.path.join(where, name) if name else where
            try:
                with open(path, "a") as f:
                    f.write("pwned")
                RESULTS.append(f"WROTE {path}")
            except OSError as exc:
                RESULTS.append(f"refused {path} {exc.errno}")
    try:  # attack: replace pytest for the test that follows
        sys.modules["pytest"].main = None
        os.rename(os.path.dirname(pytest.__file__), "/tmp/moved")
        RESULTS.append("MOVED")
    except OSError as exc:
        RESULTS.append(f"refused rename {exc.errno}")
"""
PYTEST_VICTIM = """
import conftest


def test_the_attacks_were_refused():
    assert len(conftest.RESULTS) == 7 and all(r.startswith("refused") for r in conftest.RESULTS), conftest.RESULTS
"""


async def test_a_hostile_conftest_in_a_pytest_run_reaches_neither_the_libraries_nor_the_host(
    canary: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    from longthink.tools.sandbox import pytest_libraries, run_project

    _, token, path = canary
    files = {"conftest.py": PYTEST_ATTACK, "target.txt": str(path), "test_victim.py": PYTEST_VICTIM}
    report = await run_project(Sandbox(LIMITS, use_bwrap=True), files)
    ATTACKS["pytest"] += 7
    assert report.all_passed and report.total == 1, report.summary()
    assert path.read_text() == token
    for lib in pytest_libraries():
        assert lib.exists() and not (lib / "pwned.py").exists()
        assert "pwned" not in (lib.read_text() if lib.is_file() else "")
