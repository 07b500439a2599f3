"""The Tool protocol: a name, a pydantic model of the arguments, and ``async run(args) -> ToolResult``.

:func:`call_tool` is the one entry point: it validates raw arguments (from a model or a user) against the
tool's argument model, runs it with a timeout, and turns every failure into a ``ToolResult`` with the error,
so a bad call is recorded as data and never crashes a run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from longthink.errors import ConfigError


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool: str
    ok: bool
    output: str
    error: str | None = None
    data: Any = None
    latency_s: float = 0.0
    arguments: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Tool(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def args_model(self) -> type[BaseModel]: ...

    async def run(self, args: Any) -> ToolResult: ...


async def call_tool(tool: Tool, raw_args: Mapping[str, Any] | BaseModel, *, timeout_s: float = 30.0) -> ToolResult:
    """Validate ``raw_args`` and run ``tool``; errors (bad arguments, exceptions, time-outs) become results.

    A tool whose run time depends on its arguments (a solver given a time limit) may define
    ``timeout_for(args) -> float``: the time-out is then at least that many seconds."""
    start = time.perf_counter()
    raw = raw_args.model_dump() if isinstance(raw_args, BaseModel) else dict(raw_args)
    try:
        args = tool.args_model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'args'}: {e['msg']}" for e in exc.errors())
        return ToolResult(tool.name, False, "", f"invalid arguments: {problems}", arguments=raw)
    needs = getattr(tool, "timeout_for", None)
    if callable(needs):
        timeout_s = max(timeout_s, float(needs(args)))
    try:
        result = await asyncio.wait_for(tool.run(args), timeout=timeout_s)
    except TimeoutError:
        return ToolResult(tool.name, False, "", f"timed out after {timeout_s:g} s", arguments=raw)
    except Exception as exc:  # noqa: BLE001 - a tool's failure is recorded as data, never raised into the run
        return ToolResult(tool.name, False, "", f"{type(exc).__name__}: {exc}", arguments=raw)
    return ToolResult(
        result.tool,
        result.ok,
        result.output,
        result.error,
        result.data,
        time.perf_counter() - start,
        raw,
    )


class ToolRegistry:
    """Tools by name (an explicit dict); unknown names fail with the known ones listed."""

    def __init__(self, tools: list[Tool] | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools or []:
            self.add(t)

    def add(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ConfigError(f"a tool named {tool.name!r} is already registered", field="tools")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise ConfigError(f"unknown tool {name!r} (known: {', '.join(self._tools)})", field="tool") from None

    def names(self) -> list[str]:
        return list(self._tools)

    def extended(self, tools: list[Tool]) -> ToolRegistry:
        """A new registry with these tools and ``tools`` (this one is unchanged)."""
        return ToolRegistry([*self._tools.values(), *tools])

    def describe(self) -> str:
        """One line per tool with its arguments, for prompts."""
        lines = []
        for t in self._tools.values():
            fields = ", ".join(t.args_model.model_fields)
            lines.append(f"- {t.name}({fields}): {t.description}")
        return "\n".join(lines)
