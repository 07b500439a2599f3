"""Options of an agent run, in one object (not keyword arguments repeated across entry points)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from longthink.errors import ConfigError


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
    """

    strategy: str = "auto"
    strategy_options: Mapping[str, Any] = field(default_factory=dict)
    budget_tokens: int | None = 12_000
    budget_samples: int | None = None
    plan_candidates: int = 3
    plan_budget_share: float = 0.4
    max_plan_steps: int = 5
    approve_plan: bool = False
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

    def __post_init__(self) -> None:
        if self.plan_candidates < 1:
            raise ConfigError("plan_candidates must be >= 1", field="plan_candidates")
        if not 0 < self.plan_budget_share <= 1:
            raise ConfigError("plan_budget_share must be in (0, 1]", field="plan_budget_share")
        if not 1 <= self.max_plan_steps <= 12:
            raise ConfigError("max_plan_steps must be in 1..12", field="max_plan_steps")
        if self.max_replans < 0:
            raise ConfigError("max_replans must be >= 0", field="max_replans")
        if self.budget_tokens is not None and self.budget_tokens < 1:
            raise ConfigError("budget_tokens must be >= 1 or None", field="budget_tokens")
        if self.judge_model is not None and not self.judge_model.strip():
            raise ConfigError("judge_model must be a model name or path, or None", field="judge_model")
        if self.answer_mode not in ("auto", "text", "program"):
            raise ConfigError(
                f"answer_mode must be 'auto', 'text' or 'program', not {self.answer_mode!r}", field="answer_mode"
            )
        if self.strategy != "auto":
            from longthink.search.registry import make_strategy

            make_strategy(self.strategy, **dict(self.strategy_options))  # validates name and options early
