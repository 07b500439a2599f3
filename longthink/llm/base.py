"""The backend contract: one async, batch- and n-native ``generate``, and the shared machinery around it.

A backend subclasses :class:`BaseLLM` and implements ``_generate``. The base class normalises prompts,
checks that every prompt got exactly ``n`` completions (never silently fewer), keeps token accounting and
offers :meth:`BaseLLM.generate_sync`, a thin wrapper that runs the async core on a private event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar, runtime_checkable

from longthink.errors import BackendError, ConfigError
from longthink.llm.types import Completion, Message, Prompt, SamplingParams, Usage

T = TypeVar("T")


@runtime_checkable
class LLM(Protocol):
    """What every backend offers. ``generate`` returns, per prompt, exactly ``params.n`` completions."""

    @property
    def model(self) -> str: ...

    @property
    def usage(self) -> Usage: ...

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]: ...

    async def aclose(self) -> None: ...


def normalize_prompt(prompt: Prompt | Sequence[Mapping[str, str]]) -> tuple[Message, ...] | str:
    """Accept raw text, ``Message`` objects or ``{"role", "content"}`` dicts; return an immutable prompt."""
    if isinstance(prompt, str):
        if not prompt:
            raise ConfigError("a raw prompt must not be empty", field="prompts")
        return prompt
    messages: list[Message] = []
    for item in prompt:
        if isinstance(item, Message):
            messages.append(item)
        elif isinstance(item, Mapping) and "role" in item and "content" in item:
            messages.append(Message(item["role"], item["content"]))  # type: ignore[arg-type]
        else:
            raise ConfigError(
                f"a chat prompt must hold Message objects or role/content dicts, got {item!r}",
                field="prompts",
            )
    if not messages:
        raise ConfigError("a chat prompt must hold at least one message", field="prompts")
    return tuple(messages)


def split_continuation(prompt: tuple[Message, ...]) -> tuple[tuple[Message, ...], str]:
    """A chat prompt ending with an assistant message is a partial answer to continue: return the messages to
    render (with the generation prompt) and the text that follows them verbatim ("" when there is none)."""
    if len(prompt) > 1 and prompt[-1].role == "assistant":
        return prompt[:-1], prompt[-1].content
    return prompt, ""


def find_stop(text: str, stop: Sequence[str]) -> tuple[int, str | None]:
    """Position and value of the earliest stop sequence in ``text`` ((-1, None) if there is none)."""
    cut, which = -1, None
    for s in stop:
        i = text.find(s)
        if i != -1 and (cut == -1 or i < cut):
            cut, which = i, s
    return cut, which


def apply_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop sequence. Returns the text and whether a stop was found."""
    cut, _ = find_stop(text, stop)
    if cut == -1:
        return text, False
    return text[:cut], True


class _LoopThread:
    """A private event loop in a daemon thread: the sync wrappers run the async core there.

    One loop for the whole process means clients bound to a loop (httpx pools) are reused across sync
    calls, and sync calls also work from code that already runs an event loop (notebooks).
    """

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coro: Coroutine[Any, Any, T]) -> T:
        with cls._lock:
            if cls._loop is None or cls._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="longthink-sync", daemon=True)
                thread.start()
                cls._loop = loop
            loop = cls._loop
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, loop)
        return future.result()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code (the one place sync wrappers go through)."""
    return _LoopThread.run(coro)


class BaseLLM:
    """Shared behaviour of all backends. Subclasses implement :meth:`_generate`."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._usage = Usage()

    @property
    def model(self) -> str:
        return self._model

    @property
    def usage(self) -> Usage:
        """Cumulative token accounting of every call made through this backend."""
        return self._usage

    @property
    def endpoint(self) -> str:
        """What to name in error messages: a URL, a file, an engine."""
        return f"{type(self).__name__}({self._model})"

    async def generate(self, prompts: Sequence[Prompt], params: SamplingParams | None = None) -> list[list[Completion]]:
        """Sample ``params.n`` completions for every prompt of the batch."""
        params = params or SamplingParams()
        if isinstance(prompts, str):
            raise ConfigError("generate() takes a batch: wrap a single prompt in a list", field="prompts")
        normalized = [normalize_prompt(p) for p in prompts]
        if not normalized:
            return []
        start = time.perf_counter()
        results = await self._generate(normalized, params)
        elapsed = time.perf_counter() - start
        if len(results) != len(normalized):
            raise BackendError(
                f"returned {len(results)} results for {len(normalized)} prompts",
                endpoint=self.endpoint,
                retryable=False,
            )
        for i, completions in enumerate(results):
            if len(completions) != params.n:
                raise BackendError(
                    f"returned {len(completions)} completions for prompt {i}, expected n={params.n}",
                    endpoint=self.endpoint,
                    retryable=False,
                )
        self._usage.add(Usage.of(results, latency_s=elapsed))
        return results

    def generate_sync(self, prompts: Sequence[Prompt], params: SamplingParams | None = None) -> list[list[Completion]]:
        """Synchronous wrapper of :meth:`generate` (same implementation, run on a private loop)."""
        return run_sync(self.generate(prompts, params))

    async def complete(self, prompt: Prompt, params: SamplingParams | None = None) -> list[Completion]:
        """Convenience: the n completions of a single prompt."""
        return (await self.generate([prompt], params))[0]

    async def loglikelihood(self, prompt: Prompt, continuations: Sequence[str]) -> list[list[float]]:
        """Per-token log-likelihoods of each continuation after ``prompt`` (reward models use it)."""
        raise ConfigError(
            f"{type(self).__name__} does not compute log-likelihoods of given continuations; "
            "use the transformers backend (TransformersLLM) for that"
        )

    async def aclose(self) -> None:
        """Release resources (connections, model memory). Safe to call twice."""

    def close(self) -> None:
        run_sync(self.aclose())

    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        raise NotImplementedError(f"{type(self).__name__} must implement _generate")
