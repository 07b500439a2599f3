"""A database connection lost under a run, seen from the API: a run that had finished (its last checkpoint written)
keeps its answer as the record's last event; one lost mid-run records the error and its resumption."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from longthink import api
from longthink.agents import AgentOptions
from longthink.api import Agent
from longthink.store import MemoryStore
from longthink.testing import FunctionLLM


class DyingGraph:
    """The compiled graph, whose first ``ainvoke`` loses its connection — after the run (``after=True``) or before."""

    def __init__(self, graph: Any, state: dict[str, int], after: bool) -> None:
        self._graph, self._state, self._after = graph, state, after

    def __getattr__(self, name: str) -> Any:
        return getattr(self._graph, name)

    async def ainvoke(self, *args: Any, **kwargs: Any) -> Any:
        first = self._state["calls"] == 0
        self._state["calls"] += 1
        if first and not self._after:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        out = await self._graph.ainvoke(*args, **kwargs)
        if first:
            raise psycopg.OperationalError("terminating connection due to administrator command")
        return out


@pytest.mark.parametrize("after", [True, False])
async def test_a_connection_lost_after_or_during_a_run(monkeypatch: pytest.MonkeyPatch, after: bool) -> None:
    state = {"calls": 0}
    real = api.compile_graph
    monkeypatch.setattr(api, "compile_graph", lambda saver: DyingGraph(real(saver), state, after))
    agent = Agent(llm=FunctionLLM(lambda p, params, i: "The answer is 42."), options=AgentOptions(budget_tokens=None),
                  store=MemoryStore(), checkpoints=None)  # fmt: skip
    handle = agent.astream("What is 40 + 2?", run_id=f"lost-{after}")
    kinds = [e.kind async for e in handle]
    result = await handle.result()
    assert result.status == "unverified" and state["calls"] == 2
    if after:  # finished before the connection died: nothing after the answer
        assert kinds[-1] == "answer" and "run_resumed" not in kinds and "error" not in kinds
    else:
        assert kinds.index("error") < kinds.index("run_resumed") < kinds.index("answer")
