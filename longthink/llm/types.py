"""The backend contract's vocabulary: messages, sampling parameters, completions, usage.

Plain frozen dataclasses. Validation happens at construction and raises ``ConfigError`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from longthink.errors import ConfigError

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length"]

_ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ConfigError(f"Message.role must be one of {sorted(_ROLES)}, got {self.role!r}", field="role")
        if not isinstance(self.content, str):
            raise ConfigError("Message.content must be a string", field="content")

    @staticmethod
    def system(content: str) -> Message:
        return Message("system", content)

    @staticmethod
    def user(content: str) -> Message:
        return Message("user", content)

    @staticmethod
    def assistant(content: str) -> Message:
        return Message("assistant", content)


#: A prompt is either chat messages (rendered with the model's chat template) or raw text.
Prompt: TypeAlias = Sequence[Message] | str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """How to sample. ``n`` completions are returned for every prompt, never fewer.

    ``seed`` makes sampling reproducible where the engine supports it; sample ``i`` of a request uses a
    stream derived from ``(seed, i)``. ``logprobs`` asks for the log-probability of every generated
    token, and ``top_logprobs`` for that many alternatives at each position.
    """

    n: int = 1
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"SamplingParams.{name} {why}", field=name)

        if not isinstance(self.n, int) or self.n < 1:
            raise bad("n", f"must be an integer >= 1, got {self.n!r}")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise bad("temperature", f"must be >= 0, got {self.temperature!r}")
        if not (0 < self.top_p <= 1):
            raise bad("top_p", f"must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise bad("max_tokens", f"must be an integer >= 1, got {self.max_tokens!r}")
        if isinstance(self.stop, str):
            raise bad("stop", "must be a tuple of strings, not a single string")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise bad("stop", f"must hold non-empty strings, got {self.stop!r}")
        if self.seed is not None and (not isinstance(self.seed, int) or self.seed < 0):
            raise bad("seed", f"must be a non-negative integer or None, got {self.seed!r}")
        if not isinstance(self.top_logprobs, int) or not (0 <= self.top_logprobs <= 20):
            raise bad("top_logprobs", f"must be an integer in [0, 20], got {self.top_logprobs!r}")
        if self.top_logprobs and not self.logprobs:
            raise bad("top_logprobs", "needs logprobs=True")


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A generated token, its log-probability, and optionally the top alternatives at its position."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Completion:
    """One sampled completion of one prompt.

    ``prompt_tokens`` is the size of the prompt it continues (shared by the n siblings of a request);
    ``latency_s`` is the wall time of the request that produced it. ``stop_sequence`` tells which of the
    requested stop strings ended the text (step-level search needs to tell a step boundary from the end of
    a solution); it is None when the model ended it, the limit cut it, or the server does not say.
    """

    text: str
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] | None = None
    model: str = ""
    stop_sequence: str | None = None  # the stop string that ended it (None: end of sequence or length)

    @property
    def mean_logprob(self) -> float | None:
        """Mean token log-probability (self-certainty); None without logprobs."""
        if not self.logprobs:
            return None
        return sum(t.logprob for t in self.logprobs) / len(self.logprobs)


@dataclass(slots=True)
class Usage:
    """Token accounting. ``prompt_tokens`` counts each prompt once per request, however large n is."""

    requests: int = 0
    prompts: int = 0
    completions: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = field(default=0.0)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.prompts += other.prompts
        self.completions += other.completions
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.latency_s += other.latency_s

    @staticmethod
    def of(results: Sequence[Sequence[Completion]], latency_s: float = 0.0) -> Usage:
        """The usage of one ``generate`` call, from what it returned."""
        usage = Usage(requests=1, prompts=len(results), latency_s=latency_s)
        for completions in results:
            if completions:
                usage.prompt_tokens += completions[0].prompt_tokens
            usage.completions += len(completions)
            usage.completion_tokens += sum(c.completion_tokens for c in completions)
        return usage
