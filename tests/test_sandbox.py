"""The sandbox against hostile code: every attack is contained (bubblewrap where it works, and the resource-limit
fallback), test reports are read back per test, and the ``run_tests`` tool turns them into tool results."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from longthink.tools.base import call_tool
from longthink.tools.sandbox import RunTestsTool, Sandbox, SandboxLimits, bwrap_available, run_tests

needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap (bwrap) does not work on this machine")
FAST = SandboxLimits(wall_s=4.0, cpu_s=2, memory_mb=256, file_mb=1, output_chars=2000)


def box(**kwargs: object) -> Sandbox:
    return Sandbox(FAST, concurrency=4, use_bwrap=True, **kwargs)  # type: ignore[arg-type]


@needs_bwrap
async def test_plain_code_runs_in_an_empty_environment_and_a_fresh_work_dir() -> None:
    code = "import os, sys\nprint(os.getcwd(), sorted(os.environ), sys.flags.isolated)\nprint(open('data.txt').read())"
    result = await box().run({"main.py": code, "data.txt": "payload"}, "main.py")
    assert result.ok and result.sandboxed_by == "bwrap" and result.killed_by is None
    first, second = result.stdout.splitlines()
    assert first.startswith("/work ") and "'HOME'" not in first and first.endswith(" 1")
    assert second == "payload"


@needs_bwrap
async def test_infinite_loop_is_killed() -> None:
    start = time.perf_counter()
    result = await box().run({"main.py": "while True:\n    pass\n"}, "main.py")
    assert not result.ok and result.killed_by in ("cpu", "timeout")
    assert time.perf_counter() - start < FAST.wall_s + 3


@needs_bwrap
async def test_sleeping_forever_hits_the_wall_clock() -> None:
    result = await box().run({"main.py": "import time\ntime.sleep(60)\n"}, "main.py")
    assert result.timed_out and result.killed_by == "timeout" and result.exit_code is None


@needs_bwrap
async def test_fork_bomb_is_contained_and_the_host_still_forks() -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = await box().run({"main.py": bomb}, "main.py")
    assert not result.ok and result.killed_by is not None
    neighbour = await box().run({"main.py": "print('still here')"}, "main.py")  # a run right after is fine
    assert neighbour.stdout.strip() == "still here"
    host = await asyncio.create_subprocess_exec("true")  # the host can still start processes
    assert await host.wait() == 0


@needs_bwrap
async def test_memory_bomb_is_killed() -> None:
    result = await box().run(
        {"main.py": "blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))\n"}, "main.py"
    )
    assert not result.ok and result.killed_by == "memory"


@needs_bwrap
async def test_writing_outside_the_work_dir_never_reaches_the_host(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    code = (
        f"for path in [{str(target)!r}, '/tmp/longthink-escape-test', '/etc/longthink-escape-test', '../escaped']:\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, type(exc).__name__)\n"
    )
    result = await box().run({"main.py": code}, "main.py")
    assert result.exit_code == 0
    assert not target.exists() and not Path("/tmp/longthink-escape-test").exists()
    assert not Path("/etc/longthink-escape-test").exists()
    assert f"refused {target}" in result.stdout  # the host's directories do not even exist in the sandbox


@needs_bwrap
async def test_no_network_even_to_the_local_database() -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 5432), timeout=2)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('blocked', type(exc).__name__)\n"
    )
    result = await box().run({"main.py": code}, "main.py")
    assert result.stdout.startswith("blocked") and "CONNECTED" not in result.stdout
    try:  # the test means something only where the host can reach the port; say which case ran
        socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
    except OSError:
        pytest.skip("nothing listens on 127.0.0.1:5432 here; the sandbox was blocked, but so is the host")


@needs_bwrap
async def test_host_environment_variables_are_invisible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGTHINK_SECRET_TEST", "hunter2")
    code = "import os\nprint(os.environ.get('LONGTHINK_SECRET_TEST'))\nprint(open('/proc/1/environ','rb').read())"
    result = await box().run({"main.py": code}, "main.py")
    assert "hunter2" not in result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "None"


@needs_bwrap
async def test_output_and_file_size_are_capped() -> None:
    result = await box().run({"main.py": "print('x' * 10**6)"}, "main.py")
    assert result.truncated and len(result.stdout) == FAST.output_chars
    big = await box().run({"main.py": "open('big', 'wb').write(b'0' * (4 * 2**20))"}, "main.py")
    assert not big.ok and ("File too large" in big.stderr or big.killed_by == "file_size")


async def test_fallback_without_bwrap_warns_and_still_limits() -> None:
    with pytest.warns(RuntimeWarning, match="resource limits only"):
        sandbox = Sandbox(FAST, use_bwrap=False)
    assert sandbox.kind == "rlimits"
    loop, memory, env = await asyncio.gather(
        sandbox.run({"main.py": "while True:\n    pass\n"}, "main.py"),
        sandbox.run({"main.py": "x = bytearray(2 * 2**30)"}, "main.py"),
        sandbox.run({"main.py": "import os\nprint(sorted(os.environ))"}, "main.py"),
    )
    assert loop.killed_by in ("cpu", "timeout") and loop.sandboxed_by == "rlimits"
    assert memory.killed_by == "memory"
    assert env.stdout.strip() == "['LANG', 'PATH']"


async def test_bwrap_required_but_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import longthink.tools.sandbox as sbx

    monkeypatch.setattr(sbx, "bwrap_available", lambda: False)
    with pytest.raises(RuntimeError, match="bwrap"):
        sbx.Sandbox(use_bwrap=True)


SOURCE = "def add(a, b):\n    return a - b\n\n\ndef loop():\n    while True:\n        pass\n"
TESTS = """from calc import add, loop


def test_add():
    assert add(2, 3) == 5


def test_add_zero():
    assert add(4, 0) == 4


def test_loop():
    loop()
"""


async def test_run_tests_reports_each_test_with_values_and_per_test_timeouts() -> None:
    sandbox = Sandbox(SandboxLimits(wall_s=10, cpu_s=5), use_bwrap=None)
    report = await run_tests(sandbox, SOURCE, TESTS, module="calc", per_test_s=0.5)
    assert [(o.name, o.passed) for o in report.outcomes] == [("test_module.py::test_add", False),
                                                             ("test_module.py::test_add_zero", True),
                                                             ("test_module.py::test_loop", False)]  # fmt: skip
    assert report.passed == 1 and report.total == 3 and report.error is None and not report.all_passed
    assert "assert -1 == 5" in report.outcomes[0].message and "where -1 = add(2, 3)" in report.outcomes[0].message
    assert "longer than 0.5 s" in report.outcomes[2].message
    fixed = await run_tests(sandbox, SOURCE.replace("a - b", "a + b"), TESTS.replace("    loop()", "    pass"),
                            module="calc")  # fmt: skip
    assert fixed.all_passed and fixed.pass_rate == 1.0


async def test_run_tests_turns_broken_code_and_missing_tests_into_errors() -> None:
    sandbox = Sandbox(use_bwrap=None)
    broken = await run_tests(sandbox, "def add(a, b)\n    return a + b\n", TESTS, module="calc", expected=3)
    assert broken.error and "SyntaxError" in broken.error and broken.total == 3 and broken.pass_rate == 0.0
    none = await run_tests(sandbox, SOURCE, "x = 1\n", module="calc")
    assert none.error_kind == "no_tests" and "no tests collected" in (none.error or "") and not none.all_passed
    crash = await run_tests(sandbox, SOURCE, "import os\ndef test_a():\n    os._exit(3)\n", module="calc", expected=1)
    assert crash.error and crash.pass_rate == 0.0 and not crash.all_passed


async def test_run_tests_tool_validates_and_reports() -> None:
    tool = RunTestsTool(Sandbox(use_bwrap=None))
    good = await call_tool(tool, {"source": SOURCE.replace("a - b", "a + b"), "tests": TESTS.split("def test_loop")[0],
                                  "module": "calc"})  # fmt: skip
    assert good.ok and good.output.startswith("2/2 tests passed") and good.data["passed"] == 2
    bad = await call_tool(tool, {"source": SOURCE, "tests": TESTS, "module": "not a module"})
    assert not bad.ok and "invalid arguments" in (bad.error or "")


async def test_tests_that_draw_random_inputs_report_the_same_on_every_run() -> None:
    tests = "import random\n\n\ndef test_draw():\n    assert random.random() == -1\n"
    sandbox = Sandbox(use_bwrap=None)
    first, second = [await run_tests(sandbox, "x = 1\n", tests) for _ in range(2)]
    assert "assert 0.8444218515250481 == -1" in first.outcomes[0].message  # random.seed(0) before each test
    assert [o.message.splitlines()[:3] for o in first.outcomes] == [o.message.splitlines()[:3] for o in second.outcomes]


@pytest.mark.parametrize("use_bwrap", [True, False])
def test_programs_run_under_uvloop_as_the_service_runs_them(use_bwrap: bool) -> None:
    """uvicorn runs the service on uvloop, whose subprocesses refuse Popen's user/group arguments: every program
    of program mode failed in the service ("unexpected kwargs: user, group, extra_groups"). The drop to an
    unprivileged user happens in the child instead."""
    import os
    import warnings

    uvloop = pytest.importorskip("uvloop")
    if use_bwrap and not bwrap_available():
        pytest.skip("bubblewrap (bwrap) does not work on this machine")

    async def main() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the fallback warns that it is not bwrap
            sandbox = Sandbox(FAST, use_bwrap=use_bwrap)
        return await sandbox.run({"main.py": "import os\nprint(6 * 7, os.getuid(), os.getgid(), os.getgroups())"},
                                 "main.py")  # fmt: skip

    result = uvloop.run(main())
    assert result.ok, result.stderr
    value, uid, gid, groups = result.stdout.split(maxsplit=3)
    assert value == "42"
    if os.geteuid() == 0:  # root drops to an unprivileged user with no extra groups
        assert int(uid) != 0 and int(gid) != 0 and groups.strip() == "[]"
