"""The debugging pack end to end on the embedded default model (Qwen2.5-Coder-0.5B): a tiny buggy function with a
failing test ends with a patch that passes the tests, or with a clear failure whose candidates are all in the
store."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.config import load_settings
from longthink.domains.debugging.pipeline import DebuggingPipeline
from longthink.domains.debugging.repair import RepairSettings
from longthink.domains.pipeline import attach_files
from longthink.domains.registry import REGISTRY, DomainRegistry
from longthink.store import open_store

pytestmark = pytest.mark.real_model

CODE = "def is_even(n):\n    return n % 2 == 1\n"
TESTS = "from parity import is_even\n\n\ndef test_even():\n    assert is_even(4)\n\n\ndef test_odd():\n    assert not is_even(7)\n"


def test_debugging_pack_on_the_embedded_model(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    settings = load_settings(n_threads=1, db_url=db)
    small = DebuggingPipeline(RepairSettings(n=4, rounds=1, parents=1, children=2, max_tokens=160))
    domains = DomainRegistry([dataclasses.replace(REGISTRY.get("debugging"), pipeline=small)])
    options = AgentOptions(domain="debugging", budget_tokens=4000, seed=0, artifacts_dir=str(tmp_path / "art"))
    agent = Agent(settings=settings, options=options, checkpoints=None, domains=domains)
    request = attach_files("is_even is wrong, fix it.", {"parity.py": CODE, "test_parity.py": TESTS})
    start = time.perf_counter()
    try:
        result = agent.solve(request, run_id="dbg-real")
    finally:
        agent.close()
    elapsed = time.perf_counter() - start
    assert result.steps["reproduce"].answer == "0/2 tests pass"
    patch = result.steps["patch"]
    store = open_store(db)
    try:
        detail = store.get_run("dbg-real")
    finally:
        store.close()
    assert detail is not None
    candidates = detail.candidates_of("patch")
    assert len(candidates) >= 4 and all(detail.scores_of(c.id) for c in candidates)
    if result.steps["validate"].verified:
        assert result.status == "done" and (result.answer or "").startswith("**Fixed")
        assert "```diff" in (result.answer or "") and "2/2 tests pass" in (result.answer or "")
    else:  # a clear failure, with what was tried on record
        assert patch.verified is False and patch.reason and result.status != "done"
    print(f"\ndebugging pack on the embedded model: {elapsed:.1f}s, status {result.status}, "
          f"{len(candidates)} patch candidates; patch: {patch.reason}")  # fmt: skip


EXAMPLE = Path(__file__).resolve().parent.parent / "domains" / "debugging" / "examples" / "shop"


def test_cli_repo_on_the_embedded_model(tmp_path: Path) -> None:
    """`longthink solve --domain debugging --repo` on the README's example project (a bug in shop/prices.py that the
    tests reach through shop/cart.py): the tests run with pytest in the sandbox, the localisation names
    parse_price from the tracebacks, every patch candidate is scored, and a fix is a diff that `git apply` takes
    in a copy of the project, after which the project's suite passes."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    env = {**os.environ, "LONGTHINK_N_THREADS": "1", "LONGTHINK_CONFIG": str(tmp_path / "none.toml"),
           "LONGTHINK_DB_URL": f"sqlite:///{tmp_path / 'runs.db'}"}  # fmt: skip
    cli = Path(sys.executable).parent / "longthink"
    argv = [str(cli), "solve", "--domain", "debugging", "--repo", str(EXAMPLE), "--json",
            "Prices with a dollar sign crash; fix the bug"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, check=False)
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    steps = result["steps"]
    assert steps["reproduce"]["answer"] == "1/7 tests pass"
    assert steps["localise"]["data"]["suspects"][0] == "shop/prices.py::parse_price"
    patch = steps["patch"]
    print(f"\n--repo on the embedded model: {elapsed:.1f}s, status {result['status']}; patch: {patch['reason']}")
    if not steps["validate"]["verified"]:  # a clear failure, with what was tried
        assert result["status"] != "done" and patch["reason"]
        return
    assert patch["data"]["files"] == ["shop/prices.py"] and result["status"] == "done"
    project = tmp_path / "shop"
    shutil.copytree(EXAMPLE, project)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (tmp_path / "fix.diff").write_text(patch["data"]["diff"])
    subprocess.run(["git", "apply", str(tmp_path / "fix.diff")], cwd=project, check=True)
    suite = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(project / "tests")],
                           cwd=project, capture_output=True, text=True, check=False)  # fmt: skip
    assert suite.returncode == 0, suite.stdout[-1500:]
