"""What graph nodes get through LangGraph's runtime context: the injected dependencies of one run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longthink.agents.options import AgentOptions
from longthink.budget import Budget, Spend
from longthink.domains.pipeline import DomainPipeline
from longthink.domains.registry import GENERAL, REGISTRY, DomainRegistry
from longthink.events import EventBus
from longthink.llm.base import LLM
from longthink.planners.plan import PlanStep
from longthink.planners.planner import Planner
from longthink.rewards.base import Scorer
from longthink.search.types import StepResult
from longthink.tools.base import ToolRegistry

#: A step verifier: (step, result of its search) -> (passed, reason). May be async.
StepVerifier = Callable[[PlanStep, StepResult], "tuple[bool, str] | Awaitable[tuple[bool, str]]"]


@dataclass
class AgentDeps:
    llm: LLM
    budget: Budget
    events: EventBus
    tools: ToolRegistry
    options: AgentOptions = field(default_factory=AgentOptions)
    scorer: Scorer | None = None
    judge_llm: LLM | None = None  # a separate judge / reward model; None: the policy model judges
    planner: Planner | None = None
    verifier: StepVerifier | None = None
    domains: DomainRegistry = REGISTRY
    extra: dict[str, Any] = field(default_factory=dict)
    # Spend the store recorded but the checkpoint lost (a run killed inside a node): the first node that reports
    # its spend to the graph state adds it, so the state's total catches up.
    unrecorded: Spend | None = None
    # Writes the events emitted so far to the store (the agent's store observer): every node awaits it before it
    # returns, and LangGraph checkpoints a node's update only after that, so the store never lags a checkpoint.
    flush_events: Callable[[], Awaitable[None]] | None = None

    def state_spend(self, budget: Budget) -> dict[str, Any]:
        """What ``budget`` spent (plus any spend the checkpoint lost), for the state's ``spend`` reducer."""
        spent = Spend.of(budget.spent)
        if self.unrecorded is not None:
            spent, self.unrecorded = spent + self.unrecorded, None
        return spent.as_dict()

    def pipeline(self, domain: str | None) -> DomainPipeline | None:
        """The pipeline of the run's domain pack, if it has one."""
        if not domain or domain == GENERAL:
            return None
        return self.domains.get(domain).pipeline

    def tools_for(self, domain: str | None) -> ToolRegistry:
        """The tools a step of a run in ``domain`` can call: the agent's tools plus the domain pack's own."""
        if not domain or domain == GENERAL:
            return self.tools
        pack_tools = [t for t in self.domains.get(domain).tools if t.name not in self.tools.names()]
        return self.tools.extended(pack_tools) if pack_tools else self.tools

    def pack_scorers(self, domain: str | None) -> tuple[Scorer, ...]:
        """The scorers of ``domain``'s pack when it has no plan of its own (a pack with a pipeline scores inside
        its steps)."""
        if not domain or domain == GENERAL:
            return ()
        pack = self.domains.get(domain)
        return () if pack.pipeline is not None else tuple(pack.scorers)

    def artifacts_dir(self, run_id: str) -> Path:
        if self.options.artifacts_dir:
            return Path(self.options.artifacts_dir) / run_id
        import platformdirs

        return Path(platformdirs.user_data_dir("longthink")) / "artifacts" / run_id

    def get_planner(self, domain: str | None = None, budget: Budget | None = None) -> Planner:
        """The injected planner, else one that samples ``plan_candidates`` plans and scores them by structure
        and a rubric judge (the judge model if one is set, else the policy model, scored from its token
        probabilities), charged to ``budget`` (default: the run budget)."""
        if self.planner is not None:
            return self.planner
        from longthink.planners.planner import RUBRIC
        from longthink.rewards.judge import Judge

        judge = Judge(
            self.judge_llm or self.llm, rubric=RUBRIC, scale=5, name="plan_judge", budget=budget or self.budget
        )
        hints = "Tools a step can call instead of the model (set tool and tool_args):\n"
        hints += self.tools_for(domain).describe()
        if domain and domain != GENERAL and self.domains.get(domain).planner_hints:
            hints += "\n" + self.domains.get(domain).planner_hints
        return Planner(
            candidates=self.options.plan_candidates,
            max_steps=self.options.max_plan_steps,
            judge=judge if self.options.plan_candidates > 1 else None,
            hints=hints,
        )
