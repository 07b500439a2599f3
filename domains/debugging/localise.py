"""Where a bug probably is, across a project's files, from the test output, the tracebacks and a traced run of the
tests (no model).

The evidence, the coverage spectrum weighing most when there is one:

- **stack frames** in the code under repair: pytest's short tracebacks (``pkg/mod.py:12: in f``) and Python's
  (``File "pkg/mod.py", line 12, in f``), from the failing tests or a traceback pasted into the request; the
  innermost frame in the project's code of each failure weighs most (that is where the exception was raised or
  the wrong value computed), the frames that called it less;
- **the functions the failing tests call**: the names used in each failing test's function (found by its pytest
  node id) that a code file defines at the top level;
- **names in the failure text**: a code file's function named in the messages;
- **what the suspects call**: a function that the suspects above call (a wrong value raises nothing, so the
  frames stop at the test), weighed less than its caller;
- **the coverage spectrum** when the tests were run traced (:func:`trace`: the whole suite, so that the passing
  tests of every file count, and the failures of the selected tests only): spectrum-based fault
  localisation with the Ochiai score, ``ef / sqrt(F * (ef + ep))`` for a line that ``ef`` of the ``F`` failing
  tests and ``ep`` passing tests ran; a function scores its best line. A line that only failing tests run is the
  most suspicious; one that every passing test runs too, the least. This is what finds a wrong value computed
  deep below the function a test calls, where no frame points. It weighs most (:data:`SPECTRUM`), and the
  evidence above breaks its ties (a function and the one it calls are often run by the same tests).

A frame's or a line's number is mapped to the top-level function or class of the file that holds it (what a
patch replaces).
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from longthink.domains.debugging.source import NOT_PYTHON, DebugInput
from longthink.tools.sandbox import Sandbox, Spectrum, TestReport, run_project

Suspicion = Mapping[tuple[str, str], float]
"""(code file, top-level function or class) -> its spectrum score in [0, 1] (:func:`suspicion`)."""

_PY_FRAME = re.compile(r'File "([^"\n]+)", line (\d+), in ([\w<>.]+)')
_PYTEST_FRAME = re.compile(r"(?m)^\s*([^\s:][^:\n]*\.py):(\d+):(?: in ([\w<>.]+))?")
_FAILED = re.compile(r"(?m)^(?:FAILED|ERROR(?: collecting)?) ([^\s:]+\.py(?:::[^\s:]+)*)")


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame: the file (as the traceback names it), the line and the function."""

    path: str
    line: int
    function: str


def frames(text: str) -> list[Frame]:
    """Every stack frame in ``text`` (Python and pytest tracebacks), in order of appearance."""
    found: list[tuple[int, Frame]] = []
    for m in _PY_FRAME.finditer(text):
        found.append((m.start(), Frame(m.group(1), int(m.group(2)), m.group(3))))
    for m in _PYTEST_FRAME.finditer(text):
        found.append((m.start(), Frame(m.group(1).strip(), int(m.group(2)), m.group(3) or "")))
    return [f for _, f in sorted(found, key=lambda pair: pair[0])]


def project_path(inp: DebugInput, path: str) -> str | None:
    """The project file a traceback's ``path`` names (absolute in the sandbox, relative, or with a host prefix):
    the file whose path is the longest suffix of it; None for a file outside the project."""
    path = path.replace("\\", "/")
    best = None
    for name in inp.files:
        if (path == name or path.endswith("/" + name)) and (best is None or len(name) > len(best)):
            best = name
    return best


def spans(source: str) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of each top-level function and class of ``source`` (decorators included);
    empty when it does not parse."""
    try:
        tree = ast.parse(source)
    except NOT_PYTHON:
        return []
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    return [(n.name, min([n.lineno, *(d.lineno for d in n.decorator_list)]), n.end_lineno or n.lineno) for n in defs]


def enclosing(source: str, line: int) -> str | None:
    """The top-level function or class of ``source`` that holds ``line`` (1-based), or None."""
    return _owner(spans(source), line)


def _owner(found: Sequence[tuple[str, int, int]], line: int) -> str | None:
    return next((name for name, start, end in found if start <= line <= end), None)


def suspicion(inp: DebugInput, spectrum: Spectrum) -> dict[tuple[str, str], float]:
    """The Ochiai score of each top-level function or class of the code files that a failing test ran (its best
    line's; see the module docstring); empty when no test failed."""
    out: dict[tuple[str, str], float] = {}
    if spectrum.failed <= 0:
        return out
    code = set(inp.code_files)
    for path, lines in spectrum.lines.items():
        if path not in code:
            continue
        found = spans(inp.files[path])
        for line, (ef, ep) in lines.items():
            name = _owner(found, line) if ef > 0 else None
            if name is not None:
                score = ef / math.sqrt(spectrum.failed * (ef + ep))
                out[(path, name)] = max(out.get((path, name), 0.0), min(score, 1.0))
    return out


async def trace(sandbox: Sandbox, inp: DebugInput, *, per_test_s: float = 10.0, whole: bool = True) -> TestReport:
    """Run the tests again with the code files' lines traced (:func:`suspicion` reads the report's spectrum; None
    when the run did not finish). Kept apart from the run that judges the code: tracing slows the tests down, so
    each gets more time here.

    With ``whole`` (the default) and a selection, the project's whole suite runs, and only the selected tests'
    failures count: the other tests' passes are what tells a function every test runs from one only the failing
    tests run (traced with its selected file alone, a mutant of cachetools' ``func._cache`` tied with five other
    functions, and the mutated one was not among those shown; with the whole suite it ranks first). When that run
    gives no spectrum or no failing test (the suite timed out, a test file broke the run), the selected tests run
    traced alone."""
    cover = inp.code_files
    if whole and inp.select:
        report = await run_project(sandbox, inp.files, per_test_s=per_test_s, cover=cover, focus=inp.select)
        if report.spectrum is not None and report.spectrum.failed > 0:
            return report
    return await run_project(sandbox, inp.files, select=inp.select, per_test_s=per_test_s, cover=cover)


def _blocks(failure: str) -> list[str]:
    """``failure`` cut into one piece per failing test (the ``FAILED``/``ERROR`` headers of a report's summary);
    the whole text when it has no such header (a pasted traceback)."""
    starts = [m.start() for m in _FAILED.finditer(failure)]
    if not starts:
        return [failure]
    head = [failure[: starts[0]]] if starts[0] > 0 else []
    return head + [failure[a:b] for a, b in zip(starts, [*starts[1:], len(failure)], strict=True)]


def test_names(inp: DebugInput, node_id: str) -> set[str]:
    """The names used by the test function that pytest node id ``node_id`` names (its calls, attributes and
    variables), or an empty set when the test is not found. A test its file imports from another test module
    (``from .helpers import *``) is looked up there."""
    parts = node_id.split("::")
    path, func = parts[0], re.sub(r"\[.*$", "", parts[-1]) if len(parts) > 1 else ""
    if path not in inp.files or not func:
        return set()
    helpers = (t for t in inp.files if t.endswith(".py") and t != path and t not in inp.code_files)
    for where in (path, *helpers):
        names = _names_in(inp.files.get(where, ""), func)
        if names is not None:
            return names
    return set()


def _names_in(text: str, func: str) -> set[str] | None:
    """The names function ``func`` of ``text`` uses; None when ``text`` defines no such function."""
    try:
        tree = ast.parse(text)
    except NOT_PYTHON:
        return None
    found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == func]
    if not found:
        return None
    names: set[str] = set()
    for node in found:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                names.add(sub.id)
            elif isinstance(sub, ast.Attribute):
                names.add(sub.attr)
    return names


def suspects(
    inp: DebugInput, failure: str, failing: Sequence[str] = (), scores: Suspicion | None = None
) -> list[tuple[str, str]]:
    """(code file, top-level function or class) pairs ranked by the evidence of the module docstring, best
    first. ``failing`` adds the node ids of failing tests that ``failure`` may not name; ``scores`` are the
    spectrum's (:func:`suspicion`)."""
    return [key for key, _ in ranked(inp, failure, failing, scores)]


INNERMOST = 4.0
"""The weight of a failure's innermost frame in the project's code (where an exception was raised)."""


def strong(ranking: Sequence[tuple[tuple[str, str], float]], share: float | None = None) -> list[tuple[str, str]]:
    """The suspects worth showing the model: those whose weight is at least ``share`` of the best one's. By default
    half when the best one's weight is at least :data:`INNERMOST` (it raised an exception, or the spectrum scores
    it 0.5 or more: the evidence is sharp), a quarter otherwise (a wrong value: the bug may be in the function the
    test calls or in what that calls)."""
    if not ranking:
        return []
    top = ranking[0][1]
    cut = share if share is not None else (0.5 if top >= INNERMOST else 0.25)
    return [key for key, w in ranking if w >= cut * top]


SPECTRUM = 8.0
"""The weight of a spectrum score of 1 (the other evidence breaks ties between equal scores)."""


def ranked(
    inp: DebugInput, failure: str, failing: Sequence[str] = (), scores: Suspicion | None = None
) -> list[tuple[tuple[str, str], float]]:
    """:func:`suspects` with each one's weight; ``scores`` adds the spectrum's (:func:`suspicion`)."""
    weight: dict[tuple[str, str], float] = {}
    order: list[tuple[str, str]] = []
    code = set(inp.code_files)

    def add(key: tuple[str, str], w: float) -> None:
        if key not in weight:
            order.append(key)
        weight[key] = weight.get(key, 0.0) + w

    for block in _blocks(failure):
        in_code = []
        for f in frames(block):
            path = project_path(inp, f.path)
            if path in code and path is not None:
                name = enclosing(inp.files[path], f.line)
                if name is not None:
                    in_code.append((path, name))
        for i, key in enumerate(in_code):
            add(key, INNERMOST if i == len(in_code) - 1 else 1.5)
    nodes = list(dict.fromkeys([*failing, *(m.group(1) for m in _FAILED.finditer(failure))]))
    defined = inp.definitions()
    for node in nodes:
        used = test_names(inp, node)
        for key in defined:
            if key[1] in used:
                add(key, 1.0)
    for key in defined:
        if re.search(rf"\b{re.escape(key[1])}\b", failure):
            add(key, 0.5)
    owners = {name: path for path, name in reversed(defined)}
    for key in list(order):  # what the suspects call may hold the bug (a wrong value, no exception)
        for name in sorted(_called(inp.files[key[0]], key[1])):  # sorted: ties keep one order on every run
            if name in owners and name != key[1]:
                add((owners[name], name), 0.4 * weight[key])
    spectrum = {k: v for k, v in (scores or {}).items() if k[0] in code and v > 0}
    if spectrum:  # the evidence above, scaled to at most 1, breaks the spectrum's ties
        top = max(weight.values(), default=0.0) or 1.0
        for key in order:
            weight[key] /= top
        for key, score in sorted(spectrum.items(), key=lambda kv: (-kv[1], kv[0])):  # ties: one order on every run
            add(key, SPECTRUM * score)
    return [(k, weight[k]) for k in sorted(order, key=lambda k: (-weight[k], order.index(k)))]


def _called(source: str, name: str) -> set[str]:
    """The names that top-level function or class ``name`` of ``source`` calls."""
    try:
        tree = ast.parse(source)
    except NOT_PYTHON:
        return set()
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Call):
                    if isinstance(sub.func, ast.Name):
                        out.add(sub.func.id)
                    elif isinstance(sub.func, ast.Attribute):
                        out.add(sub.func.attr)
    return out
