"""Backend faults: ``OpenAICompatLLM`` and whole agent runs through a fault-injecting proxy (``faultproxy.py``) in
front of a real OpenAI-compatible server: llama-cpp-python's server on SmolLM2-135M, or the scripted stdlib
server for the checks of one fault at a time.

At 20% faults every request succeeds, after exactly one retry per failing fault injected; at 100% the client
gives up with a clear, retryable ``BackendError`` well within its worst case; agent runs finish (done, partial or
failed), or stop with the error recorded in the store, and every run stays queryable. No HTTP mocking: every
request goes over sockets, through the proxy, to a real server.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultproxy import FAILING, FAULTS, FaultConfig, FaultProxy
from servers import LlamaServer, ScriptedServer

from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.errors import BackendError
from longthink.llm.openai_compat import OpenAICompatLLM
from longthink.llm.types import Message, SamplingParams
from longthink.planners.planner import Planner
from longthink.store import open_store

CHAT = (Message.user("Say hello."),)
SEED = 13  # the 60-request test sees 13 faults in 72 requests, each kind at least once (cover)
#: What the client's error says after each failing fault.
NEEDLES = {
    "http_500": "HTTP 500",
    "http_429": "HTTP 429",
    "reset_before": "connection lost",
    "reset_mid": "connection lost",
    "stall": "no response within",
    "truncated_json": "cut or garbled JSON",
}


def client(url: str, **kwargs: Any) -> OpenAICompatLLM:
    """A client with short waits; llama.cpp serves its one model whatever the name."""
    options: dict[str, Any] = {"model": "smollm2", "timeout_s": 5.0, "max_retries": 4, "backoff_s": 0.02}
    options["max_wait_s"] = 1.0
    options.update(kwargs)
    return OpenAICompatLLM(url, **options)


def worst_case_s(timeout_s: float, max_retries: int, max_wait_s: float) -> float:
    """The longest one logical request may take: every attempt times out, every wait is the longest."""
    return (max_retries + 1) * timeout_s + max_retries * max_wait_s


# -- one fault at a time, in front of the scripted server ---------------------------------------------------
@pytest.mark.parametrize("fault", FAULTS)
async def test_one_fault_then_the_answer(fault: str) -> None:
    config = FaultConfig(rate=1.0, mix={fault: 1.0}, limit=1, stall_s=30.0, drip_s=0.3, retry_after_s=1)
    with ScriptedServer() as upstream, FaultProxy(upstream.base_url, config) as proxy:
        llm = client(proxy.base_url, timeout_s=1.0)
        start = time.monotonic()
        [[out]] = await llm.generate(["p"], SamplingParams(max_tokens=4))
        elapsed = time.monotonic() - start
        await llm.aclose()
        posts = len(upstream.posts())
    assert out.text == "ab" and out.completion_tokens == 10  # the scripted server's answer, whole
    assert proxy.counts() == Counter({fault: 1})
    failed = fault in FAILING
    [stats] = llm.replica_stats()
    assert (stats.requests, stats.successes, stats.failures) == (1 + failed, 1, int(failed))
    assert len(proxy.injections) == stats.requests
    assert posts == 1 + (fault in ("reset_mid", "truncated_json"))  # those two were forwarded, then spoiled
    if fault == "http_429":
        first, second = proxy.injections
        assert second.at - first.at >= 0.9, "Retry-After: 1 was not honoured"
    if fault == "stall":
        assert elapsed >= 0.9, "the stall did not last until the client's timeout"


@pytest.mark.parametrize("fault", sorted(FAILING))
async def test_a_fault_on_every_attempt_gives_up_naming_it(fault: str) -> None:
    config = FaultConfig(rate=1.0, mix={fault: 1.0}, stall_s=30.0, retry_after_s=1)
    with ScriptedServer() as upstream, FaultProxy(upstream.base_url, config) as proxy:
        llm = client(proxy.base_url, timeout_s=1.0, max_retries=1, max_wait_s=0.2)
        start = time.monotonic()
        with pytest.raises(BackendError) as info:
            await llm.generate([CHAT], SamplingParams(max_tokens=4))
        elapsed = time.monotonic() - start
        await llm.aclose()
    message = str(info.value)
    assert info.value.retryable is True
    assert "gave up after 2 attempt(s)" in message and NEEDLES[fault] in message
    assert f"{proxy.base_url}/chat/completions" in message
    assert proxy.counts() == Counter({fault: 2})
    assert elapsed < 3 * worst_case_s(1.0, 1, 0.2)


async def test_the_timeout_bounds_the_whole_response_not_each_read() -> None:
    # 10 pieces 0.3 s apart: every read is well within 1.5 s, the whole body takes 3 s
    config = FaultConfig(rate=1.0, mix={"slow_drip": 1.0}, drip_s=3.0, drip_chunks=10)
    with ScriptedServer() as upstream, FaultProxy(upstream.base_url, config) as proxy:
        llm = client(proxy.base_url, timeout_s=1.5, max_retries=0)
        with pytest.raises(BackendError, match="no response within 1.5 s"):
            await llm.generate(["p"], SamplingParams(max_tokens=4))
        proxy.configure(drip_s=0.3)  # the whole body within the timeout: accepted
        [[out]] = await llm.generate(["p"], SamplingParams(max_tokens=4))
        await llm.aclose()
    assert out.text == "ab"
    assert proxy.counts() == Counter({"slow_drip": 2})


def test_the_proxy_draws_a_reproducible_share_of_faults() -> None:
    from faultproxy import _Request

    request = _Request("POST", "/v1/completions", "HTTP/1.1", [], b"{}")
    config = FaultConfig(rate=0.2, seed=SEED)
    first, second = FaultProxy("http://127.0.0.1:1/v1", config), FaultProxy("http://127.0.0.1:1/v1", config)
    draws = [[proxy._decide(request)[0] for _ in range(200)] for proxy in (first, second)]
    assert draws[0] == draws[1]
    faults = [f for f in draws[0] if f is not None]
    assert 20 <= len(faults) <= 60  # about 20% of 200
    assert sorted(faults[: len(FAULTS)]) == sorted(FAULTS)  # cover: the first faults go through every kind once
    assert [i.index for i in first.injections] == list(range(200))
    other = FaultProxy("http://127.0.0.1:1/v1", FaultConfig(rate=0.2, seed=SEED + 1))
    assert [other._decide(request)[0] for _ in range(200)] != draws[0]


# -- the real server: llama-cpp-python serving SmolLM2-135M ------------------------------------------------
@pytest.fixture(scope="module")
def llama(smollm2_path: Path) -> Iterator[LlamaServer]:
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    server = LlamaServer(smollm2_path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.real_model
async def test_requests_through_20_percent_faults_all_succeed(llama: LlamaServer) -> None:
    n = 60
    config = FaultConfig(rate=0.2, seed=SEED, stall_s=60.0, drip_s=0.5, retry_after_s=1)
    with FaultProxy(llama.base_url, config) as proxy:
        llm = client(proxy.base_url, timeout_s=8.0, max_retries=6, max_concurrency=4)
        start = time.monotonic()
        results = await llm.generate([f"Count from {i} to {i + 5}:" for i in range(n)], SamplingParams(max_tokens=4))
        elapsed = time.monotonic() - start
        await llm.aclose()
    assert len(results) == n and all(len(r) == 1 and r[0].prompt_tokens > 0 for r in results)
    assert all(r[0].completion_tokens <= 4 for r in results)
    counts = proxy.counts()
    assert set(counts) == set(FAULTS), counts
    [stats] = llm.replica_stats()
    assert stats.successes == n
    assert stats.failures == proxy.failing_faults()  # one retry per failing fault, none for a slow drip
    assert stats.requests == len(proxy.injections) == n + stats.failures
    assert proxy.upstream_errors == []
    print(f"\n{n} requests at 20% faults: {dict(counts)}, {stats.failures} retries, {elapsed:.1f} s")


@pytest.mark.real_model
async def test_every_request_faulted_gives_up_within_the_worst_case(llama: LlamaServer) -> None:
    config = FaultConfig(rate=1.0, mix=dict.fromkeys(FAILING, 1.0), seed=SEED, stall_s=60.0, retry_after_s=1)
    timeout_s, max_retries, max_wait_s = 2.0, len(FAILING) - 1, 1.0
    with FaultProxy(llama.base_url, config) as proxy:
        llm = client(proxy.base_url, timeout_s=timeout_s, max_retries=max_retries, max_wait_s=max_wait_s)
        start = time.monotonic()
        with pytest.raises(BackendError) as info:
            await llm.generate([CHAT], SamplingParams(max_tokens=4))
        elapsed = time.monotonic() - start
        await llm.aclose()
    assert elapsed < 3 * worst_case_s(timeout_s, max_retries, max_wait_s)
    assert info.value.retryable is True
    message = str(info.value)
    assert f"gave up after {len(FAILING)} attempt(s)" in message
    assert proxy.counts() == Counter(dict.fromkeys(FAILING, 1))  # cover: each failing kind once
    first, last = proxy.injections[0].fault, proxy.injections[-1].fault
    assert first is not None and last is not None
    assert NEEDLES[last] in message.split("last error:")[1]
    if NEEDLES[first] != NEEDLES[last]:  # the first error is named when it differs from the last
        assert NEEDLES[first] in message.split("first error:")[1].split("last error:")[0]
    print(f"\n100% faults: gave up after {len(FAILING)} attempts in {elapsed:.1f} s")


# -- whole agent runs ---------------------------------------------------------------------------------------
REQUESTS = (
    "A shop sells 12 pens at $2 each and 3 books at $9 each. What is the total?",
    "Write two sentences about the sea.",
    "A train travels 60 km in 40 minutes. How far does it go in 2 hours?",
    "Give three tips for writing clear emails.",
    "A recipe needs 3 eggs per cake. How many eggs do 7 cakes need?",
    "Name two planets and one fact about each.",
)
#: Every kind but the stall: a stall costs the client's whole timeout, which agent runs must set above their
#: slowest real generation; the stall itself is covered by the client tests above and the slow test below.
NO_STALL = {kind: 1.0 for kind in FAULTS if kind != "stall"}


def _agent(url: str, tmp_path: Path, **llm_options: Any) -> Agent:
    """An agent on SQLite in ``tmp_path``, checkpointed beside it, with short generations (SmolLM2 at 1 thread)."""
    options = AgentOptions(
        budget_tokens=400, max_replans=0, step_max_tokens=48, answer_max_tokens=64, domain="general", seed=0
    )
    return Agent(
        llm=client(url, **llm_options),
        options=options,
        planner=Planner(candidates=2, max_tokens=128),
        store=open_store(f"sqlite:///{tmp_path / 'runs.db'}"),
        checkpoints=str(tmp_path / "checkpoints.sqlite"),
    )


def _runs_through_faults(
    llama: LlamaServer, tmp_path: Path, config: FaultConfig, requests: tuple[str, ...], timeout_s: float
) -> None:
    """Agent runs through ``config``'s faults: each finishes, with one retry per failing fault, and the store
    holds every run with its events, plans and candidates."""
    with FaultProxy(llama.base_url, config) as proxy:
        agent = _agent(proxy.base_url, tmp_path, timeout_s=timeout_s, max_retries=6)
        start = time.monotonic()
        try:
            results = [agent.solve(request, run_id=f"faulty-{i}") for i, request in enumerate(requests)]
            [stats] = agent.llm.replica_stats()  # type: ignore[attr-defined]
        finally:
            agent.close()
        elapsed = time.monotonic() - start
    counts = proxy.counts()
    assert counts, f"no fault in {len(proxy.injections)} requests"
    assert stats.failures == proxy.failing_faults()
    assert stats.requests == len(proxy.injections) == stats.successes + stats.failures
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        for result in results:
            assert result.status in ("done", "unverified", "partial", "failed"), result
            assert result.justification  # whatever the outcome, the run says why
            detail = store.get_run(result.run_id)
            assert detail is not None
            assert (detail.run.status, detail.run.answer) == (result.status, result.answer)
            assert detail.plans and detail.candidates and detail.steps
            kinds = [e.kind for e in store.events(result.run_id)]
            assert kinds[0] == "run_started" and kinds[-1] == "answer" and "error" not in kinds
    finally:
        store.close()
    statuses = dict(Counter(r.status for r in results))
    print(f"\n{len(requests)} agent runs at 20% faults: {statuses}, faults {dict(counts)}, {stats.failures} retries, "
          f"{stats.requests} requests, {elapsed:.1f} s")  # fmt: skip


@pytest.mark.real_model
def test_agent_runs_through_20_percent_faults_finish_and_are_stored(llama: LlamaServer, tmp_path: Path) -> None:
    config = FaultConfig(rate=0.2, mix=NO_STALL, seed=SEED, drip_s=0.5, retry_after_s=1)
    _runs_through_faults(llama, tmp_path, config, REQUESTS[:2], timeout_s=60.0)


@pytest.mark.slow
@pytest.mark.real_model
def test_many_agent_runs_through_every_fault(llama: LlamaServer, tmp_path: Path) -> None:
    config = FaultConfig(rate=0.2, seed=SEED, stall_s=120.0, drip_s=0.5, retry_after_s=1)
    _runs_through_faults(llama, tmp_path, config, REQUESTS, timeout_s=30.0)


@pytest.mark.real_model
def test_agent_run_at_100_percent_faults_stops_recorded_and_resumes(llama: LlamaServer, tmp_path: Path) -> None:
    config = FaultConfig(rate=1.0, mix=dict.fromkeys(FAILING, 1.0), seed=SEED, stall_s=60.0, retry_after_s=1)
    timeout_s, max_retries, max_wait_s = 2.0, 2, 1.0
    with FaultProxy(llama.base_url, config) as proxy:
        agent = _agent(proxy.base_url, tmp_path, timeout_s=timeout_s, max_retries=max_retries, max_wait_s=max_wait_s)
        try:
            start = time.monotonic()
            with pytest.raises(BackendError) as info:
                agent.solve(REQUESTS[0], run_id="down")
            elapsed = time.monotonic() - start
            stopped = agent.store.get_run("down")
        finally:
            agent.close()
        faults = proxy.counts()
        proxy.configure(rate=0.0)  # the backend is back: a new agent goes on with the run from its checkpoint
        agent = _agent(proxy.base_url, tmp_path, timeout_s=60.0)
        try:
            resumed = agent.resume("down")
        finally:
            agent.close()
    # planning failed: one logical request's worst case (the requests sent beside it are cancelled with it)
    assert elapsed < 3 * worst_case_s(timeout_s, max_retries, max_wait_s)
    assert info.value.retryable is True and "gave up after 3 attempt(s)" in str(info.value)
    assert stopped is not None and stopped.run.status == "interrupted"  # resumable: see longthink.outcome.Status
    assert stopped.run.error is not None and "gave up after 3 attempt(s)" in stopped.run.error
    assert [s.id for s in stopped.steps] == ["plan"] and not stopped.candidates
    assert resumed.status in ("done", "unverified", "partial", "failed")
    store = open_store(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        detail = store.get_run("down")
        kinds = [e.kind for e in store.events("down")]
    finally:
        store.close()
    assert detail is not None and detail.run.status == resumed.status and detail.candidates
    assert kinds[0] == "run_started" and kinds[-1] == "answer"
    assert kinds.index("error") < kinds.index("run_resumed")
    print(f"\nagent at 100% faults: stopped after {elapsed:.1f} s ({dict(faults)}), resumed: {resumed.status}")
