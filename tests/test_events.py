"""The event schema: one typed model per kind, stamped by the bus, round-tripped through JSON, documented by a
JSON Schema file generated from the models (and kept equal to them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from longthink import events as ev
from longthink.budget import Spend
from longthink.outcome import StepOutcome
from longthink.search.types import Candidate

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "events.schema.json"

EXAMPLES: list[ev.EventBase] = [
    ev.RunStarted(request="q", answer_kind="number", domain="general", options={"strategy": "auto"}),
    ev.RunResumed(decision="approve"),
    ev.PlanProposed(plan_id="p/1", plan={"steps": []}, score=0.5, valid=True, scores={"structure": 0.5}),
    ev.PlanSelected(plan_id="p/1", plan={"steps": []}, index=0, reason="best"),
    ev.ApprovalRequested(plan={"steps": []}, error=None),
    ev.ClarificationRequested(
        questions=[ev.Question(id="yearly_revenue", text="Revenue?", default="$1,000,000 revenue", why="baseline")]
    ),
    ev.StepStarted(step_id="s1", goal="g", strategy="cot", prompt=[ev.ChatMessage(role="user", content="hi")]),
    ev.CandidateGenerated(
        problem_id="p",
        candidate=Candidate(
            id="p/0",
            problem_id="p",
            index=0,
            text="Answer: 1",
            answer="1",
            parse_error=None,
            finish_reason="stop",
            prompt_tokens=4,
            completion_tokens=3,
            latency_s=0.01,
            model="m",
            prompt_hash="h",
            payload={"value": 1},
        ),
    ),
    ev.CandidateScored(candidate_id="p/0", scorer="judge", value=0.9, steps=[0.5, None]),
    ev.SearchFinished(problem_id="p", strategy="cot", answer="1", spend=Spend(completion_tokens=3)),
    ev.StepFinished(step_id="s1", outcome=StepOutcome(step_id="s1", answer="1", verified=True)),
    ev.Verification(step_id="s1", passed=True, reason="ok"),
    ev.Replan(reason="failed", attempt=1),
    ev.ToolCalled(call_id="c1", tool="calculator", args={"expression": "1+1"}, result="2"),
    ev.BudgetUpdate(spend=Spend(completion_tokens=3), cap_tokens=100),
    ev.Answer(status="done", answer="1", spend=Spend()),
    ev.Error(message="boom", error_type="RuntimeError"),
]


def test_every_kind_has_an_example_and_a_unique_kind() -> None:
    assert {e.kind for e in EXAMPLES} == ev.EVENT_KINDS  # type: ignore[attr-defined]
    assert len(ev.EVENT_TYPES) == len(ev.EVENT_KINDS)


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_the_bus_stamps_and_json_round_trips(event: Any) -> None:
    bus, rec = ev.EventBus("run-1", first_seq=5), ev.Recorder()
    bus.subscribe(rec)
    stamped = bus.emit(event, step_id="given")
    assert stamped.run_id == "run-1" and stamped.seq == 5 and stamped.ts > 0
    assert stamped.step_id == (event.step_id or "given")  # an event's own step id wins
    assert rec.events == [stamped]
    wire = json.loads(json.dumps(ev.to_json(stamped)))
    assert ev.parse_event(wire) == stamped
    assert ev.event_from_row(stamped.kind, "run-1", 5, stamped.ts, stamped.step_id, stamped.data) == stamped


def test_producers_cannot_misspell_a_field_and_the_bus_takes_only_typed_events() -> None:
    with pytest.raises(ValidationError):
        ev.StepStarted(step_id="s1", goal="g", stratgy="cot")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        ev.Answer(status="finished")  # type: ignore[arg-type]  # not a status of the vocabulary
    with pytest.raises(TypeError, match="typed event"):
        ev.EventBus().emit("answer")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ev.parse_event({"kind": "no_such_kind", "run_id": "r", "seq": 1, "ts": 0.0})
    with pytest.raises(ValidationError):  # a question's id names its answer: a plain identifier
        ev.Question(id="yearly revenue?", text="t", default="d")


def test_rows_written_by_an_older_version_still_read() -> None:
    old = {"request": "q", "strategy": "beam", "budget": {"tokens": 1}}  # version 0 kept free keys
    e = ev.event_from_row("run_started", "r", 1, 1.0, None, old)
    assert isinstance(e, ev.RunStarted) and e.request == "q" and e.options == {}


def test_the_schema_file_is_generated_from_the_models() -> None:
    assert SCHEMA_FILE.exists(), "generate it: python -m longthink.events docs/events.schema.json"
    assert json.loads(SCHEMA_FILE.read_text()) == ev.json_schema(), (
        "the event models changed: regenerate docs/events.schema.json with "
        "`python -m longthink.events docs/events.schema.json` (and bump SCHEMA_VERSION if a consumer could break)"
    )
    schema = ev.json_schema()
    assert schema["x-schema-version"] == ev.SCHEMA_VERSION
    assert set(schema["discriminator"]["mapping"]) == ev.EVENT_KINDS


def test_the_schema_command_writes_the_same_document(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    subprocess.run([sys.executable, "-m", "longthink.events", str(out)], check=True, timeout=120)
    assert json.loads(out.read_text()) == ev.json_schema()
