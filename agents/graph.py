"""The deliberate agent as a compiled LangGraph ``StateGraph``:

    intake -> clarify -> plan -> approve -> [execute_step x ready steps, concurrently] -> verify -> (replan) -> ...
           -> synthesize

Independent steps fan out with ``Send`` and run concurrently; ``verify`` is the fan-in of each layer, which
re-plans a failed step (bounded by ``AgentOptions.max_replans``) or moves on. ``clarify`` asks for the facts a
domain pack needs and the request lacks (an interrupt, like ``approve``), or assumes their stated defaults.
Dependencies reach the nodes through the runtime context (:class:`AgentDeps`); the state is JSON-able so any
checkpointer can persist it. The graph is built and validated when this module is imported.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from collections.abc import Awaitable
from typing import Any, Protocol, TypeVar

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from longthink.agents import nodes, steps
from longthink.agents.deps import AgentDeps
from longthink.agents.state import AgentState, StepTask

NODES = ("intake", "clarify", "plan", "approve", "execute_step", "verify", "replan", "synthesize")


S = TypeVar("S")
S_contra = TypeVar("S_contra", contravariant=True)


class Node(Protocol[S_contra]):
    """A node of the graph: its state in, the state update out; dependencies from the runtime context."""

    def __call__(self, state: S_contra, *, runtime: Runtime[AgentDeps]) -> Awaitable[dict[str, Any]]: ...


def events_first(node: Node[S]) -> Node[S]:
    """``node``, then its events written to the store before it returns (``AgentDeps.flush_events``). LangGraph
    checkpoints what a node returns after it returns, so a run killed after a checkpoint has every event of the work
    that checkpoint holds (a kill before it loses the node's update, and the resumed run does that work again)."""

    @functools.wraps(node)
    async def run(state: S, runtime: Runtime[AgentDeps]) -> dict[str, Any]:
        update = await node(state, runtime=runtime)
        if runtime.context.flush_events is not None:
            await runtime.context.flush_events()
        return update

    return run


def build_graph() -> StateGraph[AgentState, AgentDeps, AgentState, AgentState]:
    g: StateGraph[AgentState, AgentDeps, AgentState, AgentState] = StateGraph(AgentState, context_schema=AgentDeps)
    g.add_node("intake", events_first(nodes.intake))
    g.add_node("clarify", events_first(nodes.clarify))
    g.add_node("plan", events_first(nodes.plan))
    g.add_node("approve", events_first(nodes.approve))
    g.add_node("execute_step", events_first(steps.execute_step), input_schema=StepTask)
    g.add_node("verify", events_first(nodes.verify))
    g.add_node("replan", events_first(nodes.replan))
    g.add_node("synthesize", events_first(nodes.synthesize))
    g.add_edge(START, "intake")
    g.add_edge("intake", "clarify")
    g.add_conditional_edges("clarify", nodes.route_after_clarify, ["clarify", "plan"])
    g.add_edge("plan", "approve")
    g.add_conditional_edges("approve", nodes.route_after_approve, ["approve", "execute_step", "synthesize", "end"])
    g.add_edge("execute_step", "verify")
    g.add_conditional_edges("verify", nodes.route_after_verify, ["execute_step", "replan", "synthesize"])
    g.add_conditional_edges("replan", nodes.route_steps, ["execute_step", "synthesize", "end"])
    g.add_edge("synthesize", END)
    return g


def _end_alias(g: StateGraph[Any, Any, Any, Any]) -> None:
    g.add_node("end", lambda state: {})
    g.add_edge("end", END)


_COMPILED: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def compile_graph(checkpointer: Any = None) -> Any:
    """Compile the agent graph, optionally with a LangGraph checkpointer (durable runs, interrupts). Compiled once
    per checkpointer: a compiled graph holds no run's state (that is in the checkpointer, keyed by the run id, and
    in the context each invocation passes), so the runs that share a checkpointer share the graph — the service's
    runs do, and compiling costs tens of milliseconds of the event loop's time per run."""
    if checkpointer is not None:
        with contextlib.suppress(KeyError, TypeError):
            return _COMPILED[checkpointer]
    g = build_graph()
    _end_alias(g)
    compiled = g.compile(checkpointer=checkpointer, name="longthink-agent")
    if checkpointer is not None:
        with contextlib.suppress(TypeError):  # a saver that cannot be weakly referenced is compiled each time
            _COMPILED[checkpointer] = compiled
    return compiled


# Build and validate at import: a wiring mistake fails here, before any model loads.
GRAPH = compile_graph()
