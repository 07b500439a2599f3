"""The learned outcome verifier: features among siblings, the logistic fit and metrics, the artifact, training
from a real search's stored trace (labels per candidate id), the CLI, and the llama.cpp embedder."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from longthink.cli import app as cli_app
from longthink.errors import ConfigError
from longthink.events import EventBus, RunStarted
from longthink.llm.types import SamplingParams
from longthink.program import Execution
from longthink.rewards import LearnedVerifier, VerifierArtifact, candidate_features, labelled_groups, train_verifier
from longthink.rewards.learned import SCALAR_FEATURES
from longthink.rewards.train import (
    LabelledGroup,
    auroc,
    brier,
    candidate_from_export,
    ece,
    fit_logistic,
    labelled_from_store,
    problem_from_export,
)
from longthink.rewards.verifier import ReferenceMatch
from longthink.search import BestOfN, Candidate, Problem, SearchContext
from longthink.store import SqlStore, StoreObserver, step_lines
from longthink.testing import FunctionLLM

F = {name: i for i, name in enumerate(SCALAR_FEATURES)}


def cand(
    i: int,
    answer: str | None,
    *,
    logprob: float | None = -0.5,
    finish: str = "stop",
    tokens: int = 20,
    execution: Execution | None = None,
    text: str | None = None,
) -> Candidate:
    return Candidate(
        id=f"p/c{i}",
        problem_id="p",
        index=i,
        text=text or f"so Answer: {answer}",
        answer=answer,
        parse_error=None if answer is not None else "no number",
        finish_reason=finish,  # type: ignore[arg-type]
        prompt_tokens=10,
        completion_tokens=tokens,
        latency_s=0.0,
        model="m",
        prompt_hash="h",
        mean_logprob=logprob,
        execution=execution,
    )


# -- features ---------------------------------------------------------------------------------------------------


def test_vote_shares_leader_ties_and_distinct_ratio() -> None:
    x = candidate_features([cand(0, "1"), cand(1, "1"), cand(2, "2"), cand(3, "2"), cand(4, None)])
    assert x.shape == (5, len(SCALAR_FEATURES))
    assert x[:, F["has_answer"]].tolist() == [1, 1, 1, 1, 0]
    assert x[:, F["vote_share"]].tolist() == pytest.approx([0.4, 0.4, 0.4, 0.4, 0.0])
    assert x[:, F["vote_share_answered"]].tolist() == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.0])
    assert x[:, F["is_leader"]].tolist() == [1, 1, 1, 1, 0]  # a tie: both answers lead
    assert x[:, F["distinct_ratio"]].tolist() == pytest.approx([0.4] * 5)
    assert x[:, F["log_siblings"]].tolist() == pytest.approx([math.log(5)] * 5)
    y = candidate_features([cand(0, "1"), cand(1, "1"), cand(2, "2")])
    assert y[:, F["is_leader"]].tolist() == [1, 1, 0]
    assert y[:, F["vote_share"]].tolist() == pytest.approx([2 / 3, 2 / 3, 1 / 3])


def test_logprob_features_and_the_answer_certainty_gap() -> None:
    x = candidate_features([cand(0, "7", logprob=-0.1), cand(1, "7", logprob=-0.3), cand(2, "8", logprob=None)])
    c0, c1 = math.exp(-0.1), math.exp(-0.3)
    assert x[:, F["certainty"]].tolist() == pytest.approx([c0, c1, 0.0])
    assert x[:, F["mean_logprob"]].tolist() == pytest.approx([-0.1, -0.3, 0.0])
    assert x[:, F["logprob_missing"]].tolist() == [0, 0, 1]
    # "7"'s mean certainty equals the mean over the siblings with logprobs; "8" has none known
    assert x[:, F["answer_certainty_gap"]].tolist() == pytest.approx([0.0, 0.0, 0.0])
    z = candidate_features([cand(0, "7", logprob=-0.1), cand(1, "8", logprob=-2.0)])
    overall = (math.exp(-0.1) + math.exp(-2.0)) / 2
    assert z[:, F["answer_certainty_gap"]].tolist() == pytest.approx([math.exp(-0.1) - overall, math.exp(-2) - overall])


@pytest.mark.parametrize(
    "cands",
    [
        [],
        [cand(0, "5")],
        [cand(0, None, logprob=None)],
        [cand(0, None, logprob=None), cand(1, None, logprob=None)],
        [cand(0, "5", logprob=float("nan")), cand(1, "inf", logprob=float("-inf"), tokens=-3)],
        [cand(0, "1e400", logprob=5.0, finish="length", tokens=10**9)],
    ],
)
def test_features_are_finite_for_any_input(cands: list[Candidate]) -> None:
    x = candidate_features(cands)
    assert x.shape == (len(cands), len(SCALAR_FEATURES))
    assert np.isfinite(x).all()


def test_one_candidate_and_shapes_of_numbers_cut_off_and_program_runs() -> None:
    [one] = candidate_features([cand(0, "42")])
    assert one[F["vote_share"]] == one[F["vote_share_answered"]] == one[F["is_leader"]] == 1.0
    assert one[F["answer_is_integer"]] == 1.0 and one[F["answer_many_decimals"]] == 0.0
    x = candidate_features([cand(0, "3.14159"), cand(1, "2.50"), cand(2, "-1,200"), cand(3, "abc", finish="length")])
    assert x[:, F["answer_is_integer"]].tolist() == [0, 0, 1, 0]
    assert x[:, F["answer_many_decimals"]].tolist() == [1, 0, 0, 0]
    assert x[:, F["cut_off"]].tolist() == [0, 0, 0, 1]
    assert x[0, F["log_tokens"]] == pytest.approx(math.log1p(20))
    ran = Execution(True, "4\n", None, 0.01, "bwrap")
    crashed = Execution(False, "", "program failed: ZeroDivisionError", 0.01, "bwrap")
    p = candidate_features([cand(0, "4", execution=ran), cand(1, None, execution=crashed)])
    assert p[:, F["program_mode"]].tolist() == [1, 1] and p[:, F["executed_ok"]].tolist() == [1, 0]
    t = candidate_features([cand(0, "4")], program_mode=True)
    assert t[0, F["program_mode"]] == 1 and t[0, F["executed_ok"]] == 0


# -- logistic regression and metrics ----------------------------------------------------------------------------


def test_metric_helpers_on_known_values() -> None:
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auroc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert auroc([0, 1, 1], [0.2, 0.2, 0.9]) == pytest.approx(0.75)  # one tied pair counts one half
    assert auroc([1, 1], [0.3, 0.4]) is None
    assert brier([0, 1], [0.0, 1.0]) == 0.0
    assert brier([0, 1], [0.5, 0.5]) == 0.25
    assert brier([], []) is None
    assert ece([0, 1], [0.1, 0.9]) == pytest.approx(0.1)
    assert ece([1, 1, 0, 0], [1.0, 1.0, 0.0, 0.0]) == 0.0  # 1.0 falls in the last bin
    assert ece([0, 1], [0.5, 0.5]) == pytest.approx(0.0)  # one bin, mean 0.5 = rate 0.5


def test_logistic_regression_learns_a_separable_toy_set() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] - 0.5 * x[:, 1] > 0).astype(np.float64)
    w, b = fit_logistic(x, y, l2=1.0)
    p = 1 / (1 + np.exp(-(x @ w + b)))
    assert auroc(y, p) > 0.95
    assert w[0] > 0 > w[1] and np.isfinite(w).all()
    again = fit_logistic(x, y, l2=1.0)
    assert np.array_equal(again[0], w) and again[1] == b  # deterministic
    with pytest.raises(ConfigError, match="l2"):
        fit_logistic(x, y, l2=0.0)


# -- training on a synthetic set and the artifact ----------------------------------------------------------------


def synthetic_groups(n_groups: int = 12, n: int = 6, seed: int = 0) -> list[LabelledGroup]:
    """Groups where the majority answer is usually right and more certain."""
    rng = np.random.default_rng(seed)
    groups = []
    for g in range(n_groups):
        right, wrong = str(g + 10), str(g + 100)
        cands, labels = [], []
        for i in range(n):
            correct = bool(rng.random() < 0.6)
            answer = right if correct else (wrong if rng.random() < 0.7 else None)
            lp = -0.2 - rng.random() * 0.3 if correct else -0.8 - rng.random()
            cands.append(cand(i, answer, logprob=float(lp), text=f"work {g}.{i}: so Answer: {answer}"))
            labels.append(1 if correct else 0)
        problem = Problem.from_text(f"q{g}", f"Question {g}?", answer_kind="number")
        groups.append(LabelledGroup("run", None, problem, tuple(cands), tuple(labels), "correct", "best_of_n"))
    return groups


def test_train_save_load_and_score_the_same(tmp_path: Path) -> None:
    groups = synthetic_groups()
    art = train_verifier(groups, heldout=0.25, seed=1)
    assert art.feature_names == SCALAR_FEATURES and art.embedder_model is None
    t, m = art.trained_on, art.metrics
    assert (t.examples, t.groups, t.runs, t.label_source, t.sources, t.policy_models) == (
        72,
        12,
        1,
        ("correct",),
        ("best_of_n",),
        ("m",),
    )
    assert t.positives == sum(y for g in groups for y in g.labels if y is not None)
    assert m.heldout_groups == 3 and m.heldout_examples == 18
    assert m.train_auroc is not None and m.train_auroc > 0.9
    assert m.heldout_auroc is not None and m.heldout_auroc > 0.8
    assert m.heldout_brier is not None and 0 <= m.heldout_brier < 0.25 and m.heldout_ece is not None
    again = train_verifier(groups, heldout=0.25, seed=1)
    assert again.weights == art.weights and again.trained_on == art.trained_on  # deterministic, same hash

    path = art.save(tmp_path / "v" / "verifier.json")
    loaded = VerifierArtifact.load(path)
    assert loaded == art
    problem, siblings = groups[0].problem, groups[0].candidates
    direct = asyncio.run(LearnedVerifier(art).score(problem, siblings))
    from_file = asyncio.run(LearnedVerifier(path, name="lv").score(problem, siblings))
    assert [s.value for s in direct] == [s.value for s in from_file]
    assert all(0.0 <= s.value <= 1.0 for s in direct) and from_file[0].scorer == "lv"
    assert "P(correct)" in direct[0].rationale and any(name in direct[0].rationale for name in SCALAR_FEATURES)
    assert asyncio.run(LearnedVerifier(art).score(problem, [])) == []


def test_training_refuses_too_little_or_one_class() -> None:
    with pytest.raises(ConfigError, match="only 6 labelled examples"):
        train_verifier(synthetic_groups(1))
    same = [LabelledGroup(g.run_id, None, g.problem, g.candidates, (1,) * len(g.labels), "correct")
            for g in synthetic_groups()]  # fmt: skip
    with pytest.raises(ConfigError, match="all 72 labelled examples are correct"):
        train_verifier(same)


def test_the_artifact_refuses_a_wrong_format_or_version(tmp_path: Path) -> None:
    data = train_verifier(synthetic_groups()).model_dump(mode="json")
    for patch, message in [
        ({"format": "other.thing"}, "not a longthink.learned_verifier artifact"),
        ({"version": 2}, "version 2"),
        ({"weights": [1.0]}, "invalid verifier artifact"),
        ({"feature_names": ["x", *data["feature_names"][1:]]}, "invalid verifier artifact"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({**data, **patch}))
        with pytest.raises(ConfigError, match=message):
            VerifierArtifact.load(path)
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        VerifierArtifact.load(tmp_path / "junk.json")
    with pytest.raises(ConfigError, match="cannot read"):
        VerifierArtifact.load(tmp_path / "missing.json")


class HashEmbedder:
    """A deterministic embedder double: unit vectors from a hash of the text (and a "right answer" direction)."""

    def __init__(self, model: str = "hash-embedder", width: int = 24) -> None:
        self.model = model
        self.width = width
        self.calls: list[int] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")
            v = np.random.default_rng(seed).normal(size=self.width)
            rows.append(v / np.linalg.norm(v))
        return np.asarray(rows)


def test_embedding_features_go_through_a_pca_stored_in_the_artifact(tmp_path: Path) -> None:
    groups = synthetic_groups()
    embedder = HashEmbedder()
    art = train_verifier(groups, embedder=embedder, pca_dim=5)
    assert art.embedder_model == "hash-embedder"
    assert art.feature_names[-5:] == tuple(f"emb_{j}" for j in range(5))
    assert art.pca_components is not None and len(art.pca_components) == 5 and len(art.pca_components[0]) == 24
    loaded = VerifierArtifact.load(art.save(tmp_path / "e.json"))
    scorer = LearnedVerifier(loaded, embedder=embedder)
    values = asyncio.run(scorer.score(groups[0].problem, groups[0].candidates))
    assert embedder.calls[-1] == 6 and all(0 <= s.value <= 1 for s in values)
    with pytest.raises(ConfigError, match="trained with embedder 'hash-embedder'"):
        LearnedVerifier(loaded, embedder=HashEmbedder("other"))
    narrow = LearnedVerifier(loaded, embedder=HashEmbedder(width=8))
    with pytest.raises(ConfigError, match="PCA width 24"):
        asyncio.run(narrow.score(groups[0].problem, groups[0].candidates))


# -- from a real search's stored trace ---------------------------------------------------------------------------

QUESTIONS = {f"q{k}": (f"What is {k} + {k + 1}?", str(2 * k + 1)) for k in range(8)}


def _solver(prompt: str, params: SamplingParams, i: int) -> str:
    """Right for samples 0 and 1, wrong (off by one) for 2, no answer for 3, right but long-winded for 4."""
    k = next(int(q.split()[2]) for q, _ in QUESTIONS.values() if q in prompt)
    right = 2 * k + 1
    return [
        f"{k} plus {k + 1} is {right}. Answer: {right}",
        f"Adding gives {right}. Answer: {right}",
        f"I think it is {right + 1}. Answer: {right + 1}",
        "I am not sure how to add these.",
        f"Let me count carefully, one step at a time, up to {right}. Answer: {right}",
    ][i % 5]


def expected_labels(answer: str | None, reference: str) -> int:
    return 1 if answer == reference else 0


async def _searched(store: SqlStore, run_id: str) -> list[tuple[Problem, list[Candidate]]]:
    bus = EventBus(run_id)
    out = []
    with StoreObserver(store, bus, interval_s=0.01):
        bus.emit(RunStarted(request="arithmetic", options={"strategy": "best_of_n"}))
        ctx = SearchContext(FunctionLLM(_solver, model="adder"), events=bus, seed=7)
        for pid, (question, reference) in QUESTIONS.items():
            problem = Problem.from_text(pid, question, answer_kind="number", reference=reference)
            res = await BestOfN(n=5, scorer=ReferenceMatch(name="correct")).solve(problem, ctx)
            out.append((problem, list(res.candidates)))
    return out


def test_labels_from_a_stored_search_match_each_candidate_and_the_cli_trains(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    store = SqlStore(f"sqlite:///{db}")
    try:
        searched = asyncio.run(_searched(store, "run-lv"))
        detail = store.get_run("run-lv")
        assert detail is not None
        lines = list(step_lines(detail))
        groups = labelled_groups(lines)
        from_store = labelled_from_store(store)
    finally:
        store.close()
    assert len(groups) == len(QUESTIONS) == len(lines)
    assert [(g.problem.id, g.labels) for g in groups] == [(g.problem.id, g.labels) for g in from_store]
    want = {c.id: expected_labels(c.answer, QUESTIONS[p.id][1]) for p, cands in searched for c in cands}
    got = {c.id: y for g in groups for c, y in zip(g.candidates, g.labels, strict=True)}
    assert got == want and sum(want.values()) == 3 * len(QUESTIONS)
    g0 = next(g for g in groups if g.problem.id == "q0")
    assert g0.label_scorer == "correct" and g0.strategy == "best_of_n" and g0.run_id == "run-lv"
    assert [c.answer for c in g0.candidates] == ["1", "1", "2", None, "1"]
    assert all(c.mean_logprob is not None and c.model == "adder" for c in g0.candidates)
    # candidates rebuilt from the export give the same features as the live ones
    live = next(cands for p, cands in searched if p.id == "q0")
    assert np.array_equal(candidate_features(g0.candidates), candidate_features(live))
    assert labelled_groups(lines, label_scorer="tests") == []  # no such scorer: no groups

    out = tmp_path / "verifier.json"
    runner = CliRunner()
    res = runner.invoke(cli_app, ["rewards", "train", "--db", f"sqlite:///{db}", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["trained_on"]["examples"] == 40 and summary["trained_on"]["positives"] == 24
    assert summary["trained_on"]["groups"] == 8 and summary["metrics"]["heldout_groups"] == 2
    verifier = LearnedVerifier(out)
    problem, cands = searched[0]
    values = [s.value for s in asyncio.run(verifier.score(problem, cands))]
    assert values[0] > values[2] and values[0] > values[3]  # the majority answer beats the lone wrong one
    shown = runner.invoke(cli_app, ["rewards", "show", str(out)])
    assert shown.exit_code == 0 and "AUROC" in shown.output and "40 examples" in shown.output
    few = runner.invoke(cli_app, ["rewards", "train", "--db", f"sqlite:///{db}", "--run", "run-lv",
                                 "--label-scorer", "nope", "--out", str(tmp_path / "x.json")])  # fmt: skip
    assert isinstance(few.exception, ConfigError) and "only 0 labelled examples" in str(few.exception)


def test_export_dicts_rebuild_candidates_and_infer_program_runs() -> None:
    line = {
        "run_id": "r", "step_id": None, "problem_id": "p", "strategy": "best_of_n",
        "prompt": [{"role": "user", "content": "Add.\n\nWrite a short Python program that computes the answer "
                    "and prints it with print(). Print only the final answer, as a number, and nothing else. "
                    "Reply with the program in one ```python code block."}],
        "candidates": [
            {"id": "a", "answer": "3", "parse_error": None, "scores": {"correct": 1.0}, "mean_logprob": -0.2},
            {"id": "b", "answer": None, "parse_error": "program failed: NameError", "scores": {"correct": 0.0}},
            {"id": "c", "answer": None, "parse_error": "no program: no code block", "scores": {"correct": 0.0}},
            {"id": "d", "answer": None, "parse_error": "program printed nothing", "scores": {"correct": None}},
            {"id": "e", "answer": None, "partial": True, "scores": {"correct": 0.0}},
            {"id": "f", "answer": "3", "execution": {"ok": True, "output": "3", "error": None, "duration_s": 0.1,
                                                    "sandboxed_by": "bwrap"}, "scores": {"correct": 1.0}},
        ],
    }  # fmt: skip
    [g] = labelled_groups([line])
    assert g.problem.mode == "program" and [c.id for c in g.candidates] == ["a", "b", "c", "d", "f"]
    assert g.labels == (1, 0, 0, None, 1)
    runs = [None if c.execution is None else c.execution.ok for c in g.candidates]
    assert runs == [True, False, None, True, True]
    assert g.candidates[4].execution is not None and g.candidates[4].execution.sandboxed_by == "bwrap"
    text = problem_from_export({"problem_id": "t", "prompt": None}, [{"parse_error": "no number"}])
    assert text.mode == "text" and text.question == ""
    bare = candidate_from_export({"id": "x", "finish_reason": "weird", "mean_logprob": "?"}, "t")
    assert (bare.finish_reason, bare.mean_logprob, bare.answer, bare.execution) == ("stop", None, None, None)


# -- the real embedder --------------------------------------------------------------------------------------------


@pytest.mark.real_model
def test_llama_cpp_embedder_gives_deterministic_unit_vectors() -> None:
    from longthink.llm.embeddings import LlamaCppEmbedder

    with LlamaCppEmbedder("smollm2-135m-instruct", n_threads=1) as embedder:
        assert embedder.model == "smollm2-135m-instruct"
        texts = ["What is 2 + 3?\n\nAnswer: 5", "Name a colour.\n\nBlue."]
        e = embedder.embed(texts)
        again = embedder.embed([texts[0], texts[0]])
        empty = embedder.embed([""])
    assert e.shape == (2, embedder.width) and embedder.width > 0
    assert np.isfinite(e).all() and np.allclose(np.linalg.norm(e, axis=1), 1.0)
    assert np.allclose(again[0], again[1]) and np.allclose(again[0], e[0], atol=1e-5)
    assert not np.allclose(e[0], e[1])
    assert empty.shape == (1, embedder.width) and np.isfinite(empty).all()


def test_question_numbers_used_reads_the_quantities_a_solution_mentions() -> None:
    from longthink.rewards.learned import numbers_used

    question = "Tom has 1,200 apples, 3.50 dollars and 7 kids."
    assert numbers_used(question, "x = 1200\ny = 3.5\nprint(x * y)") == pytest.approx(2 / 3)
    assert numbers_used(question, "print(1200 * 3.5 / 7)") == 1.0
    assert numbers_used("no numbers here", "print(1)") == 1.0
    assert numbers_used(question, "") == 1.0  # the text is not known (a pool kept without texts)
    x = candidate_features([cand(0, "8")], question=question)
    assert x[0, F["question_numbers_used"]] == 0.0  # "so Answer: 8" mentions none of them
