"""Tools: validation, safe evaluation (hostile expressions refused), errors recorded as results."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from pydantic import BaseModel

from longthink.errors import ConfigError
from longthink.tools import Calculator, PythonExpression, ToolRegistry, ToolResult, call_tool, default_tools
from longthink.tools.arithmetic import EvaluationError, evaluate


@pytest.mark.parametrize(
    ("expr", "value"),
    [("23*4*7", 644), ("(1 + 2) * 3 / 4", 2.25), ("-2**3", -8), ("7 // 2 + 7 % 2", 4), ("2.5e2", 250.0)],
)
def test_arithmetic(expr: str, value: float) -> None:
    assert evaluate(expr, arithmetic_only=True) == value


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('echo hi')",
        "().__class__.__bases__[0]",
        "open('/etc/passwd').read()",
        "9**9**9",
        "[1]*100000*100000",
        "sum(range(10**12))",
        "lambda: 1",
        "[x for x in range(3)]",
        "math.factorial(100000)",
        "x",
        "1 +",
    ],
)
def test_hostile_or_invalid_expressions_are_refused(expr: str) -> None:
    with pytest.raises(EvaluationError):
        evaluate(expr)


def test_python_subset() -> None:
    assert evaluate("max([3, 1, 2]) + math.sqrt(16)") == 7.0
    assert evaluate("sorted((3, 1, 2))") == [1, 2, 3]
    assert evaluate("1 < 2 < 3 and not False") is True
    assert evaluate("'yes' if 2 > 1 else 'no'") == "yes"
    with pytest.raises(EvaluationError, match="only numbers"):
        evaluate("'a'", arithmetic_only=True)


async def test_call_tool_records_errors_as_results() -> None:
    calc = Calculator()
    ok = await call_tool(calc, {"expression": "6*7"})
    assert ok.ok and ok.output == "42" and ok.data == 42
    bad_args = await call_tool(calc, {"expr": "1"})
    assert not bad_args.ok and "expression" in (bad_args.error or "")
    div = await call_tool(calc, {"expression": "1/0"})
    assert not div.ok and "ZeroDivisionError" in (div.error or "")
    py = await call_tool(PythonExpression(), {"expression": "round(2/3, 3)"})
    assert py.ok and py.output == "0.667"


class _Args(BaseModel):
    x: int


@dataclass(frozen=True)
class _Broken:
    name: str = "broken"
    description: str = "raises or hangs"
    args_model: type[BaseModel] = _Args

    async def run(self, args: _Args) -> ToolResult:
        if args.x == 0:
            raise RuntimeError("boom")
        await asyncio.sleep(10)
        return ToolResult(self.name, True, "late")


async def test_exceptions_and_timeouts_are_contained() -> None:
    boom = await call_tool(_Broken(), {"x": 0})
    assert not boom.ok and "RuntimeError: boom" in (boom.error or "")
    slow = await call_tool(_Broken(), {"x": 1}, timeout_s=0.05)
    assert not slow.ok and "timed out" in (slow.error or "")


def test_registry() -> None:
    reg = default_tools()
    assert reg.names() == ["calculator", "python"]  # domain tools come with their packs
    assert "calculator(expression)" in reg.describe()
    with pytest.raises(ConfigError, match="unknown tool 'shell'"):
        reg.get("shell")
    with pytest.raises(ConfigError, match="already registered"):
        ToolRegistry([Calculator(), Calculator()])
