"""``longthink mcp`` through the MCP SDK's own client: the real command as a child process, over stdio and over
streamable HTTP, driven by the arithmetic test double (a whole agent run without a model) and a SQLite store."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver.exceptions import ToolError

from longthink.config import load_settings
from longthink.service.mcp_server import LongthinkTools
from longthink.store import MemoryStore
from longthink.testing import arithmetic_llm

ROOT = Path(__file__).resolve().parent.parent
CLI = ["-c", "from longthink.cli import main; main()"]  # longthink.cli has no __main__
LLM = "longthink.testing:arithmetic_llm"
TOOLS = {"solve", "runs_list", "run_show"}


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LONGTHINK_TEST_DELAY_S"}
    env.update(
        LONGTHINK_DB_URL=f"sqlite:///{tmp_path / 'runs.db'}",
        LONGTHINK_CONFIG=str(tmp_path / "none.toml"),
    )
    return env


def _data(result: Any) -> Any:
    """A successful tool call's structured value (a list comes wrapped as {"result": [...]})."""
    assert not result.is_error, result.content
    value = result.structured_content
    if isinstance(value, dict) and set(value) == {"result"}:
        return value["result"]
    return value


def _error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(c, "text", "") for c in result.content)


@asynccontextmanager
async def _session(transport: Any) -> AsyncIterator[ClientSession]:
    async with transport as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def _exercise(session: ClientSession) -> str:
    """The three tools as a client uses them: solve, then find the run and read it back."""
    listed = await session.list_tools()
    assert {t.name for t in listed.tools} == TOOLS
    solved = _data(await session.call_tool("solve", {"request": "What is 17 + 25?"}))
    assert solved["status"] == "done" and solved["answer"] == "42", solved
    assert solved["spend"]["completion_tokens"] > 0 and solved["domain"] == "general"
    runs = _data(await session.call_tool("runs_list", {"limit": 5}))
    assert [r["run_id"] for r in runs] == [solved["run_id"]]
    assert runs[0]["request"] == "What is 17 + 25?" and runs[0]["status"] == "done"
    shown = _data(await session.call_tool("run_show", {"run_id": solved["run_id"]}))
    assert shown["answer"] == "42" and shown["plan"]["steps"]
    steps = {s["id"]: s for s in shown["steps"]}
    assert {"s1", "s2"} <= set(steps) and steps["s2"]["answer"] == "42" and steps["s2"]["status"] == "done"
    assert shown["counts"]["candidates"] > 0 and shown["counts"]["scores"] > 0
    return str(solved["run_id"])


async def test_stdio_server_solves_lists_and_shows_runs(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=[*CLI, "mcp", "--llm", LLM], env=_env(tmp_path), cwd=str(ROOT)
    )
    log = tmp_path / "server.log"
    with log.open("w") as errlog:
        try:
            async with asyncio.timeout(90), _session(stdio_client(params, errlog=errlog)) as session:
                await _exercise(session)
                unknown = await session.call_tool("run_show", {"run_id": "no-such-run"})
                assert "no run 'no-such-run'" in _error_text(unknown)
                empty = await session.call_tool("solve", {"request": "   "})
                assert "non-empty" in _error_text(empty)
                absurd = await session.call_tool("runs_list", {"limit": 10**6})
                assert "limit must be between 1 and" in _error_text(absurd)
                # the server is still there after the errors
                assert len(_data(await session.call_tool("runs_list", {}))) == 1
        except BaseException:
            print(log.read_text())
            raise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _http_server(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "http.log").open("wb")
    argv = [sys.executable, *CLI, "mcp", "--transport", "http", "--port", str(port), "--llm", LLM]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=_env(tmp_path), cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.returncode}: {(tmp_path / 'http.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no server on port {port}: {(tmp_path / 'http.log').read_text()}") from None
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


async def test_http_server_solves_over_streamable_http(tmp_path: Path) -> None:
    port = _free_port()
    with _http_server(tmp_path, port) as proc:
        async with asyncio.timeout(60), _session(streamable_http_client(f"http://127.0.0.1:{port}/mcp")) as session:
            run_id = await _exercise(session)
        # a second client sees the first one's run: the store is shared, not per session
        async with asyncio.timeout(30), _session(streamable_http_client(f"http://127.0.0.1:{port}/mcp")) as session:
            assert _data(await session.call_tool("run_show", {"run_id": run_id}))["status"] == "done"
        assert proc.poll() is None


def _tools(**kw: Any) -> LongthinkTools:
    return LongthinkTools(llm=arithmetic_llm(), store=MemoryStore(), settings=load_settings(), **kw)


async def test_tools_validate_their_inputs() -> None:
    tools = _tools()
    for bad in (0, -1, 501):
        with pytest.raises(ToolError, match="limit must be between 1 and 500"):
            tools.runs_list(limit=bad)
    with pytest.raises(ToolError, match="status must be one of running, .*not 'finished'"):
        tools.runs_list(status="finished")
    with pytest.raises(ToolError, match="run_id must be a non-empty"):
        tools.run_show(" ")
    with pytest.raises(ToolError, match="unknown strategy 'bestofn'; did you mean 'best_of_n'"):
        await tools.solve("What is 1 + 1?", strategy="bestofn")
    with pytest.raises(ToolError, match="unknown domain 'nope'"):
        await tools.solve("What is 1 + 1?", domain="nope")
    with pytest.raises(ToolError, match="budget_tokens must be >= 1"):
        await tools.solve("What is 1 + 1?", budget_tokens=0)
    assert tools.runs_list() == []


async def test_solve_takes_the_server_budget_unless_the_call_names_one() -> None:
    tools = _tools(budget_tokens=50)  # a tight budget: the run plans and samples less
    small = await tools.solve("What is 17 + 25?")
    big = await tools.solve("What is 17 + 25?", budget_tokens=4000)
    assert big["status"] == "done" and big["answer"] == "42"
    assert small["spend"]["completion_tokens"] < big["spend"]["completion_tokens"]
    assert {r["run_id"] for r in tools.runs_list(status=big["status"])} >= {big["run_id"]}


def test_cli_without_the_server_extra_says_which_to_install(tmp_path: Path) -> None:
    """`import longthink.cli` needs no MCP SDK; the command names the extra instead of a traceback."""
    code = "import sys; sys.modules['mcp'] = None; from longthink.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "mcp", "--llm", LLM],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path),
        cwd=ROOT,
    )
    assert proc.returncode == 2, proc.stderr
    assert "longthink[server]" in proc.stderr


def test_cli_rejects_a_bad_transport(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, *CLI, "mcp", "--transport", "carrier-pigeon", "--llm", LLM],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(tmp_path),
        cwd=ROOT,
    )
    assert proc.returncode == 2 and "must be stdio or http" in proc.stderr


def test_readme_mcp_commands_use_real_options() -> None:
    """The README's `longthink mcp` lines (not executed: a server runs until stopped) name only real options."""
    from typer.testing import CliRunner

    from longthink.cli import app

    help_text = CliRunner().invoke(app, ["mcp", "--help"], env={"COLUMNS": "200"}).output
    lines = [ln.strip() for ln in re.findall(r"^\s*longthink mcp.*$", (ROOT / "README.md").read_text(), re.M)]
    assert lines, "the README shows `longthink mcp`"
    for line in lines:
        for option in (a.split("=")[0] for a in shlex.split(line, comments=True) if a.startswith("--")):
            assert option in help_text, f"{option} in README line {line!r} is not an option of longthink mcp"
