"""The longthink agent as one node of a LangGraph graph of your own.

    from langgraph.graph import StateGraph
    from longthink.agents import agent_node

    g = StateGraph(MyState)
    g.add_node("think", agent_node(agent, request_key="question", answer_key="answer"))

The node reads the request from the user's state, runs the whole deliberate agent (plan, search per step,
verify, synthesize) through :meth:`longthink.api.Agent.asolve`, and writes the answer back under
``answer_key`` (and, given ``result_key``, a JSON-able summary of the run: id, status, answer, justification,
spend, domain). The agent keeps its own graph, budget, store and checkpoints, keyed by its own run id, whatever
the outer graph's checkpointer and thread: a run that stops for plan approval (``AgentOptions(approve_plan=True)``)
leaves the answer ``None`` and the summary's status ``"awaiting_approval"`` (one that asks for missing facts,
``AgentOptions(ask_missing=True)``, ``"awaiting_input"``), and ``agent.resume(run_id, ...)`` goes on with it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from longthink.errors import ConfigError

if TYPE_CHECKING:
    from longthink.api import Agent

AgentNode = Callable[[Any], Awaitable[dict[str, Any]]]


def agent_node(
    agent: Agent,
    *,
    request_key: str = "request",
    answer_key: str = "answer",
    result_key: str | None = None,
) -> AgentNode:
    """An async node for ``StateGraph.add_node``: ``state[request_key]`` in, ``{answer_key: answer}`` out
    (plus ``{result_key: summary}`` when ``result_key`` is given). A missing or empty request is a
    :class:`~longthink.errors.ConfigError` that names the key. The node is async, so run the graph with
    ``ainvoke`` / ``astream`` (LangGraph's sync ``invoke`` refuses async nodes)."""
    for name, key in (("request_key", request_key), ("answer_key", answer_key), ("result_key", result_key)):
        if key is not None and (not isinstance(key, str) or not key):
            raise ConfigError(f"{name} must be a non-empty string, not {key!r}", field=name)

    async def longthink_agent(state: Any) -> dict[str, Any]:  # a TypedDict / dict state, or an object's fields
        request = state.get(request_key) if isinstance(state, Mapping) else getattr(state, request_key, None)
        if not isinstance(request, str) or not request.strip():
            found = "is missing" if request is None else f"is {request!r}"
            raise ConfigError(
                f"the longthink node reads its request from state[{request_key!r}], which {found}: "
                "write a non-empty string there before this node runs",
                field=request_key,
            )
        result = await agent.asolve(request)
        update: dict[str, Any] = {answer_key: result.answer}
        if result_key is not None:
            update[result_key] = result.summary()
        return update

    return longthink_agent
