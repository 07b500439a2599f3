"""The business plan as one Markdown document, built from the step results and re-checked as a whole against
the final table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from longthink.domains.business_plan.claims import NumberCheck, check_numbers
from longthink.domains.business_plan.corrections import correct_numbers
from longthink.domains.business_plan.figures import table_of, target_of
from longthink.domains.business_plan.sections import DOCUMENT_TITLES, document_order_for, plan_kind
from longthink.domains.pipeline import request_text
from longthink.outcome import StepOutcome

ARTIFACT = "business_plan.md"
"""The document's file name in the run's artifact directory."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """The Markdown document, its whole-document number check against the final table (the sections that cite
    figures, after correction), the sections that are missing, and the figures put right
    (:mod:`.corrections`): what each section's text said and what the document says instead."""

    doc: str
    check: NumberCheck | None
    missing: list[str]
    corrections: list[str] = field(default_factory=list)


def render_document(request: str, results: Mapping[str, StepOutcome]) -> Rendered:
    """The document from the step results: the sections in order, each section that cites figures checked
    against the final table (the projection's; the baseline's before there is one) and its figures that disagree
    put right (:func:`.corrections.correct_numbers`), then the whole re-checked."""
    title = request_text(request).strip().splitlines()[0][:100] if request_text(request).strip() else "Business plan"
    heading = DOCUMENT_TITLES[plan_kind(request_text(request))]
    parts = [f"# {heading}\n\n_Request: {title}_", *banners(results)]
    final = table_of(_data(results, "projection"))
    base_data = _data(results, "baseline")
    target = target_of(base_data) if isinstance(base_data, Mapping) else None
    table = final or table_of(base_data if isinstance(base_data, Mapping) else {})
    periods = None if final is not None else [0]
    ignore = (target.pct,) if target else ()
    missing: list[str] = []
    checked_text: list[str] = []
    corrections: list[str] = []
    for i, section in enumerate(document_order_for(request_text(request)), 1):
        r = results.get(section.id)
        body = r.text.strip() if r is not None else ""
        if not body:
            missing.append(section.id)
            body = f"_(not written: {(r.reason if r is not None else '') or 'step did not run'})_"
        elif section.checks_numbers:  # the projection's assumptions and table are the tool's own: its commentary
            data = r.data if r is not None else {}
            prose = str(data.get("commentary") or "") if section.id == "projection" else body
            # the projection's commentary is put right inside its section (only where the section holds it as is)
            if table is not None and prose.strip() and prose.strip() in body:
                fixed = correct_numbers(prose, table, periods=periods, growth=final is not None, ignore_growth=ignore)
                if fixed.touched:
                    corrections += [f"{section.title}: {line}" for line in (*fixed.changes, *(
                        f"removed \u201c{s}\u201d" for s in fixed.removed))]  # fmt: skip
                    body = body.replace(prose.strip(), fixed.text)
                    prose = fixed.text
            checked_text.append(prose)
        parts.append(f"## {i}. {section.title}\n\n{body}")
    check = None
    if table is not None:
        check = check_numbers("\n\n".join(checked_text), table, periods=periods, growth=final is not None,
                              ignore_growth=ignore)  # fmt: skip
        verdict = (
            "all agree with the table" if check.consistent else f"{len(check.disagreements)} disagree with the table"
        )
        fixed_note = ""
        if corrections:
            fixed_note = (f" The writer's figures were put right where they disagreed ({len(corrections)}): "
                          + "; ".join(corrections) + ".")  # fmt: skip
        parts.append(f"---\n\n_Number check: {len(check.verdicts)} figures refer to the table; {verdict}._"
                     + fixed_note)  # fmt: skip
    return Rendered("\n\n".join(parts) + "\n", check, missing, corrections)


def _data(results: Mapping[str, StepOutcome], step_id: str) -> Mapping[str, Any]:
    out = results.get(step_id)
    return out.data if out is not None else {}


ASSUMED = ("default", "proposed by the model", "assum")
"""Words of a baseline note that mark a figure the request did not state."""


def banners(results: Mapping[str, StepOutcome]) -> list[str]:
    """What the reader must know before the plan, computed from the steps (never written by the model): that
    the plan does not reach its goal (with the best reachable figure), and which figures are assumptions."""
    out = []
    proj = _data(results, "projection")
    problems = "; ".join(str(p) for p in proj.get("problems") or [])
    if proj.get("reaches_goal") is False and proj.get("goal_met") is None:  # no goal stated: only implausible
        out.append(
            "> **The projection is not plausible.** No option explored gave a believable projection within the "
            f"budget; this is the closest found, with its real figures: {problems}".rstrip(": ")
        )
    elif proj.get("reaches_goal") is False:
        line = str(proj.get("line") or "")
        why = line if proj.get("goal_met") is False else "its projection is not plausible: " + problems
        out.append(
            "> **The goal is not reached.** No option explored reached it within the budget; this is the closest "
            f"plan found, with its real figures, not a plan that meets the goal. {why}".rstrip()
        )
    notes = [str(n) for n in _data(results, "baseline").get("notes") or []]
    assumed = [n for n in notes if any(w in n.lower() for w in ASSUMED)]
    if assumed:
        out.append(
            "> **Assumed figures.** The request does not state every baseline figure, so these are assumptions, "
            "not facts about the business: " + "; ".join(assumed) + ". Every figure computed from them (the "
            "baseline, the table, the goal) is assumed too; state your own figures to replace them."
        )
    return out
