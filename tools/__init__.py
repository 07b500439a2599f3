"""Tools: the Tool protocol, a registry, and the generic built-in tools (calculator, Python-expression
evaluator). Domain tools live in their domain packs (the route solver in :mod:`longthink.domains.routing.solver`)
and reach an agent through :attr:`~longthink.domains.registry.DomainPack.tools`."""

from longthink.tools.base import Tool, ToolRegistry, ToolResult, call_tool
from longthink.tools.builtin import Calculator, PythonExpression


def default_tools() -> ToolRegistry:
    """The tools every agent has, whatever the domain: the calculator and Python expressions."""
    return ToolRegistry([Calculator(), PythonExpression()])


__all__ = ["Calculator", "PythonExpression", "Tool", "ToolRegistry", "ToolResult", "call_tool", "default_tools"]
