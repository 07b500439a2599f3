"""The debugging pack's plan and steps: reproduce -> localise -> patch -> validate -> explain.

- **reproduce**: run the tests (all, or the node ids the request names) with pytest on the original code in the
  sandbox and record which fail (no model); for a project, run the whole suite once more with the code traced
  (the failures of the selected tests count) and record the functions' coverage-spectrum scores. No test
  collected, a test file that does not import, or tests that already pass end the run here: the later steps are
  skipped and nothing is sampled;
- **localise**: name the suspect function(s). A single file: its functions seen in the failures' tracebacks and,
  when it has several, a few cheap model votes. A project: the functions ranked across its files by
  :mod:`~longthink.domains.debugging.localise` (the coverage spectrum of a traced run of the tests, which the
  reproduce step makes; stack frames; what the failing tests call), and model votes among
  the strong ones when there are several (a pasted traceback localises the same way when there are no tests);
- **patch**: :func:`~longthink.domains.debugging.repair.search_patch` (the refine-with-feedback strategy:
  best-of-N, then iterative repair shown the test output), every reply read once into a patch and scored by
  running the tests (the scores land in the run's trace);
- **validate**: run the same tests again, fresh, on the chosen patch; verified when every test passes;
- **explain**: a short explanation by the model of what was wrong and what the patch changes.

:meth:`DebuggingPipeline.synthesize` answers in Markdown: the status, the test results before and after, the
unified diff (one per changed file, with paths from the project's root: ``git apply`` takes it) and the
explanation.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from longthink.domains.debugging.localise import Suspicion, ranked, strong, suspicion, trace
from longthink.domains.debugging.repair import (
    PatchReader,
    RepairSettings,
    TestScorer,
    patch_prompt,
    prompt_suspects,
    search_patch,
    split_suspect,
)  # fmt: skip
from longthink.domains.debugging.source import BadInput, DebugInput, function_source, parse_request, project_diff
from longthink.domains.pipeline import StepContext, StepOutput
from longthink.errors import BudgetExceeded
from longthink.events import ToolCalled
from longthink.llm.types import Message
from longthink.outcome import StepOutcome
from longthink.planners.plan import Plan, PlanStep
from longthink.search.types import Problem
from longthink.tools.sandbox import Sandbox, SandboxLimits, TestReport, run_project

STEPS = ("reproduce", "localise", "patch", "validate", "explain")
SUSPICION_KEPT = 20
"""How many of the spectrum's best-scored functions the reproduce step records for the localise step."""
TRACED_SLOWDOWN = 2
"""The traced run's time limits, as a multiple of the judging run's (tracing made real suites 1.2-1.8x slower)."""


@dataclass
class DebuggingPipeline:
    """The pack's pipeline. ``repair`` sizes the patch search; ``limits`` the sandbox of every test run."""

    repair: RepairSettings = field(default_factory=RepairSettings)
    limits: SandboxLimits = field(default_factory=lambda: SandboxLimits(wall_s=20.0, cpu_s=10))
    localise_samples: int = 3
    localise_choices: int = 4
    """A project's model vote is among at most this many of the best-ranked suspects."""
    use_bwrap: bool | None = None

    def plan(self, request: str) -> Plan:
        goals = {
            "reproduce": "run the tests on the original code in the sandbox and record the failures",
            "localise": "name the function(s) that most likely hold the bug",
            "patch": "search for a patch: sampled fixes and iterative repair, rewarded by the tests passing",
            "validate": "run the full tests again on the chosen patch",
            "explain": "explain the bug and the fix in a few sentences",
        }
        deps = {"reproduce": [], "localise": ["reproduce"], "patch": ["reproduce", "localise"],
                "validate": ["patch"], "explain": ["patch", "validate"]}  # fmt: skip
        steps = [
            PlanStep(id=s, goal=goals[s], kind=s, depends_on=deps[s], answer_kind="code" if s == "patch" else "text")
            for s in STEPS
        ]
        return Plan(goal="fix the bug so the tests pass", steps=steps)

    def _sandbox(self) -> Sandbox:
        return Sandbox(self.limits, concurrency=2, use_bwrap=self.use_bwrap)

    async def run_step(self, ctx: StepContext) -> StepOutput:
        try:
            inp = parse_request(ctx.request)
        except BadInput as exc:
            return StepOutput(None, reason=str(exc), strategy="input")
        kind = ctx.step.kind
        if kind == "reproduce":
            return await self._reproduce(ctx, inp)
        if kind == "localise":
            return await self._localise(ctx, inp)
        if kind == "patch":
            return await self._patch(ctx, inp)
        if kind == "validate":
            return await self._validate(ctx, inp)
        if kind == "explain":
            return await self._explain(ctx, inp)
        return StepOutput(None, reason=f"unknown debugging step kind {kind!r}")

    # -- steps -----------------------------------------------------------------------------------------------------
    async def _run(self, ctx: StepContext, inp: DebugInput, changed: Mapping[str, str], target: str) -> TestReport:
        report = await run_project(self._sandbox(), {**inp.files, **changed}, select=inp.select)
        ctx.emit(ToolCalled(call_id=f"{ctx.run_id}:run_tests:{target}", tool="run_tests",
                            args={"target": target, "select": list(inp.select)}, ok=report.error is None,
                            result=report.summary(), error=report.error, latency_s=report.run.duration_s))  # fmt: skip
        return report

    async def _reproduce(self, ctx: StepContext, inp: DebugInput) -> StepOutput:
        if not inp.test_files:
            reason = "no tests given: the patch cannot be checked by running tests"
            if inp.error:
                reason += " (the reported error is used to localise the bug)"
            return StepOutput("no tests", text=inp.error, verified=False, reason=reason,
                              data={"report": None, "failure": inp.error, "total": 0}, strategy="sandbox")  # fmt: skip
        report = await self._run(ctx, inp, {}, "original")
        failure = report.summary(1500)
        if inp.error:
            failure = f"{failure}\nReported error:\n{inp.error[-800:]}"
        data = {"report": report.as_dict(), "failure": failure, "total": report.total,
                "failing": [o.name for o in report.failures()]}  # fmt: skip
        stop = _stop_reason(report, inp)
        if stop is not None:
            return StepOutput(None, text=report.summary(), verified=False, reason=stop,
                              data={**data, "stop": stop}, strategy="sandbox")  # fmt: skip
        reason = f"reproduced: {report.passed}/{report.total} tests pass on the original code"
        if inp.is_project:
            data["suspicion"] = await self._suspicion(ctx, inp)
        return StepOutput(f"{report.passed}/{report.total} tests pass", text=report.summary(), verified=True,
                          reason=reason, data=data, strategy="sandbox")  # fmt: skip

    async def _suspicion(self, ctx: StepContext, inp: DebugInput) -> list[list[str | float]]:
        """The failing tests run again with the code traced: the spectrum's best-scored functions as
        ``[file, name, score]`` (an empty list when the traced run did not finish)."""
        k = TRACED_SLOWDOWN
        slow = replace(self.limits, wall_s=k * self.limits.wall_s, cpu_s=k * self.limits.cpu_s)
        traced = await trace(Sandbox(slow, concurrency=2, use_bwrap=self.use_bwrap), inp)
        scores = suspicion(inp, traced.spectrum) if traced.spectrum is not None else {}
        why = None if traced.spectrum is not None else (traced.error or "the traced run gave no spectrum")
        ctx.emit(ToolCalled(call_id=f"{ctx.run_id}:run_tests:traced", tool="run_tests",
                            args={"target": "original, traced", "focus": list(inp.select)},
                            ok=traced.spectrum is not None, result=f"{len(scores)} functions ran in failing tests",
                            error=why, latency_s=traced.run.duration_s))  # fmt: skip
        best = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:SUSPICION_KEPT]  # ties: one order
        return [[path, name, round(score, 4)] for (path, name), score in best]

    async def _localise(self, ctx: StepContext, inp: DebugInput) -> StepOutput:
        if stop := ctx.input_data("reproduce").get("stop"):
            return StepOutput(None, reason=f"skipped: {stop}", data={"stop": stop}, strategy="static")
        repro = ctx.input_data("reproduce")
        failure = str(repro.get("failure") or inp.error)
        if inp.is_project:
            scores = {(str(r[0]), str(r[1])): float(r[2]) for r in repro.get("suspicion") or [] if len(r) == 3}
            failing = [str(n) for n in repro.get("failing") or []]
            return await self._localise_project(ctx, inp, failure, failing, scores)
        names = inp.functions()
        if not names:
            return StepOutput(None, reason="the code has no functions or classes to patch")
        seen = [n for n in names if re.search(rf"\b{re.escape(n)}\b", failure)]
        if len(names) == 1:
            return StepOutput(names[0], verified=True, reason="the file has one function",
                              data={"suspects": names, "votes": {}}, strategy="static")  # fmt: skip
        votes = await self._votes(ctx, f"```python\n{inp.source.rstrip()}\n```", failure, names)
        ranked = [n for n, _ in votes.most_common()]
        suspects = list(dict.fromkeys([*ranked[:1], *seen, *ranked[1:]])) or names[:1]
        reason = f"model votes {dict(votes)}; in the tracebacks: {', '.join(seen) or 'none'}"
        return StepOutput(", ".join(suspects), verified=True, reason=reason,
                          data={"suspects": suspects, "votes": dict(votes)}, candidates=sum(votes.values()),
                          strategy="vote")  # fmt: skip

    async def _localise_project(
        self, ctx: StepContext, inp: DebugInput, failure: str, failing: list[str], scores: Suspicion
    ) -> StepOutput:
        ranking = ranked(inp, failure, failing, scores)
        ranked_ = [f"{p}::{n}" for (p, n), _ in ranking]
        if not ranked_:
            first = [f"{p}::{n}" for p, n in inp.definitions()[:1]]
            if not first:
                return StepOutput(None, reason="the project's code has no functions or classes to patch")
            return StepOutput(first[0], verified=False, reason="no evidence in the test output: the first function",
                              data={"suspects": first, "votes": {}}, strategy="static")  # fmt: skip
        top = [f"{p}::{n}" for p, n in strong(ranking)][: self.localise_choices]
        if len(top) == 1:
            why = f"the tracebacks, failing tests and coverage point to it (weight {ranking[0][1]:g}; next "
            why += f"{ranking[1][1]:g})" if len(ranking) > 1 else "none)"
            return StepOutput(top[0], verified=True, reason=why, data={"suspects": top, "static": ranked_,
                              "votes": {}}, strategy="static")  # fmt: skip
        shown = "\n\n".join(f"`{s}`:\n```python\n{_code_of(inp, s).rstrip()}\n```" for s in top)
        names = [split_suspect(s)[1] for s in top]
        votes = await self._votes(ctx, shown, failure, names)
        final = _with_votes(top, {f"{p}::{n}": w for (p, n), w in ranking}, votes)
        reason = f"static ranking {', '.join(top)}; model votes {dict(votes)}"
        return StepOutput(", ".join(final[:3]), verified=True, reason=reason,
                          data={"suspects": final, "votes": dict(votes), "static": ranked_},
                          candidates=sum(votes.values()), strategy="frames+vote")  # fmt: skip

    async def _votes(self, ctx: StepContext, shown: str, failure: str, names: list[str]) -> Counter[str]:
        """A few cheap model votes for the function that holds the bug, among ``names``."""
        prompt = (
            Message.system("You locate bugs in Python code."),
            Message.user(
                f"{shown}\n\nThe tests give:\n```\n{failure.strip()[:1500]}\n```\n"
                f"Which function contains the bug? Answer with the function name only, one of: {', '.join(names)}."
            ),
        )  # fmt: skip
        problem = Problem(f"{ctx.run_id}:localise", prompt, "text", max_tokens=24)
        votes: Counter[str] = Counter()
        try:
            [cands] = await ctx.search.sample(problem, self.localise_samples, strategy="localise")
        except BudgetExceeded:
            cands = []
        for c in cands:
            hit = next(
                (n for n in sorted(names, key=len, reverse=True) if re.search(rf"\b{re.escape(n)}\b", c.text)), None
            )
            if hit:
                votes[hit] += 1
        return votes

    async def _patch(self, ctx: StepContext, inp: DebugInput) -> StepOutput:
        repro = ctx.input_data("reproduce")
        if stop := repro.get("stop"):
            return StepOutput(None, reason=f"skipped: {stop}", data={"stop": stop}, strategy="repair")
        if not inp.test_files:
            return StepOutput(None, reason="no tests to reward a patch with: attach a failing test", strategy="repair")
        suspects_ = [str(s) for s in ctx.input_data("localise").get("suspects") or inp.functions()[:1]]
        failure = str(repro.get("failure") or inp.error)
        prefer = tuple(p for s in suspects_ if (p := split_suspect(s)[0]))
        reader = PatchReader(inp, prefer, tuple(name for _, name in prompt_suspects(inp, suspects_)))
        problem = Problem(f"{ctx.run_id}:patch", patch_prompt(inp, suspects_, failure), "code",
                          max_tokens=self.repair.max_tokens, parser=reader)  # fmt: skip
        scorer = TestScorer(inp, self._sandbox(), expected=int(repro.get("total") or 0))
        found = await search_patch(problem, ctx.search, scorer, self.repair)
        chosen = found.chosen
        if chosen is None or chosen.id not in scorer.patched:
            why = "budget spent before any candidate" if not found.candidates else "no candidate gave a usable patch"
            return StepOutput(None, reason=f"{why} ({len(found.candidates)} candidates)",
                              candidates=len(found.candidates), strategy="best_of_n+repair")  # fmt: skip
        report = scorer.reports[chosen.id]
        changed = scorer.patched[chosen.id]
        diff = project_diff(inp.files, changed)
        failed = sum(1 for c in found.candidates if c.id not in scorer.reports)
        reason = (f"best of {len(found.candidates)} candidates ({failed} failed to give a usable patch, "
                  f"{found.rounds} repair rounds): {report.passed}/{report.total} tests pass")  # fmt: skip
        return StepOutput(f"{report.passed}/{report.total} tests pass", text=diff, verified=report.all_passed,
                          reason=reason, data={"patched": changed, "files": sorted(changed), "diff": diff,
                                               "candidate": chosen.id, "score": report.pass_rate,
                                               "rounds": found.rounds},
                          candidates=len(found.candidates), strategy="best_of_n+repair")  # fmt: skip

    async def _validate(self, ctx: StepContext, inp: DebugInput) -> StepOutput:
        patched = ctx.input_data("patch").get("patched")
        if not isinstance(patched, Mapping):
            return StepOutput(None, reason="no patch to validate", strategy="sandbox")
        report = await self._run(ctx, inp, {str(k): str(v) for k, v in patched.items()}, "patched")
        ok = report.all_passed
        reason = "every test passes on the patched code" if ok else f"still failing: {report.summary(400)}"
        return StepOutput(f"{report.passed}/{report.total} tests pass", text=report.summary(), verified=ok,
                          reason=reason, data={"report": report.as_dict()}, strategy="sandbox")  # fmt: skip

    async def _explain(self, ctx: StepContext, inp: DebugInput) -> StepOutput:
        diff = str(ctx.input_data("patch").get("diff") or "")
        if not diff:
            return StepOutput(None, reason="no patch to explain", strategy="cot")
        validated = (v.answer if (v := ctx.inputs.get("validate")) is not None else None) or "not validated"
        prompt = (
            Message.system(SYSTEM_EXPLAIN),
            Message.user(f"Bug report: {inp.description or 'failing tests'}\n\nThe fix, as a diff (lines starting "
                         f"with - are the old, buggy code; lines starting with + replace them):\n```diff\n{diff}```\n"
                         f"Tests after the fix: {validated}.\nExplain in two or three sentences what was wrong "
                         "and what the fix changes."),
        )  # fmt: skip
        problem = Problem(f"{ctx.run_id}:explain", prompt, "text", max_tokens=120)
        try:
            [cands] = await ctx.search.sample(problem, 1, strategy="explain", temperature=0.2)
        except BudgetExceeded:
            cands = []
        text = cands[0].text.strip() if cands else ""
        if not text:
            return StepOutput(None, reason="no explanation (budget spent or empty reply)", candidates=len(cands))
        return StepOutput(text.splitlines()[0][:120], text=text, verified=True, reason="written by the model",
                          candidates=len(cands), strategy="cot")  # fmt: skip

    # -- answer ------------------------------------------------------------------------------------------------------
    def synthesize(self, request: str, plan: Plan, results: Mapping[str, StepOutcome]) -> tuple[str | None, str]:
        none = StepOutcome(step_id="", reason="not run")
        patch, validate = results.get("patch", none), results.get("validate", none)
        diff = str(patch.data.get("diff") or "")
        before = results.get("reproduce", none).answer or "not run"
        after = validate.answer or patch.answer or "not run"
        justification = "\n".join(f"- {s.id}: {results.get(s.id, none).reason}" for s in plan.steps)
        stop = results.get("reproduce", none).data.get("stop")
        if stop:
            return None, f"Stopped before any patch was sampled: {stop}\n{justification}"
        if not diff:
            return None, justification
        fixed = validate.verified
        status = "Fixed: every test passes." if fixed else "Not fixed: the best patch found still fails tests."
        lines = [f"**{status}**", "", f"- Tests before: {before}", f"- Tests after: {after}"]
        suspects = results.get("localise", none).answer
        if suspects:
            lines.append(f"- Suspect: {suspects}")
        lines += ["", "```diff", diff.rstrip("\n"), "```"]
        explanation = results.get("explain", none).text
        if explanation:
            lines += ["", str(explanation).strip()]
        return "\n".join(lines), justification


SYSTEM_EXPLAIN = "You explain bug fixes to programmers clearly and briefly."


def _code_of(inp: DebugInput, suspect: str) -> str:
    path, name = split_suspect(suspect)
    return function_source(inp.files.get(path or inp.code_files[0], ""), name) or ""


VOTE_WEIGHT = 0.15
"""How far the model's votes move a suspect: a unanimous vote adds this share of the best static weight, so the
votes decide between suspects the evidence scores within 15% of each other and never overturn a clear ranking
(the README's shop example: an exception raised in ``parse_price``, reached through ``Cart.add``, weights 8.4
and 6.9; a 0.5B model's votes for ``Cart`` had put the caller first)."""


def _with_votes(top: list[str], weights: dict[str, float], votes: Counter[str]) -> list[str]:
    """``top`` (suspects as ``file::name``, best first) reordered by their static weight relative to the best one's
    plus :data:`VOTE_WEIGHT` times their share of the model's votes (a vote names a function; equal scores keep
    the static order)."""
    best = max((weights.get(s, 0.0) for s in top), default=0.0) or 1.0
    total = sum(votes.values()) or 1

    def score(s: str) -> float:
        return weights.get(s, 0.0) / best + VOTE_WEIGHT * votes.get(split_suspect(s)[1], 0) / total

    return sorted(top, key=lambda s: (-score(s), top.index(s)))


def _stop_reason(report: TestReport, inp: DebugInput) -> str | None:
    """Why a run cannot go on to patching, or None: no test was collected, a test file does not import or parse
    (or pytest refused its configuration), or every test already passes on the original code."""
    selected = f" (selected: {', '.join(inp.select)})" if inp.select else ""
    if report.error_kind == "no_tests":
        return f"no tests collected from {', '.join(inp.test_files)}{selected}: nothing to reproduce the bug with"
    if report.error_kind == "collection":
        return f"{report.error}: fix the tests so that they import, then ask again"
    if report.error_kind == "usage":
        return f"pytest could not run the tests: {report.error}"
    if report.all_passed:
        return (f"the tests already pass on the original code ({report.passed}/{report.total}{selected}): "
                "nothing fails, so there is no bug to reproduce; add a failing test")  # fmt: skip
    return None
