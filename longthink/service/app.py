"""``longthink serve``: the HTTP service (FastAPI). Runs are jobs on a bounded worker pool; their typed events
stream as Server-Sent Events, resumable with ``Last-Event-ID``; an OpenAI-compatible endpoint streams the search
as reasoning (:mod:`.openai`). All state is in the database: a restarted server lists every run and resumes the
unfinished ones. The service only parses, calls the core API (:class:`longthink.api.Agent`) and renders events.

    from longthink.service.app import create_app, ServiceConfig
    app = create_app(settings, config=ServiceConfig(workers=4))   # any ASGI server; `longthink serve` uses uvicorn
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longthink import __version__
from longthink.config import Settings
from longthink.errors import ConfigError
from longthink.events import ApprovalRequested, ClarificationRequested
from longthink.llm.base import LLM
from longthink.service import schemas as s
from longthink.service.http import ApiError, Auth, BodyLimit, TenantDep, error_response, sse, sse_data
from longthink.service.jobs import Job, JobQuery, JobStore, Tenant
from longthink.service.runs import Conflict, QueueFull, QuotaExceeded, RunManager

log = logging.getLogger("longthink.service")


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """How the service behaves. ``workers``: runs executed at once (the rest wait in the queue);
    ``require_auth``: None = keys are required once any exists (``longthink keys create``); ``cors_origins``:
    empty = CORS off; ``webhook_secret``: signs webhook bodies (runs may name a webhook only when it is set);
    ``artifacts_dir``: where runs write files, one sub-directory per run (default: the user data directory);
    ``max_queue``: runs waiting for a worker at most (more are refused with 503 and Retry-After)."""

    workers: int = 4
    max_body_bytes: int = 1 << 20
    max_request_chars: int = 100_000
    max_files: int = 20
    require_auth: bool | None = None
    cors_origins: tuple[str, ...] = ()
    webhook_secret: str | None = None
    heartbeat_s: float = 15.0
    webhook_attempts: int = 5
    artifacts_dir: str | None = None
    max_queue: int = 1000


class Service:
    """The state behind the routes: settings, backends, the run store, the job tables and the run manager."""

    def __init__(self, settings: Settings, config: ServiceConfig, llm: LLM | None) -> None:
        self.settings, self.config, self._llm = settings, config, llm
        self.jobs = JobStore(str(settings.resolved_db_url))
        self.auth = Auth(self.jobs, config.require_auth)
        self.metrics = _metrics()
        self.manager: RunManager | None = None
        self.store: Any = None
        self._webhooks: set[asyncio.Task[Any]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        from longthink.api import Agent
        from longthink.checkpoints import default_checkpoints, open_checkpointer
        from longthink.store import open_store

        self.store = await asyncio.to_thread(open_store, self.settings.resolved_db_url)
        llm = self._llm
        if llm is None:
            from longthink.llm.registry import build_llm

            llm = await asyncio.to_thread(build_llm, self.settings)
        judge = Agent(llm=llm, settings=self.settings, store=None, checkpoints=None).judge_llm
        target = default_checkpoints(self.settings)
        async with contextlib.AsyncExitStack() as stack:
            if target is None:
                from langgraph.checkpoint.memory import InMemorySaver

                saver: Any = InMemorySaver()
            else:
                saver = await stack.enter_async_context(open_checkpointer(target))
            self.manager = RunManager(
                settings=self.settings, llm=llm, judge_llm=judge, store=self.store, jobs=self.jobs, saver=saver,
                workers=self.config.workers, artifacts_dir=self.config.artifacts_dir, max_queue=self.config.max_queue,
                on_event=self._on_event, on_finished=self._on_finished,
            )  # fmt: skip
            await self.manager.start()
            try:
                yield
            finally:
                await self.manager.stop()
                for task in list(self._webhooks):
                    task.cancel()
                await llm.aclose()
                self.store.close()
                self.jobs.close()

    @property
    def runs(self) -> RunManager:
        if self.manager is None:
            raise ApiError(503, "the service is starting", type="server_error")
        return self.manager

    def _on_event(self, event: Any) -> None:
        if self.metrics is not None:
            self.metrics.observe(event)

    def _on_finished(self, job: Job) -> None:
        if self.metrics is not None and job.status == "cancelled":
            self.metrics.forget(job.run_id)  # a cancelled run sends no final event: drop what metrics keep of it
        if job.webhook_url and self.config.webhook_secret:
            task = asyncio.get_running_loop().create_task(self._deliver(job))
            self._webhooks.add(task)
            task.add_done_callback(self._webhooks.discard)

    async def _deliver(self, job: Job) -> None:
        from longthink.service.webhooks import WebhookAttempt, deliver

        def record(a: WebhookAttempt) -> None:
            self.jobs.record_delivery(
                run_id=a.run_id, url=a.url, delivery_id=a.delivery_id, attempt=a.attempt, status_code=a.status_code,
                error=a.error, ok=a.ok, ts=a.ts, duration_s=a.duration_s,
            )  # fmt: skip

        payload = {
            "event": "run.finished", "run_id": job.run_id, "status": job.status, "answer": job.answer,
            "error": job.error, "domain": job.domain, "finished_at": job.finished_at,
            "spend": {"prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens,
                      "requests": job.requests},
        }  # fmt: skip
        secret = self.config.webhook_secret or ""
        await deliver(str(job.webhook_url), payload, secret=secret, run_id=job.run_id, record=record,
                      attempts=self.config.webhook_attempts)  # fmt: skip

    # -- views ----------------------------------------------------------------------------------------------
    async def job(self, run_id: str, tenant: Tenant) -> Job:
        """The tenant's job ``run_id``; another tenant's run is "not found", like one that does not exist."""
        job = await asyncio.to_thread(self.jobs.get, run_id, tenant.name)
        if job is None:
            raise ApiError(404, f"no run {run_id!r}", code="run_not_found")
        return job

    async def view(self, job: Job, *, detail: bool = True) -> s.RunView:
        steps: list[s.StepView] = []
        plan = pending = questions = error = None
        spend = s.Spend(prompt_tokens=job.prompt_tokens, completion_tokens=job.completion_tokens, requests=job.requests)
        if detail and self.store is not None:
            record = await asyncio.to_thread(self.store.get_run, job.run_id)
            if record is not None:
                steps = [
                    s.StepView(id=st.id, goal=st.goal, kind=st.kind, strategy=st.strategy, status=st.status,
                               answer=st.answer, verified=st.verified, error=st.error)
                    for st in record.steps
                ]  # fmt: skip
                chosen = [p for p in record.plans if p.selected]
                plan = dict(chosen[-1].plan) if chosen and chosen[-1].plan else None
                if not job.finished and record.run.spend:
                    spend = s.Spend(**{k: int(record.run.spend.get(k) or 0) for k in s.Spend.model_fields})
            if job.status == "awaiting_approval":
                events = await asyncio.to_thread(self.store.events, job.run_id)
                asks = [e for e in events if isinstance(e, ApprovalRequested)]
                pending = dict(asks[-1].plan) if asks else None
                error = asks[-1].error if asks else None
            elif job.status == "awaiting_input":
                events = await asyncio.to_thread(self.store.events, job.run_id)
                asked = [e for e in events if isinstance(e, ClarificationRequested)]
                questions = [s.QuestionView(**q.model_dump()) for q in asked[-1].questions] if asked else None
                error = asked[-1].error if asked else None
        return s.RunView(
            id=job.run_id, status=job.status, request=job.request, domain=job.domain, answer=job.answer,
            error=job.error, plan=plan, pending_plan=pending, pending_questions=questions, pending_error=error,
            steps=steps, spend=spend,
            artifacts=[Path(a).name for a in job.artifacts], created_at=job.created_at, finished_at=job.finished_at,
            events_url=f"/v1/runs/{job.run_id}/events",
        )  # fmt: skip

    async def events(self, job: Job, after: int) -> AsyncIterator[str]:
        """The run's events after ``after``: the stored ones first, then this session's live ones (no gap, no
        repeat: each is sent once, by sequence number), ending with an ``end`` event once the run rests."""
        live = self.runs.live.get(job.run_id)
        first = live.first_seq if live is not None else None
        if first is None or after + 1 < first:
            stored = await asyncio.to_thread(self.store.events, job.run_id, after=after)
            for event in stored:
                if first is not None and event.seq >= first:
                    break
                yield sse(event)
                after = event.seq
        if live is not None:
            async for batch in live.follow(after, heartbeat_s=self.config.heartbeat_s):
                if not batch:
                    yield ": keepalive\n\n"
                    continue
                yield "".join(sse(event) for event in batch)
                after = batch[-1].seq
        status = live.status if live is not None else None
        if status is None:
            final = await asyncio.to_thread(self.jobs.get, job.run_id)
            status = final.status if final is not None else job.status
        yield sse_data({"status": status, "last_event_id": after}, event="end")

    async def ready(self) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            await asyncio.to_thread(self.jobs.ping)
            if self.store is not None:
                await asyncio.to_thread(self.store.last_seq, "readyz")
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised: readiness says what is down
            checks["database"] = f"down: {type(exc).__name__}"
        checks["model"] = await _backend_ready(self.manager.llm if self.manager else None)
        return checks


async def _backend_ready(llm: LLM | None) -> str:
    if llm is None:
        return "starting"
    urls = getattr(llm, "base_urls", None)
    if not urls:
        return "ok"  # an in-process engine: loaded when the service started
    import httpx

    async with httpx.AsyncClient(timeout=2.0) as client:
        for url in urls:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{str(url).rstrip('/')}/models")).status_code < 500:
                    return "ok"
    return "down: no endpoint answered"


def _metrics() -> Any:
    try:
        from longthink.service.metrics import ServiceMetrics
    except ImportError:  # prometheus-client not installed: /metrics answers 404
        return None
    return ServiceMetrics()


def create_app(settings: Settings, *, config: ServiceConfig | None = None, llm: LLM | None = None) -> FastAPI:
    """The service as an ASGI app. ``llm``: a backend to use instead of the one ``settings`` configure."""
    config = config or ServiceConfig()
    svc = Service(settings, config, llm)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with svc.running():
            yield

    app = FastAPI(
        title="longthink",
        version=__version__,
        summary="Deliberate AI agents as a service: runs with streamed search events, an OpenAI-compatible API.",
        lifespan=lifespan,
    )
    app.state.service = svc
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["*"],
                           allow_headers=["*"])  # fmt: skip
    app.add_middleware(Timing, metrics=svc.metrics)
    _errors(app)

    @app.post("/v1/runs", status_code=202, response_model=s.RunCreated, tags=["runs"])
    async def create_run(body: s.RunCreate, tenant: TenantDep, response: Response) -> s.RunCreated:
        """Start a run: it is queued, then executed by the worker pool; follow it at ``events_url``."""
        _check_size(body.request, body.files, config)
        if body.model and body.model != settings.model:
            raise ApiError(400, f"this server serves {settings.model!r}, not {body.model!r}", code="model_not_found")
        webhook = _webhook(body.webhook_url, config)
        options = body.model_dump(include={"domain", "strategy", "strategy_options", "budget_tokens", "answer_mode",
                                           "approve_plan", "ask_missing"})  # fmt: skip
        job = await _submit(svc, tenant, body.request, options, files=body.files, webhook_url=webhook)
        response.headers["Location"] = f"/v1/runs/{job.run_id}"
        return s.RunCreated(id=job.run_id, status="queued", events_url=f"/v1/runs/{job.run_id}/events")

    @app.get("/v1/runs", response_model=s.RunList, tags=["runs"])
    async def list_runs(
        tenant: TenantDep,
        status: Annotated[list[str] | None, Query(description="Only runs with these statuses.")] = None,
        domain: str | None = None,
        since: Annotated[float | None, Query(description="Created at or after (Unix time).")] = None,
        until: Annotated[float | None, Query(description="Created before (Unix time).")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> s.RunList:
        """The tenant's runs, newest first."""
        query = JobQuery(tenant.name, tuple(status or ()), domain, since, until, limit, offset)
        jobs, total = await asyncio.to_thread(svc.jobs.page, query)
        views = [await svc.view(j, detail=False) for j in jobs]
        nxt = offset + len(jobs) if offset + len(jobs) < total else None
        return s.RunList(runs=views, total=total, limit=limit, offset=offset, next_offset=nxt)

    @app.get("/v1/runs/{run_id}", response_model=s.RunView, tags=["runs"])
    async def get_run(run_id: str, tenant: TenantDep) -> s.RunView:
        """A run: status, plan, steps, answer, spend (the plan waiting for approval in ``pending_plan``, the
        questions of a run awaiting input in ``pending_questions``)."""
        return await svc.view(await svc.job(run_id, tenant))

    @app.get(
        "/v1/runs/{run_id}/events",
        tags=["runs"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "The run's typed events (SSE)."}},
    )
    async def run_events(
        run_id: str,
        tenant: TenantDep,
        last_event_id: Annotated[str | None, Header(description="Resume after this event's id.")] = None,
        after: Annotated[int | None, Query(ge=0, description="Resume after this sequence number.")] = None,
    ) -> StreamingResponse:
        """The run's typed events (docs/events.schema.json) as Server-Sent Events; each SSE id is the event's
        sequence number, so a client that reconnects with ``Last-Event-ID`` gets every later event once."""
        job = await svc.job(run_id, tenant)
        start = after if after is not None else _last_event_id(last_event_id)
        return StreamingResponse(
            svc.events(job, start), media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    @app.post("/v1/runs/{run_id}/approve", status_code=202, response_model=s.RunView, tags=["runs"])
    async def approve(run_id: str, decision: s.Decision, tenant: TenantDep) -> s.RunView:
        """Approve, edit or reject the plan a run waits on; the run goes on (or replans) in the pool."""
        from longthink.api import check_decision

        job = await svc.job(run_id, tenant)
        if decision.action == "edit" and not decision.plan:
            raise ApiError(422, "an 'edit' decision needs the edited 'plan'")
        try:
            await svc.runs.decide(job, check_decision(decision.model_dump(exclude_none=True)))
        except ConfigError as exc:
            raise ApiError(400, str(exc), code="invalid_decision") from None
        except Conflict as exc:
            raise ApiError(409, str(exc), code="conflict") from None
        return await svc.view(await svc.job(run_id, tenant), detail=False)

    @app.post("/v1/runs/{run_id}/answer", status_code=202, response_model=s.RunView, tags=["runs"])
    async def answer(run_id: str, body: s.Answers, tenant: TenantDep) -> s.RunView:
        """Answer the questions a run awaiting input asks (``pending_questions``), or take their defaults
        (``use_defaults``; a question left out takes its default too, labelled as an assumption); the run goes on
        (or asks again for an answer it cannot read) in the pool."""
        from longthink.api import check_decision

        job = await svc.job(run_id, tenant)
        if not body.use_defaults and not body.answers:
            raise ApiError(422, "give 'answers' (question id -> text) or 'use_defaults': true")
        if not body.use_defaults and job.status == "awaiting_input" and svc.store is not None:
            events = await asyncio.to_thread(svc.store.events, job.run_id)
            asked = [e for e in events if isinstance(e, ClarificationRequested)]
            ids = [q.id for q in asked[-1].questions] if asked else []
            unknown = sorted(set(body.answers) - set(ids))
            if asked and unknown:
                raise ApiError(400, f"run {run_id} asked no question {unknown[0]!r}; its questions are: "
                               f"{', '.join(ids)}", code="invalid_decision")  # fmt: skip
        raw = {"action": "defaults"} if body.use_defaults else {"action": "answer", "answers": body.answers}
        try:
            await svc.runs.decide(job, check_decision(raw), waiting="awaiting_input")
        except ConfigError as exc:
            raise ApiError(400, str(exc), code="invalid_decision") from None
        except Conflict as exc:
            raise ApiError(409, str(exc), code="conflict") from None
        return await svc.view(await svc.job(run_id, tenant), detail=False)

    @app.post("/v1/runs/{run_id}/cancel", response_model=s.RunView, tags=["runs"])
    async def cancel(run_id: str, tenant: TenantDep) -> s.RunView:
        """Cancel a queued, running or waiting run (what it computed stays stored)."""
        job = await svc.job(run_id, tenant)
        try:
            await svc.runs.cancel(job)
        except Conflict as exc:
            raise ApiError(409, str(exc), code="conflict") from None
        return await svc.view(await svc.job(run_id, tenant), detail=False)

    @app.get("/v1/runs/{run_id}/artifacts/{name}", tags=["runs"], response_class=FileResponse)
    async def artifact(run_id: str, name: str, tenant: TenantDep) -> FileResponse:
        """A file the run wrote (a route map, a document), by the name listed in the run's ``artifacts``."""
        job = await svc.job(run_id, tenant)
        for path in job.artifacts:
            if Path(path).name == name and await asyncio.to_thread(Path(path).is_file):
                return FileResponse(path, filename=name)
        raise ApiError(404, f"run {run_id} has no artifact {name!r}", code="artifact_not_found")

    @app.get("/v1/runs/{run_id}/webhooks", tags=["runs"])
    async def webhook_deliveries(run_id: str, tenant: TenantDep) -> list[dict[str, Any]]:
        """Every delivery attempt of the run's webhook (status code or error, time)."""
        job = await svc.job(run_id, tenant)
        return await asyncio.to_thread(svc.jobs.deliveries, job.run_id)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process answers."""
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """The database and the model backend are reachable (503 with what is down otherwise)."""
        checks = await svc.ready()
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics: runs by status, tokens, model calls, step latency, queue depth."""
        if svc.metrics is None:
            raise ApiError(404, "metrics need prometheus-client (the server extra)")
        if svc.manager is not None:
            svc.metrics.set_queue_depth(svc.manager.queue.qsize())
            svc.metrics.set_running(svc.manager.running)
        body, content_type = svc.metrics.render()
        return Response(body, media_type=content_type)

    from longthink.service.openai import add_openai_routes

    add_openai_routes(app, svc)
    from longthink.service.webui import add_ui_routes

    add_ui_routes(app)
    return app


async def _submit(svc: Service, tenant: Tenant, request: str, options: dict[str, Any], **kw: Any) -> Job:
    try:
        return await svc.runs.submit(tenant, request, options, **kw)
    except ConfigError as exc:
        raise ApiError(400, str(exc), code=f"invalid_{exc.field}" if getattr(exc, "field", None) else None) from None
    except QuotaExceeded as exc:
        raise ApiError(429, str(exc), type="insufficient_quota", code="insufficient_quota") from None
    except QueueFull as exc:
        raise ApiError(503, str(exc), type="server_error", code="queue_full", headers={"Retry-After": "5"}) from None


def _check_size(request: str, files: dict[str, str], config: ServiceConfig) -> None:
    total = len(request) + sum(len(v) for v in files.values())
    if total > config.max_request_chars:
        raise ApiError(413, f"the request and its files hold {total} characters; the limit is "
                       f"{config.max_request_chars}", code="too_large")  # fmt: skip
    if len(files) > config.max_files:
        raise ApiError(413, f"{len(files)} files attached; the limit is {config.max_files}", code="too_large")
    if "\x00" in request or any("\x00" in v for v in files.values()):
        raise ApiError(400, "the request or a file contains NUL characters (binary data is not accepted)")


def _webhook(url: str | None, config: ServiceConfig) -> str | None:
    if url is None:
        return None
    if not config.webhook_secret:
        raise ApiError(400, "this server has no webhook secret (LONGTHINK_WEBHOOK_SECRET): webhooks are off")
    from longthink.service.webhooks import check_url

    try:
        return check_url(url)
    except ConfigError as exc:
        raise ApiError(400, str(exc), code="invalid_webhook_url") from None


def _last_event_id(value: str | None) -> int:
    if value is None or not value.strip():
        return 0
    if not value.strip().isdigit():
        raise ApiError(400, f"Last-Event-ID must be an event's sequence number, not {value[:40]!r}")
    return int(value)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), type=exc.type, code=exc.code, **(exc.headers or {}))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return error_response(exc.status_code, str(exc.detail), type=kind)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}" for e in exc.errors()[:5]
        )
        return error_response(422, f"invalid request: {problems}", type="invalid_request_error", code="invalid")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error (logged on the server)", type="server_error")


class Timing:
    """Counts and times every HTTP request by route template for /metrics (a plain ASGI middleware: it passes a
    streamed response's chunks straight through, unlike an ``@app.middleware`` function)."""

    def __init__(self, app: ASGIApp, metrics: Any) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.metrics is None:
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_http(scope["method"], route, status, time.perf_counter() - start)


__all__ = ["Service", "ServiceConfig", "create_app"]
