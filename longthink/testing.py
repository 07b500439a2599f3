"""Test doubles that ship with the package: fast, deterministic backends for unit tests.

They go through the same machinery as real backends (:class:`BaseLLM`: prompt normalisation, the n-check,
usage accounting) and the same text post-processing (stop sequences, ``max_tokens`` truncation, finish
reasons, token counts, logprobs), so code tested with them sees the same shapes as with a real model.
Tokens are whitespace-separated words here.

- :class:`ScriptedLLM` replies with scripted texts, in order.
- :class:`FunctionLLM` replies with ``fn(prompt_text, params, index)``.
- :class:`RandomLLM` samples replies from weighted choices with a seeded generator.
- :func:`arithmetic_llm`: a whole agent run without a model (a two-step plan whose steps evaluate the request's
  arithmetic) — what ``longthink serve --llm longthink.testing:arithmetic_llm`` runs in the service's tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from longthink.errors import BackendError
from longthink.llm.base import BaseLLM, find_stop
from longthink.llm.types import Completion, FinishReason, Message, SamplingParams, TokenLogprob

_WORD = re.compile(r"\S+\s*")


def prompt_text(prompt: tuple[Message, ...] | str) -> str:
    """A plain-text view of a prompt: raw text, or ``role: content`` lines."""
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"{m.role}: {m.content}" for m in prompt)


def count_tokens(text: str) -> int:
    return len(_WORD.findall(text))


def finish_text(
    text: str, params: SamplingParams, *, prompt_tokens: int, index: int, model: str, latency_s: float = 0.0
) -> Completion:
    """Turn a raw reply into a Completion exactly as an engine would: stop, truncate, count, logprobs."""
    pos, which = find_stop(text, params.stop)
    cut = text if pos == -1 else text[:pos]
    words = _WORD.findall(cut)
    reason: FinishReason
    if len(words) >= params.max_tokens:
        words = words[: params.max_tokens]
        cut, reason, n_tokens = "".join(words), "length", params.max_tokens
        which = None
    else:
        reason, n_tokens = "stop", len(words) + 1  # the EOS / stop token is generated too
    logprobs = None
    if params.logprobs:
        tokens = [*words, "<eos>"][:n_tokens]
        logprobs = tuple(TokenLogprob(w, _fake_logprob(w), _fake_top(w, params.top_logprobs)) for w in tokens)
    return Completion(
        text=cut,
        finish_reason=reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=n_tokens,
        latency_s=latency_s,
        index=index,
        logprobs=logprobs,
        model=model,
        stop_sequence=which,
    )


def _fake_logprob(word: str) -> float:
    """A deterministic log-probability in (-5, 0] derived from the word."""
    h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")
    return -5.0 * (h / 2**32)


def _fake_top(word: str, k: int) -> tuple[tuple[str, float], ...]:
    if k <= 0:
        return ()
    first = _fake_logprob(word)
    rest = [(f"{word}~{i}", first - 1.0 - i) for i in range(k - 1)]
    return ((word, first), *rest)


class _DoubleLLM(BaseLLM):
    def __init__(self, model: str, *, delay_s: float = 0.0) -> None:
        super().__init__(model)
        self.calls: list[tuple[list[str], SamplingParams]] = []
        self.delay_s = delay_s  # seconds each request takes (without blocking the loop), like a real server

    def reply(self, text: str, params: SamplingParams, index: int) -> str:
        raise NotImplementedError

    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        texts = [prompt_text(p) for p in prompts]
        self.calls.append((texts, params))
        if self.delay_s > 0:
            await asyncio.sleep(self.delay_s)
        out: list[list[Completion]] = []
        for text in texts:
            prompt_tokens = count_tokens(text)
            out.append(
                [
                    finish_text(
                        self.reply(text, params, i),
                        params,
                        prompt_tokens=prompt_tokens,
                        index=i,
                        model=self.model,
                    )
                    for i in range(params.n)
                ]
            )
        return out


class ScriptedLLM(_DoubleLLM):
    """Replies with the scripted texts in order (one per completion, across calls).

    With ``by_prompt``, a reply is chosen by the first key found in the prompt text instead. When the script
    runs out, it raises ``BackendError`` (or repeats the last reply with ``cycle=True``).
    """

    def __init__(
        self,
        replies: Iterable[str] = (),
        *,
        by_prompt: Mapping[str, str | Sequence[str]] | None = None,
        cycle: bool = False,
        model: str = "scripted",
    ) -> None:
        super().__init__(model)
        self._replies = list(replies)
        self._by_prompt = dict(by_prompt or {})
        self._cycle = cycle
        self._next = 0
        self._next_by_key: dict[str, int] = {}

    def reply(self, text: str, params: SamplingParams, index: int) -> str:
        for key, value in self._by_prompt.items():
            if key in text:
                if isinstance(value, str):
                    return value
                i = self._next_by_key.get(key, 0)
                self._next_by_key[key] = i + 1
                return value[i % len(value)]
        if self._next >= len(self._replies):
            if self._cycle and self._replies:
                return self._replies[-1]
            raise BackendError(
                f"the script ran out after {len(self._replies)} replies",
                endpoint=self.endpoint,
                retryable=False,
            )
        self._next += 1
        return self._replies[self._next - 1]


class FunctionLLM(_DoubleLLM):
    """Replies with ``fn(prompt_text, params, index)``."""

    def __init__(
        self, fn: Callable[[str, SamplingParams, int], str], *, model: str = "function", delay_s: float = 0.0
    ) -> None:
        super().__init__(model, delay_s=delay_s)
        self._fn = fn

    def reply(self, text: str, params: SamplingParams, index: int) -> str:
        return self._fn(text, params, index)


class RandomLLM(_DoubleLLM):
    """Samples each reply from ``choices`` (text -> weight) with a seeded generator.

    The stream is derived from (constructor seed, request seed, prompt, index), so the same request gives
    the same replies, and temperature 0 always picks the heaviest choice — like greedy decoding.
    """

    def __init__(self, choices: Mapping[str, float], *, seed: int = 0, model: str = "random") -> None:
        if not choices or any(w < 0 or not math.isfinite(w) for w in choices.values()):
            raise ValueError("choices must be a non-empty mapping of texts to non-negative weights")
        super().__init__(model)
        self._texts = list(choices)
        self._weights = [float(w) for w in choices.values()]
        self._seed = seed
        self._counter = 0

    def reply(self, text: str, params: SamplingParams, index: int) -> str:
        if params.temperature == 0:
            return self._texts[max(range(len(self._texts)), key=self._weights.__getitem__)]
        if params.seed is None:
            self._counter += 1
            salt = f"call{self._counter}"
        else:
            salt = f"seed{params.seed}"
        key = f"{self._seed}|{salt}|{text}|{index}".encode()
        rng = random.Random(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big"))
        return rng.choices(self._texts, weights=self._weights, k=1)[0]


_EXPR = re.compile(r"\d+(?:\.\d+)?(?:\s*[-+*/]\s*\d+(?:\.\d+)?)+")
_SERVICE_PLAN = {
    "steps": [
        {"id": "s1", "goal": "Work out the value of the request's arithmetic", "answer_kind": "number"},
        {"id": "s2", "goal": "Compute the result", "answer_kind": "number", "depends_on": ["s1"]},
    ]
}


def _tokens(text: str) -> list[str]:
    """The numbers and operators of the first arithmetic expression after "request:" in ``text`` (none: [])."""
    match = re.search(r"request:(.*)", text, re.IGNORECASE | re.DOTALL)  # "Request: ..." or "Overall request: ..."
    found = _EXPR.findall(match.group(1) if match else text)
    return re.findall(r"\d+(?:\.\d+)?|[-+*/]", found[0]) if found else []


def _arithmetic(text: str) -> str:
    """The value of the request's arithmetic, left to right like a pocket calculator ("?" when there is none)."""
    tokens = _tokens(text)
    if not tokens:
        return "?"
    value = float(tokens[0])
    for op, num in zip(tokens[1::2], tokens[2::2], strict=False):
        x = float(num)
        value = {"+": value + x, "-": value - x, "*": value * x, "/": value / x if x else math.nan}[op]
    return f"{value:g}"


ARITHMETIC_MODEL = "arithmetic-coder"
"""The model name of :func:`arithmetic_llm`: a coder model, so that numeric steps run in program mode (as on the
embedded default model) and are verified by the agreement of the programs it writes."""


def _program(text: str) -> str:
    """A program that computes what :func:`_arithmetic` does, left to right (it prints "?" without an expression)."""
    tokens = _tokens(text)
    if not tokens:
        return "print('?')"
    lines = [f"value = {tokens[0]}"]
    lines += [f"value = value {op} {num}" for op, num in zip(tokens[1::2], tokens[2::2], strict=False)]
    return "\n".join([*lines, "print(f'{value:g}')"])


def arithmetic_llm(delay_s: float | None = None) -> FunctionLLM:
    """A backend that carries an agent run through plan, steps and answer without a model: it plans two numeric
    steps and answers every step and the synthesis with the value of the request's arithmetic ("What is 17 + 25?"
    gives 42) — a program that prints it where a program is asked for (its runs end ``done``: the programs agree),
    else a reasoning that ends with it. ``delay_s`` (default ``$LONGTHINK_TEST_DELAY_S``, else 0) is how long each
    request takes."""

    def reply(text: str, params: SamplingParams, index: int) -> str:
        if "careful planner" in text:
            return json.dumps(_SERVICE_PLAN)
        value = _arithmetic(text)
        if "Python program" in text:
            return f"```python\n{_program(text)}\n```"
        return f"Working it out: the request's numbers give {value}. Answer: {value}"

    delay = float(os.environ.get("LONGTHINK_TEST_DELAY_S", "0")) if delay_s is None else delay_s
    return FunctionLLM(reply, model=ARITHMETIC_MODEL, delay_s=delay)
