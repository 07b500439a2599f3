"""Capacity model: what saturates first when longthink drives a large vLLM fleet, from costs measured here.

    .venv/bin/python benchmarks/capacity.py            # ~2 minutes
    .venv/bin/python benchmarks/capacity.py --quick    # fewer repetitions

Measured on this machine (2 shared CPU cores), each the median of ``--repeats`` repetitions:

- ``agent``: the orchestration (LangGraph, planning, parsing, scoring, budget, events) a worker spends besides
  waiting for the model, as ``per_run + per_candidate * candidates``. ``per_candidate`` is the CPU time of a
  search's sampling per candidate (``SearchContext.sample`` with the instant test backend, n=8 per call, ~290
  characters a candidate: parsing, the candidate's record and its events); ``per_run`` is what a whole agent run
  (``longthink.testing.arithmetic_llm``, ``cot``, no store, an in-memory checkpointer) costs beyond its candidates.
  (Fitting both from two widths of agent runs does not work: ``self_consistency`` with ``--wide-n`` samples makes
  fewer model requests than ``cot`` per candidate, and the difference drowns in the per-request cost; both runs are
  recorded as a cross-check.)
- ``postgresql``: writing a search's events (``SearchContext.sample`` with the instant test backend, n=8 per call) to
  the real server with ``SqlStore.apply`` in batches of 2048: the writer's CPU (this process), the server's CPU (every
  ``postgres`` process's user+system time from ``/proc``) and the write-ahead log it produced
  (``pg_current_wal_lsn`` before and after), per candidate.
- ``ray``: the throughput of a local Ray scheduler on trivial tasks (skipped without ``ray``).

Read from other results files (their commits are recorded under ``inputs``): the service's CPU per run beyond the
in-process API (the HTTP layer, jobs and the event stream; ``service.json``) and Ray's overhead on a batch of agent
runs (``batch.json``, when present).

Then the projection: at ``--gpus`` GPUs each generating ``--tokens-per-gpu`` tokens/s (an **assumption**: no GPU
here; three scenarios by default), with ``--tokens-per-candidate`` and ``--candidates-per-request``, how many
candidates, requests and events per second arrive, and how many CPU cores (and WAL bandwidth) each part needs:
worker orchestration and event streaming scale out (more workers, more service replicas); the PostgreSQL primary
and the Ray head are single components, so the ratio of their load to one machine's capacity
(``--db-cores``, ``--wal-mb-s``) says what saturates first.

Writes benchmarks/results/capacity.json (``summary`` holds ``saturates_first`` per scenario) and prints tables.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True, slots=True)
class Config:
    repeats: int = 5
    agent_runs: int = 20
    wide_n: int = 16
    pg_calls: int = 300
    ray_tasks: int = 2000
    gpus: int = 1000
    tokens_per_gpu: tuple[float, ...] = (1000.0, 5000.0, 20000.0)
    tokens_per_candidate: float = 250.0
    candidates_per_request: float = 32.0
    db_cores: int = 64
    wal_mb_s: float = 1000.0
    with_ray: bool = True
    quick: bool = False
    out: str = str(RESULTS / "capacity.json")


DEFAULT = Config()


# -- measurements ----------------------------------------------------------------------------------------------
def _agent_cpu(strategy: str, options: dict[str, Any], runs: int) -> tuple[float, float, float]:
    """(CPU s per run, candidates per run, events per run) of ``runs`` agent runs, one after another."""
    from longthink.agents import AgentOptions
    from longthink.api import Agent
    from longthink.testing import arithmetic_llm

    agent = Agent(llm=arithmetic_llm(delay_s=0.0), options=AgentOptions(strategy=strategy, strategy_options=options,
                  budget_tokens=None), store=None, checkpoints=None)  # fmt: skip
    candidates = events = 0
    c0 = time.process_time()
    for i in range(runs):
        handle = agent.stream(f"What is {17 + i} + 25?")
        for event in handle:
            events += 1
            candidates += event.kind == "candidate_generated"
        if handle.result().answer is None:
            raise RuntimeError(f"an agent run of the capacity benchmark ({strategy}) gave no answer")
    cpu = time.process_time() - c0
    agent.close()
    return cpu / runs, candidates / runs, events / runs


def measure_agent(cfg: Config) -> dict[str, Any]:
    narrow, wide = [], []
    _agent_cpu("cot", {}, 2)  # imports, graph compilation, first-use caches: not what a run costs
    _agent_cpu("self_consistency", {"n": cfg.wide_n}, 2)
    for _ in range(cfg.repeats):
        narrow.append(_agent_cpu("cot", {}, cfg.agent_runs))
        wide.append(_agent_cpu("self_consistency", {"n": cfg.wide_n}, cfg.agent_runs))
    cpu_n, cand_n, ev_n = (statistics.median(x[i] for x in narrow) for i in range(3))
    cpu_w, cand_w, ev_w = (statistics.median(x[i] for x in wide) for i in range(3))
    sampled = []
    asyncio.run(_search_events(10, 8))  # imports and first-use caches
    for _ in range(cfg.repeats):
        c0 = time.process_time()
        events = asyncio.run(_search_events(cfg.pg_calls, 8))
        sampled.append((time.process_time() - c0) / sum(e.kind == "candidate_generated" for e in events))
    per_candidate = statistics.median(sampled)
    per_run = max(cpu_n - per_candidate * cand_n, 0.0)
    return {
        "cot": {"cpu_s_per_run": round(cpu_n, 5), "candidates_per_run": cand_n, "events_per_run": ev_n},
        "self_consistency": {"cpu_s_per_run": round(cpu_w, 5), "candidates_per_run": cand_w, "events_per_run": ev_w},
        "cpu_s_per_run_fixed": round(per_run, 5),
        "cpu_us_per_candidate": round(per_candidate * 1e6, 1),
        "events_per_candidate": round((ev_w - ev_n) / max(cand_w - cand_n, 1e-9), 3),
    }


def _postgres_cpu_s() -> float:
    """User + system CPU seconds of every running ``postgres`` process (the server runs on this machine)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name.startswith("postgres"):
            total += int(rest[11]) + int(rest[12])  # utime, stime (fields 14 and 15)
    return total / tick


async def _search_events(calls: int, n: int) -> list[Any]:
    from store import sample_workload

    from longthink.events import EventBus

    bus = EventBus(f"capacity-{uuid.uuid4().hex[:10]}")
    events: list[Any] = []
    bus.subscribe(events.append)
    await sample_workload(bus, calls, n)
    return events


def measure_postgresql(cfg: Config) -> dict[str, Any] | str:
    from store import drop_schema, pg_reachable

    from longthink.store import SqlStore

    down = pg_reachable()
    if down:
        return f"skipped: PostgreSQL unreachable ({down})"
    n = 8
    schema = f"lt_capacity_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    rows: list[dict[str, float]] = []
    try:
        store = SqlStore(f"{PG_ADMIN}?options=-csearch_path%3D{schema}")
        try:
            for _ in range(cfg.repeats):
                events = asyncio.run(_search_events(cfg.pg_calls, n))
                candidates = sum(e.kind == "candidate_generated" for e in events)
                with admin.connect() as conn:
                    lsn0 = conn.exec_driver_sql("SELECT pg_current_wal_lsn()").scalar()
                s0, c0 = _postgres_cpu_s(), time.process_time()
                for i in range(0, len(events), 2048):
                    store.apply(events[i : i + 2048])
                client, server = time.process_time() - c0, _postgres_cpu_s() - s0
                with admin.connect() as conn:
                    wal = conn.exec_driver_sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", (lsn0,)).scalar()
                rows.append(
                    {
                        "client_us": client / candidates * 1e6,
                        "server_us": server / candidates * 1e6,
                        "wal_bytes": float(wal) / candidates,
                        "events_per_candidate": len(events) / candidates,
                    }
                )
        finally:
            store.close()
    finally:
        admin.dispose()
        drop_schema(schema)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return {
        "client_cpu_us_per_candidate": round(med["client_us"], 1),
        "server_cpu_us_per_candidate": round(med["server_us"], 1),
        "wal_bytes_per_candidate": round(med["wal_bytes"]),
        "events_per_candidate": round(med["events_per_candidate"], 3),
        "runs": [{k: round(v, 1) for k, v in r.items()} for r in rows],
    }


def measure_ray(cfg: Config) -> dict[str, Any] | str:
    if not cfg.with_ray:
        return "skipped: --no-ray"
    try:
        import ray
    except ImportError:
        return "skipped: ray is not installed (pip install 'longthink[ray]')"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:

        @ray.remote
        def noop(i: int) -> int:
            return i

        ray.get([noop.remote(i) for i in range(100)])  # workers warm
        rates = []
        for _ in range(cfg.repeats):
            t0 = time.perf_counter()
            ray.get([noop.remote(i) for i in range(cfg.ray_tasks)])
            rates.append(cfg.ray_tasks / (time.perf_counter() - t0))
    finally:
        ray.shutdown()
    return {"tasks_per_s": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates]}


def _read_input(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def read_service() -> dict[str, Any] | str:
    data = _read_input("service.json")
    if data is None:
        return "skipped: benchmarks/results/service.json is missing"
    arm = data["arms"]["test_backend"]
    extra = arm["cpu_s_per_run"]["service"]["server"] - arm["cpu_s_per_run"]["api"]
    return {
        "commit": data["provenance"]["commit"],
        "service_cpu_s_per_run_beyond_api": round(extra, 5),
        "events_per_run": arm["events_per_run"],
        "service_cpu_us_per_event": round(extra / arm["events_per_run"] * 1e6, 1),
    }


def read_batch() -> dict[str, Any] | str:
    data = _read_input("batch.json")
    if data is None:
        return "skipped: benchmarks/results/batch.json is missing"
    return {"commit": data["provenance"]["commit"], "summary": data["summary"]}


# -- the projection ----------------------------------------------------------------------------------------------
def project(cfg: Config, measured: dict[str, Any], tokens_per_gpu: float) -> dict[str, Any]:
    tokens_s = cfg.gpus * tokens_per_gpu
    cand_s = tokens_s / cfg.tokens_per_candidate
    req_s = cand_s / cfg.candidates_per_request
    agent = measured["agent"]
    events_s = cand_s * agent["events_per_candidate"]
    worker_cores = req_s * agent["cpu_s_per_run_fixed"] + cand_s * agent["cpu_us_per_candidate"] / 1e6
    parts: dict[str, dict[str, Any]] = {
        "workers (agent orchestration)": {"cores": worker_cores, "scales_out": True},
    }
    pg = measured["postgresql"]
    if isinstance(pg, dict):
        parts["store writers (in the workers)"] = {
            "cores": cand_s * pg["client_cpu_us_per_candidate"] / 1e6,
            "scales_out": True,
        }
        db_cores = cand_s * pg["server_cpu_us_per_candidate"] / 1e6
        wal = cand_s * pg["wal_bytes_per_candidate"] / 1e6
        parts["PostgreSQL primary (CPU)"] = {"cores": db_cores, "scales_out": False, "load": db_cores / cfg.db_cores}
        parts["PostgreSQL primary (WAL)"] = {"mb_s": wal, "scales_out": False, "load": wal / cfg.wal_mb_s}
    svc = measured["service"]
    if isinstance(svc, dict):
        parts["service replicas (HTTP, jobs, event stream)"] = {
            "cores": req_s * svc["service_cpu_s_per_run_beyond_api"],
            "scales_out": True,
        }
    ray = measured["ray"]
    if isinstance(ray, dict):
        parts["Ray scheduler (one task per request)"] = {
            "tasks_s": req_s,
            "scales_out": False,
            "load": req_s / ray["tasks_per_s"],
        }
    central = {k: v["load"] for k, v in parts.items() if "load" in v}
    first = max(central, key=lambda k: central[k]) if central else None
    return {
        "tokens_per_gpu": tokens_per_gpu,
        "tokens_s": tokens_s,
        "candidates_s": round(cand_s, 1),
        "requests_s": round(req_s, 2),
        "events_s": round(events_s, 1),
        "parts": {
            k: {kk: round(vv, 3) if isinstance(vv, float) else vv for kk, vv in v.items()} for k, v in parts.items()
        },
        "saturates_first": first,
        "saturates_first_load": round(central[first], 3) if first else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray scheduler measurement")
    ap.add_argument("--gpus", type=int, default=DEFAULT.gpus)
    ap.add_argument("--tokens-per-gpu", type=float, nargs="+", default=list(DEFAULT.tokens_per_gpu),
                    help="assumed generated tokens/s per GPU (one scenario each)")  # fmt: skip
    ap.add_argument("--tokens-per-candidate", type=float, default=DEFAULT.tokens_per_candidate)
    ap.add_argument("--candidates-per-request", type=float, default=DEFAULT.candidates_per_request)
    ap.add_argument("--db-cores", type=int, default=DEFAULT.db_cores, help="cores of the PostgreSQL primary")
    ap.add_argument("--wal-mb-s", type=float, default=DEFAULT.wal_mb_s, help="WAL bandwidth the primary sustains")
    ap.add_argument("--out", default=DEFAULT.out)
    args = ap.parse_args()
    cfg = Config(
        gpus=args.gpus, tokens_per_gpu=tuple(args.tokens_per_gpu), tokens_per_candidate=args.tokens_per_candidate,
        candidates_per_request=args.candidates_per_request, db_cores=args.db_cores, wal_mb_s=args.wal_mb_s,
        with_ray=not args.no_ray, quick=args.quick, out=args.out,
        **({"repeats": 2, "agent_runs": 4, "pg_calls": 40, "ray_tasks": 300} if args.quick else {}),
    )  # fmt: skip
    load0 = os.getloadavg()
    measured: dict[str, Any] = {
        "agent": measure_agent(cfg),
        "postgresql": measure_postgresql(cfg),
        "ray": measure_ray(cfg),
        "service": read_service(),
        "batch": read_batch(),
    }
    scenarios = [project(cfg, measured, t) for t in cfg.tokens_per_gpu]
    result = {
        "summary": {
            "gpus": cfg.gpus,
            "saturates_first": {str(s["tokens_per_gpu"]): s["saturates_first"] for s in scenarios},
            "agent_cpu_us_per_candidate": measured["agent"]["cpu_us_per_candidate"],
            "agent_cpu_s_per_run_fixed": measured["agent"]["cpu_s_per_run_fixed"],
            "pg_server_cpu_us_per_candidate": (
                measured["postgresql"]["server_cpu_us_per_candidate"]
                if isinstance(measured["postgresql"], dict)
                else None
            ),
            "pg_wal_bytes_per_candidate": (
                measured["postgresql"]["wal_bytes_per_candidate"] if isinstance(measured["postgresql"], dict) else None
            ),
            "ray_tasks_per_s": measured["ray"]["tasks_per_s"] if isinstance(measured["ray"], dict) else None,
        },
        "measured": measured,
        "scenarios": scenarios,
        "assumptions": {
            "tokens_per_gpu": "assumed, not measured (no GPU here): generated tokens/s one GPU sustains under vLLM",
            "tokens_per_candidate": cfg.tokens_per_candidate,
            "candidates_per_request": cfg.candidates_per_request,
            "db_cores": cfg.db_cores,
            "wal_mb_s": cfg.wal_mb_s,
        },
        "machine": {"cpus": os.cpu_count(), "load_average": {"start": load0, "end": os.getloadavg()}},
        # (where the file goes is not a setting of the measurement, and a machine's path)
        "provenance": provenance({k: v for k, v in dataclasses.asdict(cfg).items() if k != "out"}),
    }
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    _print(result)


def _print(result: dict[str, Any]) -> None:
    m = result["measured"]
    print(f"agent: {m['agent']['cpu_s_per_run_fixed'] * 1e3:.1f} ms CPU per run + "
          f"{m['agent']['cpu_us_per_candidate']:.0f} µs per candidate")  # fmt: skip
    if isinstance(m["postgresql"], dict):
        pg = m["postgresql"]
        print(f"postgresql: client {pg['client_cpu_us_per_candidate']} µs, server {pg['server_cpu_us_per_candidate']} "
              f"µs, WAL {pg['wal_bytes_per_candidate']} bytes per candidate")  # fmt: skip
    print(f"ray: {m['ray']}")
    for s in result["scenarios"]:
        head = f"{result['summary']['gpus']} GPUs x {s['tokens_per_gpu']:g} tok/s"
        print(
            f"\n{head}: {s['candidates_s']:g} candidates/s, {s['requests_s']:g} requests/s, {s['events_s']:g} events/s"
        )
        print(f"{'part':48} {'need':>14} {'load':>8}")
        for name, p in s["parts"].items():
            need = f"{p['cores']:.1f} cores" if "cores" in p else (f"{p['mb_s']:.0f} MB/s" if "mb_s" in p
                                                                     else f"{p['tasks_s']:.0f} tasks/s")  # fmt: skip
            load = f"{p['load']:.2f}" if "load" in p else "scales"
            print(f"{name:48} {need:>14} {load:>8}")
        print(f"saturates first: {s['saturates_first']} (load {s['saturates_first_load']})")


if __name__ == "__main__":
    main()
