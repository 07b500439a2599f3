"""The service's Prometheus metrics, fed real typed events and read back through the Prometheus text parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from longthink.budget import Spend
from longthink.events import (
    Answer,
    BudgetUpdate,
    CandidateGenerated,
    Error,
    Event,
    EventBus,
    RunResumed,
    RunStarted,
    StepFinished,
    StepOutcome,
    StepStarted,
    ToolCalled,
)
from longthink.service.metrics import ServiceMetrics
from longthink.trace import Candidate


def sample(metrics: ServiceMetrics, name: str, **labels: str) -> float | None:
    """The value of sample ``name`` with exactly ``labels`` in the rendered text (None when absent)."""
    body, _ = metrics.render()
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def candidate(i: int) -> Candidate:
    return Candidate(id=f"c{i}", problem_id="p", index=i, text="x", answer="1", parse_error=None,
                     finish_reason="stop", prompt_tokens=1, completion_tokens=1, latency_s=0.1, model="m",
                     prompt_hash="h")  # fmt: skip


def budget(run: str, ts: float, prompt: int, completion: int, requests: int) -> BudgetUpdate:
    spend = Spend(prompt_tokens=prompt, completion_tokens=completion, requests=requests, samples=requests)
    return BudgetUpdate(run_id=run, ts=ts, spend=spend)


def finished(run: str, step: str, ts: float) -> StepFinished:
    return StepFinished(run_id=run, step_id=step, ts=ts, outcome=StepOutcome(step_id=step, answer="1", verified=True))


def two_runs() -> list[Event]:
    """Run A finishes "done" after two steps; run B (interleaved, same step id) fails with a run-level error."""
    return [
        RunStarted(run_id="A", seq=1, ts=99.0, request="2+2?"),
        RunStarted(run_id="B", seq=1, ts=99.5, request="3+3?"),
        StepStarted(run_id="A", step_id="s1", ts=100.0, goal="add"),
        StepStarted(run_id="B", step_id="s1", ts=101.0, goal="add"),
        *(
            CandidateGenerated(run_id="A", step_id="s1", ts=100.1, problem_id="p", candidate=candidate(i))
            for i in range(3)
        ),
        budget("A", 100.2, 10, 20, 1),
        budget("B", 101.2, 5, 5, 1),
        budget("A", 100.3, 25, 50, 2),
        budget("A", 100.4, 25, 50, 2),  # the same total again: nothing new spent
        ToolCalled(run_id="A", step_id="s1", ts=100.5, call_id="t1", tool="calculator"),
        *(
            CandidateGenerated(run_id="B", step_id="s1", ts=101.3, problem_id="p", candidate=candidate(i))
            for i in range(2)
        ),
        finished("A", "s1", 102.5),
        StepStarted(run_id="A", step_id="s2", ts=103.0, goal="check"),
        Error(run_id="A", step_id="s2", ts=104.0, message="a tool failed"),  # a step's error: the run goes on
        budget("A", 105.0, 40, 70, 3),
        finished("A", "s2", 110.0),
        Error(run_id="B", ts=111.0, message="backend down", error_type="BackendError"),
        Answer(run_id="A", ts=112.0, status="done", answer="4", spend=Spend(prompt_tokens=40, completion_tokens=70)),
    ]


def test_two_runs_counted_from_their_events() -> None:
    m = ServiceMetrics()
    for event in two_runs():
        m.observe(event)
    assert sample(m, "longthink_runs_total", status="done") == 1
    assert sample(m, "longthink_runs_total", status="failed") == 1
    # cumulative budget events become deltas: A ends at 40/70/3, B at 5/5/1
    assert sample(m, "longthink_tokens_total", kind="prompt") == 45
    assert sample(m, "longthink_tokens_total", kind="completion") == 75
    assert sample(m, "longthink_model_calls_total") == 4
    assert sample(m, "longthink_candidates_total") == 5
    # A's two steps (2.5 s and 7 s); B's step never finished and is dropped when B ends
    assert sample(m, "longthink_step_seconds_count") == 2
    assert sample(m, "longthink_step_seconds_sum") == 9.5
    assert sample(m, "longthink_step_seconds_bucket", le="5.0") == 1
    assert sample(m, "longthink_step_seconds_bucket", le="10.0") == 2
    assert m._spend == {} and m._steps == {}  # nothing kept for runs that ended


def test_the_event_bus_feeds_it() -> None:
    m = ServiceMetrics()
    bus = EventBus("run-1")
    bus.subscribe(m.observe)
    bus.emit(RunStarted(request="hi"))
    bus.emit(StepStarted(goal="g"), step_id="s1")
    bus.emit(BudgetUpdate(spend=Spend(prompt_tokens=7, completion_tokens=3, requests=1)))
    bus.emit(BudgetUpdate(spend=Spend(prompt_tokens=14, completion_tokens=9, requests=2)))
    bus.emit(finished("", "s1", 0.0))  # the bus stamps run_id and ts
    bus.emit(Answer(status="partial", answer="x"))
    assert sample(m, "longthink_tokens_total", kind="prompt") == 14
    assert sample(m, "longthink_tokens_total", kind="completion") == 9
    assert sample(m, "longthink_model_calls_total") == 2
    assert sample(m, "longthink_runs_total", status="partial") == 1
    assert sample(m, "longthink_step_seconds_count") == 1


def test_a_resumed_run_is_not_counted_twice() -> None:
    m = ServiceMetrics()
    # interrupted by an error, resumed in this process: its spend goes on from where it was
    for event in (budget("C", 1, 10, 10, 1), Error(run_id="C", ts=2, message="killed"), RunResumed(run_id="C", ts=3),
                  budget("C", 4, 15, 12, 2), Answer(run_id="C", ts=5, status="done")):  # fmt: skip
        m.observe(event)
    assert sample(m, "longthink_tokens_total", kind="prompt") == 15
    assert sample(m, "longthink_model_calls_total") == 2
    assert sample(m, "longthink_runs_total", status="failed") == 1  # each ending is counted
    assert sample(m, "longthink_runs_total", status="done") == 1
    # resumed after a restart (this process never saw it): the first total is the starting point
    fresh = ServiceMetrics()
    for event in (RunResumed(run_id="D", ts=1), budget("D", 2, 100, 50, 9), budget("D", 3, 110, 60, 10)):
        fresh.observe(event)
    assert sample(fresh, "longthink_tokens_total", kind="prompt") == 10
    assert sample(fresh, "longthink_tokens_total", kind="completion") == 10
    assert sample(fresh, "longthink_model_calls_total") == 1
    fresh.forget("D")
    assert fresh._spend == {}


def test_gauges_and_http_requests() -> None:
    m = ServiceMetrics()
    m.set_queue_depth(3)
    m.set_running(2)
    m.observe_http("get", "/v1/runs/{run_id}", 200, 0.05)
    m.observe_http("GET", "/v1/runs/{run_id}", 200, 0.15)
    m.observe_http("POST", "/v1/runs", 201, 0.2)
    assert sample(m, "longthink_queue_depth") == 3
    assert sample(m, "longthink_runs_in_progress") == 2
    assert sample(m, "longthink_http_requests_total", method="GET", route="/v1/runs/{run_id}", status="200") == 2
    assert sample(m, "longthink_http_requests_total", method="POST", route="/v1/runs", status="201") == 1
    assert sample(m, "longthink_http_request_seconds_count", route="/v1/runs/{run_id}") == 2
    assert abs((sample(m, "longthink_http_request_seconds_sum", route="/v1/runs/{run_id}") or 0) - 0.2) < 1e-9
    m.set_queue_depth(0)
    assert sample(m, "longthink_queue_depth") == 0
    body, content_type = m.render()
    assert content_type.startswith("text/plain") and b"# HELP longthink_runs_total" in body


def test_two_instances_share_nothing() -> None:
    one, two = ServiceMetrics(), ServiceMetrics()
    for event in two_runs():
        one.observe(event)
    one.set_queue_depth(5)
    one.observe_http("GET", "/healthz", 200, 0.01)
    assert sample(two, "longthink_runs_total", status="done") is None
    assert sample(two, "longthink_tokens_total", kind="prompt") in (None, 0)
    assert sample(two, "longthink_queue_depth") == 0
    assert sample(two, "longthink_step_seconds_count") == 0
    assert sample(two, "longthink_http_requests_total", method="GET", route="/healthz", status="200") is None
    assert sample(one, "longthink_runs_total", status="done") == 1
