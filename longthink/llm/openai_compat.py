"""A backend for any OpenAI-compatible HTTP server: vLLM ``serve``, SGLang, TGI, NVIDIA NIM, llama.cpp.

What it adds over a plain HTTP call:

- **n that is never dropped.** ``n`` goes into one request when the server honours it. A server that
  returns fewer choices than asked (llama.cpp's server ignores ``n``) is remembered per base URL and the
  missing samples are fanned out as concurrent ``n=1`` requests; with a seed, sample ``i`` gets
  ``seed + i``, so the samples differ and stay reproducible. Greedy requests (temperature 0) with ``n > 1``
  are always fanned out: vLLM refuses ``n > 1`` with greedy sampling.
- **Replicas.** Requests are spread round-robin over the base URLs. A URL that refuses connections is
  marked down for ``down_cooldown_s`` and skipped; the request moves to another replica at once. When
  every replica is down the least recently failed one is still tried.
- **Retries** with exponential backoff and jitter on 408/425/429/5xx (not 501), connection errors,
  timeouts and connections dropped mid-response, honouring ``Retry-After`` (capped at ``max_wait_s``).
  Other 4xx raise a non-retryable :class:`BackendError` at once, with a snippet of the response body.
- **Untrusted responses.** A body that is not JSON at all (an HTML page) or lacks a field raises
  ``BackendError(retryable=False)`` naming the URL and the missing field. A body that starts like JSON but
  does not decode (cut or garbled on the way, with a valid status) is retried like a dropped connection.
- **Timeouts.** ``timeout_s`` bounds each attempt as a whole — connecting, sending, waiting for the
  server and reading the whole body — not each read: a slowly dripped body that ends within ``timeout_s``
  is accepted, one that does not is a timeout (and retried). A logical request therefore ends within about
  ``(max_retries + 1) * timeout_s + max_retries * max_wait_s`` (waits for a free connection slot aside).

Token counts: ``prompt_tokens`` comes from the response's ``usage``. ``completion_tokens`` is exact when
a response holds one choice. When one response holds several choices and the server reports only their
total (vLLM and the OpenAI API do), each choice is counted from its logprobs when they were asked for;
otherwise the total is split in proportion to the length of each choice's text (largest remainder, so
the per-choice counts always add up to the reported total).

An ``httpx.AsyncClient`` (with its connection pool) and the concurrency semaphore are bound to an event
loop, so one of each is kept per running loop, created lazily; :meth:`OpenAICompatLLM.aclose` closes them.
``max_concurrency`` therefore limits the in-flight requests of each loop.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from longthink.errors import BackendError, ConfigError
from longthink.llm.base import BaseLLM, normalize_prompt
from longthink.llm.openai_wire import (
    CutBody,
    Malformed,
    check,
    gather,
    get,
    is_number,
    parse_choices,
    parse_json,
    parse_retry_after,
    request_body,
    retryable_status,
    snippet,
)
from longthink.llm.types import Completion, Message, Prompt, SamplingParams

T = TypeVar("T")

_API_KEY_ENV = ("LONGTHINK_API_KEY", "OPENAI_API_KEY")


@dataclass(frozen=True, slots=True)
class ReplicaStats:
    """A snapshot of what one base URL has seen.

    ``requests`` counts HTTP attempts sent to it (retries included), ``successes`` those answered with a 2xx
    JSON body, ``failures`` the others (each retry follows one), ``connection_failures`` the attempts that
    could not connect (each marks the replica down), ``supports_n`` what was learned about ``n`` (None: not
    yet known).
    """

    url: str
    requests: int
    successes: int
    failures: int
    connection_failures: int
    down: bool
    supports_n: bool | None


@dataclass(slots=True, eq=False)
class _Replica:
    """Mutable per-URL state; guarded by the backend's lock."""

    url: str
    supports_n: bool | None
    requests: int = 0
    successes: int = 0
    failures: int = 0
    connection_failures: int = 0
    down_until: float = 0.0
    last_failure: float = -math.inf


@dataclass(slots=True)
class _LoopState:
    """What is bound to one event loop: the HTTP client (connection pool) and the asyncio primitives."""

    client: httpx.AsyncClient
    semaphore: asyncio.Semaphore
    model_lock: asyncio.Lock


@dataclass(frozen=True, slots=True)
class _Reply:
    replica: _Replica
    url: str
    data: Any
    latency_s: float


def normalize_base_url(url: str) -> str:
    """``http://host:8000``, ``http://host:8000/`` and ``http://host:8000/v1/`` -> ``http://host:8000/v1``."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"a base URL must be a non-empty string, got {url!r}", field="base_urls")
    cleaned = url.strip().rstrip("/")
    if not cleaned.startswith(("http://", "https://")):
        raise ConfigError(f"a base URL must start with http:// or https://, got {url!r}", field="base_urls")
    if not cleaned.endswith("/v1"):
        cleaned += "/v1"
    return cleaned


class OpenAICompatLLM(BaseLLM):
    """Client of one or more replicas of an OpenAI-compatible server (see the module docstring)."""

    def __init__(
        self,
        base_urls: Sequence[str] | str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_wait_s: float = 30.0,
        max_concurrency: int = 64,
        supports_n: bool | None = None,
        down_cooldown_s: float = 30.0,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ConfigError("OpenAICompatLLM needs at least one base URL", field="base_urls")
        normalized = [normalize_base_url(u) for u in urls]
        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise ConfigError(f"model must be a non-empty string or None, got {model!r}", field="model")
        check(timeout_s > 0, "timeout_s", f"must be > 0, got {timeout_s!r}")
        check(
            isinstance(max_retries, int) and max_retries >= 0,
            "max_retries",
            f"must be an integer >= 0, got {max_retries!r}",
        )
        check(backoff_s >= 0, "backoff_s", f"must be >= 0, got {backoff_s!r}")
        check(max_wait_s >= 0, "max_wait_s", f"must be >= 0, got {max_wait_s!r}")
        check(
            isinstance(max_concurrency, int) and max_concurrency >= 1,
            "max_concurrency",
            f"must be an integer >= 1, got {max_concurrency!r}",
        )
        check(down_cooldown_s >= 0, "down_cooldown_s", f"must be >= 0, got {down_cooldown_s!r}")
        super().__init__(model or "")
        if api_key is None:
            api_key = next((os.environ[k] for k in _API_KEY_ENV if os.environ.get(k)), None)
        self._headers: dict[str, str] = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout_s = float(timeout_s)
        self._max_retries = max_retries
        self._backoff_s = float(backoff_s)
        self._max_wait_s = float(max_wait_s)
        self._max_concurrency = max_concurrency
        self._supports_n = supports_n
        self._down_cooldown_s = float(down_cooldown_s)
        self._replicas = [_Replica(u, supports_n) for u in normalized]
        self._next = 0
        self._lock = threading.Lock()
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._random = random.Random()

    def __repr__(self) -> str:
        urls = [r.url for r in self._replicas]
        return f"{type(self).__name__}(base_urls={urls!r}, model={self._model!r})"

    # -- public surface ---------------------------------------------------------------------------------
    @property
    def base_urls(self) -> tuple[str, ...]:
        return tuple(r.url for r in self._replicas)

    @property
    def endpoint(self) -> str:
        return ", ".join(self.base_urls)

    def replica_stats(self) -> tuple[ReplicaStats, ...]:
        """Per-replica counters, in the order of ``base_urls``."""
        now = time.monotonic()
        with self._lock:
            return tuple(
                ReplicaStats(
                    url=r.url,
                    requests=r.requests,
                    successes=r.successes,
                    failures=r.failures,
                    connection_failures=r.connection_failures,
                    down=r.down_until > now,
                    supports_n=r.supports_n,
                )
                for r in self._replicas
            )

    async def resolve_model(self) -> str:
        """The served model name: the one given, or the first id of ``GET /models`` (asked once)."""
        if self._model:
            return self._model
        state = self._state()
        async with state.model_lock:
            if not self._model:
                reply = await self._request("GET", "/models", None)
                try:
                    entries = get(reply.data, "data", list)
                    if not entries:
                        raise Malformed("'data' lists no model")
                    self._model = get(entries[0], "id", str)
                except Malformed as exc:
                    raise BackendError(
                        f"malformed /models response: {exc}", endpoint=reply.url, retryable=False
                    ) from None
        return self._model

    async def aclose(self) -> None:
        """Close the HTTP clients of every loop. Safe to call twice; the backend stays usable."""
        current = asyncio.get_running_loop()
        with self._lock:
            states = list(self._states.items())
            self._states.clear()
        for loop, state in states:
            if loop is current:
                await state.client.aclose()
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(state.client.aclose(), loop)
                await asyncio.wrap_future(future)
            # A closed loop took its sockets with it: nothing left to close.

    async def __aenter__(self) -> OpenAICompatLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the backend contract ---------------------------------------------------------------------------
    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        model = await self.resolve_model()
        return await gather(self._sample(prompt, params, model) for prompt in prompts)

    async def _sample(self, prompt: tuple[Message, ...] | str, params: SamplingParams, model: str) -> list[Completion]:
        chat = not isinstance(prompt, str)
        path = "/chat/completions" if chat else "/completions"
        body = request_body(prompt, params, model)
        n = params.n
        if n == 1 or params.temperature == 0 or not self._may_support_n():
            # vLLM refuses n > 1 with greedy sampling ("n must be 1 when using greedy sampling"): n identical
            # greedy samples are asked as n concurrent requests, generated and counted like on every backend.
            return await self._fan_out(path, body, params, chat, 0, n)
        reply = await self._request("POST", path, {**body, "n": n}, prefer_n=True)
        first = self._parse(reply, params, chat, first_index=0, asked=n)
        if len(first) < n and self._supports_n is not True:
            with self._lock:
                reply.replica.supports_n = False
        elif len(first) == n and self._supports_n is None:
            with self._lock:
                reply.replica.supports_n = True
        if len(first) >= n:
            return first[:n]
        rest = await self._fan_out(path, body, params, chat, len(first), n)
        return first + rest

    async def _fan_out(
        self,
        path: str,
        body: Mapping[str, Any],
        params: SamplingParams,
        chat: bool,
        start: int,
        stop: int,
    ) -> list[Completion]:
        """Samples ``start..stop-1`` as concurrent n=1 requests; sample i is seeded with ``seed + i``."""

        async def one(i: int) -> Completion:
            sub = dict(body)
            if params.seed is not None:
                sub["seed"] = params.seed + i
            reply = await self._request("POST", path, sub)
            return self._parse(reply, params, chat, first_index=i, asked=1)[0]

        return await gather(one(i) for i in range(start, stop))

    def _may_support_n(self) -> bool:
        if self._supports_n is not None:
            return self._supports_n
        with self._lock:
            return any(r.supports_n is not False for r in self._replicas)

    async def loglikelihood(self, prompt: Prompt, continuations: Sequence[str]) -> list[list[float]]:
        """Per-token log-likelihoods of each continuation after ``prompt``, from the server's prompt logprobs.

        Needs a vLLM server: the prompt is rendered and tokenised by its ``/tokenize`` route (chat messages
        with the model's template), each continuation is tokenised on its own (no special tokens), and all
        ``prompt + continuation`` token sequences go in one ``/completions`` request with ``max_tokens=1`` and
        ``prompt_logprobs=0`` (the shared prompt is computed once with prefix caching). Same semantics as
        :meth:`TransformersLLM.loglikelihood <longthink.llm.transformers.TransformersLLM.loglikelihood>`: one
        value per continuation token, an empty continuation gives an empty list.
        """
        if isinstance(continuations, str):
            raise ConfigError("continuations must be a sequence of strings, not one string", field="continuations")
        if any(not isinstance(c, str) for c in continuations):
            raise ConfigError("continuations must all be strings", field="continuations")
        normalized = normalize_prompt(prompt)
        model = await self.resolve_model()
        context_body: dict[str, Any] = {"model": model}
        if isinstance(normalized, str):
            context_body["prompt"] = normalized
        else:
            continuing = len(normalized) > 1 and normalized[-1].role == "assistant"
            context_body["messages"] = [{"role": m.role, "content": m.content} for m in normalized]
            context_body["add_generation_prompt"] = not continuing
            context_body["continue_final_message"] = continuing
        context = await self._token_ids(context_body)
        tails = await gather(
            self._token_ids({"model": model, "prompt": c, "add_special_tokens": False}) for c in continuations if c
        )
        todo = [i for i, c in enumerate(continuations) if c]
        results: list[list[float]] = [[] for _ in continuations]
        if not todo:
            return results
        body = {
            "model": model,
            "prompt": [context + tail for tail in tails],
            "max_tokens": 1,
            "temperature": 0,
            "prompt_logprobs": 0,
        }
        reply = await self._request("POST", "/completions", body)
        try:
            choices = get(reply.data, "choices", list)
            if len(choices) != len(todo):
                raise Malformed(f"{len(choices)} choices for {len(todo)} prompts")
            for position, choice in enumerate(choices):
                index = choice.get("index", position) if isinstance(choice, Mapping) else position
                order = index if isinstance(index, int) and 0 <= index < len(todo) else position
                i, tail = todo[order], tails[order]
                entries = get(choice, "prompt_logprobs", list)
                if len(entries) != len(context) + len(tail):
                    raise Malformed(
                        f"choices[{position}].prompt_logprobs has {len(entries)} entries for "
                        f"{len(context) + len(tail)} tokens"
                    )
                values: list[float] = []
                for token, entry in zip(tail, entries[len(context) :], strict=True):
                    found = entry.get(str(token)) if isinstance(entry, Mapping) else None
                    if not isinstance(found, Mapping) or not is_number(found.get("logprob")):
                        raise Malformed(f"choices[{position}].prompt_logprobs lacks token {token}")
                    values.append(float(found["logprob"]))
                results[i] = values
        except Malformed as exc:
            raise BackendError(
                f"malformed prompt_logprobs response (log-likelihoods need a vLLM server): {exc}",
                endpoint=reply.url,
                retryable=False,
            ) from None
        return results

    async def _token_ids(self, body: Mapping[str, Any]) -> list[int]:
        """Token ids from vLLM's ``/tokenize`` route (served at the server's root, beside ``/v1``)."""
        try:
            reply = await self._request("POST", "/tokenize", body, at_root=True)
        except BackendError as exc:
            if exc.status in (404, 405):
                raise BackendError(
                    "this server has no /tokenize route; log-likelihoods of given text need a vLLM server",
                    endpoint=exc.endpoint,
                    retryable=False,
                    status=exc.status,
                ) from exc
            raise
        try:
            tokens = get(reply.data, "tokens", list)
        except Malformed as exc:
            raise BackendError(f"malformed /tokenize response: {exc}", endpoint=reply.url, retryable=False) from None
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
            raise BackendError("/tokenize returned non-integer tokens", endpoint=reply.url, retryable=False)
        return list(tokens)

    # -- parsing ----------------------------------------------------------------------------------------
    def _parse(
        self, reply: _Reply, params: SamplingParams, chat: bool, *, first_index: int, asked: int
    ) -> list[Completion]:
        try:
            return parse_choices(
                reply.data,
                params,
                chat,
                first_index=first_index,
                asked=asked,
                latency_s=reply.latency_s,
                model=self._model,
            )
        except Malformed as exc:
            raise BackendError(f"malformed response: {exc}", endpoint=reply.url, retryable=False) from None

    # -- HTTP with retries and replicas -----------------------------------------------------------------
    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._states.get(loop)
            if state is None:
                for stale in [other for other in self._states if other.is_closed()]:
                    del self._states[stale]
                client = httpx.AsyncClient(
                    timeout=httpx.Timeout(self._timeout_s),
                    limits=httpx.Limits(
                        max_connections=self._max_concurrency,
                        max_keepalive_connections=self._max_concurrency,
                    ),
                    headers=self._headers,
                )
                state = _LoopState(client, asyncio.Semaphore(self._max_concurrency), asyncio.Lock())
                self._states[loop] = state
            return state

    def _pick(self, avoid: _Replica | None, prefer_n: bool) -> _Replica:
        """Round-robin over the replicas that are up (those that honour n first when asked); when all
        are down, the least recently failed one."""
        now = time.monotonic()
        with self._lock:
            count = len(self._replicas)
            start = self._next
            self._next = (start + 1) % count
            order = [self._replicas[(start + k) % count] for k in range(count)]
            up = [r for r in order if r.down_until <= now]
            if prefer_n:
                up = [r for r in up if r.supports_n is not False] or up
            preferred = [r for r in up if r is not avoid] or up
            if preferred:
                return preferred[0]
            return min(self._replicas, key=lambda r: r.last_failure)

    def _other_up(self, replica: _Replica) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(r is not replica and r.down_until <= now for r in self._replicas)

    def _record(self, replica: _Replica, *, ok: bool, down: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if ok:
                replica.successes += 1
                replica.down_until = 0.0
                return
            replica.failures += 1
            replica.last_failure = now
            if down:
                replica.connection_failures += 1
                replica.down_until = now + self._down_cooldown_s

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self._max_wait_s)
        base = min(self._backoff_s * 2.0 ** (attempt - 1), self._max_wait_s)
        return base * (0.5 + 0.5 * self._random.random())

    async def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        prefer_n: bool = False,
        at_root: bool = False,
    ) -> _Reply:
        """One logical request: retried with backoff, moved to another replica when one cannot be reached."""
        state = self._state()
        failovers = len(self._replicas) - 1  # free, immediate moves away from an unreachable replica
        attempt = 0
        tried: list[str] = []
        avoid: _Replica | None = None
        first_error = ""
        while True:
            replica = self._pick(avoid, prefer_n)
            url = (replica.url.removesuffix("/v1") if at_root else replica.url) + path
            if url not in tried:
                tried.append(url)
            retry_after: float | None = None
            status: int | None = None
            async with state.semaphore:
                with self._lock:
                    replica.requests += 1
                start = time.perf_counter()
                try:
                    async with asyncio.timeout(self._timeout_s):
                        response = await state.client.request(method, url, json=body)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    self._record(replica, ok=False, down=True)
                    error = f"cannot connect ({type(exc).__name__}: {exc})"
                    if failovers > 0 and self._other_up(replica):
                        failovers -= 1
                        avoid = replica
                        continue
                except (httpx.TimeoutException, TimeoutError):
                    self._record(replica, ok=False)
                    error = f"no response within {self._timeout_s:g} s"
                except httpx.TransportError as exc:
                    self._record(replica, ok=False)
                    error = f"connection lost ({type(exc).__name__}: {str(exc) or 'no detail'})"
                else:
                    latency = time.perf_counter() - start
                    status = response.status_code
                    if 200 <= status < 300:
                        try:
                            data = parse_json(response, url)
                        except CutBody as exc:  # cut on the way: as transient as a dropped connection
                            self._record(replica, ok=False)
                            error = f"HTTP {status} with {exc}"
                        except BackendError:
                            self._record(replica, ok=False)
                            raise
                        else:
                            self._record(replica, ok=True)
                            return _Reply(replica, url, data, latency)
                    else:
                        self._record(replica, ok=False)
                        error = f"HTTP {status}: {snippet(response)}"
                        if not retryable_status(status):
                            raise BackendError(error, endpoint=url, retryable=False, status=status)
                        retry_after = parse_retry_after(response)
            first_error = first_error or error
            attempt += 1
            if attempt > self._max_retries:
                history = f"last error: {error}"
                if first_error != error:
                    history = f"first error: {first_error}; {history}"
                raise BackendError(
                    f"gave up after {attempt} attempt(s); {history}",
                    endpoint=", ".join(tried),
                    retryable=True,
                    status=status,
                )
            await asyncio.sleep(self._delay(attempt, retry_after))
            avoid = replica
