"""Many requests in one go: a JSONL task file run by a local process pool or by Ray, every run in one store.

    tasks = read_tasks("tasks.jsonl")
    spec = WorkerSpec(settings=load_settings(db_url="postgresql+psycopg://user@host/db"))
    summary = run_batch(spec, tasks, BatchOptions(ray=True))
    summary.done, summary.failed, summary.skipped

**The task file**: one JSON object per line (blank lines are ignored) with ``request`` (a non-empty string) and
optionally ``id`` (a string or an integer), ``domain``, ``strategy`` and ``budget`` (the run's token budget). All
lines are validated before anything runs; every bad line is named by its number. Ids must be unique; a task without
one gets ``t-`` + 12 hex digits of the SHA-256 of its fields, so an unchanged line keeps its id.

**Resumable**: a task's run id is ``batch-`` + the first 24 hex digits of the SHA-256 of its id, request, domain,
strategy and budget — the same task finds its run again in any file and on any worker, and a changed task is a new
run. On every (re)run, tasks whose run is terminal in the store (done, unverified, partial, failed, rejected) are
*skipped*; a run that was interrupted (a killed worker, a backend that went away) is resumed from its checkpoint with
:meth:`Agent.resume <longthink.api.Agent.resume>`; the others are solved with that run id. A task that fails (an
exception, a run that ends failed) is a failed :class:`TaskResult`, never the end of the others.

**Workers** build their own backend and store from a :class:`WorkerSpec` (settings, an optional ``module:callable``
backend factory as ``longthink serve --llm`` takes, agent options) — once per worker process, shared by the tasks it
runs — and never receive a pickled agent. The local runner is a pool of ``workers`` processes (spawned); the Ray
runner sends one Ray task per request (``max_retries``: a task whose worker process dies runs again, and resumes its
run). Both keep at most ``in_flight`` tasks running: ``per_endpoint`` × the number of endpoints when the model is
served by endpoints, else ``workers``. The endpoints are replicas: the backend spreads requests over them and skips
one that refuses connections (:class:`~longthink.llm.openai_compat.OpenAICompatLLM`). Every worker writes the same
store (a PostgreSQL URL for many machines; a SQLite file works for one), which the driver migrates, and the same
checkpointer, which the driver sets up, before any task starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from longthink.agents.options import AgentOptions
from longthink.config import Settings
from longthink.errors import ConfigError

if TYPE_CHECKING:
    from longthink.api import RunResult
    from longthink.llm.base import LLM, BaseLLM
    from longthink.store import RunRecord, Store

TaskState = Literal["done", "failed", "skipped"]
TASK_FIELDS = ("id", "request", "domain", "strategy", "budget")
TERMINAL = ("done", "unverified", "partial", "failed", "rejected")
OK = ("done", "unverified", "partial")
MAX_LISTED_PROBLEMS = 10
CLOSE_TIMEOUT_S = 10.0


# -- tasks --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchTask:
    """One request of a batch; ``line`` is where it was read (1-based)."""

    id: str
    request: str
    domain: str | None = None
    strategy: str | None = None
    budget: int | None = None
    line: int = 0

    @property
    def run_id(self) -> str:
        """``batch-`` + 24 hex digits of the SHA-256 of the task's fields (not of the file or the line)."""
        return "batch-" + _digest({k: getattr(self, k) for k in TASK_FIELDS})[:24]

    def options(self, base: AgentOptions) -> AgentOptions:
        """``base`` with this task's strategy, budget and domain (validated: a bad strategy name raises here)."""
        changes: dict[str, Any] = {"domain": self.domain}
        if self.strategy is not None:
            changes["strategy"] = self.strategy
        if self.budget is not None:
            changes["budget_tokens"] = self.budget
        return dataclasses.replace(base, **changes)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def read_tasks(path: str | Path) -> list[BatchTask]:
    """The tasks of a JSONL file, validated (see the module docstring); a ``ConfigError`` names every bad line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the task file {p}: {exc}", field="tasks") from None
    return parse_tasks(text.splitlines(), source=str(p))


def parse_tasks(lines: Iterable[str], *, source: str = "tasks") -> list[BatchTask]:
    """The tasks of JSONL ``lines``; every problem is collected first, then raised as one ``ConfigError``."""
    tasks: list[BatchTask] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            task = _task(raw, number)
        except ConfigError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if task.id in first_line:
            problems.append(f"line {number}: duplicate id {task.id!r} (first on line {first_line[task.id]})")
            continue
        first_line[task.id] = number
        tasks.append(task)
    if problems:
        shown = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f"; and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise ConfigError(f"{source}: {len(problems)} bad line(s): {shown}{more}", field="tasks")
    if not tasks:
        raise ConfigError(f"{source}: no tasks (one JSON object per line, with a 'request')", field="tasks")
    return tasks


def _task(raw: str, number: int) -> BatchTask:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"a task is a JSON object, not {type(data).__name__}")
    for key in data:
        if key not in TASK_FIELDS:
            near = difflib.get_close_matches(str(key), TASK_FIELDS, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(f"unknown field {key!r}{hint}; a task has {', '.join(TASK_FIELDS)}")
    request = data.get("request")
    if not isinstance(request, str) or not request.strip():
        raise ConfigError("'request' must be a non-empty string")
    task_id = data.get("id")
    if task_id is None:
        task_id = "t-" + _digest({k: data.get(k) for k in TASK_FIELDS})[:12]
    elif isinstance(task_id, bool) or not isinstance(task_id, str | int) or not str(task_id).strip():
        raise ConfigError("'id' must be a non-empty string or an integer")
    budget = data.get("budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ConfigError(f"'budget' must be a positive integer (tokens), not {budget!r}")
    for key in ("domain", "strategy"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ConfigError(f"{key!r} must be a string")
    task = BatchTask(str(task_id).strip(), request.strip(), data.get("domain"), data.get("strategy"), budget, number)
    task.options(AgentOptions())  # an unknown strategy fails here, with "did you mean"
    if task.domain is not None and task.domain.strip().lower() not in ("auto", "general"):
        from longthink.domains.registry import REGISTRY

        REGISTRY.get(task.domain)
    return task


# -- results ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TaskResult:
    """What became of one task. ``state``: done (the run ended done or partial), failed (it ended otherwise, or
    raised: ``error`` says why) or skipped (its run was terminal in the store already). ``status``: the run's own
    status; ``resumed``: the run was continued from a checkpoint; ``worker``: the process that ran it."""

    id: str
    run_id: str
    state: TaskState
    status: str | None = None
    answer: str | None = None
    error: str | None = None
    seconds: float = 0.0
    resumed: bool = False
    worker: int | None = None


@dataclass(frozen=True, slots=True)
class BatchSummary:
    """A batch's outcome: one result per task (in task order), the wall time, how it ran."""

    results: tuple[TaskResult, ...]
    seconds: float
    runner: Literal["local", "ray"]
    in_flight: int

    def count(self, state: TaskState) -> int:
        return sum(r.state == state for r in self.results)

    @property
    def done(self) -> int:
        return self.count("done")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    def as_dict(self) -> dict[str, Any]:
        """JSON values: the counts, the wall time and every task's result."""
        return {
            "tasks": len(self.results), "done": self.done, "failed": self.failed, "skipped": self.skipped,
            "seconds": round(self.seconds, 3), "runner": self.runner, "in_flight": self.in_flight,
            "results": [dataclasses.asdict(r) for r in self.results],
        }  # fmt: skip


# -- what a worker runs -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerSpec:
    """What a worker builds its agents from: the settings (model, endpoints, ``db_url``: the shared store), an
    optional backend factory ``"module:callable"`` (instead of the configured model) and the agents' base options
    (each task sets its strategy, budget and domain on them)."""

    settings: Settings
    llm: str | None = None
    options: AgentOptions = field(default_factory=AgentOptions)

    @property
    def key(self) -> str:
        return _digest([self.settings.model_dump_json(), self.llm])


@dataclass
class _Resources:
    llm: BaseLLM
    judge: LLM | None
    store: Store
    saver: Any = None  # the open checkpointer, on the worker's one event loop (run_sync's)
    exits: contextlib.AsyncExitStack | None = None

    async def checkpointer(self, settings: Settings) -> Any:
        """The worker's checkpointer, opened on first use and kept (one connection instead of one per run)."""
        if self.saver is None:
            from longthink.checkpoints import default_checkpoints, open_checkpointer

            target = default_checkpoints(settings)
            if target is None:
                raise ConfigError("a batch needs a SQL store (its checkpoints live next to it)", field="db_url")
            self.exits = contextlib.AsyncExitStack()
            self.saver = await self.exits.enter_async_context(open_checkpointer(target))
        return self.saver

    async def aclose(self) -> None:
        await self.reset_checkpointer()
        if self.judge is not None and self.judge is not self.llm:
            await self.judge.aclose()
        await self.llm.aclose()

    async def reset_checkpointer(self) -> None:
        """Close the checkpointer (after a failed task: its connection may be the reason); the next task reopens."""
        exits, self.exits, self.saver = self.exits, None, None
        if exits is not None:
            with contextlib.suppress(Exception):
                await exits.aclose()


_WORKER: dict[str, _Resources] = {}
"""The backend and the store of this worker process, built once per spec and shared by the tasks it runs."""


def _resources(spec: WorkerSpec) -> _Resources:
    found = _WORKER.get(spec.key)
    if found is None:
        from longthink.api import Agent
        from longthink.llm.registry import build_llm, llm_from_factory
        from longthink.store import open_store

        llm = llm_from_factory(spec.llm) if spec.llm else build_llm(spec.settings)
        judge = Agent(llm=llm, settings=spec.settings, options=spec.options, store=None, checkpoints=None).judge_llm
        found = _Resources(llm, judge, open_store(spec.settings.resolved_db_url, migrate=False))
        if not _WORKER:  # the pool's workers leave through os._exit: atexit would not run, multiprocessing's hooks do
            from multiprocessing import util

            util.Finalize(None, _close_worker, exitpriority=10)
        _WORKER[spec.key] = found
    return found


def _close_worker() -> None:
    """Close what this worker process opened (its checkpointer's connections, the store, the backends)."""
    from longthink.llm.base import run_sync

    while _WORKER:
        res = _WORKER.popitem()[1]
        with contextlib.suppress(Exception):  # leaving anyway: a database or backend already gone changes nothing
            run_sync(asyncio.wait_for(res.aclose(), CLOSE_TIMEOUT_S))
            res.store.close()


def run_task(spec: WorkerSpec, task: BatchTask) -> TaskResult:
    """Run one task in this process: resume its run from a checkpoint when there is one, else solve it under its
    run id. Never raises: a failure is a failed result."""
    start = time.perf_counter()
    try:
        from longthink.llm.base import run_sync

        return run_sync(_run(_resources(spec), spec, task, start))
    except Exception as exc:  # noqa: BLE001 - one task failing is a recorded result, never the end of the batch
        return _failed(task, exc, start)


def _failed(task: BatchTask, exc: BaseException, start: float, *, resumed: bool = False) -> TaskResult:
    return TaskResult(task.id, task.run_id, "failed", error=f"{type(exc).__name__}: {exc}",
                      seconds=time.perf_counter() - start, resumed=resumed, worker=os.getpid())  # fmt: skip


async def _run(res: _Resources, spec: WorkerSpec, task: BatchTask, start: float) -> TaskResult:
    from longthink.api import Agent

    agent = Agent(llm=res.llm, judge_llm=res.judge, settings=spec.settings, options=task.options(spec.options),
                  store=res.store, checkpoints=await res.checkpointer(spec.settings))  # fmt: skip
    try:
        await agent.astatus(task.run_id)
        resumed = True
    except ConfigError:  # no checkpoint: a new run
        resumed = False
    try:
        if resumed:
            result: RunResult = await agent.aresume(task.run_id)
        else:
            result = await agent.asolve(task.request, run_id=task.run_id)
    except Exception as exc:  # noqa: BLE001 - the run is recorded as interrupted; the task failed
        await res.reset_checkpointer()
        return _failed(task, exc, start, resumed=resumed)
    ok = result.status in OK
    why = None if ok else f"the run ended {result.status}" + (f": {result.justification}" * bool(result.justification))
    return TaskResult(task.id, task.run_id, "done" if ok else "failed", result.status, result.answer, why,
                      time.perf_counter() - start, resumed, os.getpid())  # fmt: skip


# -- the driver ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How a batch runs. ``workers``: processes of the local pool, or Ray tasks in flight when the model is not
    served by endpoints (None: one per CPU for a backend factory, 1 for the embedded model, which each worker
    loads); ``per_endpoint``: tasks in flight per endpoint when it is; ``ray_address``: an existing cluster
    (None: a local one, started here and stopped at the end); ``max_retries``: runs again of a task whose worker
    died; ``task_cpus``: the CPUs Ray reserves per task."""

    workers: int | None = None
    ray: bool = False
    ray_address: str | None = None
    per_endpoint: int = 4
    max_retries: int = 3
    task_cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError("workers must be >= 1", field="workers")
        if self.per_endpoint < 1:
            raise ConfigError("per_endpoint must be >= 1", field="per_endpoint")
        if self.max_retries < 0:
            raise ConfigError("max_retries must be >= 0", field="max_retries")
        if self.task_cpus <= 0:
            raise ConfigError("task_cpus must be > 0", field="task_cpus")

    def in_flight(self, spec: WorkerSpec) -> int:
        """Tasks running at once at most (see the class docstring)."""
        endpoints = spec.settings.endpoints if spec.llm is None else []
        if endpoints and spec.settings.resolved_backend == "openai_compat":
            return self.per_endpoint * len(endpoints)
        if self.workers is not None:
            return self.workers
        return (os.cpu_count() or 1) if spec.llm is not None else 1


OnResult = Callable[[TaskResult], None]


def run_batch(
    spec: WorkerSpec,
    tasks: Sequence[BatchTask],
    options: BatchOptions | None = None,
    *,
    on_result: OnResult | None = None,
) -> BatchSummary:
    """Run ``tasks`` (see the module docstring); ``on_result`` is called in this process with each result as it
    comes (the skipped ones first). Returns the summary, results in task order."""
    opts = options or BatchOptions()
    if len({t.id for t in tasks}) != len(tasks):
        raise ConfigError("the tasks' ids must be unique", field="tasks")
    if opts.ray:
        _import_ray()  # before anything is written
    start = time.perf_counter()
    spec = dataclasses.replace(spec, settings=shared_settings(spec.settings))
    finished = prepare(spec.settings, tasks)
    results: dict[str, TaskResult] = {}

    def record(result: TaskResult) -> None:
        results[result.id] = result
        if on_result is not None:
            on_result(result)

    for task in tasks:
        if task.run_id in finished:
            run = finished[task.run_id]
            record(TaskResult(task.id, task.run_id, "skipped", run.status, run.answer, run.error))
    todo = [t for t in tasks if t.id not in results]
    limit = min(opts.in_flight(spec), len(todo))
    if todo:
        runner = _run_ray if opts.ray else _run_local
        runner(spec, todo, opts, limit, record)
    return BatchSummary(tuple(results[t.id] for t in tasks), time.perf_counter() - start,
                        "ray" if opts.ray else "local", limit)  # fmt: skip


def shared_settings(settings: Settings) -> Settings:
    """``settings`` with a store every worker can share: a relative SQLite path made absolute; ``memory://`` (one
    store per process) refused."""
    url = settings.resolved_db_url
    if url.startswith("memory:"):
        raise ConfigError("a batch needs a store its workers share: a sqlite:/// or postgresql:// URL", field="db_url")
    prefix = "sqlite:///"
    if url.startswith(prefix) and not Path(url.removeprefix(prefix)).is_absolute():
        url = prefix + str(Path(url.removeprefix(prefix)).resolve())
    return settings.model_copy(update={"db_url": url})


def prepare(settings: Settings, tasks: Sequence[BatchTask]) -> dict[str, RunRecord]:
    """Migrate the store and set up the checkpointer once, before the workers start (they would race to); return
    the tasks' runs that are terminal already, by run id."""
    from longthink.checkpoints import default_checkpoints, open_checkpointer
    from longthink.llm.base import run_sync
    from longthink.store import RunQuery, open_store

    store = open_store(settings.resolved_db_url)
    try:
        wanted = {t.run_id for t in tasks}
        finished = {r.id: r for r in store.list_runs(RunQuery(status=TERMINAL)) if r.id in wanted}
    finally:
        store.close()
    target = default_checkpoints(settings)
    if target is not None:

        async def setup() -> None:
            async with open_checkpointer(target):
                pass

        run_sync(setup())
    return finished


def _lost(task: BatchTask, attempts: int, why: str) -> TaskResult:
    return TaskResult(task.id, task.run_id, "failed", error=f"worker lost {attempts} time(s): {why}")


def _run_local(spec: WorkerSpec, todo: Sequence[BatchTask], opts: BatchOptions, limit: int, record: OnResult) -> None:
    """A pool of ``limit`` spawned processes, ``limit`` tasks submitted at a time. A worker that dies breaks the
    pool: every task in flight goes back to the queue (at most ``max_retries`` times each; their runs resume) and a
    new pool takes over."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    queue = deque(todo)
    losses: dict[str, int] = {}
    context = multiprocessing.get_context("spawn")  # never fork a process that holds threads and connections
    while queue:
        with ProcessPoolExecutor(max_workers=min(limit, len(queue)), mp_context=context) as pool:
            running: dict[Future[TaskResult], BatchTask] = {}
            broken = False
            while (queue or running) and not broken:
                while queue and len(running) < limit:
                    task = queue.popleft()
                    running[pool.submit(run_task, spec, task)] = task
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = any(isinstance(f.exception(), BrokenProcessPool) for f in done)
                if broken:  # the pool is gone: every task in flight ends now
                    done, _ = wait(running)
                for future in done:
                    task = running.pop(future)
                    exc = future.exception()
                    if exc is None:
                        record(future.result())
                    elif not isinstance(exc, BrokenProcessPool):  # e.g. the spec could not be sent
                        record(TaskResult(task.id, task.run_id, "failed", error=f"{type(exc).__name__}: {exc}"))
                    elif (lost := losses.get(task.id, 0) + 1) > opts.max_retries:
                        record(_lost(task, lost, str(exc)))
                    else:
                        losses[task.id] = lost
                        queue.appendleft(task)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--ray needs Ray: pip install 'longthink[ray]'", field="ray") from None
    return ray


def _run_ray(spec: WorkerSpec, todo: Sequence[BatchTask], opts: BatchOptions, limit: int, record: OnResult) -> None:
    """One Ray task per request, ``limit`` in flight; Ray runs a task again (``max_retries``) when its worker dies."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=opts.ray_address, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(max_retries=opts.max_retries, num_cpus=opts.task_cpus)(run_task)
        spec_ref = ray.put(spec)
        queue = deque(todo)
        running: dict[Any, BatchTask] = {}
        while queue or running:
            while queue and len(running) < limit:
                task = queue.popleft()
                running[remote.remote(spec_ref, task)] = task
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                task = running.pop(ref)
                try:
                    record(ray.get(ref))
                except ray.exceptions.RayError as exc:  # the worker died more often than it may be retried
                    record(_lost(task, opts.max_retries + 1, str(exc).splitlines()[0] if str(exc) else repr(exc)))
    finally:
        if started:
            ray.shutdown()
