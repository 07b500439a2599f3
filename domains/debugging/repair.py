"""Patch search rewarded by executed tests: best-of-N sampled fixes, then iterative repair.

Each reply is read once into a :class:`Patch` (:class:`PatchReader`, the patch problem's parser): in a project each
function of the reply goes to the file that defines it (:func:`patch_files`). The reward (:class:`TestScorer`) runs
the tests with pytest in the sandbox on the project with the patched files: its value is the share of tests that
pass; a reply without code, a patch that does not parse or that breaks the file scores 0 with the reason (a
failed candidate, recorded in the trace like every other).

The search is the :class:`~longthink.search.feedback.RefineWithFeedback` strategy (:meth:`RepairSettings.strategy`,
:func:`search_patch`): ``n`` fixes in one batched call; while none passes every test, repair rounds: the best
``parents`` drafts are each shown their own test output, and ``children`` revisions of each are sampled, all in
one batched call (a tree: every child records its parent). The best-scored candidate over all rounds wins.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pydantic import BaseModel, ConfigDict

from longthink.answers import Parsed, extract_code
from longthink.domains.debugging.source import NOT_PYTHON, DebugInput, apply_patch, function_source
from longthink.llm.types import Message
from longthink.search.base import best_scored
from longthink.search.context import SearchContext
from longthink.search.feedback import RefineWithFeedback
from longthink.search.types import Candidate, Problem, Reading, Score, StepResult
from longthink.tools.sandbox import Sandbox, TestReport, run_project

SYSTEM = "You are an expert Python programmer. You fix bugs with small, correct changes."
MAX_FILE_LINES = 80
"""Files up to this size are shown whole in the patch prompt; longer ones show the suspect functions only."""
MAX_SHOWN = 3
"""A project's patch prompt shows at most this many suspect functions."""
MAX_DOC_CHARS = 600
"""A shown function's docstring goes into a project's patch prompt as text, cut to this length."""


def split_suspect(suspect: str) -> tuple[str | None, str]:
    """``"path::name"`` (a project's suspect) or ``"name"`` as (path or None, name)."""
    path, sep, name = suspect.rpartition("::")
    return (path, name) if sep else (None, suspect)


def patch_prompt(inp: DebugInput, suspects: Sequence[str], failure: str, spec: str = "") -> tuple[Message, ...]:
    """The prompt for a fix: the code (a short single file whole; in a project, the suspect functions with their
    files), ``spec`` (what the code should do, when known apart from the code), what fails, and the format of the
    reply (the fixed function(s), whole, in one fenced block). ``suspects`` are names, or ``path::name`` in a
    project (see :func:`split_suspect`)."""
    if inp.is_project:
        return _project_prompt(inp, suspects, failure, spec)
    names = [n for s in suspects if function_source(inp.source, n := split_suspect(s)[1]) is not None]
    names = names or inp.functions()[:1]
    if len(inp.source.splitlines()) <= MAX_FILE_LINES:
        shown = inp.source
    else:
        shown = "\n\n".join(function_source(inp.source, n) or "" for n in names)
    target = ", ".join(f"`{n}`" for n in names)
    parts = [f"This Python code has a bug.\n\n```python\n{shown.rstrip()}\n```"]
    return _finish(parts, inp, target, failure, spec)


def prompt_suspects(inp: DebugInput, suspects: Sequence[str]) -> list[tuple[str, str]]:
    """The suspects a project's patch prompt shows, as (file, name): those found in the code, at most
    :data:`MAX_SHOWN`; the first function of the project when none is."""
    pairs = []
    for s in suspects:
        path, name = split_suspect(s)
        for p in [path] if path else inp.code_files:
            if p in inp.files and function_source(inp.files[p], name) is not None:
                pairs.append((p, name))
                break
    return (pairs or inp.definitions()[:1])[:MAX_SHOWN]


def _project_prompt(inp: DebugInput, suspects: Sequence[str], failure: str, spec: str) -> tuple[Message, ...]:
    pairs = prompt_suspects(inp, suspects)
    shown, docs = [], []
    for path, name in pairs:
        code, doc = split_docstring(function_source(inp.files[path], name) or "")
        shown.append(f"From `{path}`:\n```python\n{code.rstrip()}\n```")
        if doc:
            docs.append(f"What `{name}` should do: {doc[:MAX_DOC_CHARS]}")
    target = ", ".join(f"`{n}` (in `{p}`)" for p, n in pairs)
    parts = ["This Python project has a bug. The failing tests point to this code.\n\n" + "\n\n".join(shown)]
    spec = "\n\n".join([*docs, spec] if spec else docs)
    return _finish(parts, inp, target, failure, spec)


def split_docstring(code: str) -> tuple[str, str]:
    """A function's (or class's) text without its docstring, and the docstring: a small model copies a docstring
    shown in the code into every fix (the tokens go to the copy), so the prompt gives it as text beside the code;
    :func:`~longthink.domains.debugging.source.apply_patch` puts the original back into a fix that leaves it out."""
    try:
        tree = ast.parse(code)
    except NOT_PYTHON:
        return code, ""
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) or len(node.body) < 2:
        return code, ""
    doc = ast.get_docstring(node, clean=False)
    if doc is None:
        return code, ""
    first = node.body[0]
    lines = code.splitlines(keepends=True)
    if lines[first.lineno - 1][: first.col_offset].strip() or (first.end_lineno or 0) >= len(lines):
        return code, ""  # the docstring shares its line with other code: leave it
    rest = "".join(lines[: first.lineno - 1] + lines[first.end_lineno or first.lineno :])
    return rest, " ".join(doc.split())


def _finish(parts: list[str], inp: DebugInput, target: str, failure: str, spec: str) -> tuple[Message, ...]:
    if inp.description:
        parts.append(f"The user says: {inp.description}")
    if spec:
        parts.append(spec)
    if failure.strip():
        parts.append(f"Running the tests gives:\n```\n{failure.strip()}\n```")
    parts.append(
        f"The bug is probably in {target}. Write the corrected code of that function in full (you may leave out "
        "the docstring) in one ```python code block. Keep the same name and signature. Do not write tests, "
        "examples or explanations."
        if "," not in target
        else f"The bug is probably in one of {target}. Write the corrected function(s) in full (you may leave out "
        "the docstring) in one ```python code block. Keep the same names and signatures. Do not write tests, "
        "examples or explanations."
    )
    return (Message.system(SYSTEM), Message.user("\n\n".join(parts)))


def revision_prompt(base: Problem, parent: Candidate, feedback: str) -> Problem:
    """A child of ``parent``: the same request, the parent's reply, and the parent's own test output."""
    ask = Message.user(
        f"That fix is not right yet. The tests now give:\n```\n{feedback.strip()}\n```\n"
        "Write the corrected code again, in full, in one ```python code block."
    )
    text = parent.text if parent.text.count("```") % 2 == 0 else parent.text.rstrip() + "\n```"
    return replace(base, prompt=(*base.prompt, Message.assistant(text), ask))


def reply_code(text: str, truncated: bool = False) -> Parsed:
    """The code of a reply that began inside a ```python block (the prefix); a model that opened a second block
    right away is forgiven."""
    text = re.sub(r"^```python\n\s*```[\w]*\n", "```python\n", text)
    return extract_code(text, truncated=truncated)


class Patch(BaseModel):
    """A reply read as a patch: the ``code`` it gives and the ``files`` it changes (path -> the patched text)."""

    model_config = ConfigDict(frozen=True)

    code: str
    files: dict[str, str]

    @property
    def source(self) -> str:
        """The first changed file's patched text (a single file's whole patch)."""
        return next(iter(self.files.values()))


@dataclass(frozen=True, slots=True)
class PatchReader:
    """Reads a reply into a :class:`Patch` of ``original`` (a file's text or a project), the patch problem's
    parser: the answer is the code; a reply without code, or with a patch that does not parse or fit the code, is
    a failed reading. In a project each function of the patch goes to the code file that defines it, the files
    in ``prefer`` (the suspects') first; with ``shown`` (the names of the functions the prompt showed), only
    those of the project's functions are replaced (see :func:`patch_files`)."""

    original: str | DebugInput
    prefer: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()

    def __call__(self, text: str, truncated: bool) -> Reading:
        code = reply_code(text, truncated)
        if code.value is None:
            return Reading(None, code.error or "no code")
        inp = self.original if isinstance(self.original, DebugInput) else DebugInput.single(self.original, "")
        files, error = patch_files(inp, code.value, self.prefer, self.shown)
        if files is None:
            return Reading(None, error)
        return Reading(code.value, None, Patch(code=code.value, files=files))


def patch_files(
    inp: DebugInput, patch: str, prefer: Sequence[str] = (), shown: Sequence[str] = ()
) -> tuple[dict[str, str] | None, str | None]:
    """The code files ``patch`` changes (path -> patched text), or (None, why not). One file of code takes the
    patch as it is (:func:`apply_patch`); in a project the patch's imports and each function or class go to the
    file that defines that name (``prefer``'s files first), functions it adds to the first file it changes.
    ``shown`` names the project's functions the model was shown: any other of the project's functions in the
    patch is left as it is (the model never saw its code, so its version is a guess that would replace working
    code), and a patch of nothing else is refused."""
    if len(inp.code_files) == 1:
        done = apply_patch(inp.source, patch)
        return ({inp.code_files[0]: done.source}, None) if done.source is not None else (None, done.error)
    try:
        tree = ast.parse(patch)
    except NOT_PYTHON as exc:
        return None, f"the patch does not parse: {exc}"
    order = [p for p in dict.fromkeys([*prefer, *inp.code_files]) if p in inp.code_files]
    owner: dict[str, str] = {}
    for path in reversed(order):
        for name in inp.functions(path):
            owner[name] = path
    lines = patch.splitlines(keepends=True)
    imports = [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    chunks: dict[str, list[str]] = {}
    extra: list[str] = []
    unseen: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        text = "".join(lines[start - 1 : node.end_lineno])
        if shown and node.name in owner and node.name not in shown:
            unseen.append(node.name)
        elif node.name in owner:
            chunks.setdefault(owner[node.name], []).append(text)
        else:
            extra.append(text)
    if not chunks and unseen:
        return None, f"the patch rewrites only functions it was not shown ({', '.join(unseen)}), not {', '.join(shown)}"
    if not chunks:
        named = ", ".join(n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)) or "nothing"
        return None, f"the patch defines {named}; none of the project's functions"
    first = next(iter(chunks))
    chunks[first].extend(extra)
    out: dict[str, str] = {}
    for path, parts in chunks.items():
        done = apply_patch(inp.files[path], "\n".join(imports) + "\n\n" + "\n\n".join(parts))
        if done.source is None:
            return None, f"{path}: {done.error}"
        out[path] = done.source
    return out, None


@dataclass
class TestScorer:
    """Reward = share of the tests that pass with the candidate's patch applied (run in the sandbox).

    The patch is the candidate's payload when the problem's parser is a :class:`PatchReader` (else the reply is
    read here). Keeps each candidate's :class:`TestReport` (``reports``) and patched file (``patched``), by
    candidate id, so the search can show a child its parent's test output and the pack can report the chosen
    patch's results without running them again."""

    __test__ = False  # not a pytest class

    inp: DebugInput
    sandbox: Sandbox
    expected: int = 0
    name: str = "tests"
    reports: dict[str, TestReport] = field(default_factory=dict)
    patched: dict[str, dict[str, str]] = field(default_factory=dict)

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        return list(await asyncio.gather(*(self._one(problem, c) for c in candidates)))

    def _read(self, problem: Problem, cand: Candidate) -> Reading:
        if isinstance(cand.payload, Patch):
            return Reading(cand.answer, None, cand.payload)
        if isinstance(problem.parser, PatchReader):  # read when sampled, and it failed
            return Reading(None, cand.parse_error)
        return PatchReader(self.inp)(cand.text, cand.finish_reason == "length")

    async def _one(self, problem: Problem, cand: Candidate) -> Score:
        read = self._read(problem, cand)
        if not isinstance(read.payload, Patch):
            return Score(self.name, 0.0, rationale=f"failed candidate: {read.error}")
        changed = read.payload.files
        self.patched[cand.id] = changed
        files = {**self.inp.files, **changed}
        report = await run_project(self.sandbox, files, select=self.inp.select, expected=self.expected)
        self.reports[cand.id] = report
        same = all(self.inp.files.get(p) == t for p, t in changed.items())
        note = " (the patch changes nothing)" if same else ""
        return Score(self.name, report.pass_rate, rationale=report.summary(600) + note)

    def solved(self, cand: Candidate) -> bool:
        """The candidate's patch passes every test."""
        report = self.reports.get(cand.id)
        return report is not None and (cand.score(self.name) or 0.0) >= 1.0 and report.all_passed

    def feedback(self, cand: Candidate) -> str:
        """What a revision of ``cand`` is shown: its test output, or why it gave no usable patch."""
        if cand.id in self.reports:
            return self.reports[cand.id].summary(900)
        return next((sc.rationale for sc in cand.scores if sc.scorer == self.name), "")

    def choose(self, candidates: Sequence[Candidate]) -> Candidate | None:
        return choose(candidates, self)


@dataclass(frozen=True, slots=True)
class RepairSettings:
    """``n`` first drafts; then up to ``rounds`` repair rounds of ``children`` revisions of each of the best
    ``parents`` drafts so far (only while no candidate passes every test)."""

    n: int = 6
    rounds: int = 2
    parents: int = 2
    children: int = 2
    max_tokens: int = 320
    prefix: str = "```python\n"
    """Every reply starts inside a code block (the prompt ends with this much of the assistant's reply): a small
    model otherwise spends its tokens on a preamble before the code."""
    stop: tuple[str, ...] = ("\n```", "\nif __name__", "\n# Test", "\n# Example", "\nprint(", "\nassert ")
    """Sampling stops at the end of the code block or at top-level test code after the function (function
    bodies are indented, so these never cut one)."""

    def strategy(self, scorer: TestScorer) -> RefineWithFeedback:
        """The patch search: :class:`RefineWithFeedback` rewarded by ``scorer``, each revision shown its
        parent's test output, stopping once a patch passes every test; among equals the smallest change wins."""
        return RefineWithFeedback(scorer.feedback, n=self.n, rounds=self.rounds, parents=self.parents,
                                  children=self.children, scorer=scorer, revise=revision_prompt, select=scorer.choose,
                                  done=scorer.solved, prefix=self.prefix, stop=self.stop, max_tokens=self.max_tokens,
                                  name="repair")  # fmt: skip


async def search_patch(problem: Problem, ctx: SearchContext, scorer: TestScorer, s: RepairSettings) -> StepResult:
    """Best-of-N then iterative repair (see the module docstring); stops early when a patch passes every test
    or the budget is spent (what was scored so far is kept). The problem's replies are read as patches of the
    scorer's file (:class:`PatchReader`) unless it has a parser of its own."""
    if problem.parser is None:
        problem = replace(problem, parser=PatchReader(scorer.inp))
    return await s.strategy(scorer).solve(problem, ctx)


def choose(candidates: Sequence[Candidate], scorer: TestScorer) -> Candidate | None:
    """The candidate with the highest test reward; among equals, the smallest change to the file (a minimal
    fix is easier to review and less likely to break what the tests do not cover), then the earliest."""
    ran = [c for c in candidates if c.id in scorer.patched]
    if not ran:
        return best_scored(candidates, scorer.name)
    files = scorer.inp.files

    def changed(c: Candidate) -> int:
        return sum(
            1
            for path, text in scorer.patched[c.id].items()
            for line in difflib.ndiff(files.get(path, "").splitlines(), text.splitlines())
            if line[:1] in "+-"
        )

    return min(ran, key=lambda c: (-(c.score(scorer.name) or 0.0), changed(c), candidates.index(c)))
