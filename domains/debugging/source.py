"""Reading a debugging request (code, tests, an error) and applying a model's patch to the code.

A request carries its code and tests as attached files (``--file``) or as fenced snippets in its text; an
error or traceback may come in the prose, in a fenced block or as a ``.txt``/``.log`` file. Each piece is told
apart by its name and content (``def test_``, ``unittest``, ``assert`` at the top level make a test file).

A patch is what a small model can write robustly: one or more whole functions (or the whole file) in a fenced
block. :func:`apply_patch` puts each top-level function or class of the patch in place of the one with the same
name in the original file and adds any new imports; anything that does not parse, or names nothing in the
file, is a failed candidate with the reason.
"""

from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass

from longthink.domains.pipeline import attached_files, request_text

_FENCE = re.compile(r"^(`{3,})[ \t]*([\w+-]*)[^\n]*\n(.*?)\n\1[ \t]*$", re.M | re.S)
_TRACEBACK = re.compile(r"Traceback \(most recent call last\):.*?(?:\n\S[^\n]*(?:Error|Exception|Exit)[^\n]*)", re.S)
_ERROR_LINE = re.compile(r"(?m)^\w*(?:Error|Exception)\b[^\n]*$")


NOT_PYTHON = (SyntaxError, ValueError, RecursionError, MemoryError)
"""What ``ast.parse`` raises on text that is not Python: a syntax error, NUL bytes (ValueError before 3.12), or
nesting deeper than the parser goes (RecursionError, or MemoryError: "too complex to parse")."""


def _why_not(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {str(exc)[:120] or 'too deeply nested'}"


class BadInput(ValueError):
    """The request has no code to debug (or it does not parse): the caller's fault, said clearly."""


@dataclass(frozen=True, slots=True)
class DebugInput:
    """The code under repair (``module``.py), its tests (may be empty) and the reported error (may be empty)."""

    source: str
    tests: str
    module: str
    error: str
    description: str
    code_name: str = ""
    tests_name: str = ""

    def functions(self) -> list[str]:
        """Names of the file's top-level functions and classes, in order."""
        return [n.name for n in _defs(ast.parse(self.source))]


def looks_like_tests(name: str, text: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    if base.startswith("test_") or base.endswith("_test.py") or base.startswith("tests"):
        return True
    return bool(re.search(r"(?m)^(def test_\w+|class \w+\(.*TestCase\)|import unittest|import pytest|assert )", text))


def looks_like_error(name: str, text: str) -> bool:
    return name.lower().endswith((".txt", ".log", ".err")) or bool(
        _TRACEBACK.search(text) or (not _is_python(text) and _ERROR_LINE.search(text))
    )


def _is_python(text: str) -> bool:
    try:
        ast.parse(text)
    except NOT_PYTHON:
        return False
    return True


def parse_request(request: str) -> DebugInput:
    """The code, tests and error of ``request`` (see the module docstring); :class:`BadInput` without code."""
    pieces: list[tuple[str, str]] = list(attached_files(request).items())
    prose = request_text(request)
    for i, m in enumerate(_FENCE.finditer(prose)):
        lang = m.group(2).lower()
        pieces.append((f"snippet{i}.{'py' if lang in ('', 'python', 'py', 'python3') else 'txt'}", m.group(3)))
    description = _FENCE.sub("", prose).strip()
    code: list[tuple[str, str]] = []
    tests: list[tuple[str, str]] = []
    errors: list[str] = []
    for name, text in pieces:
        if looks_like_error(name, text):
            errors.append(text.strip())
        elif looks_like_tests(name, text):
            tests.append((name, text))
        elif name.endswith(".py") or _is_python(text):
            code.append((name, text))
        else:
            errors.append(text.strip())
    if (tb := _TRACEBACK.search(description)) is not None:
        errors.append(tb.group(0).strip())
    if not code:
        if len(tests) > 1:  # two test-looking files: the one without test functions is the code
            code.append(tests.pop(next((i for i, (_, t) in enumerate(tests) if "def test_" not in t), 0)))
        else:
            raise BadInput("no code found: attach the file (--file) or paste it in a ```python block")
    code_name, source = code[0]
    source = source.rstrip("\n") + "\n"  # a file ends with a newline (attached files lose it)
    module = _module_name(code_name)
    if not _is_python(source):
        raise BadInput(f"the code in {code_name!r} does not parse as Python")
    test_name, test_text = tests[0] if tests else ("", "")
    test_text = test_text.rstrip("\n") + "\n" if test_text else ""
    if test_text and not re.search(rf"(?m)^\s*(from\s+{module}\s+import|import\s+{module}\b)", test_text):
        test_text = f"from {module} import *  # added: the tests use the code's names\n{test_text}"
    return DebugInput(source, test_text, module, "\n\n".join(errors), description, code_name, test_name)


def _module_name(file_name: str) -> str:
    stem = file_name.rsplit("/", 1)[-1].removesuffix(".py")
    stem = re.sub(r"\W", "_", stem)
    if not stem.isidentifier() or stem.startswith(("snippet", "test")):
        return "solution"
    return stem


def _defs(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    return [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]


def function_source(source: str, name: str) -> str | None:
    """The text of top-level function or class ``name`` (with its decorators), or None."""
    lines = source.splitlines(keepends=True)
    for node in _defs(ast.parse(source)):
        if node.name == name:
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            return "".join(lines[start - 1 : node.end_lineno])
    return None


@dataclass(frozen=True, slots=True)
class Patched:
    """The file after a patch, or why the patch failed (``source`` is None then)."""

    source: str | None
    error: str | None = None
    replaced: tuple[str, ...] = ()


def apply_patch(original: str, patch: str | None) -> Patched:
    """``original`` with the patch's top-level functions/classes put in place of those with the same names (and
    the patch's new imports added). A patch that redefines every function and adds module-level code replaces
    the whole file."""
    if not patch or not patch.strip():
        return Patched(None, "no code in the reply")
    try:
        new_tree = ast.parse(patch)
    except NOT_PYTHON as exc:
        return Patched(None, f"the patch does not parse: {_why_not(exc)}")
    old_tree = ast.parse(original)
    old_defs = {n.name: n for n in _defs(old_tree)}
    new_defs = _defs(new_tree)
    hits = [n for n in new_defs if n.name in old_defs]
    if not hits:
        named = ", ".join(n.name for n in new_defs) or "nothing"
        return Patched(None, f"the patch defines {named}; none of the file's functions ({', '.join(old_defs)})")
    others = [n for n in new_tree.body if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    if set(old_defs) <= {n.name for n in new_defs} and any(
        not isinstance(n, ast.Import | ast.ImportFrom) for n in others
    ):
        text = patch if patch.endswith("\n") else patch + "\n"
        return Patched(text, None, tuple(old_defs))
    lines = original.splitlines(keepends=True)
    patch_lines = patch.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []
    for node in hits:
        old = old_defs[node.name]
        old_start = min([old.lineno, *(d.lineno for d in old.decorator_list)])
        new_start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        text = _keep_docstring(lines, old, patch_lines, node, new_start)
        edits.append((old_start - 1, old.end_lineno or old.lineno, text if text.endswith("\n") else text + "\n"))
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    extra = [n for n in new_defs if n.name not in old_defs]
    body = "".join(lines)
    if extra:
        body = (
            body.rstrip("\n")
            + "\n\n\n"
            + "\n\n".join("".join(patch_lines[n.lineno - 1 : n.end_lineno]) for n in extra)
            + "\n"
        )
    body = _add_imports(body, old_tree, [n for n in others if isinstance(n, ast.Import | ast.ImportFrom)], hits)
    try:
        ast.parse(body)
    except NOT_PYTHON as exc:  # e.g. a function body that only made sense at another indentation
        return Patched(None, f"the patched file does not parse: {_why_not(exc)}")
    return Patched(body, None, tuple(n.name for n in hits))


def _add_imports(
    body: str,
    old_tree: ast.Module,
    imports: list[ast.Import | ast.ImportFrom],
    used_by: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef],
) -> str:
    """``body`` with the patch's imports that the file lacks and the patched code uses (a small model adds
    ``from typing import *`` out of habit: star imports and unused ones are left out), placed after the
    module's docstring and existing imports."""
    old = {ast.unparse(n) for n in old_tree.body if isinstance(n, ast.Import | ast.ImportFrom)}
    names = {n.id for fn in used_by for n in ast.walk(fn) if isinstance(n, ast.Name)}
    names |= {
        n.value.id
        for fn in used_by
        for n in ast.walk(fn)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }
    wanted = []
    for node in imports:
        bound = {(a.asname or a.name).split(".")[0] for a in node.names}
        if "*" not in bound and bound & names and ast.unparse(node) not in old:
            wanted.append(ast.unparse(node))
    if not wanted:
        return body
    lines = body.splitlines(keepends=True)
    tree = ast.parse(body)
    after, gap = 0, ""
    for i, stmt in enumerate(tree.body):
        is_doc = i == 0 and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        if is_doc or isinstance(stmt, ast.Import | ast.ImportFrom):
            after, gap = stmt.end_lineno or after, "\n" if is_doc else ""
        else:
            break
    return "".join(lines[:after]) + gap + "\n".join(wanted) + "\n" + "".join(lines[after:])


def _docstring(node: ast.AST) -> ast.Expr | None:
    body = getattr(node, "body", None)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return body[0] if isinstance(body[0].value.value, str) else None
    return None


def _keep_docstring(
    old_lines: list[str],
    old: ast.AST,
    new_lines: list[str],
    new: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef,
    new_start: int,
) -> str:
    """The patch's text of ``new``, with the original's docstring put back when the patch dropped it (small
    models often do; the diff then shows only the fix)."""
    text = "".join(new_lines[new_start - 1 : new.end_lineno])
    doc = _docstring(old)
    if doc is None or _docstring(new) is not None or new.body[0].lineno == new.lineno:
        return text
    first = new.body[0].lineno
    indent = new_lines[first - 1][: len(new_lines[first - 1]) - len(new_lines[first - 1].lstrip())]
    old_indent = old_lines[doc.lineno - 1][: doc.col_offset]
    doc_lines = [
        indent + line[len(old_indent) :] if line.startswith(old_indent) else line
        for line in old_lines[doc.lineno - 1 : doc.end_lineno]
    ]
    return "".join(new_lines[new_start - 1 : first - 1] + doc_lines + new_lines[first - 1 : new.end_lineno])


def unified_diff(before: str, after: str, name: str = "solution.py") -> str:
    """A unified diff of the file before and after the patch (empty when nothing changed)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
    )
