"""The embedded default backend: llama.cpp in process, through llama-cpp-python's low-level API.

llama-cpp-python's high-level API makes one sample per call. Here the n samples of a prompt (and the prompts
of a batch) are decoded *together*: the prompt is evaluated once with all of its sequence ids in a unified KV
cache, then every step decodes one token for each live sequence in a single ``llama_decode``. Sampling
(temperature, top-p, seeds) and token log-probabilities are computed from the logits with NumPy, so logprobs
cost almost nothing.
"""

from __future__ import annotations

import asyncio
import codecs
import ctypes
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from longthink.errors import BackendError, ConfigError
from longthink.llm.base import BaseLLM, find_stop, split_continuation
from longthink.llm.types import Completion, FinishReason, Message, SamplingParams, TokenLogprob
from longthink.models import KNOWN_MODELS, find_spec, resolve_model_path

log = logging.getLogger(__name__)

_TOP_P_CANDIDATES = 512  # nucleus sampling looks at this many top tokens before falling back to a full sort


def default_threads() -> int:
    """Fewer threads than cores: llama.cpp collapses when it competes with another busy process."""
    cores = os.cpu_count() or 1
    if cores <= 2:
        return 1
    return max(1, min(8, cores - 1))


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:  # the optional dependency is missing
        raise ConfigError(
            "the embedded backend needs llama-cpp-python: pip install 'longthink[embedded]' "
            "(it compiles llama.cpp, about 20 minutes on 2 cores the first time)",
            field="backend",
        ) from exc
    global _LOG_CALLBACK
    if _LOG_CALLBACK is None:
        # Route llama.cpp's own log lines to Python logging (debug) instead of stderr.
        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def _on_log(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            log.debug("llama.cpp: %s", text.decode("utf-8", errors="replace").rstrip())

        _LOG_CALLBACK = _on_log
        llama_cpp.llama_log_set(_LOG_CALLBACK, ctypes.c_void_p(0))
    return llama_cpp


_LOG_CALLBACK: Any = None


@dataclass(slots=True)
class _Seq:
    """One sequence being sampled: sample ``index`` of prompt ``group``, KV sequence id ``sid``."""

    sid: int
    group: int
    index: int
    pos: int
    rng: np.random.Generator
    decoder: codecs.IncrementalDecoder
    last_token: int = -1
    n_tokens: int = 0
    text: str = ""
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish: FinishReason | None = None
    stop_sequence: str | None = None


def _cpu_has_amx() -> bool:
    """Whether /proc/cpuinfo lists Intel AMX (False where there is no such file)."""
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


class LlamaCppLLM(BaseLLM):
    """llama.cpp in process. Thread-safe: calls are serialised, each one batched internally."""

    def __init__(
        self,
        model: str | Path,
        *,
        n_threads: int | None = None,
        n_ctx: int = 8192,
        max_sequences: int = 16,
        n_batch: int = 512,
        cache_dir: Path | None = None,
    ) -> None:
        if n_ctx < 256:
            raise ConfigError(f"n_ctx must be >= 256, got {n_ctx}", field="n_ctx")
        if max_sequences < 1:
            raise ConfigError(f"max_sequences must be >= 1, got {max_sequences}", field="max_sequences")
        self._lib = lib = _import_llama_cpp()
        self._path = resolve_model_path(str(model), cache_dir)
        spec = find_spec(str(model)) or next((s for s in KNOWN_MODELS.values() if s.filename == self._path.name), None)
        super().__init__(spec.name if spec else self._path.stem)
        self._threads = n_threads or default_threads()
        self._n_batch = n_batch
        self._max_seqs = max_sequences
        self._lock = threading.Lock()
        self._closed = False

        lib.llama_backend_init()
        mparams = lib.llama_model_default_params()
        # llama.cpp's extra weight buffers include AMX tiles, which die with SIGILL where the CPU advertises AMX
        # but the kernel does not enable its tile state (seen on a Firecracker VM); keep them for other CPUs.
        mparams.use_extra_bufts = not _cpu_has_amx()
        self._mdl = lib.llama_model_load_from_file(str(self._path).encode(), mparams)
        if not self._mdl:
            raise BackendError("llama.cpp could not load the model file", endpoint=str(self._path), retryable=False)
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_batch
        cparams.n_ubatch = n_batch
        cparams.n_seq_max = max_sequences
        cparams.n_threads = self._threads
        cparams.n_threads_batch = self._threads
        cparams.kv_unified = True  # siblings share the prompt's KV cells
        cparams.no_perf = True
        self._ctx = lib.llama_init_from_model(self._mdl, cparams)
        if not self._ctx:
            lib.llama_model_free(self._mdl)
            raise BackendError("llama.cpp could not create a context", endpoint=str(self._path), retryable=False)
        self._n_ctx = int(lib.llama_n_ctx(self._ctx))
        self._vocab = lib.llama_model_get_vocab(self._mdl)
        self._n_vocab = int(lib.llama_vocab_n_tokens(self._vocab))
        self._mem = lib.llama_get_memory(self._ctx)
        self._batch = lib.llama_batch_init(max(n_batch, max_sequences), 0, max_sequences)
        self._template = self._load_template()
        self._bos = self._piece(int(lib.llama_vocab_bos(self._vocab)), special=True)
        self._eos = self._piece(int(lib.llama_vocab_eos(self._vocab)), special=True)
        self._pieces: dict[int, bytes] = {}

    # -- public ---------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"llama.cpp({self._path})"

    @property
    def path(self) -> Path:
        return self._path

    @property
    def n_threads(self) -> int:
        return self._threads

    def render(self, prompt: tuple[Message, ...] | str) -> str:
        """The text the model sees: raw prompts as they are, chat prompts through the model's template.

        A chat prompt that ends with an assistant message is a partial answer to *continue* (step-level
        search sends the solution so far that way): the messages before it are rendered with the generation
        prompt and its text follows verbatim, without the end-of-turn marker the template would add.
        """
        if isinstance(prompt, str):
            return prompt
        if self._template is None:
            raise ConfigError(
                f"model {self.model!r} has no chat template: pass a raw prompt string instead",
                field="prompts",
            )
        prompt, prefix = split_continuation(prompt)
        if prefix:
            return self.render(prompt) + prefix
        messages = [{"role": m.role, "content": m.content} for m in prompt]
        return str(
            self._template.render(
                messages=messages,
                add_generation_prompt=True,
                bos_token=self._bos,
                eos_token=self._eos,
            )
        )

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("the backend is closed", endpoint=self.endpoint, retryable=False)

    def tokenize(self, text: str, *, add_special: bool = True) -> list[int]:
        self._check_open()
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (self._lib.llama_token * cap)()
        n = self._lib.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, True)
        if n < 0:
            raise BackendError("tokenization failed", endpoint=self.endpoint, retryable=False)
        return list(buf[:n])

    async def aclose(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._lib.llama_model_free(self._mdl)

    # -- generation -----------------------------------------------------------------------------------
    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        self._check_open()
        encoded = []
        for p in prompts:
            text = self.render(p)
            add_special = not (self._bos and text.startswith(self._bos))
            encoded.append(self.tokenize(text, add_special=add_special))
        return await asyncio.to_thread(self._generate_blocking, encoded, params)

    def _generate_blocking(self, encoded: list[list[int]], params: SamplingParams) -> list[list[Completion]]:
        if params.n > self._max_seqs:
            # More samples than KV sequences: split n into rounds, each round a batch.
            results: list[list[Completion]] = [[] for _ in encoded]
            done = 0
            while done < params.n:
                k = min(self._max_seqs, params.n - done)
                part = self._generate_blocking(encoded, _with_n(params, k, offset=done))
                for i, comps in enumerate(part):
                    results[i].extend(_reindex(c, done + j) for j, c in enumerate(comps))
                done += k
            return results
        out: list[list[Completion]] = [[] for _ in encoded]
        for group in self._pack(encoded, params):
            with self._lock:
                self._check_open()
                for gi, comps in self._run_pack([(gi, encoded[gi]) for gi in group], params).items():
                    out[gi] = comps
        return out

    def _pack(self, encoded: list[list[int]], params: SamplingParams) -> list[list[int]]:
        """Group prompts so that each group fits the KV sequences and the context window."""
        groups: list[list[int]] = []
        current: list[int] = []
        seqs = tokens = 0
        for i, toks in enumerate(encoded):
            need = len(toks) + params.n * params.max_tokens
            if need > self._n_ctx:
                raise BackendError(
                    f"prompt {i} has {len(toks)} tokens; with n={params.n} x max_tokens={params.max_tokens} "
                    f"it needs {need} KV cells but the context holds n_ctx={self._n_ctx}",
                    endpoint=self.endpoint,
                    retryable=False,
                )
            if current and (seqs + params.n > self._max_seqs or tokens + need > self._n_ctx):
                groups.append(current)
                current, seqs, tokens = [], 0, 0
            current.append(i)
            seqs += params.n
            tokens += need
        if current:
            groups.append(current)
        return groups

    def _run_pack(self, group: list[tuple[int, list[int]]], params: SamplingParams) -> dict[int, list[Completion]]:
        lib = self._lib
        start = time.perf_counter()
        lib.llama_memory_clear(self._mem, True)
        seqs: list[_Seq] = []
        for gi, toks in group:
            for j in range(params.n):
                seed = None if params.seed is None else [params.seed, j]
                seqs.append(
                    _Seq(
                        sid=len(seqs),
                        group=gi,
                        index=j,
                        pos=len(toks),
                        rng=np.random.default_rng(seed),
                        decoder=codecs.getincrementaldecoder("utf-8")(errors="replace"),
                    )
                )
        self._prefill(group, seqs, params)
        max_stop = max((len(s) for s in params.stop), default=0)
        live = [s for s in seqs if s.finish is None]
        while live:
            batch = self._batch
            for i, s in enumerate(live):
                batch.token[i] = s.last_token
                batch.pos[i] = s.pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = s.sid
                batch.logits[i] = 1
            batch.n_tokens = len(live)
            self._decode()
            for i, s in enumerate(live):
                s.pos += 1
                self._sample(s, self._logits(i), params, max_stop)
            for s in live:
                if s.finish is not None:
                    lib.llama_memory_seq_rm(self._mem, s.sid, -1, -1)
            live = [s for s in live if s.finish is None]
        latency = time.perf_counter() - start
        prompt_len = dict(group)
        out: dict[int, list[Completion]] = {gi: [] for gi, _ in group}
        for s in seqs:
            out[s.group].append(
                Completion(
                    text=s.text,
                    finish_reason=s.finish or "length",
                    prompt_tokens=len(prompt_len[s.group]),
                    completion_tokens=s.n_tokens,
                    latency_s=latency,
                    index=s.index,
                    logprobs=tuple(s.logprobs) if params.logprobs else None,
                    model=self.model,
                    stop_sequence=s.stop_sequence,
                )
            )
        return out

    def _prefill(self, group: list[tuple[int, list[int]]], seqs: list[_Seq], params: SamplingParams) -> None:
        """Evaluate every prompt once, tagged with all of its samples' sequence ids; sample first tokens."""
        batch = self._batch
        pending: list[tuple[int, int]] = []  # (batch index of a prompt's last token, group id)
        by_group: dict[int, list[_Seq]] = {}
        for s in seqs:
            by_group.setdefault(s.group, []).append(s)
        n = 0
        max_stop = max((len(s) for s in params.stop), default=0)

        def flush() -> None:
            nonlocal n
            if n == 0:
                return
            batch.n_tokens = n
            self._decode()
            for bi, gi in pending:
                logits = self._logits(bi)
                for s in by_group[gi]:
                    self._sample(s, logits, params, max_stop)
            pending.clear()
            n = 0

        for gi, toks in group:
            ids = [s.sid for s in by_group[gi]]
            for pos, tok in enumerate(toks):
                if n == self._n_batch:
                    flush()
                batch.token[n] = tok
                batch.pos[n] = pos
                batch.n_seq_id[n] = len(ids)
                for k, sid in enumerate(ids):
                    batch.seq_id[n][k] = sid
                last = pos == len(toks) - 1
                batch.logits[n] = 1 if last else 0
                if last:
                    pending.append((n, gi))
                n += 1
        flush()
        for s in seqs:
            if s.finish is not None:
                self._lib.llama_memory_seq_rm(self._mem, s.sid, -1, -1)

    def _decode(self) -> None:
        rc = int(self._lib.llama_decode(self._ctx, self._batch))
        if rc != 0:
            why = {1: "no KV slot left (context full)", 2: "aborted", -1: "invalid batch"}.get(rc, "fatal error")
            raise BackendError(f"llama_decode failed: {why} (code {rc})", endpoint=self.endpoint, retryable=False)

    def _logits(self, i: int) -> npt.NDArray[np.float32]:
        ptr = self._lib.llama_get_logits_ith(self._ctx, i)
        if not ptr:
            raise BackendError(f"no logits for batch index {i}", endpoint=self.endpoint, retryable=False)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,))

    def _sample(self, s: _Seq, logits: npt.NDArray[np.float32], params: SamplingParams, max_stop: int) -> None:
        """Draw the next token of ``s`` and update its text, logprobs and finish state."""
        x = logits.astype(np.float64)
        token = _draw(x, params.temperature, params.top_p, s.rng)
        s.n_tokens += 1
        s.last_token = token
        eog = bool(self._lib.llama_vocab_is_eog(self._vocab, token))
        if params.logprobs:
            shifted = x - x.max()
            lse = float(np.log(np.exp(shifted).sum()))
            top: tuple[tuple[str, float], ...] = ()
            if params.top_logprobs:
                k = params.top_logprobs
                idx = np.argpartition(-shifted, k)[:k]
                idx = idx[np.argsort(-shifted[idx])]
                top = tuple((self._text(int(t)), float(shifted[t] - lse)) for t in idx)
            s.logprobs.append(TokenLogprob(self._text(token), float(shifted[token] - lse), top))
        if eog:
            s.finish = "stop"
            return
        piece = s.decoder.decode(self._piece_bytes(token))
        if piece:
            tail_from = max(0, len(s.text) - max_stop)
            s.text += piece
            if params.stop:
                cut, which = find_stop(s.text[tail_from:], params.stop)
                if which is not None:
                    s.text = s.text[: tail_from + cut]
                    s.stop_sequence = which
                    s.finish = "stop"
                    return
        if s.n_tokens >= params.max_tokens:
            s.text += s.decoder.decode(b"", final=True)
            s.finish = "length"

    # -- vocabulary helpers ---------------------------------------------------------------------------
    def _piece_bytes(self, token: int) -> bytes:
        cached = self._pieces.get(token)
        if cached is None:
            buf = ctypes.create_string_buffer(256)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, 256, 0, False)
            cached = buf.raw[: max(n, 0)]
            self._pieces[token] = cached
        return cached

    def _piece(self, token: int, *, special: bool) -> str:
        if token < 0:
            return ""
        buf = ctypes.create_string_buffer(256)
        n = self._lib.llama_token_to_piece(self._vocab, token, buf, 256, 0, special)
        return buf.raw[: max(n, 0)].decode("utf-8", errors="replace")

    def _text(self, token: int) -> str:
        return self._piece(token, special=True)

    def _load_template(self) -> Any:
        raw = self._lib.llama_model_chat_template(self._mdl, None)
        if not raw:
            return None
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

        def raise_exception(message: str) -> None:
            raise ConfigError(f"chat template refused the messages: {message}", field="prompts")

        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        return env.from_string(raw.decode("utf-8"))


def _draw(x: npt.NDArray[np.float64], temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Sample a token id from raw logits ``x`` with temperature and nucleus (top-p) truncation."""
    if temperature == 0:
        return int(np.argmax(x))
    z = (x - x.max()) / temperature
    p = np.exp(z)
    total = p.sum()
    if top_p < 1.0:
        k = min(_TOP_P_CANDIDATES, p.size - 1)
        idx = np.argpartition(-p, k)[:k]
        idx = idx[np.argsort(-p[idx])]
        cum = np.cumsum(p[idx]) / total
        if cum[-1] < top_p:  # the nucleus is wider than the candidates: sort everything
            idx = np.argsort(-p)
            cum = np.cumsum(p[idx]) / total
        keep = int(np.searchsorted(cum, top_p)) + 1
        idx = idx[:keep]
        cum = np.cumsum(p[idx])
        pick = int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))
        return int(idx[min(pick, idx.size - 1)])
    cum = np.cumsum(p)
    return int(min(np.searchsorted(cum, rng.random() * total, side="right"), p.size - 1))


def _with_n(params: SamplingParams, n: int, *, offset: int) -> SamplingParams:
    seed = None if params.seed is None else params.seed + offset * 1_000_003
    return replace(params, n=n, seed=seed)


def _reindex(c: Completion, index: int) -> Completion:
    return replace(c, index=index)
