"""What Ray costs over a local process pool for ``longthink batch``: the same GSM8K requests through both runners of
:mod:`longthink.batch`, side by side, every run written to one PostgreSQL store.

    .venv/bin/python benchmarks/batch.py                               # 200 requests x 2 repetitions per runner
    .venv/bin/python benchmarks/batch.py --n 20 --reps 1 --out /tmp/batch.json

The backend is the test backend (:class:`longthink.testing.FunctionLLM`, through the real post-processing) with a
plan of two steps, answering every step and the synthesis with the question's GSM8K reference answer, so that every
run goes through planning, both steps, verification and the synthesis and ends done without a model
(``arithmetic_llm`` reads explicit arithmetic only, which GSM8K's word problems lack: its runs would end failed).
The tasks name the domain ``general`` (a few GSM8K questions read like a routing problem to the detector).
Each model call takes ``--delay-s`` (0.02 s, without blocking) to stand in for a model's latency. The workers build
it from ``--llm batch:gsm8k_llm`` (this file), reading the answers from a JSON file named by
``$LONGTHINK_BENCH_ANSWERS``.

Both runners get ``--workers`` (2) workers: the pool that many spawned processes, Ray a local instance with that many
CPUs and that many tasks in flight. Each repetition runs both (the order alternating, ABBA..., so that drift of this
shared machine hits both alike) on their own copy of the tasks (ids suffixed with the runner and the repetition, so
each is a new run of the same store). ``wall_s`` is :func:`~longthink.batch.run_batch`'s wall time, from reading the
store's finished runs to the last result: for the pool it includes starting its processes (a new pool per batch), for
Ray the submissions and its workers' start in the first repetition (they stay up afterwards), not ``ray.init``
(``ray_init_s``: a cluster is usually running already). ``ray_overhead_ratio`` is the mean Ray wall time over the
mean pool wall time; ``rerun_s`` the time of a rerun of the first batch, every task skipped.

The store is a fresh schema of the PostgreSQL server at ``--pg-admin`` (dropped at the end), or ``--db URL``.
Writes ``benchmarks/results/batch.json`` (``summary``, every batch's figures, ``provenance``) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

from longthink.llm.types import SamplingParams
from longthink.testing import FunctionLLM

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ANSWERS_ENV = "LONGTHINK_BENCH_ANSWERS"
FACTORY = "batch:gsm8k_llm"
RUNNERS = ("pool", "ray")
SUMMARY_KEYS = ("requests", "repetitions", "errors", "wrong", "pool_wall_s", "ray_wall_s", "pool_requests_per_s",
                "ray_requests_per_s", "ray_overhead_ratio", "ray_init_s")  # fmt: skip
_PLAN = {
    "steps": [
        {"id": "s1", "goal": "Read the quantities and what the question asks", "answer_kind": "text"},
        {"id": "s2", "goal": "Compute the answer", "answer_kind": "number", "depends_on": ["s1"]},
    ]
}


# -- the backend the workers build --------------------------------------------------------------------------------
def gsm8k_llm() -> FunctionLLM:
    """The test backend for GSM8K (see the module docstring); each call takes ``$LONGTHINK_TEST_DELAY_S``."""
    answers: dict[str, str] = json.loads(Path(os.environ[ANSWERS_ENV]).read_text())

    def reply(text: str, params: SamplingParams, index: int) -> str:
        if "careful planner" in text:
            return json.dumps(_PLAN)
        if "Reply with a single digit" in text:
            return "5"
        found = next((a for q, a in answers.items() if q in text), "?")
        if "Write the final answer" in text:  # the synthesis: the answer alone, whatever kind the agent expects
            return found
        return f"From the question's quantities the result is {found}. Answer: {found}"

    return FunctionLLM(reply, model="gsm8k-reference", delay_s=float(os.environ.get("LONGTHINK_TEST_DELAY_S", "0")))


# -- figures ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    n: int = 200
    reps: int = 2
    workers: int = 2
    delay_s: float = 0.02
    pg_admin: str = PG_ADMIN
    db: str | None = None
    out: Path = RESULTS / "batch.json"


def figures(runner: str, rep: int, summary: Any, references: dict[str, str]) -> dict[str, Any]:
    """One batch's figures: wall time, requests per second, failed tasks, done tasks with a wrong answer."""
    results = summary.results
    wrong = sum(r.state == "done" and (r.answer or "").strip() != references[r.id.rsplit("@", 1)[0]] for r in results)
    return {
        "runner": runner, "rep": rep, "requests": len(results), "wall_s": round(summary.seconds, 3),
        "requests_per_s": round(len(results) / summary.seconds, 2), "done": summary.done, "failed": summary.failed,
        "skipped": summary.skipped, "wrong": wrong,
        "task_s_mean": round(statistics.fmean(r.seconds for r in results), 4) if results else None,
        "workers_used": len({r.worker for r in results if r.worker is not None}),
        "errors": sorted({str(r.error) for r in results if r.state == "failed"})[:5],
    }  # fmt: skip


def summarize(batches: Sequence[dict[str, Any]], ray_init_s: float) -> dict[str, Any]:
    """The summary over every batch (see the module docstring): mean wall times and their ratio."""
    walls = {r: [b["wall_s"] for b in batches if b["runner"] == r] for r in RUNNERS}
    mean = {r: statistics.fmean(w) if w else None for r, w in walls.items()}
    requests = batches[0]["requests"] if batches else 0
    pool, ray = mean["pool"], mean["ray"]
    return {
        "requests": requests, "repetitions": min(len(w) for w in walls.values()),
        "errors": sum(b["failed"] for b in batches), "wrong": sum(b["wrong"] for b in batches),
        "pool_wall_s": None if pool is None else round(pool, 3), "ray_wall_s": None if ray is None else round(ray, 3),
        "pool_requests_per_s": None if not pool else round(requests / pool, 2),
        "ray_requests_per_s": None if not ray else round(requests / ray, 2),
        "ray_overhead_ratio": None if not (pool and ray) else round(ray / pool, 3),
        "ray_init_s": round(ray_init_s, 2),
    }  # fmt: skip


def order(reps: int) -> list[tuple[int, str]]:
    """ABBA...: (repetition, runner) with the runner going first alternating."""
    return [(rep, r) for rep in range(reps) for r in (RUNNERS if rep % 2 == 0 else RUNNERS[::-1])]


def table(batches: Sequence[dict[str, Any]], summary: dict[str, Any]) -> str:
    rows = ["| runner | rep | requests | done | failed | wrong | wall s | requests/s | mean task s |", "|---" * 9 + "|"]
    for b in batches:
        rows.append(f"| {b['runner']} | {b['rep']} | {b['requests']} | {b['done']} | {b['failed']} | {b['wrong']} | "
                    f"{b['wall_s']} | {b['requests_per_s']} | {b['task_s_mean']} |")  # fmt: skip
    rows.append(f"\nray_overhead_ratio (mean Ray wall / mean pool wall): {summary['ray_overhead_ratio']}")
    return "\n".join(rows)


# -- running ------------------------------------------------------------------------------------------------------
@contextmanager
def fresh_schema(admin_url: str) -> Iterator[str]:
    """A new schema of the PostgreSQL server, first on the URL's search path; dropped afterwards."""
    import sqlalchemy as sa

    schema = f"bench_batch_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{admin_url}{'&' if '?' in admin_url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def local_datasets() -> Any:
    """``benchmarks/datasets.py`` under a private name (``datasets`` may be the Hugging Face package already)."""
    import importlib.util

    found = sys.modules.get("bench_datasets")
    if found is None:
        spec = importlib.util.spec_from_file_location("bench_datasets", HERE / "datasets.py")
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load {HERE / 'datasets.py'}")
        found = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = found
        spec.loader.exec_module(found)
    return found


def question_of(problem: Any) -> str:
    """The GSM8K question of a loaded problem (its user message without the answer-format instruction)."""
    text = problem.prompt if isinstance(problem.prompt, str) else problem.prompt[-1].content
    return str(text).removesuffix(local_datasets().GSM8K_INSTRUCTION).strip()


def run(cfg: Config, db_url: str, tmp: Path) -> dict[str, Any]:
    import ray

    from longthink.batch import BatchOptions, WorkerSpec, parse_tasks, run_batch
    from longthink.config import load_settings

    problems = local_datasets().load_gsm8k(cfg.n)
    references = {p.id: str(p.reference) for p in problems}
    questions = {p.id: question_of(p) for p in problems}
    answers = tmp / "answers.json"
    answers.write_text(json.dumps({q: references[pid] for pid, q in questions.items()}))
    # what the workers need: this folder importable (Ray's workers read PYTHONPATH), the answers, the latency
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
    os.environ[ANSWERS_ENV] = str(answers)
    os.environ["LONGTHINK_TEST_DELAY_S"] = str(cfg.delay_s)
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))  # the pool's spawned workers take this process's sys.path
    spec = WorkerSpec(settings=load_settings(db_url=db_url), llm=FACTORY)
    started = not ray.is_initialized()
    t0 = time.perf_counter()
    if started:
        ray.init(num_cpus=cfg.workers, include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - t0
    batches: list[dict[str, Any]] = []
    first: tuple[Any, Any] | None = None
    try:
        for rep, runner in order(cfg.reps):
            lines = [json.dumps({"id": f"{pid}@{runner}{rep}", "request": q, "domain": "general"})
                     for pid, q in questions.items()]  # fmt: skip
            tasks = parse_tasks(lines, source=f"{runner}{rep}")
            options = BatchOptions(workers=cfg.workers, ray=runner == "ray")
            summary = run_batch(spec, tasks, options)
            batches.append(figures(runner, rep, summary, references))
            print(
                f"{runner} rep {rep}: {summary.done} done, {summary.failed} failed in {summary.seconds:.1f}s",
                flush=True,
            )
            first = first or (tasks, options)
        rerun = run_batch(spec, *first) if first else None
    finally:
        if started:
            ray.shutdown()
    summary = summarize(batches, ray_init_s)
    return {"summary": summary, "batches": batches,
            "rerun": None if rerun is None or first is None else {
                "runner": "ray" if first[1].ray else "pool", "requests": len(rerun.results),
                "skipped": rerun.skipped, "rerun_s": round(rerun.seconds, 3)}}  # fmt: skip


def parse(argv: Sequence[str] | None = None) -> Config:
    d = Config()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=d.n, help="GSM8K test questions")
    ap.add_argument("--reps", type=int, default=d.reps, help="batches per runner")
    ap.add_argument("--workers", type=int, default=d.workers, help="pool processes = Ray CPUs = tasks in flight")
    ap.add_argument("--delay-s", type=float, default=d.delay_s, help="seconds each model call takes")
    ap.add_argument("--pg-admin", default=d.pg_admin, help="the PostgreSQL server a fresh schema is made on")
    ap.add_argument("--db", default=None, help="a store URL to use instead of a fresh schema")
    ap.add_argument("--out", type=Path, default=d.out)
    a = ap.parse_args(argv)
    if a.n < 1 or a.reps < 1 or a.workers < 1 or a.delay_s < 0:
        ap.error("--n, --reps and --workers must be >= 1, --delay-s >= 0")
    return Config(n=a.n, reps=a.reps, workers=a.workers, delay_s=a.delay_s, pg_admin=a.pg_admin, db=a.db, out=a.out)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    cfg = parse(argv)
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmpdir:
        if cfg.db is not None:
            result = run(cfg, cfg.db, Path(tmpdir))
        else:
            with fresh_schema(cfg.pg_admin) as url:
                result = run(cfg, url, Path(tmpdir))
    store = cfg.db.split(":", 1)[0] + " (--db)" if cfg.db else "postgresql (a fresh schema)"
    settings = {
        **vars(cfg),
        "db": None if cfg.db is None else "given",
        "pg_admin": re.sub(r"://[^/]*@", "://", cfg.pg_admin),
    }
    result["provenance"] = provenance(settings, store=store, backend=FACTORY)
    result["machine"] = {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
    }  # fmt: skip
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(result["batches"], result["summary"]))
    print(f"\nsummary: {result['summary']}\nwrote {cfg.out}")
    return result


if __name__ == "__main__":
    main()
