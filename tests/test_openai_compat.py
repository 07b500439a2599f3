"""OpenAICompatLLM against real HTTP servers: llama-cpp-python's OpenAI-compatible server (a real model),
and a scripted stdlib server for statuses, Retry-After, dropped connections and a server that honours n.
No HTTP mocking: every request goes over a socket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import LlamaServer, Reply, ScriptedServer, free_port, openai_reply

from longthink.errors import BackendError, ConfigError, ModelNotReady
from longthink.llm.openai_compat import OpenAICompatLLM, normalize_base_url
from longthink.llm.openai_wire import split_proportionally
from longthink.llm.types import Message, SamplingParams
from longthink.models import SMOLLM2_135M, ModelStore

CHAT = (Message.user("Name three colors."),)


def fast_llm(urls: str | list[str], **kwargs: object) -> OpenAICompatLLM:
    """A client with short waits, so failure paths finish quickly."""
    options: dict[str, object] = {"timeout_s": 5.0, "max_retries": 3, "backoff_s": 0.01, "max_wait_s": 2.0}
    options.update(kwargs)
    return OpenAICompatLLM(urls, **options)  # type: ignore[arg-type]


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


# -- configuration ------------------------------------------------------------------------------------------
def test_base_urls_are_normalised() -> None:
    for url in ("http://h:1", "http://h:1/", "http://h:1/v1", "http://h:1/v1/"):
        assert normalize_base_url(url) == "http://h:1/v1"
    llm = OpenAICompatLLM(["http://a:1", "https://b:2/v1/"], model="m")
    assert llm.base_urls == ("http://a:1/v1", "https://b:2/v1")


@pytest.mark.parametrize(
    ("urls", "kwargs"),
    [([], {}), (["ftp://h"], {}), (["http://h"], {"max_retries": -1}), (["http://h"], {"timeout_s": 0})],
)
def test_bad_configuration_names_the_field(urls: list[str], kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        OpenAICompatLLM(urls, **kwargs)  # type: ignore[arg-type]


def test_split_proportionally_preserves_the_total() -> None:
    assert split_proportionally(30, [2, 4, 6]) == [5, 10, 15]
    assert sum(split_proportionally(10, [1, 1, 1])) == 10
    assert split_proportionally(5, [0, 0]) == [3, 2]
    assert split_proportionally(0, [3, 1]) == [0, 0]


# -- scripted server: n, tokens, logprobs, model discovery ------------------------------------------------
async def test_n_in_one_request_splits_total_tokens_by_text_length(scripted: ScriptedServer) -> None:
    llm = fast_llm(scripted.base_url, model="m")
    [out] = await llm.generate([CHAT], SamplingParams(n=3, seed=5))
    await llm.aclose()
    assert [c.index for c in out] == [0, 1, 2]
    assert [c.text for c in out] == ["ab", "abab", "ababab"]
    # usage reports only the total (30); texts of length 2:4:6 -> 5, 10, 15
    assert [c.completion_tokens for c in out] == [5, 10, 15]
    assert all(c.prompt_tokens == 7 for c in out)
    [post] = scripted.posts()
    assert post.body["n"] == 3 and post.body["seed"] == 5
    assert llm.replica_stats()[0].supports_n is True
    assert llm.usage.completion_tokens == 30 and llm.usage.prompt_tokens == 7


async def test_n_ignored_by_server_fans_out_with_derived_seeds() -> None:
    with ScriptedServer(honour_n=False) as server:
        llm = fast_llm(server.base_url, model="m")
        [out] = await llm.generate(["raw prompt"], SamplingParams(n=3, seed=10))
        assert [c.index for c in out] == [0, 1, 2]
        assert [c.completion_tokens for c in out] == [10, 10, 10]  # one choice per response: exact
        first, *rest = server.posts()
        assert first.body["n"] == 3 and first.body["seed"] == 10
        assert sorted(p.body["seed"] for p in rest) == [11, 12]
        assert all("n" not in p.body for p in rest)
        assert llm.replica_stats()[0].supports_n is False
        # Learned: the next call fans out at once, with seeds seed + i.
        before = len(server.posts())
        await llm.generate(["raw prompt"], SamplingParams(n=3, seed=10))
        later = server.posts()[before:]
        await llm.aclose()
    assert sorted(p.body["seed"] for p in later) == [10, 11, 12]
    assert all("n" not in p.body for p in later)


async def test_logprobs_are_parsed_and_count_tokens_per_choice(scripted: ScriptedServer) -> None:
    llm = fast_llm(scripted.base_url, model="m")
    params = SamplingParams(n=3, logprobs=True, top_logprobs=2)
    chat, raw = await llm.generate([CHAT, "raw"], params)
    await llm.aclose()
    for out in (chat, raw):
        # three choices in one response, total 30: counted from the logprobs instead of split
        assert [c.completion_tokens for c in out] == [1, 2, 3]
        for c in out:
            assert c.logprobs is not None and len(c.logprobs) == c.completion_tokens
            assert all(t.token == "ab" and t.logprob == -0.5 for t in c.logprobs)
            assert all(t.top == (("ab", -0.5), ("cd", -1.5)) for t in c.logprobs)
    chat_body, raw_body = sorted((p.body for p in scripted.posts()), key=lambda b: "prompt" in b)
    assert chat_body["logprobs"] is True and chat_body["top_logprobs"] == 2
    assert raw_body["logprobs"] == 2


async def test_model_is_discovered_once_and_api_key_sent(
    scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LONGTHINK_API_KEY", "sekrit")
    llm = fast_llm(scripted.base_url)
    await llm.generate([CHAT, "raw"], SamplingParams(max_tokens=4))
    await llm.generate([CHAT], SamplingParams(max_tokens=4))
    await llm.aclose()
    assert [s.path for s in scripted.seen].count("/v1/models") == 1
    assert scripted.seen[0].path == "/v1/models"
    assert llm.model == "scripted-model"
    assert all(p.body["model"] == "scripted-model" for p in scripted.posts())
    assert all(s.headers.get("Authorization") == "Bearer sekrit" for s in scripted.seen)
    assert "sekrit" not in repr(llm)


async def test_finish_reasons_are_mapped(scripted: ScriptedServer) -> None:
    def reply(reason: str | None) -> Reply:
        choice = {"index": 0, "text": "x", "finish_reason": reason}
        return Reply(body={"choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})

    scripted.push(reply("eos"), reply("length"), reply(None))
    llm = fast_llm(scripted.base_url, model="m", max_concurrency=1)
    outs = [(await llm.complete("p"))[0].finish_reason for _ in range(3)]
    await llm.aclose()
    assert outs == ["stop", "length", "stop"]


async def test_batch_prompts_are_sent_concurrently(scripted: ScriptedServer) -> None:
    scripted.push(*[Reply(delay_s=0.4, body=_ok_body()) for _ in range(4)])
    llm = fast_llm(scripted.base_url, model="m")
    start = time.monotonic()
    results = await llm.generate([f"p{i}" for i in range(4)], SamplingParams(max_tokens=2))
    elapsed = time.monotonic() - start
    await llm.aclose()
    assert len(results) == 4
    assert elapsed < 1.2, f"4 requests of 0.4 s took {elapsed:.2f} s: not concurrent"


def test_sync_wrapper_uses_its_own_loop(scripted: ScriptedServer) -> None:
    llm = fast_llm(scripted.base_url, model="m")
    [out] = llm.generate_sync(["p"], SamplingParams(max_tokens=2))
    llm.close()
    assert out[0].text == "ab"


# -- scripted server: retries and errors ---------------------------------------------------------------
def _ok_body() -> dict[str, object]:
    return {
        "model": "m",
        "choices": [{"index": 0, "text": "done", "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }


async def test_retries_503_and_429_honouring_retry_after(scripted: ScriptedServer) -> None:
    scripted.push(
        Reply(status=503, body={"error": "warming up"}),
        Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "1"}),
        Reply(body=_ok_body()),
    )
    llm = fast_llm(scripted.base_url, model="m")
    start = time.monotonic()
    [out] = await llm.generate(["p"])
    elapsed = time.monotonic() - start
    await llm.aclose()
    assert out[0].text == "done" and out[0].completion_tokens == 2
    assert len(scripted.posts()) == 3
    gap = scripted.posts()[2].at - scripted.posts()[1].at
    assert gap >= 0.95, f"Retry-After: 1 not honoured (waited {gap:.2f} s)"
    assert elapsed < 3
    assert llm.replica_stats()[0].failures == 2


async def test_retry_after_is_capped(scripted: ScriptedServer) -> None:
    scripted.push(Reply(status=429, headers={"Retry-After": "3600"}, body={}), Reply(body=_ok_body()))
    llm = fast_llm(scripted.base_url, model="m", max_wait_s=0.2)
    start = time.monotonic()
    await llm.generate(["p"])
    await llm.aclose()
    assert time.monotonic() - start < 2


async def test_gives_up_after_max_retries_with_a_retryable_error(scripted: ScriptedServer) -> None:
    scripted.push(*[Reply(status=503, body={"error": "overloaded"}) for _ in range(3)])
    llm = fast_llm(scripted.base_url, model="m", max_retries=2)
    with pytest.raises(BackendError) as info:
        await llm.generate(["p"])
    await llm.aclose()
    assert info.value.retryable is True and info.value.status == 503
    assert scripted.base_url in str(info.value) and "overloaded" in str(info.value)
    assert len(scripted.posts()) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(scripted: ScriptedServer, status: int) -> None:
    scripted.push(Reply(status=status, body={"error": {"message": "you did a bad thing"}}))
    llm = fast_llm(scripted.base_url, model="m")
    with pytest.raises(BackendError) as info:
        await llm.generate([CHAT])
    await llm.aclose()
    assert info.value.retryable is False and info.value.status == status
    assert f"{scripted.base_url}/chat/completions" in str(info.value)
    assert "you did a bad thing" in str(info.value)
    assert len(scripted.posts()) == 1


async def test_connection_dropped_mid_response_is_retried(scripted: ScriptedServer) -> None:
    scripted.push(Reply(body=_ok_body(), drop=True), Reply(body=_ok_body()))
    llm = fast_llm(scripted.base_url, model="m")
    [out] = await llm.generate(["p"])
    await llm.aclose()
    assert out[0].text == "done"
    assert len(scripted.posts()) == 2


async def test_timeout_is_retried(scripted: ScriptedServer) -> None:
    scripted.push(Reply(body=_ok_body(), delay_s=1.0), Reply(body=_ok_body()))
    llm = fast_llm(scripted.base_url, model="m", timeout_s=0.3)
    [out] = await llm.generate(["p"])
    await llm.aclose()
    assert out[0].text == "done"
    assert len(scripted.posts()) == 2


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (Reply(raw=b"<html>not json</html>"), "not valid JSON"),
        (
            Reply(body={"choices": [{"index": 0}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
            "'text'",
        ),
        (Reply(body={"choices": [{"index": 0, "text": "x"}]}), "'usage'"),
        (Reply(body={"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0}}), "empty"),
        (Reply(body=["not", "an", "object"]), "choices"),
    ],
)
async def test_malformed_responses_are_not_retryable(scripted: ScriptedServer, reply: Reply, needle: str) -> None:
    scripted.push(reply)
    llm = fast_llm(scripted.base_url, model="m")
    with pytest.raises(BackendError) as info:
        await llm.generate(["p"])
    await llm.aclose()
    assert info.value.retryable is False
    assert needle in str(info.value)
    assert len(scripted.posts()) == 1


@pytest.mark.parametrize(
    "raw",
    [b'{"choices": [{"index": 0, "te', b"", b'  [{"ok": tru', b'{"choices": [{"text": "caf\xc3'],
    ids=["cut-object", "empty", "cut-array", "cut-utf8"],
)
async def test_a_cut_json_body_is_retried(scripted: ScriptedServer, raw: bytes) -> None:
    scripted.push(Reply(raw=raw), Reply(body=_ok_body()))
    llm = fast_llm(scripted.base_url, model="m")
    [out] = await llm.generate(["p"])
    await llm.aclose()
    assert out[0].text == "done"
    assert len(scripted.posts()) == 2
    [stats] = llm.replica_stats()
    assert (stats.requests, stats.successes, stats.failures) == (2, 1, 1)


async def test_a_body_cut_on_every_attempt_gives_up_retryable(scripted: ScriptedServer) -> None:
    scripted.push(*[Reply(raw=b'{"choices": [{"index": 0, "text": "do') for _ in range(2)])
    llm = fast_llm(scripted.base_url, model="m", max_retries=1)
    with pytest.raises(BackendError) as info:
        await llm.generate(["p"])
    await llm.aclose()
    assert info.value.retryable is True
    assert "gave up after 2 attempt(s)" in str(info.value) and "cut or garbled JSON" in str(info.value)
    assert '"text": "do' in str(info.value)  # a snippet of what came


async def test_all_replicas_down_raises_naming_them() -> None:
    dead = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    llm = fast_llm(dead, model="m", max_retries=2)
    start = time.monotonic()
    with pytest.raises(BackendError) as info:
        await llm.generate(["p"])
    await llm.aclose()
    assert time.monotonic() - start < 3
    assert info.value.retryable is True
    assert all(url in str(info.value) for url in dead)
    assert sum(s.connection_failures for s in llm.replica_stats()) == 4  # 1 failover + 3 attempts


# -- the real server: llama-cpp-python serving SmolLM2-135M ------------------------------------------------
@pytest.fixture(scope="module")
def model_path() -> Path:
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    try:
        return ModelStore().ensure(SMOLLM2_135M)
    except ModelNotReady as exc:
        pytest.skip(f"SmolLM2 not installed: {exc}")


@pytest.fixture(scope="module")
def llama(model_path: Path) -> Iterator[LlamaServer]:
    server = LlamaServer(model_path).start()
    try:
        yield server
    finally:
        server.stop()


def real_llm(url: str | list[str], **kwargs: object) -> OpenAICompatLLM:
    return fast_llm(url, **{"timeout_s": 60.0, **kwargs})


@pytest.mark.real_model
async def test_real_chat_and_raw_prompts(llama: LlamaServer) -> None:
    llm = real_llm(llama.base_url)  # model discovered from GET /models
    chat, raw = await llm.generate([CHAT, "The capital of France is"], SamplingParams(temperature=0, max_tokens=12))
    await llm.aclose()
    for [c] in (chat, raw):
        assert c.text.strip()
        assert c.prompt_tokens > 0 and 0 < c.completion_tokens <= 12
        assert c.finish_reason in ("stop", "length") and c.latency_s > 0
        assert c.model == llm.model
    assert llm.model.endswith(".gguf")  # llama.cpp serves the model under its path


@pytest.mark.real_model
async def test_real_n_fans_out_when_server_ignores_it(llama: LlamaServer) -> None:
    llm = real_llm(llama.base_url, model="smollm2")  # llama.cpp serves its one model whatever the name
    [out] = await llm.generate([CHAT], SamplingParams(n=3, temperature=0.9, max_tokens=8, seed=3))
    await llm.aclose()
    assert [c.index for c in out] == [0, 1, 2]
    assert all(c.completion_tokens > 0 and c.text for c in out)
    assert llm.replica_stats()[0].supports_n is False
    assert llm.replica_stats()[0].requests == 3  # one n=3 request answered with 1 choice, then 2 more


@pytest.mark.real_model
async def test_real_stop_sequence_cuts_the_text(llama: LlamaServer) -> None:
    llm = real_llm(llama.base_url)
    prompt = (Message.user("Describe the sea in two sentences."),)
    [[free]] = await llm.generate([prompt], SamplingParams(temperature=0, max_tokens=24))
    words = [w for w in free.text.split() if w.isalpha() and len(w) >= 3]
    assert len(words) >= 3, free.text
    stop = words[len(words) // 2]
    [[cut]] = await llm.generate([prompt], SamplingParams(temperature=0, max_tokens=24, stop=(stop,)))
    await llm.aclose()
    assert cut.text == free.text[: free.text.index(stop)]
    assert cut.finish_reason == "stop"
    assert cut.completion_tokens < free.completion_tokens


@pytest.mark.real_model
async def test_real_max_tokens_gives_length(llama: LlamaServer) -> None:
    llm = real_llm(llama.base_url)
    prompt = (Message.user("Write a long essay about the history of Rome."),)
    [[c]] = await llm.generate([prompt], SamplingParams(temperature=0, max_tokens=5))
    await llm.aclose()
    assert c.finish_reason == "length"
    assert c.completion_tokens == 5


@pytest.mark.real_model
async def test_real_seed_reproduces_samples(llama: LlamaServer) -> None:
    llm = real_llm(llama.base_url)
    params = SamplingParams(temperature=0.8, max_tokens=12, seed=42)
    prompt = (Message.user("Write a short poem."),)
    first = await llm.generate([prompt], params)
    second = await llm.generate([prompt], params)
    await llm.aclose()
    assert first[0][0].text == second[0][0].text


@pytest.mark.real_model
async def test_real_logprobs_chat_and_raw(llama: LlamaServer) -> None:
    llm = real_llm(llama.base_url)
    params = SamplingParams(temperature=0, max_tokens=6, logprobs=True, top_logprobs=3)
    chat, raw = await llm.generate([CHAT, "The capital of France is"], params)
    [plain] = await llm.generate(["The capital of France is"], SamplingParams(max_tokens=3, logprobs=True))
    await llm.aclose()
    for [c] in (chat, raw):
        assert c.logprobs is not None and len(c.logprobs) == c.completion_tokens
        assert "".join(t.token for t in c.logprobs).startswith(c.text[:1])
        for t in c.logprobs:
            assert t.logprob <= 0
            assert len(t.top) == 3 and all(lp <= 0 for _, lp in t.top)
            assert [lp for _, lp in t.top] == sorted((lp for _, lp in t.top), reverse=True)
        assert c.mean_logprob is not None
    assert plain[0].logprobs is not None and all(t.top == () for t in plain[0].logprobs)


@pytest.mark.real_model
async def test_real_client_error_is_not_retryable(llama: LlamaServer) -> None:
    llm = real_llm(llama.base_url, model="whatever")
    with pytest.raises(BackendError) as info:  # 3000 words do not fit n_ctx=2048: HTTP 400
        await llm.generate(["word " * 3000], SamplingParams(max_tokens=4))
    await llm.aclose()
    assert info.value.retryable is False and info.value.status == 400
    assert f"{llama.base_url}/completions" in str(info.value)
    assert "context" in str(info.value)
    assert llm.replica_stats()[0].requests == 1


@pytest.mark.real_model
async def test_real_dead_replica_is_skipped(llama: LlamaServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    llm = real_llm([dead, llama.base_url], model="smollm2", down_cooldown_s=60.0)
    params = SamplingParams(temperature=0, max_tokens=3)
    [first] = await llm.generate(["Hello"], params)  # round-robin starts at the dead replica
    batch = await llm.generate([f"Count to {i}:" for i in range(4)], params)
    await llm.aclose()
    assert first[0].text is not None and len(batch) == 4
    dead_stats, live_stats = llm.replica_stats()
    assert dead_stats.requests == 1 and dead_stats.connection_failures == 1 and dead_stats.down
    assert live_stats.successes == 5 and live_stats.failures == 0


@pytest.mark.real_model
async def test_real_server_killed_mid_request(model_path: Path) -> None:
    server = LlamaServer(model_path).start()
    try:
        llm = real_llm(server.base_url, model="m", timeout_s=30.0, max_retries=2, backoff_s=0.05)
        prompt = "Here is a list of one hundred animals:\n1."  # greedy: a long list (~60 tok/s here)
        task = asyncio.create_task(llm.generate([prompt], SamplingParams(temperature=0, max_tokens=1000)))
        await asyncio.sleep(1.0)
        assert not task.done(), "the request finished before the kill"
        killed = time.monotonic()
        server.kill()
        with pytest.raises(BackendError) as info:
            await asyncio.wait_for(task, timeout=15)
        assert time.monotonic() - killed < 5
        await llm.aclose()
    finally:
        server.stop()
    assert info.value.retryable is True
    assert server.base_url in str(info.value)


def _tokenizing(path: str, body: Any) -> Reply:
    """A vLLM-like server for log-likelihoods: /tokenize maps characters to ids, /completions returns
    prompt logprobs of -0.1 * id (None at position 0), as vLLM does with prompt_logprobs=0."""
    if path == "/tokenize":
        text = body.get("prompt") or "".join(m["content"] for m in body.get("messages", []))
        prefix = [] if body.get("add_special_tokens") is False else [1]
        return Reply(body={"tokens": prefix + [ord(ch) for ch in text], "count": len(text)})
    if path.endswith("/completions"):
        assert body["max_tokens"] == 1 and body["prompt_logprobs"] == 0
        choices = []
        for i, ids in enumerate(body["prompt"]):
            entries: list[Any] = [None] + [{str(t): {"logprob": -0.1 * t, "rank": 1}} for t in ids[1:]]
            choices.append({"index": i, "text": "x", "finish_reason": "length", "prompt_logprobs": entries})
        return Reply(body={"choices": choices, "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    return openai_reply(path, body)


async def test_loglikelihood_reads_prompt_logprobs_after_the_rendered_prompt() -> None:
    with ScriptedServer(_tokenizing) as server:
        llm = OpenAICompatLLM(server.base_url, model="m")
        right, empty, other = await llm.loglikelihood([Message.user("Q")], ["ab", "", "c"])
        await llm.aclose()
    assert right == [pytest.approx(-0.1 * ord("a")), pytest.approx(-0.1 * ord("b"))]
    assert empty == [] and other == [pytest.approx(-0.1 * ord("c"))]
    tokenize = [s for s in server.posts() if s.path == "/tokenize"]
    assert tokenize[0].body["messages"] == [{"role": "user", "content": "Q"}]
    assert tokenize[0].body["add_generation_prompt"] is True
    [completion] = [s for s in server.posts() if s.path.endswith("/completions")]
    assert completion.body["prompt"] == [[1, ord("Q"), ord("a"), ord("b")], [1, ord("Q"), ord("c")]]


async def test_loglikelihood_needs_a_vllm_server() -> None:
    with ScriptedServer(lambda path, body: Reply(status=404, body={"detail": "Not Found"})) as server:
        llm = OpenAICompatLLM(server.base_url, model="m", max_retries=0)
        with pytest.raises(BackendError, match="no /tokenize route"):
            await llm.loglikelihood("text", ["more"])
        await llm.aclose()

    def no_prompt_logprobs(path: str, body: Any) -> Reply:
        if path.endswith("/completions"):
            return openai_reply(path, {**body, "prompt": None})
        return _tokenizing(path, body)

    with ScriptedServer(no_prompt_logprobs) as server:
        llm = OpenAICompatLLM(server.base_url, model="m", max_retries=0)
        with pytest.raises(BackendError, match="malformed prompt_logprobs"):
            await llm.loglikelihood("text", ["more"])
        await llm.aclose()


def test_vllm_metrics_are_summed_by_name() -> None:
    from longthink.vllm_cpu import parse_metrics

    text = (
        "# HELP vllm:generation_tokens_total Generated tokens.\n"
        'vllm:generation_tokens_total{engine="0",model_name="m"} 120.0\n'
        'vllm:generation_tokens_total{engine="1",model_name="m"} 5.0\n'
        "vllm:num_requests_running 2\n"
        "python_gc_objects_collected_total 9\n"
        "vllm:broken notanumber\n"
    )
    assert parse_metrics(text) == {"vllm:generation_tokens_total": 125.0, "vllm:num_requests_running": 2.0}
