"""Backends by name: an explicit registry, and ``build_llm`` that makes one from settings."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from longthink.config import Settings
from longthink.errors import ConfigError
from longthink.llm.base import BaseLLM


def _llama_cpp(s: Settings) -> BaseLLM:
    from longthink.llm.llama_cpp import LlamaCppLLM

    return LlamaCppLLM(
        s.model, n_threads=s.n_threads, n_ctx=s.n_ctx, max_sequences=s.max_sequences, cache_dir=s.cache_dir
    )


def _openai_compat(s: Settings) -> BaseLLM:
    from longthink.llm.openai_compat import OpenAICompatLLM

    if not s.endpoints:
        raise ConfigError(
            "the openai_compat backend needs at least one endpoint (LONGTHINK_ENDPOINTS)", field="endpoints"
        )
    from longthink.models import find_spec

    served = None if find_spec(s.model) else s.model  # a local model name means "ask the server"
    return OpenAICompatLLM(
        s.endpoints,
        model=served,
        api_key=s.api_key.get_secret_value() if s.api_key else None,
        timeout_s=s.timeout_s,
        max_retries=s.max_retries,
        max_concurrency=s.max_concurrency,
    )


def _transformers(s: Settings) -> BaseLLM:
    from longthink.llm.transformers import TransformersLLM
    from longthink.models import find_spec, resolve_model_path

    model = str(resolve_model_path(s.model, s.cache_dir)) if find_spec(s.model) else s.model
    return TransformersLLM(model, device=s.device, n_threads=s.n_threads, max_batch_sequences=s.max_sequences)


def _vllm_engine(s: Settings) -> BaseLLM:
    from longthink.llm.vllm_engine import VLLMEngineLLM

    return VLLMEngineLLM(s.model)


BACKENDS: dict[str, Callable[[Settings], BaseLLM]] = {
    "llama_cpp": _llama_cpp,
    "openai_compat": _openai_compat,
    "transformers": _transformers,
    "vllm_engine": _vllm_engine,
}


def build_llm(settings: Settings) -> BaseLLM:
    """The backend the settings ask for (``auto``: endpoints if configured, else the embedded engine)."""
    name = settings.resolved_backend
    factory = BACKENDS.get(name)
    if factory is None:
        near = difflib.get_close_matches(name, BACKENDS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"unknown backend {name!r}{hint} (known: {', '.join(BACKENDS)})", field="backend")
    return factory(settings)


def build_judge_llm(settings: Settings) -> BaseLLM | None:
    """A second backend for ``settings.judge_model`` (same backend kind and settings, that model), or None when
    no judge model is set or it is the policy model itself (then the policy model judges)."""
    from longthink.models import find_spec

    judge = settings.judge_model
    if judge is None or judge == settings.model:
        return None
    spec = find_spec(judge)
    if spec is not None and spec is find_spec(settings.model):  # an alias of the policy model
        return None
    return build_llm(settings.model_copy(update={"model": judge, "judge_model": None}))


def llm_from_factory(spec: str) -> BaseLLM:
    """The backend a factory makes: ``spec`` is ``"package.module:callable"`` (called with no arguments), e.g.
    ``longthink.testing:arithmetic_llm``. How ``longthink serve --llm`` and ``longthink mcp --llm`` take a backend
    of your own (a client of an in-house gateway, a test double) instead of the configured one."""
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--llm wants 'module:callable', not {spec!r}", field="llm")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the LLM factory {spec!r}: {exc}", field="llm") from None
    llm = factory()
    if not isinstance(llm, BaseLLM):
        raise ConfigError(f"{spec} returned {type(llm).__name__}, not a longthink LLM (BaseLLM)", field="llm")
    return llm
