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

__all__ = [
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
