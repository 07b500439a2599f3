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
from collections.abc import Mapping
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


CONFIG_FILES = ("conftest.py", "pytest.ini", "pyproject.toml", "setup.cfg", "tox.ini")
"""Files that configure the tests: copied into the sandbox, never patched or run as tests."""
_NODE_ID = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.py(?:::[\w\[\]().,=+*/ -]*?[\w\]])*)(?=$|[\s,;:'\"`)])")


@dataclass(frozen=True, slots=True)
class DebugInput:
    """A debugging request, read: the project's ``files`` (path -> text, as they are copied into the sandbox: the
    code, its tests, ``conftest.py`` and pytest's configuration), which of them are the code under repair
    (``code_files``, the first is the main one) and which hold tests (``test_files``), the reported error (may be
    empty), the user's words, and the tests to run (``select``: pytest node ids named in the request; empty: all).
    A request with one file of code is a project of that file (named ``module.py``) and its tests."""

    files: Mapping[str, str]
    code_files: tuple[str, ...]
    test_files: tuple[str, ...] = ()
    error: str = ""
    description: str = ""
    select: tuple[str, ...] = ()

    @classmethod
    def single(
        cls, source: str, tests: str, module: str = "solution", *, error: str = "", description: str = "",
        tests_name: str = "",
    ) -> DebugInput:  # fmt: skip
        """One module's ``source`` (saved as ``module.py``) and one test file (saved as ``tests_name``, by default
        ``test_<module>.py``; none when ``tests`` is empty)."""
        code = f"{module}.py"
        files = {code: source}
        if tests:
            files[tests_name or f"test_{module}.py"] = tests
        return cls(files, (code,), tuple(n for n in files if n != code), error, description)

    @property
    def source(self) -> str:
        """The main code file's text."""
        return self.files[self.code_files[0]]

    @property
    def module(self) -> str:
        """The main code file's import name (dotted for a file in a package folder)."""
        return self.code_files[0].removesuffix(".py").removesuffix("/__init__").replace("/", ".")

    @property
    def tests(self) -> str:
        """Every test file's text (empty without tests)."""
        return "\n".join(self.files[n] for n in self.test_files)

    @property
    def is_project(self) -> bool:
        """More than one file of code, or files in folders (paths and diffs then keep the project's layout)."""
        return len(self.code_files) > 1 or any("/" in n for n in self.files)

    def functions(self, path: str | None = None) -> list[str]:
        """Names of the top-level functions and classes of code file ``path`` (the main one by default)."""
        return [n.name for n in _defs(ast.parse(self.files[path or self.code_files[0]]))]

    def definitions(self) -> list[tuple[str, str]]:
        """(file, name) of every top-level function and class of every code file, in order."""
        return [(path, name) for path in self.code_files for name in self.functions(path)]


def looks_like_tests(name: str, text: str) -> bool:
    base = name.rsplit("/", 1)[-1].lower()
    if base.startswith("test_") or base.endswith("_test.py") or base.startswith("tests"):
        return True
    if "/" in name:  # a project's file: its name says it all
        return False
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


def _in_test_folder(name: str) -> bool:
    return any(part in ("tests", "test", "testing") for part in name.split("/")[:-1])


def parse_request(request: str) -> DebugInput:
    """The project, tests and error of ``request`` (see :class:`DebugInput`); :class:`BadInput` without code."""
    attached = attached_files(request)
    pieces: list[tuple[str, str, bool]] = [(n, t, True) for n, t in attached.items()]
    prose = request_text(request)
    for i, m in enumerate(_FENCE.finditer(prose)):
        lang = m.group(2).lower()
        pieces.append((f"snippet{i}.{'py' if lang in ('', 'python', 'py', 'python3') else 'txt'}", m.group(3), False))
    description = _FENCE.sub("", prose).strip()
    code: list[tuple[str, str]] = []
    tests: list[tuple[str, str]] = []
    support: dict[str, str] = {}
    errors: list[str] = []
    for name, text, is_file in pieces:
        base = name.rsplit("/", 1)[-1]
        in_project = is_file and "/" in name
        data_file = in_project and not name.endswith(".py") and not looks_like_error(name, text)
        if is_file and (base in CONFIG_FILES or data_file):
            support[name] = text
        elif not in_project and looks_like_error(name, text):
            errors.append(text.strip())
        elif looks_like_tests(name, text) and name.endswith(".py"):
            tests.append((name, text))
        elif in_project and _in_test_folder(name):
            support[name] = text  # a helper module of the tests
        elif name.endswith(".py") or _is_python(text):
            code.append((name, text))
        elif is_file and not looks_like_error(name, text):
            support[name] = text
        else:
            errors.append(text.strip())
    if (tb := _TRACEBACK.search(description)) is not None:
        errors.append(tb.group(0).strip())
    if not code:
        if len(tests) > 1:  # two test-looking files: the one without test functions is the code
            code.append(tests.pop(next((i for i, (_, t) in enumerate(tests) if "def test_" not in t), 0)))
        else:
            raise BadInput("no code found: attach the file (--file) or paste it in a ```python block")
    for name, text in code:
        if not _is_python(text):
            raise BadInput(f"the code in {name!r} does not parse as Python")
    error = "\n\n".join(errors)
    if len(code) == 1 and "/" not in code[0][0] and not any("/" in n for n, _ in tests):
        return _single(code[0], tests, support, error, description)
    files = {**support, **{n: _ends(t) for n, t in code}, **{n: _ends(t) for n, t in tests}}
    test_names = tuple(n for n, _ in tests)
    return DebugInput(files, tuple(n for n, _ in code), test_names, error, description,
                      _selected(description, test_names))  # fmt: skip


def _ends(text: str) -> str:
    return text.rstrip("\n") + "\n"  # a file ends with a newline (attached files lose it)


def _single(
    code: tuple[str, str], tests: list[tuple[str, str]], support: dict[str, str], error: str, description: str
) -> DebugInput:
    """One file of code, saved as ``module.py``; tests that do not import it get ``from module import *``; a test
    file whose name pytest would not collect gets one it does."""
    module = _module_name(code[0])
    files = {**support, f"{module}.py": _ends(code[1])}
    names = []
    for i, (name, text) in enumerate(tests):
        text = _ends(text)
        if not re.search(rf"(?m)^\s*(from\s+{module}\s+import|import\s+{module}\b)", text):
            text = f"from {module} import *  # added: the tests use the code's names\n{text}"
        base = name.rsplit("/", 1)[-1]
        if not re.fullmatch(r"test_\w+\.py|\w+_test\.py", base) or base == f"{module}.py":
            base = f"test_{module}{'' if i == 0 else i}.py"
        files[base] = text
        names.append(base)
    return DebugInput(files, (f"{module}.py",), tuple(names), error, description, _selected(description, tuple(names)))


def _selected(description: str, test_files: tuple[str, ...]) -> tuple[str, ...]:
    """The pytest node ids (``tests/test_x.py::test_y``) or test files the user names, that name a test file."""
    out = []
    for m in _NODE_ID.finditer(description):
        node = m.group(1)
        if node.split("::", 1)[0] in test_files and node not in out:
            out.append(node)
    return tuple(out)


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
    try:
        ast.parse(body)  # e.g. a function body that only made sense at another indentation does not
        body = _add_imports(body, old_tree, [n for n in others if isinstance(n, ast.Import | ast.ImportFrom)], hits)
        ast.parse(body)
    except NOT_PYTHON as exc:
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


def project_diff(before: Mapping[str, str], changed: Mapping[str, str]) -> str:
    """A multi-file unified diff (``a/PATH`` and ``b/PATH`` headers, files in path order) of the ``changed`` files
    against ``before``: what ``git apply`` takes in the project's root. Files whose text did not change are left
    out."""
    paths = [p for p in sorted(changed) if changed[p] != before.get(p)]
    return "".join(unified_diff(before.get(p, ""), changed[p], p) for p in paths)
