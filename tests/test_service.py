"""The HTTP service as a real server process on 127.0.0.1 (``longthink serve``), driven by real clients:
httpx, the official ``openai`` client (sync, async, streaming) and LangChain's ``ChatOpenAI``. The backend is
``longthink.testing:arithmetic_llm`` (a whole agent run without a model: "What is 17 + 25?" -> 42), slowed down
per call where a test needs a run in flight; one test runs the embedded model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from service_proc import ServiceProcess, cli, cvrplib, events

pytest.importorskip("fastapi")

QUESTION = "What is 17 + 25?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One server for the module: open access (no keys), each model call takes 0.05 s."""
    with ServiceProcess(tmp_path_factory.mktemp("svc"), delay_s=0.05) as proc:
        yield proc


def start_run(base: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> str:
    r = httpx.post(f"{base}/v1/runs", json={"request": QUESTION, **(body or {})}, headers=headers, timeout=30)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/runs/{r.json()['id']}"
    return str(r.json()["id"])


def wait_status(base: str, run_id: str, want: set[str], headers: dict[str, str] | None = None,
                timeout: float = 60) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{base}/v1/runs/{run_id}", headers=headers, timeout=10).json()
        if run["status"] in want:
            return dict(run)
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never reached {want}: {run}")


def seqs(stream: list[dict[str, Any]]) -> list[int]:
    return [int(e["id"]) for e in stream if e.get("event") != "end"]


# -- the runs API -----------------------------------------------------------------------------------------------
def test_a_run_streams_its_typed_events_and_reports_its_result(server: ServiceProcess) -> None:
    run_id = start_run(server.base_url)
    stream = events(server.base_url, run_id)
    kinds = [e["event"] for e in stream]
    assert kinds[0] == "run_started" and kinds[-1] == "end"
    for kind in ("plan_selected", "step_started", "candidate_generated", "step_finished", "budget", "answer"):
        assert kind in kinds, kinds
    ids = seqs(stream)
    assert ids == list(range(1, len(ids) + 1))  # every event once, in order
    assert all(e["data"]["run_id"] == run_id and e["data"]["seq"] == int(e["id"]) for e in stream[:-1])
    assert stream[-1]["data"]["status"] == "done"
    run = httpx.get(f"{server.base_url}/v1/runs/{run_id}").json()
    assert run["status"] == "done" and run["answer"] == "42"
    assert {"s1", "s2"} <= {s["id"] for s in run["steps"]}
    assert all(s["status"] == "done" for s in run["steps"] if s["id"] in ("s1", "s2"))
    assert run["plan"]["steps"][1]["depends_on"] == ["s1"]
    assert run["spend"]["completion_tokens"] > 0 and run["spend"]["requests"] >= 3
    # a finished run's stream replays from the store: the same events
    assert seqs(events(server.base_url, run_id)) == ids


def test_reconnecting_with_last_event_id_loses_and_repeats_nothing(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path, delay_s=0.3) as proc:  # slow calls: the reconnects happen mid-run
        run_id = start_run(proc.base_url)
        got = events(proc.base_url, run_id, stop_after=3)
        while got[-1]["event"] != "end":  # drop the connection every 3 events, go on from the last id seen
            got += events(proc.base_url, run_id, last_id=int(got[-1]["id"]), stop_after=3)
        ids = seqs(got)
        assert ids == list(range(1, len(ids) + 1)), ids
        assert len(ids) > 6
        assert seqs(events(proc.base_url, run_id)) == ids
        assert seqs(events(proc.base_url, run_id, last_id=ids[-3])) == ids[-2:]
        bad = httpx.get(f"{proc.base_url}/v1/runs/{run_id}/events", headers={"Last-Event-ID": "x"})
        assert bad.status_code == 400 and "Last-Event-ID" in bad.json()["error"]["message"]


def test_list_filters_and_paginates(server: ServiceProcess) -> None:
    ids = [start_run(server.base_url, {"request": f"What is {i} + 1?", "domain": "general"}) for i in range(3)]
    for run_id in ids:
        wait_status(server.base_url, run_id, {"done"})
    page = httpx.get(f"{server.base_url}/v1/runs", params={"limit": 2, "status": "done"}).json()
    assert len(page["runs"]) == 2 and page["total"] >= 3 and page["next_offset"] == 2
    assert [r["id"] for r in page["runs"]] == ids[::-1][:2]  # newest first
    rest = httpx.get(f"{server.base_url}/v1/runs", params={"limit": 2, "offset": 2, "status": "done"}).json()
    assert ids[0] in [r["id"] for r in rest["runs"]]
    none = httpx.get(f"{server.base_url}/v1/runs", params={"status": "failed"}).json()
    assert none["runs"] == [] and none["total"] == 0
    later = httpx.get(f"{server.base_url}/v1/runs", params={"since": time.time() + 60}).json()
    assert later["total"] == 0


def test_cancel_stops_a_running_run(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path, delay_s=0.5) as proc:
        run_id = start_run(proc.base_url)
        events(proc.base_url, run_id, stop_after=2)  # it has started
        r = httpx.post(f"{proc.base_url}/v1/runs/{run_id}/cancel", timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        stream = events(proc.base_url, run_id, timeout=30)
        assert stream[-1]["event"] == "end" and stream[-1]["data"]["status"] == "cancelled"
        assert stream[-2]["event"] == "error" and stream[-2]["data"]["error_type"] == "Cancelled"
        time.sleep(1.5)  # nothing runs on
        run = httpx.get(f"{proc.base_url}/v1/runs/{run_id}").json()
        assert run["status"] == "cancelled" and run["answer"] is None
        again = httpx.post(f"{proc.base_url}/v1/runs/{run_id}/cancel")
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_a_plan_waits_for_approval_then_runs(server: ServiceProcess) -> None:
    run_id = start_run(server.base_url, {"approve_plan": True})
    run = wait_status(server.base_url, run_id, {"awaiting_approval"})
    assert [s["id"] for s in run["pending_plan"]["steps"]] == ["s1", "s2"]
    stream = events(server.base_url, run_id)
    assert stream[-1]["data"]["status"] == "awaiting_approval"
    assert stream[-2]["event"] == "approval_requested"
    bad = httpx.post(f"{server.base_url}/v1/runs/{run_id}/approve", json={"action": "edit"})
    assert bad.status_code == 422
    ok = httpx.post(f"{server.base_url}/v1/runs/{run_id}/approve", json={"action": "approve"})
    assert ok.status_code == 202, ok.text
    done = wait_status(server.base_url, run_id, {"done", "failed", "partial"})
    assert done["status"] == "done" and done["answer"] == "42"
    ids = seqs(events(server.base_url, run_id))
    assert ids == list(range(1, len(ids) + 1))
    late = httpx.post(f"{server.base_url}/v1/runs/{run_id}/approve", json={"action": "approve"})
    assert late.status_code == 409


BUSINESS = "Make a business plan to grow our company's profit by 10% next year."


def test_a_run_asks_for_missing_facts_then_runs_with_the_answers(server: ServiceProcess) -> None:
    base = server.base_url
    run_id = start_run(base, {"request": BUSINESS, "domain": "business_plan", "ask_missing": True})
    run = wait_status(base, run_id, {"awaiting_input"})
    assert [q["id"] for q in run["pending_questions"]] == ["yearly_revenue", "profit"]
    assert run["pending_questions"][0]["default"] == "$1,000,000 revenue (illustrative)" and run["plan"] is None
    stream = events(base, run_id)
    assert stream[-1]["data"]["status"] == "awaiting_input"
    assert stream[-2]["event"] == "clarification_requested" and len(stream[-2]["data"]["questions"]) == 2
    listed = httpx.get(f"{base}/v1/runs", params={"status": "awaiting_input"}).json()
    assert run_id in [r["id"] for r in listed["runs"]]
    assert httpx.post(f"{base}/v1/runs/{run_id}/approve", json={"action": "approve"}).status_code == 409
    assert httpx.post(f"{base}/v1/runs/{run_id}/answer", json={}).status_code == 422
    unknown = httpx.post(f"{base}/v1/runs/{run_id}/answer", json={"answers": {"colour": "blue"}})
    assert unknown.status_code == 400 and "yearly_revenue" in unknown.json()["error"]["message"]
    answers = {"yearly_revenue": "$2,400,000", "profit": "$180,000"}
    ok = httpx.post(f"{base}/v1/runs/{run_id}/answer", json={"answers": answers})
    assert ok.status_code == 202, ok.text
    done = wait_status(base, run_id, {"done", "unverified", "partial", "failed"})
    assert "Facts from the user:" in done["plan"]["goal"] and "yearly revenue: $2,400,000" in done["plan"]["goal"]
    baseline = next(s for s in done["steps"] if s["id"] == "baseline")
    assert "revenue $2,400,000" in baseline["answer"] and "profit $180,000" in baseline["answer"]
    kinds = [e["event"] for e in events(base, run_id)]
    assert kinds.count("clarification_requested") == 1 and "run_resumed" in kinds
    late = httpx.post(f"{base}/v1/runs/{run_id}/answer", json={"use_defaults": True})
    assert late.status_code == 409


def test_without_asking_a_run_and_a_chat_completion_use_the_defaults(server: ServiceProcess) -> None:
    base = server.base_url
    run_id = start_run(base, {"request": BUSINESS, "domain": "business_plan"})
    done = wait_status(base, run_id, {"done", "unverified", "partial", "failed"})
    assert "Assumed (not stated; illustrative):" in done["plan"]["goal"]
    assert "clarification_requested" not in [e["event"] for e in events(base, run_id)]
    body = {"model": "longthink", "messages": [{"role": "user", "content": BUSINESS}],
            "longthink": {"domain": "business_plan"}}  # fmt: skip
    r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120)  # never waits for answers
    assert r.status_code == 200, r.text
    chat_run = httpx.get(f"{base}/v1/runs/{r.json()['longthink']['run_id']}").json()
    assert chat_run["status"] in ("done", "partial") and "Assumed (not stated" in chat_run["plan"]["goal"]


def test_bad_input_gets_clear_4xx_errors(server: ServiceProcess) -> None:
    base = server.base_url
    cases = [
        ({"request": ""}, 422, "request"),
        ({"request": QUESTION, "colour": "blue"}, 422, "colour"),
        ({"request": QUESTION, "strategy": "self_consistancy"}, 400, "self_consistency"),
        ({"request": QUESTION, "domain": "astrology"}, 400, "astrology"),
        ({"request": QUESTION, "budget_tokens": -5}, 422, "budget_tokens"),
        ({"request": QUESTION, "budget_tokens": 10**12}, 422, "budget_tokens"),
        ({"request": "a\x00b"}, 400, "NUL"),
        ({"request": QUESTION, "webhook_url": "http://127.0.0.1:9/hook"}, 400, "webhook"),
        ({"request": QUESTION, "model": "gpt-4"}, 400, "gpt-4"),
    ]
    for body, status, word in cases:
        r = httpx.post(f"{base}/v1/runs", json=body)
        assert r.status_code == status, (body, r.text)
        error = r.json()["error"]
        assert word.lower() in error["message"].lower(), (body, error)
        assert "Traceback" not in r.text
    big = httpx.post(f"{base}/v1/runs", content=b'{"request": "' + b"x" * (2 << 20) + b'"}',
                     headers={"content-type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    r = httpx.post(f"{base}/v1/runs", content=b"\xff\xfe not json", headers={"content-type": "application/json"})
    assert r.status_code in (400, 422) and "error" in r.json()
    assert httpx.get(f"{base}/v1/runs/nope").status_code == 404
    assert httpx.get(f"{base}/v1/runs", params={"limit": 0}).status_code == 422
    assert httpx.get(f"{base}/v1/runs/nope/artifacts/x.png").status_code == 404
    assert "access-control-allow-origin" not in httpx.get(f"{base}/healthz", headers={"Origin": "http://x"}).headers


def test_operations_endpoints(server: ServiceProcess) -> None:
    base = server.base_url
    assert httpx.get(f"{base}/healthz").json()["status"] == "ok"
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok", "model": "ok"}
    schema = httpx.get(f"{base}/openapi.json").json()
    for path in ("/v1/runs", "/v1/runs/{run_id}", "/v1/runs/{run_id}/events", "/v1/runs/{run_id}/approve",
                 "/v1/runs/{run_id}/answer", "/v1/runs/{run_id}/cancel", "/v1/runs/{run_id}/artifacts/{name}", "/v1/chat/completions",
                 "/v1/models"):  # fmt: skip
        assert path in schema["paths"], path
    wait_status(base, start_run(base), {"done"})
    text = httpx.get(f"{base}/metrics").text
    assert 'longthink_runs_total{status="done"}' in text
    assert "longthink_tokens_total" in text and "longthink_step_seconds_bucket" in text
    assert "queue_depth" in text


# -- tenants ----------------------------------------------------------------------------------------------------
def test_tenants_are_isolated_and_capped(tmp_path: Path) -> None:
    env = {"LONGTHINK_DB_URL": f"sqlite:///{tmp_path / 'runs.db'}"}
    alice = cli(["keys", "create", "alice"], env).strip()
    bob = cli(["keys", "create", "bob", "--token-cap", "300"], env).strip()
    assert alice.startswith("lt-") and alice != bob
    assert "alice" in cli(["keys", "list"], env) and alice not in cli(["keys", "list"], env)
    with ServiceProcess(tmp_path, delay_s=0.0) as proc:
        base = proc.base_url
        a = {"Authorization": f"Bearer {alice}"}
        b = {"X-API-Key": bob}
        assert httpx.get(f"{base}/v1/runs").status_code == 401
        assert httpx.get(f"{base}/v1/runs", headers={"Authorization": "Bearer lt-wrong"}).status_code == 401
        run_id = start_run(base, headers=a)
        assert wait_status(base, run_id, {"done"}, headers=a)["answer"] == "42"
        for method, path in [("GET", ""), ("GET", "/events"), ("POST", "/cancel"), ("GET", "/artifacts/x")]:
            r = httpx.request(method, f"{base}/v1/runs/{run_id}{path}", headers=b)
            assert r.status_code == 404, (path, r.status_code)  # not 403: another tenant's run does not exist
        assert httpx.get(f"{base}/v1/runs", headers=b).json()["total"] == 0
        assert httpx.get(f"{base}/v1/runs", headers=a).json()["total"] == 1
        # bob's cap: 300 tokens in all; a budget that does not fit is refused before any work
        r = httpx.post(f"{base}/v1/runs", json={"request": QUESTION, "budget_tokens": 1000}, headers=b)
        assert r.status_code == 429 and r.json()["error"]["type"] == "insufficient_quota"
        r = httpx.post(f"{base}/v1/runs", json={"request": QUESTION}, headers=b)  # the default budget: 12000
        assert r.status_code == 429
        assert httpx.get(f"{base}/v1/runs", headers=b).json()["total"] == 0  # nothing was stored
        ok = start_run(base, {"budget_tokens": 200}, headers=b)
        within = wait_status(base, ok, {"done", "unverified", "partial", "failed"}, headers=b)
        # 200 tokens admit one program per step: nothing to agree with, so the answer stands unverified
        assert within["status"] == "unverified" and within["answer"] == "42"
        assert 0 < within["spend"]["completion_tokens"] <= 200


def test_a_restarted_server_resumes_unfinished_runs(tmp_path: Path) -> None:
    proc = ServiceProcess(tmp_path, delay_s=0.4, workers=2).start()
    try:
        running = start_run(proc.base_url)
        queued = [start_run(proc.base_url, {"request": f"What is {i} * 3?"}) for i in (5, 6, 7)]
        first = events(proc.base_url, running, stop_after=6)  # well into the run
    finally:
        proc.kill()
    assert first[-1]["event"] != "end"
    with ServiceProcess(tmp_path, delay_s=0.0, workers=2) as again:
        assert again.port != proc.port
        listed = {r["id"]: r for r in httpx.get(f"{again.base_url}/v1/runs").json()["runs"]}
        assert set(listed) == {running, *queued}
        finished = {rid: wait_status(again.base_url, rid, {"done", "failed", "partial"}) for rid in listed}
        assert {r["status"] for r in finished.values()} == {"done"}
        assert finished[running]["answer"] == "42"
        assert [finished[q]["answer"] for q in queued] == ["15", "18", "21"]
        ids = seqs(events(again.base_url, running))
        assert ids == list(range(1, len(ids) + 1))  # no event lost or stored twice across the kill
        assert ids[: len(seqs(first))] == seqs(first)


# -- the OpenAI-compatible API --------------------------------------------------------------------------------------
def test_openai_client_non_streaming_and_models(server: ServiceProcess) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)
    names = {m.id for m in client.models.list()}
    assert {"longthink", "longthink-adaptive", "longthink-best-of-8"} <= names
    reply = client.chat.completions.create(model="longthink", messages=[{"role": "user", "content": QUESTION}])
    assert reply.choices[0].message.content == "42"
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert usage is not None and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert (usage.model_extra or {})["model_calls"] >= 3
    run_id = (reply.model_extra or {})["longthink"]["run_id"]
    assert httpx.get(f"{server.base_url}/v1/runs/{run_id}").json()["answer"] == "42"  # stored like any run
    best = client.chat.completions.create(
        model="longthink-best-of-8", messages=[{"role": "user", "content": "What is 6 * 7?"}],
        extra_body={"longthink": {"budget_tokens": 3000}},
    )  # fmt: skip
    assert best.choices[0].message.content == "42"
    run = httpx.get(f"{server.base_url}/v1/runs/{(best.model_extra or {})['longthink']['run_id']}").json()
    assert any(s["strategy"] == "best_of_n" for s in run["steps"])
    import openai

    with pytest.raises(openai.NotFoundError, match="unknown model"):
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError, match="self_consistency"):
        client.chat.completions.create(model="longthink", messages=[{"role": "user", "content": QUESTION}],
                                       extra_body={"longthink": {"strategy": "self_consistancy"}})  # fmt: skip


def test_openai_client_streams_the_search_as_reasoning(server: ServiceProcess) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="longthink-self-consistency-8", messages=[{"role": "user", "content": QUESTION}], stream=True,
        stream_options={"include_usage": True},
    )  # fmt: skip
    reasoning, reasoning_new, content, arrivals, usage = [], [], [], [], None
    for chunk in stream:
        arrivals.append(time.monotonic())
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        extra = delta.model_extra or {}
        if extra.get("reasoning_content"):
            reasoning.append(extra["reasoning_content"])
            reasoning_new.append(extra["reasoning"])
        if delta.content:
            content.append(delta.content)
    text = "".join(reasoning)
    assert reasoning == reasoning_new  # both field names carry the same text
    assert "Chose plan" in text and "Step s1" in text and "Step s2" in text
    assert "candidates (self_consistency), votes 42: 8" in text
    assert "".join(content) == "42"
    assert usage is not None and usage.completion_tokens > 0
    assert len(reasoning) >= 6 and arrivals[-1] - arrivals[0] > 0.2  # sent as the search ran, not in one piece


async def test_async_openai_client_and_langchain(server: ServiceProcess) -> None:
    from langchain_openai import ChatOpenAI
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)
    replies = await asyncio.gather(*[
        client.chat.completions.create(model="longthink-cot", messages=[{"role": "user", "content": f"What is {i} + {i}?"}])
        for i in (1, 2, 3)
    ])  # fmt: skip
    assert [r.choices[0].message.content for r in replies] == ["2", "4", "6"]
    chunks = [c async for c in await client.chat.completions.create(
        model="longthink-cot", messages=[{"role": "user", "content": QUESTION}], stream=True)]  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "42"
    chat = ChatOpenAI(model="longthink-cot", base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0)
    message = await chat.ainvoke([("system", "Be brief."), ("user", QUESTION)])
    assert message.content == "42"
    assert "".join(str(c.content) for c in chat.stream(QUESTION)) == "42"


# -- webhooks ---------------------------------------------------------------------------------------------------
class _Hooks(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    fail_first = 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        status = 503 if len(type(self).received) <= type(self).fail_first else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_webhook_is_signed_retried_and_recorded(tmp_path: Path) -> None:
    from longthink.service.webhooks import verify

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        with ServiceProcess(tmp_path, env={"LONGTHINK_WEBHOOK_SECRET": "s3cret"}) as proc:
            run_id = start_run(proc.base_url, {"webhook_url": url})
            wait_status(proc.base_url, run_id, {"done"})
            deadline = time.monotonic() + 30
            while len(_Hooks.received) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            deliveries = httpx.get(f"{proc.base_url}/v1/runs/{run_id}/webhooks").json()
    finally:
        receiver.shutdown()
    assert len(_Hooks.received) == 2  # a 503 first, then delivered
    headers, body = _Hooks.received[-1]
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify("s3cret", body, lower["x-longthink-signature"])
    assert not verify("other", body, lower["x-longthink-signature"])
    assert b'"answer":"42"' in body and run_id.encode() in body
    assert [(d["attempt"], d["ok"], d["status_code"]) for d in deliveries] == [(1, False, 503), (2, True, 200)]
    assert deliveries[0]["delivery_id"] == deliveries[1]["delivery_id"] == lower["x-longthink-delivery"]


# -- the embedded model -------------------------------------------------------------------------------------------
@pytest.mark.real_model
def test_a_run_on_the_embedded_model_through_the_service(tmp_path: Path) -> None:
    from openai import OpenAI

    with ServiceProcess(
        tmp_path, llm=None, workers=1, extra=["--model", "smollm2-135m-instruct", "--threads", "1"]
    ) as proc:
        client = OpenAI(base_url=f"{proc.base_url}/v1", api_key="unused", max_retries=0, timeout=600)
        stream = client.chat.completions.create(
            model="longthink-cot", messages=[{"role": "user", "content": "What is 2 + 3?"}], stream=True,
            extra_body={"longthink": {"budget_tokens": 1500, "domain": "general"}},
        )  # fmt: skip
        reasoning = content = ""
        for chunk in stream:
            if chunk.choices:
                reasoning += (chunk.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
                content += chunk.choices[0].delta.content or ""
        assert "Chose plan" in reasoning and "Step" in reasoning
        assert content.strip()  # the small model's answer, right or not: the path works end to end
        runs = httpx.get(f"{proc.base_url}/v1/runs").json()["runs"]
        assert runs[0]["status"] in ("done", "unverified", "partial") and runs[0]["spend"]["completion_tokens"] > 0


def test_the_service_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """Teams run one PostgreSQL: jobs, keys, the run store and the checkpoints all live there."""
    with ServiceProcess(tmp_path, env={"LONGTHINK_DB_URL": pg_url}) as proc:
        run_id = start_run(proc.base_url)
        assert wait_status(proc.base_url, run_id, {"done"})["answer"] == "42"
        ids = seqs(events(proc.base_url, run_id))
        assert ids == list(range(1, len(ids) + 1))
        assert httpx.get(f"{proc.base_url}/readyz").json()["database"] == "ok"
    with ServiceProcess(tmp_path, env={"LONGTHINK_DB_URL": pg_url}) as again:  # a restart finds it in the database
        assert [r["id"] for r in httpx.get(f"{again.base_url}/v1/runs").json()["runs"]] == [run_id]


def test_logs_are_json_lines_with_run_ids(server: ServiceProcess) -> None:
    import json

    run_id = start_run(server.base_url)
    wait_status(server.base_url, run_id, {"done"})
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("run_id") == run_id]
    assert {"run queued", "run started", "run done"} <= {line["message"] for line in mine}
    assert all({"ts", "level", "logger"} <= set(line) for line in lines)


def test_the_readme_service_commands_work(tmp_path: Path) -> None:
    """The README's `longthink serve`, its curl lines and its OpenAI client example, run as written (the port and
    run id substituted; the test backend swapped in for the model so the example is fast)."""
    import json
    import re
    import shlex
    import subprocess
    import sys

    from service_proc import CLI

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## The HTTP service", 1)[1].split("\n## ", 1)[0]
    bash = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    serve = shlex.split(bash[0].split("#")[0])
    assert serve[:2] == ["longthink", "serve"]
    proc = ServiceProcess(tmp_path, delay_s=0.02)
    proc.args = [*serve[1:], "--llm", "longthink.testing:arithmetic_llm"]
    proc.args[proc.args.index("--port") + 1] = str(proc.port)
    with proc:
        assert proc.args[0] == "serve" and CLI
        curls = [line.split(" #")[0].strip() for line in bash[1].splitlines() if line.startswith("curl")]
        port = f"localhost:{proc.port}"
        created = subprocess.run(curls[0].replace("localhost:8000", port), shell=True, capture_output=True, text=True,
                                 check=True, timeout=30)  # fmt: skip
        run_id = json.loads(created.stdout)["id"]
        example_id = re.search(r"/v1/runs/(\w+)/events", curls[1]).group(1)  # type: ignore[union-attr]
        stream = subprocess.run(curls[1].replace("localhost:8000", port).replace(example_id, run_id), shell=True,
                                capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
        assert stream.stdout.startswith("id: 1\nevent: run_started\n") and "event: end" in stream.stdout
        shown = subprocess.run(curls[2].replace("localhost:8000", port).replace(example_id, run_id), shell=True,
                               capture_output=True, text=True, check=True, timeout=30)  # fmt: skip
        assert json.loads(shown.stdout)["answer"] == "42"
        [client] = [b for b in re.findall(r"```python\n(.*?)```", section, flags=re.S) if "OpenAI(" in b]
        code = client.replace("http://127.0.0.1:8000/v1", f"{proc.base_url}/v1")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
        assert "Chose plan" in out.stdout and "votes 42: " in out.stdout and out.stdout.rstrip().endswith("42")


def test_plan_decisions_reject_with_feedback_edit_and_reject(server: ServiceProcess) -> None:
    base = server.base_url
    run_id = start_run(base, {"approve_plan": True})
    wait_status(base, run_id, {"awaiting_approval"})
    r = httpx.post(f"{base}/v1/runs/{run_id}/approve", json={"action": "reject", "feedback": "use one step"})
    assert r.status_code == 202
    asked_again = wait_status(base, run_id, {"awaiting_approval"}, timeout=60)
    assert asked_again["pending_plan"]["steps"]
    kinds = [e["event"] for e in events(base, run_id)]
    assert "replan" in kinds and kinds.count("approval_requested") == 2
    one_step = {"steps": [{"id": "only", "goal": "Compute the result", "answer_kind": "number"}]}
    assert httpx.post(f"{base}/v1/runs/{run_id}/approve", json={"action": "edit", "plan": one_step}).status_code == 202
    done = wait_status(base, run_id, {"done", "unverified", "partial", "failed"})
    assert done["status"] == "done" and done["answer"] == "42"
    assert "only" in {s["id"] for s in done["steps"]} and done["plan"]["steps"][0]["id"] == "only"
    refused = start_run(base, {"approve_plan": True})
    wait_status(base, refused, {"awaiting_approval"})
    httpx.post(f"{base}/v1/runs/{refused}/approve", json={"action": "reject"})
    assert wait_status(base, refused, {"rejected", "done"})["status"] == "rejected"


def test_attached_files_reach_the_request(server: ServiceProcess) -> None:
    run_id = start_run(server.base_url, {"request": "Add the numbers in the file.", "files": {"n.txt": "17 + 25"}})
    run = wait_status(server.base_url, run_id, {"done", "unverified", "partial", "failed"})
    assert "File `n.txt`" in run["request"] and "17 + 25" in run["request"]
    too_many = {f"f{i}.txt": "x" for i in range(30)}
    r = httpx.post(f"{server.base_url}/v1/runs", json={"request": QUESTION, "files": too_many})
    assert r.status_code == 413 and "files" in r.json()["error"]["message"]


def test_a_runs_artifacts_are_served(server: ServiceProcess) -> None:
    """A routing run on an attached CVRPLIB instance (read without the model) writes its route map."""
    instance = cvrplib("E-n22-k4.vrp")
    if instance is None:
        pytest.skip("VRPSolverEasy (data only) is not installed")
    body = {
        "request": "Route these deliveries, time limit 1 s.",
        "domain": "routing",
        "files": {"E-n22-k4.vrp": instance},
    }
    run_id = start_run(server.base_url, body)
    run = wait_status(server.base_url, run_id, {"done", "unverified", "partial", "failed"}, timeout=120)
    assert run["status"] == "done", run
    [name] = [a for a in run["artifacts"] if a.endswith(".png")]
    got = httpx.get(f"{server.base_url}/v1/runs/{run_id}/artifacts/{name}")
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.content.startswith(b"\x89PNG")
    assert httpx.get(f"{server.base_url}/v1/runs/{run_id}/artifacts/..%2Fruns.db").status_code == 404


def test_a_full_queue_refuses_with_retry_after(tmp_path: Path) -> None:
    with ServiceProcess(tmp_path, delay_s=0.5, workers=1, extra=["--max-queue", "1"]) as proc:
        first = start_run(proc.base_url)
        events(proc.base_url, first, stop_after=1)  # the worker has taken it
        start_run(proc.base_url)  # waits in the queue
        r = httpx.post(f"{proc.base_url}/v1/runs", json={"request": QUESTION})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.json()["error"]["code"] == "queue_full"
        assert httpx.get(f"{proc.base_url}/v1/runs").json()["total"] == 2  # the refused one was not stored
