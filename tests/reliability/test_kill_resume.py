"""kill -9 at 20 points of real runs, each resumed from its checkpoint to completion, then checked in SQL.

Each case runs the agent of :mod:`kill_resume_job` (planning with a judge, plan approval, four steps of best-of-4
with a judge, two of them concurrent, synthesis by self-consistency) in child processes — forked from a
process that imported everything once — that kill themselves with SIGKILL at a point chosen by a seeded RNG
(four per phase: planning, waiting for or answering the approval, mid-step, mid-store-write, synthesis; five of
the cases are killed a second time while resuming). After each kill the next attempt does what an operator does
with the run id: start, approve or resume. When the run is done, the database is read with SQLAlchemy and
compared with an uninterrupted reference run of the same run id (same seeds):

- no duplicated row: events unique by (run, seq), candidates by id, scores by (candidate, scorer), steps by id;
- nothing lost: the event numbers are 1..N without a gap (events are written in order, and a resumed run numbers
  its events after the last stored one); every kind of event of the reference is there at least as often (the
  ``approval_requested`` event is the one exception: it is emitted after the run stopped, and a kill in that
  instant takes it with the process; the decision is then recorded by ``run_resumed``); every step of the plan
  has its row and its candidates; the candidates (text, answer, tokens, seed), scores, steps (status, answer,
  chosen candidate, verification, spend) and plans equal the reference's exactly; every candidate row has its
  ``candidate_generated`` event and repeated events of a candidate (work redone after a kill) are identical;
- the answer equals the reference's;
- spend is not double-counted. A kill loses what the run did since its last checkpoint, so some model requests
  are made again: the run really spends more than the reference, and the record says so. The strongest exact
  statement: the final spend is what the system knew at the last kill — the store's last budget snapshot or the
  checkpoint's total (its state plus the pending writes of steps that finished in the interrupted superstep),
  whichever is larger — plus what the reference spent on the work that checkpoint had not done:
  ``S = max(B, K) + (R - R(done))``. So nothing is counted twice (a finished step's spend, a redone step's
  lost spend), nothing is reset, and it also holds for every field (tokens, samples, requests). Besides,
  ``R <= S <= T``, where T is the sum over every model request the processes actually completed (logged by the
  model double), the budget snapshots never go down, and the run row, the answer event, the last budget snapshot
  and the API's result report the same S. The model requests made are exactly the reference's (by prompt, seed
  and n), some of them more than once.

The default run covers the 20 cases on SQLite and 5 of them on PostgreSQL (store and checkpoints); ``-m slow``
runs all 20 on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kill_resume_job as job
import pytest
import sqlalchemy as sa

from longthink.budget import Spend
from longthink.store import SqlStore

HERE = Path(__file__).resolve().parent
CANDIDATE_COLUMNS = ("step_id", "index", "text", "answer", "parse_error", "prompt_tokens", "completion_tokens", "seed",
                     "partial", "prompt_hash")  # fmt: skip
FIELDS = ("prompt_tokens", "completion_tokens", "samples", "requests")
# Kill points per phase: one spec per attempt (None: that attempt is not killed). Attempt 1 starts the run and
# stops at the plan approval; attempt 2 approves it and runs the steps and the synthesis.
PHASES: dict[str, list[list[str | None]]] = {
    "planning": [
        ["event:run_started:1"], ["llm:plan:1"], ["llm:plan:2"], ["event:candidate_scored:3"],
        ["event:plan_proposed:2"], ["event:plan_selected:1"], ["event:step_finished:1"],
    ],
    "approval": [
        ["event:approval_requested:1"], ["approval:1"], [None, "event:run_resumed:1"], [None, "event:plan_selected:1"],
    ],
    "mid-step": [
        *([None, f"llm:step:{k}"] for k in range(1, 9)),
        *([None, f"event:candidate_generated:{k}"] for k in range(1, 17)),
        *([None, f"event:candidate_scored:{k}"] for k in range(1, 17)),
        *([None, f"event:budget:{k}"] for k in range(1, 9)),
        *([None, f"event:step_started:{k}"] for k in range(2, 5)),
        *([None, f"event:step_finished:{k}"] for k in range(1, 5)),
    ],
    "mid-store-write": [["commit:1"], ["commit:2"], *([None, f"commit:{k}"] for k in range(1, 7))],
    "synthesis": [
        [None, "llm:answer:1"], [None, "event:step_started:5"], [None, "event:candidate_generated:17"],
        [None, "event:candidate_generated:19"], [None, "event:answer:1"], [None, "event:step_finished:5"],
    ],
}  # fmt: skip
# A second kill, in the attempt after the first one: points that attempt always reaches, by the first kill's phase.
AGAIN = {
    "planning": ["commit:1", "llm:plan:1", "event:plan_selected:1"],
    "approval": ["commit:1", "event:plan_selected:1"],
    "mid-step": ["llm:step:1", "event:step_finished:1", "event:budget:1", "llm:answer:1"],
    "mid-store-write": ["commit:1"],
    "synthesis": ["llm:answer:1", "event:answer:1", "commit:1"],
}


@dataclass(frozen=True)
class Case:
    run_id: str
    phase: str
    kills: tuple[str | None, ...]


def cases(seed: int = 13) -> list[Case]:
    """20 cases: four kill points per phase drawn by a seeded RNG, five of them killed again while resuming."""
    rng = random.Random(seed)
    out = []
    for phase, points in PHASES.items():
        for spec in rng.sample(points, 4):
            out.append(Case(f"kill-{len(out):02d}", phase, tuple(spec)))
    for i in rng.sample(range(len(out)), 5):
        c = out[i]
        out[i] = Case(c.run_id, c.phase, (*c.kills, rng.choice(AGAIN[c.phase])))
    return out


@dataclass
class Kill:
    """What the system knew right after a kill: the store's last budget snapshot, the checkpoint's total and the
    nodes whose results the checkpoint holds."""

    spec: str
    stored: Spend
    checkpoint: Spend
    done: set[str]


@dataclass
class Outcome:
    case: Case
    kills: list[Kill] = field(default_factory=list)
    exits: list[int] = field(default_factory=list)


# -- running ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def procs() -> Any:
    """Child processes forked from a server process that imported the agent once (a fresh interpreter per attempt
    would spend seconds importing). Python 3.11 does not hand its ``sys.path`` to that server: PYTHONPATH does."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["kill_resume_job"])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p))
        first = ctx.Process(target=job.ready)
        first.start()
        first.join(60)
    return ctx


def run_case(procs: Any, db: str, ckpt: str, case: Case, log: Path) -> Outcome:
    out = Outcome(case)
    for n in range(len(case.kills) + 3):
        spec = case.kills[n] if n < len(case.kills) else None
        p = procs.Process(target=job.attempt, args=(db, ckpt, case.run_id, spec, str(log)))
        p.start()
        p.join(60)
        if p.exitcode is None:
            p.kill()
            raise AssertionError(f"{case}: attempt {n + 1} hung")
        out.exits.append(p.exitcode)
        if spec is not None:
            assert p.exitcode == -signal.SIGKILL, f"{case}: attempt {n + 1} never reached {spec} ({p.exitcode})"
            out.kills.append(Kill(spec, last_budget(db, case.run_id), *checkpoint_view(ckpt, case.run_id)))
        elif p.exitcode == 0:
            return out
        else:
            assert p.exitcode == job.WAITING, f"{case}: attempt {n + 1} failed ({p.exitcode})"
    raise AssertionError(f"{case}: not done after {len(out.exits)} attempts: {out.exits}")


def reference(db: str, ckpt: str, run_id: str, log: Path) -> None:
    """The uninterrupted run (approved when it asks), in this process."""
    agent = job.make_agent(db, ckpt, log_path=str(log), sleep=False)

    async def main() -> None:
        try:
            for _ in range(3):
                if (await job.step_run(agent, run_id)).status == "done":
                    return
            raise AssertionError(f"reference run {run_id} did not finish")
        finally:
            await agent.aclose()

    asyncio.run(main())


# -- reading the record ---------------------------------------------------------------------------------------------
@contextmanager
def engine(db: str) -> Iterator[sa.Engine]:
    e = sa.create_engine(db)
    try:
        yield e
    finally:
        e.dispose()


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def last_budget(db: str, run_id: str) -> Spend:
    with engine(db) as e, e.connect() as c:
        row = c.execute(
            sa.text(f"SELECT {', '.join(FIELDS)} FROM budgets WHERE run_id = :r ORDER BY seq DESC LIMIT 1"),
            {"r": run_id},
        ).first()
    return Spend() if row is None else Spend.of(dict(row._mapping))


@contextmanager
def _saver(target: str) -> Iterator[Any]:
    if target.startswith("postgresql://"):
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(target) as pg:
            yield pg
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(target) as lite:
            yield lite


def checkpoint_view(target: str, run_id: str) -> tuple[Spend, set[str]]:
    """The spend the checkpoint of ``run_id`` holds (its state's plus the pending writes of the tasks that finished
    in the superstep that was interrupted: LangGraph does not run those again) and the nodes it has results of."""
    with _saver(target) as saver:
        tup = saver.get_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}})
    if tup is None:
        return Spend(), set()
    values = tup.checkpoint["channel_values"]
    writes = [(channel, value) for _task, channel, value in tup.pending_writes or ()]
    spend = Spend.of(values.get("spend"))
    results = dict(values.get("results") or {})
    done = {"plan"} if values.get("plan") else set()
    for channel, value in writes:
        if channel == "spend":
            spend = spend + Spend.of(value)
        elif channel == "results":
            results.update(value)
        elif channel in ("plan", "answer"):
            done.add(channel)
    if values.get("answer") is not None:
        done.add("answer")
    return spend, done | set(results)


@dataclass
class Record:
    run: dict[str, Any]
    events: list[dict[str, Any]]
    candidates: dict[str, tuple[Any, ...]]
    scores: set[tuple[Any, ...]]
    steps: dict[str, tuple[Any, ...]]
    plans: set[tuple[Any, ...]]
    budgets: list[dict[str, Any]]


def record(db: str, run_id: str) -> Record:
    """Everything stored of run ``run_id``, read with plain SQL; raises when any key is duplicated."""
    r = {"r": run_id}
    with engine(db) as e, e.connect() as c:

        def q(sql: str) -> list[dict[str, Any]]:
            return [dict(row._mapping) for row in c.execute(sa.text(sql), r)]

        for table, key in (("events", "seq"), ("candidates", "id"), ("scores", "candidate_id, scorer"),
                           ("steps", "id"), ("plans", "id"), ("budgets", "seq"), ("runs", "id")):  # fmt: skip
            where = "id = :r" if table == "runs" else "run_id = :r"
            dups = q(f"SELECT {key}, COUNT(*) AS n FROM {table} WHERE {where} GROUP BY {key} HAVING COUNT(*) > 1")
            assert not dups, f"duplicated {table} rows: {dups}"
        [run] = q("SELECT * FROM runs WHERE id = :r")
        events = q("SELECT seq, kind, step_id, data FROM events WHERE run_id = :r ORDER BY seq")
        cands = q("SELECT * FROM candidates WHERE run_id = :r")
        scores = q("SELECT candidate_id, scorer, value FROM scores WHERE run_id = :r")
        steps = q("SELECT * FROM steps WHERE run_id = :r")
        plans = q("SELECT id, selected, score, plan FROM plans WHERE run_id = :r")
        budgets = q(f"SELECT seq, {', '.join(FIELDS)} FROM budgets WHERE run_id = :r ORDER BY seq")
    for ev in events:
        ev["data"] = _json(ev["data"])
    return Record(
        run={**run, "spend": _json(run["spend"])},
        events=events,
        candidates={c["id"]: tuple(c[k] for k in CANDIDATE_COLUMNS) for c in cands},
        scores={(s["candidate_id"], s["scorer"], s["value"]) for s in scores},
        steps={
            s["id"]: (s["status"], s["answer"], s["chosen_id"], s["verified"], _spend(_json(s["spend"]))) for s in steps
        },
        plans={(p["id"], bool(p["selected"]), p["score"], json.dumps(_json(p["plan"]), sort_keys=True)) for p in plans},
        budgets=budgets,
    )


def _spend(value: Any) -> tuple[int, ...]:
    s = Spend.of(value)
    return tuple(getattr(s, f) for f in FIELDS)


def requests(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


# -- the checks ---------------------------------------------------------------------------------------------------
def check(out: Outcome, got: Record, ref: Record, log: Path, ref_log: Path, api_spend: Spend) -> Spend:
    """Assert everything the module doc promises for one case; returns the final spend."""
    case = out.case
    what = f"{case.run_id} killed at {case.kills} ({case.phase})"
    # the run and its answer
    assert got.run["status"] == "done" and got.run["answer"] == ref.run["answer"] == job.ANSWER, what
    # events: 1..N without a gap; at least everything the reference recorded
    seqs = [e["seq"] for e in got.events]
    assert seqs == list(range(1, len(seqs) + 1)), f"{what}: event numbers {seqs}"
    kinds, ref_kinds = Counter(e["kind"] for e in got.events), Counter(e["kind"] for e in ref.events)
    missing = ref_kinds - kinds
    if "event:approval_requested:1" in case.kills:
        missing.pop("approval_requested", None)
    assert not missing, f"{what}: events missing from the record: {missing}"
    assert any(e["data"].get("decision") == "approve" for e in got.events if e["kind"] == "run_resumed"), what
    # rows: exactly the reference's
    assert got.candidates == ref.candidates, f"{what}: candidates differ"
    assert got.scores == ref.scores, f"{what}: scores differ"
    assert got.steps == ref.steps, f"{what}: steps differ"
    assert got.plans == ref.plans, f"{what}: plans differ"
    plan = next(json.loads(p[3]) for p in got.plans if p[0] == got.run["plan_id"])
    for step in plan["steps"]:
        assert got.steps[step["id"]][0] == "done", what
        assert sum(1 for c in got.candidates.values() if c[0] == step["id"]) == 4, what
    # every candidate row comes from its event; repeated events of a candidate are the same candidate
    generated: dict[str, list[dict[str, Any]]] = {}
    for e in got.events:
        if e["kind"] == "candidate_generated":
            generated.setdefault(e["data"]["candidate"]["id"], []).append(e["data"]["candidate"])
    assert set(generated) == set(got.candidates), what
    for cid, copies in generated.items():
        assert all(c == copies[0] for c in copies), f"{what}: candidate {cid} regenerated differently"
    # every budget row is a budget event; the spend never goes down
    budget_seqs = {e["seq"] for e in got.events if e["kind"] == "budget"}
    assert [b["seq"] for b in got.budgets] == sorted(budget_seqs), what
    totals = [b["completion_tokens"] for b in got.budgets]
    assert totals == sorted(totals), f"{what}: the recorded spend went down: {totals}"
    # spend: the same S everywhere, S = max(B, K) + (R - R(done)), R <= S <= T
    spend = Spend.of(got.run["spend"])
    answers = [e for e in got.events if e["kind"] == "answer"]
    for where, s in (("last budget", Spend.of(got.budgets[-1])), ("answer event", Spend.of(answers[-1]["data"]["spend"])),
                     ("API", api_spend)):  # fmt: skip
        assert _spend(s) == _spend(spend), f"{what}: {where} reports {s}, the run row {spend}"
    ref_spend = Spend.of(ref.run["spend"])
    expected = ref_spend
    if out.kills:
        last = out.kills[-1]
        known = last.stored if last.stored.completion_tokens > last.checkpoint.completion_tokens else last.checkpoint
        node_spend = {sid: row[4] for sid, row in ref.steps.items()}
        redo = [r - sum(node_spend[n][i] for n in last.done) for i, r in enumerate(_spend(ref_spend))]
        expected = Spend(*(k + d for k, d in zip(_spend(known), redo, strict=True)))
    assert _spend(spend) == _spend(expected), f"{what}: spend {spend}, expected {expected} (kills: {out.kills})"
    made, ref_made = requests(log), requests(ref_log)
    assert {m["key"] for m in made} == {m["key"] for m in ref_made}, f"{what}: other model requests than the reference"
    ref_tokens = sum(m["completion_tokens"] for m in ref_made)
    assert ref_spend.completion_tokens == ref_tokens
    assert ref_tokens <= spend.completion_tokens <= sum(m["completion_tokens"] for m in made), what
    return spend


def api_spend(db: str, ckpt: str, run_id: str) -> Spend:
    agent = job.make_agent(db, ckpt, sleep=False)

    async def main() -> Spend:
        try:
            return (await agent.astatus(run_id)).spend
        finally:
            await agent.aclose()

    return asyncio.run(main())


def run_cases(procs: Any, chosen: list[Case], db: str, ckpt: str, ref_db: str, ref_ckpt: str, tmp: Path) -> None:
    SqlStore(db).close()  # migrated once; the attempts open it without migrating
    SqlStore(ref_db).close()
    kills = rows = 0
    spends: list[int] = []
    for case in chosen:
        log, ref_log = tmp / f"{case.run_id}.log", tmp / f"{case.run_id}.ref.log"
        reference(ref_db, ref_ckpt, case.run_id, ref_log)
        out = run_case(procs, db, ckpt, case, log)
        got = record(db, case.run_id)
        spend = check(out, got, record(ref_db, case.run_id), log, ref_log, api_spend(db, ckpt, case.run_id))
        kills += len(out.kills)
        rows += 1 + sum(map(len, (got.events, got.candidates, got.scores, got.steps, got.plans, got.budgets)))
        spends.append(spend.completion_tokens)
    assert len({c.run_id for c in chosen}) == len(chosen)
    print(
        f"\n{len(chosen)} runs killed {kills} times, all resumed to done; {rows} rows checked; final completion "
        f"tokens {dict(sorted(Counter(spends).items()))}"
    )


def test_cases_cover_every_phase() -> None:
    chosen = cases()
    assert len(chosen) == 20
    assert Counter(c.phase for c in chosen) == dict.fromkeys(PHASES, 4)
    assert sum(len([k for k in c.kills if k]) > 1 for c in chosen) == 5
    assert len({c.kills for c in chosen}) == 20


def _sqlite(tmp_path: Path) -> tuple[str, str, str, str]:
    return (f"sqlite:///{tmp_path / 'runs.db'}", str(tmp_path / "checkpoints.sqlite"),
            f"sqlite:///{tmp_path / 'ref.db'}", str(tmp_path / "ref-checkpoints.sqlite"))  # fmt: skip


def test_kill_and_resume_sqlite(procs: Any, tmp_path: Path) -> None:
    """The 20 cases on SQLite (store and checkpoints)."""
    run_cases(procs, cases(), *_sqlite(tmp_path), tmp_path)


def _postgres(pg_url: str) -> tuple[str, str]:
    return pg_url, pg_url.replace("postgresql+psycopg://", "postgresql://")


def test_kill_and_resume_postgres(procs: Any, pg_url: str, tmp_path: Path) -> None:
    """Five of the cases (one per phase) with the store and the checkpoints on PostgreSQL; the reference on SQLite."""
    db, ckpt = _postgres(pg_url)
    run_cases(procs, cases()[3::4], db, ckpt, *_sqlite(tmp_path)[2:], tmp_path)


@pytest.mark.slow
def test_kill_and_resume_all_cases_postgres(procs: Any, pg_url: str, tmp_path: Path) -> None:
    db, ckpt = _postgres(pg_url)
    run_cases(procs, cases(), db, ckpt, *_sqlite(tmp_path)[2:], tmp_path)
