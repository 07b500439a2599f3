"""In-process transformers + torch backend: any local Hugging Face model directory, or a GGUF file.

Good for scoring (:meth:`TransformersLLM.loglikelihood` runs one forward pass over a batch of candidates) and
for models llama.cpp cannot run; on CPU it is several times slower than the embedded llama.cpp engine.

All samples of a call (every prompt times ``n``) are left-padded and decoded together by
``model.generate``, in chunks of at most ``max_batch_sequences`` rows. The next token of every row is chosen
by our own logits processor: greedy, or temperature / top-p sampling with one ``torch.Generator`` per
sample, seeded from ``(seed, sample index)`` so a seeded request returns the same texts whatever else is in
the batch. The processor also records the log-probability of each chosen token under the model's raw
distribution (log-softmax of the unscaled logits) and the top alternatives, without keeping
vocabulary-sized tensors around; ``generate`` then only has to take the one token left unmasked.

The model's own ``generation_config`` defaults (repetition penalty, top-k, ...) are deliberately not applied:
``SamplingParams`` is the whole contract.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec as find_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from longthink.errors import BackendError, ConfigError
from longthink.llm.base import BaseLLM, find_stop, normalize_prompt, split_continuation
from longthink.llm.types import (
    Completion,
    FinishReason,
    Message,
    Prompt,
    SamplingParams,
    TokenLogprob,
)
from longthink.models import KNOWN_MODELS, ModelStore, find_spec, trained_gguf

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

INSTALL_HINT = "pip install 'longthink[transformers]'"

_DTYPES: dict[str, str] = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "auto": "auto",
}


def import_torch_transformers(who: str = "TransformersLLM") -> tuple[Any, Any]:
    """torch and transformers, or a ConfigError naming ``who`` needs them and the extra to install."""
    try:
        import torch
        import transformers
    except ImportError as exc:  # the optional dependency is missing
        raise ConfigError(
            f"{who} needs torch and transformers ({exc.name or exc} is missing): {INSTALL_HINT}",
            field="backend",
        ) from exc
    return torch, transformers


def sample_seed(seed: int | None, index: int) -> int:
    """The torch generator seed of sample ``index`` of a request seeded with ``seed`` (random if None)."""
    if seed is None:
        return secrets.randbits(63)
    state = np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


def _resolve(model: str | os.PathLike[str]) -> tuple[Path, str | None, str]:
    """(directory to load from, GGUF file name or None, display name) for a model argument."""
    text = os.fspath(model)
    path = Path(text).expanduser()
    spec = find_spec(text) if not path.exists() else None
    if spec is not None:
        path = ModelStore().ensure(spec)  # raises ModelNotReady with an install hint
    if path.is_dir() and not (path / "config.json").is_file() and (trained := trained_gguf(path)) is not None:
        path = trained  # a `longthink train` output folder: its merged GGUF
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ConfigError(
                f"TransformersLLM: {path} is a file but not a .gguf file; pass a GGUF file or a Hugging Face "
                "model directory (with config.json)",
                field="model",
            )
        known = spec or next((s for s in KNOWN_MODELS.values() if s.filename == path.name), None)
        return path.parent, path.name, known.name if known else path.stem
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"TransformersLLM: {path} is a directory without config.json; pass a Hugging Face model "
                "directory (save_pretrained output) or a .gguf file",
                field="model",
            )
        return path, None, path.name
    names = ", ".join(sorted(KNOWN_MODELS))
    raise ConfigError(
        f"TransformersLLM: model {text!r} is not an existing directory or .gguf file, nor a known model "
        f"({names}); models are never downloaded",
        field="model",
    )


def dtype_keyword(transformers: Any) -> str:
    """``from_pretrained``'s dtype argument: ``dtype`` since transformers 4.56, ``torch_dtype`` before."""
    version = tuple(int(p) for p in transformers.__version__.split(".")[:2] if p.isdigit())
    return "dtype" if version >= (4, 56) else "torch_dtype"


@dataclass(slots=True)
class _Row:
    """One finished sample, before the request's latency is known."""

    prompt: int
    index: int
    text: str
    finish: FinishReason
    prompt_tokens: int
    completion_tokens: int
    logprobs: tuple[TokenLogprob, ...] | None
    stop_sequence: str | None = None


class _Sampler:
    """A logits processor that picks every row's next token itself and masks all other tokens.

    ``generate`` runs greedy decoding over the returned scores, so it takes exactly the token chosen here.
    The scores it receives are the raw next-token logits (no other processor runs before it).
    """

    def __init__(
        self,
        *,
        temperature: float,
        top_p: float,
        generators: Sequence[torch.Generator],
        logprobs: bool,
        top_logprobs: int,
    ) -> None:
        self._temperature = temperature
        self._top_p = top_p
        self._generators = generators
        self._logprobs = logprobs
        self._top = top_logprobs
        # One entry per step, each covering the whole batch (rows that already finished included).
        self.chosen_logprob: list[torch.Tensor] = []
        self.top_ids: list[torch.Tensor] = []
        self.top_logprob: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        logits = scores.float()
        chosen = logits.argmax(dim=-1) if self._temperature == 0 else self._draw(logits)
        if self._logprobs:
            logprobs = torch.log_softmax(logits, dim=-1)
            self.chosen_logprob.append(logprobs.gather(-1, chosen[:, None]).squeeze(-1).cpu())
            if self._top:
                top = logprobs.topk(self._top, dim=-1)
                self.top_ids.append(top.indices.cpu())
                self.top_logprob.append(top.values.cpu())
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(-1, chosen[:, None], 0.0)
        return forced

    def _draw(self, logits: torch.Tensor) -> torch.Tensor:
        import torch

        scaled = logits / self._temperature
        if self._top_p < 1.0:
            ordered, order = scaled.sort(dim=-1, descending=True)
            probs = ordered.softmax(dim=-1)
            before = probs.cumsum(dim=-1) - probs  # mass of the tokens ranked above each one
            ordered = ordered.masked_fill(before >= self._top_p, float("-inf"))
            scaled = torch.full_like(scaled, float("-inf")).scatter(-1, order, ordered)
        probs = scaled.softmax(dim=-1)
        picks = [torch.multinomial(probs[r], 1, generator=self._generators[r]) for r in range(probs.shape[0])]
        return torch.cat(picks)


class _Stopper:
    """A stopping criterion that records, per row, after how many generated tokens it finished and why.

    A row finishes when it generates an end-of-sequence token or when its decoded text contains a stop
    sequence. ``ended_at[r]`` counts the generated tokens up to and including the one that ended it.
    """

    def __init__(
        self,
        *,
        width: int,
        rows: int,
        eos: frozenset[int],
        stop: Sequence[str],
        decode: Callable[[list[int]], str],
    ) -> None:
        self._width = width
        self._eos = eos
        self._stop = tuple(stop)
        self._decode = decode
        self.ended_at: list[int | None] = [None] * rows

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        import torch

        generated = input_ids.shape[1] - self._width
        last = input_ids[:, -1].tolist()
        for r, token in enumerate(last):
            if self.ended_at[r] is not None:
                continue
            if token in self._eos:
                self.ended_at[r] = generated
            elif self._stop:
                text = self._decode(input_ids[r, self._width :].tolist())
                if any(s in text for s in self._stop):
                    self.ended_at[r] = generated
        done = [e is not None for e in self.ended_at]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class TransformersLLM(BaseLLM):
    """A Hugging Face causal LM run in process with torch. Calls are serialised; each one is batched.

    ``model`` is a local model directory, a ``.gguf`` file (dequantised by transformers at load time:
    about 15-35 s and fp32 memory for a 135M-0.5B model on CPU) or the name of a known model
    (:mod:`longthink.models`). Nothing is ever downloaded.

    ``dtype``: None means float32 on CPU and the checkpoint's own dtype ("auto") elsewhere.
    ``n_threads`` sets torch's intra-op thread count, which is process-wide; None leaves torch's default.
    ``max_batch_sequences`` caps the rows (prompts times n) decoded together in one ``generate`` call.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str = "cpu",
        dtype: str | None = None,
        n_threads: int | None = None,
        max_batch_sequences: int = 16,
    ) -> None:
        if not isinstance(max_batch_sequences, int) or max_batch_sequences < 1:
            raise ConfigError(
                f"max_batch_sequences must be an integer >= 1, got {max_batch_sequences!r}",
                field="max_batch_sequences",
            )
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be an integer >= 1 or None, got {n_threads!r}", field="n_threads")
        if dtype is not None and dtype.lower() not in _DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; use one of {sorted(set(_DTYPES))}", field="dtype")
        self._torch, self._transformers = import_torch_transformers()
        torch, transformers = self._torch, self._transformers
        directory, gguf_file, name = _resolve(model)
        super().__init__(name)
        self._source = str(directory / gguf_file) if gguf_file else str(directory)
        if gguf_file and find_module("gguf") is None:
            raise ConfigError(f"loading a GGUF file with transformers needs the gguf package: {INSTALL_HINT}")
        try:
            self._device = torch.device(device)
        except RuntimeError as exc:
            raise ConfigError(f"invalid torch device {device!r}: {exc}", field="device") from exc
        if self._device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} requested but torch sees no CUDA device", field="device")
        dtype_name = _DTYPES[dtype.lower()] if dtype else ("float32" if self._device.type == "cpu" else "auto")
        self._n_threads = n_threads
        self._max_rows = max_batch_sequences
        self._lock = threading.Lock()
        self._closed = False
        self._token_text: dict[int, str] = {}
        if n_threads is not None:
            torch.set_num_threads(n_threads)

        load_kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf_file:
            load_kwargs["gguf_file"] = gguf_file
        dtype_value = dtype_name if dtype_name == "auto" else getattr(torch, dtype_name)
        dtype_kw = dtype_keyword(transformers)
        try:
            self._tok = transformers.AutoTokenizer.from_pretrained(directory, **load_kwargs)
            self._lm = transformers.AutoModelForCausalLM.from_pretrained(
                directory, **load_kwargs, **{dtype_kw: dtype_value}
            )
        except Exception as exc:  # any loader failure: re-raised, typed, with the cause chained
            raise BackendError(
                f"transformers could not load the model: {type(exc).__name__}: {exc}",
                endpoint=self._source,
                retryable=False,
            ) from exc
        lm = self._lm
        if getattr(lm, "hf_quantizer", None) is not None and gguf_file:
            lm.hf_quantizer = None  # the GGUF weights are dequantised; nothing quantised remains
        lm.to(self._device)
        lm.eval()

        config = lm.generation_config
        eos: set[int] = set()
        for source in (config.eos_token_id, self._tok.eos_token_id):
            if isinstance(source, int):
                eos.add(source)
            elif isinstance(source, list | tuple):
                eos.update(int(t) for t in source)
        self._eos = frozenset(eos)
        pad = self._tok.pad_token_id
        if pad is None:
            pad = config.pad_token_id if isinstance(config.pad_token_id, int) else min(eos, default=0)
        self._pad = int(pad)
        # Only SamplingParams shape the distribution: drop the checkpoint's generation defaults.
        lm.generation_config = transformers.GenerationConfig(
            bos_token_id=config.bos_token_id, eos_token_id=sorted(eos) or None, pad_token_id=self._pad
        )
        self._max_positions: int | None = getattr(lm.config, "max_position_embeddings", None)
        forward_params = inspect.signature(lm.forward).parameters
        self._keep_kw = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in forward_params), None)
        self._position_ids = "position_ids" in forward_params

    # -- public ---------------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return f"TransformersLLM({self._source})"

    @property
    def device(self) -> str:
        return str(self._device)

    async def loglikelihood(self, prompt: Prompt, continuations: Sequence[str]) -> list[list[float]]:
        """Per-token log-likelihoods of each continuation after ``prompt``, scored in batched forward passes.

        Each continuation is tokenised on its own (no special tokens) and appended to the rendered prompt;
        the result has one value per continuation token (an empty continuation gives an empty list).
        """
        if isinstance(continuations, str):
            raise ConfigError("continuations must be a sequence of strings, not one string", field="continuations")
        if any(not isinstance(c, str) for c in continuations):
            raise ConfigError("continuations must all be strings", field="continuations")
        normalized = normalize_prompt(prompt)
        return await self._run(self._loglikelihood_blocking, normalized, list(continuations))

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close_blocking)

    # -- generation -----------------------------------------------------------------------------------
    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        return await self._run(self._generate_blocking, list(prompts), params)

    def _generate_blocking(
        self, prompts: list[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        start = time.perf_counter()
        encoded = [self._encode_prompt(p) for p in prompts]
        for i, ids in enumerate(encoded):
            self._check_length(len(ids) + 1, f"prompt {i}")
        rows = [(p, i) for p in range(len(prompts)) for i in range(params.n)]
        done: list[_Row] = []
        for begin in range(0, len(rows), self._max_rows):
            done.extend(self._generate_chunk(encoded, rows[begin : begin + self._max_rows], params))
        latency = time.perf_counter() - start
        results: list[list[Completion]] = [[] for _ in prompts]
        for row in done:
            results[row.prompt].append(
                Completion(
                    text=row.text,
                    finish_reason=row.finish,
                    prompt_tokens=row.prompt_tokens,
                    completion_tokens=row.completion_tokens,
                    latency_s=latency,
                    index=row.index,
                    logprobs=row.logprobs,
                    model=self.model,
                    stop_sequence=row.stop_sequence,
                )
            )
        return results

    def _generate_chunk(
        self, encoded: list[list[int]], rows: list[tuple[int, int]], params: SamplingParams
    ) -> list[_Row]:
        torch = self._torch
        width = max(len(encoded[p]) for p, _ in rows)
        input_ids = torch.full((len(rows), width), self._pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for r, (p, _) in enumerate(rows):
            ids = encoded[p]
            input_ids[r, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[r, width - len(ids) :] = 1
        max_new = params.max_tokens
        if self._max_positions is not None:
            max_new = max(1, min(max_new, self._max_positions - width))
        generators = []
        for _, index in rows:
            generator = torch.Generator(device=self._device)
            generator.manual_seed(sample_seed(params.seed, index))
            generators.append(generator)
        sampler = _Sampler(
            temperature=params.temperature,
            top_p=params.top_p,
            generators=generators,
            logprobs=params.logprobs,
            top_logprobs=params.top_logprobs,
        )
        stopper = _Stopper(width=width, rows=len(rows), eos=self._eos, stop=params.stop, decode=self._decode_text)
        try:
            output = self._lm.generate(
                input_ids=input_ids.to(self._device),
                attention_mask=attention.to(self._device),
                max_new_tokens=max_new,
                do_sample=False,
                num_beams=1,
                logits_processor=self._transformers.LogitsProcessorList([sampler]),
                stopping_criteria=self._transformers.StoppingCriteriaList([stopper]),
            )
        except RuntimeError as exc:  # torch failures (out of memory, device errors) are typed and chained
            raise BackendError(
                f"generate failed: {type(exc).__name__}: {exc}", endpoint=self.endpoint, retryable=False
            ) from exc
        generated = output[:, width:].cpu()
        total = generated.shape[1]
        chosen = torch.stack(sampler.chosen_logprob, dim=1).tolist() if sampler.chosen_logprob else None
        top_ids = torch.stack(sampler.top_ids, dim=1).tolist() if sampler.top_ids else None
        top_lp = torch.stack(sampler.top_logprob, dim=1).tolist() if sampler.top_logprob else None
        out: list[_Row] = []
        for r, (p, index) in enumerate(rows):
            ended = stopper.ended_at[r]
            count = ended if ended is not None else total
            tokens = generated[r, :count].tolist()
            full = self._decode_text(tokens)
            pos, which = find_stop(full, params.stop)
            text, hit = (full, False) if which is None else (full[:pos], True)
            logprobs: tuple[TokenLogprob, ...] | None = None
            if chosen is not None:
                logprobs = tuple(
                    TokenLogprob(
                        self._token(tok),
                        float(chosen[r][t]),
                        tuple((self._token(int(a)), float(b)) for a, b in zip(top_ids[r][t], top_lp[r][t], strict=True))
                        if top_ids is not None and top_lp is not None
                        else (),
                    )
                    for t, tok in enumerate(tokens)
                )
            out.append(
                _Row(
                    prompt=p,
                    index=index,
                    text=text,
                    finish="stop" if ended is not None or hit else "length",
                    prompt_tokens=len(encoded[p]),
                    completion_tokens=count,
                    logprobs=logprobs,
                    stop_sequence=which,
                )
            )
        return out

    # -- scoring --------------------------------------------------------------------------------------
    def _loglikelihood_blocking(self, prompt: tuple[Message, ...] | str, continuations: list[str]) -> list[list[float]]:
        torch = self._torch
        context = self._encode_prompt(prompt)
        tails = [list(self._tok(c, add_special_tokens=False)["input_ids"]) if c else [] for c in continuations]
        for i, tail in enumerate(tails):
            self._check_length(len(context) + len(tail), f"prompt + continuation {i}")
        results: list[list[float]] = [[] for _ in continuations]
        todo = [i for i, tail in enumerate(tails) if tail]
        for begin in range(0, len(todo), self._max_rows):
            chunk = todo[begin : begin + self._max_rows]
            seqs = [context + tails[i] for i in chunk]
            width = max(len(s) for s in seqs)
            longest = max(len(tails[i]) for i in chunk)
            input_ids = torch.full((len(seqs), width), self._pad, dtype=torch.long)
            attention = torch.zeros((len(seqs), width), dtype=torch.long)
            for r, seq in enumerate(seqs):  # left padding: every continuation ends at the last position
                input_ids[r, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                attention[r, width - len(seq) :] = 1
            kwargs: dict[str, Any] = {"attention_mask": attention.to(self._device)}
            if self._position_ids:
                kwargs["position_ids"] = (attention.cumsum(-1) - 1).clamp(min=0).to(self._device)
            if self._keep_kw:
                kwargs[self._keep_kw] = longest + 1
            try:
                logits = self._lm(input_ids=input_ids.to(self._device), **kwargs).logits
            except RuntimeError as exc:
                raise BackendError(
                    f"forward pass failed: {type(exc).__name__}: {exc}",
                    endpoint=self.endpoint,
                    retryable=False,
                ) from exc
            logits = logits[:, -(longest + 1) : -1].float()  # position j predicts the token at j + 1
            logprobs = torch.log_softmax(logits, dim=-1)
            targets = input_ids[:, width - longest :].to(self._device)
            picked = logprobs.gather(-1, targets[..., None]).squeeze(-1).cpu().tolist()
            for r, i in enumerate(chunk):
                results[i] = [float(v) for v in picked[r][longest - len(tails[i]) :]]
        return results

    # -- helpers --------------------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking torch work in a worker thread, one call at a time."""
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._closed:
                raise BackendError("the model was closed", endpoint=self.endpoint, retryable=False)
            if self._n_threads is not None:
                self._torch.set_num_threads(self._n_threads)
            with self._torch.inference_mode():
                return fn(*args)

    def _close_blocking(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            del self._lm
            if self._device.type == "cuda":
                self._torch.cuda.empty_cache()

    def _encode_prompt(self, prompt: tuple[Message, ...] | str) -> list[int]:
        if isinstance(prompt, str):
            return list(self._tok(prompt)["input_ids"])
        if not getattr(self._tok, "chat_template", None):
            raise ConfigError(
                f"{self.model} has no chat template: pass raw string prompts instead of chat messages",
                field="prompts",
            )
        messages, prefix = split_continuation(prompt)  # a trailing assistant message is continued
        text = (
            self._tok.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=True,
                tokenize=False,
            )
            + prefix
        )
        # The rendered template already holds its special tokens: do not add a second BOS.
        return list(self._tok(text, add_special_tokens=False)["input_ids"])

    def _check_length(self, tokens: int, what: str) -> None:
        if self._max_positions is not None and tokens > self._max_positions:
            raise ConfigError(
                f"{what} needs {tokens} positions but {self.model} handles at most {self._max_positions}",
                field="prompts",
            )

    def _decode_text(self, tokens: list[int]) -> str:
        return str(self._tok.decode(tokens, skip_special_tokens=True))

    def _token(self, token: int) -> str:
        text = self._token_text.get(token)
        if text is None:
            text = str(self._tok.decode([token], skip_special_tokens=False))
            self._token_text[token] = text
        return text
