"""Webhooks on run completion: a signed JSON POST, retried with backoff, every attempt recorded.

The body is the payload as compact JSON with sorted keys. It is signed like Stripe's webhooks: HMAC-SHA256 with
the server's secret over ``"<timestamp>." + body``, sent as ``X-Longthink-Signature: t=<timestamp>,v1=<hex>``.
A receiver checks it with :func:`verify` (or three lines of its own code), which also refuses a stale timestamp
so a captured request cannot be replayed later. Every retry of one delivery carries the same
``X-Longthink-Delivery`` id (receivers de-duplicate on it) and a fresh timestamp and signature.

Retried: connection errors, timeouts, 5xx, 408 and 429 (``Retry-After`` honoured, capped at ``max_delay_s``).
Not retried: any other answer. :func:`deliver` never raises for a failed delivery; it returns False.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from longthink import __version__
from longthink.errors import ConfigError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Longthink-Signature"
EVENT_HEADER = "X-Longthink-Event"
DELIVERY_HEADER = "X-Longthink-Delivery"
EVENT = "run.finished"
USER_AGENT = f"longthink-webhooks/{__version__}"
RETRY_STATUSES = frozenset({408, 429})


# -- signatures -------------------------------------------------------------------------------------------------
def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The ``X-Longthink-Signature`` value: ``t=<timestamp>,v1=<hex>``."""
    return f"t={timestamp},v1={sign(secret, body, timestamp)}"


def verify(
    secret: str | bytes, body: bytes, header: str, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """Whether ``header`` (an ``X-Longthink-Signature`` value) signs ``body`` under ``secret`` with a timestamp
    at most ``tolerance_s`` seconds from ``now`` (default: the clock). Several ``v1=`` entries are allowed (one
    matching is enough, as during a secret rotation); a malformed header is simply not valid."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).encode()
    # every candidate is compared (no short-circuit), each in constant time
    return any([hmac.compare_digest(expected, s.encode("ascii", "replace")) for s in signatures])


# -- delivery ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    """One POST of a delivery: ``status_code`` None when no answer came (``error`` says why); ``ts`` when it
    started (epoch seconds); ``delivery_id`` the same for every attempt of one delivery."""

    run_id: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    ok: bool
    ts: float
    duration_s: float
    delivery_id: str = ""


def check_url(url: str) -> str:
    """``url`` when it is an absolute http(s) URL with a host; else :class:`~longthink.errors.ConfigError`."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # the port raises ValueError when it is not a number in range
    except ValueError as exc:
        raise ConfigError(f"webhook_url {url!r} is not a valid URL: {exc}", field="webhook_url") from None
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ConfigError(f"webhook_url {url!r} holds whitespace or control characters", field="webhook_url")
    if parts.scheme not in ("http", "https"):
        scheme = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise ConfigError(f"webhook_url must be an http:// or https:// URL, not {scheme}", field="webhook_url")
    if not host:
        raise ConfigError(f"webhook_url {url!r} names no host", field="webhook_url")
    return url


def encode(payload: Mapping[str, Any]) -> bytes:
    """The body as sent: compact JSON, sorted keys (a NaN or a value JSON cannot hold raises ``ValueError`` or
    ``TypeError``)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _backoff(attempt: int, base_delay_s: float, max_delay_s: float) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**(attempt-1)``, capped."""
    ceiling = min(max_delay_s, base_delay_s * 2.0 ** (attempt - 1))
    return ceiling * (0.5 + random.random() / 2)  # jitter, not cryptography


async def deliver(
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: str | bytes,
    run_id: str,
    record: Callable[[WebhookAttempt], None],
    attempts: int = 5,
    base_delay_s: float = 0.5,
    max_delay_s: float = 30,
    timeout_s: float = 10,
    client: httpx.AsyncClient | None = None,
) -> bool:
    """POST ``payload`` to ``url`` signed with ``secret``, up to ``attempts`` times; True once a 2xx came back.

    Every attempt is handed to ``record`` (an exception there is logged, never stops the delivery). Raises
    ``ValueError`` (:class:`~longthink.errors.ConfigError`) only for a URL :func:`check_url` refuses or a
    payload JSON cannot hold; delivery failures return False. Redirects are not followed (a 3xx is a failure).
    """
    check_url(url)
    if attempts < 1:
        raise ConfigError(f"attempts must be >= 1, got {attempts}", field="attempts")
    body = encode(payload)
    delivery_id = uuid.uuid4().hex
    own = client is None
    http = client if client is not None else httpx.AsyncClient(follow_redirects=False)
    try:
        for attempt in range(1, attempts + 1):
            timestamp = int(time.time())
            headers = {
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                SIGNATURE_HEADER: signature_header(secret, body, timestamp),
                EVENT_HEADER: EVENT,
                DELIVERY_HEADER: delivery_id,
            }
            status: int | None = None
            error: str | None = None
            wait: float | None = None
            started, clock = time.time(), time.monotonic()
            try:
                async with asyncio.timeout(timeout_s):  # the whole exchange, not only each read
                    response = await http.post(url, content=body, headers=headers, timeout=timeout_s)
                status = response.status_code
                retry = status >= 500 or status in RETRY_STATUSES
                wait = _retry_after(response.headers.get("Retry-After")) if retry else None
            except (httpx.TransportError, TimeoutError) as exc:  # refused or lost connections, timeouts
                error, retry = _describe(exc, timeout_s), True
            except (httpx.HTTPError, httpx.InvalidURL) as exc:  # too many redirects, a URL httpx refuses...
                error, retry = _describe(exc, timeout_s), False
            ok = status is not None and 200 <= status < 300
            _record(record, WebhookAttempt(run_id, url, attempt, status, error, ok, started,
                                           time.monotonic() - clock, delivery_id))  # fmt: skip
            if ok:
                return True
            if not retry or attempt == attempts:
                break
            delay = _backoff(attempt, base_delay_s, max_delay_s) if wait is None else min(wait, max_delay_s)
            await asyncio.sleep(delay)
        log.warning("webhook for run %s to %s failed after %d attempt(s)", run_id, url, attempt)
        return False
    finally:
        if own:
            await http.aclose()


def _describe(exc: Exception, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s} s"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _record(record: Callable[[WebhookAttempt], None], attempt: WebhookAttempt) -> None:
    try:
        record(attempt)
    except Exception:  # a broken recorder must not stop the delivery
        log.exception("recording webhook attempt %d of run %s failed", attempt.attempt, attempt.run_id)


__all__ = [
    "DELIVERY_HEADER",
    "EVENT",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "WebhookAttempt",
    "check_url",
    "deliver",
    "encode",
    "sign",
    "signature_header",
    "verify",
]
