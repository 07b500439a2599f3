"""Compute budgets: tokens and/or samples, optionally money from per-model prices.

A budget is charged *before* a request is sent (:meth:`Budget.reserve`) and settled with the actual usage
afterwards (:meth:`Reservation.settle`). A request is refused once the budget is spent, so a run never exceeds
its cap by more than one request; strategies shrink their batch to what is left with :meth:`Budget.fit_n`.

Budgets nest: :meth:`Budget.split` makes child budgets for sub-problems whose spend is also charged to the
parent, so what a child leaves unspent stays available to the parent and its later children.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from longthink.errors import BudgetExceeded, ConfigError


@dataclass(frozen=True, slots=True)
class Price:
    """Money per million prompt / completion tokens."""

    prompt_per_m: float
    completion_per_m: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_m + completion_tokens * self.completion_per_m) / 1e6


@dataclass(slots=True)
class Spend:
    """What has been spent: tokens (prompt and completion), samples, requests, money."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    samples: int = 0
    requests: int = 0
    cost: float = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Spend) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.samples += other.samples
        self.requests += other.requests
        self.cost += other.cost

    def copy(self) -> Spend:
        return Spend(self.prompt_tokens, self.completion_tokens, self.samples, self.requests, self.cost)

    def __add__(self, other: Spend) -> Spend:
        out = self.copy()
        out.add(other)
        return out

    @classmethod
    def of(cls, value: Spend | Mapping[str, Any] | None) -> Spend:
        """A copy of ``value``: a Spend, its JSON form (:meth:`as_dict`, extra keys ignored) or None (nothing)."""
        if value is None:
            return cls()
        if isinstance(value, Spend):
            return value.copy()
        return cls(
            int(value.get("prompt_tokens", 0)),
            int(value.get("completion_tokens", 0)),
            int(value.get("samples", 0)),
            int(value.get("requests", 0)),
            float(value.get("cost", 0.0) or 0.0),
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens": self.tokens,
            "samples": self.samples,
            "requests": self.requests,
            "cost": round(self.cost, 8),
        }


@dataclass(slots=True)
class Reservation:
    """A request that was admitted; settle it with what the request actually used."""

    budget: Budget
    samples: int
    settled: bool = False

    def settle(
        self, *, prompt_tokens: int, completion_tokens: int, samples: int | None = None, model: str = ""
    ) -> None:
        if self.settled:
            return
        self.settled = True
        spend = Spend(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            samples=self.samples if samples is None else samples,
            requests=1,
            cost=self.budget.price_of(model).cost(prompt_tokens, completion_tokens) if self.budget.prices else 0.0,
        )
        node: Budget | None = self.budget
        while node is not None:
            node.spent.add(spend)
            node._pending -= 1
            node = node.parent


@dataclass
class Budget:
    """A cap on tokens (prompt + completion), samples and/or money; ``None`` means unlimited.

    ``completion_only=True`` counts only generated tokens against ``tokens`` (what test-time scaling
    curves usually plot); prompt tokens are still recorded in ``spent``.
    """

    tokens: int | None = None
    samples: int | None = None
    cost: float | None = None
    prices: Mapping[str, Price] = field(default_factory=dict)
    completion_only: bool = False
    name: str = "budget"
    parent: Budget | None = None
    spent: Spend = field(default_factory=Spend)
    _pending: int = 0

    def __post_init__(self) -> None:
        for attr in ("tokens", "samples", "cost"):
            value = getattr(self, attr)
            if value is not None and value < 0:
                raise ConfigError(f"Budget.{attr} must be >= 0 or None, got {value!r}", field=attr)

    # -- reading -------------------------------------------------------------------------------------------
    def _used_tokens(self) -> int:
        return self.spent.completion_tokens if self.completion_only else self.spent.tokens

    def remaining_tokens(self) -> int | None:
        own = None if self.tokens is None else max(0, self.tokens - self._used_tokens())
        up = self.parent.remaining_tokens() if self.parent else None
        return _min(own, up)

    def remaining_samples(self) -> int | None:
        own = None if self.samples is None else max(0, self.samples - self.spent.samples)
        up = self.parent.remaining_samples() if self.parent else None
        return _min(own, up)

    def remaining_cost(self) -> float | None:
        own = None if self.cost is None else max(0.0, self.cost - self.spent.cost)
        up = self.parent.remaining_cost() if self.parent else None
        if own is None:
            return up
        return own if up is None else min(own, up)

    @property
    def exhausted(self) -> bool:
        t, s, c = self.remaining_tokens(), self.remaining_samples(), self.remaining_cost()
        return t == 0 or s == 0 or (c is not None and c <= 0)

    def price_of(self, model: str) -> Price:
        node: Budget | None = self
        while node is not None:
            if model in node.prices:
                return node.prices[model]
            if "*" in node.prices:
                return node.prices["*"]
            node = node.parent
        return Price(0.0, 0.0)

    def fit_n(self, n: int, max_tokens: int, prompt_tokens: int = 0) -> int:
        """How many of ``n`` samples of up to ``max_tokens`` each fit what is left (at least 1 if not spent)."""
        if self.exhausted:
            return 0
        fit = n
        samples = self.remaining_samples()
        if samples is not None:
            fit = min(fit, samples)
        tokens = self.remaining_tokens()
        if tokens is not None:
            prompt = 0 if self.completion_only else prompt_tokens
            fit = min(fit, max(1, (tokens - prompt) // max(1, max_tokens)))
        return max(1, fit) if fit > 0 else 0

    # -- charging ------------------------------------------------------------------------------------------
    def reserve(self, samples: int) -> Reservation:
        """Admit a request of ``samples`` samples, or raise ``BudgetExceeded`` if the budget is spent."""
        if samples < 1:
            raise ConfigError("a request reserves at least one sample", field="samples")
        if self.exhausted:
            raise BudgetExceeded(f"{self.name} is spent: {self.describe()}")
        remaining = self.remaining_samples()
        if remaining is not None and samples > remaining:
            raise BudgetExceeded(
                f"{self.name}: a request of {samples} samples exceeds the {remaining} left ({self.describe()})"
            )
        node: Budget | None = self
        while node is not None:
            node._pending += 1
            node = node.parent
        return Reservation(self, samples)

    def split(self, shares: int | Sequence[float], *, names: Sequence[str] | None = None) -> list[Budget]:
        """Child budgets taking ``shares`` of what is left now (equal shares for an int)."""
        weights = [1.0] * shares if isinstance(shares, int) else [float(w) for w in shares]
        if not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"split needs positive shares, got {shares!r}", field="shares")
        total = sum(weights)
        t, s, c = self.remaining_tokens(), self.remaining_samples(), self.remaining_cost()
        children = []
        for i, w in enumerate(weights):
            frac = w / total
            children.append(
                Budget(
                    tokens=None if t is None else int(t * frac),
                    samples=None if s is None else int(s * frac),
                    cost=None if c is None else c * frac,
                    completion_only=self.completion_only,
                    name=names[i] if names else f"{self.name}/{i}",
                    parent=self,
                )
            )
        return children

    def child(self, *, tokens: int | None = None, samples: int | None = None, name: str = "") -> Budget:
        """A sub-budget with its own (optional) caps, bounded by this one."""
        return Budget(
            tokens=tokens,
            samples=samples,
            completion_only=self.completion_only,
            name=name or f"{self.name}/child",
            parent=self,
        )

    def describe(self) -> str:
        caps = []
        if self.tokens is not None:
            kind = "completion tokens" if self.completion_only else "tokens"
            caps.append(f"{self._used_tokens()}/{self.tokens} {kind}")
        if self.samples is not None:
            caps.append(f"{self.spent.samples}/{self.samples} samples")
        if self.cost is not None:
            caps.append(f"{self.spent.cost:.4f}/{self.cost:.4f} cost")
        spent = ", ".join(caps) if caps else f"{self.spent.tokens} tokens, {self.spent.samples} samples (no cap)"
        if self.parent is not None and self.parent.exhausted:
            spent += f"; parent {self.parent.describe()}"
        return spent


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)
