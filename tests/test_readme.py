"""The README's commands and code are executed, so the front door stays true."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.real_model


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _cli_commands() -> list[list[str]]:
    """Every `.venv/bin/longthink ...` invocation in the README's bash blocks (install steps are CI's job)."""
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part.startswith(".venv/bin/longthink"):
                    argv = shlex.split(part)
                    argv[0] = str(BIN / "longthink")
                    commands.append(argv)
    return commands


def test_readme_has_the_documented_commands() -> None:
    names = [c[1] for c in _cli_commands()]
    assert names.count("generate") >= 2 and "models" in names and "config" in names
    assert "bash .ci/run" in README and ".venv/bin/python -m pytest" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest" in ci


@pytest.mark.parametrize("argv", _cli_commands(), ids=lambda a: " ".join(a[1:3]))
def test_readme_cli_command_runs(argv: list[str], tmp_path: Path) -> None:
    env = {**os.environ, "LONGTHINK_N_THREADS": "1", "LONGTHINK_CONFIG": str(tmp_path / "none.toml")}
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    if argv[1] == "generate":
        assert "tok/s" in proc.stdout
    if argv[1] == "models":
        assert "qwen2.5-coder-0.5b-instruct" in proc.stdout.replace("\n", "")


def test_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    [code] = [b for b in _blocks("python") if "build_llm" in b]
    monkeypatch.setenv("LONGTHINK_N_THREADS", "1")
    monkeypatch.setenv("LONGTHINK_CONFIG", "/nonexistent/config.toml")
    monkeypatch.delenv("LONGTHINK_ENDPOINTS", raising=False)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 9  # eight completions and the usage line
    assert out[-1].startswith("Usage(") and "completions=8" in out[-1]
    namespace["llm"].close()  # type: ignore[attr-defined]


def test_readme_search_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    [code] = [b for b in _blocks("python") if "make_strategy" in b and 'mode="program"' not in b]
    monkeypatch.setenv("LONGTHINK_N_THREADS", "1")
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out.strip()
    answer, rest = out.split(" ", 1)
    votes_text, stopped, tokens = rest.rsplit(" ", 2)
    votes = ast.literal_eval(votes_text)  # the printed dict of votes
    assert answer in votes and votes[answer] == max(votes.values())  # the vote's leader is the answer
    assert stopped in ("decided", "confident", "budget", "None")
    assert 0 < int(tokens) <= 2000 + 4 * 160  # the budget, plus at most one request


def test_readme_financial_model_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    [code] = [b for b in _blocks("python") if "FinancialModel" in b]
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert out.startswith("False\n")
    documented = re.search(r"```\n(\| \| Baseline.*?)```", README, flags=re.S)
    assert documented is not None
    for line in documented.group(1).splitlines():  # the README shows the tool's real output
        assert line.strip() in out, line


@pytest.mark.slow
def test_readme_agent_example_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    [code] = [b for b in _blocks("python") if "Agent(" in b and "astream" not in b]
    monkeypatch.setenv("LONGTHINK_N_THREADS", "1")
    monkeypatch.setenv("LONGTHINK_DB_URL", f"sqlite:///{tmp_path / 'runs.db'}")
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].answer  # type: ignore[attr-defined]


def test_readme_run_handle_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The run-handle example: typed events in sequence, then the result with one outcome per step."""
    [code] = [b for b in _blocks("python") if "astream" in b]
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.strip().splitlines()
    kinds = [line.split()[1] for line in lines[:-1]]
    assert kinds[0] == "run_started" and kinds[-1] == "answer" and "step_finished" in kinds
    assert [int(line.split()[0]) for line in lines[:-1]] == list(range(1, len(lines)))
    assert lines[-1] == "unverified 42 {'s1': 'unverified'}"  # the double's prose: nothing could check it


def test_readme_program_mode_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Program mode with the committed learned verifier: four executed candidates, each with a score."""
    [code] = [b for b in _blocks("python") if 'mode="program"' in b]
    monkeypatch.setenv("LONGTHINK_N_THREADS", "1")
    monkeypatch.chdir(ROOT)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("answer: ")
    for line in lines[:4]:
        value = float(line.rsplit(" ", 1)[1])
        assert 0.0 <= value <= 1.0
