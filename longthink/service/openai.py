"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

``model`` names a profile (``longthink``, ``longthink-adaptive``, ``longthink-best-of-8``, ...); options may come
in the body as ``"longthink": {"strategy": ..., "budget_tokens": ..., "domain": ...}`` (``extra_body`` in the
OpenAI clients). Every completion is a run of the agent, stored like the runs API's (``longthink.run_id`` in the
response names it). Streaming sends the search while it runs — the plan, each step, the candidates with their
scores and votes, the choice — as reasoning deltas in both ``reasoning_content`` and ``reasoning`` (vLLM's old
and new names), then the answer as ``content``. ``usage`` sums every internal model call; ``model_calls`` counts
them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse

from longthink.service import schemas as s
from longthink.service.http import ApiError, TenantDep, sse_data
from longthink.service.jobs import Job
from longthink.service.narrate import Narrator

if TYPE_CHECKING:
    from longthink.service.app import Service

PROFILES: dict[str, tuple[str, dict[str, Any]]] = {
    "longthink": ("Plan, then search each step with the strategy chosen per step (auto).", {}),
    "longthink-adaptive": ("Adaptive self-consistency: samples until the vote is confident.", {"strategy": "adaptive"}),
    "longthink-self-consistency-8": (
        "Majority vote over 8 samples per step.", {"strategy": "self_consistency", "strategy_options": {"n": 8}},
    ),
    "longthink-best-of-8": ("Best of 8 samples per step by the reward.", {"strategy": "best_of_n",
                                                                            "strategy_options": {"n": 8}}),
    "longthink-cot": ("One chain of thought per step (the cheapest).", {"strategy": "cot"}),
}  # fmt: skip


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(str(p.get("text", "")) for p in content if p.get("type") in ("text", "input_text"))


def request_of(messages: list[s.ChatMessage]) -> str:
    """The agent's request from a chat: the last user message, with the conversation before it as context."""
    users = [i for i, m in enumerate(messages) if m.role == "user"]
    if not users:
        raise ApiError(400, "the messages hold no user message", code="invalid_messages")
    last = users[-1]
    question = _text(messages[last].content).strip()
    if not question:
        raise ApiError(400, "the last user message is empty", code="invalid_messages")
    before = [f"{m.role}: {_text(m.content).strip()}" for m in messages[:last] if _text(m.content).strip()]
    if not before:
        return question
    return "Conversation so far:\n" + "\n".join(before) + f"\n\nAnswer this: {question}"


def options_of(body: s.ChatRequest) -> dict[str, Any]:
    if body.model not in PROFILES:
        known = ", ".join(PROFILES)
        raise ApiError(404, f"unknown model {body.model!r}: the profiles are {known}", code="model_not_found")
    options = dict(PROFILES[body.model][1])
    extra = body.model_extra or {}
    for name in ("temperature", "seed"):
        if extra.get(name) is not None:
            options[name] = extra[name]
    cap = extra.get("max_completion_tokens") or extra.get("max_tokens")
    if isinstance(cap, int) and cap > 0:
        options["budget_tokens"] = cap  # every token the search generates counts against it (usage shows them)
    if body.longthink is not None:
        options.update(body.longthink.model_dump(exclude_none=True, exclude_defaults=True))
    options["approve_plan"] = False  # a chat completion cannot wait for a person: nor for answers (defaults, labelled)
    options["ask_missing"] = False
    return options


def usage_of(job: Job) -> dict[str, int]:
    return {
        "prompt_tokens": job.prompt_tokens, "completion_tokens": job.completion_tokens,
        "total_tokens": job.prompt_tokens + job.completion_tokens, "model_calls": job.requests,
    }  # fmt: skip


def add_openai_routes(app: FastAPI, svc: Service) -> None:
    @app.get("/v1/models", response_model=s.ModelList, tags=["openai"])
    async def models(tenant: TenantDep) -> s.ModelList:
        """The profiles a chat completion may name as its ``model``."""
        now = int(time.time())
        return s.ModelList(data=[s.ModelCard(id=k, created=now, description=d) for k, (d, _) in PROFILES.items()])

    @app.post("/v1/chat/completions", tags=["openai"], responses={200: {"content": {"text/event-stream": {}}}})
    async def chat(body: s.ChatRequest, tenant: TenantDep) -> Any:
        """A chat completion answered by a longthink run (streamed: the search as reasoning, then the answer)."""
        from longthink.service.app import _check_size, _submit

        request = request_of(body.messages)
        _check_size(request, {}, svc.config)
        job = await _submit(svc, tenant, request, options_of(body), source="chat")
        cid, created = f"chatcmpl-{job.run_id}", int(time.time())
        if body.stream:
            usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(
                _stream(svc, job, body.model, cid, created, usage), media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )  # fmt: skip
        done = await _wait(svc, job)
        if done.status == "failed" or done.answer is None:
            raise ApiError(502, f"the run failed: {_why(done)}", type="server_error", code="run_failed")
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": done.answer},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": usage_of(done),
                "longthink": {"run_id": job.run_id, "status": done.status},
            }
        )


async def _wait(svc: Service, job: Job) -> Job:
    live = svc.runs.live.get(job.run_id)
    if live is not None:
        async for _ in live.follow(0, heartbeat_s=svc.config.heartbeat_s):
            pass
    done = await asyncio.to_thread(svc.jobs.get, job.run_id)
    return done or job


def _why(job: Job) -> str:
    return job.error or f"it ended {job.status} without an answer"


def _chunk(cid: str, created: int, model: str, delta: Mapping[str, Any], finish: str | None = None) -> str:
    body = {
        "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish, "logprobs": None}],
    }  # fmt: skip
    return sse_data(json.dumps(body))


async def _stream(svc: Service, job: Job, model: str, cid: str, created: int, usage: bool) -> AsyncIterator[str]:
    yield _chunk(cid, created, model, {"role": "assistant", "content": ""})
    narrate = Narrator()
    live = svc.runs.live.get(job.run_id)
    if live is not None:
        async for batch in live.follow(0, heartbeat_s=svc.config.heartbeat_s):
            if not batch:
                yield ": keepalive\n\n"
                continue
            text = "".join(t for t in map(narrate, batch) if t)
            if text:
                yield _chunk(cid, created, model, {"reasoning_content": text, "reasoning": text})
    done = await asyncio.to_thread(svc.jobs.get, job.run_id) or job
    if done.status == "failed" or done.answer is None:
        message = f"the run failed: {_why(done)}"
        yield sse_data(json.dumps({"error": {"message": message, "type": "server_error", "code": "run_failed"}}))
    else:
        yield _chunk(cid, created, model, {"content": done.answer})
        yield _chunk(cid, created, model, {}, finish="stop")
        if usage:
            tail = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
                    "usage": usage_of(done), "longthink": {"run_id": job.run_id, "status": done.status}}  # fmt: skip
            yield sse_data(json.dumps(tail))
    yield "data: [DONE]\n\n"


__all__ = ["PROFILES", "add_openai_routes", "request_of"]
