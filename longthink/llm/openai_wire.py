"""Wire format of OpenAI-compatible servers: request bodies, and parsing of untrusted responses.

Every field of a response is checked; a missing or mistyped one raises ``Malformed`` naming it, which the
client turns into a non-retryable ``BackendError``.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from longthink.errors import BackendError, ConfigError
from longthink.llm.base import find_stop
from longthink.llm.types import Completion, FinishReason, Message, SamplingParams, TokenLogprob

T = TypeVar("T")

#: Statuses worth retrying: the server is overloaded, restarting or timed out. 501 means "never".
RETRYABLE_STATUS: frozenset[int] = frozenset({408, 425, 429})
SNIPPET_CHARS = 300


class Malformed(Exception):
    """A response lacks a field or has the wrong type; turned into a BackendError naming the URL."""


class CutBody(Exception):
    """A 2xx body that starts like JSON (or is empty) but does not decode: cut or garbled on the way, so the
    client retries it. A body that is not JSON at all (an HTML page) is a non-retryable BackendError."""


# -- request building -------------------------------------------------------------------------------------
def request_body(prompt: tuple[Message, ...] | str, params: SamplingParams, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
    }
    if isinstance(prompt, str):
        body["prompt"] = prompt
        if params.logprobs:
            body["logprobs"] = max(1, params.top_logprobs)
    else:
        body["messages"] = [{"role": m.role, "content": m.content} for m in prompt]
        if len(prompt) > 1 and prompt[-1].role == "assistant":
            # continue the partial answer (vLLM's chat API); servers that do not know it start a new turn
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if params.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = params.top_logprobs
    if params.stop:
        body["stop"] = list(params.stop)
    if params.seed is not None:
        body["seed"] = params.seed
    return body


# -- response parsing -------------------------------------------------------------------------------------
def parse_choices(
    data: Any,
    params: SamplingParams,
    chat: bool,
    *,
    first_index: int,
    asked: int,
    latency_s: float,
    model: str,
) -> list[Completion]:
    if isinstance(data, Mapping) and "error" in data and "choices" not in data:
        raise Malformed(f"the server answered with an error: {str(data['error'])[:SNIPPET_CHARS]}")
    choices = get(data, "choices", list)
    if not choices:
        raise Malformed("'choices' is empty")
    usage = get(data, "usage", dict)
    prompt_tokens = get_int(usage, "prompt_tokens")
    total_tokens = get_int(usage, "completion_tokens")
    served = data.get("model")
    served_model = served if isinstance(served, str) and served else model

    parsed: list[tuple[int, str, FinishReason, tuple[TokenLogprob, ...] | None, str | None]] = []
    for position, choice in enumerate(choices[:asked]):
        if not isinstance(choice, Mapping):
            raise Malformed(f"choices[{position}] is not an object")
        index = choice.get("index", position)
        order = index if isinstance(index, int) and not isinstance(index, bool) else position
        if chat:
            message = get(choice, "message", dict)
            content = message.get("content")
            if content is not None and not isinstance(content, str):
                raise Malformed(f"choices[{position}].message.content is not a string")
            text = content or ""
        else:
            text = get(choice, "text", str)
        reason = choice.get("finish_reason")
        finish: FinishReason = "length" if reason == "length" else "stop"
        logprobs = None
        if params.logprobs:
            raw = choice.get("logprobs")
            if raw is None:
                raise Malformed(f"choices[{position}] has no logprobs although they were asked for")
            logprobs = (
                chat_logprobs(raw, params.top_logprobs) if chat else completion_logprobs(raw, params.top_logprobs)
            )
        # vLLM reports the matched stop string as ``stop_reason`` (an int is a stop token id).
        stop_reason = choice.get("stop_reason")
        which = stop_reason if isinstance(stop_reason, str) and stop_reason in params.stop else None
        pos, echoed = find_stop(text, params.stop)  # defensive: a server that echoes the stop string
        if echoed is not None:
            text, finish, which = text[:pos], "stop", echoed
        parsed.append((order, text, finish, logprobs, which))
    parsed.sort(key=lambda item: item[0])

    if len(parsed) == 1:
        counts = [total_tokens]
    elif all(lp is not None for _, _, _, lp, _ in parsed):
        counts = [len(lp or ()) for _, _, _, lp, _ in parsed]
    else:
        counts = split_proportionally(total_tokens, [len(text) for _, text, _, _, _ in parsed])
    return [
        Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=count,
            latency_s=latency_s,
            index=first_index + k,
            logprobs=logprobs,
            model=served_model,
            stop_sequence=which,
        )
        for k, ((_, text, finish, logprobs, which), count) in enumerate(zip(parsed, counts, strict=True))
    ]


def split_proportionally(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder); the sum is ``total``.

    All-zero weights split evenly.
    """
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def chat_logprobs(raw: Any, top_k: int) -> tuple[TokenLogprob, ...]:
    content = get(raw, "content", list)
    out: list[TokenLogprob] = []
    for j, item in enumerate(content):
        token = get(item, "token", str)
        logprob = get_float(item, "logprob")
        alternatives: list[tuple[str, float]] = []
        if top_k:
            for alt in get(item, "top_logprobs", list):
                alternatives.append((get(alt, "token", str), get_float(alt, "logprob")))
        if math.isnan(logprob):
            raise Malformed(f"logprobs.content[{j}].logprob is not a number")
        out.append(TokenLogprob(token, logprob, tuple(alternatives[:top_k])))
    return tuple(out)


def completion_logprobs(raw: Any, top_k: int) -> tuple[TokenLogprob, ...]:
    tokens = get(raw, "tokens", list)
    values = get(raw, "token_logprobs", list)
    tops = raw.get("top_logprobs") or [None] * len(tokens)
    if not (len(tokens) == len(values) == len(tops)):
        raise Malformed("logprobs.tokens, token_logprobs and top_logprobs differ in length")
    out: list[TokenLogprob] = []
    for j, (token, value, top) in enumerate(zip(tokens, values, tops, strict=True)):
        if not isinstance(token, str):
            raise Malformed(f"logprobs.tokens[{j}] is not a string")
        if not is_number(value):
            raise Malformed(f"logprobs.token_logprobs[{j}] is not a number")
        alternatives: list[tuple[str, float]] = []
        if top_k and top is not None:
            if not isinstance(top, Mapping):
                raise Malformed(f"logprobs.top_logprobs[{j}] is not an object")
            for alt, alt_value in top.items():
                if not isinstance(alt, str) or not is_number(alt_value):
                    raise Malformed(f"logprobs.top_logprobs[{j}] holds a non-numeric entry")
                alternatives.append((alt, float(alt_value)))
            alternatives.sort(key=lambda pair: pair[1], reverse=True)
        out.append(TokenLogprob(token, float(value), tuple(alternatives[:top_k])))
    return tuple(out)


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def get(obj: Any, key: str, kind: type[T]) -> T:
    if not isinstance(obj, Mapping):
        raise Malformed(f"expected an object holding {key!r}, got {type(obj).__name__}")
    if key not in obj:
        raise Malformed(f"missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        raise Malformed(f"field {key!r} is {type(value).__name__}, expected {kind.__name__}")
    return value


def get_int(obj: Any, key: str) -> int:
    value = get(obj, key, int)
    if isinstance(value, bool) or value < 0:
        raise Malformed(f"field {key!r} must be a non-negative integer, got {value!r}")
    return value


def get_float(obj: Any, key: str) -> float:
    if not isinstance(obj, Mapping) or key not in obj or not is_number(obj[key]):
        raise Malformed(f"field {key!r} is missing or not a number")
    return float(obj[key])


# -- HTTP helpers -----------------------------------------------------------------------------------------
def retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or (500 <= status < 600 and status != 501)


def snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    if len(text) > SNIPPET_CHARS:
        text = text[:SNIPPET_CHARS] + "..."
    return text or "(empty body)"


def parse_json(response: httpx.Response, url: str) -> Any:
    """The body's JSON; :class:`CutBody` when it starts like JSON but does not decode (see there)."""
    try:
        return response.json()
    except ValueError:  # JSONDecodeError, UnicodeDecodeError (a multi-byte character cut in two)
        if response.content.lstrip()[:1] in (b"", b"{", b"["):
            raise CutBody(
                f"the body ({len(response.content)} bytes) is cut or garbled JSON: {snippet(response)}"
            ) from None
        raise BackendError(
            f"the response is not valid JSON: {snippet(response)}", endpoint=url, retryable=False
        ) from None


def parse_retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


async def gather(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """``asyncio.gather`` that cancels the siblings when one fails, so no request is left running."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def check(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise ConfigError(f"OpenAICompatLLM.{name} {why}", field=name)
