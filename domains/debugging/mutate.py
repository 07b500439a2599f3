"""Deterministic bug injection into a working function, for benchmarks of the repair search.

Four kinds of mutation, each applied at one site of one function's body (never its docstring):

- ``operator``: an arithmetic or boolean operator swapped (``+``/``-``, ``*``/``//``, ``and``/``or``, ...);
- ``off_by_one``: an integer constant moved by one (``range(n)`` -> ``range(n + 1)``-like bugs, ``[1:]`` ->
  ``[2:]``);
- ``comparison``: a comparison changed (``<``/``<=``, ``>``/``>=``, ``==``/``!=``, ``<``/``>``, ``in``/``not in``);
- ``remove``: one statement deleted (replaced by ``pass`` when it was a block's only statement).

:func:`mutation_sites` lists every site in a stable order; :func:`mutate` applies one; :func:`pick` chooses a
site with a seeded generator, so the same (seed, key) always gives the same mutant. The code is rewritten with
:func:`ast.unparse`, so compare a mutant with :func:`normalise` of the original (comments are dropped).
"""

from __future__ import annotations

import ast
import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

MutationKind = Literal["operator", "off_by_one", "comparison", "remove"]
KINDS: tuple[MutationKind, ...] = ("operator", "off_by_one", "comparison", "remove")

_BINOP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
_BOOLOP: dict[type[ast.boolop], type[ast.boolop]] = {ast.And: ast.Or, ast.Or: ast.And}
_CMPOP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True, slots=True)
class Site:
    """One place a mutation can go: the kind, the index of the node in the function's walk order, and what
    changes (for reports)."""

    kind: MutationKind
    node_index: int
    what: str


def normalise(source: str) -> str:
    """``source`` as :func:`ast.unparse` writes it (the form mutants are written in)."""
    return ast.unparse(ast.parse(source)) + "\n"


def _function(tree: ast.Module, name: str) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise ValueError(f"no top-level function {name!r}")


def _body_nodes(fn: ast.FunctionDef) -> Iterator[ast.AST]:
    """The function's nodes in a stable walk order, skipping its docstring."""
    body = fn.body
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        body = body[1:]
    for stmt in body:
        yield from ast.walk(stmt)


def mutation_sites(source: str, function: str) -> list[Site]:
    """Every site of every kind in ``function``'s body, in a stable order."""
    fn = _function(ast.parse(source), function)
    sites: list[Site] = []
    for i, node in enumerate(_body_nodes(fn)):
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOP:
            sites.append(Site("operator", i, f"{type(node.op).__name__} -> {_BINOP[type(node.op)].__name__}"))
        elif isinstance(node, ast.BoolOp):
            sites.append(Site("operator", i, f"{type(node.op).__name__} -> {_BOOLOP[type(node.op)].__name__}"))
        elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOP:
            sites.append(Site("operator", i, f"{type(node.op).__name__}= -> {_BINOP[type(node.op)].__name__}="))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in _CMPOP:
            sites.append(Site("comparison", i, f"{type(node.ops[0]).__name__} -> {_CMPOP[type(node.ops[0])].__name__}"))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            sites.append(
                Site("off_by_one", i, f"{node.value} -> {node.value + 1 if node.value <= 1 else node.value - 1}")
            )
        if isinstance(node, ast.stmt) and not isinstance(node, ast.Return | ast.FunctionDef):
            sites.append(Site("remove", i, f"remove line: {ast.unparse(node).splitlines()[0][:60]}"))
    return sites


class _Mutator(ast.NodeTransformer):
    def __init__(self, target: ast.AST, kind: MutationKind) -> None:
        self.target, self.kind = target, kind

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for name, value in ast.iter_fields(node):
            if isinstance(value, list) and any(v is self.target for v in value) and self.kind == "remove":
                kept = [v for v in value if v is not self.target]
                setattr(node, name, kept or [ast.Pass()])
                return node
        return super().generic_visit(node)

    def visit(self, node: ast.AST) -> ast.AST:
        if node is not self.target or self.kind == "remove":
            visited: ast.AST = super().visit(node)
            return visited
        if isinstance(node, ast.BinOp | ast.AugAssign):
            node.op = _BINOP[type(node.op)]()
        elif isinstance(node, ast.BoolOp):
            node.op = _BOOLOP[type(node.op)]()
        elif isinstance(node, ast.Compare):
            node.ops[0] = _CMPOP[type(node.ops[0])]()
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            node.value = node.value + 1 if node.value <= 1 else node.value - 1
        return node


def mutate(source: str, function: str, site: Site) -> str:
    """``source`` with the mutation ``site`` applied to ``function`` (written by :func:`ast.unparse`)."""
    tree = copy.deepcopy(ast.parse(source))
    fn = _function(tree, function)
    nodes = list(_body_nodes(fn))
    if not 0 <= site.node_index < len(nodes):
        raise ValueError(f"site {site} is outside {function!r}")
    _Mutator(nodes[site.node_index], site.kind).visit(fn)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def pick(source: str, function: str, key: str, *, seed: int = 0, kind: MutationKind | None = None) -> list[Site]:
    """The sites of ``function`` in a seeded random order (of ``kind`` only, when given); the same
    ``(seed, key)`` always gives the same order. Callers take the first site whose mutant the tests catch."""
    sites = [s for s in mutation_sites(source, function) if kind is None or s.kind == kind]
    random.Random(f"{seed}:{key}:{kind}").shuffle(sites)
    return sites
