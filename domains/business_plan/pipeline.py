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
  whose candidates agrees is rewritten, shown its disagreements, up to that many rounds. A chosen candidate cut
  at its token limit is continued once (``continue_tokens``) and competes again.
- ``options``: ``options_k`` strategies sampled, each judged; all are kept in the document with their scores,
  the best-scored one becomes the chosen strategy.
- ``projection``: the model proposes the strategy's assumptions as JSON (growth, levers, investments; the reply
  starts with the JSON's first key, ``PROJECTION_PREFIX``); the tool computes the table; the proposal that is
  valid and meets the request's goal with the smallest uplift wins. Sections before it are checked against the
  baseline only.
- ``document``: the Markdown document; each section's figures that disagree with the final table are put right
  (:mod:`.corrections`, every change listed at the end), the whole re-checked, written to ``business_plan.md`` in
  the run's artifact directory.

Every sampled step is a search strategy composed with the pack's readers, scorers and selectors (see
:mod:`.search`); the document is built by :mod:`.document`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from longthink.domains.business_plan.claims import NumberCheck
from longthink.domains.business_plan.document import ARTIFACT, render_document
from longthink.domains.business_plan.figures import summary_line, table_of, target_data, target_line, target_of
from longthink.domains.business_plan.model import Projection, assumptions_markdown, project
from longthink.domains.business_plan.proposals import Evaluated, OptionPlan, choose, refine_prompt
from longthink.domains.business_plan.readers import (
    BaselineReader,
    ProjectionReader,
    Proposal,
    SectionText,
    option_name,
    quote,
)
from longthink.domains.business_plan.request import RequestFacts, Target, baseline_assumptions, read_request
from longthink.domains.business_plan.search import (
    NumberChecks,
    QualityCheck,
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
    DOCUMENT_TITLES,
    PROJECTION_PREFIX,
    PROJECTION_PROMPT,
    SYSTEM,
    Section,
    by_id_for,
    plan_kind,
    sections_for,
)
from longthink.domains.pipeline import StepContext, StepOutput, attached_files, request_text
from longthink.errors import BudgetExceeded
from longthink.events import Question, ToolCalled
from longthink.llm.types import Message
from longthink.outcome import StepOutcome
from longthink.planners.plan import Plan, PlanStep
from longthink.rewards.base import Scorer
from longthink.rewards.judge import Judge
from longthink.rewards.verifier import Verdict, Verifier
from longthink.search.context import Branch
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
    with its disagreements as feedback (0: best-of-N only); ``refine_rounds``: rounds in which the ``refine_top``
    best options are shown the financial model's result and propose again while none reaches the goal;
    ``calibrate``: every proposal is also tried with its growth and levers scaled to the least that reaches the
    goal (:func:`.proposals.calibrate`); ``continue_tokens``: a prose section whose chosen candidate was cut at its
    token limit is continued once by up to that many tokens (0: it is cut back to its last finished sentence)."""

    n: int = 2
    options_k: int = 3
    extract_n: int = 2
    section_tokens: int = 220
    json_tokens: int = 160
    judge_scale: int = 5
    request_chars: int = 1200
    revisions: int = 0
    refine_rounds: int = 1
    refine_top: int = 2
    calibrate: bool = True
    continue_tokens: int = 160

    def plan(self, request: str) -> Plan:
        steps = [
            PlanStep(
                id=s.id,
                goal=s.goal,
                depends_on=list(s.depends_on),
                kind=s.kind,
                answer_kind="json" if s.kind == "extract" else "text",
            )
            for s in sections_for(request_text(request))
        ]
        kind = DOCUMENT_TITLES[plan_kind(request_text(request))].lower()
        return Plan(goal=f"A {kind} for: {request_text(request)[:300]}", steps=steps)

    def questions(self, request: str) -> list[Question]:
        """The baseline facts ``request`` lacks, as :class:`~longthink.events.Question` s asked before planning (see
        :func:`.request.missing_facts`); none when it states its figures."""
        from longthink.domains.business_plan.request import missing_facts

        return list(missing_facts(request_text(request)))

    async def run_step(self, ctx: StepContext) -> StepOutput:
        section = by_id_for(request_text(ctx.request)).get(ctx.step.id)
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
        quality = QualityCheck(request_text(ctx.request)).scorer()
        if table is not None and section.checks_numbers:
            ignore = (goal.pct,) if goal is not None else ()
            numbers = NumberChecks(table, periods, growth, ignore)
            strategy = best_of(self.n, numbers.scorer(), section_selector(numbers), extra=(quality, judge),
                               rounds=self.revisions, feedback=numbers.feedback)  # fmt: skip
        else:
            strategy = best_of(self.n, judge, section_selector(None), extra=(quality,))
        found = await run(strategy, problem, ctx.search)
        chosen, cands = found.chosen, list(found.candidates)
        if chosen is not None and chosen.finish_reason == "length" and self.continue_tokens > 0:
            scorers = (quality, *((numbers.scorer(),) if numbers else ()), judge)
            more = await self._continued(ctx, problem, chosen, scorers)
            if more is not None:
                cands.append(more)
                chosen = section_selector(numbers)(cands)
        return chosen, numbers.checks.get(chosen.id) if numbers and chosen else None, cands

    async def _continued(
        self, ctx: StepContext, problem: Problem, cut: Candidate, scorers: Sequence[Scorer]
    ) -> Candidate | None:
        """``cut`` (stopped at its token limit) continued once for up to ``continue_tokens`` more tokens, read and
        scored like the others, so a finished text can win; None when the budget cannot pay for it."""
        try:
            [[more]] = await ctx.search.sample(problem, 1, branches=[Branch(cut.text, parent=cut)],
                                               max_tokens=self.continue_tokens, strategy="continue")  # fmt: skip
        except BudgetExceeded:
            return None
        for scorer in scorers:
            [more] = await ctx.search.score(problem, [more], scorer)
        return more

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
        problems = next((s.rationale for s in chosen.scores if s.scorer == "quality" and s.value == 0.0), None)
        if problems is not None:  # no candidate was clean: the best one is kept, flagged
            consistent = False
            reason += f"; {problems}"
        data = {
            "judge": judge,
            "numbers": check.to_json() if check else None,
            "candidates": [
                {
                    "id": c.id,
                    "judge": c.score("rubric_judge"),
                    "numbers": c.score("numbers"),
                    "quality": c.score("quality"),
                }
                for c in cands
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
        # the projection's table once it exists; before it, the chosen option's (the strategy cites its figures)
        proj = table_of(ctx.input_data("projection")) or table_of(ctx.input_data("options"))
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
                lines.append(f"{by_id_for(request_text(ctx.request))[dep].title}: {quote(prior, 500)}")
        if proj is not None:
            chosen, check, cands = await self._prose(ctx, section, "\n".join(lines), proj, goal=target)
        else:
            chosen, check, cands = await self._prose(
                ctx, section, "\n".join(lines), table, periods=[0], growth=False, goal=target
            )
        return self._output(section, chosen, check, cands)

    async def _options(self, ctx: StepContext, section: Section) -> StepOutput:
        """Options written, judged, and each turned into assumptions the financial model computes; the projection
        selects (see :mod:`.proposals`), refined with the tool's result when none reaches the goal."""
        base_table, target, facts = self._facts(ctx)
        deps = [d for d in section.depends_on if d != "baseline"]
        titles = by_id_for(request_text(ctx.request))
        context = [facts] + [f"{titles[d].title}: {quote(ctx.input_text(d), 400)}" for d in deps]
        if target is not None and base_table is not None:
            context.append(f"Goal: {target.describe(base_table.assumptions.period)}.")
        user = (
            f"Request: {_request(ctx.request, self.request_chars)}\n\n"
            + "\n".join(context)
            + f"\n\n{section.instruction}"
        )
        problem = self._problem(ctx, user, SectionText(section.title), max_tokens=min(self.section_tokens, 150))
        judge = self._judge(ctx, section, problem)
        quality = QualityCheck(request_text(ctx.request)).scorer()
        found = await run(best_of(self.options_k, judge, option_selector, extra=(quality,), temperature=1.0), problem,
                          ctx.search)  # fmt: skip
        cands = list(found.candidates)
        plans: list[OptionPlan] = []
        for i, c in enumerate(cands):
            body = text_of(c)
            if not body.strip():
                continue
            m = re.search(r"option\s*\d*\s*[:\-]\s*(.+)", body, re.I)
            name = option_name(m.group(1) if m else body.strip().splitlines()[0])
            plans.append(OptionPlan(i, name, body, c.score("rubric_judge"), quality=c.score("quality") or 0.0))
        if not plans:
            return StepOutput(None, reason="no usable option", candidates=len(cands))
        searched = 0
        if base_table is not None:
            prompts = {p.index: self._proposal_prompt(ctx, base_table, target, p.text) for p in plans}
            searched += sum(await asyncio.gather(*(
                self._propose(ctx, p, prompts[p.index], base_table, target, f"option{p.index + 1}") for p in plans
            )))  # fmt: skip
            for r in range(1, self.refine_rounds + 1):
                if target is None or any(p.best is not None and p.best.met and p.best.plausible for p in plans):
                    break
                if ctx.search.budget.exhausted:
                    break
                top = sorted(plans, key=lambda p: (*p.key(), -p.index), reverse=True)[: self.refine_top]
                searched += sum(await asyncio.gather(*(
                    self._propose(ctx, p, refine_prompt(prompts[p.index], p, target), base_table, target,
                                  f"option{p.index + 1}-refine{r}", refined=r)
                    for p in top
                )))  # fmt: skip
        chosen = choose(plans)  # plans is not empty (checked above)
        for p in plans:
            if p.best is not None:
                self._tool_called(ctx, p.best.table, f"option {p.index + 1} ({p.name}): {p.outcome()}")
        lines = []
        for p in plans:
            score = "n/a" if p.judge is None else f"{p.judge:.2f}"
            mark = " — **chosen**" if p is chosen else ""
            body = re.sub(r"^\s*\**option\s*\d*\s*[:\-][^\n]*\n?", "", p.text, flags=re.I).strip()
            lines.append(f"- **{p.name}** (judge score {score}){mark}: {body}\n  - Financial model: {p.outcome()}")
        text = "\n".join(lines)
        best = chosen.best
        reaches = best is not None and best.plausible and (best.met or best.met is None)
        data: dict[str, Any] = {
            "options": [p.to_json() for p in plans],
            "chosen": plans.index(chosen),
            "chosen_text": chosen.text,
            "goal_met": None if best is None else best.met,
            "reaches_goal": reaches,
        }
        if best is not None:
            data["table"] = best.table.to_json()
        if best is None:
            why = (
                f"kept option {chosen.index + 1} of {len(cands)} by rubric judge; no option gave computable assumptions"
            )
        elif reaches:
            why = f"kept option {chosen.index + 1} of {len(cands)}: the financial model says {best.line or 'computed'}"
        else:
            why = (f"no option reaches the goal within the budget ({searched} proposals computed); the closest, "
                   f"option {chosen.index + 1}: {chosen.outcome()}")  # fmt: skip
        return StepOutput(str(chosen.name), text, True, why, data, candidates=len(cands) + searched,
                          strategy="options+financial_model+rubric_judge")  # fmt: skip

    def _proposal_prompt(self, ctx: StepContext, base: Projection, target: Target | None, strategy: str) -> str:
        baseline = base.assumptions
        goal = (
            "none stated" if target is None else f"{target.metric} +{target.pct}% by {baseline.period} {target.period}"
        )
        return PROJECTION_PROMPT.format(request=_request(ctx.request, 600), baseline=summary_line(base), goal=goal,
                                        strategy=quote(strategy, 600) or "(none)", period=baseline.period)  # fmt: skip

    async def _propose(
        self,
        ctx: StepContext,
        option: OptionPlan,
        prompt: str,
        base: Projection,
        target: Target | None,
        tag: str,
        *,
        refined: int = 0,
    ) -> int:
        """``extract_n`` assumption proposals for ``option``, each computed by the financial model and scored by
        what it gives (:class:`.proposals.Evaluated`); the option keeps its best. Returns the number sampled."""
        problem = dataclasses.replace(
            self._problem(ctx, prompt, ProjectionReader(base.assumptions), kind="json", max_tokens=self.json_tokens),
            id=f"{ctx.run_id}:{ctx.step.id}:{tag}",
        )
        evaluated: dict[str, Evaluated] = {}

        def verdict(_: Problem, c: Candidate) -> Verdict:
            ev = Evaluated.of(c.payload, project(c.payload), target)
            evaluated[c.id] = ev
            return Verdict(ev.value(), ev.verdict())

        select = best_valid(lambda c: c.id in evaluated)
        try:
            found = await run(best_of(self.extract_n, Verifier(verdict, name="projection"), select,
                                      prefix=PROJECTION_PREFIX), problem, ctx.search)  # fmt: skip
        except BudgetExceeded as exc:
            option.errors.append(f"budget spent: {exc}")
            return 0
        option.tried += len(found.candidates)
        option.errors += [str(c.parse_error) for c in found.candidates if c.id not in evaluated and c.parse_error]
        for ev in list(evaluated.values()):
            for version in (ev, ev.calibrated() if self.calibrate else None):
                if version is not None and option.offer(version):
                    option.refined = refined
        return len(found.candidates)

    async def _projection(self, ctx: StepContext, section: Section) -> StepOutput:
        """The chosen option's computed assumptions (from the options step, where the projection selected) or, when
        the options step computed none, proposals for the strategy scored the same way; the table, the goal line
        and a commentary checked against the table. Not verified when the plan misses the goal or is
        implausible."""
        base_table, target, facts = self._facts(ctx)
        if base_table is None:
            return StepOutput(None, reason="no baseline table (the baseline step failed)")
        notes: list[str] = []
        usable = True
        cands = 0
        picked = table_of(ctx.input_data("options"))
        if picked is not None:
            ev = Evaluated.of(picked.assumptions, picked, target)
            notes.append("assumptions of the chosen option, as the financial model selected them")
        else:
            strategy = ctx.input_text("strategy") or str(ctx.input_data("options").get("chosen_text") or "")
            option = OptionPlan(0, "strategy", strategy, None)
            prompt = self._proposal_prompt(ctx, base_table, target, strategy)
            cands += await self._propose(ctx, option, prompt, base_table, target, "strategy")
            for r in range(1, self.refine_rounds + 1):
                if option.best is not None and option.best.plausible and option.best.met is not False:
                    break
                if target is None or ctx.search.budget.exhausted:
                    break
                cands += await self._propose(ctx, option, refine_prompt(prompt, option, target), base_table, target,
                                             f"strategy-refine{r}", refined=r)  # fmt: skip
            if option.best is None:
                ev, usable = Evaluated.of(base_table.assumptions, base_table, target), False
                notes.append("no valid proposal from the model: the table keeps the baseline unchanged")
            else:
                ev = option.best
        table = ev.table
        self._tool_called(ctx, table, table.markdown())
        line, met = ev.line, ev.met
        reaches = usable and ev.plausible and met is not False
        facts_text = f"{facts}\nProjection table:\n{table.markdown()}\n{line}"
        chosen, check, prose = await self._prose(ctx, section, facts_text, table, goal=target)
        commentary = text_of(chosen) if chosen is not None else ""
        flags = [f"Not plausible: {p}." for p in ev.problems]
        text = "\n\n".join(
            p
            for p in (
                "**Assumptions**\n\n" + assumptions_markdown(table.assumptions),
                table.markdown(),
                line,
                " ".join(flags),
                commentary,
            )
            if p
        )
        data = {
            "table": table.to_json(),
            "goal_met": met,
            "reaches_goal": reaches,
            "reached": None if ev.reached is None else str(ev.reached),
            "problems": list(ev.problems),
            "line": line,
            "notes": notes,
            "commentary": commentary,
        }
        out = self._output(section, chosen, check, prose, data)
        if out.answer is None:  # no commentary: the table and the goal line still stand, and say what they say
            out = dataclasses.replace(out, verified=True, data=data, reason="no commentary written")
        answer = line or summary_line(table, len(table.rows) - 1)
        why = [] if reaches else ["the plan does not reach the goal" if met is False else "the plan is not usable"]
        return dataclasses.replace(
            out,
            answer=answer,
            text=text,
            verified=out.verified and reaches,
            reason="; ".join([*why, *notes, *flags, out.reason]),
            candidates=cands + len(prose),
        )

    def _document(self, ctx: StepContext) -> StepOutput:
        rendered = render_document(ctx.request, ctx.inputs)
        doc, check, missing = rendered.doc, rendered.check, rendered.missing
        path = ctx.artifact_path(ARTIFACT)
        path.write_text(doc, encoding="utf-8")
        consistent = check is None or check.consistent
        reason = (check.summary() if check else "no table to check against") + (
            f"; sections missing: {', '.join(missing)}" if missing else ""
        )
        if rendered.corrections:
            reason += f"; {len(rendered.corrections)} figure(s) put right: " + "; ".join(rendered.corrections)
        data = {"path": str(path), "numbers": check.to_json() if check else None, "missing": missing,
                "corrections": rendered.corrections}  # fmt: skip
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
        doc = (doc_result.text if doc_result is not None else "") or render_document(request, results).doc
        lines = []
        for step in plan.steps:
            r = results.get(step.id)
            if r is None:
                lines.append(f"- {step.id}: failed (did not run)")
                continue
            state = "verified" if r.verified else "unverified" if r.answer is not None else "failed"
            lines.append(f"- {step.id}: {state} ({r.reason[:300]})")
        return (doc or None), "\n".join(lines)
