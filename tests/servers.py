"""Real servers for tests: llama-cpp-python's OpenAI-compatible server as a child process, and a scripted
OpenAI-compatible HTTP server (stdlib ``http.server`` in a thread) that answers with scripted statuses,
headers, delays, dropped connections and JSON bodies, and records every request it saw.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (right now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 with one thread, as a child process."""

    def __init__(self, model_path: Path, *, n_ctx: int = 2048, threads: int = 1) -> None:
        self.model_path = model_path
        self.port = free_port()
        self.n_ctx = n_ctx
        self.threads = threads
        self._log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, ready_timeout_s: float = 90.0) -> LlamaServer:
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            str(self.threads),
            "--n_threads_batch",
            str(self.threads),
            "--n_ctx",
            str(self.n_ctx),
        ]
        self.proc = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=dict(os.environ))
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama server not ready after {ready_timeout_s} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def log_tail(self, chars: int = 3000) -> str:
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")[-chars:]


# -- the scripted server ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """One scripted answer. ``drop`` sends the headers and part of the body, then closes the connection."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


Responder = Callable[[str, Any], Reply]


def openai_reply(path: str, body: Any, *, honour_n: bool = True) -> Reply:
    """A valid OpenAI-style answer. Choice ``i`` has the text ``"ab" * (i + 1)``, made of ``i + 1`` tokens
    of ``"ab"``; usage reports only the total, ``10 * number_of_choices`` completion tokens."""
    if path.endswith("/models"):
        return Reply(body={"object": "list", "data": [{"id": "scripted-model", "object": "model"}]})
    request = body if isinstance(body, dict) else {}
    n = int(request.get("n") or 1) if honour_n else 1
    chat = path.endswith("/chat/completions")
    top_k = int(request.get("top_logprobs") or 0) if chat else int(request.get("logprobs") or 0)
    want_logprobs = bool(request.get("logprobs"))
    choices = []
    for i in range(n):
        text = "ab" * (i + 1)
        choice: dict[str, Any] = {"index": i, "finish_reason": "stop"}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        if want_logprobs:
            alternatives = [("ab", -0.5), ("cd", -1.5), ("ef", -2.5)][: max(top_k, 1)]
            if chat:
                choice["logprobs"] = {
                    "content": [
                        {
                            "token": "ab",
                            "logprob": -0.5,
                            "top_logprobs": [{"token": t, "logprob": lp} for t, lp in alternatives[:top_k]],
                        }
                        for _ in range(i + 1)
                    ]
                }
            else:
                choice["logprobs"] = {
                    "tokens": ["ab"] * (i + 1),
                    "token_logprobs": [-0.5] * (i + 1),
                    # unsorted on purpose: the client sorts the alternatives
                    "top_logprobs": [dict(reversed(alternatives))] * (i + 1),
                    "text_offset": [2 * k for k in range(i + 1)],
                }
        choices.append(choice)
    return Reply(
        body={
            "id": "cmpl-scripted",
            "object": "chat.completion" if chat else "text_completion",
            "model": request.get("model", "scripted-model"),
            "choices": choices,
            "usage": {"prompt_tokens": 7, "completion_tokens": 10 * n, "total_tokens": 7 + 10 * n},
        }
    )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._serve(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self._serve(body)

    def _serve(self, body: Any) -> None:
        owner = self.server.owner
        reply = owner.next_reply(self.command, self.path, dict(self.headers.items()), body)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if reply.drop:
                self.wfile.write(payload[: max(1, len(payload) // 3)])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class ScriptedServer:
    """Answers first from ``script`` (FIFO), then with ``responder``. Records every request in ``seen``."""

    def __init__(self, responder: Responder | None = None, *, honour_n: bool = True) -> None:
        self.responder: Responder = responder or (lambda path, body: openai_reply(path, body, honour_n=honour_n))
        self.script: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="scripted-server", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self.script.extend(replies)

    def next_reply(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            self.seen.append(Seen(method, path, headers, body, time.monotonic()))
            scripted = self.script.popleft() if self.script else None
        return scripted if scripted is not None else self.responder(path, body)

    def posts(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == "POST"]

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
