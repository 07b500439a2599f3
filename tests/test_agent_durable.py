"""Durable execution: a run killed mid-way is resumed by id from its checkpoint and finishes, with no
duplicated candidates in the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import agent_job

from longthink.store import open_store

HERE = Path(__file__).resolve().parent


def test_killed_run_resumes_by_id_without_duplicates(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    ckpt = str(tmp_path / "checkpoints.sqlite")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "agent_job.py"), db, ckpt, "run-k", "s2"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE)},
    )
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if "SLOW STEP STARTED" in line:
            break
    else:
        proc.kill()
        raise AssertionError("the slow step never started")
    time.sleep(0.5)  # let the store writer flush the events before the kill
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    store = open_store(db)
    before = store.get_run("run-k")
    store.close()
    assert before is not None
    assert {s.id for s in before.steps} >= {"s1"}
    s1_candidates = [c.id for c in before.candidates if c.step_id == "s1"]
    assert s1_candidates

    # resume by id in a fresh process-like agent; the slow step now runs fast
    agent_job.SLOW = ""
    agent = agent_job.agent(db, ckpt)
    result = agent.resume("run-k")
    agent.close()
    assert result.status == "unverified" and result.answer == "360"

    store = open_store(db)
    after = store.get_run("run-k")
    store.close()
    assert after is not None
    ids = [c.id for c in after.candidates]
    assert len(ids) == len(set(ids)), "duplicated candidates after resume"
    assert sorted(c.id for c in after.candidates if c.step_id == "s1") == sorted(s1_candidates)
    assert {s.id for s in after.steps} >= {"s1", "s2", "s3"}
    seqs = [e.seq for e in after.events] if hasattr(after, "events") else []
    assert len(seqs) == len(set(seqs))
