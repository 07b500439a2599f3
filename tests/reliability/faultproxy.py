"""A fault-injecting HTTP/1.1 proxy for tests: it forwards real requests to a real upstream server and, on a
seeded random share of them, injects a fault instead of (or on top of) the upstream's answer.

The faults (:data:`FAULTS`):

``http_500``        a 500 with a JSON error body; the upstream is not asked
``http_429``        a 429 with ``Retry-After: <retry_after_s>``; the upstream is not asked
``reset_before``    the request is read, then the socket is closed with SO_LINGER 0 (a TCP RST), no byte sent
``reset_mid``       the upstream's status, headers and half of its body are sent, then a TCP RST
``stall``           nothing is sent for ``stall_s`` (meant to be longer than the client's timeout), then the
                    connection is closed; the stall ends early when the client hangs up
``truncated_json``  the upstream's status with its body cut in half and a ``Content-Length`` that matches the
                    cut body: well-framed HTTP carrying JSON that does not decode
``slow_drip``       the upstream's full answer, its body trickled in ``drip_chunks`` pieces over ``drip_s``
                    seconds (meant to end within the client's timeout: the client must get it)

Every fault but ``slow_drip`` fails the attempt (:data:`FAILING`). Which requests get a fault is decided in
the order requests arrive, from one ``random.Random(seed)``: the counts over a fixed number of requests are
reproducible even when concurrent requests arrive in a different order. With ``cover`` the first faults go
through every kind of the mix once (in a seeded order), so any run with at least that many faults saw each kind.
Every decision is recorded (:attr:`FaultProxy.injections`) so tests can assert on counts.

The proxy runs an asyncio server on its own thread and loop, so sync and async tests can use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType

import httpx

FAULTS: tuple[str, ...] = (
    "http_500",
    "http_429",
    "reset_before",
    "reset_mid",
    "stall",
    "truncated_json",
    "slow_drip",
)
#: Faults after which the client's attempt has failed (it should retry); a slow drip still delivers the answer.
FAILING: frozenset[str] = frozenset(FAULTS) - {"slow_drip"}

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host", "te", "upgrade"}
)
_REASONS = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """What to inject: a fault on a share ``rate`` of the requests, its kind drawn from ``mix`` (kind -> weight;
    default: every kind alike), all from ``seed``; ``cover``: the first faults go through every kind once;
    ``limit``: at most this many faults in all (None: no limit)."""

    rate: float = 0.2
    mix: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(FAULTS, 1.0))
    seed: int = 0
    cover: bool = True
    retry_after_s: int = 1
    stall_s: float = 10.0
    drip_s: float = 1.0
    drip_chunks: int = 10
    limit: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {self.rate!r}")
        unknown = set(self.mix) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULTS)}")
        if not self.mix or any(w < 0 for w in self.mix.values()) or sum(self.mix.values()) <= 0:
            raise ValueError("mix needs at least one kind with a positive weight and no negative weight")
        if self.drip_chunks < 1 or self.drip_s < 0 or self.stall_s < 0 or self.retry_after_s < 0:
            raise ValueError("drip_chunks must be >= 1 and the delays >= 0")


@dataclass(frozen=True, slots=True)
class Injection:
    """One request the proxy saw, in arrival order, and the fault it got (None: passed through untouched)."""

    index: int
    method: str
    path: str
    fault: str | None
    at: float


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def keep_alive(self) -> bool:
        value = (self.header("connection") or "").lower()
        return value != "close" if self.version == "HTTP/1.1" else value == "keep-alive"


@dataclass(frozen=True, slots=True)
class _Upstream:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


class FaultProxy:
    """The proxy in front of ``upstream`` (a base URL such as ``http://127.0.0.1:8000/v1``; the ``/v1`` part is
    ignored: paths are forwarded as they come). Use it as a context manager; :attr:`base_url` is what a client
    points at. :meth:`configure` changes the config while it runs (the random sequence goes on)."""

    def __init__(self, upstream: str, config: FaultConfig | None = None, *, upstream_timeout_s: float = 120.0) -> None:
        self.upstream = httpx.URL(upstream)
        self._config = config or FaultConfig()
        self._upstream_timeout_s = upstream_timeout_s
        self._lock = threading.Lock()
        self._random = random.Random(self._config.seed)
        self._to_cover = self._cover_order(self._config)
        self._injections: list[Injection] = []
        self.upstream_errors: list[str] = []
        self._port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None

    # -- public surface -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def config(self) -> FaultConfig:
        with self._lock:
            return self._config

    def configure(self, **changes: object) -> None:
        """Replace fields of the config (``rate``, ``mix``, delays...). A new ``mix`` with ``cover`` restarts
        the coverage of its kinds; ``seed`` is not re-applied."""
        with self._lock:
            new = dataclasses.replace(self._config, **changes)  # type: ignore[arg-type]
            if new.mix != self._config.mix or new.cover != self._config.cover:
                self._to_cover = self._cover_order(new)
            self._config = new

    @property
    def injections(self) -> list[Injection]:
        with self._lock:
            return list(self._injections)

    def counts(self) -> Counter[str]:
        """How many times each fault was injected (requests passed through are not counted)."""
        return Counter(i.fault for i in self.injections if i.fault is not None)

    def failing_faults(self) -> int:
        """How many attempts the injected faults failed (every fault but a slow drip)."""
        return sum(n for kind, n in self.counts().items() if kind in FAILING)

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run_thread, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("the fault proxy did not start within 10 s")
        if self._failed is not None:
            raise RuntimeError(f"the fault proxy failed to start: {self._failed!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- decisions ------------------------------------------------------------------------------------------
    def _cover_order(self, config: FaultConfig) -> list[str]:
        if not config.cover:
            return []
        kinds = [k for k in FAULTS if config.mix.get(k, 0) > 0]
        random.Random(config.seed).shuffle(kinds)
        return kinds

    def _decide(self, request: _Request) -> tuple[str | None, FaultConfig]:
        with self._lock:
            config = self._config
            fault: str | None = None
            draw = self._random.random()  # drawn for every request, so the sequence does not depend on the rate
            injected = sum(1 for i in self._injections if i.fault is not None)
            if draw < config.rate and (config.limit is None or injected < config.limit):
                if self._to_cover:
                    fault = self._to_cover.pop()
                else:
                    kinds = list(config.mix)
                    fault = self._random.choices(kinds, weights=[config.mix[k] for k in kinds])[0]
            path = request.target.split("?", 1)[0]
            self._injections.append(Injection(len(self._injections), request.method, path, fault, time.monotonic()))
            return fault, config

    # -- the server -----------------------------------------------------------------------------------------
    def _run_thread(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start(): a test helper must not die silently
            self._failed = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        connections: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=self._upstream_timeout_s) as client:

            async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                task = asyncio.current_task()
                if task is not None:
                    connections.add(task)
                try:
                    await self._connection(client, reader, writer)
                except asyncio.CancelledError:
                    pass  # stopped: end quietly (asyncio logs a cancelled connection handler as an error)
                finally:
                    if task is not None:
                        connections.discard(task)

            server = await asyncio.start_server(accept, "127.0.0.1", 0)
            self._port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await self._stop.wait()
                server.close()
                for task in list(connections):
                    task.cancel()
                await asyncio.gather(*connections, return_exceptions=True)

    async def _connection(
        self, client: httpx.AsyncClient, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                fault, config = self._decide(request)
                if not await self._answer(client, request, fault, config, reader, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away or spoke something else than HTTP/1.1: drop the connection
        finally:
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(
        self,
        client: httpx.AsyncClient,
        request: _Request,
        fault: str | None,
        config: FaultConfig,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Answer one request (with its fault); True when the connection may serve another one."""
        if fault == "http_500":
            await _send(writer, 500, [], _error_body("injected fault: internal server error"))
        elif fault == "http_429":
            retry_after = [("Retry-After", str(config.retry_after_s))]
            await _send(writer, 429, retry_after, _error_body("injected fault: rate limited"))
        elif fault == "reset_before":
            _reset(writer)
            return False
        elif fault == "stall":
            with contextlib.suppress(TimeoutError):  # the client hung up (EOF) or the stall is over
                await asyncio.wait_for(reader.read(1), config.stall_s)
            return False
        else:
            upstream = await self._forward(client, request)
            if fault == "reset_mid":
                head = _head(upstream.status, upstream.headers, len(upstream.body))
                writer.write(head + upstream.body[: len(upstream.body) // 2])
                await writer.drain()
                _reset(writer)
                return False
            if fault == "truncated_json":
                await _send(writer, upstream.status, upstream.headers, upstream.body[: max(1, len(upstream.body) // 2)])
            elif fault == "slow_drip":
                writer.write(_head(upstream.status, upstream.headers, len(upstream.body)))
                await writer.drain()
                size = -(-len(upstream.body) // config.drip_chunks)
                for start in range(0, len(upstream.body), max(1, size)):
                    await asyncio.sleep(config.drip_s / config.drip_chunks)
                    writer.write(upstream.body[start : start + size])
                    await writer.drain()
            else:
                await _send(writer, upstream.status, upstream.headers, upstream.body)
        return request.keep_alive

    async def _forward(self, client: httpx.AsyncClient, request: _Request) -> _Upstream:
        url = self.upstream.copy_with(raw_path=request.target.encode())
        headers = [(k, v) for k, v in request.headers if k.lower() not in _HOP_BY_HOP]
        headers.append(("Accept-Encoding", "identity"))  # cut and drip raw JSON, not a compressed stream
        try:
            response = await client.request(request.method, url, headers=headers, content=request.body)
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.upstream_errors.append(why)
            return _Upstream(502, [], _error_body(f"upstream failed: {why}"))
        kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
        return _Upstream(response.status_code, kept, response.content)


# -- HTTP/1.1 on a stream -----------------------------------------------------------------------------------
async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    """One request (head and a Content-Length body), or None at a clean end of the connection."""
    line = await reader.readline()
    if not line:
        return None
    method, target, version = line.decode("latin-1").strip().split(" ", 2)
    headers: list[tuple[str, str]] = []
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n"):
            break
        if not raw:
            raise asyncio.IncompleteReadError(raw, None)
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    request = _Request(method, target, version, headers, b"")
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        raise ValueError("chunked request bodies are not supported by the fault proxy")
    length = int(request.header("content-length") or 0)
    body = await reader.readexactly(length) if length else b""
    return dataclasses.replace(request, body=body)


def _head(status: int, headers: list[tuple[str, str]], length: int) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if not any(k.lower() == "content-type" for k, _ in headers):
        lines.append("Content-Type: application/json")
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(writer: asyncio.StreamWriter, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    writer.write(_head(status, headers, len(body)) + body)
    await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the connection abruptly: SO_LINGER with a zero timeout turns the close into a TCP RST."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def _error_body(message: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "server_error"}}).encode()
