"""Scorers: verifiers, LLM judges (test doubles and the real embedded model), self-certainty, reward models
(a tiny sequence-classification model built and saved here; a real HTTP server speaking vLLM's pooling
routes), ensembles and step aggregation."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from servers import Reply, ScriptedServer

from longthink.budget import Budget
from longthink.errors import BackendError, BudgetExceeded, ConfigError
from longthink.llm.base import BaseLLM
from longthink.llm.types import Completion, Message, SamplingParams, TokenLogprob
from longthink.rewards import (
    Aggregated,
    Ensemble,
    Judge,
    PoolingRewardClient,
    ProcessJudge,
    ReferenceMatch,
    Scorer,
    SelfCertainty,
    TransformersRewardModel,
    Verdict,
    Verifier,
    parse_rating,
    parse_yes_no,
)
from longthink.search.types import Candidate, Problem
from longthink.testing import FunctionLLM, ScriptedLLM

ARITH = Problem.from_text("add", "What is 2+2?", answer_kind="number", reference="4")


def cand(
    text: str = "",
    answer: str | None = None,
    *,
    parse_error: str | None = None,
    mean_logprob: float | None = None,
    index: int = 0,
) -> Candidate:
    """A candidate with only the fields scorers look at set to something meaningful."""
    if answer is None and parse_error is None:
        parse_error = "no number found"
    return Candidate(
        id=f"c{index}",
        problem_id="add",
        index=index,
        text=text,
        answer=answer,
        parse_error=parse_error,
        finish_reason="stop",
        prompt_tokens=10,
        completion_tokens=5,
        latency_s=0.0,
        model="test",
        prompt_hash="h",
        mean_logprob=mean_logprob,
    )


# -- verifiers --------------------------------------------------------------------------------------------
async def test_verifier_accepts_bool_float_and_verdict() -> None:
    def check(problem: Problem, c: Candidate) -> bool | float | Verdict:
        if c.answer == "4":
            return True
        if c.answer == "5":
            return 0.25
        return Verdict(0.0, f"{c.answer} is far off")

    scores = await Verifier(check, name="v").score(ARITH, [cand("", "4"), cand("", "5", index=1), cand("", "9")])
    assert [s.value for s in scores] == [1.0, 0.25, 0.0]
    assert [s.scorer for s in scores] == ["v", "v", "v"]
    assert scores[0].rationale == "passed"
    assert scores[2].rationale == "9 is far off"


async def test_async_and_threaded_verifiers() -> None:
    async def check(problem: Problem, c: Candidate) -> float:
        await asyncio.sleep(0)
        return float(c.answer == problem.reference)

    def slow_check(problem: Problem, c: Candidate) -> bool:
        return c.answer == problem.reference

    candidates = [cand("", "4"), cand("", "3")]
    assert [s.value for s in await Verifier(check).score(ARITH, candidates)] == [1.0, 0.0]
    assert [s.value for s in await Verifier(slow_check, in_thread=True).score(ARITH, candidates)] == [1.0, 0.0]


async def test_verifier_records_exceptions_and_skips_candidates_without_answer() -> None:
    calls: list[str | None] = []

    def check(problem: Problem, c: Candidate) -> float:
        calls.append(c.answer)
        if c.answer == "boom":
            raise ValueError("the test suite crashed")
        return 1.0

    candidates = [cand("", "boom"), cand("no answer here", None, parse_error="no number found"), cand("", "4")]
    scores = await Verifier(check).score(ARITH, candidates)
    assert [s.value for s in scores] == [0.0, 0.0, 1.0]
    assert "ValueError" in scores[0].rationale and "the test suite crashed" in scores[0].rationale
    assert scores[1].rationale == "no number found"
    assert calls == ["boom", "4"]  # the candidate without an answer never reached fn


async def test_cost_verifier_with_a_floor_below_every_cost() -> None:
    def cost(problem: Problem, c: Candidate) -> float:
        return -float(c.answer or 0) if c.answer != "nan" else math.nan

    v = Verifier(cost, name="cost", floor=-math.inf)
    scores = await v.score(ARITH, [cand("", "12"), cand("", "30"), cand("", None), cand("", "nan")])
    assert [s.value for s in scores] == [-12.0, -30.0, -math.inf, -math.inf]
    assert "non-finite" in scores[3].rationale
    assert max(range(4), key=lambda i: scores[i].value) == 0  # the cheapest candidate wins


async def test_reference_match_tells_right_from_wrong() -> None:
    wrong, right = cand("2+2=5", "5"), cand("2+2=4", "4", index=1)
    accept_all = await Verifier(lambda p, c: True).score(ARITH, [wrong, right])
    exact = await ReferenceMatch().score(ARITH, [wrong, right, cand("?", None)])
    assert [s.value for s in accept_all] == [1.0, 1.0]  # a verifier that accepts everything ...
    assert [s.value for s in exact] == [0.0, 1.0, 0.0]  # ... is told apart by the known answer
    assert exact[0].scorer == "exact"
    # the reference is normalised like an extracted answer of the problem's kind
    money = Problem.from_text("m", "How much?", answer_kind="number", reference="1,200")
    assert [s.value for s in await ReferenceMatch().score(money, [cand("", "1200")])] == [1.0]
    with pytest.raises(ConfigError, match="no reference|has none"):
        await ReferenceMatch().score(Problem.from_text("x", "?"), [right])


def test_verifier_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        Verifier("not callable")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Verifier(lambda p, c: True, floor=math.nan)


# -- judges: parsing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [("Yes", 1.0), ("no.", 0.0), ("**Yes**, it is", 1.0), ("The answer is No", 0.0), ("Nope", None), ("", None)],
)
def test_parse_yes_no(text: str, expected: float | None) -> None:
    assert parse_yes_no(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("4", 4), ("Rating: 2/5", 2), ("7", None), ("4.5", None), ("none", None), ("10", None)]
)
def test_parse_rating(text: str, expected: int | None) -> None:
    assert parse_rating(text, 5) == expected


# -- judges: test doubles -----------------------------------------------------------------------------------
class NoLogprobs(ScriptedLLM):
    """A scripted backend that, like some servers, returns no logprobs even when asked."""

    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        results = await super()._generate(prompts, params)
        return [
            [Completion(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens, 0.0) for c in r] for r in results
        ]


class FixedLogprobs(BaseLLM):
    """Returns one completion per prompt with the given tokens and top alternatives (probabilities)."""

    def __init__(self, positions: Sequence[tuple[str, Sequence[tuple[str, float]]]]) -> None:
        super().__init__("fixed")
        self.positions = positions

    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        logprobs = tuple(
            TokenLogprob(tok, math.log(dict(top)[tok]), tuple((t, math.log(p)) for t, p in top))
            for tok, top in self.positions
        )
        text = "".join(tok for tok, _ in self.positions)
        return [[Completion(text, "stop", 20, len(logprobs), 0.0, logprobs=logprobs)] for _ in prompts]


async def test_binary_judge_sends_one_batched_greedy_call() -> None:
    llm = FunctionLLM(lambda prompt, params, i: "Yes" if "2+2 = 4" in prompt else "No")
    judge = Judge(llm, rubric="The arithmetic must be right.")
    scores = await judge.score(ARITH, [cand("2+2 = 4", "4"), cand("2+2 = 5", "5", index=1)])
    assert [s.value for s in scores] == [1.0, 0.0]
    assert all("from logprobs" in s.rationale for s in scores)  # the doubles return (fake) logprobs
    assert len(llm.calls) == 1
    prompts, params = llm.calls[0]
    assert len(prompts) == 2
    assert (params.n, params.temperature, params.logprobs, params.top_logprobs) == (1, 0.0, True, 10)
    assert params.max_tokens <= 16
    assert "What is 2+2?" in prompts[1] and "2+2 = 5" in prompts[1]
    assert "The arithmetic must be right." in prompts[0]
    assert "Is the solution correct? Answer Yes or No." in prompts[0]


async def test_binary_judge_reads_replies_and_flags_unreadable_ones() -> None:
    llm = ScriptedLLM(["Yes", "No", "garbage", "Verdict:yes"])
    scores = await Judge(llm).score(ARITH, [cand(f"s{i}", index=i) for i in range(4)])
    assert [s.value for s in scores] == [1.0, 0.0, 0.0, 1.0]
    assert scores[2].rationale == "unreadable judge reply: 'garbage'"
    assert scores[3].rationale.startswith("parsed")  # "Verdict:yes" is no yes token: the text is parsed


async def test_judge_without_logprobs_parses_the_text() -> None:
    llm = NoLogprobs(["No, the sum is wrong.", "Yes", "I cannot tell"])
    scores = await Judge(llm).score(ARITH, [cand("a"), cand("b", index=1), cand("c", index=2)])
    assert [s.value for s in scores] == [0.0, 1.0, 0.0]
    assert scores[0].rationale.startswith("parsed")
    assert scores[2].rationale.startswith("unreadable judge reply")


async def test_binary_judge_probability_from_logprobs() -> None:
    # The first position is no verdict; at the second, yes-variants sum: (0.6 + 0.1) / (0.6 + 0.1 + 0.2).
    llm = FixedLogprobs(
        [("**", [("**", 0.9), ("Yes", 0.1)]), ("Yes", [("Yes", 0.6), (" yes", 0.1), ("No", 0.2), ("Maybe", 0.1)])]
    )
    [score] = await Judge(llm).score(ARITH, [cand("2+2 = 4")])
    assert score.value == pytest.approx(0.7 / 0.9)
    assert score.rationale.startswith("P(yes)=0.778")


async def test_scale_judge_expected_rating_from_logprobs() -> None:
    llm = FixedLogprobs([("4", [("4", 0.5), ("5", 0.3), ("3", 0.15), ("a", 0.05)])])
    [score] = await Judge(llm, scale=5).score(ARITH, [cand("2+2 = 4")])
    expected = (4 * 0.5 + 5 * 0.3 + 3 * 0.15) / 0.95
    assert score.value == pytest.approx((expected - 1) / 4)


async def test_scale_judge_with_scripted_replies() -> None:
    llm = ScriptedLLM(["4", "Rating: 2", "7", "garbage"])
    judge = Judge(llm, scale=5)
    scores = await judge.score(ARITH, [cand(f"s{i}", index=i) for i in range(4)])
    assert [s.value for s in scores] == [0.75, 0.25, 0.0, 0.0]
    assert scores[2].rationale.startswith("unreadable judge reply")
    assert "Reply with a single digit from 1 to 5" in llm.calls[0][0][0]
    parsed = await Judge(NoLogprobs(["I'd say 3"]), scale=3).score(ARITH, [cand("x")])
    assert parsed[0].value == 1.0 and parsed[0].rationale.startswith("parsed rating 3/3")


async def test_judge_charges_the_budget() -> None:
    budget = Budget(samples=5)
    await Judge(ScriptedLLM(["Yes", "No", "Yes"]), budget=budget).score(
        ARITH, [cand(str(i), index=i) for i in range(3)]
    )
    assert (budget.spent.samples, budget.spent.requests) == (3, 1)
    assert budget.spent.prompt_tokens > 0 and budget.spent.completion_tokens > 0
    llm = ScriptedLLM(["Yes"] * 3)
    with pytest.raises(BudgetExceeded):
        await Judge(llm, budget=budget).score(ARITH, [cand(str(i), index=i) for i in range(3)])
    assert llm.calls == []  # refused before anything was sent


def test_judge_rejects_bad_scales() -> None:
    for scale in (1, 10, True, "likert"):
        with pytest.raises(ConfigError, match="scale"):
            Judge(ScriptedLLM(), scale=scale)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="answer"):
        Judge(ScriptedLLM(), template="{question} {answer}")


async def test_process_judge_whole_text_and_every_step() -> None:
    text = "Step 1: 2+2 is two pairs.\n\nStep 2: so it is 5.\n\nStep 3: answer 5."
    llm = ScriptedLLM(["No"])
    [whole] = await ProcessJudge(llm).score(ARITH, [cand(text)])
    assert (whole.value, whole.steps, whole.scorer) == (0.0, (0.0,), "process_judge")
    assert "steps so far" in llm.calls[0][0][0]

    llm = ScriptedLLM(["Yes", "No", "No", "Yes"])
    scores = await ProcessJudge(llm, every_step=True).score(ARITH, [cand(text), cand("one step only", index=1)])
    assert scores[0].steps == (1.0, 0.0, 0.0) and scores[0].value == 0.0
    assert scores[1].steps == (1.0,)
    assert len(llm.calls) == 1 and len(llm.calls[0][0]) == 4  # every prefix of every candidate, one call
    assert "Step 2" not in llm.calls[0][0][0] and "Step 2" in llm.calls[0][0][1]

    llm = ScriptedLLM(["4"])
    [rated] = await ProcessJudge(llm, scale=5).score(ARITH, [cand(text)])
    assert (rated.value, rated.steps) == (0.75, (0.75,))
    assert "Rate the steps so far from 1 (wrong) to 5" in llm.calls[0][0][0]

    llm = ScriptedLLM(["Yes", "Yes", "No"])
    [mean] = await Aggregated(ProcessJudge(llm, every_step=True), "mean").score(ARITH, [cand(text)])
    assert mean.value == pytest.approx(2 / 3) and mean.scorer == "mean(process_judge)"
    assert mean.steps == (1.0, 1.0, 0.0)


# -- self-certainty -----------------------------------------------------------------------------------------
async def test_self_certainty() -> None:
    scores = await SelfCertainty().score(
        ARITH, [cand("a", mean_logprob=-0.5), cand("b", mean_logprob=None), cand("c", mean_logprob=0.0)]
    )
    assert scores[0].value == pytest.approx(math.exp(-0.5))
    assert scores[1].value == 0.0 and "no logprobs" in scores[1].rationale
    assert scores[2].value == 1.0
    # with completions of a backend: confident text beats unconfident text
    llm = FunctionLLM(lambda prompt, params, i: "a b")
    [[c]] = await llm.generate(["q"], SamplingParams(logprobs=True))
    [s] = await SelfCertainty().score(ARITH, [cand("a b", mean_logprob=c.mean_logprob)])
    assert 0.0 < s.value <= 1.0


# -- ensembles and aggregation ------------------------------------------------------------------------------
async def test_ensemble_weighted_sum() -> None:
    exact, certainty = ReferenceMatch(), SelfCertainty()
    ensemble = Ensemble([(exact, 1.0), (certainty, 0.5)], name="mix")
    scores = await ensemble.score(ARITH, [cand("4", "4", mean_logprob=-1.0), cand("5", "5", mean_logprob=0.0)])
    assert scores[0].value == pytest.approx(1.0 + 0.5 * math.exp(-1.0))
    assert scores[1].value == pytest.approx(0.5)
    assert "exact=1x1" in scores[0].rationale and "self_certainty=" in scores[0].rationale
    assert isinstance(ensemble, Scorer)
    with pytest.raises(ConfigError, match="differ"):
        Ensemble([(exact, 1.0), (ReferenceMatch(), 1.0)])
    with pytest.raises(ConfigError):
        Ensemble([])
    with pytest.raises(ConfigError, match="finite"):
        Ensemble([(exact, math.inf)])


async def test_aggregated_step_values() -> None:
    class Steps:
        name = "steps"

        async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Any]:
            from longthink.search.types import Score

            return [Score("steps", 0.9, steps=(0.9, 0.2, 0.8)), Score("steps", 0.7)]

    candidates = [cand("a"), cand("b", index=1)]
    values = {
        agg: [s.value for s in await Aggregated(Steps(), agg).score(ARITH, candidates)]
        for agg in ("min", "last", "product", "mean")
    }
    assert values["min"] == [0.2, 0.7]  # no step values: the inner value
    assert values["last"] == [0.8, 0.7]
    assert values["product"][0] == pytest.approx(0.9 * 0.2 * 0.8)
    assert values["mean"][0] == pytest.approx((0.9 + 0.2 + 0.8) / 3)
    with pytest.raises(ConfigError, match="did you mean 'min'"):
        Aggregated(Steps(), "mni")


# -- the judge on the real embedded model -------------------------------------------------------------------
@pytest.fixture(scope="module")
def qwen() -> Iterator[Any]:
    pytest.importorskip("llama_cpp")
    from longthink.llm.llama_cpp import LlamaCppLLM

    llm = LlamaCppLLM("qwen2.5-coder-0.5b-instruct", n_threads=1, n_ctx=2048)
    yield llm
    llm.close()


@pytest.mark.real_model
async def test_real_judge_prefers_a_correct_answer_to_a_nonsense_one(qwen: Any) -> None:
    """Qwen2.5-Coder-0.5B as a binary judge, P(yes) read from its real logprobs.

    Measured with the default prompt: it cannot separate "2+2 = 4" from "2+2 = 5" (P(yes) 0.513 vs 0.519; over
    8 such arithmetic pairs the correct one won 5 times, by at most 0.06), so the pairs here are a correct answer
    against an off-topic one, which it separates clearly (about 0.52 vs 0.28).
    """
    pairs = [
        (Problem.from_text("a", "What is 2+2?"), "2 + 2 = 4", "I like turtles."),
        (
            Problem.from_text("b", "What is the capital of France?"),
            "The capital of France is Paris.",
            "Bananas are yellow.",
        ),
        (Problem.from_text("c", "What is 6*7?"), "6 * 7 = 42", "The weather is nice today."),
    ]
    judge = Judge(qwen)
    for problem, good, bad in pairs:
        right, wrong = await judge.score(problem, [cand(good), cand(bad, index=1)])
        assert right.rationale.startswith("P(yes)=") and wrong.rationale.startswith("P(yes)=")  # real logprobs
        assert 0.0 < wrong.value < right.value < 1.0
        assert right.value - wrong.value > 0.1, (problem.question, right.value, wrong.value)


# -- a transformers sequence-classification reward model ----------------------------------------------------
SENTENCES = [
    "what is two plus two",
    "two plus two is four",
    "two plus two is five",
    "the capital of france is paris",
    "i like turtles",
]


def _save_tiny_reward_model(directory: Path, *, num_labels: int, chat_template: str | None = None) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(SENTENCES, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[EOS]"]))
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]"
    )
    if chat_template:
        fast.chat_template = chat_template
    config = transformers.LlamaConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        num_labels=num_labels,
        pad_token_id=fast.pad_token_id,
        initializer_range=0.5,  # large random weights: the scores of different texts differ visibly
    )
    torch.manual_seed(0)
    model = transformers.LlamaForSequenceClassification(config)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory: pytest.TempPathFactory) -> TransformersRewardModel:
    path = _save_tiny_reward_model(tmp_path_factory.mktemp("rm") / "tiny-rm", num_labels=1)
    return TransformersRewardModel(path, n_threads=1, max_batch=2)


async def test_transformers_reward_model_scores(tiny_rm: TransformersRewardModel) -> None:
    problem = Problem.from_text("p", "what is two plus two")
    texts = ["two plus two is four", "two plus two is five", "i like turtles", "paris", "four"]
    candidates = [cand(t, index=i) for i, t in enumerate(texts)]
    batch = await tiny_rm.score(problem, candidates)  # three chunks of at most two rows, right-padded
    again = await tiny_rm.score(problem, candidates)
    alone = [(await tiny_rm.score(problem, [c]))[0] for c in candidates]
    values = [s.value for s in batch]
    assert len(values) == 5 and all(0.0 < v < 1.0 for v in values)
    assert values == [s.value for s in again]  # deterministic
    assert values == pytest.approx([s.value for s in alone], abs=1e-5)  # padding changes nothing
    assert len({round(v, 4) for v in values}) > 1  # different texts, different rewards
    assert batch[0].scorer == "rm:tiny-rm" and batch[0].rationale.startswith("reward logit")
    assert tiny_rm.render(problem, candidates[0]) == "what is two plus two\n\ntwo plus two is four"
    assert await tiny_rm.score(problem, []) == []


async def test_transformers_reward_model_two_labels_and_chat_template(tmp_path: Path) -> None:
    template = "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} [EOS] {% endfor %}"
    path = _save_tiny_reward_model(tmp_path / "two", num_labels=2, chat_template=template)
    rm = TransformersRewardModel(path, name="two", n_threads=1)
    problem = Problem.from_text("p", "what is two plus two", system="i like turtles")
    candidates = [cand("two plus two is four"), cand("two plus two is five", index=1)]
    assert rm.render(problem, candidates[0]).endswith("assistant two plus two is four [EOS] ")
    assert "system i like turtles" in rm.render(problem, candidates[0])
    scores = await rm.score(problem, candidates)
    assert all(0.0 < s.value < 1.0 for s in scores) and scores[0].value != scores[1].value


def test_transformers_reward_model_needs_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.json"):
        TransformersRewardModel(tmp_path)


# -- a vLLM pooling server (scripted, real HTTP) ------------------------------------------------------------
def _vllm_reply(path: str, body: Any) -> Reply:
    texts = body["input"]
    if path == "/classify":
        data = [
            {"index": i, "label": "good", "probs": [1 - len(t) / 100, len(t) / 100], "num_classes": 2}
            for i, t in enumerate(texts)
        ]
        return Reply(body={"id": "classify-1", "object": "list", "model": body["model"], "data": data[::-1]})
    if path == "/pooling":
        shapes: list[Any] = [len(texts[0]) / 100, [0.1, 0.2, len(texts[1]) / 100], [[0.5], [len(texts[2]) / 100]]]
        data = [{"index": i, "object": "pooling", "data": shapes[i]} for i in range(len(texts))]
        return Reply(body={"id": "pool-1", "object": "list", "model": body["model"], "data": data})
    return Reply(status=404, body={"error": "not found"})


@pytest.fixture
def vllm_server() -> Iterator[ScriptedServer]:
    with ScriptedServer(_vllm_reply) as server:
        yield server


async def test_pooling_client_classify(vllm_server: ScriptedServer) -> None:
    client = PoolingRewardClient(vllm_server.base_url, "rm-model", api_key="sekrit")
    problem = Problem.from_text("p", "Q?")
    scores = await client.score(problem, [cand("a"), cand("abcd", index=1)])
    # inputs are "Q?\n\na" (5 chars) and "Q?\n\nabcd" (8 chars); the reply lists them in reverse order
    assert [s.value for s in scores] == pytest.approx([0.05, 0.08])
    assert scores[0].scorer == "rm:rm-model" and "probs" in scores[0].rationale
    [post] = vllm_server.posts()
    assert post.path == "/classify"  # the trailing /v1 of the base URL is dropped
    assert post.body == {"model": "rm-model", "input": ["Q?\n\na", "Q?\n\nabcd"]}
    assert post.headers.get("Authorization") == "Bearer sekrit"


async def test_pooling_client_pooling_shapes(vllm_server: ScriptedServer) -> None:
    client = PoolingRewardClient(vllm_server.base_url, "rm-model", endpoint="/pooling", render=lambda p, c: c.text)
    scores = await client.score(ARITH, [cand("x" * 10), cand("x" * 20, index=1), cand("x" * 30, index=2)])
    # a number, a vector (its last entry), one vector per token (the last token's)
    assert [s.value for s in scores] == pytest.approx([0.1, 0.2, 0.3])
    assert await client.score(ARITH, []) == []


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (Reply(body={"object": "list"}), "no 'data' list"),
        (Reply(body={"data": [{"index": 0, "probs": [0.5]}]}), "1 results for 2 inputs"),
        (Reply(body={"data": [{"index": 0, "probs": [0.5]}, {"index": 0, "probs": [0.5]}]}), "repeated index"),
        (Reply(body={"data": [{"index": 0, "probs": [0.5]}, {"index": 1, "label": "x"}]}), "no numbers"),
        (Reply(body={"data": [{"index": 0, "probs": []}, {"index": 1, "probs": ["a"]}]}), "no numbers"),
        (Reply(body={"data": [{"index": 0, "probs": [0.5]}, "oops"]}), "not an object"),
        (Reply(raw=b"<html>oops</html>"), "not JSON"),
        (Reply(status=400, body={"error": "bad model"}), "HTTP 400"),
    ],
)
async def test_pooling_client_malformed_replies(vllm_server: ScriptedServer, reply: Reply, match: str) -> None:
    vllm_server.push(reply)
    client = PoolingRewardClient(vllm_server.base_url, "rm-model")
    with pytest.raises(BackendError, match=match) as info:
        await client.score(ARITH, [cand("a"), cand("b", index=1)])
    assert client.url in str(info.value)
    assert not info.value.retryable


async def test_pooling_client_server_errors_are_retryable(vllm_server: ScriptedServer) -> None:
    vllm_server.push(Reply(status=503, body={"error": "overloaded"}))
    client = PoolingRewardClient(vllm_server.base_url, "rm-model")
    with pytest.raises(BackendError, match="HTTP 503") as info:
        await client.score(ARITH, [cand("a")])
    assert info.value.retryable and info.value.status == 503
    closed = PoolingRewardClient("http://127.0.0.1:9", "rm-model", timeout_s=2)
    with pytest.raises(BackendError, match="127.0.0.1:9/classify") as info:
        await closed.score(ARITH, [cand("a")])
    assert info.value.retryable
    with pytest.raises(ConfigError):
        PoolingRewardClient("localhost:8000", "m")
    with pytest.raises(ConfigError):
        PoolingRewardClient("http://x", "m", endpoint="/score")  # type: ignore[arg-type]
