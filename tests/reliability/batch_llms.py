"""Backend factories for ``longthink batch --llm`` in tests: importable by the batch's worker processes (the local
pool's spawned workers inherit ``sys.path``; Ray's workers get this folder on ``PYTHONPATH``)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from longthink.errors import BackendError
from longthink.llm.types import SamplingParams
from longthink.testing import ARITHMETIC_MODEL, FunctionLLM, arithmetic_llm

KILL_MARKER = "LONGTHINK_TEST_KILL_MARKER"
"""The environment variable naming the marker file of :func:`faulty_llm`."""
VICTIM = "(victim)"
"""A request containing this is the one :func:`faulty_llm` kills its worker on."""
BROKEN = "(broken)"
"""A request containing this is one :func:`faulty_llm` always fails on."""


def faulty_llm() -> FunctionLLM:
    """:func:`~longthink.testing.arithmetic_llm`, except that

    - the first time a worker reaches the second step of a request containing :data:`VICTIM` (the first step is
      checkpointed by then), it writes its pid to the marker file named by ``$LONGTHINK_TEST_KILL_MARKER`` and
      SIGKILLs its own process: a worker lost mid-task (once the marker exists, it answers);
    - the second step of a request containing :data:`BROKEN` always raises a non-retryable ``BackendError`` (the
      run is interrupted with its first step checkpointed)."""
    marker = Path(os.environ.get(KILL_MARKER) or os.devnull)
    base = arithmetic_llm()

    def reply(text: str, params: SamplingParams, index: int) -> str:
        if BROKEN in text and "Your step: Compute the result" in text:
            raise BackendError("this request always fails", endpoint="faulty", retryable=False)
        if VICTIM in text and "Your step: Compute the result" in text and not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return base.reply(text, params, index)

    return FunctionLLM(reply, model=ARITHMETIC_MODEL)
