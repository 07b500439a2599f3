"""Safe evaluation of arithmetic and small Python expressions: an AST interpreter, never ``eval``.

Only literals, arithmetic, comparisons, boolean logic, conditional expressions, tuples/lists/dicts, a few
builtins (abs, min, max, round, sum, len, sorted, int, float, str, bool, range) and ``math`` functions are
allowed. Exponents, the size of integers, the arguments of factorial/comb/perm and sequence sizes (nested ones
counted in full) are bounded so a hostile expression cannot exhaust memory or time; every other failure is an
``EvaluationError`` too.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_POWER = 10_000
MAX_SEQUENCE = 100_000
MAX_LENGTH = 2_000
MAX_BITS = 100_000
"""Integers beyond this many bits (about 30,000 digits) are refused: ``(2**10000)**10000**...`` would not fit."""
MAX_COMBINATORIAL = 1_000
"""The largest argument of ``factorial``, ``comb`` and ``perm`` (``comb(10**6, 5*10**5)`` takes seconds)."""


class EvaluationError(ValueError):
    """The expression is not allowed or cannot be evaluated."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Not: operator.not_,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "sum": sum,
    "len": len,
    "sorted": sorted,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "range": range,
}
_MATH = {name: getattr(math, name) for name in ("sqrt", "log", "log10", "log2", "exp", "floor", "ceil", "sin",
                                                "cos", "tan", "factorial", "gcd", "comb", "perm", "fabs")}  # fmt: skip
_CONSTANTS = {"pi": math.pi, "e": math.e, "True": True, "False": False, "None": None}


def evaluate(expression: str, *, arithmetic_only: bool = False) -> Any:
    """Evaluate ``expression`` safely; raises ``EvaluationError`` with the reason when it is not allowed."""
    if len(expression) > MAX_LENGTH:
        raise EvaluationError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise EvaluationError(f"not a valid expression: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, lone surrogates, nesting too deep
        raise EvaluationError(f"not a valid expression: {type(exc).__name__}") from None
    try:
        return _Evaluator(arithmetic_only).visit(tree.body)
    except RecursionError:
        raise EvaluationError("the expression is nested too deeply") from None


class _Evaluator:
    def __init__(self, arithmetic_only: bool) -> None:
        self.arithmetic_only = arithmetic_only

    def visit(self, node: ast.AST) -> Any:
        if self.arithmetic_only and not isinstance(node, ast.Constant | ast.BinOp | ast.UnaryOp):
            raise EvaluationError(f"only arithmetic is allowed here, not {type(node).__name__}")
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise EvaluationError(f"{type(node).__name__} is not allowed")
        return method(node)

    def _Constant(self, node: ast.Constant) -> Any:
        is_number = isinstance(node.value, int | float) and not isinstance(node.value, bool)
        if self.arithmetic_only and not is_number:
            raise EvaluationError(f"only numbers are allowed, not {node.value!r}")
        if isinstance(node.value, str) and len(node.value) > MAX_SEQUENCE:
            raise EvaluationError("string too long")
        return node.value

    def _BinOp(self, node: ast.BinOp) -> Any:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise EvaluationError(f"operator {type(node.op).__name__} is not allowed")
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Pow) and isinstance(right, int | float) and abs(right) > MAX_POWER:
            raise EvaluationError(f"exponent {right} is too large (max {MAX_POWER})")
        if _is_int(left) and _is_int(right):
            bits = abs(left).bit_length()
            if isinstance(node.op, ast.Pow) and right > 0 and bits > 1 and (bits - 1) * right > MAX_BITS:
                raise EvaluationError(f"the power has more than {MAX_BITS} bits")
            if isinstance(node.op, ast.Mult) and bits + abs(right).bit_length() > MAX_BITS:
                raise EvaluationError(f"the product has more than {MAX_BITS} bits")
        if isinstance(node.op, ast.Mult) and _is_sequence(left, right):
            seq, times = (left, right) if _is_sequence(left, left) else (right, left)
            if isinstance(times, int) and _weight(seq, {}) * max(times, 0) > MAX_SEQUENCE:
                raise EvaluationError("sequence repetition too large")
        try:
            return op(left, right)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise EvaluationError(f"{type(exc).__name__}: {exc}") from None

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        op = _UNARY.get(type(node.op))
        if op is None or (self.arithmetic_only and isinstance(node.op, ast.Not)):
            raise EvaluationError(f"operator {type(node.op).__name__} is not allowed")
        return _checked(op, self.visit(node.operand))

    def _Compare(self, node: ast.Compare) -> Any:
        left = self.visit(node.left)
        for op_node, comp in zip(node.ops, node.comparators, strict=True):
            op = _COMPARE.get(type(op_node))
            if op is None:
                raise EvaluationError(f"comparison {type(op_node).__name__} is not allowed")
            right = self.visit(comp)
            if not _checked(op, left, right):
                return False
            left = right
        return True

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        values = [self.visit(v) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)

    def _IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def _Tuple(self, node: ast.Tuple) -> Any:
        return tuple(self.visit(e) for e in node.elts)

    def _List(self, node: ast.List) -> Any:
        return [self.visit(e) for e in node.elts]

    def _Dict(self, node: ast.Dict) -> Any:
        if any(k is None for k in node.keys):
            raise EvaluationError("dict unpacking is not allowed")
        pairs = [(self.visit(k), self.visit(v)) for k, v in zip(node.keys, node.values, strict=True) if k is not None]
        return _checked(dict, pairs)

    def _Name(self, node: ast.Name) -> Any:
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise EvaluationError(f"name {node.id!r} is not allowed")

    def _Call(self, node: ast.Call) -> Any:
        if node.keywords:
            raise EvaluationError("keyword arguments are not allowed")
        func: Callable[..., Any] | None = None
        if isinstance(node.func, ast.Name):
            func = _FUNCTIONS.get(node.func.id)
        elif (
            isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "math"
        ):
            func = _MATH.get(node.func.attr)
        if func is None:
            raise EvaluationError(f"calling {ast.unparse(node.func)} is not allowed")
        args = [self.visit(a) for a in node.args]
        if func is range and (len(args) > 3 or any(isinstance(a, int) and abs(a) > MAX_SEQUENCE for a in args)):
            raise EvaluationError("range too large")
        combinatorial = func in (math.factorial, math.comb, math.perm)
        if combinatorial and any(_is_int(a) and a > MAX_COMBINATORIAL for a in args):
            raise EvaluationError(f"{ast.unparse(node.func)} argument too large (max {MAX_COMBINATORIAL})")
        return _checked(func, *args)

    def _Attribute(self, node: ast.Attribute) -> Any:
        if isinstance(node.value, ast.Name) and node.value.id == "math" and node.attr in ("pi", "e", "tau", "inf"):
            return getattr(math, node.attr)
        raise EvaluationError("attribute access is not allowed")


def _is_sequence(a: Any, b: Any) -> bool:
    return isinstance(a, str | list | tuple) or isinstance(b, str | list | tuple)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` with its failures (a type mismatch, an unhashable key, a math domain error) as
    ``EvaluationError``."""
    try:
        return func(*args)
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise EvaluationError(f"{type(exc).__name__}: {exc}") from None


def _weight(value: Any, seen: dict[int, int]) -> int:
    """How many items ``value`` holds, nested ones counted at every reference (``[[1]*10**5]*10**5`` is 10**10
    items once printed, though it is built from two lists); ``seen`` memoises containers by id."""
    if isinstance(value, str | range):
        return len(value)
    if not isinstance(value, list | tuple | dict):
        return 1
    if id(value) not in seen:
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        seen[id(value)] = 1 + sum(_weight(item, seen) for item in items)
    return seen[id(value)]
