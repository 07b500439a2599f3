"""Tools: the Tool protocol, a registry, and built-in tools (calculator, Python-expression evaluator)."""

from longthink.tools.base import Tool, ToolRegistry, ToolResult, call_tool
from longthink.tools.builtin import Calculator, PythonExpression


def default_tools() -> ToolRegistry:
    """The tools every agent has."""
    return ToolRegistry([Calculator(), PythonExpression()])


__all__ = ["Calculator", "PythonExpression", "Tool", "ToolRegistry", "ToolResult", "call_tool", "default_tools"]
