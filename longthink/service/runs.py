"""The service's run manager: a bounded pool of workers that run jobs through the core API
(:class:`longthink.api.Agent`), a live buffer of each running run's events for the streams, cancellation,
approval, per-tenant token caps, and recovery of unfinished jobs when the server starts.

Every job is a row of :mod:`.jobs` before it is queued, and every event goes to the run store through the
agent's observer, so a server killed at any point loses nothing it had accepted: at start-up it queues the jobs
that never started and resumes the ones that had, from their checkpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from longthink.agents.options import AgentOptions
from longthink.api import WAITING, Agent, RunResult, check_request
from longthink.config import Settings
from longthink.domains.pipeline import attach_files
from longthink.errors import ConfigError
from longthink.events import Error, Event, RunStarted
from longthink.handle import RunHandle
from longthink.llm.base import LLM
from longthink.service.jobs import FINISHED, Job, JobStore, Tenant

log = logging.getLogger("longthink.service")

OPTION_FIELDS = (
    "domain", "strategy", "strategy_options", "budget_tokens", "answer_mode", "approve_plan", "ask_missing",
    "temperature", "seed",
)  # fmt: skip


class QuotaExceeded(Exception):
    """The tenant's token cap would be exceeded by this run's budget."""


class QueueFull(Exception):
    """More runs wait than the server takes (HTTP 503 with Retry-After)."""


class Conflict(Exception):
    """The run is not in a state where this action applies (HTTP 409)."""


@dataclass(eq=False)
class LiveRun:
    """The events of a run's current session, for the streams that follow it while it runs."""

    run_id: str
    events: list[Event] = field(default_factory=list)
    done: bool = False
    handle: RunHandle | None = None
    cancelled: bool = False
    status: str | None = None  # where the session left the run (set before ``done``)
    cond: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def first_seq(self) -> int | None:
        return self.events[0].seq if self.events else None

    async def push(self, event: Event) -> None:
        async with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    async def finish(self, status: str | None = None) -> None:
        async with self.cond:
            self.status = status or self.status
            self.done = True
            self.cond.notify_all()

    async def follow(self, after: int, *, heartbeat_s: float = 15.0) -> AsyncIterator[list[Event]]:
        """This session's events with ``seq > after`` as they come, in batches (all that arrived since the last
        batch: one write to the client for a burst of candidates), an empty batch after ``heartbeat_s`` of
        silence, until the session ends."""
        i = 0
        while True:
            async with self.cond:
                if i >= len(self.events) and not self.done:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(heartbeat_s):
                            await self.cond.wait()
                batch, i, ended = self.events[i:], len(self.events), self.done
            fresh = [e for e in batch if e.seq > after]
            if fresh or (not batch and not ended):
                yield fresh
            if ended and i >= len(self.events):
                return


@dataclass(frozen=True, slots=True)
class Work:
    """A job for a worker: start or resume run ``run_id``. ``job`` and ``agent`` come along when the submitter
    has them (a fresh submission), else the worker reads the job (a recovered or resumed run)."""

    run_id: str
    resume: bool = False
    decision: Mapping[str, Any] | None = None
    job: Job | None = None
    agent: Agent | None = None


class RunManager:
    """Runs jobs on ``workers`` concurrent workers. ``on_event`` sees every event (metrics); ``on_finished``
    every job that reached a resting status (webhooks)."""

    def __init__(
        self,
        *,
        settings: Settings,
        llm: LLM,
        judge_llm: LLM | None,
        store: Any,
        jobs: JobStore,
        saver: BaseCheckpointSaver[Any] | None,
        workers: int = 4,
        artifacts_dir: str | None = None,
        max_queue: int = 1000,
        on_event: Callable[[Event], None] = lambda e: None,
        on_finished: Callable[[Job], None] = lambda j: None,
    ) -> None:
        self.settings, self.llm, self.judge_llm = settings, llm, judge_llm
        self.store, self.jobs, self.saver = store, jobs, saver
        self.workers, self.artifacts_dir, self.max_queue = workers, artifacts_dir, max_queue
        self.on_event, self.on_finished = on_event, on_finished
        self.queue: asyncio.Queue[Work] = asyncio.Queue()
        self.live: dict[str, LiveRun] = {}
        self.running = 0
        self._submit_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> int:
        """Start the workers and queue every unfinished job; returns how many were picked up again."""
        self._tasks = [asyncio.create_task(self._worker(), name=f"longthink-worker-{i}") for i in range(self.workers)]
        unfinished = await asyncio.to_thread(self.jobs.unfinished)
        for job in unfinished:
            self.live[job.run_id] = LiveRun(job.run_id)
            self.queue.put_nowait(Work(job.run_id, resume=job.status != "queued"))
        if unfinished:
            log.info("recovered %d unfinished runs", len(unfinished), extra={"runs": [j.run_id for j in unfinished]})
        return len(unfinished)

    async def stop(self) -> None:
        """Stop the workers; runs in flight are left resumable (their checkpoints and events are stored)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for live in list(self.live.values()):
            if live.handle is not None:
                await live.handle.cancel()

    # -- submitting -----------------------------------------------------------------------------------------
    def agent(self, options: Mapping[str, Any]) -> Agent:
        """The agent for one job (the backends, store and checkpointer are shared by all of them)."""
        chosen = {k: v for k, v in options.items() if k in OPTION_FIELDS and v is not None}
        opts = AgentOptions(**chosen, artifacts_dir=self.artifacts_dir)  # the server's directory, never a caller's
        return Agent(
            llm=self.llm, judge_llm=self.judge_llm, options=opts, settings=self.settings, store=self.store,
            checkpoints=self.saver,
        )  # fmt: skip

    async def submit(
        self,
        tenant: Tenant,
        request: str,
        options: Mapping[str, Any],
        *,
        files: Mapping[str, str] | None = None,
        webhook_url: str | None = None,
        source: str = "runs",
    ) -> Job:
        """Validate, check the tenant's cap, record the job and queue it. Raises ConfigError, QuotaExceeded or
        QueueFull."""
        if self.queue.qsize() >= self.max_queue:
            raise QueueFull(f"{self.queue.qsize()} runs are waiting already; try again later")
        opts = {k: v for k, v in options.items() if v is not None}
        agent = self.agent(opts)  # validates options, strategy and domain names before anything is stored
        budget = agent.options.budget_tokens
        text = attach_files(request, dict(files)) if files else request
        check_request(text, agent.options.max_request_chars)  # not stored if it could not run (NUL, surrogates)
        now = time.time()
        job = Job(
            run_id=uuid.uuid4().hex[:16], tenant=tenant.name, request=text, options=opts, status="queued",
            created_at=now, updated_at=now, webhook_url=webhook_url, source=source, budget_tokens=budget,
            domain=opts.get("domain") if opts.get("domain") not in (None, "auto") else None,
        )  # fmt: skip
        async with self._submit_lock:  # the cap check and the insert are one step
            if tenant.token_cap is not None:
                if budget is None:
                    raise QuotaExceeded(f"tenant {tenant.name!r} has a token cap: give the run a budget_tokens")
                committed = await asyncio.to_thread(self.jobs.committed_tokens, tenant.name)
                if committed + budget > tenant.token_cap:
                    raise QuotaExceeded(
                        f"this run's budget of {budget} tokens would take tenant {tenant.name!r} past its cap of "
                        f"{tenant.token_cap} ({committed} spent or reserved by unfinished runs)"
                    )
            await asyncio.to_thread(self.jobs.add, job)
        self.live[job.run_id] = LiveRun(job.run_id)
        self.queue.put_nowait(Work(job.run_id, job=job, agent=agent))
        log.info("run queued", extra={"run_id": job.run_id, "tenant": tenant.name, "source": source})
        return job

    async def decide(self, job: Job, decision: Mapping[str, Any], waiting: str = "awaiting_approval") -> None:
        """Queue the rest of a run that waits (``waiting``: for a plan decision, or for answers: awaiting_input)."""
        if job.status != waiting:
            raise Conflict(f"run {job.run_id} is {job.status}, not {waiting.replace('_', ' ')}")
        await asyncio.to_thread(self.jobs.update, job.run_id, status="queued")
        self.live[job.run_id] = LiveRun(job.run_id)
        self.queue.put_nowait(Work(job.run_id, resume=True, decision=dict(decision)))

    async def cancel(self, job: Job) -> str:
        """Cancel a queued, running or waiting run; the store records why. Returns the new status."""
        if job.finished:
            raise Conflict(f"run {job.run_id} has already finished ({job.status})")
        live = self.live.get(job.run_id)
        if live is not None:
            live.cancelled = True
            if live.handle is not None:
                await live.handle.cancel()
        await asyncio.to_thread(self._record_cancel, job.run_id)
        now = time.time()
        await asyncio.to_thread(self.jobs.update, job.run_id, status="cancelled", finished_at=now)
        if live is not None:
            await live.finish("cancelled")
        self.on_finished(dataclasses.replace(job, status="cancelled", finished_at=now, updated_at=now))
        log.info("run cancelled", extra={"run_id": job.run_id})
        return "cancelled"

    def _record_cancel(self, run_id: str) -> None:
        if self.store is None:
            return
        seq = self.store.last_seq(run_id) + 1
        event = Error(run_id=run_id, seq=seq, ts=time.time(), message="cancelled by request", error_type="Cancelled")
        self.store.apply([event])

    # -- running --------------------------------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            work = await self.queue.get()
            try:
                self.running += 1
                await self._run(work)
            except Exception:  # a bug here must not kill the worker: the job is marked failed, the pool goes on
                log.exception("worker failed on run %s", work.run_id, extra={"run_id": work.run_id})
                await asyncio.to_thread(self.jobs.update, work.run_id, status="failed", error="internal error")
            finally:
                self.running -= 1
                self.queue.task_done()

    async def _run(self, work: Work) -> None:
        live = self.live.setdefault(work.run_id, LiveRun(work.run_id))
        job = work.job if work.job is not None else await asyncio.to_thread(self.jobs.get, work.run_id)
        handle = None
        if job is not None and job.status != "cancelled" and not live.cancelled:
            handle = await self._handle(work.agent or self.agent(job.options), job, work)
        if job is None or handle is None:
            if self.live.get(work.run_id) is live:
                self.live.pop(work.run_id, None)
            await live.finish()
            return
        live.handle = handle
        # the job's row follows in the background (the run does not wait for it): "running" with the domain the run
        # announces in its first event (one write), and always before the job settles
        writes: list[asyncio.Task[None]] = []
        log.info("run started", extra={"run_id": job.run_id, "resumed": work.resume})
        result: RunResult | None = None
        error: str | None = None
        try:
            try:
                async for event in handle:
                    await live.push(event)
                    self.on_event(event)
                    if not writes:
                        domain = event.domain if isinstance(event, RunStarted) else job.domain
                        update = asyncio.to_thread(self.jobs.update, job.run_id, status="running", domain=domain)
                        writes.append(asyncio.create_task(update))
                result = await handle.result()
            except asyncio.CancelledError:
                if not live.cancelled:  # the server is stopping: the run stays resumable
                    raise
            except Exception as exc:  # noqa: BLE001 - the run failed: the store has its error event; the job says why
                error = str(exc) or type(exc).__name__
                log.warning("run failed: %s", error, extra={"run_id": job.run_id})
            await asyncio.gather(*writes, return_exceptions=True)
            if not live.cancelled:
                settled = await self._settle(job, result, error)  # before the streams end: they report it
                live.status = settled.status
        finally:
            if self.live.get(job.run_id) is live:
                self.live.pop(job.run_id, None)
            await live.finish()

    async def _handle(self, agent: Agent, job: Job, work: Work) -> RunHandle | None:
        if not work.resume:
            return agent.astream(job.request, run_id=job.run_id)
        try:
            status = await agent.astatus(job.run_id)
        except ConfigError:  # killed before its first checkpoint: start again (ids and writes are idempotent)
            return agent.astream(job.request, run_id=job.run_id)
        if status.status in WAITING and work.decision is None:
            await asyncio.to_thread(self.jobs.update, job.run_id, status=status.status)
            return None
        if status.status in FINISHED:  # it had finished; only the job row had not been updated
            await self._settle(job, status, None)
            return None
        return await agent.astream_resume(job.run_id, work.decision)

    async def _settle(self, job: Job, result: RunResult | None, error: str | None) -> Job:
        now = time.time()
        if result is None:
            values: dict[str, Any] = {"status": "failed", "error": error, "finished_at": now}
        else:
            spend = result.spend
            values = {
                "status": result.status, "answer": result.answer, "domain": result.domain,
                "artifacts": [str(Path(a)) for a in result.artifacts], "prompt_tokens": int(spend.prompt_tokens),
                "completion_tokens": int(spend.completion_tokens), "requests": int(spend.requests),
                "finished_at": now if result.status in FINISHED else None,
            }  # fmt: skip
        await asyncio.to_thread(self.jobs.update, job.run_id, **values)
        settled = dataclasses.replace(job, **values, updated_at=now)
        log.info("run %s", settled.status, extra={"run_id": job.run_id, "tokens": settled.completion_tokens})
        if settled.finished or settled.status in WAITING:
            self.on_finished(settled)
        return settled


__all__ = ["Conflict", "LiveRun", "QueueFull", "QuotaExceeded", "RunManager", "Work"]
