"""Built-in tools: a calculator (arithmetic only) and a Python-expression evaluator (safe subset)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field

from longthink.tools.arithmetic import EvaluationError, evaluate
from longthink.tools.base import ToolResult


class ExpressionArgs(BaseModel):
    expression: str = Field(min_length=1, max_length=2000, description="the expression to evaluate")


def _format(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.10g}"
    return repr(value) if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class Calculator:
    name: str = "calculator"
    description: str = "evaluate an arithmetic expression with + - * / // % ** and parentheses"
    args_model: type[BaseModel] = ExpressionArgs

    async def run(self, args: ExpressionArgs) -> ToolResult:
        try:
            value = evaluate(args.expression, arithmetic_only=True)
        except EvaluationError as exc:
            return ToolResult(self.name, False, "", str(exc))
        return ToolResult(self.name, True, _format(value), data=value)


@dataclass(frozen=True, slots=True)
class PythonExpression:
    name: str = "python"
    description: str = "evaluate a Python expression (math functions, min/max/sum/sorted, comparisons; no imports)"
    args_model: type[BaseModel] = ExpressionArgs

    async def run(self, args: ExpressionArgs) -> ToolResult:
        try:
            value = evaluate(args.expression)
        except EvaluationError as exc:
            return ToolResult(self.name, False, "", str(exc))
        return ToolResult(self.name, True, _format(value), data=value)
