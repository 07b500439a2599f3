"""A disk cache of generations, keyed by model, prompt, sampling parameters and seed.

``CachedLLM`` wraps any backend: a request seen before (same model, prompt, params including n and seed) is
answered from disk, so a rerun, a resumed run or a new strategy over the same samples costs nothing. Only
seeded requests are cached (an unseeded request asks for fresh randomness). Entries are JSON files in a
two-level directory, written atomically; a corrupt entry is ignored and regenerated.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from longthink.llm.base import LLM, BaseLLM
from longthink.llm.types import Completion, Message, SamplingParams, TokenLogprob


def cache_key(model: str, prompt: tuple[Message, ...] | str, params: SamplingParams) -> str:
    payload = prompt if isinstance(prompt, str) else [[m.role, m.content] for m in prompt]
    blob = json.dumps([model, payload, asdict(params)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _to_json(c: Completion) -> dict[str, Any]:
    data = asdict(c)
    if c.logprobs is not None:
        data["logprobs"] = [[t.token, t.logprob, [list(a) for a in t.top]] for t in c.logprobs]
    return data


def _from_json(data: dict[str, Any]) -> Completion:
    lps = data.get("logprobs")
    logprobs = (
        None
        if lps is None
        else tuple(TokenLogprob(tok, float(lp), tuple((str(a), float(b)) for a, b in top)) for tok, lp, top in lps)
    )
    return Completion(
        text=data["text"],
        finish_reason=data["finish_reason"],
        prompt_tokens=int(data["prompt_tokens"]),
        completion_tokens=int(data["completion_tokens"]),
        latency_s=float(data["latency_s"]),
        index=int(data["index"]),
        logprobs=logprobs,
        model=data.get("model", ""),
        stop_sequence=data.get("stop_sequence"),
    )


class CachedLLM(BaseLLM):
    """Wraps ``inner``; ``hits`` and ``misses`` count prompts answered from disk or generated."""

    def __init__(self, inner: LLM, directory: Path | str) -> None:
        super().__init__(inner.model)
        self.inner = inner
        self.directory = Path(directory)
        self.hits = 0
        self.misses = 0

    @property
    def endpoint(self) -> str:
        return f"cache({self.directory}) -> {getattr(self.inner, 'endpoint', self.inner.model)}"

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def _load(self, key: str) -> list[Completion] | None:
        try:
            raw = json.loads(self._path(key).read_text())
            return [_from_json(d) for d in raw]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _store(self, key: str, completions: list[Completion]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump([_to_json(c) for c in completions], f)
        os.replace(tmp, path)

    async def _generate(
        self, prompts: Sequence[tuple[Message, ...] | str], params: SamplingParams
    ) -> list[list[Completion]]:
        if params.seed is None:
            self.misses += len(prompts)
            return await self.inner.generate(prompts, params)
        keys = [cache_key(self.inner.model, p, params) for p in prompts]
        found = [self._load(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None or len(f) != params.n]
        self.hits += len(prompts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = await self.inner.generate([prompts[i] for i in missing], params)
            for i, comps in zip(missing, fresh, strict=True):
                self._store(keys[i], comps)
                found[i] = comps
        return [f or [] for f in found]

    async def aclose(self) -> None:
        await self.inner.aclose()
