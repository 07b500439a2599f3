"""Options of an agent run, in one object (not keyword arguments repeated across entry points)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from longthink.errors import ConfigError

MAX_BUDGET_TOKENS = 10**12
"""A run's token budget at most (a trillion tokens): a larger number is a mistake, not a budget."""
MAX_REQUEST_CHARS = 1_000_000
"""The default limit of a request's length, attached files included (about 1 MB of text)."""

# field -> (lowest, highest, integer only); None values are allowed where the default is None
_NUMBERS: dict[str, tuple[float, float, bool]] = {
    "budget_tokens": (1, MAX_BUDGET_TOKENS, True),
    "budget_samples": (1, 10**9, True),
    "plan_candidates": (1, 64, True),
    "max_plan_steps": (1, 12, True),
    "max_replans": (0, 100, True),
    "verify_threshold": (-math.inf, math.inf, False),
    "step_max_tokens": (1, 10**7, True),
    "answer_max_tokens": (1, 10**7, True),
    "temperature": (0.0, 100.0, False),
    "seed": (-(2**63), 2**63 - 1, True),
    "max_request_chars": (1, 10**9, True),
}


def _check_number(name: str, value: Any) -> None:
    low, high, integer = _NUMBERS[name]
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise ConfigError(f"{name} must be {kind}, not {type(value).__name__} {value!r:.40}", field=name)
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}", field=name)
    if not low <= value <= high:
        bound = f">= {low:g}" if value < low else f"<= {high:g}"
        raise ConfigError(f"{name} must be {bound}, got {value!r:.40}", field=name)


@dataclass(frozen=True, slots=True)
class AgentOptions:
    """How an agent plans, searches and verifies.

    ``strategy``: a strategy name for every step, or ``"auto"`` to choose per step from the planner's
    difficulty estimate and the step's answer kind. ``budget_tokens`` / ``budget_samples`` cap the whole
    request (planning, every step, synthesis); planning (and each replan) may use at most
    ``plan_budget_share`` of what is left, so the steps always get the rest; each step gets a share of what is
    left, and what it does not spend flows back to later steps. ``domain``: a domain pack's name, ``"general"``
    for none, or None / ``"auto"`` to detect it from the request. ``artifacts_dir``: where packs write files
    (plots, documents), one sub-directory per run; default ``artifacts/`` in the user data directory.
    ``answer_mode``: how numeric steps are answered — ``"program"`` (the model writes a Python program that the
    sandbox runs; its printed value is the answer), ``"text"`` (the number is read from the reasoning), or
    ``"auto"``: program mode when the policy model is a coder model (its name contains "coder"), else text.
    ``judge_model``: a separate judge / reward model (a known model name, a GGUF path or a served model) for this
    agent, overriding ``Settings.judge_model``; None keeps the settings' choice (by default the policy model
    judges). With a judge model and no injected scorer, steps are scored by that model's binary judge.
    ``max_request_chars``: the longest request (attached files included) the agent takes; a longer one, like any
    invalid option, is a ``ConfigError`` before anything runs or is stored.
    ``ask_missing``: when the domain pack asks for facts the request lacks (a business plan's revenue and profit),
    stop before planning and ask (the run is ``awaiting_input`` until ``Agent.resume`` answers); off (the default
    for the Python API and the service; the interactive CLI turns it on), the questions' stated defaults are added
    to the request, labelled as assumptions.
    """

    strategy: str = "auto"
    strategy_options: Mapping[str, Any] = field(default_factory=dict)
    budget_tokens: int | None = 12_000
    budget_samples: int | None = None
    plan_candidates: int = 3
    plan_budget_share: float = 0.4
    max_plan_steps: int = 5
    approve_plan: bool = False
    ask_missing: bool = False
    max_replans: int = 1
    verify_threshold: float = 0.0
    step_max_tokens: int = 256
    answer_max_tokens: int = 320
    temperature: float = 0.7
    seed: int | None = 0
    domain: str | None = None
    artifacts_dir: str | None = None
    answer_mode: str = "auto"
    judge_model: str | None = None
    max_request_chars: int = MAX_REQUEST_CHARS

    def __post_init__(self) -> None:
        """Every field is checked here, before anything runs or is stored (a NaN budget or a float step count
        would otherwise fail mid-run); each error names its field."""
        for name in _NUMBERS:
            value = getattr(self, name)
            if value is not None or name not in ("budget_tokens", "budget_samples", "seed"):
                _check_number(name, value)
        share = self.plan_budget_share
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
            raise ConfigError(f"plan_budget_share must be in (0, 1], got {share!r:.40}", field="plan_budget_share")
        for name in ("strategy", "answer_mode"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, not {type(getattr(self, name)).__name__}", field=name)
        for name in ("domain", "artifacts_dir", "judge_model"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string or None", field=name)
        if not isinstance(self.strategy_options, Mapping) or not all(isinstance(k, str) for k in self.strategy_options):
            raise ConfigError("strategy_options must be a mapping of option names to values", field="strategy_options")
        for name in ("approve_plan", "ask_missing"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False", field=name)
        if self.judge_model is not None and not self.judge_model.strip():
            raise ConfigError("judge_model must be a model name or path, or None", field="judge_model")
        if self.answer_mode not in ("auto", "text", "program"):
            raise ConfigError(
                f"answer_mode must be 'auto', 'text' or 'program', not {self.answer_mode!r}", field="answer_mode"
            )
        if self.strategy != "auto":
            from longthink.search.registry import make_strategy

            make_strategy(self.strategy, **dict(self.strategy_options))  # validates name and options early
