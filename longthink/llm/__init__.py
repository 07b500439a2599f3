"""Model backends behind one async, batch- and n-native contract."""

from longthink.llm.base import LLM, BaseLLM, apply_stop, run_sync
from longthink.llm.types import Completion, Message, Prompt, SamplingParams, TokenLogprob, Usage

__all__ = [
    "LLM",
    "BaseLLM",
    "Completion",
    "Message",
    "Prompt",
    "SamplingParams",
    "TokenLogprob",
    "Usage",
    "apply_stop",
    "run_sync",
]
