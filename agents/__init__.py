"""Agent graphs (LangGraph): plan -> solve steps with search -> verify -> replan -> synthesize."""

from longthink.agents.deps import AgentDeps, StepVerifier
from longthink.agents.graph import GRAPH, build_graph, compile_graph
from longthink.agents.options import AgentOptions
from longthink.agents.subgraph import agent_node

__all__ = ["GRAPH", "AgentDeps", "AgentOptions", "StepVerifier", "agent_node", "build_graph", "compile_graph"]
