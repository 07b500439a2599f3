"""The service against its own OpenAPI document: schemathesis loads ``/openapi.json`` from a real ``longthink serve``
process (the test backend, ``longthink.testing:arithmetic_llm``), generates requests for every operation, valid
ones and ones that break the schema, and sends them; no response may be a server error (5xx).

One test per operation and generation mode, each driving Hypothesis over the operation's strategy. (Schemathesis'
own ``schemathesis.pytest.from_fixture(...)`` + ``@schema.parametrize()`` cannot be used with a server started by
a fixture here: with pytest 9 its lazy schema fails on ``request.node._nodeid``, which pytest no longer has.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from service_proc import ServiceProcess

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402 - only once schemathesis is known to be installed
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

EXAMPLES = 25
"""Generated cases per operation and mode (14 operations x 2 modes): well under a minute in all on 2 cores."""

OPERATIONS = (
    "POST /v1/runs",
    "GET /v1/runs",
    "GET /v1/runs/{run_id}",
    # Streams until the run rests: generated ids name no run, so it answers 404 at once.
    "GET /v1/runs/{run_id}/events",
    "POST /v1/runs/{run_id}/approve",
    "POST /v1/runs/{run_id}/answer",
    "POST /v1/runs/{run_id}/cancel",
    "GET /v1/runs/{run_id}/artifacts/{name}",
    "GET /v1/runs/{run_id}/webhooks",
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /v1/models",
    # With "stream": true it streams a whole run: the instant backend ends it in well under a second.
    "POST /v1/chat/completions",
)
"""Every operation of the document (checked against the served one below), each fuzzed."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """Open access (no keys), instant model calls: the runs that generated requests start end at once."""
    with ServiceProcess(tmp_path_factory.mktemp("schema"), delay_s=0.0, workers=4) as proc:
        yield proc


@pytest.fixture(scope="module")
def runs(server: ServiceProcess) -> dict[str, str]:
    """Real runs for the per-run operations: one finished, one waiting for its plan to be approved, one waiting for
    answers to its questions (a business plan without its baseline)."""
    out = {}
    asking = {"request": "Make a business plan to grow our profit by 10% next year.", "domain": "business_plan",
              "ask_missing": True}  # fmt: skip
    for name, body, want in (("finished", {}, "done"), ("awaiting", {"approve_plan": True}, "awaiting_approval"),
                             ("asking", asking, "awaiting_input")):  # fmt: skip
        r = httpx.post(f"{server.base_url}/v1/runs", json={"request": "What is 17 + 25?", **body}, timeout=30)
        assert r.status_code == 202, r.text
        out[name] = run_id = str(r.json()["id"])
        deadline = time.monotonic() + 60
        while httpx.get(f"{server.base_url}/v1/runs/{run_id}", timeout=10).json()["status"] != want:
            assert time.monotonic() < deadline, f"run {run_id} never reached {want}"
            time.sleep(0.1)
    return out


@pytest.fixture(scope="module")
def api_schema(server: ServiceProcess) -> Any:
    return schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", timeout=30)


def test_the_served_document_has_exactly_the_fuzzed_operations(api_schema: Any) -> None:
    served = {f"{method.upper()} {path}" for path, ops in api_schema.raw_schema["paths"].items() for method in ops}
    assert served == set(OPERATIONS)


def fuzz(api_schema: Any, server: ServiceProcess, label: str, mode: GenerationMode, **fixed: Any) -> None:
    """Send ``EXAMPLES`` generated requests for operation ``label`` (``fixed``: parameters not generated)."""
    method, path = label.split(" ", 1)
    strategy = api_schema[path][method].as_strategy(generation_mode=mode, **fixed)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)  # fmt: skip
    @given(case=strategy)
    def check(case: Any) -> None:
        case.call_and_validate(base_url=server.base_url, checks=[not_a_server_error], timeout=60)

    try:
        check()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        pytest.skip(f"nothing in {label} can be made invalid (no body, no constrained parameter)")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("label", OPERATIONS)
def test_no_generated_request_gets_a_server_error(
    label: str, mode: GenerationMode, api_schema: Any, server: ServiceProcess
) -> None:
    fuzz(api_schema, server, label, mode)


@pytest.mark.parametrize("state", ["finished", "awaiting", "asking"])
@pytest.mark.parametrize("label", [op for op in OPERATIONS if "{run_id}" in op])
def test_no_generated_request_on_a_real_run_gets_a_server_error(
    label: str, state: str, runs: dict[str, str], api_schema: Any, server: ServiceProcess
) -> None:
    """The per-run operations with the id of a run that exists (generated ids name none, so they only meet 404):
    a finished run, one waiting for approval and one waiting for answers (which the generated decisions, answers
    and cancels move on)."""
    fuzz(api_schema, server, label, GenerationMode.POSITIVE, path_parameters={"run_id": runs[state]})
