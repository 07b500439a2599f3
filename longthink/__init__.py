"""longthink: deliberate AI agents that spend inference compute on purpose.

The engine lives here; ``longthink.agents``, ``longthink.planners``, ``longthink.tools`` and
``longthink.domains`` are the top-level folders of the repository, mapped into this namespace.
"""

from longthink.errors import (
    BackendError,
    BudgetExceeded,
    ConfigError,
    LongthinkError,
    ModelNotReady,
    SearchFailed,
)
from longthink.llm.types import Completion, Message, SamplingParams

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``from longthink import Agent, AgentOptions`` without importing the agent stack for every submodule."""
    if name == "Agent":
        from longthink.api import Agent

        return Agent
    if name == "AgentOptions":
        from longthink.agents.options import AgentOptions

        return AgentOptions
    raise AttributeError(f"module 'longthink' has no attribute {name!r}")


__all__ = [
    "Agent",
    "AgentOptions",
    "BackendError",
    "BudgetExceeded",
    "Completion",
    "ConfigError",
    "LongthinkError",
    "Message",
    "ModelNotReady",
    "SamplingParams",
    "SearchFailed",
    "__version__",
]
