"""Text embeddings for learned scorers: the :class:`Embedder` protocol and llama.cpp's last-token hidden state.

An embedder turns texts into fixed-width, L2-normalised vectors; a learned verifier reduces them with a PCA
fitted at training time (see :mod:`longthink.rewards.learned`). :class:`LlamaCppEmbedder` runs a known GGUF model
(or a path) in process, like the embedded backend, and takes the hidden state of the *last* token (after the
final norm): for a causal model that is the one position that has read the whole text.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from longthink.errors import BackendError, ConfigError
from longthink.models import KNOWN_MODELS, find_spec, resolve_model_path


@runtime_checkable
class Embedder(Protocol):
    """Embeds texts as the rows of a float array of shape ``(len(texts), width)``, each row of unit length.

    ``model`` names the embedding model; an artifact trained with one embedder is only usable with the same.
    """

    @property
    def model(self) -> str: ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float64]: ...


HEAD_TOKENS = 256
"""When a text does not fit the context, its first ``HEAD_TOKENS`` tokens (the question) and its end are kept."""


class LlamaCppEmbedder:
    """The L2-normalised last-token hidden state of a GGUF model, computed by llama.cpp in process.

    ``model`` is a known model's name (assembled and verified by :func:`longthink.models.resolve_model_path`) or
    a GGUF path. It uses llama-cpp-python's low-level API, as :class:`~longthink.llm.llama_cpp.LlamaCppLLM`
    does, for the same reason: the high-level ``llama_cpp.Llama`` cannot turn off llama.cpp's extra (AMX) weight
    buffers, which die with SIGILL on CPUs that advertise AMX without enabling it. The context has
    ``embeddings=True``, ``pooling_type=LLAMA_POOLING_TYPE_LAST`` and ``n_ctx`` cells; a longer text keeps its
    head and its end. Texts are embedded one at a time (deterministic: the same text gives the same vector);
    calls are serialised, so one embedder can be shared by threads. ``n_threads`` defaults to the embedded
    backend's (one fewer than the cores, at most 8).
    """

    def __init__(
        self,
        model: str | Path = "qwen2.5-coder-0.5b-instruct",
        *,
        n_threads: int | None = None,
        n_ctx: int = 2048,
        cache_dir: Path | None = None,
    ) -> None:
        from longthink.llm.llama_cpp import _cpu_has_amx, _import_llama_cpp, default_threads

        if n_ctx < HEAD_TOKENS * 2:
            raise ConfigError(f"n_ctx must be >= {HEAD_TOKENS * 2}, got {n_ctx}", field="n_ctx")
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be an integer >= 1 or None, got {n_threads!r}", field="n_threads")
        self._lib = lib = _import_llama_cpp()
        self._path = resolve_model_path(str(model), cache_dir)
        spec = find_spec(str(model)) or next((s for s in KNOWN_MODELS.values() if s.filename == self._path.name), None)
        self._model = spec.name if spec else str(self._path)
        self._threads = n_threads or default_threads()
        self._lock = threading.Lock()
        self._closed = False

        lib.llama_backend_init()
        mparams = lib.llama_model_default_params()
        mparams.use_extra_bufts = not _cpu_has_amx()  # see LlamaCppLLM: AMX tiles can die with SIGILL
        self._mdl = lib.llama_model_load_from_file(str(self._path).encode(), mparams)
        if not self._mdl:
            raise BackendError("llama.cpp could not load the model file", endpoint=str(self._path), retryable=False)
        cparams = lib.llama_context_default_params()
        cparams.n_ctx = n_ctx
        cparams.n_batch = n_ctx  # a pooled embedding needs the whole text in one (micro)batch
        cparams.n_ubatch = n_ctx
        cparams.n_seq_max = 1
        cparams.n_threads = self._threads
        cparams.n_threads_batch = self._threads
        cparams.embeddings = True
        cparams.pooling_type = lib.LLAMA_POOLING_TYPE_LAST
        cparams.no_perf = True
        self._ctx = lib.llama_init_from_model(self._mdl, cparams)
        if not self._ctx:
            lib.llama_model_free(self._mdl)
            raise BackendError("llama.cpp could not create a context", endpoint=str(self._path), retryable=False)
        self._n_ctx = int(lib.llama_n_ctx(self._ctx))
        self._width = int(lib.llama_model_n_embd(self._mdl))
        self._vocab = lib.llama_model_get_vocab(self._mdl)
        self._mem = lib.llama_get_memory(self._ctx)
        self._batch: Any = lib.llama_batch_init(self._n_ctx, 0, 1)

    @property
    def model(self) -> str:
        return self._model

    @property
    def width(self) -> int:
        """The length of every vector."""
        return self._width

    @property
    def n_threads(self) -> int:
        return self._threads

    @property
    def endpoint(self) -> str:
        return f"llama.cpp embeddings({self._path})"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        if isinstance(texts, str):
            raise ConfigError("embed() takes a sequence of texts, not one string", field="texts")
        out = np.zeros((len(texts), self._width), dtype=np.float64)
        with self._lock:
            if self._closed:
                raise BackendError("the embedder is closed", endpoint=self.endpoint, retryable=False)
            for i, text in enumerate(texts):
                out[i] = self._one(text)
        return out

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lib.llama_batch_free(self._batch)
            self._lib.llama_free(self._ctx)
            self._lib.llama_model_free(self._mdl)

    def __enter__(self) -> LlamaCppEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one text -------------------------------------------------------------------------------------------
    def _tokens(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 16
        buf = (self._lib.llama_token * cap)()
        n = int(self._lib.llama_tokenize(self._vocab, data, len(data), buf, cap, True, False))
        if n < 0:
            raise BackendError("tokenization failed", endpoint=self.endpoint, retryable=False)
        tokens = list(buf[:n])
        if not tokens:  # an empty text: embed the end-of-sequence token, so every text has a vector
            tokens = [int(self._lib.llama_vocab_eos(self._vocab))]
        if len(tokens) > self._n_ctx:
            tokens = tokens[:HEAD_TOKENS] + tokens[len(tokens) - (self._n_ctx - HEAD_TOKENS) :]
        return tokens

    def _one(self, text: str) -> npt.NDArray[np.float64]:
        lib, batch = self._lib, self._batch
        tokens = self._tokens(text)
        lib.llama_memory_clear(self._mem, True)
        for pos, tok in enumerate(tokens):
            batch.token[pos] = tok
            batch.pos[pos] = pos
            batch.n_seq_id[pos] = 1
            batch.seq_id[pos][0] = 0
            batch.logits[pos] = 1  # pooled embeddings read every position's output
        batch.n_tokens = len(tokens)
        rc = int(lib.llama_decode(self._ctx, batch))
        if rc != 0:
            raise BackendError(f"llama_decode failed (code {rc})", endpoint=self.endpoint, retryable=False)
        ptr = lib.llama_get_embeddings_seq(self._ctx, 0)
        if not ptr:
            raise BackendError("llama.cpp returned no pooled embedding", endpoint=self.endpoint, retryable=False)
        vector = np.ctypeslib.as_array(ptr, shape=(self._width,)).astype(np.float64)
        norm = float(np.linalg.norm(vector))
        if not np.isfinite(norm) or norm == 0.0:
            raise BackendError(f"degenerate embedding (norm {norm})", endpoint=self.endpoint, retryable=False)
        return vector / norm


__all__ = ["HEAD_TOKENS", "Embedder", "LlamaCppEmbedder"]
