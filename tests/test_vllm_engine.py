"""VLLMEngineLLM: the import guard and the pure conversions run everywhere; the engine test needs vLLM (GPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from longthink.errors import BackendError, ConfigError
from longthink.llm.types import Message, SamplingParams
from longthink.llm.vllm_engine import (
    VLLMEngineLLM,
    completions_from_output,
    engine_prompt,
    vllm_sampling_kwargs,
)

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def lp(logprob: float, rank: int | None, decoded: str | None) -> SimpleNamespace:
    """Shaped like vllm.logprobs.Logprob."""
    return SimpleNamespace(logprob=logprob, rank=rank, decoded_token=decoded)


def out(
    index: int,
    text: str,
    token_ids: list[int],
    finish_reason: str | None = "stop",
    logprobs: list[dict[int, SimpleNamespace]] | None = None,
) -> SimpleNamespace:
    """Shaped like vllm.outputs.CompletionOutput."""
    return SimpleNamespace(
        index=index,
        text=text,
        token_ids=token_ids,
        cumulative_logprob=None,
        logprobs=logprobs,
        finish_reason=finish_reason,
        stop_reason=None,
    )


def request(prompt_token_ids: list[int], *outputs: SimpleNamespace) -> SimpleNamespace:
    """Shaped like vllm.outputs.RequestOutput."""
    return SimpleNamespace(
        request_id="r1", prompt="p", prompt_token_ids=prompt_token_ids, outputs=list(outputs), finished=True
    )


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed here: the guard does not apply")
def test_missing_vllm_names_the_extra_and_the_alternative() -> None:
    with pytest.raises(ConfigError) as info:
        VLLMEngineLLM("some/model")
    message = str(info.value)
    assert "pip install 'longthink[vllm]'" in message
    assert "vllm serve" in message
    assert "openai_compat" in message


def test_constructor_validates_before_loading() -> None:
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        VLLMEngineLLM("m", gpu_memory_utilization=1.5)
    with pytest.raises(ConfigError, match="tensor_parallel_size"):
        VLLMEngineLLM("m", tensor_parallel_size=0)
    with pytest.raises(ConfigError, match="max_model_len"):
        VLLMEngineLLM("m", max_model_len=0)


def test_sampling_kwargs() -> None:
    plain = vllm_sampling_kwargs(SamplingParams(n=4, temperature=0.5, top_p=0.9, max_tokens=32, stop=("\n\n",)))
    assert plain == {
        "n": 4,
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 32,
        "stop": ["\n\n"],
        "seed": None,
    }
    assert "logprobs" not in plain
    seeded = vllm_sampling_kwargs(SamplingParams(temperature=0, seed=7, logprobs=True))
    assert seeded["seed"] == 7
    assert seeded["temperature"] == 0
    assert seeded["logprobs"] == 0  # the sampled token's logprob only
    assert vllm_sampling_kwargs(SamplingParams(logprobs=True, top_logprobs=5))["logprobs"] == 5


def test_n_outputs_become_completions_in_index_order() -> None:
    params = SamplingParams(n=3)
    result = request(
        [1, 2, 3, 4, 5],
        out(2, "c", [7, 8], "length"),
        out(0, "a", [5, 6, 2], "stop"),
        out(1, "b", [9], "stop"),
    )
    completions = completions_from_output(result, params, latency_s=0.25, model="m")
    assert [c.index for c in completions] == [0, 1, 2]
    assert [c.text for c in completions] == ["a", "b", "c"]
    assert [c.finish_reason for c in completions] == ["stop", "stop", "length"]
    assert [c.completion_tokens for c in completions] == [3, 1, 2]
    assert {c.prompt_tokens for c in completions} == {5}
    assert {c.latency_s for c in completions} == {0.25}
    assert {c.model for c in completions} == {"m"}
    assert all(c.logprobs is None for c in completions)


def test_logprobs_with_alternatives() -> None:
    positions = [
        # sampled token 10 is the best one: it heads the alternatives
        {10: lp(-0.1, 1, " Paris"), 11: lp(-2.5, 2, " the"), 12: lp(-3.0, 3, " a")},
        # sampled token 20 is outside the top 2: vLLM adds it to the mapping
        {21: lp(-0.5, 1, "."), 22: lp(-1.5, 2, ","), 20: lp(-4.0, 9, "!")},
    ]
    result = request([1, 2], out(0, " Paris!", [10, 20], "stop", positions))
    params = SamplingParams(logprobs=True, top_logprobs=2)
    (c,) = completions_from_output(result, params, latency_s=0.1, model="m")
    assert c.logprobs is not None
    assert len(c.logprobs) == c.completion_tokens == 2
    first, second = c.logprobs
    assert (first.token, first.logprob) == (" Paris", -0.1)
    assert first.top == ((" Paris", -0.1), (" the", -2.5))
    assert (second.token, second.logprob) == ("!", -4.0)
    assert second.top == ((".", -0.5), (",", -1.5))
    assert c.mean_logprob == pytest.approx(-2.05)

    # Without alternatives, and with a token whose decoded text is missing (named by token_text).
    bare = request([1], out(0, "x", [5], "length", [{5: lp(-0.7, None, None)}]))
    (b,) = completions_from_output(
        bare, SamplingParams(logprobs=True), latency_s=0.0, model="m", token_text=lambda t: f"<{t}>"
    )
    assert b.logprobs is not None
    assert b.logprobs[0].token == "<5>"
    assert b.logprobs[0].top == ()


def test_bad_outputs_raise_backend_errors() -> None:
    with pytest.raises(BackendError, match="aborted") as aborted:
        completions_from_output(request([1], out(0, "", [], "abort")), SamplingParams(), latency_s=0, model="m")
    assert aborted.value.retryable
    with pytest.raises(BackendError, match="finish_reason=None"):
        completions_from_output(request([1], out(0, "", [], None)), SamplingParams(), latency_s=0, model="m")
    with pytest.raises(BackendError, match="2 outputs for n=3"):
        completions_from_output(
            request([1], out(0, "a", [1]), out(1, "b", [2])), SamplingParams(n=3), latency_s=0, model="m"
        )
    with pytest.raises(BackendError, match="logprob positions"):
        completions_from_output(
            request([1], out(0, "a", [1, 2], "stop", None)),
            SamplingParams(logprobs=True),
            latency_s=0,
            model="m",
        )


def test_engine_prompt_renders_chat_without_a_second_bos() -> None:
    calls: list[dict[str, Any]] = []

    def apply_chat_template(messages: list[dict[str, str]], **kwargs: Any) -> str:
        calls.append(kwargs)
        return "<s>" + "".join(f"[{m['role']}]{m['content']}" for m in messages) + "[assistant]"

    def encode(text: str, add_special_tokens: bool = True) -> list[int]:
        return ([0] if add_special_tokens else []) + [ord(ch) for ch in text]

    tokenizer = SimpleNamespace(chat_template="{{ x }}", apply_chat_template=apply_chat_template, encode=encode)
    assert engine_prompt("raw text", tokenizer) == {"prompt": "raw text"}
    rendered = engine_prompt((Message.system("s"), Message.user("hi")), tokenizer)
    assert rendered == {"prompt_token_ids": [ord(ch) for ch in "<s>[system]s[user]hi[assistant]"]}
    assert calls == [{"add_generation_prompt": True, "tokenize": False}]
    with pytest.raises(ConfigError, match="no chat template"):
        engine_prompt((Message.user("hi"),), SimpleNamespace(chat_template=None))


@pytest.mark.real_model
@pytest.mark.skipif(not HAS_VLLM, reason="needs vllm (a CUDA GPU machine)")
async def test_real_engine_generates(tmp_path: Path) -> None:
    """A real tiny generation on a GPU machine: SmolLM2 converted from its GGUF to a model directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from longthink.models import SMOLLM2_135M, ModelStore

    gguf = ModelStore().ensure(SMOLLM2_135M)
    directory = tmp_path / "smollm2"
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)

    llm = VLLMEngineLLM(
        str(directory),
        gpu_memory_utilization=0.3,
        max_model_len=2048,
        engine_kwargs={"enforce_eager": True},
    )
    try:
        params = SamplingParams(n=3, temperature=0.8, max_tokens=16, seed=1, logprobs=True, top_logprobs=2)
        results = await llm.generate([[Message.user("What is 2+2?")], "The capital of France is"], params)
        assert [len(r) for r in results] == [3, 3]
        for completions in results:
            assert [c.index for c in completions] == [0, 1, 2]
            for c in completions:
                assert c.prompt_tokens > 0
                assert 1 <= c.completion_tokens <= 16
                assert c.logprobs is not None
                assert len(c.logprobs) == c.completion_tokens
                assert all(t.logprob <= 0 and len(t.top) == 2 for t in c.logprobs)
        again = await llm.generate([[Message.user("What is 2+2?")], "The capital of France is"], params)
        assert [c.text for c in again[0]] == [c.text for c in results[0]]
        (greedy,) = await llm.complete("The capital of France is", SamplingParams(temperature=0, max_tokens=3))
        assert greedy.finish_reason in ("stop", "length")
    finally:
        await llm.aclose()


def test_a_trailing_assistant_message_is_continued() -> None:
    from types import SimpleNamespace

    from longthink.llm.types import Message
    from longthink.llm.vllm_engine import engine_prompt

    seen: list[list[dict[str, str]]] = []

    def apply_chat_template(messages: list[dict[str, str]], **kw: object) -> str:
        seen.append(messages)
        return "".join(f"<{m['role']}>{m['content']}" for m in messages) + "<assistant>"

    tok = SimpleNamespace(
        chat_template="x", apply_chat_template=apply_chat_template, encode=lambda text, **kw: list(text.encode())
    )
    out = engine_prompt((Message.user("q"), Message.assistant("Step 1: ")), tok)
    assert bytes(out["prompt_token_ids"]).decode() == "<user>q<assistant>Step 1: "
    assert seen == [[{"role": "user", "content": "q"}]]
