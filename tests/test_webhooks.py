"""Webhooks against a real local HTTP receiver (tests/servers.py's scripted server): signatures, retries,
Retry-After, no retry on 4xx, a receiver that is down, and receivers' own checks (tampered body, stale time)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from servers import Reply, ScriptedServer, Seen, free_port

from longthink.errors import ConfigError
from longthink.service.webhooks import WebhookAttempt, check_url, deliver, encode, sign, verify

SECRET = "whsec-test"
PAYLOAD: dict[str, Any] = {"event": "run.finished", "run_id": "r1", "status": "done", "answer": "42", "é": [1.5]}


def _ok(path: str, body: Any) -> Reply:
    return Reply(status=200, body={"received": True})


def _wire(seen: Seen) -> bytes:
    """The body the receiver got, byte for byte: the scripted server parses JSON, and our wire format is its
    canonical form (compact, sorted keys), which Content-Length confirms."""
    raw = json.dumps(seen.body, separators=(",", ":"), sort_keys=True).encode()
    assert int(seen.headers["Content-Length"]) == len(raw)
    return raw


async def _deliver(url: str, **kwargs: Any) -> tuple[bool, list[WebhookAttempt]]:
    attempts: list[WebhookAttempt] = []
    options: dict[str, Any] = {"base_delay_s": 0.01, "max_delay_s": 0.05, "timeout_s": 2} | kwargs
    ok = await deliver(url, PAYLOAD, secret=SECRET, run_id="r1", record=attempts.append, **options)
    return ok, attempts


async def test_first_try_is_signed_and_verifiable() -> None:
    with ScriptedServer(_ok) as server:
        ok, attempts = await _deliver(f"{server.base_url}/hook")
    assert ok
    assert [(a.attempt, a.status_code, a.ok, a.error) for a in attempts] == [(1, 200, True, None)]
    (seen,) = server.posts()
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["x-longthink-event"] == "run.finished"
    assert headers["user-agent"].startswith("longthink-webhooks/")
    assert headers["x-longthink-delivery"] == attempts[0].delivery_id != ""
    body = _wire(seen)
    assert body == encode(PAYLOAD) and b'"answer":"42"' in body
    assert verify(SECRET, body, headers["x-longthink-signature"])
    assert verify(SECRET.encode(), body, headers["x-longthink-signature"])
    assert not verify("another-secret", body, headers["x-longthink-signature"])
    assert attempts[0].run_id == "r1" and attempts[0].duration_s >= 0 and abs(attempts[0].ts - time.time()) < 10


async def test_server_errors_are_retried_under_one_delivery_id() -> None:
    with ScriptedServer(_ok) as server:
        server.push(Reply(status=500), Reply(status=503))
        ok, attempts = await _deliver(f"{server.base_url}/hook")
    assert ok
    assert [(a.attempt, a.status_code, a.ok) for a in attempts] == [(1, 500, False), (2, 503, False), (3, 200, True)]
    ids = {s.headers["X-Longthink-Delivery"] for s in server.posts()}
    assert len(server.posts()) == 3 and ids == {attempts[0].delivery_id}
    assert len({a.delivery_id for a in attempts}) == 1
    for seen in server.posts():  # every retry carries its own valid signature
        assert verify(SECRET, _wire(seen), seen.headers["X-Longthink-Signature"])


async def test_429_retry_after_is_honoured_and_capped() -> None:
    with ScriptedServer(_ok) as server:
        server.push(Reply(status=429, headers={"Retry-After": "1"}), Reply(status=408, headers={"Retry-After": "3600"}))
        ok, attempts = await _deliver(f"{server.base_url}/hook", max_delay_s=0.3)
    assert ok and [a.status_code for a in attempts] == [429, 408, 200]
    first, second, third = (s.at for s in server.posts())
    assert 0.25 <= second - first < 0.9  # Retry-After: 1 capped at max_delay_s=0.3
    assert 0.25 <= third - second < 0.9  # Retry-After: 3600 capped too

    with ScriptedServer(_ok) as server:
        server.push(Reply(status=429, headers={"Retry-After": "1"}))
        ok, attempts = await _deliver(f"{server.base_url}/hook", max_delay_s=5)
    first, second = (s.at for s in server.posts())
    assert ok and second - first >= 0.95  # honoured, though the backoff alone would wait ~0.01 s


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302])
async def test_other_answers_are_not_retried(status: int) -> None:
    with ScriptedServer(_ok) as server:
        server.push(Reply(status=status, headers={"Location": "http://127.0.0.1:1/"} if status == 302 else {}))
        ok, attempts = await _deliver(f"{server.base_url}/hook")
    assert not ok and len(server.posts()) == 1
    assert [(a.attempt, a.status_code, a.ok) for a in attempts] == [(1, status, False)]


async def test_a_receiver_that_is_down_exhausts_the_attempts_without_raising() -> None:
    ok, attempts = await _deliver(f"http://127.0.0.1:{free_port()}/hook", attempts=3)
    assert not ok and [a.attempt for a in attempts] == [1, 2, 3]
    assert all(a.status_code is None and not a.ok and a.error and "ConnectError" in a.error for a in attempts)
    assert len({a.delivery_id for a in attempts}) == 1


async def test_a_slow_receiver_times_out_and_is_retried() -> None:
    with ScriptedServer(_ok) as server:
        server.push(Reply(status=200, delay_s=1.0))
        ok, attempts = await _deliver(f"{server.base_url}/hook", timeout_s=0.2)
    assert ok and [(a.status_code, a.ok) for a in attempts] == [(None, False), (200, True)]
    assert attempts[0].error is not None and attempts[0].duration_s < 0.9


async def test_a_given_client_is_used_and_left_open() -> None:
    with ScriptedServer(_ok) as server:
        async with httpx.AsyncClient() as client:
            ok, _ = await _deliver(f"{server.base_url}/hook", client=client)
            assert ok and not client.is_closed


async def test_a_broken_recorder_does_not_stop_the_delivery() -> None:
    def record(_: WebhookAttempt) -> None:
        raise RuntimeError("the database is gone")

    with ScriptedServer(_ok) as server:
        server.push(Reply(status=500))
        ok = await deliver(f"{server.base_url}/hook", PAYLOAD, secret=SECRET, run_id="r1", record=record,
                           base_delay_s=0.01)  # fmt: skip
    assert ok and len(server.posts()) == 2


def test_verify_refuses_a_tampered_body_a_stale_timestamp_and_junk() -> None:
    body = encode(PAYLOAD)
    now = 1_700_000_000
    header = f"t={now},v1={sign(SECRET, body, now)}"
    assert verify(SECRET, body, header, now=now + 299)
    assert not verify(SECRET, body.replace(b'"42"', b'"43"'), header, now=now)
    assert not verify(SECRET, body, header, now=now + 301)  # stale
    assert not verify(SECRET, body, header, now=now - 301)  # from the future
    assert verify(SECRET, body, header, now=now + 3000, tolerance_s=3600)
    moved = f"t={now + 1},v1={sign(SECRET, body, now)}"  # the timestamp is part of what is signed
    assert not verify(SECRET, body, moved, now=now)
    rotated = f"t={now},v1={sign('old-secret', body, now)},v1={sign(SECRET, body, now)}"
    assert verify(SECRET, body, rotated, now=now)
    for junk in ("", "t=,v1=", f"v1={sign(SECRET, body, now)}", f"t={now}", f"t=abc,v1={sign(SECRET, body, now)}",
                 f"t={now},v1=ünïcode"):  # fmt: skip
        assert not verify(SECRET, body, junk, now=now), junk


def test_sign_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    expected = hmac.new(b"k", b"123.{}", hashlib.sha256).hexdigest()
    assert sign("k", b"{}", 123) == sign(b"k", b"{}", 123) == expected


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/hook", "http://", "https:///path",
            "http://host:99999/", "http://exa mple.com/", "javascript:alert(1)"],
)  # fmt: skip
async def test_bad_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_url(url)
    assert "webhook_url" in str(info.value) and info.value.field == "webhook_url"
    with pytest.raises(ValueError, match="webhook_url"):
        await _deliver(url)


def test_good_urls_pass() -> None:
    for url in ("http://127.0.0.1:8080/hook", "https://hooks.example.com/a?b=c", "https://[::1]/x"):
        assert check_url(url) == url
