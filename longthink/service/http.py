"""HTTP plumbing of the service: errors shaped like OpenAI's (``{"error": {"message", "type", "code"}}``, so the
official clients read them), a request-size limit enforced while the body streams in, API-key authentication,
and Server-Sent Events formatting."""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from longthink.events import Event, to_json
from longthink.service.jobs import JobStore, Tenant, hash_key

LOCAL_TENANT = Tenant("local")


class ApiError(HTTPException):
    """An error the caller gets as ``{"error": {"message", "type", "code"}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(status, message, headers=headers)
        self.type, self.code = type, code


class TooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes", code="too_large")


def error_response(status: int, message: str, *, type: str, code: str | None = None, **headers: str) -> JSONResponse:
    body = {"error": {"message": message, "type": type, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers or None)


class BodyLimit:
    """Refuses bodies over ``max_bytes`` (413): at once when Content-Length says so, else while reading."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            response = error_response(
                413, f"the request body is larger than the limit of {self.max_bytes} bytes",
                type="invalid_request_error", code="too_large",
            )  # fmt: skip
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise TooLarge(self.max_bytes)
            return message

        await self.app(scope, limited, send)


class Auth:
    """Maps the request's API key (``Authorization: Bearer KEY`` or ``X-API-Key: KEY``) to its tenant.

    Keys are required when ``required`` is True, or (``required`` None) as soon as any key exists in the
    database; without keys every request is the ``local`` tenant (the server then listens on loopback only).
    Lookups are cached for ``cache_s`` seconds (a revoked key stops working within that time)."""

    def __init__(self, jobs: JobStore, required: bool | None, *, cache_s: float = 5.0) -> None:
        self.jobs, self.required, self.cache_s = jobs, required, cache_s
        self._has_keys: tuple[float, bool] = (-math.inf, False)
        self._tenants: dict[str, tuple[float, Tenant | None]] = {}

    async def needed(self) -> bool:
        if self.required is not None:
            return self.required
        checked, exist = self._has_keys
        if time.monotonic() - checked > self.cache_s:
            exist = await asyncio.to_thread(self.jobs.has_keys)
            self._has_keys = (time.monotonic(), exist)
        return exist

    async def tenant(self, key: str) -> Tenant | None:
        digest = hash_key(key)
        checked, tenant = self._tenants.get(digest, (-math.inf, None))
        if time.monotonic() - checked > self.cache_s:
            tenant = await asyncio.to_thread(self.jobs.tenant_of, key)
            if len(self._tenants) > 10_000:
                self._tenants.clear()
            self._tenants[digest] = (time.monotonic(), tenant)
        return tenant

    async def __call__(self, request: Request) -> Tenant:
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        if not await self.needed():
            return LOCAL_TENANT
        if not key:
            raise ApiError(401, "an API key is required (Authorization: Bearer KEY)", type="authentication_error")
        tenant = await self.tenant(key)
        if tenant is None:
            raise ApiError(401, "invalid API key", type="authentication_error", code="invalid_api_key")
        return tenant


async def current_tenant(request: Request) -> Tenant:
    """The request's tenant, by the app's :class:`Auth` (a FastAPI dependency)."""
    auth: Auth = request.app.state.service.auth
    return await auth(request)


TenantDep = Annotated[Tenant, Depends(current_tenant)]


def sse(event: Event) -> str:
    """One event as a Server-Sent Event: its sequence number is the SSE id (what Last-Event-ID resumes from)."""
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {json.dumps(to_json(event))}\n\n"


def sse_data(payload: Any, *, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload if isinstance(payload, str) else json.dumps(payload, default=str)}\n\n"


__all__ = [
    "LOCAL_TENANT",
    "ApiError",
    "Auth",
    "BodyLimit",
    "TenantDep",
    "TooLarge",
    "current_tenant",
    "error_response",
    "sse",
    "sse_data",
]
