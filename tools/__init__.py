"""Tools: the Tool protocol, a registry, and built-in tools (calculator, Python-expression evaluator)."""

from longthink.tools.base import Tool, ToolRegistry, ToolResult, call_tool
from longthink.tools.builtin import Calculator, PythonExpression


def default_tools() -> ToolRegistry:
    """The tools every agent has: calculator, Python expressions, and the vehicle-routing solver (PyVRP is
    imported only when it solves)."""
    from longthink.tools.route_solver import RouteSolver  # here: the solver module imports the routing types

    return ToolRegistry([Calculator(), PythonExpression(), RouteSolver()])


__all__ = ["Calculator", "PythonExpression", "Tool", "ToolRegistry", "ToolResult", "call_tool", "default_tools"]
