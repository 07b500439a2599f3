"""The backend contract through the shipped test doubles (fast, no model)."""

from __future__ import annotations

import asyncio

import pytest

from longthink.errors import BackendError, ConfigError
from longthink.llm import Message, SamplingParams, Usage, apply_stop
from longthink.testing import FunctionLLM, RandomLLM, ScriptedLLM


def test_sampling_params_validation_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"SamplingParams\.n") as info:
        SamplingParams(n=0)
    assert info.value.field == "n"
    with pytest.raises(ConfigError, match="top_p"):
        SamplingParams(top_p=0)
    with pytest.raises(ConfigError, match="single string"):
        SamplingParams(stop="\n")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="logprobs=True"):
        SamplingParams(top_logprobs=3)
    with pytest.raises(ConfigError, match="temperature"):
        SamplingParams(temperature=-1)


def test_message_role_is_checked() -> None:
    with pytest.raises(ConfigError, match="role"):
        Message("robot", "hi")  # type: ignore[arg-type]


def test_apply_stop_cuts_at_earliest() -> None:
    assert apply_stop("a b. c\nd", ["\n", "."]) == ("a b", True)
    assert apply_stop("abc", ["x"]) == ("abc", False)


async def test_scripted_replies_in_order_with_stop_and_length() -> None:
    llm = ScriptedLLM(["one two three\nfour", "alpha beta gamma delta"])
    params = SamplingParams(n=2, max_tokens=3, stop=("\n",))
    [[a, b]] = await llm.generate([[Message.user("q")]], params)
    assert (a.text, a.finish_reason, a.completion_tokens) == ("one two three", "length", 3)
    assert (b.text, b.finish_reason, b.completion_tokens) == ("alpha beta gamma ", "length", 3)
    assert [a.index, b.index] == [0, 1]
    [[c]] = await ScriptedLLM(["x y\nz"]).generate(["raw"], SamplingParams(stop=("\n",)))
    assert (c.text, c.finish_reason, c.completion_tokens) == ("x y", "stop", 3)
    assert c.stop_sequence == "\n"
    assert a.stop_sequence is None


async def test_script_running_out_is_a_typed_error() -> None:
    llm = ScriptedLLM(["only"])
    with pytest.raises(BackendError, match="ran out") as info:
        await llm.generate(["p"], SamplingParams(n=2))
    assert info.value.retryable is False


async def test_usage_counts_prompt_once_per_request() -> None:
    llm = FunctionLLM(lambda prompt, params, i: f"answer {i}")
    results = await llm.generate(["a b c", "d e"], SamplingParams(n=3))
    call = Usage.of(results)
    assert call.prompt_tokens == 3 + 2
    assert call.completion_tokens == 6 * 3  # two words + EOS each
    assert llm.usage.completions == 6 and llm.usage.requests == 1
    await llm.generate(["x"], SamplingParams())
    assert llm.usage.requests == 2 and llm.usage.prompts == 3


async def test_logprobs_one_per_token() -> None:
    llm = FunctionLLM(lambda p, params, i: "the answer is 4")
    [[c]] = await llm.generate(["q"], SamplingParams(logprobs=True, top_logprobs=2))
    assert c.logprobs is not None and len(c.logprobs) == c.completion_tokens
    assert all(t.logprob <= 0 and len(t.top) == 2 for t in c.logprobs)
    assert c.mean_logprob is not None and c.mean_logprob <= 0
    [[d]] = await llm.generate(["q"], SamplingParams())
    assert d.logprobs is None and d.mean_logprob is None


async def test_random_llm_is_seeded_and_greedy_at_zero_temperature() -> None:
    llm = RandomLLM({"A": 1.0, "B": 3.0, "C": 1.0}, seed=7)
    p = SamplingParams(n=16, seed=5)
    first = [c.text for c in (await llm.generate(["q"], p))[0]]
    again = [c.text for c in (await llm.generate(["q"], p))[0]]
    assert first == again
    assert set(first) <= {"A", "B", "C"} and len(set(first)) > 1
    greedy = (await llm.generate(["q"], SamplingParams(n=4, temperature=0)))[0]
    assert {c.text for c in greedy} == {"B"}


async def test_prompt_validation() -> None:
    llm = ScriptedLLM(cycle=True, replies=["x"])
    with pytest.raises(ConfigError, match="batch"):
        await llm.generate("not a list", SamplingParams())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one message"):
        await llm.generate([[]], SamplingParams())
    with pytest.raises(ConfigError, match="must not be empty"):
        await llm.generate([""], SamplingParams())
    # dicts are accepted as messages
    out = await llm.generate([[{"role": "user", "content": "hi"}]], SamplingParams())
    assert out[0][0].text == "x"
    assert await llm.generate([], SamplingParams()) == []


def test_sync_wrapper_runs_the_async_core_even_inside_a_loop() -> None:
    llm = FunctionLLM(lambda p, params, i: "ok")
    assert llm.generate_sync(["q"])[0][0].text == "ok"

    async def inside() -> str:
        return llm.generate_sync(["q"])[0][0].text  # called from running loop code (e.g. notebooks)

    assert asyncio.run(inside()) == "ok"


async def test_fewer_than_n_is_never_silent() -> None:
    class Short(FunctionLLM):
        async def _generate(self, prompts, params):  # type: ignore[no-untyped-def]
            out = await super()._generate(prompts, params)
            return [c[:-1] for c in out]

    with pytest.raises(BackendError, match="expected n=3"):
        await Short(lambda *a: "x").generate(["q"], SamplingParams(n=3))


async def test_loglikelihood_is_optional_and_names_the_class() -> None:
    with pytest.raises(ConfigError, match="ScriptedLLM"):
        await ScriptedLLM(["x"]).loglikelihood("p", ["a"])
