"""The business-plan pipeline: baseline -> market, situation -> options -> strategy -> projection -> risks,
milestones -> document.

- ``baseline``: the request's figures win; what it does not state the model proposes as JSON (``extract_n``
  samples, the one that fills most fields from the model's own valid numbers is kept), validated; the
  financial model computes the baseline row.
- Prose sections (situation, market, strategy, risks, milestones and the projection's commentary): best-of-N
  in one batched call, each candidate scored by an LLM judge with the section's rubric (``rubric_judge``,
  from logprobs on the embedded backend) and, where the section cites figures, by the number-consistency
  verifier against the table (``numbers``). A candidate whose figures disagree with the table loses to any
  that agrees; the chosen one is marked unverified when none agrees.
- ``options``: ``options_k`` strategies sampled, each judged; all are kept in the document with their scores,
  the best-scored one becomes the chosen strategy.
- ``projection``: the model proposes the strategy's assumptions as JSON (growth, levers, investments); the
  tool computes the table; the proposal that is valid and meets the request's goal with the smallest uplift
  wins. Sections before it are checked against the baseline only.
- ``document``: the Markdown document, re-checked as a whole against the final table, written to
  ``business_plan.md`` in the run's artifact directory.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from longthink.domains.business_plan.request import (
    RequestFacts,
    Target,
    baseline_assumptions,
    plan_assumptions,
    read_request,
)
from longthink.domains.business_plan.sections import (
    BASELINE_PROMPT,
    BY_ID,
    DOCUMENT_ORDER,
    PROJECTION_PROMPT,
    SECTIONS,
    SYSTEM,
    Section,
)
from longthink.domains.pipeline import StepContext, StepOutput, attached_files, request_text
from longthink.errors import BudgetExceeded
from longthink.llm.types import Message
from longthink.planners.plan import Plan, PlanStep
from longthink.rewards.judge import Judge
from longthink.rewards.verifier import Verdict, Verifier
from longthink.search.base import result
from longthink.search.types import Candidate, Problem
from longthink.tools.financial_model import (
    Assumptions,
    NumberCheck,
    Projection,
    assumptions_markdown,
    check_numbers,
    project,
)

ARTIFACT = "business_plan.md"


def _request(request: str, limit: int) -> str:
    """The request's prose and attached files, cut to ``limit`` characters for short prompts."""
    text = request_text(request)
    for name, content in attached_files(request).items():
        text += f"\n\nFile {name}:\n{content}"
    return text if len(text) <= limit else text[:limit].rstrip() + " [...]"


def clean_section(text: str, title: str) -> str:
    """A section's text without a repeated heading, code fences or Markdown tables (the financial model's table
    is the document's only table: a model's copy of it can only add errors)."""
    lines = [ln for ln in text.strip().splitlines() if not ln.strip().startswith(("```", "|"))]
    while lines and (
        not lines[0].strip()
        or (lines[0].lstrip().startswith("#") and len(lines[0]) < 80)
        or lines[0].strip().strip("*:").lower() == title.lower()
    ):
        lines.pop(0)
    return "\n".join(lines).strip()


def _option_name(line: str, limit: int = 60) -> str:
    """An option's name: its heading line without markup, cut at a word boundary."""
    name = line.strip(" *#:")
    if len(name) <= limit:
        return name
    return name[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def _trim(text: str) -> str:
    """Drop an unfinished last sentence (a completion cut at its token limit)."""
    cut = max(text.rfind(". "), text.rfind(".\n"), text.rfind("\n- "), text.rfind(".)"))
    if text.rstrip().endswith((".", "!", "?", ")")) or cut < len(text) // 2:
        return text.strip()
    return text[: cut + 1].strip()


def _table(data: Mapping[str, Any]) -> Projection | None:
    raw = data.get("table")
    if not isinstance(raw, Mapping):
        return None
    try:
        return Projection.from_json(raw)
    except (ValueError, KeyError, TypeError):
        return None


def _target(data: Mapping[str, Any]) -> Target | None:
    raw = data.get("target")
    if not isinstance(raw, Mapping):
        return None
    return Target(raw["metric"], Decimal(str(raw["pct"])), int(raw["period"]))


def target_line(table: Projection, target: Target | None) -> tuple[str, bool | None]:
    """One sentence computed from the table: the goal and whether the projection meets it."""
    if target is None or target.period >= len(table.rows):
        return "", None
    row, base = table.rows[target.period], table.rows[0]
    if target.metric == "margin":
        change = row.margin - base.margin
        met = change >= target.pct
        return (
            f"Goal: margin +{target.pct} points by {row.label}. The projection gives a margin of {row.margin}% "
            f"in {row.label} against {base.margin}% at baseline: goal {'met' if met else 'not met'}.",
            met,
        )
    growth = table.growth(target.metric, target.period, base=0)
    met = growth is not None and growth >= target.pct
    name = target.metric.replace("_", " ")
    return (
        f"Goal: {name} +{target.pct}% by {row.label}. The projection gives {name} of "
        f"{table.money(row.value(target.metric))} in {row.label} against {table.money(base.value(target.metric))} "
        f"at baseline ({growth if growth is not None else 'n/a'}% growth): goal {'met' if met else 'not met'}.",
        met,
    )


def _summary_line(table: Projection, period: int = 0) -> str:
    r = table.rows[period]
    return (
        f"{r.label}: revenue {table.money(r.revenue)}, variable costs {table.money(r.variable_costs)}, fixed costs "
        f"{table.money(r.fixed_costs)}, profit {table.money(r.profit)} (margin {r.margin}%)"
    )


@dataclass(frozen=True, slots=True)
class BusinessPlanPipeline:
    """The pack's pipeline. ``n``: candidates per prose section; ``options_k``: strategies explored;
    ``extract_n``: JSON proposals for the baseline and the projection; token limits per section and per JSON
    proposal; ``judge_scale``: the rubric judge's 1..K scale; ``request_chars``: how much of the request the
    prompts quote."""

    n: int = 2
    options_k: int = 3
    extract_n: int = 2
    section_tokens: int = 220
    json_tokens: int = 160
    judge_scale: int = 5
    request_chars: int = 1200

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
    def _problem(self, ctx: StepContext, user: str, *, kind: str = "text", max_tokens: int | None = None) -> Problem:
        return Problem(
            f"{ctx.run_id}:{ctx.step.id}",
            (Message.system(SYSTEM), Message.user(user)),
            "json" if kind == "json" else "text",
            max_tokens=max_tokens or self.section_tokens,
        )

    async def _draw(
        self, ctx: StepContext, problem: Problem, n: int, *, temperature: float | None = None
    ) -> list[Candidate]:
        fit = ctx.search.budget.fit_n(n, problem.max_tokens, 0)
        if fit == 0:
            raise BudgetExceeded(f"{ctx.search.budget.describe()}")
        [cands] = await ctx.search.sample(problem, fit, strategy="best_of_n", temperature=temperature)
        return cands

    def _judge(self, ctx: StepContext, section: Section) -> Judge:
        """The section's rubric judge, on the separate judge model when one is set (else the policy model)."""
        return Judge(
            ctx.search.judge_model,
            rubric=section.rubric,
            scale=self.judge_scale,
            name="rubric_judge",
            budget=ctx.search.budget,
        )

    async def _judged(
        self, ctx: StepContext, section: Section, problem: Problem, cands: list[Candidate]
    ) -> list[Candidate]:
        """Candidates scored by the section's rubric judge (left unscored when the budget cannot pay for it)."""
        question = (
            f"Business plan request: {_request(ctx.request, 400)}\n\nSection '{section.title}': {section.instruction}"
        )
        judge_problem = dataclasses.replace(problem, prompt=(Message.user(question),))
        try:
            return await ctx.search.score(judge_problem, cands, self._judge(ctx, section))
        except BudgetExceeded:  # the section is still written; its reason says "not judged"
            return cands

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
        """Best-of-N for one prose section under the rubric judge and the number verifier."""
        before = ctx.search.budget.spent.copy()
        user = (
            f"Request: {_request(ctx.request, self.request_chars)}\n\n{facts}\n\nWrite the section "
            f"'{section.title}'. {section.instruction} At most 150 words."
        )
        problem = self._problem(ctx, user)
        raw = await self._draw(ctx, problem, self.n)
        cands = [dataclasses.replace(c, text=_trim(clean_section(c.text, section.title))) for c in raw]
        cands = await self._judged(ctx, section, problem, cands)
        checks: dict[str, NumberCheck] = {}
        if table is not None and section.checks_numbers:
            ignore = (goal.pct,) if goal is not None else ()

            def verdict(_: Problem, c: Candidate) -> Verdict:
                check = check_numbers(c.text, table, periods=periods, growth=growth, ignore_growth=ignore)
                checks[c.id] = check
                return Verdict(1.0 if check.consistent else 0.0, check.summary())

            cands = await ctx.search.score(problem, cands, Verifier(verdict, name="numbers"))
        chosen = (
            max(
                enumerate(cands),
                key=lambda ic: (
                    ic[1].score("numbers") if checks else 1.0,
                    ic[1].score("rubric_judge") or 0.0,
                    bool(ic[1].text.strip()),
                    -ic[0],
                ),
            )[1]
            if cands
            else None
        )
        why = f"best of {len(cands)} by numbers, then rubric_judge ({chosen.score('rubric_judge') if chosen else None})"
        result(ctx.search, problem, "best_of_n", cands, chosen, why, before)
        return chosen, checks.get(chosen.id) if chosen else None, cands

    def _output(
        self,
        section: Section,
        chosen: Candidate | None,
        check: NumberCheck | None,
        cands: list[Candidate],
        extra: Mapping[str, Any] | None = None,
    ) -> StepOutput:
        if chosen is None or not chosen.text.strip():
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
        first = chosen.text.strip().splitlines()[0][:120]
        return StepOutput(
            first,
            chosen.text,
            consistent,
            reason,
            data,
            candidates=len(cands),
            strategy="best_of_n+rubric_judge+numbers",
        )

    def _facts(self, ctx: StepContext) -> tuple[Projection | None, Target | None, str]:
        base = ctx.input_data("baseline")
        table = _table(base)
        if table is None:
            return None, None, ""
        return table, _target(base), f"Baseline figures: {_summary_line(table)}."

    # -- steps -------------------------------------------------------------------------------------------------
    async def _baseline(self, ctx: StepContext) -> StepOutput:
        facts: RequestFacts = read_request(request_text(ctx.request))
        complete = (
            "revenue" in facts.figures
            and ({"profit", "margin", "fixed_costs", "total_costs"} & facts.figures.keys())
            and "variable_cost_pct" in facts.figures
        )
        proposals: list[str | None] = [None]
        cands: list[Candidate] = []
        if not complete:
            problem = self._problem(
                ctx,
                BASELINE_PROMPT.format(request=_request(ctx.request, self.request_chars)),
                kind="json",
                max_tokens=self.json_tokens,
            )
            cands = await self._draw(ctx, problem, self.extract_n)

            def verdict(_: Problem, c: Candidate) -> Verdict:
                try:
                    notes = baseline_assumptions(facts, c.text)[1]
                except ValueError as exc:
                    return Verdict(0.0, f"invalid: {exc}")
                used = sum("proposed by the model" in n or "from the request" in n or "derived" in n for n in notes)
                return Verdict(used / 3, "; ".join(notes))

            cands = await ctx.search.score(problem, cands, Verifier(verdict, name="assumptions"))
            ranked = sorted(cands, key=lambda c: -(c.score("assumptions") or 0.0))
            proposals = [c.text for c in ranked] + [None]
        notes: list[str] = []
        assumptions: Assumptions | None = None
        errors = []
        for text in proposals:
            try:
                assumptions, notes = baseline_assumptions(facts, text)
                break
            except ValueError as exc:
                errors.append(str(exc))
        if assumptions is None:
            return StepOutput(None, reason="no valid baseline: " + "; ".join(errors), candidates=len(cands))
        table = project(assumptions)
        target = facts.target
        data = {
            "assumptions": assumptions.model_dump(mode="json"),
            "table": table.to_json(),
            "notes": notes,
            "target": None
            if target is None
            else {"metric": target.metric, "pct": str(target.pct), "period": target.period},
        }
        ctx.emit(
            "tool_called",
            tool="financial_model",
            args={"assumptions": data["assumptions"]},
            ok=True,
            result=_summary_line(table),
            error=None,
            latency_s=0.0,
        )
        defaults = [n for n in notes if "default" in n]
        reason = "baseline: " + "; ".join(notes)
        text = f"{_summary_line(table)}\n\nSources: " + "; ".join(notes)
        return StepOutput(
            _summary_line(table),
            text,
            True,
            reason,
            data,
            candidates=len(cands),
            strategy="extract+financial_model" + ("+defaults" if defaults else ""),
        )

    async def _section(self, ctx: StepContext, section: Section) -> StepOutput:
        table, target, facts = self._facts(ctx)
        proj = _table(ctx.input_data("projection"))
        lines = [facts] if facts else []
        if target is not None:
            lines.append(f"Goal: {target.metric} +{target.pct}% by period {target.period}.")
        if proj is not None:
            lines.append(f"Projection: {_summary_line(proj, 1)}. {target_line(proj, target)[0]}")
        for dep in section.depends_on:
            if dep in ("baseline", "projection"):
                continue
            prior = str(ctx.inputs.get(dep, {}).get("text") or "")
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
        context = [facts] + [
            f"{BY_ID[d].title}: {str(ctx.inputs.get(d, {}).get('text') or '')[:400]}" for d in section.depends_on
        ]
        user = (
            f"Request: {_request(ctx.request, self.request_chars)}\n\n"
            + "\n".join(context)
            + f"\n\n{section.instruction}"
        )
        problem = self._problem(ctx, user, max_tokens=min(self.section_tokens, 150))
        before = ctx.search.budget.spent.copy()
        raw = await self._draw(ctx, problem, self.options_k, temperature=1.0)
        cands = [dataclasses.replace(c, text=_trim(clean_section(c.text, section.title))) for c in raw]
        cands = await self._judged(ctx, section, problem, cands)
        options = []
        for c in cands:
            m = re.search(r"option\s*\d*\s*[:\-]\s*(.+)", c.text, re.I)
            name = _option_name(m.group(1) if m else c.text.strip().splitlines()[0] if c.text.strip() else "(empty)")
            options.append({"id": c.id, "name": name, "text": c.text, "judge": c.score("rubric_judge")})
        usable = [i for i, o in enumerate(options) if str(o["text"]).strip()]
        if not usable:
            return StepOutput(None, reason="no usable option", candidates=len(cands))
        best = max(usable, key=lambda i: (options[i]["judge"] or 0.0, -i))
        result(
            ctx.search,
            problem,
            "best_of_n",
            cands,
            cands[best],
            f"best of {len(cands)} options by rubric_judge",
            before,
        )
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
        strategy = str(ctx.inputs.get("strategy", {}).get("text") or "")[:600]
        goal = (
            "none stated" if target is None else f"{target.metric} +{target.pct}% by {baseline.period} {target.period}"
        )
        user = PROJECTION_PROMPT.format(
            request=_request(ctx.request, 600),
            baseline=_summary_line(base_table),
            goal=goal,
            strategy=strategy or "(none)",
            period=baseline.period,
        )
        problem = self._problem(ctx, user, kind="json", max_tokens=self.json_tokens)
        before = ctx.search.budget.spent.copy()
        cands = await self._draw(ctx, problem, self.extract_n)
        tables: dict[str, Projection] = {}

        def verdict(_: Problem, c: Candidate) -> Verdict:
            try:
                table = project(plan_assumptions(baseline, c.text))
            except ValueError as exc:
                return Verdict(0.0, f"invalid assumptions: {exc}")
            tables[c.id] = table
            line, met = target_line(table, target)
            stretch = sum(abs(lv.revenue_uplift_pct) + abs(lv.cost_saving_pct) for lv in table.assumptions.levers)
            stretch += abs(table.assumptions.revenue_growth_pct)
            value = (1.0 if met or met is None else 0.5) - min(float(stretch), 100.0) / 1000
            return Verdict(value, line or "valid assumptions")

        cands = await ctx.search.score(problem, cands, Verifier(verdict, name="assumptions"))
        valid = [c for c in cands if c.id in tables]
        notes = []
        if valid:
            best = max(valid, key=lambda c: c.score("assumptions") or 0.0)
            table = tables[best.id]
        else:
            table = project(baseline)
            notes.append("no valid proposal from the model: the table keeps the baseline unchanged")
        result(
            ctx.search,
            problem,
            "best_of_n",
            cands,
            best if valid else None,
            f"{len(valid)} of {len(cands)} proposals valid",
            before,
        )
        ctx.emit(
            "tool_called",
            tool="financial_model",
            args={"assumptions": table.assumptions.model_dump(mode="json")},
            ok=True,
            result=table.markdown(),
            error=None,
            latency_s=0.0,
        )
        line, met = target_line(table, target)
        facts_text = f"{facts}\nProjection table:\n{table.markdown()}\n{line}"
        chosen, check, prose = await self._prose(ctx, section, facts_text, table, goal=target)
        commentary = chosen.text if chosen is not None else ""
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
        answer = line or _summary_line(table, len(table.rows) - 1)
        return dataclasses.replace(
            out,
            answer=answer,
            text=text,
            verified=out.verified and bool(valid),
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

    def synthesize(self, request: str, plan: Plan, results: Mapping[str, Mapping[str, Any]]) -> tuple[str | None, str]:
        doc_result = results.get("document") or {}
        doc = str(doc_result.get("text") or "") or render_document(request, results)[0]
        lines = []
        for step in plan.steps:
            r = results.get(step.id) or {}
            state = "verified" if r.get("verified") else "unverified" if r.get("answer") is not None else "failed"
            lines.append(f"- {step.id}: {state} ({str(r.get('reason') or '')[:300]})")
        return (doc or None), "\n".join(lines)


def render_document(
    request: str, results: Mapping[str, Mapping[str, Any]]
) -> tuple[str, NumberCheck | None, list[str]]:
    """The Markdown document from the step results, its whole-document number check against the final
    table (the sections that cite figures), and the sections that are missing."""
    title = request_text(request).strip().splitlines()[0][:100] if request_text(request).strip() else "Business plan"
    parts = [f"# Business plan\n\n_Request: {title}_"]
    missing = []
    checked_text = []
    for i, section in enumerate(DOCUMENT_ORDER, 1):
        r = results.get(section.id) or {}
        body = str(r.get("text") or "").strip()
        if not body or (r.get("answer") is None and not body):
            missing.append(section.id)
            body = f"_(not written: {r.get('reason') or 'step did not run'})_"
        elif section.checks_numbers:  # the projection's assumptions and table are the tool's own: its commentary
            data = r.get("data") or {}
            checked_text.append(str(data.get("commentary") or "") if section.id == "projection" else body)
        parts.append(f"## {i}. {section.title}\n\n{body}")
    final = _table((results.get("projection") or {}).get("data") or {})
    base_data = (results.get("baseline") or {}).get("data") or {}
    target = _target(base_data) if isinstance(base_data, Mapping) else None
    table = final or _table(base_data if isinstance(base_data, Mapping) else {})
    check = None
    if table is not None:
        periods = None if final is not None else [0]
        check = check_numbers(
            "\n\n".join(checked_text),
            table,
            periods=periods,
            growth=final is not None,
            ignore_growth=(target.pct,) if target else (),
        )
        verdict = (
            "all agree with the table" if check.consistent else f"{len(check.disagreements)} disagree with the table"
        )
        parts.append(f"---\n\n_Number check: {len(check.verdicts)} figures refer to the table; {verdict}._")
    return "\n\n".join(parts) + "\n", check, missing
