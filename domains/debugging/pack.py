"""The ``debugging`` domain pack: detector, planner hints, the ``run_tests`` tool, and the pipeline.

Importing this module registers the pack in the default domain registry (which imports it on its first
lookup)."""

from __future__ import annotations

import re

from longthink.domains.debugging.pipeline import DebuggingPipeline
from longthink.domains.registry import DomainPack, register
from longthink.tools.sandbox import RunTestsTool

_DECISIVE = re.compile(r"traceback \(most recent call last\)|\bfailing tests?\b|\btests? (are |is )?fail(s|ing)?\b")
_STRONG = re.compile(
    r"\b(bugs?|buggy|debug(ging)?|fix(es|ed)?|patch|traceback|exception|stack ?trace|assertionerror|"
    r"\w+error|crash(es|ed)?|broken|pytest|unittest)\b"
)
_WEAK = re.compile(r"\b(code|function|tests?|python|def|returns?|wrong|error|script|module|\.py)\b|```")


def detect_debugging(request: str) -> float:
    """Confidence in [0, 1] that ``request`` asks to fix code: 1 for a Python traceback or failing tests; else
    0.35 per distinct bug term ("bug", "fix", "ValueError", ...) and 0.15 per distinct code term ("function",
    "test", a fenced block, ...), so "fix this function" with code reaches the threshold and a business plan's
    "fix our costs" does not."""
    text = request.lower()
    if _DECISIVE.search(text):
        return 1.0
    strong = {m.group(0) for m in _STRONG.finditer(text)}
    weak = {m.group(0) for m in _WEAK.finditer(text)}
    if not weak:
        return min(0.45, 0.35 * len(strong))
    return min(1.0, 0.35 * len(strong) + 0.15 * len(weak))


PLANNER_HINTS = """\
Code debugging. Steps: (1) reproduce: run the failing tests on the code with the run_tests tool and record
the failures; (2) localise the function that holds the bug from the tracebacks; (3) patch: write the
corrected function in full in one ```python block, sample several fixes and keep the one that passes the most
tests (revise a failing fix with its test output); (4) validate: run every test again on the patched code;
(5) explain the bug and the fix briefly, with the unified diff."""

DEBUGGING = register(
    DomainPack(
        name="debugging",
        description="code debugging: Python code with a failing test or a traceback; patches are searched and "
        "rewarded by running the tests in a sandbox",
        detect=detect_debugging,
        planner_hints=PLANNER_HINTS,
        tools=(RunTestsTool(),),
        answer_kind="text",
        pipeline=DebuggingPipeline(),
    )
)
