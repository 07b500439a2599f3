"""The Python API: ``Agent(...)`` with ``solve()`` (sync), ``asolve()`` (async), ``stream()`` (typed events),
plan approval and resumption of interrupted runs by id. The CLI and the HTTP service only call this.

    from longthink import Agent, AgentOptions
    agent = Agent(options=AgentOptions(budget_tokens=4000))
    result = agent.solve("A bakery sells 120 loaves a day at $3 ...")
    result.answer, result.plan, result.spend

Every event of a run goes through one :class:`~longthink.events.EventBus`; the SQL store (when configured)
observes it, and ``stream()`` hands the same events to the caller. The graph's state is checkpointed (SQLite
next to the store by default, PostgreSQL when the store is), keyed by the run id, so a run that was
interrupted — by a plan approval, a crash or a kill — is resumed with :meth:`Agent.resume`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from longthink.agents.deps import AgentDeps, StepVerifier
from longthink.agents.graph import compile_graph
from longthink.agents.options import AgentOptions
from longthink.budget import Budget, Spend
from longthink.config import Settings, load_settings
from longthink.domains.registry import REGISTRY, DomainRegistry
from longthink.errors import ConfigError
from longthink.events import ApprovalRequested, Error, EventBus, RunResumed
from longthink.handle import RunHandle, SyncRunHandle
from longthink.llm.base import LLM, run_sync
from longthink.outcome import FINAL_STATUSES, Status, StepOutcome, outcomes
from longthink.planners.plan import Plan
from longthink.planners.planner import Planner
from longthink.rewards.base import Scorer
from longthink.tools import ToolRegistry, default_tools

TERMINAL = FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of a run (or where it stopped: ``status`` "awaiting_approval" carries the plan to approve in
    ``pending``; "interrupted" a run that was killed and can be resumed). ``steps``: every step's typed outcome;
    ``spend``: what the whole run spent, across approvals, crashes and resumes."""

    run_id: str
    status: Status
    answer: str | None
    justification: str
    plan: Plan | None
    steps: Mapping[str, StepOutcome] = field(default_factory=dict)
    spend: Spend = field(default_factory=Spend)
    pending: Mapping[str, Any] | None = None
    domain: str = "general"

    @property
    def artifacts(self) -> list[str]:
        """Files the run's steps wrote (route maps, documents), in plan order."""
        return [a for r in self.steps.values() for a in r.artifacts]

    def summary(self) -> dict[str, Any]:
        """The run in a few JSON values (id, status, answer, justification, spend, domain): what a caller's
        graph state or a tool result keeps of it."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "answer": self.answer,
            "justification": self.justification,
            "spend": self.spend.as_dict(),
            "domain": self.domain,
        }


class Agent:
    """A deliberate agent: plan, search inside every step under one budget, verify, replan, answer.

    ``llm`` defaults to the configured backend (the embedded model unless endpoints are set). ``store``:
    ``"default"`` opens the configured database, ``None`` disables persistence, or pass a Store.
    ``checkpoints``: a SQLite path or PostgreSQL URL for LangGraph's checkpointer ("default": next to the
    store; None: in memory, no resumption across processes), or an open checkpoint saver that many agents
    share (the service keeps one for all its runs). ``domains``: the domain packs to choose from
    (default: the built-in registry); ``options.domain`` names one, or None detects it from the request.
    ``judge_llm``: a separate judge / reward model, injected like ``llm``; default: the model named by
    ``options.judge_model`` or ``settings.judge_model``, built with the same backend, else none (the policy model
    judges). A judge model judges the plans and, unless a ``scorer`` is given, scores every step's candidates.
    """

    def __init__(
        self,
        *,
        llm: LLM | None = None,
        judge_llm: LLM | None = None,
        options: AgentOptions | None = None,
        settings: Settings | None = None,
        scorer: Scorer | None = None,
        verifier: StepVerifier | None = None,
        planner: Planner | None = None,
        tools: ToolRegistry | None = None,
        store: Any = "default",
        checkpoints: str | Path | BaseCheckpointSaver[Any] | None = "default",
        domains: DomainRegistry | None = None,
    ) -> None:
        self.options = options or AgentOptions()
        self.domains = domains or REGISTRY
        if self.options.domain and self.options.domain.strip().lower() not in ("auto", "general"):
            self.domains.get(self.options.domain)  # an unknown name fails here, with the known names
        self.settings = settings or load_settings()
        self._llm = llm
        self._judge_llm = judge_llm
        self._judge_built = judge_llm is not None
        self.scorer = scorer
        self.verifier = verifier
        self.planner = planner
        self.tools = tools or default_tools()
        self.store = self._open_store(store)
        self._saver: BaseCheckpointSaver[Any] | None = None
        if isinstance(checkpoints, BaseCheckpointSaver):
            self._saver, checkpoints = checkpoints, None
        self.checkpoints = self._checkpoint_target(checkpoints)
        self._memory_saver: Any = None

    # -- wiring -------------------------------------------------------------------------------------------
    def _open_store(self, store: Any) -> Any:
        if store == "default":
            from longthink.store import open_store

            return open_store(self.settings.resolved_db_url)
        return store

    def _checkpoint_target(self, checkpoints: str | Path | None) -> str | None:
        if checkpoints != "default":
            return None if checkpoints is None else str(checkpoints)
        return default_checkpoints(self.settings)

    @property
    def llm(self) -> LLM:
        if self._llm is None:
            from longthink.llm.registry import build_llm

            self._llm = build_llm(self.settings)
        return self._llm

    @property
    def judge_llm(self) -> LLM | None:
        """The separate judge model, or None when the policy model judges (built once, on first use)."""
        if not self._judge_built:
            from longthink.llm.registry import build_judge_llm

            name = self.options.judge_model or self.settings.judge_model
            self._judge_llm = build_judge_llm(self.settings.model_copy(update={"judge_model": name}))
            self._judge_built = True
        return self._judge_llm

    @contextlib.asynccontextmanager
    async def _graph(self) -> AsyncIterator[Any]:
        if self._saver is not None:
            yield compile_graph(self._saver)
        elif self.checkpoints is None:
            from langgraph.checkpoint.memory import InMemorySaver

            self._memory_saver = self._memory_saver or InMemorySaver()
            yield compile_graph(self._memory_saver)
        else:
            async with open_checkpointer(self.checkpoints) as saver:
                yield compile_graph(saver)

    def _handle(
        self, run_id: str, graph_input: Any, *, decision: str | None = None, resumed: bool = False
    ) -> RunHandle:
        """A handle on one run of the graph from ``graph_input`` (a fresh request, or None / a Command to go on)."""
        first = self.store.last_seq(run_id) + 1 if self.store is not None else 1
        bus = EventBus(run_id, first_seq=first)
        observer = None
        if self.store is not None:
            from longthink.store import StoreObserver

            observer = StoreObserver(self.store, bus)

        async def run(bus: EventBus) -> RunResult:
            return await self._execute(bus, graph_input, run_id, decision=decision, resumed=resumed)

        return RunHandle(run_id, bus, run, on_close=observer.close if observer is not None else lambda: None)

    def _deps(self, bus: EventBus, spent: Spend) -> AgentDeps:
        budget = Budget(
            tokens=self.options.budget_tokens,
            samples=self.options.budget_samples,
            completion_only=True,
            name="run budget",
        )
        s = budget.spent  # what the run spent before this session (approval, crash, resume): never reset
        s.prompt_tokens, s.completion_tokens, s.samples, s.requests, s.cost = (
            spent.prompt_tokens, spent.completion_tokens, spent.samples, spent.requests, spent.cost
        )  # fmt: skip
        return AgentDeps(
            llm=self.llm,
            budget=budget,
            events=bus,
            tools=self.tools,
            options=self.options,
            scorer=self.scorer,
            judge_llm=self.judge_llm,
            planner=self.planner,
            verifier=self.verifier,
            domains=self.domains,
        )

    def _prior_spend(self, run_id: str, values: Mapping[str, Any]) -> Spend:
        """What run ``run_id`` spent before now: the checkpoint's total, or more when the store saw more (a run
        killed inside a node loses that node's state update, not the budget events the store recorded)."""
        spent = Spend.of(values.get("spend"))
        if self.store is not None:
            for e in reversed(self.store.events(run_id)):
                if e.kind == "budget":
                    if e.spend.completion_tokens > spent.completion_tokens:
                        spent = e.spend.copy()
                    break
        return spent

    # -- running ------------------------------------------------------------------------------------------
    async def _execute(
        self, bus: EventBus, graph_input: Any, run_id: str, *, decision: str | None = None, resumed: bool = False
    ) -> RunResult:
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": 100}
        try:
            async with self._graph() as graph:
                before = await graph.aget_state(config)
                values = (before.values or {}) if before else {}
                prior = self._prior_spend(run_id, values)
                deps = self._deps(bus, prior)
                lost = prior.completion_tokens - Spend.of(values.get("spend")).completion_tokens
                if lost > 0:  # the store saw spend the checkpoint lost: the state takes it back
                    deps.unrecorded = Spend(completion_tokens=lost)
                if resumed:
                    bus.emit(RunResumed(decision=decision))
                # "sync": each step's checkpoint is written before the next starts, so a killed run resumes
                await graph.ainvoke(graph_input, config, context=deps, durability="sync")
                snapshot = await graph.aget_state(config)
        except Exception as exc:  # the record says the run failed (and why), then the caller gets the error
            bus.emit(Error(message=str(exc) or type(exc).__name__, error_type=type(exc).__name__))
            raise
        result = _result(run_id, snapshot)
        if result.status == "awaiting_approval" and result.pending is not None:
            bus.emit(ApprovalRequested(plan=dict(result.pending.get("plan") or {}), error=result.pending.get("error")))
        return result

    def astream(self, request: str, *, run_id: str | None = None) -> RunHandle:
        """Start ``request``: a handle that yields every event as it happens (the last is ``answer``, or
        ``approval_requested`` when the plan waits for a person) and whose ``result()`` is the :class:`RunResult`."""
        rid, graph_input = _start(request, run_id)
        return self._handle(rid, graph_input)

    def stream(self, request: str, *, run_id: str | None = None) -> SyncRunHandle:
        """:meth:`astream` for synchronous code (iterate it, then call ``result()``)."""
        return SyncRunHandle(self.astream(request, run_id=run_id))

    async def asolve(self, request: str, *, run_id: str | None = None) -> RunResult:
        return await self.astream(request, run_id=run_id).result()

    def solve(self, request: str, *, run_id: str | None = None) -> RunResult:
        """Synchronous :meth:`asolve` (same implementation, run on a private loop)."""
        return run_sync(self.asolve(request, run_id=run_id))

    async def astatus(self, run_id: str) -> RunResult:
        """Where run ``run_id`` stands, from its checkpoint, without running anything."""
        config = {"configurable": {"thread_id": run_id}}
        async with self._graph() as graph:
            snapshot = await graph.aget_state(config)
        if not snapshot or not snapshot.values:
            raise ConfigError(f"no run {run_id!r} (no checkpoint found)", field="run_id")
        result = _result(run_id, snapshot)
        if snapshot.next and result.status != "awaiting_approval":
            return dataclasses.replace(result, status="interrupted")
        return result

    async def astream_resume(self, run_id: str, decision: Mapping[str, Any] | None = None) -> RunHandle:
        """Go on with run ``run_id``: answer a pending plan approval with ``decision`` ({"action": "approve"},
        {"action": "edit", "plan": {...}}, {"action": "reject", "feedback": "..."}), or finish a run that was
        interrupted (crash, kill) from its last checkpoint. Finished steps are not run again; what the run spent
        before counts against its budget. Returns a handle on the rest of the run."""
        from langgraph.types import Command

        config = {"configurable": {"thread_id": run_id}}
        async with self._graph() as graph:
            snapshot = await graph.aget_state(config)
        if not snapshot or not snapshot.values:
            raise ConfigError(f"no run {run_id!r} to resume (no checkpoint found)", field="run_id")
        action = str(decision.get("action", "approve")) if decision else None
        if not snapshot.next:
            if snapshot.values.get("status") in TERMINAL:
                done = _result(run_id, snapshot)
                return RunHandle(run_id, EventBus(run_id), lambda _bus: _value(done))
            # killed before its first step was saved: start again (seeds and store writes are idempotent)
            restart = {"request": snapshot.values["request"], "run_id": run_id}
            return self._handle(run_id, restart, decision=action, resumed=True)
        waiting = any(t.interrupts for t in snapshot.tasks)
        if waiting and decision is None:
            raise ConfigError(f"run {run_id!r} waits for a plan decision: approve, edit or reject", field="decision")
        graph_input: Command[Any] | None = Command(resume=dict(decision or {})) if waiting else None
        return self._handle(run_id, graph_input, decision=action if waiting else None, resumed=True)

    async def aresume(self, run_id: str, decision: Mapping[str, Any] | None = None) -> RunResult:
        """:meth:`astream_resume` run to its end."""
        return await (await self.astream_resume(run_id, decision)).result()

    def resume(self, run_id: str, decision: Mapping[str, Any] | None = None) -> RunResult:
        return run_sync(self.aresume(run_id, decision))

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm.aclose()
        if self._judge_llm is not None and self._judge_llm is not self._llm:
            await self._judge_llm.aclose()
        if self.store is not None:
            self.store.close()

    def close(self) -> None:
        run_sync(self.aclose())


def default_checkpoints(settings: Settings) -> str | None:
    """Where runs are checkpointed by default: next to the store (a ``checkpoints.sqlite`` beside a SQLite store,
    the same PostgreSQL database), or None (in memory) for an in-memory store."""
    url = str(settings.resolved_db_url)
    if url.startswith("postgresql"):
        return url.replace("postgresql+psycopg://", "postgresql://")
    if url.startswith("sqlite:///"):
        return str(Path(url.removeprefix("sqlite:///")).with_name("checkpoints.sqlite"))
    return None


@contextlib.asynccontextmanager
async def open_checkpointer(target: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    """An open LangGraph checkpointer at ``target`` (a PostgreSQL URL, else a SQLite file path), closed on exit."""
    if target.startswith("postgresql://"):
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(target) as pg:
            await pg.setup()
            yield pg
    else:
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        Path(target).parent.mkdir(parents=True, exist_ok=True)
        async with AsyncSqliteSaver.from_conn_string(target) as lite:
            yield lite


def _start(request: str, run_id: str | None) -> tuple[str, Any]:
    if not isinstance(request, str) or not request.strip():
        raise ConfigError("the request must be a non-empty string", field="request")
    rid = run_id or uuid.uuid4().hex[:16]
    return rid, {"request": request.strip(), "run_id": rid}


async def _value(result: RunResult) -> RunResult:
    return result


def _result(run_id: str, snapshot: Any) -> RunResult:
    values = snapshot.values or {}
    pending = None
    for t in getattr(snapshot, "tasks", ()):
        for it in t.interrupts:
            pending = it.value
    plan = Plan.model_validate(values["plan"]) if values.get("plan") else None
    status: Status = "running"
    if pending is not None:
        status = "awaiting_approval"
    elif values.get("status") in FINAL_STATUSES:
        status = values["status"]
    return RunResult(run_id, status, values.get("answer"), values.get("justification", ""), plan,
                     outcomes(values.get("results")), Spend.of(values.get("spend")), pending,
                     values.get("domain", "general"))  # fmt: skip
