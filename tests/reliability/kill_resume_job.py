"""One attempt of a real agent run that may kill itself with SIGKILL at a chosen point, for the kill-and-resume tests.

The run: a bakery's weekly revenue, planned by the planner (two candidate plans, judged on a 1-5 scale by a
separate judge model), approved by a person (``approve_plan``), four steps (s1 and s2 concurrent, s3 after both, s4
after s3) each solved by best-of-4 scored by the judge (binary), and the answer combined by self-consistency over
three samples. Both models are :class:`~longthink.testing.FunctionLLM` doubles whose replies depend only on the
prompt, the request seed and the completion index, so a run is reproduced exactly by its run id; each request takes
a few milliseconds (a seeded sleep), like a server.

An attempt (:func:`attempt`) does what an operator does with a run id: start it when it has no checkpoint, approve
it when it waits for approval, otherwise resume it from its checkpoint. ``kill`` names where the process kills
itself (counted within the attempt):

- ``llm:PHASE:K`` — inside the K-th model request of the phase (``plan``: plan sampling and plan judging;
  ``step``: step sampling and step judging; ``answer``: synthesis), before it returns;
- ``event:KIND:K`` — when the K-th event of that kind is emitted (after the store's writer got it, before it
  necessarily wrote it);
- ``commit:K`` — inside the K-th transaction of the store, before its COMMIT (the writer thread: mid-write);
- ``approval:1`` — after the attempt stopped to wait for the plan's approval, while it waits.

Every model request is appended to ``log_path`` (a JSON line: phase, a key that identifies the request — prompt,
seed, n, model — and its completion tokens) with one ``os.write`` on an ``O_APPEND`` descriptor, so a kill never
leaves half a line. The process exits 0 when the run is finished, 3 when it waits for approval.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import signal
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event as sa_event

from longthink.agents import AgentOptions
from longthink.api import Agent, RunResult
from longthink.domains.registry import REGISTRY
from longthink.errors import ConfigError
from longthink.events import Event
from longthink.llm.types import Completion, Message, SamplingParams
from longthink.store import SqlStore
from longthink.testing import FunctionLLM, prompt_text

REQUEST = "A bakery sells 120 loaves a day at $3 and 40 cakes a day at $12. What is its weekly revenue?"
ANSWER = "5880"
STEPS = {  # goal -> (working, value)
    "Compute the daily bread revenue from 120 loaves at $3": ("120 * 3", 360),
    "Compute the daily cake revenue from 40 cakes at $12": ("40 * 12", 480),
    "Add the bread and cake revenue to get the daily total": ("360 + 480", 840),
    "Multiply the daily total by 7 days for the weekly revenue": ("840 * 7", 5880),
}
_GOALS = list(STEPS)
PLAN = {
    "steps": [
        {"id": "s1", "goal": _GOALS[0], "answer_kind": "number"},
        {"id": "s2", "goal": _GOALS[1], "answer_kind": "number"},
        {"id": "s3", "goal": _GOALS[2], "answer_kind": "number", "depends_on": ["s1", "s2"]},
        {"id": "s4", "goal": _GOALS[3], "answer_kind": "number", "depends_on": ["s3"]},
    ]
}
WEAK_PLAN = {  # the second candidate plan: valid, judged worse
    "steps": [
        {"id": "s1", "goal": "Work out the revenue per day", "answer_kind": "number"},
        {"id": "s2", "goal": "Multiply it by seven days", "answer_kind": "number", "depends_on": ["s1"]},
    ]
}
OPTIONS = AgentOptions(
    strategy="best_of_n",
    strategy_options={"n": 4},
    plan_candidates=2,
    approve_plan=True,
    budget_tokens=100_000,  # large: no step's share depends on what an earlier attempt spent
    seed=7,
)
WAITING = 3  # exit status of an attempt that stopped at the plan approval
_ANSWER_RE = re.compile(r"Answer:\s*(-?\d+)")
REGISTRY.names()  # the domain packs load here, once, in the process the attempts are forked from


def ready() -> None:
    """Nothing: a first child process, to start the process the attempts are forked from."""


def _wrong(seed: int | None, index: int) -> bool:
    """Whether this sample gets the arithmetic wrong (about one in three, by seed and index)."""
    return ((seed or 0) // 7 + index) % 3 == 0


def policy_reply(text: str, params: SamplingParams, index: int) -> str:
    if "careful planner" in text:
        return json.dumps(PLAN if index % 2 == 0 else WEAK_PLAN)
    if "combine the results" in text:
        value = int(ANSWER) + (70 if index == 2 and _wrong(params.seed, 0) else 0)
        return f"Adding up the steps, the weekly revenue comes to {value} dollars. Answer: {value}"
    for goal, (working, value) in STEPS.items():
        if f"Your step: {goal}" in text:
            got = value + 10 if _wrong(params.seed, index) else value
            filler = " ".join(["carefully"] * (index + 1))  # the samples differ in length (and tokens)
            return f"Working {filler}: {working} = {got}. Answer: {got}"
    return "I cannot tell. Answer: 0"


def judge_reply(text: str, params: SamplingParams, index: int) -> str:
    if "Rate the solution" in text:  # the plan judge (1-5): the plan that splits bread and cakes is better
        return "5" if "cake revenue" in text else "2"
    for goal, (_, value) in STEPS.items():
        if goal in text:
            solution = text.split("Solution:", 1)[-1]
            found = _ANSWER_RE.search(solution)
            return "Yes" if found is not None and int(found.group(1)) == value else "No"
    return "No"


def phase_of(text: str) -> str:
    if "careful planner" in text or "Rate the solution" in text:
        return "plan"
    if "combine the results" in text:
        return "answer"
    return "step"


class Killer:
    """Counts the points of one attempt and kills the process (SIGKILL) at the chosen one."""

    def __init__(self, spec: str | None) -> None:
        self.where, self.at = ("", 0)
        if spec:
            where, _, k = spec.rpartition(":")
            self.where, self.at = where, int(k)
        self.seen: dict[str, int] = {}

    def point(self, where: str) -> None:
        self.seen[where] = self.seen.get(where, 0) + 1
        if where == self.where and self.seen[where] == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(5)  # never reached: the signal cannot be caught

    def on_event(self, event: Event) -> None:
        self.point(f"event:{event.kind}")

    def on_commit(self, _conn: Any) -> None:
        self.point("commit")


class LoggedLLM(FunctionLLM):
    """A FunctionLLM whose requests take a seeded few milliseconds, pass the killer's ``llm:PHASE`` points and are
    logged (one line per request, appended atomically) when they return."""

    def __init__(self, fn: Any, *, model: str, killer: Killer, log_fd: int | None, sleep: bool) -> None:
        super().__init__(fn, model=model)
        self.killer, self.log_fd, self.sleep = killer, log_fd, sleep

    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        texts = [prompt_text(p) for p in prompts]
        key = hashlib.sha256(json.dumps([texts, params.seed, params.n, self.model]).encode()).hexdigest()[:16]
        if self.sleep:
            await asyncio.sleep(random.Random(key).uniform(0.002, 0.03))
        phase = phase_of(texts[0])
        self.killer.point(f"llm:{phase}")
        out = await super()._generate(prompts, params)
        if self.log_fd is not None:
            tokens = sum(c.completion_tokens for row in out for c in row)
            line = json.dumps({"pid": os.getpid(), "phase": phase, "key": key, "completion_tokens": tokens})
            os.write(self.log_fd, (line + "\n").encode())
        return out


def make_agent(db_url: str, checkpoints: str, *, killer: Killer | None = None, log_path: str | None = None,
               sleep: bool = True) -> Agent:  # fmt: skip
    """The agent of these runs, on the store at ``db_url`` (migrated already) and the checkpoints at ``checkpoints``."""
    killer = killer or Killer(None)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) if log_path else None
    store = SqlStore(db_url, migrate=False)
    sa_event.listen(store.engine, "commit", killer.on_commit)
    return Agent(
        llm=LoggedLLM(policy_reply, model="policy", killer=killer, log_fd=fd, sleep=sleep),
        judge_llm=LoggedLLM(judge_reply, model="judge", killer=killer, log_fd=fd, sleep=sleep),
        options=OPTIONS,
        store=store,
        checkpoints=checkpoints,
    )


async def step_run(agent: Agent, run_id: str, killer: Killer | None = None) -> RunResult:
    """Take run ``run_id`` one attempt further: start it, approve its plan, or resume it from its checkpoint."""
    try:
        status = await agent.astatus(run_id)
    except ConfigError:  # no checkpoint yet: (re)start it; ids, seeds and store writes make that idempotent
        handle = agent.astream(REQUEST, run_id=run_id)
    else:
        if status.status in ("done", "unverified", "partial", "failed", "rejected"):
            return status
        decision = {"action": "approve"} if status.status == "awaiting_approval" else None
        handle = await agent.astream_resume(run_id, decision)
    if killer is not None:
        handle.bus.subscribe(killer.on_event)
    return await handle.result()


def attempt(db_url: str, checkpoints: str, run_id: str, kill: str | None, log_path: str) -> None:
    """The body of a child process: one attempt at run ``run_id``, killed at ``kill`` (see the module doc)."""
    killer = Killer(kill)
    agent = make_agent(db_url, checkpoints, killer=killer, log_path=log_path)

    async def main() -> RunResult:
        try:
            return await step_run(agent, run_id, killer)
        finally:
            await agent.aclose()

    result = asyncio.run(main())
    if result.status == "awaiting_approval":
        killer.point("approval")  # a person has not answered yet: the process waits (and may be killed)
        os._exit(WAITING)
    os._exit(0 if result.status == "done" else 1)
