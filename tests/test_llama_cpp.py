"""Contract tests of the embedded llama.cpp engine against real models (SmolLM2; one Qwen generation)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from longthink.errors import BackendError
from longthink.llm import Message, SamplingParams
from longthink.llm.llama_cpp import LlamaCppLLM

pytestmark = pytest.mark.real_model

Q = [Message.user("List three fruits, one per line.")]


async def test_n_completions_with_token_counts(smollm2: Any) -> None:
    [comps] = await smollm2.generate([Q], SamplingParams(n=4, max_tokens=24, seed=1))
    assert [c.index for c in comps] == [0, 1, 2, 3]
    assert len({c.prompt_tokens for c in comps}) == 1 and comps[0].prompt_tokens > 5
    assert all(1 <= c.completion_tokens <= 24 for c in comps)
    assert all(c.finish_reason in ("stop", "length") and c.model == "smollm2-135m-instruct" for c in comps)
    assert len({c.text for c in comps}) > 1  # sampled, not copies


async def test_siblings_are_decoded_as_one_batch(smollm2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    original = smollm2._decode

    def counting() -> None:
        nonlocal calls
        calls += 1
        original()

    monkeypatch.setattr(smollm2, "_decode", counting)
    [comps] = await smollm2.generate([Q], SamplingParams(n=8, max_tokens=16, seed=2))
    longest = max(c.completion_tokens for c in comps)
    # one prefill + one decode per generated position: not 8 x the sequential count
    assert calls <= 1 + longest
    assert sum(c.completion_tokens for c in comps) > calls


async def test_batch_of_prompts_packs_and_more_n_than_sequences(smollm2: Any) -> None:
    prompts = [[Message.user(f"Say the number {i}.")] for i in range(4)] + ["Once upon a time"]
    results = await smollm2.generate(prompts, SamplingParams(n=3, max_tokens=8, seed=3))
    assert [len(r) for r in results] == [3] * 5
    assert len({r[0].prompt_tokens for r in results}) > 1
    [many] = await smollm2.generate([Q], SamplingParams(n=11, max_tokens=4, seed=4))  # > max_sequences=8
    assert [c.index for c in many] == list(range(11))


async def test_stop_sequences_cut_the_text(smollm2: Any) -> None:
    greedy = SamplingParams(temperature=0, max_tokens=40)
    [[full]] = await smollm2.generate([Q], greedy)
    words = full.text.split()
    assert len(words) >= 3, full.text
    stop = words[len(words) // 2]
    [[cut]] = await smollm2.generate([Q], SamplingParams(temperature=0, max_tokens=40, stop=(stop,)))
    assert cut.finish_reason == "stop"
    assert cut.stop_sequence == stop
    assert full.stop_sequence is None
    assert cut.text == full.text[: full.text.index(stop)]
    assert cut.completion_tokens < full.completion_tokens


async def test_max_tokens_gives_length(smollm2: Any) -> None:
    # A prompt no model ends within 5 tokens (an open story prompt ended at once on one llama.cpp build).
    prompt = "Count from 1 to 100: 1, 2, 3,"
    [[c]] = await smollm2.generate([prompt], SamplingParams(temperature=0, max_tokens=5, seed=0))
    assert c.finish_reason == "length" and c.completion_tokens == 5


async def test_seeds_reproduce_and_differ(smollm2: Any) -> None:
    p = SamplingParams(n=3, temperature=1.0, max_tokens=16, seed=42)
    a = [c.text for c in (await smollm2.generate([Q], p))[0]]
    b = [c.text for c in (await smollm2.generate([Q], p))[0]]
    other = [c.text for c in (await smollm2.generate([Q], replace(p, seed=43)))[0]]
    assert a == b
    assert a != other


async def test_logprobs_when_asked(smollm2: Any) -> None:
    p = SamplingParams(temperature=0, max_tokens=12, logprobs=True, top_logprobs=3)
    [[c]] = await smollm2.generate([Q], p)
    assert c.logprobs is not None and len(c.logprobs) == c.completion_tokens
    for t in c.logprobs:
        assert t.logprob <= 0 and len(t.top) == 3
        assert t.top[0][1] >= t.top[1][1] >= t.top[2][1]
        assert t.token == t.top[0][0]  # greedy picks the most likely token
    [[plain]] = await smollm2.generate([Q], SamplingParams(max_tokens=4))
    assert plain.logprobs is None


async def test_errors_are_typed(smollm2: Any) -> None:
    long_prompt = "word " * 5000
    with pytest.raises(BackendError, match="n_ctx") as info:
        await smollm2.generate([long_prompt], SamplingParams(max_tokens=8))
    assert info.value.retryable is False and "llama.cpp" in str(info.value)
    # the engine is still usable afterwards
    [[c]] = await smollm2.generate([Q], SamplingParams(max_tokens=4))
    assert c.completion_tokens >= 1


def test_closed_engine_refuses(smollm2_path: Any) -> None:
    llm = LlamaCppLLM(str(smollm2_path), n_threads=1, n_ctx=512, max_sequences=1)
    llm.close()
    llm.close()  # idempotent
    with pytest.raises(BackendError, match="closed"):
        llm.generate_sync(["hi"], SamplingParams(max_tokens=2))


def test_default_model_answers_for_real() -> None:
    """One real generation with the embedded default (Qwen2.5-Coder-0.5B-Instruct)."""
    llm = LlamaCppLLM("qwen2.5-coder-0.5b-instruct", n_threads=1, n_ctx=1024, max_sequences=2)
    try:
        [[c]] = llm.generate_sync(
            [[Message.user("What is 12 + 30? Reply with the number only.")]],
            SamplingParams(temperature=0, max_tokens=10),
        )
    finally:
        llm.close()
    assert "42" in c.text
    assert c.finish_reason == "stop"
