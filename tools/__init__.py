"""Tools: the Tool protocol and built-in tools (calculator, code sandbox, route solver)."""
