"""The Python API: ``Agent(...)`` with ``solve()`` (sync), ``asolve()`` (async), ``stream()`` (typed events),
questions for missing facts, plan approval and resumption of interrupted runs by id. The CLI and the HTTP service
only call this.

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

import asyncio
import contextlib
import dataclasses
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Command

from longthink.agents.deps import AgentDeps, StepVerifier
from longthink.agents.graph import compile_graph
from longthink.agents.options import MAX_REQUEST_CHARS, AgentOptions
from longthink.budget import Budget, Spend
from longthink.checkpoints import default_checkpoints, open_checkpointer
from longthink.config import Settings, load_settings
from longthink.domains.registry import REGISTRY, DomainRegistry
from longthink.errors import ConfigError
from longthink.events import ApprovalRequested, ClarificationRequested, Error, EventBus, Question, RunResumed
from longthink.handle import RunHandle, SyncRunHandle
from longthink.llm.base import LLM, run_sync
from longthink.outcome import FINAL_STATUSES, Status, StepOutcome, outcomes
from longthink.planners.plan import Plan
from longthink.planners.planner import Planner
from longthink.retry import aretrying, transient
from longthink.rewards.base import Scorer
from longthink.tools import ToolRegistry, default_tools

log = logging.getLogger(__name__)

TERMINAL = FINAL_STATUSES


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of a run (or where it stopped: ``status`` "awaiting_approval" carries the plan to approve in
    ``pending``; "awaiting_input" the questions to answer before planning (``pending["questions"]``, see
    :attr:`questions`); "interrupted" a run that was killed and can be resumed). ``steps``: every step's typed
    outcome; ``spend``: what the whole run spent, across questions, approvals, crashes and resumes; ``reason``: why
    the final status — ``done`` only when the answer passed a check that could have failed it, ``unverified`` (an
    answer no such check passed) says what was not checked."""

    run_id: str
    status: Status
    answer: str | None
    justification: str
    plan: Plan | None
    steps: Mapping[str, StepOutcome] = field(default_factory=dict)
    spend: Spend = field(default_factory=Spend)
    pending: Mapping[str, Any] | None = None
    domain: str = "general"
    reason: str = ""

    @property
    def questions(self) -> list[Question]:
        """The questions a run ``awaiting_input`` asks (answer them with :meth:`Agent.resume`); else none."""
        if self.status != "awaiting_input" or self.pending is None:
            return []
        return [Question.model_validate(q) for q in self.pending.get("questions") or []]

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
            "reason": self.reason,
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

    #: A lost database connection under a running graph (a checkpoint write failed: the server restarted) resumes
    #: the run from its last checkpoint, at most ``db_retries`` times; ``db_retry_s``: how long a checkpoint read
    #: waits for the database. (The store retries its own operations: ``SqlStore.retry_s``.)
    db_retries = 5
    db_retry_s = 30.0

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
        flush = None if observer is None else functools.partial(asyncio.to_thread, observer.flush)

        async def run(bus: EventBus) -> RunResult:
            return await self._execute(bus, graph_input, run_id, decision=decision, resumed=resumed, flush=flush)

        return RunHandle(run_id, bus, run, on_close=observer.close if observer is not None else lambda: None)

    def _deps(self, bus: EventBus, spent: Spend, flush: Callable[[], Awaitable[Any]] | None = None) -> AgentDeps:
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
            flush_events=flush,
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
        self,
        bus: EventBus,
        graph_input: Any,
        run_id: str,
        *,
        decision: str | None = None,
        resumed: bool = False,
        flush: Callable[[], Awaitable[Any]] | None = None,
    ) -> RunResult:
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": 100}
        try:
            async with self._graph() as graph:
                # (its values include what the tasks that finished in an interrupted superstep wrote)
                before = await aretrying(lambda: graph.aget_state(config), window_s=self.db_retry_s)
                values = (before.values or {}) if before else {}
                prior = self._prior_spend(run_id, values)
                deps = self._deps(bus, prior, flush)
                held = Spend.of(values.get("spend"))
                # the store saw spend the checkpoint lost (every field of it): the state takes it back
                if prior.completion_tokens > held.completion_tokens:
                    deps.unrecorded = Spend(*(getattr(prior, f) - getattr(held, f) for f in _SPEND_FIELDS))
                if resumed:
                    bus.emit(RunResumed(decision=decision))
                # "sync": each step's checkpoint is written before the next starts, so a killed run resumes
                todo = graph_input
                for attempt in range(self.db_retries + 1):
                    try:
                        await graph.ainvoke(todo, config, context=deps, durability="sync")
                        break
                    except Exception as exc:
                        if attempt == self.db_retries or not transient(exc):
                            raise
                        todo = await self._lost_connection(graph, config, graph_input, deps, exc)
                snapshot = await aretrying(lambda: graph.aget_state(config), window_s=self.db_retry_s)
        except Exception as exc:  # the record says the run failed (and why), then the caller gets the error
            bus.emit(Error(message=str(exc) or type(exc).__name__, error_type=type(exc).__name__))
            raise
        result = _result(run_id, snapshot)
        if result.status == "awaiting_approval" and result.pending is not None:
            bus.emit(ApprovalRequested(plan=dict(result.pending.get("plan") or {}), error=result.pending.get("error")))
        elif result.status == "awaiting_input" and result.pending is not None:
            bus.emit(ClarificationRequested(questions=result.questions, error=result.pending.get("error")))
        return result

    async def _lost_connection(
        self, graph: Any, config: dict[str, Any], graph_input: Any, deps: AgentDeps, exc: Exception
    ) -> Any:
        """The checkpointer lost its database under a running graph (a restart): record it, wait until the last
        checkpoint can be read, and return what resumes the run from there — the original input when nothing was
        checkpointed yet or when the plan decision it carries was not recorded, else None (go on). What the lost
        updates had spent stays counted: the state takes back what the run's budget has and the checkpoint lost."""
        log.warning("run %s lost its checkpoint database (%s); resuming from its last checkpoint", deps.events.run_id,
                    exc)  # fmt: skip
        state = await aretrying(lambda: graph.aget_state(config), window_s=self.db_retry_s, what="reading a checkpoint")
        values = (state.values or {}) if state else {}
        held, spent = Spend.of(values.get("spend")), deps.budget.spent
        deps.unrecorded = None
        if spent.completion_tokens > held.completion_tokens:
            deps.unrecorded = Spend(*(getattr(spent, f) - getattr(held, f) for f in _SPEND_FIELDS))
        if state is not None and not state.next and values.get("status") in FINAL_STATUSES:
            # the run had finished and its last checkpoint was written (the connection died after it): its answer is
            # the record's last word, with nothing to resume
            log.warning("run %s had finished (%s) when its database connection was lost", deps.events.run_id,
                        values.get("status"))  # fmt: skip
            return None
        deps.events.emit(Error(message=f"lost the database connection: {exc}", error_type=type(exc).__name__,
                               where="checkpoint"))  # fmt: skip
        deps.events.emit(RunResumed())
        waiting = any(t.interrupts for t in getattr(state, "tasks", ()))
        return graph_input if not values or (waiting and isinstance(graph_input, Command)) else None

    def astream(self, request: str, *, run_id: str | None = None) -> RunHandle:
        """Start ``request``: a handle that yields every event as it happens (the last is ``answer``, or
        ``clarification_requested`` / ``approval_requested`` when the run waits for a person) and whose ``result()``
        is the :class:`RunResult`."""
        rid, graph_input = _start(request, run_id, self.options.max_request_chars)
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
        if snapshot.next and result.status not in WAITING:
            return dataclasses.replace(result, status="interrupted")
        return result

    async def astream_resume(self, run_id: str, decision: Mapping[str, Any] | None = None) -> RunHandle:
        """Go on with run ``run_id``: answer a pending plan approval with ``decision`` ({"action": "approve"},
        {"action": "edit", "plan": {...}}, {"action": "reject", "feedback": "..."}), answer the questions of a run
        awaiting input ({"action": "answer", "answers": {question id: text}}: a question left out takes its
        default, labelled as an assumption; {"action": "defaults"}: every default), or finish a run that was
        interrupted (crash, kill) from its last checkpoint. Finished steps are not run again; what the run spent
        before counts against its budget. Returns a handle on the rest of the run."""
        decision = None if decision is None else check_decision(decision)
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
        if waiting:
            _check_fits(run_id, _result(run_id, snapshot), decision)
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


_SPEND_FIELDS = ("prompt_tokens", "completion_tokens", "samples", "requests", "cost")


def check_request(request: Any, max_chars: int = MAX_REQUEST_CHARS) -> str:
    """``request`` stripped, or a ``ConfigError`` (field "request") saying why it cannot be run: not a string,
    empty, longer than ``max_chars``, holding NUL characters (binary data, which PostgreSQL cannot store either) or
    lone surrogates (not Unicode text: no database encodes them). Checked before anything is stored."""
    if not isinstance(request, str) or not request.strip():
        raise ConfigError("the request must be a non-empty string", field="request")
    if len(request) > max_chars:
        raise ConfigError(f"the request has {len(request)} characters; the limit is {max_chars}", field="request")
    if "\x00" in request:
        raise ConfigError(
            f"the request holds a NUL character at {request.index(chr(0))} (binary data?)", field="request"
        )
    try:
        request.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"the request is not valid Unicode text (a lone surrogate at {exc.start})", field="request"
        ) from None
    return request.strip()


def check_run_id(run_id: Any) -> str:
    """``run_id`` if it can name a run (1-200 printable characters), else a ``ConfigError``."""
    if not isinstance(run_id, str) or not 0 < len(run_id) <= 200 or not run_id.isprintable():
        raise ConfigError(f"a run id must be 1-200 printable characters, not {run_id!r:.60}", field="run_id")
    return run_id


PLAN_ACTIONS = ("approve", "edit", "reject")
"""What answers a plan waiting for approval."""
INPUT_ACTIONS = ("answer", "defaults")
"""What answers a run's questions (``awaiting_input``)."""
WAITING = frozenset({"awaiting_approval", "awaiting_input"})
"""The statuses of a run that waits for a person."""


def check_decision(decision: Any) -> dict[str, Any]:
    """``decision`` as a dict, or a ``ConfigError`` (field "decision"): a mapping whose ``action`` is approve, edit or
    reject (a typo must not reject a plan), or answer (with ``answers``, question id -> text) or defaults, with no
    NUL character or lone surrogate in any text (none could be stored)."""
    if not isinstance(decision, Mapping):
        raise ConfigError(f"a decision is a mapping, not {type(decision).__name__}", field="decision")
    action = decision.get("action", "approve")
    if action not in PLAN_ACTIONS + INPUT_ACTIONS:
        raise ConfigError(
            f"a decision's action is 'approve', 'edit' or 'reject' (a plan), or 'answer' or 'defaults' (questions), "
            f"not {action!r:.40}",
            field="decision",
        )
    answers = decision.get("answers")
    if action == "answer" and (
        not isinstance(answers, Mapping)
        or not answers
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items())
    ):
        raise ConfigError("an 'answer' decision needs 'answers': question id -> text, at least one", field="decision")
    todo: list[Any] = [decision]
    while todo:
        value = todo.pop()
        if isinstance(value, Mapping):
            todo += [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple):
            todo += value
        elif isinstance(value, str) and ("\x00" in value or _not_utf8(value)):
            raise ConfigError(f"the decision holds a NUL character or invalid Unicode: {value!r:.60}", field="decision")
    return dict(decision)


def _check_fits(run_id: str, waiting: RunResult, decision: Mapping[str, Any] | None) -> None:
    """A ``ConfigError`` unless ``decision`` answers what run ``run_id`` waits for: a plan decision for a plan, an
    answer (to the questions it asked) or the defaults for questions."""
    if waiting.status == "awaiting_input":
        ids = [q.id for q in waiting.questions]
        if decision is None or decision.get("action", "approve") not in INPUT_ACTIONS:
            raise ConfigError(f"run {run_id!r} waits for answers to its questions ({', '.join(ids)}): answer them or "
                              "take the defaults", field="decision")  # fmt: skip
        unknown = sorted(set(decision.get("answers") or {}) - set(ids))
        if unknown:
            raise ConfigError(f"run {run_id!r} asked no question {unknown[0]!r}; its questions are: {', '.join(ids)}",
                              field="decision")  # fmt: skip
    elif decision is None or decision.get("action", "approve") not in PLAN_ACTIONS:
        raise ConfigError(f"run {run_id!r} waits for a plan decision: approve, edit or reject", field="decision")


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _start(request: str, run_id: str | None, max_chars: int = MAX_REQUEST_CHARS) -> tuple[str, Any]:
    text = check_request(request, max_chars)
    rid = uuid.uuid4().hex[:16] if run_id in (None, "") else check_run_id(run_id)
    return rid, {"request": text, "run_id": rid}


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
        kind = pending.get("kind") if isinstance(pending, Mapping) else None
        status = "awaiting_input" if kind == "clarification" else "awaiting_approval"
    elif values.get("status") in FINAL_STATUSES:
        status = values["status"]
    return RunResult(run_id, status, values.get("answer"), values.get("justification", ""), plan,
                     outcomes(values.get("results")), Spend.of(values.get("spend")), pending,
                     values.get("domain", "general"), values.get("status_reason", ""))  # fmt: skip
