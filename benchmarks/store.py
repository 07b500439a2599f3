"""Store overhead: what recording every event costs a search, per candidate, with the instant test backend.

    .venv/bin/python benchmarks/store.py            # ~1 minute
    .venv/bin/python benchmarks/store.py --quick    # fewer, shorter runs

Two workloads, each run with no store attached and with a StoreObserver writing to memory, a SQLite file and
the PostgreSQL server at 127.0.0.1:5432 (database ``test``, in a schema created and dropped here):

- ``sample``: ``SearchContext.sample`` with ``FunctionLLM`` (n candidates per call, each a ~290-character
  solution, plus one ``budget`` event per call) — the real path of a search, with the model taking no time.
- ``emit``: ``candidate_generated`` events emitted directly on the bus, with the same payload.

Per candidate, ``overhead_us`` is (search time with the observer - without) / candidates: what the run itself
feels (the observer's thread writes while the search goes on, so its CPU use and the GIL are included).
``end_to_end_us`` adds the final flush on close; ``writer_cpu_us`` is the CPU time of the writer thread. Each
run with a store is paired with the runs without one just before and after it (none, A, none, B, none, ...,
in a rotated order every repeat) and the median of the paired differences is taken, so that drift of this
shared machine hits every mode alike.

Writes benchmarks/results/store.json with a top-level ``summary`` and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

from longthink.events import CandidateGenerated, EventBus
from longthink.llm import SamplingParams
from longthink.search import Problem, SearchContext
from longthink.store import MemoryStore, SqlStore, Store, StoreObserver

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
GOAL_US = 50.0
WORDS = ["Let", "us", "add", "the", "numbers", "carefully", "one", "step", "at", "a", "time", "and", "check", "each"]


def reply(prompt: str, params: SamplingParams, i: int) -> str:
    body = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(56))
    return f"Step 1: {body}.\n\nAnswer: {i}"


def summary_of(i: int, text: str) -> dict[str, Any]:
    return {"id": f"p/direct.{i}", "problem_id": "p", "index": i % 8, "parent_id": None, "depth": 0, "text": text,
            "answer": str(i), "parse_error": None, "finish_reason": "stop", "prompt_tokens": 20,
            "completion_tokens": 60, "latency_s": 0.0, "model": "function", "prompt_hash": "0123456789abcdef",
            "seed": i, "mean_logprob": -0.5, "partial": False}  # fmt: skip


async def sample_workload(bus: EventBus, calls: int, n: int) -> int:
    from longthink.testing import FunctionLLM

    ctx = SearchContext(FunctionLLM(reply), seed=1, events=bus)
    problem = Problem.from_text("p", "What is 2 + 2?", answer_kind="number", max_tokens=128)
    for _ in range(calls):
        await ctx.sample(problem, n, strategy="bench")
    return calls * n


async def emit_workload(bus: EventBus, calls: int, n: int) -> int:
    text = reply("", SamplingParams(), 0)
    for i in range(calls * n):
        bus.emit(CandidateGenerated(problem_id="p", candidate=summary_of(i, text)))
    return calls * n


WORKLOADS = {"sample": sample_workload, "emit": emit_workload}


async def run_once(workload: str, store: Store | None, calls: int, n: int, batch_size: int) -> dict[str, float]:
    bus = EventBus(f"bench-{uuid.uuid4().hex[:10]}")
    observer = StoreObserver(store, bus, batch_size=batch_size) if store is not None else None
    gc.collect()
    t0 = time.perf_counter()
    candidates = await WORKLOADS[workload](bus, calls, n)
    t1 = time.perf_counter()
    pending = observer.pending if observer is not None else 0
    if observer is not None:
        observer.close()
    t2 = time.perf_counter()
    writer_cpu = observer.busy_s if observer is not None else 0.0
    if store is not None:  # everything arrived, nothing twice
        stored = store.get_run(bus.run_id)
        if stored is None or len(stored.candidates) != candidates or (observer and observer.unwritten):
            raise RuntimeError(f"the {type(store).__name__} lost candidates")
    return {"search_s": t1 - t0, "total_s": t2 - t0, "candidates": candidates, "pending_at_end": pending,
            "writer_cpu_s": writer_cpu}  # fmt: skip


def open_stores(tmp: Path, with_pg: bool) -> tuple[dict[str, Store | None], str | None]:
    stores: dict[str, Store | None] = {
        "none": None,
        "memory": MemoryStore(),
        "sqlite": SqlStore(f"sqlite:///{tmp / 'runs.db'}"),
    }
    schema = None
    if with_pg:
        schema = f"lt_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG_ADMIN)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        admin.dispose()
        stores["postgresql"] = SqlStore(f"{PG_ADMIN}?options=-csearch_path%3D{schema}")
    return stores, schema


def drop_schema(schema: str) -> None:
    admin = sa.create_engine(PG_ADMIN)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


def pg_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer and shorter runs")
    ap.add_argument("--calls", type=int, default=None, help="sample calls per run (default 600, quick 150)")
    ap.add_argument("--n", type=int, default=8, help="candidates per call")
    ap.add_argument("--repeats", type=int, default=None, help="runs per mode (default 7, quick 3)")
    ap.add_argument("--batch-size", type=int, default=2048, help="StoreObserver batch size")
    ap.add_argument("--out", type=Path, default=RESULTS / "store.json")
    args = ap.parse_args()
    calls = args.calls or (150 if args.quick else 600)
    repeats = args.repeats or (3 if args.quick else 7)
    load_start = [round(x, 2) for x in os.getloadavg()]
    pg_error = pg_reachable()
    if pg_error:
        print(f"PostgreSQL unreachable, measuring without it: {pg_error}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        stores, schema = open_stores(Path(tmp), with_pg=pg_error is None)
        modes = list(stores)
        runs: dict[str, dict[str, list[dict[str, float]]]] = {w: {m: [] for m in modes} for w in WORKLOADS}
        try:
            for workload in WORKLOADS:  # a warm-up run of each mode, not counted
                for mode in modes:
                    await run_once(workload, stores[mode], max(10, calls // 10), args.n, args.batch_size)
            with_store = [m for m in modes if m != "none"]
            for r in range(repeats):
                for workload in WORKLOADS:
                    # none, A, none, B, none, C, none: each mode is paired with the baselines around it.
                    order = with_store[r % len(with_store) :] + with_store[: r % len(with_store)]
                    before = await run_once(workload, None, calls, args.n, args.batch_size)
                    runs[workload]["none"].append(before)
                    for mode in order:
                        x = await run_once(workload, stores[mode], calls, args.n, args.batch_size)
                        after = await run_once(workload, None, calls, args.n, args.batch_size)
                        runs[workload]["none"].append(after)
                        for key in ("search_s", "total_s"):
                            x[f"{key}_delta"] = x[key] - (before[key] + after[key]) / 2
                        runs[workload][mode].append(x)
                        before = after
                print(f"repeat {r + 1}/{repeats} done", flush=True)
        finally:
            for s in stores.values():
                if s is not None:
                    s.close()
            if schema is not None:
                drop_schema(schema)

    results: dict[str, dict[str, dict[str, Any]]] = {}
    for workload, by_mode in runs.items():
        candidates = by_mode["none"][0]["candidates"]
        results[workload] = {}
        for mode, xs in by_mode.items():
            search = statistics.median(x["search_s"] for x in xs)
            delta = statistics.median(x.get("search_s_delta", 0.0) for x in xs)
            delta_total = statistics.median(x.get("total_s_delta", 0.0) for x in xs)
            results[workload][mode] = {
                "candidates_per_run": candidates,
                "runs": len(xs),
                "search_s_median": round(search, 4),
                "us_per_candidate": round(search / candidates * 1e6, 2),
                "overhead_us_per_candidate": round(delta / candidates * 1e6, 2),
                "overhead_us_per_candidate_runs": [
                    round(x.get("search_s_delta", 0.0) / candidates * 1e6, 1) for x in xs
                ],
                "end_to_end_overhead_us_per_candidate": round(delta_total / candidates * 1e6, 2),
                "writer_cpu_us_per_candidate": round(
                    statistics.median(x["writer_cpu_s"] for x in xs) / candidates * 1e6, 2
                ),
                "pending_at_end_median": statistics.median(x["pending_at_end"] for x in xs),
            }
    backends = [m for m in ("sqlite", "postgresql") if m in results["sample"]]
    sample, emit = results["sample"], results["emit"]
    summary = {
        # Conservative: the search's own slowdown plus the wait for the final flush on close, i.e. the cost
        # of running with the store attached until every event is stored.
        "overhead_us_per_candidate": {m: sample[m]["end_to_end_overhead_us_per_candidate"] for m in backends},
        "search_only_overhead_us_per_candidate": {m: sample[m]["overhead_us_per_candidate"] for m in backends},
        "writer_cpu_us_per_candidate": {m: sample[m]["writer_cpu_us_per_candidate"] for m in backends},
        "direct_emit_overhead_us_per_candidate": {m: emit[m]["end_to_end_overhead_us_per_candidate"] for m in backends},
        "baseline_us_per_candidate": sample["none"]["us_per_candidate"],
        "goal_us": GOAL_US,
        "meets_goal": {m: sample[m]["end_to_end_overhead_us_per_candidate"] <= GOAL_US for m in backends},
        "postgresql": "measured" if pg_error is None else f"skipped: {pg_error}",
        "workload": f"SearchContext.sample with FunctionLLM, {calls} calls x n={args.n} per run, median of "
        f"{repeats} paired differences; observer batch size {args.batch_size}",
        "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
    }
    config = {
        "calls": calls,
        "n": args.n,
        "repeats": repeats,
        "batch_size": args.batch_size,
        "text_chars": len(reply("", SamplingParams(), 0)),
        "quick": args.quick,
    }
    result = {
        "summary": summary,
        "provenance": provenance(config),
        "results": results,
        "config": config,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlalchemy": sa.__version__,
            "note": "2 shared CPU cores (a long benchmark may run alongside): compare modes within this file only",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print()
    print("| workload | store | µs/candidate | overhead µs/cand. | incl. final flush | writer CPU µs/cand. | pending |")
    print("|---|---|---|---|---|---|---|")
    for workload, by_mode in results.items():
        for mode, r in by_mode.items():
            print(f"| {workload} | {mode} | {r['us_per_candidate']} | {r['overhead_us_per_candidate']} | "
                  f"{r['end_to_end_overhead_us_per_candidate']} | {r['writer_cpu_us_per_candidate']} | "
                  f"{r['pending_at_end_median']} |")  # fmt: skip
    print(
        f"\noverhead per candidate, final flush included (goal <= {GOAL_US:g} µs): "
        f"{summary['overhead_us_per_candidate']}"
    )
    print(f"search only: {summary['search_only_overhead_us_per_candidate']}")
    print(f"writer thread CPU: {summary['writer_cpu_us_per_candidate']}; load average {load_start} -> "
          f"{summary['load_average']['end']}")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
