"""TransformersLLM against the real SmolLM2-135M-Instruct, loaded from its GGUF (dequantised once per module).

The error-path tests at the bottom need no model.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longthink.errors import BackendError, ConfigError
from longthink.llm.types import Message, SamplingParams
from longthink.models import SMOLLM2_135M, ModelStore

CHAT = [Message.user("Write a short story about a cat who lives in a library.")]
RAW = "The capital of France is"


@pytest.fixture(scope="module")
def llm() -> Iterator[Any]:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from longthink.llm.transformers import TransformersLLM

    torch.set_num_threads(1)
    path = ModelStore().ensure(SMOLLM2_135M)
    # Four rows per generate call: a batch of 2 prompts x n=3 is decoded in two chunks.
    model = TransformersLLM(str(path), n_threads=1, max_batch_sequences=4)
    yield model
    model.close()
    model.close()  # closing twice is safe


@pytest.mark.real_model
async def test_n_completions_for_each_prompt_of_a_batch(llm: Any) -> None:
    before = llm.usage.completions
    params = SamplingParams(n=3, temperature=0.8, max_tokens=12, seed=3)
    results = await llm.generate([CHAT, RAW], params)
    assert len(results) == 2
    for completions in results:
        assert [c.index for c in completions] == [0, 1, 2]
        assert len({c.prompt_tokens for c in completions}) == 1
        for c in completions:
            assert c.model == "smollm2-135m-instruct"
            assert c.prompt_tokens > 0
            assert 1 <= c.completion_tokens <= 12
            assert c.finish_reason in ("stop", "length")
            assert c.latency_s > 0
            assert c.logprobs is None
    assert results[0][0].prompt_tokens > results[1][0].prompt_tokens  # the chat template adds tokens
    assert llm.usage.completions == before + 6


@pytest.mark.real_model
async def test_max_tokens_finishes_with_length(llm: Any) -> None:
    (c,) = await llm.complete(CHAT, SamplingParams(temperature=0, max_tokens=5))
    assert c.finish_reason == "length"
    assert c.completion_tokens == 5
    assert c.text


@pytest.mark.real_model
async def test_stop_sequence_cuts_before_it(llm: Any) -> None:
    params = SamplingParams(temperature=0, max_tokens=40)
    (full,) = await llm.complete(CHAT, params)
    words = [w for w in full.text.split() if w.isalpha() and len(w) >= 3]
    assert len(words) >= 4, full.text
    stop = words[len(words) // 2]
    (cut,) = await llm.complete(CHAT, SamplingParams(temperature=0, max_tokens=40, stop=(stop,)))
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.finish_reason == "stop"
    assert cut.stop_sequence == stop
    assert cut.completion_tokens < full.completion_tokens


@pytest.mark.real_model
async def test_eos_finishes_with_stop_and_counts_the_eos_token(llm: Any) -> None:
    (c,) = await llm.complete(
        [Message.user("What is 2+2?")], SamplingParams(temperature=0, max_tokens=60, logprobs=True)
    )
    assert c.finish_reason == "stop"
    assert c.logprobs is not None
    assert len(c.logprobs) == c.completion_tokens
    assert c.logprobs[-1].token == "<|im_end|>"  # the end-of-turn token is counted, not shown
    assert "<|im_end|>" not in c.text


@pytest.mark.real_model
async def test_seed_reproduces_samples(llm: Any) -> None:
    params = SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=11)
    first = [c.text for c in await llm.complete(CHAT, params)]
    again = [c.text for c in await llm.complete(CHAT, params)]
    other = [c.text for c in await llm.complete(CHAT, SamplingParams(n=3, temperature=1.0, max_tokens=8, seed=12))]
    assert first == again
    assert first != other
    assert len(set(first)) > 1  # the n samples of one request use different streams
    # Sample i depends on (seed, i), not on what else shares the batch or how it is chunked.
    batched = await llm.generate([RAW, CHAT], params)
    assert [c.text for c in batched[1]] == first


@pytest.mark.real_model
async def test_logprobs_match_completion_tokens(llm: Any) -> None:
    params = SamplingParams(n=2, temperature=0.7, max_tokens=10, seed=5, logprobs=True, top_logprobs=3)
    for c in await llm.complete(CHAT, params):
        assert c.logprobs is not None
        assert len(c.logprobs) == c.completion_tokens
        for t in c.logprobs:
            assert t.logprob <= 0
            assert len(t.top) == 3
            values = [v for _, v in t.top]
            assert values == sorted(values, reverse=True)
            assert t.logprob <= values[0] + 1e-6
        assert c.mean_logprob is not None
    (greedy,) = await llm.complete(RAW, SamplingParams(temperature=0, max_tokens=4, logprobs=True, top_logprobs=2))
    assert greedy.logprobs is not None
    for t in greedy.logprobs:  # greedy picks the most likely token: it heads its own alternatives
        assert t.top[0][0] == t.token
        assert t.top[0][1] == pytest.approx(t.logprob)


@pytest.mark.real_model
async def test_loglikelihood_scores_each_continuation_token(llm: Any) -> None:
    scores = await llm.loglikelihood(RAW, [" Paris", " banana", "", " Paris, a city on the Seine."])
    paris, banana, empty, sentence = scores
    assert len(paris) >= 1 and len(banana) >= 1
    assert empty == []
    assert len(sentence) > len(paris)
    assert sum(paris) > sum(banana)
    assert all(v <= 0 for row in scores for v in row)
    assert sentence[: len(paris)] == pytest.approx(paris, abs=1e-3)  # same prefix, same scores
    # It agrees with the logprob that generation reports for the same token.
    (first,) = await llm.complete(RAW, SamplingParams(temperature=0, max_tokens=1, logprobs=True))
    assert first.logprobs is not None
    (again,) = await llm.loglikelihood(RAW, [first.logprobs[0].token])
    assert again == pytest.approx([first.logprobs[0].logprob], abs=1e-3)
    chat = await llm.loglikelihood([Message.user("What is the capital of France?")], ["Paris", "Banana"])
    assert sum(chat[0]) > sum(chat[1])


@pytest.mark.real_model
async def test_loglikelihood_rejects_a_single_string(llm: Any) -> None:
    with pytest.raises(ConfigError, match="continuations"):
        await llm.loglikelihood(RAW, " Paris")


# -- errors that need no model ---------------------------------------------------------------------------


def test_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from longthink.llm.transformers import TransformersLLM

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ConfigError, match=r"longthink\[transformers\]"):
        TransformersLLM(str(tmp_path))


def test_bad_paths_raise_config_errors(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from longthink.llm.transformers import TransformersLLM

    with pytest.raises(ConfigError, match="not an existing directory or .gguf file"):
        TransformersLLM(str(tmp_path / "nowhere.gguf"))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0" * 16)
    with pytest.raises(ConfigError, match="not a .gguf file"):
        TransformersLLM(str(other))
    with pytest.raises(ConfigError, match="without config.json"):
        TransformersLLM(str(tmp_path))
    with pytest.raises(ConfigError, match="max_batch_sequences"):
        TransformersLLM(str(tmp_path), max_batch_sequences=0)
    with pytest.raises(ConfigError, match="dtype"):
        TransformersLLM(str(tmp_path), dtype="float8")


def test_corrupt_gguf_raises_backend_error(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from longthink.llm.transformers import TransformersLLM

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x07" * 64)
    with pytest.raises(BackendError, match="could not load the model") as info:
        TransformersLLM(str(broken))
    assert info.value.endpoint == str(broken)
    assert not info.value.retryable
