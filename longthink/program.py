"""Program-aided answers (program of thought): the model writes a short Python program, the sandbox runs it,
and what the program prints is the candidate's answer.

Execution is a verifier of its own: a program that crashes, runs too long or prints nothing is a failed
candidate with the reason recorded (``Candidate.parse_error``), and the executed values of sibling programs
vote far more reliably than numbers read out of free text. Every program runs in :mod:`longthink.tools.sandbox`
(bubblewrap where it works: no network, a throw-away file system, CPU, memory, output and process limits);
programs of one batch run concurrently.

The *what* (the problem's question), the *how* (``PROGRAM_INSTRUCTION`` and :func:`parse_run`) and the *who*
(the backend that writes the programs) stay apart: :class:`~longthink.search.types.Problem` carries
``mode="program"`` and :class:`~longthink.search.context.SearchContext` executes what it samples.
"""

from __future__ import annotations

import ast
import asyncio
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from longthink.answers import AnswerKind, Parsed, extract_answer, extract_code

AnswerMode = Literal["text", "program"]
ANSWER_MODES: tuple[AnswerMode, ...] = ("text", "program")

PROGRAM_INSTRUCTION = (
    "Write a short Python program that computes the answer and prints it with print(). "
    "Print only the final answer, as a number, and nothing else. "
    "Reply with the program in one ```python code block."
)
"""Appended to a question in program mode (see :func:`program_question`)."""

_AS = {"number": "as a number", "expression": "as an arithmetic expression", "choice": "as the letter of the choice"}

ENTRY_POINTS = ("solution", "solve", "main", "compute", "answer")
"""Functions that are called (and their result printed) when a program defines one but prints nothing."""


def program_instruction(kind: str = "number") -> str:
    """The program-mode instruction for answers of ``kind`` (the number form is :data:`PROGRAM_INSTRUCTION`)."""
    form = _AS.get(kind)
    return PROGRAM_INSTRUCTION.replace(", as a number,", f", {form}," if form else "")


def program_question(question: str, kind: str = "number") -> str:
    """``question`` with the program-mode instruction appended."""
    return f"{question.rstrip()}\n\n{program_instruction(kind)}"


def computes(code: str) -> bool:
    """Whether a program works its answer out — an arithmetic operation, or a call other than ``print`` — rather
    than printing a number it was written with (``hours = 60; print(hours)``): only the first is evidence when
    programs agree."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp | ast.AugAssign):
            return True
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id == "print"):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Execution:
    """What running one candidate's program did. ``error`` says why it has no answer (None when it printed one);
    ``output`` is the tail of what it printed."""

    ok: bool
    output: str
    error: str | None
    duration_s: float
    sandboxed_by: str


class ProgramRunner(Protocol):
    """Runs programs (untrusted model output) and reports each; never raises for a bad program."""

    async def run_many(self, programs: Sequence[str]) -> list[Execution]: ...


_PRINT = re.compile(r"\bprint\s*\(")
_DEF = re.compile(r"(?m)^def\s+(\w+)\s*\(\s*\)\s*(?:->[^:]+)?:")


def runnable(code: str) -> str:
    """The program as it will run. One that prints nothing gets, as program-aided prompting does, a line that
    prints its result: the call of a ``solution()`` (or ``solve``/``main``...) it defines without arguments, else
    the value of its last top-level expression or of the variable its last statement assigns."""
    if _PRINT.search(code):
        return code
    defined = set(_DEF.findall(code))
    for name in ENTRY_POINTS:
        if name in defined:
            return f"{code.rstrip()}\n\nprint({name}())\n"
    try:
        body = ast.parse(code).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # the last two: nested too deeply to parse
        return code  # it fails in the sandbox with its own error
    last = body[-1] if body else None
    if isinstance(last, ast.Expr) and not isinstance(last.value, ast.Constant):
        lines = code.rstrip().splitlines()
        head, tail = "\n".join(lines[: last.lineno - 1]), "\n".join(lines[last.lineno - 1 :])
        return f"{head}\nprint({tail.strip()})\n" if last.lineno == last.end_lineno else code
    if isinstance(last, ast.Assign | ast.AugAssign | ast.AnnAssign):
        target = last.targets[-1] if isinstance(last, ast.Assign) else last.target
        if isinstance(target, ast.Name):
            return f"{code.rstrip()}\nprint({target.id})\n"
    return code


def program_of(text: str, *, truncated: bool = False) -> Parsed:
    """The program in a model's reply (the last fenced Python block, or the whole text if it is code)."""
    return extract_code(text, truncated=truncated)


def parse_run(output: str, kind: AnswerKind | str) -> Parsed:
    """The answer a program printed: the last non-empty line of its output, read as ``kind``."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return Parsed(None, "program printed nothing")
    parsed = extract_answer(lines[-1], kind)
    if parsed.ok:
        return parsed
    return Parsed(None, f"program printed no {kind}: {lines[-1][:80]!r}")


class SandboxRunner:
    """Runs each program in the sandbox (``python -I``, no network where bubblewrap works), ``concurrency`` at a
    time, with tight limits: a program-aided answer needs milliseconds, so a loop is cut after ``wall_s``.

    One runner serves any number of event loops (the sandbox's concurrency limit is an asyncio primitive, so each
    loop gets its own)."""

    def __init__(self, *, wall_s: float = 5.0, cpu_s: int = 3, memory_mb: int = 256, concurrency: int = 4) -> None:
        from longthink.tools.sandbox import Sandbox, SandboxLimits

        self.limits = SandboxLimits(wall_s=wall_s, cpu_s=cpu_s, memory_mb=memory_mb, file_mb=1, output_chars=4000)
        self.concurrency = concurrency
        self.sandbox = Sandbox(self.limits, concurrency=concurrency)  # probes bubblewrap once, here
        self._boxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    def _box(self) -> Any:
        from longthink.tools.sandbox import Sandbox

        loop = asyncio.get_running_loop()
        box = self._boxes.get(loop)
        if box is None:
            box = Sandbox(self.limits, concurrency=self.concurrency, use_bwrap=self.sandbox.kind == "bwrap")
            self._boxes[loop] = box
        return box

    async def run_many(self, programs: Sequence[str]) -> list[Execution]:
        box = self._box()
        return list(await asyncio.gather(*(self._one(box, p) for p in programs)))

    async def _one(self, box: Any, program: str) -> Execution:
        try:
            res = await box.run({"main.py": program}, "main.py")
        except (OSError, ValueError) as exc:  # the sandbox itself could not start: recorded, not raised
            return Execution(False, "", f"sandbox failed: {exc}", 0.0, "none")
        tail = res.stdout[-2000:]
        if res.killed_by is not None:
            why = {"timeout": "timed out", "cpu": "CPU limit", "memory": "out of memory"}.get(res.killed_by)
            return Execution(False, tail, f"program killed ({why or res.killed_by})", res.duration_s, res.sandboxed_by)
        if res.exit_code != 0:
            lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
            last = lines[-1].strip() if lines else f"exit code {res.exit_code}"
            return Execution(False, tail, f"program failed: {last[:160]}", res.duration_s, res.sandboxed_by)
        return Execution(True, tail, None, res.duration_s, res.sandboxed_by)


_default: SandboxRunner | None = None


def default_runner() -> SandboxRunner:
    """One sandbox runner per process (the bubblewrap probe is done once)."""
    global _default
    if _default is None:
        _default = SandboxRunner()
    return _default


__all__ = [
    "ANSWER_MODES",
    "PROGRAM_INSTRUCTION",
    "AnswerMode",
    "Execution",
    "ProgramRunner",
    "SandboxRunner",
    "default_runner",
    "parse_run",
    "program_instruction",
    "program_of",
    "program_question",
    "runnable",
]
