"""``longthink export``: SFT, DPO and PRM data from real stored searches (test doubles through the real parsers)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longthink.cli import app as cli_app
from longthink.errors import ConfigError
from longthink.events import EventBus, RunStarted, StepStarted
from longthink.llm.types import Message, SamplingParams
from longthink.post_training.data import ExportOptions, build_dataset, heldout_share, question_key
from longthink.post_training.manifest import DataManifest, public_url, read_split
from longthink.rewards.verifier import ReferenceMatch
from longthink.search import BestOfN, TreeSearch
from longthink.search.context import SearchContext
from longthink.search.types import Problem
from longthink.store import SqlStore, StoreObserver, step_lines

QUESTIONS = {f"q{k}": (f"What is {k} + {k + 1}?", str(2 * k + 1)) for k in range(10)}


def _solver(prompt: str, params: SamplingParams, i: int) -> str:
    """Samples 0 and 1 right (1 shorter), 2 wrong, 3 no answer, 4 right (a duplicate of 0 up to whitespace)."""
    k = next(int(q.split()[2]) for q, _ in QUESTIONS.values() if q in prompt)
    right = 2 * k + 1
    return [
        f"{k} plus {k + 1} is {right}. Answer: {right}",
        f"{right}. Answer: {right}",
        f"I think it is {right + 1}. Answer: {right + 1}",
        "I am not sure how to add these.",
        f"{k}  plus {k + 1}   is {right}.  Answer: {right}",
    ][i % 5]


async def _best_of_n(store: SqlStore, run_id: str, model: str, mode: str = "text") -> None:
    bus = EventBus(run_id)
    with StoreObserver(store, bus, interval_s=0.01):
        bus.emit(RunStarted(request="arithmetic", options={"strategy": "best_of_n"}))
        for pid, (question, reference) in QUESTIONS.items():
            problem = Problem.from_text(pid, question, answer_kind="number", reference=reference)
            _step_started(bus, problem, "best_of_n")
            ctx = SearchContext(_Function(model), events=bus, seed=7, step_id=pid)
            await BestOfN(n=5, scorer=ReferenceMatch(name="correct")).solve(problem, ctx)


def _step_started(bus: EventBus, problem: Problem, strategy: str) -> None:
    """What the agent (and benchmarks/verifier_data.py) emit before a search: the step with its prompt."""
    bus.emit(
        StepStarted(
            step_id=problem.id,
            problem_id=problem.id,
            strategy=strategy,
            goal=problem.question,
            prompt=[{"role": m.role, "content": m.content} for m in problem.prompt],
        )
    )


def _Function(model: str):
    from longthink.testing import FunctionLLM

    return FunctionLLM(_solver, model=model)


def _stepper(prompt: str, params: SamplingParams, i: int) -> str:
    """A two-step solver for tree search: step 1 is ``Step <i>.``; below step 1 of sample 0 every leaf is right,
    below the others every leaf is wrong."""
    if "Step " not in prompt.split("Compute 1 + 2.", 1)[1]:
        return f"Step {i}.\n\nignored"
    first = prompt.rsplit("Step ", 1)[1].split(".", 1)[0]
    return f"Then {i}. Answer: {3 if first == '0' else 4}"


async def _tree(store: SqlStore, run_id: str) -> None:
    from longthink.testing import FunctionLLM

    bus = EventBus(run_id)
    with StoreObserver(store, bus, interval_s=0.01):
        bus.emit(RunStarted(request="tree", options={"strategy": "tree"}))
        problem = Problem.from_text("t", "Compute 1 + 2.", answer_kind="number", reference="3")
        _step_started(bus, problem, "tree")
        ctx = SearchContext(FunctionLLM(_stepper, model="stepper"), events=bus, seed=3, step_id="t")
        tree = TreeSearch(
            expand=2, frontier_batch=2, max_expansions=3, target_finished=4, scorer=ReferenceMatch(name="correct")
        )
        await tree.solve(problem, ctx)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    store = SqlStore(url)
    try:
        asyncio.run(_best_of_n(store, "run-self", "policy"))
        asyncio.run(_best_of_n(store, "run-teacher", "teacher"))
        asyncio.run(_tree(store, "run-tree"))
    finally:
        store.close()
    return url


def _lines(url: str) -> list[dict]:
    store = SqlStore(url)
    try:
        return [line for r in store.list_runs() for line in step_lines(store.get_run(r.id))]  # type: ignore[arg-type]
    finally:
        store.close()


def test_sft_keeps_the_shortest_verified_solution_per_prompt_pooled_across_runs(db: str) -> None:
    lines = [line for line in _lines(db) if line["run_id"] != "run-tree"]
    data = build_dataset(lines, ExportOptions("sft", heldout=0.0))
    assert not data.heldout and len(data.train) == len(QUESTIONS)  # two runs, one pooled problem each
    for ex in data.train:
        k = int(ex.prompt[-1].content.split()[2])
        assert ex.completion == f"{2 * k + 1}. Answer: {2 * k + 1}"  # right and shortest
        assert ex.source.label == "correct" and ex.source.model in ("policy", "teacher")
    three = build_dataset(lines, ExportOptions("sft", heldout=0.0, per_problem=3))
    # per prompt: 3 distinct right texts exist across both runs (sample 4 duplicates sample 0 up to whitespace)
    assert len(three.train) == 2 * len(QUESTIONS)
    assert three.counts["duplicates"] > 0
    only = build_dataset(lines, ExportOptions("sft", heldout=0.0, models=("teacher",)))
    assert {ex.source.model for ex in only.train} == {"teacher"} and only.models == {"teacher": len(QUESTIONS)}
    record = data.train[0].as_json()
    assert record["completion"][0]["role"] == "assistant" and record["prompt"][-1]["role"] == "user"


def test_dpo_pairs_a_verified_solution_with_a_wrong_one_of_the_same_prompt(db: str) -> None:
    data = build_dataset(_lines(db), ExportOptions("dpo", heldout=0.0, pairs_per_problem=2))
    bon = [p for p in data.train if p.chosen_source.run_id != "run-tree"]
    assert len(bon) == 2 * len(QUESTIONS)  # the wrong answer and the non-answer, each once across the runs
    for pair in bon:
        k = int(pair.prompt[-1].content.split()[2])
        assert pair.chosen.endswith(f"Answer: {2 * k + 1}")
        assert pair.rejected in (f"I think it is {2 * k + 2}. Answer: {2 * k + 2}", "I am not sure how to add these.")
        assert pair.chosen_source.label == pair.rejected_source.label == "correct"
    assert len({(p.problem, p.rejected) for p in data.train}) == len(data.train)  # no duplicate pairs


def test_prm_labels_each_tree_step_by_its_rollouts(db: str) -> None:
    data = build_dataset(_lines(db), ExportOptions("prm", heldout=0.0))
    assert data.train and all(ex.source.run_id == "run-tree" for ex in data.train)  # flat samples: no steps
    for ex in data.train:
        assert len(ex.steps) == 2 and ex.steps[0].startswith("Step ") and ex.steps[0].endswith("\n\n")
        right = ex.steps[1].endswith("Answer: 3")
        assert ex.labels == ((ex.steps[0] == "Step 0.\n\n"), right)
        assert ex.source.label == "rollouts:correct"
    assert {ex.labels for ex in data.train} >= {(True, True), (False, False)}


def test_prm_from_per_step_scores() -> None:
    line = {
        "run_id": "r",
        "step_id": "s",
        "problem_id": "s",
        "strategy": "best_of_n",
        "prompt": [{"role": "user", "content": "Add 2 and 2."}],
        "candidates": [
            {
                "id": "c0",
                "text": "2 and 2.\n\nmakes 4.\n\nAnswer: 4",
                "finish_reason": "stop",
                "model": "m",
                "scores": {"prm": 0.4},
                "step_scores": {"prm": [0.9, 0.6, 0.2]},
            },
            {"id": "c1", "text": "one step", "finish_reason": "stop", "model": "m", "step_scores": {"prm": [0.9, 0.1]}},
        ],
    }
    data = build_dataset([line], ExportOptions("prm", heldout=0.0))
    [ex] = data.train
    assert ex.steps == ("2 and 2.\n\n", "makes 4.\n\n", "Answer: 4") and ex.labels == (True, True, False)
    assert ex.source.label == "step_scores:prm" and data.counts["skipped_step_mismatch"] == 1


def test_the_heldout_split_is_by_question_and_stable() -> None:
    program = Problem.from_text("a", "What is 3 + 4?", answer_kind="number", mode="program").prompt
    text = Problem.from_text("b", "What is 3 + 4?", answer_kind="number").prompt
    assert question_key(program) == question_key(text) == "what is 3 + 4?"
    told = Problem.from_text("c", "What is 3 + 4?\n\nEnd with 'Answer: <n>'.", answer_kind="number").prompt
    assert question_key(told) != question_key(text)
    assert question_key(told, ["End with 'Answer: <n>'."]) == question_key(text)  # a named instruction is dropped
    assert question_key(Problem.from_text("d", "End with 'Answer: <n>'.").prompt, ["End with 'Answer: <n>'."])
    assert 0.0 <= heldout_share("x") < 1.0 and heldout_share("x") == heldout_share("x")
    keys = [f"question {k}" for k in range(400)]
    share = sum(heldout_share(k) < 0.25 for k in keys) / len(keys)
    assert 0.18 < share < 0.32


def test_unlabelled_runs_give_sft_from_verified_steps_only() -> None:
    cands = [
        {"id": f"c{i}", "text": f"answer {i}", "finish_reason": "stop", "model": "m", "scores": {"judge": 0.9}}
        for i in range(3)
    ]
    base = {
        "run_id": "r",
        "step_id": "s1",
        "problem_id": "s1",
        "prompt": [{"role": "user", "content": "Plan it."}],
        "candidates": cands,
        "chosen": "c1",
    }
    verified = build_dataset([{**base, "verified": True}], ExportOptions("sft", heldout=0.0))
    assert [ex.completion for ex in verified.train] == ["answer 1"]
    assert verified.train[0].source.label == "step_verified"
    assert not build_dataset([{**base, "verified": False}], ExportOptions("sft", heldout=0.0)).train
    assert not build_dataset([{**base, "verified": True}], ExportOptions("dpo", heldout=0.0)).train
    no_prompt = build_dataset([{**base, "prompt": None, "verified": True}], ExportOptions("sft"))
    assert no_prompt.counts["skipped_no_prompt"] == 1 and not no_prompt.train


def test_options_are_validated_before_anything_is_read() -> None:
    with pytest.raises(ConfigError, match="format"):
        ExportOptions("ppo")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="heldout"):
        ExportOptions("sft", heldout=1.0)
    with pytest.raises(ConfigError, match="per_problem"):
        ExportOptions("sft", per_problem=0)


def test_public_url_hides_passwords_and_local_folders() -> None:
    assert public_url("sqlite:////home/someone/data/runs.db") == "sqlite:///runs.db"
    assert public_url("postgresql+psycopg://u:secret@host/db") == "postgresql+psycopg://u:***@host/db"
    assert public_url("memory://") == "memory://"


def test_cli_export_writes_splits_and_a_manifest_and_runs_export_still_works(db: str, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "sft"
    res = runner.invoke(
        cli_app,
        [
            "export",
            "--format",
            "sft",
            "--db",
            db,
            "--out",
            str(out),
            "--heldout",
            "0.3",
            "--per-problem",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    manifest = DataManifest.model_validate_json(res.output)
    assert manifest == DataManifest.load(out)
    assert manifest.format == "sft" and sorted(manifest.runs) == ["run-self", "run-teacher", "run-tree"]
    assert manifest.store == "sqlite:///runs.db" and manifest.label_scorers["correct"] >= len(QUESTIONS)
    assert set(manifest.models) <= {"policy", "teacher", "stepper"} and "correct" in manifest.scorers
    train, heldout = read_split(out, "train"), read_split(out, "heldout")
    assert manifest.files["train.jsonl"].examples == len(train) and manifest.files["heldout.jsonl"].examples == len(
        heldout
    )
    assert train and heldout  # 11 questions at 30%: both sides non-empty for this hash
    assert not {r["problem"] for r in train} & {r["problem"] for r in heldout}
    for name, stats in manifest.files.items():
        assert stats.sha256 == hashlib.sha256((out / name).read_bytes()).hexdigest()
    again = runner.invoke(
        cli_app,
        ["export", "-f", "sft", "--db", db, "--out", str(tmp_path / "again"), "--heldout", "0.3", "--per-problem", "2"],
    )
    assert again.exit_code == 0 and "wrote" in again.output
    assert (tmp_path / "again" / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()  # stable
    (out / "train.jsonl").write_text((out / "train.jsonl").read_text() + "\n{}\n")
    with pytest.raises(ConfigError, match="does not match its manifest"):
        read_split(out, "train")
    bad = runner.invoke(cli_app, ["export", "--format", "rlhf", "--db", db, "--out", str(tmp_path / "x")])
    assert isinstance(bad.exception, ConfigError)
    legacy = tmp_path / "runs.jsonl"
    res = runner.invoke(cli_app, ["runs", "export", "--out", str(legacy)], env={"LONGTHINK_DB_URL": db})
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in legacy.read_text().splitlines()]
    assert len(rows) == 2 * len(QUESTIONS) + 1 and {"chosen", "candidates", "prompt"} <= set(rows[0])


def test_export_prompt_messages_round_trip() -> None:
    line = {
        "run_id": "r",
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "candidates": [{"id": "a", "text": "Hello", "finish_reason": "stop", "scores": {"correct": 1.0}}],
    }
    [ex] = build_dataset([line], ExportOptions("sft", heldout=0.0)).train
    assert ex.prompt == (Message.system("Be brief."), Message.user("Hi"))
