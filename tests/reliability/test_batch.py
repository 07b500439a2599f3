"""``longthink batch``: the task file's validation, a local process pool and Ray (a local instance with 2 CPUs) writing
one store, reruns that skip finished tasks, workers killed mid-task whose runs resume, a dead endpoint replica."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from batch_llms import BROKEN, KILL_MARKER, VICTIM
from servers import Reply, ScriptedServer, openai_reply

from longthink.agents.options import AgentOptions
from longthink.batch import BatchOptions, BatchTask, WorkerSpec, parse_tasks, read_tasks, run_batch
from longthink.config import load_settings
from longthink.errors import ConfigError
from longthink.llm.types import Message, SamplingParams
from longthink.testing import arithmetic_llm, prompt_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
FAULTY = "batch_llms:faulty_llm"
ARITHMETIC = "longthink.testing:arithmetic_llm"


def task_lines(n: int, *, victim: bool = False) -> list[str]:
    lines = [json.dumps({"id": f"q{i}", "request": f"What is {i} + {2 * i + 1}?"}) for i in range(n)]
    if victim:
        lines.append(json.dumps({"id": "victim", "request": f"What is 40 + 2? {VICTIM}"}))
    return lines


def expected(task: BatchTask) -> str:
    a, b = (int(x) for x in re.findall(r"\d+", task.request)[:2])
    return str(a + b)


def spec(db_url: str, llm: str = ARITHMETIC) -> WorkerSpec:
    return WorkerSpec(settings=load_settings(db_url=db_url), llm=llm)


def counts(db_url: str) -> dict[str, int]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                t: conn.execute(sa.text(f"select count(*) from {t}")).scalar_one()
                for t in ("runs", "events", "candidates", "steps")
            }
    finally:
        engine.dispose()


def check_no_duplicates(db_url: str, victim_run: str, clean_run: str) -> None:
    """The resumed run's record looks like a clean run's: contiguous event numbers, and as many steps, candidates and
    candidate texts per step as a run of the same shape that was never interrupted."""
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            seqs = (
                conn.execute(sa.text("select seq from events where run_id = :r order by seq"), {"r": victim_run})
                .scalars()
                .all()
            )
            assert seqs == list(range(1, len(seqs) + 1))
            per_run = {}
            for run in (victim_run, clean_run):
                rows = conn.execute(
                    sa.text(
                        'select step_id, count(*), count(distinct "index") from candidates where run_id = :r group by step_id order by step_id'
                    ),
                    {"r": run},
                ).all()
                steps = conn.execute(sa.text("select count(*) from steps where run_id = :r"), {"r": run}).scalar_one()
                kinds = conn.execute(
                    sa.text(
                        "select kind, count(*) from events where run_id = :r and kind in ('answer', 'plan_selected') group by kind"
                    ),
                    {"r": run},
                ).all()
                per_run[run] = (sorted(tuple(r) for r in rows), steps)
                assert dict(kinds) == {"answer": 1, "plan_selected": 1}, run
                assert all(total == distinct for _, total, distinct in rows), rows  # one row per candidate index
            assert per_run[victim_run] == per_run[clean_run]
            resumed = conn.execute(
                sa.text("select count(*) from events where run_id = :r and kind = 'run_resumed'"), {"r": victim_run}
            ).scalar_one()
            assert resumed == 1
    finally:
        engine.dispose()


# -- the task file ------------------------------------------------------------------------------------------------
def test_a_bad_task_file_names_every_bad_line() -> None:
    lines = [
        '{"id": "a", "request": "What is 1 + 1?"}',
        "",
        '{"id": "a", "request": "What is 2 + 2?"}',
        '{"reqest": "x"}',
        "[1, 2]",
        "{not json",
        '{"request": "   "}',
        '{"request": "x", "strategy": "beem"}',
        '{"request": "x", "budget": 0}',
        '{"request": "x", "domain": "routng"}',
        '{"request": "x", "id": true}',
    ]
    with pytest.raises(ConfigError) as info:
        parse_tasks(lines, source="t.jsonl")
    message = str(info.value)
    assert message.startswith("t.jsonl: 9 bad line(s): ")
    for needle in (
        "line 3: duplicate id 'a' (first on line 1)",
        "line 4: unknown field 'reqest' (did you mean 'request'?)",
        "line 5: a task is a JSON object, not list",
        "line 6: not JSON",
        "line 7: 'request' must be a non-empty string",
        "line 8: unknown strategy 'beem'; did you mean 'beam'",
        "line 9: 'budget' must be a positive integer",
        "line 10: unknown domain 'routng'; did you mean 'routing'",
        "line 11: 'id' must be",
    ):
        assert needle in message
    with pytest.raises(ConfigError, match="no tasks"):
        parse_tasks(["", "  "], source="empty.jsonl")


def test_ids_and_run_ids_are_stable_and_follow_the_task() -> None:
    first = parse_tasks(['{"request": "What is 1 + 1?"}', '{"id": 7, "request": "What is 2 + 2?", "budget": 900}'])
    again = parse_tasks(["", '{"budget": 900, "request": "What is 2 + 2?", "id": "7"}', '{"request":"What is 1 + 1?"}'])
    assert {t.id: t.run_id for t in first} == {t.id: t.run_id for t in again}  # key order, spacing, line: no matter
    assert first[0].id.startswith("t-") and first[1].id == "7" and again[1].line == 3
    assert all(re.fullmatch(r"batch-[0-9a-f]{24}", t.run_id) for t in first)
    changed = parse_tasks(['{"id": 7, "request": "What is 2 + 2?", "budget": 1000}'])
    assert changed[0].run_id != first[1].run_id  # a changed task is a new run
    assert first[1].options(AgentOptions()).budget_tokens == 900


def test_the_cli_refuses_a_bad_file_before_anything_runs(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"request": "What is 1 + 1?"}\n{"request": 5}\n')
    db = tmp_path / "runs.db"
    proc = subprocess.run([str(BIN / "longthink"), "batch", str(tasks), "--db", f"sqlite:///{db}", "--llm", ARITHMETIC],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 2
    assert "1 bad line(s): line 2: 'request' must be a non-empty string" in " ".join(proc.stderr.split())
    assert not db.exists()


def test_ray_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as when it is not installed
    db = tmp_path / "runs.db"
    with pytest.raises(ConfigError, match=re.escape("pip install 'longthink[ray]'")):
        run_batch(spec(f"sqlite:///{db}"), parse_tasks(task_lines(1)), BatchOptions(ray=True))
    assert not db.exists()


# -- the local pool -----------------------------------------------------------------------------------------------
def test_the_cli_runs_a_file_on_a_local_pool_and_a_rerun_skips_every_task(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n".join(task_lines(5)) + "\n")
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    argv = [str(BIN / "longthink"), "batch", str(tasks), "--db", url, "--llm", ARITHMETIC, "--workers", "2", "--json"]
    first = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert (summary["done"], summary["failed"], summary["skipped"], summary["in_flight"]) == (5, 0, 0, 2)
    by_id = {t.id: t for t in read_tasks(tasks)}
    for r in summary["results"]:
        assert r["answer"] == expected(by_id[r["id"]]) and r["run_id"] == by_id[r["id"]].run_id
    assert all(r["worker"] and not r["resumed"] for r in summary["results"])
    rows = counts(url)
    assert rows["runs"] == 5 and rows["candidates"] > 0

    again = subprocess.run(argv[:-1], capture_output=True, text=True, timeout=180)  # with the progress bar
    assert again.returncode == 0, again.stderr
    assert "5 tasks: 0 done, 0 failed, 5 skipped" in again.stdout
    assert "5 skipped" in again.stderr  # the progress bar's description
    assert counts(url) == rows  # nothing written again


def test_a_failing_task_is_recorded_and_the_others_finish_and_a_rerun_tries_it_again(tmp_path: Path) -> None:
    tasks = parse_tasks([*task_lines(2), json.dumps({"id": "broke", "request": f"What is 1 + 1? {BROKEN}"})])
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    summary = run_batch(spec(url, FAULTY), tasks, BatchOptions(workers=2))
    assert [(r.state, r.answer) for r in summary.results[:2]] == [("done", "1"), ("done", "4")]
    broke = summary.results[2]
    assert broke.state == "failed" and broke.status is None and "BackendError" in str(broke.error)
    assert "this request always fails" in str(broke.error) and not broke.resumed
    assert (summary.done, summary.failed, summary.skipped) == (2, 1, 0)

    again = run_batch(spec(url, FAULTY), tasks, BatchOptions(workers=2))
    assert [r.state for r in again.results] == ["skipped", "skipped", "failed"]
    assert again.results[2].resumed  # the interrupted run was resumed from its checkpoint, and failed again


def test_a_worker_killed_mid_task_in_the_local_pool_is_resumed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_MARKER, str(marker))
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    tasks = parse_tasks(task_lines(3, victim=True))
    seen: list[Any] = []
    summary = run_batch(spec(url, FAULTY), tasks, BatchOptions(workers=2), on_result=seen.append)
    assert marker.exists(), "the victim's worker was never killed"
    assert [r.state for r in summary.results] == ["done"] * 4 and len(seen) == 4
    victim = summary.results[-1]
    assert victim.answer == "42" and victim.resumed and victim.worker != int(marker.read_text())
    check_no_duplicates(url, victim.run_id, summary.results[0].run_id)


def test_a_dead_endpoint_replica_is_skipped(tmp_path: Path) -> None:
    backend = arithmetic_llm()

    def respond(path: str, body: Any) -> Reply:
        """What an OpenAI-compatible server of the test backend answers (logprobs: one per word, when asked)."""
        if not path.endswith("/chat/completions"):
            return openai_reply(path, body)
        text = backend.reply(
            prompt_text(tuple(Message(m["role"], m["content"]) for m in body["messages"])), SamplingParams(), 0
        )
        words = re.findall(r"\S+\s*", text)
        n, top = int(body.get("n") or 1), int(body.get("top_logprobs") or 0)
        choice: dict[str, Any] = {"finish_reason": "stop", "message": {"role": "assistant", "content": text}}
        if body.get("logprobs"):
            choice["logprobs"] = {
                "content": [
                    {"token": w, "logprob": -0.1, "top_logprobs": [{"token": w, "logprob": -0.1}][:top]} for w in words
                ]
            }
        usage = {"prompt_tokens": 5, "completion_tokens": len(words) * n, "total_tokens": 5 + len(words) * n}
        return Reply(body={"id": "x", "object": "chat.completion", "model": "scripted-model", "usage": usage,
                           "choices": [{"index": i, **choice} for i in range(n)]})  # fmt: skip

    with ScriptedServer(respond) as live:
        dead = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, connections are refused
        settings = load_settings(db_url=f"sqlite:///{tmp_path / 'runs.db'}", endpoints=[dead, live.base_url],
                                 model="scripted-model", max_retries=0)  # fmt: skip
        tasks = parse_tasks(task_lines(3))
        options = BatchOptions(per_endpoint=1)  # each worker's first request goes to the dead replica (no retries)
        assert options.in_flight(WorkerSpec(settings=settings)) == 2
        summary = run_batch(WorkerSpec(settings=settings), tasks, options)
    assert [(r.state, r.answer) for r in summary.results] == [("done", expected(t)) for t in tasks], summary.results
    assert len(live.posts()) >= 5 * len(tasks)  # every model call of every run reached the live replica


# -- Ray ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray instance with 2 CPUs for the module; its workers import ``batch_llms`` and kill on the marker file
    this yields."""
    ray = pytest.importorskip("ray")
    marker = tmp_path_factory.mktemp("ray") / "killed"
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", KILL_MARKER)}
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), saved["PYTHONPATH"]) if p)
    os.environ[KILL_MARKER] = str(marker)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield marker
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_ray_writes_one_postgres_store_and_a_killed_worker_s_task_is_retried(local_ray: Path, pg_url: str) -> None:
    tasks = parse_tasks(task_lines(5, victim=True))
    summary = run_batch(spec(pg_url, FAULTY), tasks, BatchOptions(ray=True, workers=2))
    assert local_ray.exists(), "the victim's worker was never killed"
    assert summary.runner == "ray" and summary.in_flight == 2
    assert [(r.state, r.answer) for r in summary.results] == [("done", expected(t)) for t in tasks]
    victim = summary.results[-1]
    assert victim.resumed and victim.worker != int(local_ray.read_text())
    check_no_duplicates(pg_url, victim.run_id, summary.results[0].run_id)
    rows = counts(pg_url)
    assert rows["runs"] == 6

    again = run_batch(spec(pg_url, FAULTY), tasks, BatchOptions(ray=True, workers=2))
    assert (again.skipped, again.in_flight) == (6, 0) and counts(pg_url) == rows


def test_the_driver_sets_up_a_new_sqlite_checkpoint_file_before_the_workers_open_it(tmp_path: Path) -> None:
    """Workers that set up a new checkpoint file together race to switch it to WAL and create its tables (one
    failed "locked" under load): the driver's ``prepare`` does it first."""
    from longthink.batch import prepare

    settings = load_settings(db_url=f"sqlite:///{tmp_path / 'runs.db'}")
    assert prepare(settings, parse_tasks(task_lines(1))) == {}
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'checkpoints.sqlite'}")
    try:
        with engine.connect() as conn:
            tables = {r[0] for r in conn.execute(sa.text("select name from sqlite_master where type = 'table'"))}
            mode = conn.execute(sa.text("pragma journal_mode")).scalar_one()
    finally:
        engine.dispose()
    assert {"checkpoints", "writes"} <= tables and mode == "wal"


# -- the README ---------------------------------------------------------------------------------------------------
def test_the_readme_batch_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    [block] = [
        b for b in re.findall(r"```bash\n(.*?)```", readme, flags=re.S) if "longthink batch" in b and "printf" in b
    ]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "LONGTHINK_DB_URL": f"sqlite:///{tmp_path / 'runs.db'}",
           "LONGTHINK_CONFIG": str(tmp_path / "none.toml")}  # fmt: skip
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, second = [line for line in proc.stdout.splitlines() if " tasks: " in line]
    assert (
        first.startswith("2 tasks: 2 done, 0 failed, 0 skipped") and "# 2 tasks: 2 done, 0 failed, 0 skipped" in block
    )
    assert second.startswith("2 tasks: 0 done, 0 failed, 2 skipped") and "# again: 2 skipped" in block
