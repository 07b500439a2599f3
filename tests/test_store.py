"""The store conformance suite: every test runs against the in-memory reference, a SQLite file and the real
PostgreSQL server (each PostgreSQL test in a schema of its own, dropped afterwards), and results are compared
with what the reference returns for the same input."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from longthink import events as ev
from longthink.budget import Spend
from longthink.errors import ConfigError
from longthink.events import Event, EventBus, Recorder
from longthink.llm import Message
from longthink.outcome import StepOutcome
from longthink.search import BeamSearch, BestOfN, Candidate, Problem, Score, SearchContext
from longthink.store import (
    BudgetRecord,
    CandidateRecord,
    MemoryStore,
    PlanRecord,
    RunQuery,
    RunRecord,
    ScoreRecord,
    SqlStore,
    StepRecord,
    Store,
    StoreObserver,
    ToolCallRecord,
    open_store,
)
from longthink.store.migrations import VERSION_TABLE, current, head, migrate
from longthink.store.sql import Base, make_engine
from longthink.testing import FunctionLLM


def _url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SqlStore(_url(request.param, tmp_path, request))
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _url(request.param, tmp_path, request)


# -- event streams -------------------------------------------------------------------------------------------
MATH = Problem.from_text("p1", "What is 6 * 7?", answer_kind="number", max_tokens=64)


class StepScorer:
    name = "prm"

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return [Score("prm", 0.1 if "40" in c.text else 0.9, (0.5, 0.25), "step check") for c in candidates]


def _stepper(prompt: str, params: object, i: int) -> str:
    steps = prompt.count("Step ")
    if steps == 0:
        return f"Step 1: 6*7 is {42 if i % 2 == 0 else 40}\n\nStep 2: done"
    if steps == 1:
        return ("Step 2: so Answer: 42" if "is 42" in prompt else "Step 2: so Answer: 40") + "\n\nextra"
    return "Answer: 42"


async def _search(bus: EventBus, step_id: str | None = None) -> None:
    """A beam search (partial nodes, parents, depths) and a best-of-n, through the real SearchContext."""
    ctx = SearchContext(FunctionLLM(_stepper), seed=1, scorer=StepScorer(), process_scorer=StepScorer(), events=bus)
    ctx.step_id = step_id
    await BeamSearch(width=2, expand=2, max_steps=4).solve(MATH, ctx)
    await BestOfN(n=4).solve(Problem.from_text("p2", "What is 1 + 1?", answer_kind="number"), ctx)


def search_events(run_id: str = "run-search") -> list[Event]:
    bus, rec = EventBus(run_id), Recorder()
    bus.subscribe(rec)
    asyncio.run(_search(bus))
    return rec.events


def agent_events(run_id: str = "run-agent") -> list[Event]:
    """What the agent layer emits around a search: run, plans, a step with its prompt, a tool call, answer."""
    bus, rec = EventBus(run_id), Recorder()
    bus.subscribe(rec)
    bus.emit(ev.RunStarted(request="What is 6 * 7, then plus 1?", options={"strategy": "beam", "budget": 5000}))
    plan = {"steps": [{"id": "s1", "goal": "multiply"}, {"id": "s2", "goal": "add one", "depends_on": ["s1"]}]}
    bus.emit(ev.PlanProposed(plan_id="A", plan=plan, score=0.8))
    bus.emit(ev.PlanProposed(plan_id="B", plan={"steps": []}, score=0.1))
    bus.emit(ev.PlanSelected(plan_id="A", plan=plan))
    bus.emit(ev.StepStarted(step_id="s1", goal="multiply", step_kind="math", strategy="beam", problem_id="p1",
                            prompt=[ev.ChatMessage(role="user", content="What is 6 * 7?")], plan_id="A"))  # fmt: skip
    asyncio.run(_search(bus, step_id="s1"))
    bus.emit(ev.Verification(step_id="s1", passed=True, reason="42 checks out"))
    bus.emit(ev.StepFinished(step_id="s1", outcome=StepOutcome(step_id="s1", answer="42", verified=True)))
    bus.emit(ev.StepStarted(step_id="s2", goal="add one", step_kind="tool", depends_on=["s1"],
                            prompt=[ev.ChatMessage(role="user", content="42 + 1")]))  # fmt: skip
    bus.emit(ev.ToolCalled(step_id="s2", call_id="c1", tool="calculator", args={"expr": "42+1"}, result=43,
                           latency_s=0.001))  # fmt: skip
    bus.emit(ev.Error(step_id="s2", message="calculator timed out once"))
    bus.emit(ev.Replan(reason="none needed"))
    bus.emit(ev.BudgetUpdate(spend=Spend(prompt_tokens=100, completion_tokens=50, samples=20, requests=5)))
    bus.emit(ev.Answer(status="done", answer="43", spend=Spend(100, 50, 20, 5)))
    return rec.events


def reference(events: Sequence[Event]) -> MemoryStore:
    ref = MemoryStore()
    ref.apply(events)
    return ref


def export_text(store: Store, **kw: object) -> str:
    out = io.StringIO()
    store.export(out, **kw)  # type: ignore[arg-type]
    return out.getvalue()


# -- conformance ---------------------------------------------------------------------------------------------
def test_every_backend_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.get_run("nope") is None
    assert store.list_runs() == []
    assert store.events("nope") == [] and store.last_seq("nope") == 0


def test_a_search_stream_is_recorded_like_the_reference(store: Store) -> None:
    events = search_events()
    assert store.apply(events) == len(events)
    detail = store.get_run("run-search")
    assert detail is not None and detail == reference(events).get_run("run-search")
    # A search outside a plan: each problem is a step named after it.
    assert [s.id for s in detail.steps] == ["p1", "p2"]
    assert {s.status for s in detail.steps} == {"done"}
    generated = [e for e in events if e.kind == "candidate_generated"]
    assert len(detail.candidates) == len(generated) > 8
    beam = detail.candidates_of("p1")
    assert any(c.partial for c in beam) and {c.depth for c in beam} == {0, 1, 2}
    assert all(c.parent_id in {b.id for b in beam} for c in beam if c.parent_id)
    assert len(detail.scores) == len([e for e in events if e.kind == "candidate_scored"])
    assert detail.scores[0].steps == (0.5, 0.25) and detail.scores[0].rationale == "step check"
    chosen = {s.id: s.chosen_id for s in detail.steps}
    assert chosen["p1"] in {c.id for c in beam}
    assert [b.seq for b in detail.budgets] == [e.seq for e in events if e.kind == "budget"]
    assert detail.run.status == "running" and detail.run.spend is not None  # no answer event: still running


def test_replaying_a_stream_never_duplicates(store: Store) -> None:
    events = search_events()
    ref = reference(events)
    half = len(events) // 2
    store.apply(events[:half])  # the writer got this far before a crash...
    assert store.apply(events) == len(events) - half  # ...and the whole stream is replayed
    assert store.apply(events) == 0
    for i in range(0, len(events), 7):  # and once more, in other batches
        store.apply(events[i : i + 7])
    store.apply(reversed(events))
    assert store.get_run("run-search") == ref.get_run("run-search")
    assert store.events("run-search") == ref.events("run-search") == list(events)
    assert store.last_seq("run-search") == events[-1].seq


def test_replaying_old_events_never_rolls_back(store: Store) -> None:
    events = agent_events()
    store.apply(events)
    store.apply(events[:3])  # run_started again, after the answer
    run = store.get_run("run-agent")
    assert run is not None and run.run.status == "done" and run.run.answer == "43"


def test_the_agent_stream_fills_every_table(store: Store) -> None:
    events = agent_events()
    store.apply(events)
    detail = store.get_run("run-agent")
    assert detail is not None and detail == reference(events).get_run("run-agent")
    run = detail.run
    assert (run.status, run.answer, run.request, run.plan_id) == ("done", "43", "What is 6 * 7, then plus 1?", "A")
    assert run.meta == {"answer_kind": "text", "domain": "general", "options": {"strategy": "beam", "budget": 5000}}
    assert run.spend == Spend(100, 50, 20, 5).as_dict() and run.finished_at == events[-1].ts
    assert [(p.id, p.selected, p.score) for p in detail.plans] == [("A", True, 0.8), ("B", False, 0.1)]
    assert detail.plans[0].plan is not None and detail.plans[0].plan["steps"][1]["depends_on"] == ["s1"]
    s1, s2 = detail.steps
    assert (s1.id, s1.status, s1.verified, s1.goal, s1.kind) == ("s1", "done", True, "multiply", "math")
    assert s1.plan_id == "A"
    assert s1.prompt is not None and s1.prompt[0].content == "What is 6 * 7?" and s1.depends_on == ()
    assert (s2.status, s2.error, s2.depends_on) == ("failed", "calculator timed out once", ("s1",))
    assert s2.prompt is not None and s2.prompt[0].role == "user"
    assert {c.step_id for c in detail.candidates} == {"s1"}
    assert {c.problem_id for c in detail.candidates} == {"p1", "p2"}
    [call] = detail.tool_calls
    assert (call.id, call.tool, call.args, call.result) == ("c1", "calculator", {"expr": "42+1"}, 43)
    assert call.step_id == "s2"
    assert detail.budgets[-1].samples == 20
    assert store.events("run-agent", after=events[-3].seq) == list(events[-2:])


def test_values_are_stored_the_same_everywhere(store: Store) -> None:
    """NUL characters, non-finite floats, big seeds, objects in event data: cleaned alike by every backend."""
    bus, rec = EventBus("run-odd"), Recorder()
    bus.subscribe(rec)
    cand = Candidate(id="x/1", problem_id="x", index=0, text="a\x00b ∑ 😀", answer=None,
                     parse_error="no \x00 answer", finish_reason="length", prompt_tokens=3, completion_tokens=2**20,
                     latency_s=float("nan"), model="m", prompt_hash="h", seed=2**40 + 1, mean_logprob=float("-inf"),
                     payload={"patch": "a\x00b", "score": float("inf")})  # fmt: skip
    bus.emit(ev.CandidateGenerated(problem_id="x", candidate=cand))
    bus.emit(ev.CandidateScored(problem_id="x", candidate_id="x/1", scorer="judge", value=float("nan"),
                                steps=[1.0, float("inf")], rationale="\x00"))  # fmt: skip
    bus.emit(ev.ToolCalled(call_id="t1", tool="t", args={"v": float("nan"), "s": {1, 2}, "t": (1, "\x00")},
                           result=MATH.prompt[0]))  # fmt: skip
    bus.emit(ev.RunStarted(request="odd", options={"when": datetime(2026, 1, 1, tzinfo=UTC)}))
    store.apply(rec.events)
    ref = reference(rec.events)
    for s in (store, ref):
        s.upsert_steps([StepRecord("run-odd", "s", prompt=(Message.user("nul \x00 here"),), started_at=1.0)])
    assert store.get_run("run-odd") == ref.get_run("run-odd")
    assert store.events("run-odd") == ref.events("run-odd")
    detail = store.get_run("run-odd")
    assert detail is not None
    assert detail.steps[0].prompt == (Message.user("nul \ufffd here"),)
    [c] = detail.candidates
    assert c.text == "a\ufffdb ∑ 😀" and c.seed == 2**40 + 1 and c.latency_s == 0.0 and c.mean_logprob is None
    assert c.reasoning is None and c.completion_tokens == 2**20
    generated = store.events("run-odd")[0]
    assert isinstance(generated, ev.CandidateGenerated)
    assert generated.candidate.payload == {"patch": "a\ufffdb", "score": None}  # the typed payload, cleaned
    [s] = detail.scores
    assert s.value is None and s.steps == (1.0, None) and s.rationale == "\ufffd"
    [t] = detail.tool_calls
    assert t.args == {"v": None, "s": [1, 2], "t": [1, "\ufffd"]}
    assert t.result == {"role": "user", "content": "What is 6 * 7?"}
    stored = store.events("run-odd")[-1]
    assert isinstance(stored, ev.RunStarted) and stored.options == {"when": "2026-01-01T00:00:00Z"}


def test_upserts_merge_runs_plans_steps_and_keep_first_facts(store: Store) -> None:
    store.upsert_runs([RunRecord("r", request="q", created_at=10.0, meta={"a": 1})])
    store.upsert_runs([RunRecord("r", status="finished", answer="A", finished_at=12.0)])
    run = store.list_runs()[0]
    assert run == RunRecord("r", "finished", "q", "A", None, None, {"a": 1}, None, 10.0, 12.0)
    store.upsert_plans([PlanRecord("r", "P", {"x": 1}, 0.5, True, 11.0)])
    store.upsert_plans([PlanRecord("r", "P", score=0.7)])  # selected stays, score updates
    store.upsert_steps([StepRecord("r", "s", goal="g", started_at=11.0), StepRecord("r", "s", status="finished")])
    store.upsert_candidates([CandidateRecord("r", "c", "s", text="first", created_at=11.5)])
    store.upsert_candidates([CandidateRecord("r", "c", "s", text="second", created_at=11.6)])
    store.upsert_candidates([CandidateRecord("r", "c2", "s-new", text="t", created_at=11.7)])  # creates the step
    store.upsert_scores([ScoreRecord("r", "c", "judge", 0.5, created_at=11.8)])
    later = [ScoreRecord("r", "c", "judge", 0.9), ScoreRecord("r", "c", "prm", 0.1, (0.1,), created_at=12.0)]
    store.upsert_scores(later)
    store.upsert_tool_calls([ToolCallRecord("r", "t1", tool="calc", result=[1, 2], created_at=11.9)])
    store.upsert_budgets([BudgetRecord("r", 3, ts=11.0, samples=2), BudgetRecord("r", 3, ts=11.0, samples=9)])
    store.upsert_candidates([CandidateRecord("other", "c", text="t", created_at=1.0)])  # creates the run
    d = store.get_run("r")
    assert d is not None
    assert d.plans == (PlanRecord("r", "P", {"x": 1}, 0.7, True, 11.0),)
    assert [(s.id, s.status, s.goal) for s in d.steps] == [("s", "finished", "g"), ("s-new", "running", None)]
    assert [c.text for c in d.candidates] == ["first", "t"]
    assert [(s.scorer, s.value) for s in d.scores] == [("judge", 0.5), ("prm", 0.1)]
    assert d.tool_calls[0].result == [1, 2] and d.budgets == (BudgetRecord("r", 3, ts=11.0, samples=2),)
    other = store.get_run("other")
    assert other is not None and other.run.status == "running"


def test_list_runs_filters_and_orders(store: Store) -> None:
    runs = [
        RunRecord("a", "finished", created_at=1.0),
        RunRecord("b", "failed", created_at=2.0),
        RunRecord("c", "finished", created_at=3.0),
        RunRecord("d", "running", created_at=3.0),
        RunRecord("e", "finished", created_at=4.0),
    ]
    store.upsert_runs(runs)
    ids = lambda q=None: [r.id for r in store.list_runs(q)]  # noqa: E731
    assert ids() == ["e", "d", "c", "b", "a"]  # newest first; ties by id, descending
    assert ids(RunQuery(status="finished")) == ["e", "c", "a"]
    assert ids(RunQuery(status=["failed", "running"])) == ["d", "b"]
    assert ids(RunQuery(since=3.0)) == ["e", "d", "c"]
    assert ids(RunQuery(since=datetime.fromtimestamp(2.5, UTC), status="finished", limit=1)) == ["e"]
    assert ids(RunQuery(limit=2)) == ["e", "d"] and ids(RunQuery(limit=0)) == []
    assert store.list_runs() == _ref_runs(runs)


def _ref_runs(runs: list[RunRecord]) -> list[RunRecord]:
    ref = MemoryStore()
    ref.upsert_runs(runs)
    return ref.list_runs()


def test_export_is_reward_model_training_data(store: Store) -> None:
    agent, search = agent_events(), search_events()
    store.apply(agent + search)
    text = export_text(store)
    assert text == export_text(reference(agent + search))
    lines = [json.loads(line) for line in text.splitlines()]
    by_key = {(x["run_id"], x["step_id"], x["problem_id"]): x for x in lines}
    assert set(by_key) == {("run-agent", "s1", "p1"), ("run-agent", "s1", "p2"), ("run-search", "p1", "p1"),
                           ("run-search", "p2", "p2")}  # fmt: skip
    line = by_key[("run-agent", "s1", "p2")]
    assert list(line) == ["run_id", "step_id", "problem_id", "request", "goal", "prompt", "strategy", "status",
                          "verified", "answer", "reason", "chosen", "chosen_index", "candidates"]  # fmt: skip
    assert line["request"] == "What is 6 * 7, then plus 1?" and line["goal"] == "multiply" and line["verified"] is True
    assert line["prompt"] == [{"role": "user", "content": "What is 6 * 7?"}]
    assert line["chosen"] == line["candidates"][line["chosen_index"]]["id"]  # the best-of-n, finished last
    first = line["candidates"][0]
    assert first["scores"] == {"prm": first["scores"]["prm"]} and first["step_scores"] == {"prm": [0.5, 0.25]}
    assert {"text", "answer", "prompt_tokens", "completion_tokens", "seed", "partial", "parent_id"} <= set(first)
    beam = by_key[("run-search", "p1", "p1")]
    assert any(c["partial"] for c in beam["candidates"]) and beam["chosen"] is not None
    only = export_text(store, run_ids=["run-search"])
    assert {json.loads(x)["run_id"] for x in only.splitlines()} == {"run-search"}
    finished = export_text(store, query=RunQuery(status="done"))
    assert {json.loads(x)["run_id"] for x in finished.splitlines()} == {"run-agent"}


def test_the_observer_records_a_live_search(store: Store) -> None:
    bus, rec = EventBus("run-live"), Recorder()
    bus.subscribe(rec)
    with StoreObserver(store, bus, batch_size=8, interval_s=0.01) as observer:
        asyncio.run(_search(bus))
        assert observer.flush(timeout=30)
        assert observer.pending == 0
    assert observer.written == len(rec.events) and not observer.unwritten and observer.batches >= 2
    assert store.get_run("run-live") == reference(rec.events).get_run("run-live")
    bus.emit(ev.Answer(status="done", answer="late"))  # after close: not recorded, not an error
    assert store.last_seq("run-live") == rec.events[-2].seq


def test_the_observer_flushes_on_close_and_interval(store: Store) -> None:
    bus = EventBus("run-slow")
    observer = StoreObserver(store, bus, batch_size=10_000, interval_s=3600)
    bus.emit(ev.RunStarted(request="q"))
    bus.emit(ev.Answer(status="done", answer="a"))
    assert observer.pending == 2
    observer.close()
    assert store.last_seq("run-slow") == 2 and observer.written == 2
    quick = StoreObserver(store, bus, batch_size=10_000, interval_s=0.01)
    bus.emit(ev.Error(message="x"))
    for _ in range(500):
        if store.last_seq("run-slow") == 3:
            break
        threading.Event().wait(0.01)
    assert store.last_seq("run-slow") == 3
    quick.close()


# -- the observer with a failing store (backend independent) ------------------------------------------------
class FlakyStore(MemoryStore):
    def __init__(self, failures: int, poison: int | None = None) -> None:
        super().__init__()
        self.failures, self.poison, self.calls = failures, poison, 0

    def apply(self, events):  # type: ignore[no-untyped-def]
        events = list(events)
        self.calls += 1
        if self.failures > 0:
            self.failures -= 1
            raise sa.exc.OperationalError("insert", {}, Exception("database is locked"))
        if self.poison is not None and any(e.seq == self.poison for e in events):
            raise ValueError("poisoned event")
        return super().apply(events)


def test_the_observer_retries_and_keeps_what_it_cannot_write() -> None:
    flaky = FlakyStore(failures=2)
    bus, rec = EventBus("r"), Recorder()
    bus.subscribe(rec)
    with StoreObserver(flaky, bus, retry_delay_s=0.001) as obs:
        asyncio.run(_search(bus))  # the run never sees the failures
    assert obs.written == len(rec.events) and not obs.unwritten and flaky.calls == 3
    poisoned, bus = FlakyStore(failures=0, poison=3), EventBus("r2")
    with StoreObserver(poisoned, retries=1, retry_delay_s=0.001) as obs:
        obs.attach(bus)
        for i in range(5):
            bus.emit(ev.BudgetUpdate(spend=Spend(samples=i)))
    assert [e.seq for e in obs.unwritten] == [3] and obs.written == 4  # the rest of its batch is saved
    assert [e.seq for e in poisoned.events("r2")] == [1, 2, 4, 5]


# -- SQL specifics --------------------------------------------------------------------------------------------
def test_migrations_create_exactly_the_models(sql_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    migrate(sql_url)
    migrate(sql_url)  # again: nothing to do
    engine = make_engine(sql_url)
    try:
        with engine.connect() as conn:
            assert current(conn) == head() == "0001"
            ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
            assert compare_metadata(ctx, Base.metadata) == []
            changed = sa.MetaData()
            for table in Base.metadata.tables.values():
                table.to_metadata(changed)
            sa.Table("extra", changed, sa.Column("id", sa.Integer, primary_key=True))
            changed.tables["runs"].append_column(sa.Column("new_column", sa.Integer))
            diffs = compare_metadata(ctx, changed)  # the comparison does see differences
            assert {d[0] for d in diffs if isinstance(d, tuple)} >= {"add_table", "add_column"}
            names = set(sa.inspect(conn).get_table_names())
        assert names == set(Base.metadata.tables) | {VERSION_TABLE}
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'runs.db'}", busy_timeout_s=7)
    with store.engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert (pragma("journal_mode"), pragma("busy_timeout"), pragma("foreign_keys")) == ("wal", 7000, 1)
    store.close()


def test_two_sqlite_writers_share_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    a, b = SqlStore(url), SqlStore(url)
    events = search_events()
    threads = [threading.Thread(target=s.apply, args=(events,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.get_run("run-search") == reference(events).get_run("run-search")
    assert len(b.events("run-search")) == len(events)
    a.close()
    b.close()


def test_in_memory_sqlite_is_shared_by_the_writer_thread() -> None:
    store, bus, rec = SqlStore("sqlite://"), EventBus("run-mem"), Recorder()
    bus.subscribe(rec)
    with StoreObserver(store, bus, batch_size=4, interval_s=0.01):
        asyncio.run(_search(bus))
        store.list_runs()  # reads while the writer thread writes
    assert store.get_run("run-mem") == reference(rec.events).get_run("run-mem")
    store.close()


def test_open_store_follows_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONGTHINK_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("LONGTHINK_DB_URL", f"sqlite:///{tmp_path / 'x' / 'runs.db'}")
    store = open_store()
    assert isinstance(store, SqlStore) and (tmp_path / "x" / "runs.db").exists()
    store.close()
    assert isinstance(open_store("memory://"), MemoryStore)
    assert "runs.db" in repr(store)
    monkeypatch.setenv("LONGTHINK_DB_URL", "mysql://user:secret@host/db")
    with pytest.raises(ConfigError, match="db_url") as err:
        open_store()
    assert "secret" not in str(err.value)


@pytest.mark.parametrize("text", ["plain", "héllo ✓ 🙂", "a NUL \x00 here", "an escaped \\u0000", "lone \ud83d"])
@pytest.mark.parametrize("logprob", [-1.5, 1e-7, float("nan"), float("inf")])
def test_the_fast_event_encoding_reads_back_like_the_codec_s(text: str, logprob: float) -> None:
    from longthink.store import codec
    from longthink.store.records import CandidateRecord, clean

    c = Candidate(id="c", problem_id="p", index=0, text=text, answer="1", parse_error=None, finish_reason="stop",
                  prompt_tokens=1, completion_tokens=2, latency_s=0.0, model="m", prompt_hash="h",
                  mean_logprob=logprob)  # fmt: skip
    e = ev.CandidateGenerated(problem_id="p", candidate=c)
    assert json.loads(codec.event_data(e)) == json.loads(codec.dumps(e.data))
    record = clean(CandidateRecord.of("r", c))
    assert "\x00" not in record.text
    assert record.mean_logprob is None or record.mean_logprob == logprob
    assert (record.mean_logprob is None) == (logprob != logprob or logprob == float("inf"))


def test_rows_written_by_another_writer_first_are_kept_once_and_the_rest_are_added(sql_url: str) -> None:
    """The bulk path's conflict branch: a batch whose rows partly exist (a concurrent writer, or a candidate of
    redone work) keeps the first write of each and adds the new ones, in the same transaction as the rest."""
    from longthink.store.tables import CANDIDATES

    def record(i: int, text: str) -> CandidateRecord:
        c = Candidate(id=f"c{i}", problem_id="p", index=i, text=text, answer=str(i), parse_error=None,
                      finish_reason="stop", prompt_tokens=1, completion_tokens=2, latency_s=0.0, model="m",
                      prompt_hash="h")  # fmt: skip
        return CandidateRecord.of("r1", c, created_at=1.0)

    store = SqlStore(sql_url)
    try:
        store.apply([ev.RunStarted(request="q").model_copy(update={"run_id": "r1", "seq": 1, "ts": 1.0})])
        with store._begin() as conn:
            store._bulk[CANDIDATES](conn, [record(0, "first"), record(1, "first")])
        with store._begin() as conn:
            store._bulk[CANDIDATES](conn, [record(1, "second"), record(2, "second")])
        with store._connect() as conn:
            rows = conn.execute(sa.select(CANDIDATES.c.id, CANDIDATES.c.text).order_by(CANDIDATES.c.id)).all()
        assert [tuple(r) for r in rows] == [("c0", "first"), ("c1", "first"), ("c2", "second")]
    finally:
        store.close()
