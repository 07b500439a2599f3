"""``longthink serve`` as a real child process on 127.0.0.1, for the service's tests and its benchmark."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from servers import free_port

CLI = "from longthink.cli import main; main()"


def cli(args: Sequence[str], env: Mapping[str, str], timeout: float = 60) -> str:
    """Run ``longthink ARGS`` and return its stdout (raises with its stderr when it fails)."""
    proc = subprocess.run([sys.executable, "-c", CLI, *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"longthink {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


class ServiceProcess:
    """``longthink serve`` with the given backend and database; ``base_url`` once :meth:`start` returns."""

    def __init__(
        self,
        db_dir: Path,
        *,
        llm: str | None = "longthink.testing:arithmetic_llm",
        delay_s: float = 0.0,
        workers: int = 4,
        extra: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.db_dir = db_dir
        self.port = free_port()
        self.args = ["serve", "--port", str(self.port), "--workers", str(workers), *extra]
        if llm:
            self.args += ["--llm", llm]
        self.env = {
            **os.environ, "LONGTHINK_DB_URL": f"sqlite:///{db_dir / 'runs.db'}", "LONGTHINK_TEST_DELAY_S": str(delay_s),
            "LONGTHINK_ARTIFACTS_DIR": str(db_dir / "artifacts"),
            **(env or {}),
        }  # fmt: skip
        self.log = tempfile.NamedTemporaryFile(prefix="longthink-serve-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> ServiceProcess:
        self.proc = subprocess.Popen([sys.executable, "-c", CLI, *self.args], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"longthink serve exited ({self.proc.returncode}):\n{self.logs()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"longthink serve did not answer in {timeout} s:\n{self.logs()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown handler runs (what a crash or an OOM kill does)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def cvrplib(name: str) -> str | None:
    """A CVRPLIB instance's text from VRPSolverEasy's data files, or None when that package is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("VRPSolverEasy")
    if spec is None or not spec.submodule_search_locations:
        return None
    return (Path(next(iter(spec.submodule_search_locations))) / "demos" / "data" / "CVRP" / name).read_text()


def read_sse(response: httpx.Response, *, stop_after: int | None = None) -> Iterator[dict[str, Any]]:
    """Parse a Server-Sent Events response into ``{"id", "event", "data"}`` dicts (comments skipped)."""
    fields: dict[str, Any] = {}
    seen = 0
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                fields["data"] = json.loads(fields["data"]) if fields["data"][:1] in "{[" else fields["data"]
                yield fields
                seen += 1
                if stop_after is not None and seen >= stop_after:
                    return
            fields = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value


def events(base_url: str, run_id: str, *, headers: Mapping[str, str] | None = None, last_id: int | None = None,
           stop_after: int | None = None, timeout: float = 120) -> list[dict[str, Any]]:  # fmt: skip
    """The run's SSE stream read to its ``end`` (or ``stop_after`` events, then the connection is dropped)."""
    h = dict(headers or {})
    if last_id is not None:
        h["Last-Event-ID"] = str(last_id)
    with httpx.stream("GET", f"{base_url}/v1/runs/{run_id}/events", headers=h, timeout=timeout) as r:
        r.raise_for_status()
        return list(read_sse(r, stop_after=stop_after))
