"""The HTTP service under load, and what it costs over the Python API: the same runs through a real
``longthink serve`` process and through ``Agent.asolve`` in process, side by side.

    .venv/bin/python benchmarks/service.py            # ~10 minutes on 2 cores (the embedded arm is most of it)
    .venv/bin/python benchmarks/service.py --quick    # one round, 2 embedded runs

Two arms, each run through the service and through the API with the same backend, concurrency and options:

- ``test_backend``: ``--runs`` (50) concurrent runs with ``longthink.testing:arithmetic_llm`` (a whole agent run
  without a model), each model call taking ``--delay-s`` (0.05 s, without blocking) to stand in for model latency;
  the server has ``--workers`` (50) workers, so that every run executes at once. ``--rounds`` rounds, the order of
  service and API alternating (ABBA...) so that drift of this shared machine hits both alike, after
  ``--warmup`` runs of each that are not counted (imports, the first graph compile, the databases' creation).
  Then ``--solo-runs`` (10) runs one at a time, alternately through each path: the overhead when the machine is
  not saturated (under ``solo``).
- ``embedded``: ``--embedded-runs`` (8) concurrent runs on the embedded model (SmolLM2-135M, one thread, a small
  budget, strategy cot); the model serialises its calls, so this is the service in front of a busy model. The
  model samples (temperature 0.7, and the runs API takes no temperature), and concurrent runs interleave their
  calls differently on each path, so the two paths generate different amounts of text: compare their
  ``completion_tokens_per_s`` as well as their wall times.

Per run, ``wall_s`` is the time from sending ``POST /v1/runs`` to receiving the SSE ``end`` event (service), or
the time of ``await Agent(...).asolve(request)`` (API: a fresh SQLite store and a shared SQLite checkpointer, as
the server keeps). An error is a response other than 202, a run that ends neither ``done`` nor ``partial``, or an
exception. ``runs_per_s`` is runs / the wall time of their rounds; ``overhead_ratio`` the mean service wall time
over the mean API wall time per run. Goal: ``overhead_ratio`` <= 1.05. ``cpu_s_per_run`` says where the time
goes: the CPU seconds of the server process and of this process (the client; through the API, the agents
themselves) per run, read from ``/proc`` around each round (the reads of each run's result after it excluded).

The benchmark refuses to run when any part of the ``longthink`` namespace it, or the server it starts, would import
is not this checkout's (the editable install points at the checkout it was installed from): to record results
from a clean worktree, put a tree of links that lays the namespace out from the worktree first on ``PYTHONPATH``
and set ``PYTHONSAFEPATH=1`` (as ``.ci/typecheck`` does for mypy).

Writes benchmarks/results/service.json (a top-level ``summary`` of the test-backend arm through the service, the
details of both arms, and its ``provenance``) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the server process the tests use too
from provenance import ROOT, provenance
from service_proc import ServiceProcess

RESULTS = Path(__file__).resolve().parent / "results"
GOAL_RATIO = 1.05
SUMMARY_KEYS = ("runs", "errors", "p50_s", "p99_s", "runs_per_s", "overhead_ratio")
"""The keys of ``summary`` (and of each arm's figures, ``overhead_ratio`` where both paths ran)."""
OK = ("done", "partial")
NAMESPACE = ("longthink", "longthink.agents", "longthink.planners", "longthink.tools", "longthink.domains")


@dataclass(frozen=True)
class Config:
    runs: int = 50
    workers: int = 50
    delay_s: float = 0.05
    rounds: int = 3
    warmup: int = 5
    solo_runs: int = 10
    budget_tokens: int = 2000
    strategy: str = "cot"
    domain: str = "general"
    embedded_runs: int = 8
    embedded_workers: int = 8
    embedded_model: str = "smollm2-135m-instruct"
    embedded_threads: int = 1
    embedded_budget_tokens: int = 600
    embedded_strategy: str = "cot"
    embedded_api: bool = True
    quick: bool = False
    out: Path = field(default=RESULTS / "service.json")


@dataclass(frozen=True)
class Sample:
    """One run: its wall time, final status, answer and spend; ``error`` when it failed (status None)."""

    wall_s: float
    status: str | None
    answer: str | None = None
    completion_tokens: int = 0
    events: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status in OK


# -- the pure parts -----------------------------------------------------------------------------------------------
def percentile(xs: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``xs``, linearly interpolated between order statistics (numpy's default)."""
    if not xs:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], not {q}")
    s = sorted(xs)
    pos = (len(s) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def figures(samples: Sequence[Sample], elapsed_s: float) -> dict[str, Any]:
    """``runs``, ``errors``, ``p50_s``, ``p99_s``, ``runs_per_s``, ``mean_s`` and ``completion_tokens_per_s`` of one
    path's runs, which took ``elapsed_s`` of wall time in all (the sum of their rounds)."""
    walls = [x.wall_s for x in samples]
    return {
        "runs": len(samples),
        "errors": sum(not x.ok for x in samples),
        "p50_s": round(percentile(walls, 50), 4) if walls else None,
        "p99_s": round(percentile(walls, 99), 4) if walls else None,
        "runs_per_s": round(len(samples) / elapsed_s, 3) if elapsed_s > 0 else None,
        "mean_s": round(statistics.fmean(walls), 4) if walls else None,
        "completion_tokens_per_s": round(sum(x.completion_tokens for x in samples) / elapsed_s, 2)
        if elapsed_s > 0
        else None,
    }


def overhead_ratio(service: Sequence[Sample], api: Sequence[Sample]) -> float | None:
    """Mean wall time per run through the service over the same through the API (None when either is missing)."""
    if not service or not api:
        return None
    base = statistics.fmean(x.wall_s for x in api)
    return round(statistics.fmean(x.wall_s for x in service) / base, 4) if base > 0 else None


def cpu_per_run(rounds: Sequence[Round]) -> dict[str, float | None]:
    """CPU seconds per run: ``server`` (the server process; None in process) and ``own`` (this process: the client
    of the service, or the agents themselves through the API)."""
    runs = sum(len(r.samples) for r in rounds)
    if not runs:
        return {"own": None, "server": None}
    servers = [r.server_cpu_s for r in rounds if r.server_cpu_s is not None]
    server = round(sum(servers) / runs, 4) if servers and not any(math.isnan(x) for x in servers) else None
    return {"own": round(sum(r.own_cpu_s for r in rounds) / runs, 4), "server": server}


def pooled(rounds: Sequence[Round]) -> tuple[list[Sample], float]:
    return [x for r in rounds for x in r.samples], sum(r.elapsed_s for r in rounds)


def arm(service: Sequence[Round], api: Sequence[Round]) -> dict[str, Any]:
    """One arm's results: the service's figures at the top (the summary keys), the API's under ``api``, and the CPU
    each path used per run."""
    svc, svc_s = pooled(service)
    in_process, api_s = pooled(api)
    out = {**figures(svc, svc_s), "overhead_ratio": overhead_ratio(svc, in_process)}
    out["meets_goal"] = out["overhead_ratio"] is not None and out["overhead_ratio"] <= GOAL_RATIO
    out["cpu_s_per_run"] = {"service": cpu_per_run(service)}
    events = [x.events for x in svc if x.events is not None]
    out["events_per_run"] = round(statistics.fmean(events), 1) if events else None
    if api:
        out["api"] = figures(in_process, api_s)
        out["cpu_s_per_run"]["api"] = cpu_per_run(api)["own"]
    out["failures"] = sorted({x.error or str(x.status) for x in [*svc, *in_process] if not x.ok})[:10]
    return out


def summary_of(test_arm: dict[str, Any]) -> dict[str, Any]:
    """The results file's ``summary``: exactly :data:`SUMMARY_KEYS`, from the test-backend arm."""
    return {k: test_arm[k] for k in SUMMARY_KEYS}


def question(i: int) -> tuple[str, str]:
    """Request ``i`` and its answer (a different sum every run, so that no run can be served another's result)."""
    a, b = 11 + 3 * i, 7 + 5 * i
    return f"What is {a} + {b}?", str(a + b)


def failure(status: str | None, error: str | None, steps: Sequence[dict[str, Any]]) -> str:
    """Why a run counts as an error: its status, the run's error, and each step that did not end ``done``."""
    bad = [f"{st.get('id')} {st.get('status')}: {st.get('error')}" for st in steps if st.get("status") != "done"]
    return f"{status}: {error}; steps: {'; '.join(bad) or 'none failed'}"[:300]


# -- the two paths -----------------------------------------------------------------------------------------------
async def end_status(response: httpx.Response) -> tuple[str | None, int]:
    """Read an SSE response to its ``end`` event: the status that event carries, and how many events came first."""
    name, data, seen = "", "", 0
    async for line in response.aiter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and data:
            if name == "end":
                return str(json.loads(data)["status"]), seen
            name, data, seen = "", "", seen + 1
    return None, seen


async def via_service(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[Sample, str | None]:
    """POST the run, follow its events to ``end``; the sample and the run id (to read its result afterwards)."""
    t0 = time.perf_counter()
    try:
        r = await client.post("/v1/runs", json=body)
        if r.status_code != 202:
            return Sample(time.perf_counter() - t0, None, error=f"HTTP {r.status_code}: {r.text[:200]}"), None
        run_id = str(r.json()["id"])
        async with client.stream("GET", f"/v1/runs/{run_id}/events") as events:
            if events.status_code != 200:
                return Sample(time.perf_counter() - t0, None, error=f"events: HTTP {events.status_code}"), run_id
            status, seen = await end_status(events)
        wall = time.perf_counter() - t0
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return Sample(time.perf_counter() - t0, None, error=f"{type(exc).__name__}: {exc}"), None
    if status is None:
        return Sample(wall, None, events=seen, error="the stream ended without an end event"), run_id
    return Sample(wall, status, events=seen), run_id


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Round:
    """The runs of one round, its wall time, and the CPU seconds it took: the server process (None in process)
    and this process (the client, or the agents themselves through the API)."""

    samples: list[Sample]
    elapsed_s: float
    own_cpu_s: float
    server_cpu_s: float | None = None


async def service_round(proc: ServiceProcess, bodies: Sequence[dict[str, Any]]) -> Round:
    """All ``bodies`` at once through the service (each run's answer and spend read after the round)."""
    pid = proc.proc.pid if proc.proc is not None else -1
    limits = httpx.Limits(max_connections=4 * len(bodies) + 8, max_keepalive_connections=2 * len(bodies) + 8)
    async with httpx.AsyncClient(base_url=proc.base_url, timeout=900, limits=limits) as client:
        s0, c0, t0 = process_cpu_s(pid), time.process_time(), time.perf_counter()
        done = await asyncio.gather(*(via_service(client, b) for b in bodies))
        elapsed, own, server = time.perf_counter() - t0, time.process_time() - c0, process_cpu_s(pid) - s0
        samples = []
        for sample, run_id in done:
            if run_id is not None and sample.error is None:
                run = (await client.get(f"/v1/runs/{run_id}")).json()
                tokens = int(run["spend"]["completion_tokens"])
                why = (
                    failure(sample.status, run.get("error"), run.get("steps") or [])
                    if sample.status not in OK
                    else None
                )
                sample = dataclasses.replace(sample, answer=run.get("answer"), completion_tokens=tokens, error=why)
            samples.append(sample)
    return Round(samples, elapsed, own, server)


async def via_api(solve: Callable[[str], Awaitable[Any]], request: str) -> Sample:
    t0 = time.perf_counter()
    try:
        result = await solve(request)
    except Exception as exc:  # noqa: BLE001 - a failed run is a counted error, not the end of the benchmark
        return Sample(time.perf_counter() - t0, None, error=f"{type(exc).__name__}: {exc}")
    status = str(result.status)
    steps = [{"id": k, "status": v.status, "error": v.reason or None} for k, v in result.steps.items()]
    why = failure(status, None, steps) if status not in OK else None
    return Sample(time.perf_counter() - t0, status, result.answer, int(result.spend.completion_tokens), error=why)


@contextlib.asynccontextmanager
async def api_solver(llm: Any, settings: Any, options: Any, db_dir: Path) -> AsyncIterator[Any]:
    """``solve(request)`` through the Python API as the server wires it: one Agent per run, sharing the backend,
    the judge, a fresh SQLite store and one open SQLite checkpointer."""
    from longthink.api import Agent
    from longthink.checkpoints import open_checkpointer
    from longthink.store import open_store

    store = await asyncio.to_thread(open_store, f"sqlite:///{db_dir / 'runs.db'}")
    judge = Agent(llm=llm, settings=settings, store=None, checkpoints=None).judge_llm
    try:
        async with open_checkpointer(str(db_dir / "checkpoints.sqlite")) as saver:

            async def solve(request: str) -> Any:
                agent = Agent(llm=llm, judge_llm=judge, options=options, settings=settings, store=store,
                              checkpoints=saver)  # fmt: skip
                return await agent.asolve(request)

            yield solve
    finally:
        store.close()


async def api_round(solve: Callable[[str], Awaitable[Any]], requests: Sequence[str]) -> Round:
    c0, t0 = time.process_time(), time.perf_counter()
    samples = await asyncio.gather(*(via_api(solve, r) for r in requests))
    return Round(list(samples), time.perf_counter() - t0, time.process_time() - c0)


def wrong(samples: Sequence[Sample], answers: Sequence[str]) -> int:
    return sum(x.ok and (x.answer or "").strip() != a for x, a in zip(samples, answers, strict=True))


# -- the arms -----------------------------------------------------------------------------------------------------
def bodies_for(n: int, offset: int, budget: int, strategy: str, domain: str) -> tuple[list[dict[str, Any]], list[str]]:
    qs = [question(offset + i) for i in range(n)]
    bodies = [{"request": q, "budget_tokens": budget, "strategy": strategy, "domain": domain} for q, _ in qs]
    return bodies, [a for _, a in qs]


async def test_backend_arm(cfg: Config, tmp: Path) -> dict[str, Any]:
    from longthink.agents.options import AgentOptions
    from longthink.config import load_settings
    from longthink.testing import arithmetic_llm

    options = AgentOptions(budget_tokens=cfg.budget_tokens, strategy=cfg.strategy, domain=cfg.domain)
    settings = load_settings()
    llm = arithmetic_llm(delay_s=cfg.delay_s)
    (tmp / "svc").mkdir()
    (tmp / "api").mkdir()
    svc: list[Round] = []
    api: list[Round] = []
    wrong_answers = 0
    rounds: list[dict[str, Any]] = []
    with ServiceProcess(tmp / "svc", delay_s=cfg.delay_s, workers=cfg.workers) as proc:
        check_child_imports(proc.env)
        async with api_solver(llm, settings, options, tmp / "api") as solve:
            bodies, _ = bodies_for(cfg.warmup, 10_000, cfg.budget_tokens, cfg.strategy, cfg.domain)
            await service_round(proc, bodies)
            await api_round(solve, [b["request"] for b in bodies])
            for r in range(cfg.rounds):
                bodies, answers = bodies_for(cfg.runs, r * cfg.runs, cfg.budget_tokens, cfg.strategy, cfg.domain)
                order = ("service", "api") if r % 2 == 0 else ("api", "service")
                got: dict[str, Round] = {}
                for path in order:
                    if path == "service":
                        got[path] = await service_round(proc, bodies)
                    else:
                        got[path] = await api_round(solve, [b["request"] for b in bodies])
                s, a = got["service"], got["api"]
                svc.append(s)
                api.append(a)
                wrong_answers += wrong(s.samples, answers) + wrong(a.samples, answers)
                row = {"order": list(order), "service_mean_s": figures(s.samples, s.elapsed_s)["mean_s"],
                       "api_mean_s": figures(a.samples, a.elapsed_s)["mean_s"],
                       "overhead_ratio": overhead_ratio(s.samples, a.samples)}  # fmt: skip
                rounds.append(row)
                print(f"test backend round {r + 1}/{cfg.rounds}: {row}", flush=True)
            solo = await solo_runs(cfg, proc, solve)
    out = arm(svc, api)
    out.update(
        solo=solo,
        wrong_answers=wrong_answers, rounds=rounds, concurrency=cfg.runs, workers=cfg.workers, delay_s=cfg.delay_s,
        completion_tokens_per_run={"service": _mean_tokens(pooled(svc)[0]), "api": _mean_tokens(pooled(api)[0])},
    )  # fmt: skip
    return out


async def solo_runs(cfg: Config, proc: ServiceProcess, solve: Callable[[str], Awaitable[Any]]) -> dict[str, Any]:
    """``--solo-runs`` runs one at a time, alternately through the service and the API: the overhead when the
    machine is not saturated."""
    svc: list[Round] = []
    api: list[Round] = []
    for i in range(cfg.solo_runs):
        bodies, _ = bodies_for(1, 20_000 + i, cfg.budget_tokens, cfg.strategy, cfg.domain)
        for path in ("service", "api") if i % 2 == 0 else ("api", "service"):
            if path == "service":
                svc.append(await service_round(proc, bodies))
            else:
                api.append(await api_round(solve, [bodies[0]["request"]]))
    service, in_process = pooled(svc)[0], pooled(api)[0]
    return {
        "runs": len(service), "errors": sum(not x.ok for x in [*service, *in_process]),
        "service_mean_s": figures(service, 1.0)["mean_s"], "api_mean_s": figures(in_process, 1.0)["mean_s"],
        "overhead_ratio": overhead_ratio(service, in_process),
        "cpu_s_per_run": {"service": cpu_per_run(svc), "api": cpu_per_run(api)["own"]},
    }  # fmt: skip


async def embedded_arm(cfg: Config, tmp: Path) -> dict[str, Any]:
    from longthink.agents.options import AgentOptions
    from longthink.config import load_settings
    from longthink.llm.registry import build_llm

    n = cfg.embedded_runs
    bodies, _ = bodies_for(n, 0, cfg.embedded_budget_tokens, cfg.embedded_strategy, cfg.domain)
    (tmp / "emb-svc").mkdir()
    extra = ["--model", cfg.embedded_model, "--threads", str(cfg.embedded_threads)]
    with ServiceProcess(tmp / "emb-svc", llm=None, workers=cfg.embedded_workers, extra=extra) as proc:
        check_child_imports(proc.env)
        svc = await service_round(proc, bodies)
    print(f"embedded, service: {figures(svc.samples, svc.elapsed_s)}", flush=True)
    api: list[Round] = []
    if cfg.embedded_api:  # after the server has gone: one model on this machine at a time
        (tmp / "emb-api").mkdir()
        settings = load_settings(model=cfg.embedded_model, n_threads=cfg.embedded_threads)
        llm = await asyncio.to_thread(build_llm, settings)
        options = AgentOptions(budget_tokens=cfg.embedded_budget_tokens, strategy=cfg.embedded_strategy,
                               domain=cfg.domain)  # fmt: skip
        try:
            async with api_solver(llm, settings, options, tmp / "emb-api") as solve:
                api = [await api_round(solve, [b["request"] for b in bodies])]
        finally:
            await llm.aclose()
        print(f"embedded, api: {figures(api[0].samples, api[0].elapsed_s)}", flush=True)
    out = arm([svc], api)
    in_process = pooled(api)[0]
    out.update(
        concurrency=n, workers=cfg.embedded_workers, model=cfg.embedded_model, threads=cfg.embedded_threads,
        budget_tokens=cfg.embedded_budget_tokens, strategy=cfg.embedded_strategy,
        completion_tokens_per_run={"service": _mean_tokens(svc.samples), "api": _mean_tokens(in_process)},
        answers={"service": [x.answer for x in svc.samples], "api": [x.answer for x in in_process]},
    )  # fmt: skip
    return out


def _mean_tokens(samples: Sequence[Sample]) -> float | None:
    return round(statistics.fmean(x.completion_tokens for x in samples), 1) if samples else None


# -- whose code ran ----------------------------------------------------------------------------------------------
def _outside(modules: dict[str, str]) -> list[str]:
    return [f"{m} from {f}" for m, f in modules.items() if not Path(f).resolve().is_relative_to(ROOT)]


def check_imports() -> None:
    """Every part of the ``longthink`` namespace this process imports is this checkout's (the editable install
    maps agents/, planners/, tools/ and domains/ to the checkout it was installed from, which may be another)."""
    files = {m: str(importlib.import_module(m).__file__) for m in NAMESPACE}
    if bad := _outside(files):
        raise SystemExit(f"not this checkout's code ({ROOT}): {bad}")


def check_child_imports(env: dict[str, str]) -> None:
    """The same for a server process started with ``env`` (as :class:`ServiceProcess` starts it)."""
    code = (
        f"import importlib, json; print(json.dumps({{m: importlib.import_module(m).__file__ for m in {NAMESPACE!r}}}))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    if bad := _outside(json.loads(done.stdout)):
        raise SystemExit(f"the server would not run this checkout's code ({ROOT}): {bad}")


# -- main ---------------------------------------------------------------------------------------------------------
def parse(argv: Sequence[str] | None = None) -> Config:
    d = Config()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=d.runs, help="concurrent runs per round, test backend")
    ap.add_argument("--workers", type=int, default=d.workers, help="server workers, test backend")
    ap.add_argument("--delay-s", type=float, default=d.delay_s, help="seconds each test-backend model call takes")
    ap.add_argument("--rounds", type=int, default=d.rounds)
    ap.add_argument("--warmup", type=int, default=d.warmup)
    ap.add_argument("--solo-runs", type=int, default=d.solo_runs, help="runs one at a time, test backend")
    ap.add_argument("--embedded-runs", type=int, default=d.embedded_runs, help="0: no embedded arm")
    ap.add_argument("--embedded-model", default=d.embedded_model)
    ap.add_argument("--embedded-budget-tokens", type=int, default=d.embedded_budget_tokens)
    ap.add_argument("--no-embedded-api", action="store_true", help="the embedded arm through the service only")
    ap.add_argument("--quick", action="store_true", help="one round, 2 embedded runs")
    ap.add_argument("--out", type=Path, default=d.out)
    a = ap.parse_args(argv)
    return Config(
        runs=a.runs, workers=a.workers, delay_s=a.delay_s, rounds=1 if a.quick else a.rounds, warmup=a.warmup,
        solo_runs=a.solo_runs,
        embedded_runs=min(a.embedded_runs, 2) if a.quick else a.embedded_runs,
        embedded_workers=min(a.embedded_runs, 2) if a.quick else a.embedded_runs, embedded_model=a.embedded_model,
        embedded_budget_tokens=a.embedded_budget_tokens, embedded_api=not a.no_embedded_api, quick=a.quick,
        out=a.out,
    )  # fmt: skip


def table(arms: dict[str, dict[str, Any]]) -> str:
    rows = ["| arm | path | runs | errors | mean s | p50 s | p99 s | runs/s | overhead ratio |", "|---" * 9 + "|"]
    for name, r in arms.items():
        rows.append(f"| {name} | service | {r['runs']} | {r['errors']} | {r['mean_s']} | {r['p50_s']} | "
                    f"{r['p99_s']} | {r['runs_per_s']} | {r['overhead_ratio']} |")  # fmt: skip
        if "api" in r:
            a = r["api"]
            rows.append(f"| {name} | api | {a['runs']} | {a['errors']} | {a['mean_s']} | {a['p50_s']} | "
                        f"{a['p99_s']} | {a['runs_per_s']} | |")  # fmt: skip
    return "\n".join(rows)


async def main(argv: Sequence[str] | None = None) -> None:
    cfg = parse(argv)
    check_imports()
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmpdir:
        tmp = Path(tmpdir)
        arms = {"test_backend": await test_backend_arm(cfg, tmp)}
        if cfg.embedded_runs > 0:
            arms["embedded"] = await embedded_arm(cfg, tmp)
    result = {
        "summary": summary_of(arms["test_backend"]),
        "goal": {"overhead_ratio_max": GOAL_RATIO, "met": arms["test_backend"]["meets_goal"]},
        "arms": arms,
        "provenance": provenance(cfg),
        "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
            "note": "2 shared CPU cores; the client, the server process and the in-process API share them",
        },
    }  # fmt: skip
    cfg.out.parent.mkdir(parents=True, exist_ok=True)
    cfg.out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(arms))
    print(f"\nsummary (test backend through the service): {result['summary']}")
    print(f"overhead ratio goal <= {GOAL_RATIO}: {'met' if result['goal']['met'] else 'NOT met'}")
    print(f"wrote {cfg.out}")


if __name__ == "__main__":
    asyncio.run(main())
