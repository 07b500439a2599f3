"""The business-plan pipeline: baseline -> market, situation -> options -> strategy -> projection -> risks,
milestones -> document.

- ``baseline``: the request's figures win; what it does not state the model proposes as JSON (``extract_n``
  samples, the one that fills most fields from the model's own valid numbers is kept), validated; the
  financial model computes the baseline row.
- Prose sections (situation, market, strategy, risks, milestones and the projection's commentary): best-of-N
  in one batched call, each candidate scored by an LLM judge with the section's rubric (``rubric_judge``,
  from logprobs on the embedded backend) and, where the section cites figures, by the number-consistency
  verifier against the table (``numbers``). A candidate whose figures disagree with the table loses to any
  that agrees; the chosen one is marked unverified when none agrees. With ``revisions``, a section none of
  whose candidates agrees is rewritten, shown its disagreements, up to that many rounds.
- ``options``: ``options_k`` strategies sampled, each judged; all are kept in the document with their scores,
  the best-scored one becomes the chosen strategy.
- ``projection``: the model proposes the strategy's assumptions as JSON (growth, levers, investments); the
  tool computes the table; the proposal that is valid and meets the request's goal with the smallest uplift
  wins. Sections before it are checked against the baseline only.
- ``document``: the Markdown document, re-checked as a whole against the final table, written to
  ``business_plan.md`` in the run's artifact directory.

Every sampled step is a search strategy composed with the pack's readers, scorers and selectors (see
:mod:`.search`); the document is built by :mod:`.document`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from longthink.domains.business_plan.claims import NumberCheck
from longthink.domains.business_plan.document import ARTIFACT, render_document
from longthink.domains.business_plan.figures import summary_line, table_of, target_data, target_line, target_of
from longthink.domains.business_plan.model import Projection, assumptions_markdown, project
from longthink.domains.business_plan.readers import (
    BaselineReader,
    ProjectionReader,
    Proposal,
    SectionText,
    option_name,
)
from longthink.domains.business_plan.request import RequestFacts, Target, baseline_assumptions, read_request
from longthink.domains.business_plan.search import (
    NumberChecks,
    SectionJudge,
    best_of,
    best_valid,
    first_ranked,
    option_selector,
    run,
    section_selector,
    text_of,
)
from longthink.domains.business_plan.sections import (
    BASELINE_PROMPT,
    BY_ID,
    PROJECTION_PROMPT,
    SECTIONS,
    SYSTEM,
    Section,
)
from longthink.domains.pipeline import StepContext, StepOutput, attached_files, request_text
from longthink.errors import BudgetExceeded
from longthink.events import ToolCalled
from longthink.llm.types import Message
from longthink.outcome import StepOutcome
from longthink.planners.plan import Plan, PlanStep
from longthink.rewards.judge import Judge
from longthink.rewards.verifier import Verdict, Verifier
from longthink.search.types import Candidate, Parser, Problem

__all__ = ["ARTIFACT", "BusinessPlanPipeline", "render_document"]


def _request(request: str, limit: int) -> str:
    """The request's prose and attached files, cut to ``limit`` characters for short prompts."""
    text = request_text(request)
    for name, content in attached_files(request).items():
        text += f"\n\nFile {name}:\n{content}"
    return text if len(text) <= limit else text[:limit].rstrip() + " [...]"


@dataclass(frozen=True, slots=True)
class BusinessPlanPipeline:
    """The pack's pipeline. ``n``: candidates per prose section; ``options_k``: strategies explored;
    ``extract_n``: JSON proposals for the baseline and the projection; token limits per section and per JSON
    proposal; ``judge_scale``: the rubric judge's 1..K scale; ``request_chars``: how much of the request the
    prompts quote; ``revisions``: rounds in which a section whose figures disagree with the table is rewritten
    with its disagreements as feedback (0: best-of-N only)."""

    n: int = 2
    options_k: int = 3
    extract_n: int = 2
    section_tokens: int = 220
    json_tokens: int = 160
    judge_scale: int = 5
    request_chars: int = 1200
    revisions: int = 0

    def plan(self, request: str) -> Plan:
        steps = [
            PlanStep(
                id=s.id,
                goal=s.goal,
                depends_on=list(s.depends_on),
                kind=s.kind,
                answer_kind="json" if s.kind == "extract" else "text",
            )
            for s in SECTIONS
        ]
        return Plan(goal=f"A business plan for: {request_text(request)[:300]}", steps=steps)

    async def run_step(self, ctx: StepContext) -> StepOutput:
        section = BY_ID.get(ctx.step.id)
        if section is None:
            return StepOutput(None, reason=f"the business_plan pack has no step {ctx.step.id!r}")
        try:
            if section.kind == "extract":
                return await self._baseline(ctx)
            if section.kind == "options":
                return await self._options(ctx, section)
            if section.kind == "projection":
                return await self._projection(ctx, section)
            if section.kind == "document":
                return self._document(ctx)
            return await self._section(ctx, section)
        except BudgetExceeded as exc:
            return StepOutput(None, reason=f"budget spent: {exc}", strategy="best_of_n+judge+numbers")

    # -- helpers -------------------------------------------------------------------------------------------------
    def _problem(
        self, ctx: StepContext, user: str, parser: Parser, *, kind: str = "text", max_tokens: int | None = None
    ) -> Problem:
        return Problem(
            f"{ctx.run_id}:{ctx.step.id}",
            (Message.system(SYSTEM), Message.user(user)),
            "json" if kind == "json" else "text",
            max_tokens=max_tokens or self.section_tokens,
            parser=parser,
        )

    def _judge(self, ctx: StepContext, section: Section, problem: Problem) -> SectionJudge:
        """The section's rubric judge, on the separate judge model when one is set (else the policy model), asked
        the request and the section's instruction."""
        judge = Judge(
            ctx.search.judge_model,
            rubric=section.rubric,
            scale=self.judge_scale,
            name="rubric_judge",
            budget=ctx.search.budget,
        )
        question = (
            f"Business plan request: {_request(ctx.request, 400)}\n\nSection '{section.title}': {section.instruction}"
        )
        return SectionJudge(judge, dataclasses.replace(problem, prompt=(Message.user(question),)))

    async def _prose(
        self,
        ctx: StepContext,
        section: Section,
        facts: str,
        table: Projection | None,
        *,
        periods: Sequence[int] | None = None,
        growth: bool = True,
        goal: Target | None = None,
    ) -> tuple[Candidate | None, NumberCheck | None, list[Candidate]]:
        """One prose section under the rubric judge and the number verifier."""
        user = (
            f"Request: {_request(ctx.request, self.request_chars)}\n\n{facts}\n\nWrite the section "
            f"'{section.title}'. {section.instruction} At most 150 words."
        )
        problem = self._problem(ctx, user, SectionText(section.title))
        judge = self._judge(ctx, section, problem)
        numbers = None
        if table is not None and section.checks_numbers:
            ignore = (goal.pct,) if goal is not None else ()
            numbers = NumberChecks(table, periods, growth, ignore)
            strategy = best_of(self.n, numbers.scorer(), section_selector(numbers), extra=(judge,),
                               rounds=self.revisions, feedback=numbers.feedback)  # fmt: skip
        else:
            strategy = best_of(self.n, judge, section_selector(None))
        found = await run(strategy, problem, ctx.search)
        chosen, cands = found.chosen, list(found.candidates)
        return chosen, numbers.checks.get(chosen.id) if numbers and chosen else None, cands

    def _output(
        self,
        section: Section,
        chosen: Candidate | None,
        check: NumberCheck | None,
        cands: list[Candidate],
        extra: Mapping[str, Any] | None = None,
    ) -> StepOutput:
        text = text_of(chosen) if chosen is not None else ""
        if chosen is None or not text.strip():
            return StepOutput(None, reason="no candidate text", candidates=len(cands), strategy="best_of_n+judge")
        consistent = check is None or check.consistent
        judge = chosen.score("rubric_judge")
        reason = f"rubric judge {judge:.2f}" if judge is not None else "not judged"
        reason += f"; {check.summary()}" if check is not None else ""
        data = {
            "judge": judge,
            "numbers": check.to_json() if check else None,
            "candidates": [
                {"id": c.id, "judge": c.score("rubric_judge"), "numbers": c.score("numbers")} for c in cands
            ],
            **(extra or {}),
        }
        first = text.strip().splitlines()[0][:120]
        return StepOutput(
            first,
            text,
            consistent,
            reason,
            data,
            candidates=len(cands),
            strategy="best_of_n+rubric_judge+numbers",
        )

    def _facts(self, ctx: StepContext) -> tuple[Projection | None, Target | None, str]:
        base = ctx.input_data("baseline")
        table = table_of(base)
        if table is None:
            return None, None, ""
        return table, target_of(base), f"Baseline figures: {summary_line(table)}."

    def _tool_called(self, ctx: StepContext, table: Projection, result: str) -> None:
        ctx.emit(
            ToolCalled(
                call_id=f"{ctx.run_id}:{ctx.step.id}:financial_model",
                tool="financial_model",
                args={"assumptions": table.assumptions.model_dump(mode="json")},
                ok=True,
                result=result,
                error=None,
                latency_s=0.0,
            )
        )

    # -- steps -------------------------------------------------------------------------------------------------
    async def _baseline(self, ctx: StepContext) -> StepOutput:
        facts: RequestFacts = read_request(request_text(ctx.request))
        complete = (
            "revenue" in facts.figures
            and ({"profit", "margin", "fixed_costs", "total_costs"} & facts.figures.keys())
            and "variable_cost_pct" in facts.figures
        )
        cands: list[Candidate] = []
        proposal: Proposal | None = None
        errors = []
        if not complete:
            problem = self._problem(
                ctx,
                BASELINE_PROMPT.format(request=_request(ctx.request, self.request_chars)),
                BaselineReader(facts),
                kind="json",
                max_tokens=self.json_tokens,
            )

            def verdict(_: Problem, c: Candidate) -> Verdict:
                notes = c.payload.notes
                used = sum("proposed by the model" in n or "from the request" in n or "derived" in n for n in notes)
                return Verdict(used / 3, "; ".join(notes))

            found = await run(best_of(self.extract_n, Verifier(verdict, name="assumptions"), first_ranked),
                              problem, ctx.search)  # fmt: skip
            cands = list(found.candidates)
            proposal = found.chosen.payload if found.chosen is not None else None
            ranked = sorted(cands, key=lambda c: -(c.score("assumptions") or 0.0))
            errors = [str(c.parse_error) for c in ranked if c.payload is None]
        if proposal is not None:
            assumptions, notes = proposal.assumptions, list(proposal.notes)
        else:
            try:
                assumptions, notes = baseline_assumptions(facts, None)
            except ValueError as exc:
                reason = "no valid baseline: " + "; ".join([*errors, str(exc)])
                return StepOutput(None, reason=reason, candidates=len(cands))
        table = project(assumptions)
        data = {
            "assumptions": assumptions.model_dump(mode="json"),
            "table": table.to_json(),
            "notes": notes,
            "target": target_data(facts.target),
        }
        self._tool_called(ctx, table, summary_line(table))
        defaults = [n for n in notes if "default" in n]
        reason = "baseline: " + "; ".join(notes)
        text = f"{summary_line(table)}\n\nSources: " + "; ".join(notes)
        return StepOutput(
            summary_line(table),
            text,
            True,
            reason,
            data,
            candidates=len(cands),
            strategy="extract+financial_model" + ("+defaults" if defaults else ""),
        )

    async def _section(self, ctx: StepContext, section: Section) -> StepOutput:
        table, target, facts = self._facts(ctx)
        proj = table_of(ctx.input_data("projection"))
        lines = [facts] if facts else []
        if target is not None:
            lines.append(f"Goal: {target.metric} +{target.pct}% by period {target.period}.")
        if proj is not None:
            lines.append(f"Projection: {summary_line(proj, 1)}. {target_line(proj, target)[0]}")
        for dep in section.depends_on:
            if dep in ("baseline", "projection"):
                continue
            prior = ctx.input_text(dep)
            if dep == "options":
                prior = str(ctx.input_data("options").get("chosen_text") or prior)
            if prior:
                lines.append(f"{BY_ID[dep].title}: {prior[:500]}")
        if proj is not None:
            chosen, check, cands = await self._prose(ctx, section, "\n".join(lines), proj, goal=target)
        else:
            chosen, check, cands = await self._prose(
                ctx, section, "\n".join(lines), table, periods=[0], growth=False, goal=target
            )
        return self._output(section, chosen, check, cands)

    async def _options(self, ctx: StepContext, section: Section) -> StepOutput:
        facts = self._facts(ctx)[2]
        context = [facts] + [f"{BY_ID[d].title}: {ctx.input_text(d)[:400]}" for d in section.depends_on]
        user = (
            f"Request: {_request(ctx.request, self.request_chars)}\n\n"
            + "\n".join(context)
            + f"\n\n{section.instruction}"
        )
        problem = self._problem(ctx, user, SectionText(section.title), max_tokens=min(self.section_tokens, 150))
        judge = self._judge(ctx, section, problem)
        found = await run(best_of(self.options_k, judge, option_selector, temperature=1.0), problem, ctx.search)
        cands = list(found.candidates)
        options = []
        for c in cands:
            body = text_of(c)
            m = re.search(r"option\s*\d*\s*[:\-]\s*(.+)", body, re.I)
            name = option_name(m.group(1) if m else body.strip().splitlines()[0] if body.strip() else "(empty)")
            options.append({"id": c.id, "name": name, "text": body, "judge": c.score("rubric_judge")})
        if found.chosen is None:
            return StepOutput(None, reason="no usable option", candidates=len(cands))
        best = cands.index(found.chosen)
        lines = []
        for i, o in enumerate(options):
            score = "n/a" if o["judge"] is None else f"{o['judge']:.2f}"
            mark = " — **chosen**" if i == best else ""
            body = re.sub(r"^\s*\**option\s*\d*\s*[:\-][^\n]*\n?", "", str(o["text"]), flags=re.I).strip()
            lines.append(f"- **{o['name']}** (judge score {score}){mark}: {body}")
        text = "\n".join(lines)
        data = {"options": options, "chosen": best, "chosen_text": options[best]["text"]}
        why = f"kept option {best + 1} of {len(options)} by rubric judge"
        return StepOutput(
            str(options[best]["name"]), text, True, why, data, candidates=len(cands), strategy="options+rubric_judge"
        )

    async def _projection(self, ctx: StepContext, section: Section) -> StepOutput:
        base_table, target, facts = self._facts(ctx)
        if base_table is None:
            return StepOutput(None, reason="no baseline table (the baseline step failed)")
        baseline = base_table.assumptions
        strategy = ctx.input_text("strategy")[:600]
        goal = (
            "none stated" if target is None else f"{target.metric} +{target.pct}% by {baseline.period} {target.period}"
        )
        user = PROJECTION_PROMPT.format(
            request=_request(ctx.request, 600),
            baseline=summary_line(base_table),
            goal=goal,
            strategy=strategy or "(none)",
            period=baseline.period,
        )
        problem = self._problem(ctx, user, ProjectionReader(baseline), kind="json", max_tokens=self.json_tokens)
        tables: dict[str, Projection] = {}

        def verdict(_: Problem, c: Candidate) -> Verdict:
            table = project(c.payload)
            tables[c.id] = table
            line, met = target_line(table, target)
            stretch = sum(abs(lv.revenue_uplift_pct) + abs(lv.cost_saving_pct) for lv in table.assumptions.levers)
            stretch += abs(table.assumptions.revenue_growth_pct)
            value = (1.0 if met or met is None else 0.5) - min(float(stretch), 100.0) / 1000
            return Verdict(value, line or "valid assumptions")

        search = best_of(self.extract_n, Verifier(verdict, name="assumptions"), best_valid(lambda c: c.id in tables))
        found = await run(search, problem, ctx.search)
        cands = list(found.candidates)
        notes = []
        if found.chosen is not None:
            table = tables[found.chosen.id]
        else:
            table = project(baseline)
            notes.append("no valid proposal from the model: the table keeps the baseline unchanged")
        self._tool_called(ctx, table, table.markdown())
        line, met = target_line(table, target)
        facts_text = f"{facts}\nProjection table:\n{table.markdown()}\n{line}"
        chosen, check, prose = await self._prose(ctx, section, facts_text, table, goal=target)
        commentary = text_of(chosen) if chosen is not None else ""
        text = "\n\n".join(
            p
            for p in (
                "**Assumptions**\n\n" + assumptions_markdown(table.assumptions),
                table.markdown(),
                line,
                commentary,
            )
            if p
        )
        out = self._output(
            section,
            chosen,
            check,
            prose,
            {"table": table.to_json(), "goal_met": met, "notes": notes, "commentary": commentary},
        )
        answer = line or summary_line(table, len(table.rows) - 1)
        return dataclasses.replace(
            out,
            answer=answer,
            text=text,
            verified=out.verified and found.chosen is not None,
            reason="; ".join([*notes, out.reason]),
            candidates=len(cands) + len(prose),
        )

    def _document(self, ctx: StepContext) -> StepOutput:
        doc, check, missing = render_document(ctx.request, ctx.inputs)
        path = ctx.artifact_path(ARTIFACT)
        path.write_text(doc, encoding="utf-8")
        consistent = check is None or check.consistent
        reason = (check.summary() if check else "no table to check against") + (
            f"; sections missing: {', '.join(missing)}" if missing else ""
        )
        data = {"path": str(path), "numbers": check.to_json() if check else None, "missing": missing}
        return StepOutput(
            f"business plan written to {path}",
            doc,
            consistent and not missing,
            reason,
            data,
            artifacts=(str(path),),
            strategy="document",
        )

    def synthesize(self, request: str, plan: Plan, results: Mapping[str, StepOutcome]) -> tuple[str | None, str]:
        doc_result = results.get("document")
        doc = (doc_result.text if doc_result is not None else "") or render_document(request, results)[0]
        lines = []
        for step in plan.steps:
            r = results.get(step.id)
            if r is None:
                lines.append(f"- {step.id}: failed (did not run)")
                continue
            state = "verified" if r.verified else "unverified" if r.answer is not None else "failed"
            lines.append(f"- {step.id}: {state} ({r.reason[:300]})")
        return (doc or None), "\n".join(lines)
