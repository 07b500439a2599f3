"""In-process vLLM engine for users with a GPU: vLLM's async engine (``AsyncLLMEngine``, V1 ``AsyncLLM``).

Every prompt of a batch is one engine request carrying ``n``; all requests are submitted concurrently and
vLLM's scheduler batches them (and shares prompt prefixes when prefix caching is on). Chat prompts are
rendered with the engine's tokenizer and sent as token ids.

vLLM is an optional dependency built for CUDA: ``pip install 'longthink[vllm]'``. Without it, run
``vllm serve MODEL`` and point the ``openai_compat`` backend at it.

The conversions between our types and vLLM's (:func:`vllm_sampling_kwargs`, :func:`engine_prompt`,
:func:`completions_from_output`) import nothing from vLLM, so they are tested without it.

Semantics: vLLM reports log-probabilities of the raw model distribution (its default ``raw_logprobs``
mode, before temperature and top-p), like our other backends; with a seed, sample ``i`` of a request uses
seed ``seed + i``. ``completion_tokens`` counts the generated token ids, the end-of-sequence token included.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from longthink.errors import BackendError, ConfigError
from longthink.llm.base import BaseLLM, split_continuation
from longthink.llm.types import Completion, FinishReason, Message, SamplingParams, TokenLogprob
from longthink.models import ModelStore, find_spec

INSTALL_HINT = "pip install 'longthink[vllm]'"

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length"}


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:  # the optional dependency is missing
        raise ConfigError(
            f"VLLMEngineLLM needs vLLM in this process ({exc.name or exc} is missing): {INSTALL_HINT} "
            "(vLLM's registry build needs a CUDA GPU). Alternatively run `vllm serve MODEL` on a GPU machine "
            "and use the openai_compat backend (OpenAICompatLLM) against its /v1 endpoint.",
            field="backend",
        ) from exc
    return vllm


# -- pure conversions (no vLLM import) -----------------------------------------------------------------


def vllm_sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` equivalent to ours.

    vLLM's ``logprobs=k`` returns the sampled token's log-probability plus the top ``k`` alternatives;
    ``logprobs=0`` returns the sampled token's only.
    """
    kwargs: dict[str, Any] = {
        "n": params.n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "stop": list(params.stop),
        "seed": params.seed,
    }
    if params.logprobs:
        kwargs["logprobs"] = params.top_logprobs
    return kwargs


def engine_prompt(prompt: tuple[Message, ...] | str, tokenizer: Any) -> dict[str, Any]:
    """The engine input for one prompt: raw text as is, chat messages rendered to token ids.

    The chat template's text already holds its special tokens, so it is encoded without adding more (no
    second BOS).
    """
    if isinstance(prompt, str):
        return {"prompt": prompt}
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            "the model's tokenizer has no chat template: pass raw string prompts instead of chat messages",
            field="prompts",
        )
    messages, prefix = split_continuation(prompt)  # a trailing assistant message is continued
    text = (
        tokenizer.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages], add_generation_prompt=True, tokenize=False
        )
        + prefix
    )
    return {"prompt_token_ids": list(tokenizer.encode(text, add_special_tokens=False))}


def _token_text(token_id: int, entry: Any, token_text: Callable[[int], str] | None) -> str:
    decoded = getattr(entry, "decoded_token", None)
    if decoded is not None:
        return str(decoded)
    return token_text(token_id) if token_text is not None else ""


def _rank_key(item: tuple[int, Any]) -> tuple[int, float]:
    rank = getattr(item[1], "rank", None)
    return (rank if isinstance(rank, int) else 1 << 30, -float(item[1].logprob))


def completions_from_output(
    output: Any,
    params: SamplingParams,
    *,
    latency_s: float,
    model: str,
    endpoint: str = "vllm",
    token_text: Callable[[int], str] | None = None,
) -> list[Completion]:
    """Our completions from one vLLM ``RequestOutput`` (``prompt_token_ids`` and ``outputs``).

    Each ``CompletionOutput`` (``index``, ``text``, ``token_ids``, ``logprobs``, ``finish_reason``) becomes
    one ``Completion``. ``logprobs`` is one mapping per generated token, ``token id -> Logprob(logprob, rank,
    decoded_token)``, holding the sampled token and the top alternatives. ``token_text`` names a token whose
    ``decoded_token`` is missing. An unfinished or aborted output raises ``BackendError``.
    """
    prompt_tokens = len(output.prompt_token_ids or ())
    outputs = sorted(output.outputs, key=lambda o: int(o.index))
    if len(outputs) != params.n:
        raise BackendError(f"vLLM returned {len(outputs)} outputs for n={params.n}", endpoint=endpoint, retryable=False)
    completions: list[Completion] = []
    for out in outputs:
        reason = out.finish_reason
        finish = _FINISH.get(str(reason)) if reason is not None else None
        if finish is None:
            raise BackendError(
                f"vLLM output {out.index} ended with finish_reason={reason!r}"
                + (" (the request was aborted)" if reason == "abort" else ""),
                endpoint=endpoint,
                retryable=reason == "abort",
            )
        token_ids = list(out.token_ids)
        logprobs: tuple[TokenLogprob, ...] | None = None
        if params.logprobs:
            logprobs = _logprobs(out, token_ids, params.top_logprobs, endpoint, token_text)
        completions.append(
            Completion(
                text=str(out.text),
                finish_reason=finish,
                prompt_tokens=prompt_tokens,
                completion_tokens=len(token_ids),
                latency_s=latency_s,
                index=int(out.index),
                logprobs=logprobs,
                model=model,
                # vLLM names the matched stop string in stop_reason (an int is a stop token id).
                stop_sequence=stop if isinstance(stop := getattr(out, "stop_reason", None), str) else None,
            )
        )
    return completions


def _logprobs(
    out: Any, token_ids: list[int], top: int, endpoint: str, token_text: Callable[[int], str] | None
) -> tuple[TokenLogprob, ...]:
    positions = out.logprobs
    if positions is None or len(positions) != len(token_ids):
        got = "none" if positions is None else str(len(positions))
        raise BackendError(
            f"vLLM returned {got} logprob positions for {len(token_ids)} tokens",
            endpoint=endpoint,
            retryable=False,
        )
    result: list[TokenLogprob] = []
    for token_id, position in zip(token_ids, positions, strict=True):
        entries: Mapping[int, Any] = position
        chosen = entries.get(token_id)
        if chosen is None:
            raise BackendError(f"vLLM logprobs miss the sampled token {token_id}", endpoint=endpoint, retryable=False)
        alternatives: tuple[tuple[str, float], ...] = ()
        if top:
            ranked = sorted(entries.items(), key=_rank_key)[:top]
            alternatives = tuple((_token_text(t, e, token_text), float(e.logprob)) for t, e in ranked)
        result.append(TokenLogprob(_token_text(token_id, chosen, token_text), float(chosen.logprob), alternatives))
    return tuple(result)


# -- the backend ---------------------------------------------------------------------------------------


class VLLMEngineLLM(BaseLLM):
    """vLLM's async engine in this process.

    ``model`` is a Hugging Face model directory or id that vLLM can load (a known longthink model name is
    resolved to its verified GGUF file, which vLLM loads experimentally). ``engine_kwargs`` are passed on to
    ``vllm.AsyncEngineArgs`` as they are (for example ``enforce_eager=True``, ``quantization=...``).

    The engine belongs to the event loop that first uses it: call it from one loop (all async callers, or
    only the sync wrappers).
    """

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        tensor_parallel_size: int = 1,
        enable_prefix_caching: bool = True,
        engine_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not (0 < gpu_memory_utilization <= 1):
            raise ConfigError(
                f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization!r}",
                field="gpu_memory_utilization",
            )
        if max_model_len is not None and (not isinstance(max_model_len, int) or max_model_len < 1):
            raise ConfigError(f"max_model_len must be a positive integer, got {max_model_len!r}", field="max_model_len")
        if not isinstance(tensor_parallel_size, int) or tensor_parallel_size < 1:
            raise ConfigError(
                f"tensor_parallel_size must be an integer >= 1, got {tensor_parallel_size!r}",
                field="tensor_parallel_size",
            )
        self._vllm = vllm = _import_vllm()
        spec = find_spec(model)
        source = str(ModelStore().ensure(spec)) if spec is not None else model
        super().__init__(spec.name if spec is not None else model)
        self._source = source
        args = vllm.AsyncEngineArgs(
            model=source,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            tensor_parallel_size=tensor_parallel_size,
            enable_prefix_caching=enable_prefix_caching,
            **dict(engine_kwargs or {}),
        )
        try:
            self._engine: Any = vllm.AsyncLLMEngine.from_engine_args(args)
        except Exception as exc:  # any engine start failure: re-raised, typed, with the cause chained
            raise BackendError(
                f"vLLM could not start the engine: {type(exc).__name__}: {exc}",
                endpoint=source,
                retryable=False,
            ) from exc
        self._tokenizer: Any = None
        self._closed = False

    @property
    def endpoint(self) -> str:
        return f"VLLMEngineLLM({self._source})"

    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        if self._closed:
            raise BackendError("the engine was shut down", endpoint=self.endpoint, retryable=False)
        from vllm.sampling_params import RequestOutputKind

        tokenizer = await self._get_tokenizer()
        inputs = [engine_prompt(p, tokenizer) for p in prompts]
        # vLLM refuses n > 1 with greedy sampling: n greedy samples are n requests of one (same prefix, cached)
        copies = params.n if params.temperature == 0 and params.n > 1 else 1
        each = replace(params, n=1) if copies > 1 else params
        sampling = self._vllm.SamplingParams(**vllm_sampling_kwargs(each), output_kind=RequestOutputKind.FINAL_ONLY)
        tasks = [asyncio.ensure_future(self._request(i, sampling, each)) for i in inputs for _ in range(copies)]
        try:
            done = list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
        if copies == 1:
            return done
        return [[replace(done[p * copies + k][0], index=k) for k in range(copies)] for p in range(len(inputs))]

    async def _request(self, prompt: dict[str, Any], sampling: Any, params: SamplingParams) -> list[Completion]:
        start = time.perf_counter()
        final: Any = None
        try:
            async for output in self._engine.generate(prompt, sampling, request_id=f"longthink-{uuid.uuid4().hex}"):
                final = output
        except ValueError as exc:  # vLLM's request validation (prompt too long, bad parameter)
            raise ConfigError(f"vLLM rejected the request: {exc}", field="prompts") from exc
        except Exception as exc:  # engine failures: re-raised, typed, with the cause chained
            raise BackendError(
                f"vLLM request failed: {type(exc).__name__}: {exc}", endpoint=self.endpoint, retryable=False
            ) from exc
        if final is None:
            raise BackendError("vLLM returned no output", endpoint=self.endpoint, retryable=True)
        return completions_from_output(
            final,
            params,
            latency_s=time.perf_counter() - start,
            model=self.model,
            endpoint=self.endpoint,
            token_text=self._decode_token,
        )

    async def _get_tokenizer(self) -> Any:
        if self._tokenizer is None:
            tokenizer = self._engine.get_tokenizer()
            if inspect.isawaitable(tokenizer):  # older vLLM versions: a coroutine
                tokenizer = await tokenizer
            self._tokenizer = tokenizer
        return self._tokenizer

    def _decode_token(self, token_id: int) -> str:
        if self._tokenizer is None:
            return ""
        return str(self._tokenizer.decode([token_id], skip_special_tokens=False))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._engine.shutdown()
