"""The typed plan (pydantic at the boundary: model output is parsed into it) and its repair.

A plan is a DAG of steps with ids, goals, dependencies, the kind of step, the answer type, a success check and
an optional suggested strategy. Model output is never trusted: :func:`parse_plan` accepts JSON (bare or
fenced), repairs what it can (missing ids, dangling or self dependencies, duplicate ids, string fields given as
lists), falls back to a numbered or bulleted list read as a chain of steps, and otherwise returns the reason it
could not, so the planner can re-sample instead of crashing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from longthink.answers import AnswerKind, extract_json

MAX_STEPS = 12
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class PlanStep(BaseModel):
    id: str
    goal: str = Field(min_length=1, max_length=2000)
    depends_on: list[str] = Field(default_factory=list)
    kind: str = "reason"
    answer_kind: AnswerKind = "text"
    success_check: str = ""
    strategy: str | None = None
    difficulty: float = Field(0.5, ge=0.0, le=1.0)
    tool: str | None = None
    tool_args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError(f"step id {value!r} must be 1-40 letters, digits, '_', '-' or '.'")
        return value


class Plan(BaseModel):
    """A validated plan: unique ids, existing dependencies, no cycles, 1..12 steps."""

    goal: str = ""
    steps: list[PlanStep] = Field(min_length=1, max_length=MAX_STEPS)

    @model_validator(mode="after")
    def _dag(self) -> Plan:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate step ids in {ids}")
        known = set(ids)
        for s in self.steps:
            missing = [d for d in s.depends_on if d not in known]
            if missing:
                raise ValueError(f"step {s.id!r} depends on unknown steps {missing}")
            if s.id in s.depends_on:
                raise ValueError(f"step {s.id!r} depends on itself")
        self.layers()  # raises on a cycle
        return self

    def step(self, step_id: str) -> PlanStep:
        return next(s for s in self.steps if s.id == step_id)

    def layers(self) -> list[list[PlanStep]]:
        """Steps grouped so that each group depends only on earlier groups (independent steps together)."""
        done: set[str] = set()
        remaining = list(self.steps)
        out: list[list[PlanStep]] = []
        while remaining:
            ready = [s for s in remaining if set(s.depends_on) <= done]
            if not ready:
                raise ValueError(f"the plan has a dependency cycle among {[s.id for s in remaining]}")
            out.append(ready)
            done |= {s.id for s in ready}
            remaining = [s for s in remaining if s.id not in done]
        return out

    def ready(self, finished: set[str]) -> list[PlanStep]:
        """Steps not finished whose dependencies all are."""
        return [s for s in self.steps if s.id not in finished and set(s.depends_on) <= finished]


@dataclass(frozen=True, slots=True)
class ParsedPlan:
    plan: Plan | None
    error: str | None = None
    repaired: tuple[str, ...] = ()


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _repair(raw: Any, notes: list[str]) -> dict[str, Any] | None:
    """Coerce a JSON value into the plan shape, noting every repair."""
    if isinstance(raw, list):
        raw = {"steps": raw}
        notes.append("wrapped a bare list of steps")
    if not isinstance(raw, dict):
        return None
    steps_raw = raw.get("steps") or raw.get("plan") or raw.get("tasks")
    if not isinstance(steps_raw, list) or not steps_raw:
        return None
    steps: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, item in enumerate(steps_raw[:MAX_STEPS]):
        if isinstance(item, str):
            item = {"goal": item}
        if not isinstance(item, dict):
            continue
        goal = _as_text(item.get("goal") or item.get("description") or item.get("task") or item.get("name"))
        if not goal.strip():
            notes.append(f"dropped step {i + 1} without a goal")
            continue
        sid = str(item.get("id") or f"s{i + 1}").strip().replace(" ", "_")[:40]
        if not _ID.match(sid) or sid in seen:
            notes.append(f"renamed step id {sid!r}")
            sid = f"s{i + 1}"
            while sid in seen:
                sid += "x"
        seen.add(sid)
        deps = item.get("depends_on", item.get("dependencies", []))
        deps = [str(d) for d in (deps if isinstance(deps, list) else [deps]) if d is not None]
        step = {k: v for k, v in item.items() if k in PlanStep.model_fields}
        step.update(id=sid, goal=goal.strip(), depends_on=deps)
        if "success_check" in step:
            step["success_check"] = _as_text(step["success_check"])
        if step.get("answer_kind") not in (None, "number", "choice", "code", "json", "expression", "text"):
            notes.append(f"unknown answer_kind {step['answer_kind']!r} -> text")
            step["answer_kind"] = "text"
        if not isinstance(step.get("difficulty", 0.5), int | float):
            step.pop("difficulty")
        steps.append(step)
    ids = {s["id"] for s in steps}
    for s in steps:
        kept = [d for d in s["depends_on"] if d in ids and d != s["id"]]
        if kept != s["depends_on"]:
            notes.append(f"dropped unknown or self dependencies of {s['id']!r}")
            s["depends_on"] = kept
    return {"goal": _as_text(raw.get("goal")), "steps": steps}


_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•]|step\s*\d+\s*[:.)-])\s*(.+)$", re.I)


def _from_list(text: str) -> list[str]:
    items = []
    for line in text.splitlines():
        m = _LIST_ITEM.match(line)
        if m and len(m.group(1).strip()) > 3:
            items.append(m.group(1).strip().strip("*").strip())
    return items[:MAX_STEPS]


def parse_plan(text: str, *, goal: str = "") -> ParsedPlan:
    """Parse a model's plan: JSON first (repaired), then a numbered list as a chain; never raises."""
    notes: list[str] = []
    parsed = extract_json(text)
    errors: list[str] = []
    if parsed.value is not None:
        shaped = _repair(json.loads(parsed.value), notes)
        if shaped is not None:
            shaped["goal"] = shaped["goal"] or goal
            try:
                return ParsedPlan(Plan.model_validate(shaped), None, tuple(notes))
            except ValidationError as exc:
                errors.append("; ".join(e["msg"] for e in exc.errors()))
                # a cycle or other structural fault: fall back to the listed order as a chain
                steps = shaped["steps"]
                for i, s in enumerate(steps):
                    s["depends_on"] = [steps[i - 1]["id"]] if i else []
                notes.append("replaced dependencies by the listed order")
                try:
                    return ParsedPlan(Plan.model_validate(shaped), None, tuple(notes))
                except ValidationError as exc2:
                    errors.append("; ".join(e["msg"] for e in exc2.errors()))
        else:
            errors.append("JSON without a list of steps")
    items = _from_list(text)
    if len(items) >= 1:
        steps = [{"id": f"s{i + 1}", "goal": g, "depends_on": [f"s{i}"] if i else []} for i, g in enumerate(items)]
        try:
            plan = Plan.model_validate({"goal": goal, "steps": steps})
            return ParsedPlan(plan, None, (*notes, "read a numbered list as a chain of steps"))
        except ValidationError as exc:
            errors.append("; ".join(e["msg"] for e in exc.errors()))
    return ParsedPlan(None, "; ".join(errors) or "no plan found (neither JSON steps nor a numbered list)")


def single_step_plan(request: str, answer_kind: AnswerKind = "text") -> Plan:
    """The fallback plan: solve the request as one step."""
    return Plan(goal=request, steps=[PlanStep(id="s1", goal=request, answer_kind=answer_kind)])
