"""Prometheus metrics of the service, on a private registry (two apps in one process never share values).

:meth:`ServiceMetrics.observe` reads the typed event stream; the app sets the gauges and reports its HTTP
requests; :meth:`ServiceMetrics.render` is the body of ``GET /metrics``.

Budget events carry a run's *cumulative* spend, so the token and model-call counters add the difference from the
last value seen for that run. A run resumed after it ended here (interrupted, then resumed in this process)
continues from its last value; a run resumed that this process never saw (after a restart) takes its first
budget event as the starting point, so spend from before the restart is not counted twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from longthink.budget import Spend
from longthink.events import (
    Answer,
    BudgetUpdate,
    CandidateGenerated,
    Error,
    Event,
    RunResumed,
    StepFinished,
    StepStarted,
)

#: Steps take seconds to many minutes.
STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, float("inf"))
#: How many ended runs keep their last spend (for a resume in this process).
ENDED_RUNS_KEPT = 4096


class ServiceMetrics:
    """The service's counters, gauges and histograms. Thread-safe; every metric is named ``longthink_*``."""

    def __init__(self, *, step_buckets: Sequence[float] = STEP_BUCKETS) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = Counter("longthink_runs", "Runs that ended, by final status", ["status"], registry=r)
        self.tokens = Counter("longthink_tokens", "Model tokens spent, by kind (prompt, completion)", ["kind"],
                              registry=r)  # fmt: skip
        self.model_calls = Counter("longthink_model_calls", "Model requests sent", registry=r)
        self.candidates = Counter("longthink_candidates", "Candidates sampled", registry=r)
        self.step_seconds = Histogram("longthink_step_seconds", "Plan step duration (step_started to step_finished)",
                                      buckets=step_buckets, registry=r)  # fmt: skip
        self.queue_depth = Gauge("longthink_queue_depth", "Runs waiting for a worker", registry=r)
        self.runs_in_progress = Gauge("longthink_runs_in_progress", "Runs being worked on", registry=r)
        self.http_requests = Counter("longthink_http_requests", "HTTP requests answered",
                                     ["method", "route", "status"], registry=r)  # fmt: skip
        self.http_seconds = Histogram("longthink_http_request_seconds", "HTTP request duration", ["route"],
                                      registry=r)  # fmt: skip
        self._lock = threading.Lock()
        self._spend: dict[str, Spend] = {}  # run_id -> last cumulative spend seen, while the run goes on
        self._ended: OrderedDict[str, Spend] = OrderedDict()  # the same for runs that ended (bounded)
        self._unknown: set[str] = set()  # resumed runs whose earlier spend this process never saw
        self._steps: dict[str, dict[str, float]] = {}  # run_id -> step_id -> ts of step_started

    # -- the event stream -----------------------------------------------------------------------------------
    def observe(self, event: Event) -> None:
        """Update the metrics from one event (any kind; kinds that carry no metric are ignored)."""
        with self._lock:
            if isinstance(event, BudgetUpdate):
                self._budget(event.run_id, event.spend)
            elif isinstance(event, CandidateGenerated):
                self.candidates.inc()
            elif isinstance(event, StepStarted) and event.step_id is not None:
                self._steps.setdefault(event.run_id, {})[event.step_id] = event.ts
            elif isinstance(event, StepFinished) and event.step_id is not None:
                started = self._steps.get(event.run_id, {}).pop(event.step_id, None)
                if started is not None and event.ts >= started:
                    self.step_seconds.observe(event.ts - started)
            elif isinstance(event, RunResumed):
                if event.run_id not in self._spend and event.run_id not in self._ended:
                    self._unknown.add(event.run_id)
            elif isinstance(event, Answer):
                self.runs.labels(status=event.status).inc()
                self._end(event.run_id)
            elif isinstance(event, Error) and event.step_id is None:
                self.runs.labels(status="failed").inc()
                self._end(event.run_id)

    def forget(self, run_id: str) -> None:
        """Drop what is kept for ``run_id`` (a job cancelled without a final event)."""
        with self._lock:
            self._end(run_id)

    def _budget(self, run_id: str, spend: Spend) -> None:
        if run_id in self._unknown:  # resumed after a restart: this spend was (mostly) counted before it
            self._unknown.discard(run_id)
            self._spend[run_id] = spend.copy()
            return
        last = self._spend.get(run_id) or self._ended.pop(run_id, None) or Spend()
        if spend.prompt_tokens < last.prompt_tokens or spend.completion_tokens < last.completion_tokens:
            last = Spend()  # the spend went back: a new count started
        self.tokens.labels(kind="prompt").inc(max(0, spend.prompt_tokens - last.prompt_tokens))
        self.tokens.labels(kind="completion").inc(max(0, spend.completion_tokens - last.completion_tokens))
        self.model_calls.inc(max(0, spend.requests - last.requests))
        self._spend[run_id] = spend.copy()

    def _end(self, run_id: str) -> None:
        self._steps.pop(run_id, None)
        self._unknown.discard(run_id)
        last = self._spend.pop(run_id, None)
        if last is not None:
            self._ended[run_id] = last
            self._ended.move_to_end(run_id)
            while len(self._ended) > ENDED_RUNS_KEPT:
                self._ended.popitem(last=False)

    # -- set by the app -------------------------------------------------------------------------------------
    def set_queue_depth(self, n: int) -> None:
        self.queue_depth.set(n)

    def set_running(self, n: int) -> None:
        self.runs_in_progress.set(n)

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request; ``route`` is the route's template (``/v1/runs/{run_id}``), never the raw path,
        so the label set stays small."""
        self.http_requests.labels(method=method.upper(), route=route, status=str(status)).inc()
        self.http_seconds.labels(route=route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type, for ``GET /metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["ServiceMetrics"]
