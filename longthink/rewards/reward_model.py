"""Learned reward models: a sequence-classification model run in process with transformers, or served by vLLM.

Both turn a (problem, candidate) pair into one value per candidate: for a one-label model the sigmoid of
its logit, for several labels the probability of the last label (by convention the "good" class).
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx

from longthink.errors import BackendError, ConfigError
from longthink.llm.transformers import import_torch_transformers
from longthink.search.types import Candidate, Problem, Score

Render = Callable[[Problem, Candidate], str]


def plain_pair(problem: Problem, candidate: Candidate) -> str:
    """The default text of a (question, answer) pair for models without a chat template."""
    return f"{problem.question}\n\n{candidate.text}"


class TransformersRewardModel:
    """A ``*ForSequenceClassification`` reward model from a local directory (``save_pretrained`` output).

    The input is the problem's chat prompt followed by the candidate as the assistant's reply, rendered with
    the tokenizer's chat template when it has one, else ``"question\\n\\nanswer"``. Candidates are scored in
    batched forward passes of at most ``max_batch`` rows (right-padded, so every row keeps its positions;
    inputs longer than the model's context keep their end), in a worker thread, one call at a time.
    ``n_threads`` sets torch's process-wide intra-op thread count; nothing is ever downloaded.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        device: str = "cpu",
        n_threads: int | None = None,
        max_batch: int = 16,
    ) -> None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ConfigError(f"max_batch must be an integer >= 1, got {max_batch!r}", field="max_batch")
        if n_threads is not None and (not isinstance(n_threads, int) or n_threads < 1):
            raise ConfigError(f"n_threads must be an integer >= 1 or None, got {n_threads!r}", field="n_threads")
        directory = Path(path).expanduser()
        if not (directory / "config.json").is_file():
            raise ConfigError(
                f"TransformersRewardModel: {directory} is not a model directory with config.json", field="path"
            )
        self._torch, transformers = import_torch_transformers("TransformersRewardModel")
        torch = self._torch
        self._source = str(directory)
        self._name = name or f"rm:{directory.name}"
        self._n_threads = n_threads
        self._max_batch = max_batch
        self._lock = threading.Lock()
        try:
            self._device = torch.device(device)
        except RuntimeError as exc:
            raise ConfigError(f"invalid torch device {device!r}: {exc}", field="device") from exc
        if n_threads is not None:
            torch.set_num_threads(n_threads)
        try:
            tok = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(directory, local_files_only=True)
        except Exception as exc:  # any loader failure: re-raised, typed, with the cause chained
            raise BackendError(
                f"transformers could not load the reward model: {type(exc).__name__}: {exc}",
                endpoint=self._source,
                retryable=False,
            ) from exc
        if tok.pad_token_id is None:
            if tok.eos_token_id is None:
                raise ConfigError(f"the tokenizer in {directory} has neither a pad nor an eos token", field="path")
            tok.pad_token = tok.eos_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tok.pad_token_id
        tok.padding_side = "right"
        tok.truncation_side = "left"
        self._tok = tok
        self._model = model.to(self._device).eval()
        self._templated = bool(getattr(tok, "chat_template", None))
        limit = getattr(model.config, "max_position_embeddings", None)
        self._max_length: int | None = limit if isinstance(limit, int) and limit > 0 else None

    @property
    def name(self) -> str:
        return self._name

    @property
    def endpoint(self) -> str:
        return f"TransformersRewardModel({self._source})"

    def render(self, problem: Problem, candidate: Candidate) -> str:
        """The model input for one candidate."""
        if not self._templated:
            return plain_pair(problem, candidate)
        messages = [{"role": m.role, "content": m.content} for m in problem.prompt]
        messages.append({"role": "assistant", "content": candidate.text})
        return str(self._tok.apply_chat_template(messages, tokenize=False))

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        if not candidates:
            return []
        texts = [self.render(problem, c) for c in candidates]
        rows = await asyncio.to_thread(self._forward_all, texts)
        return [Score(self._name, value, rationale=f"reward logit {logit:.4f}") for value, logit in rows]

    def _forward_all(self, texts: list[str]) -> list[tuple[float, float]]:
        torch = self._torch
        out: list[tuple[float, float]] = []
        with self._lock, torch.inference_mode():
            if self._n_threads is not None:
                torch.set_num_threads(self._n_threads)
            for start in range(0, len(texts), self._max_batch):
                batch = self._tok(
                    texts[start : start + self._max_batch],
                    padding=True,
                    truncation=self._max_length is not None,
                    max_length=self._max_length,
                    add_special_tokens=not self._templated,  # a rendered template holds its special tokens
                    return_tensors="pt",
                ).to(self._device)
                logits = self._model(**batch).logits.float()
                if logits.shape[-1] == 1:
                    raw = logits[:, 0]
                    values = torch.sigmoid(raw)
                else:
                    raw = logits[:, -1]
                    values = torch.softmax(logits, dim=-1)[:, -1]
                out.extend(zip(values.cpu().tolist(), raw.cpu().tolist(), strict=True))
        return [(float(v), float(r)) for v, r in out]


class PoolingRewardClient:
    """A reward or classification model served by vLLM in pooling mode, through its ``/classify`` or
    ``/pooling`` route (not part of the OpenAI API). All candidates go in one request.

    ``base_url`` is the server root (a trailing ``/v1`` is dropped: these routes live beside it). Each input is
    ``render(problem, candidate)``, by default ``"question\\n\\nanswer"``; a model trained on a chat template
    needs a ``render`` that applies it. ``/classify`` answers ``data[i].probs``: the value is the single
    probability of a one-label model, else the last label's. ``/pooling`` answers ``data[i].data``, a number,
    a vector or one vector per token: the value is the last entry of the (last) vector, as the model produced
    it (a raw reward unless the model applies an activation). A reply that does not have this shape raises
    ``BackendError`` naming the URL.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        endpoint: Literal["/classify", "/pooling"] = "/classify",
        api_key: str | None = None,
        timeout_s: float = 60.0,
        name: str | None = None,
        render: Render | None = None,
    ) -> None:
        if endpoint not in ("/classify", "/pooling"):
            raise ConfigError(f"endpoint must be '/classify' or '/pooling', got {endpoint!r}", field="endpoint")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must be an http(s) URL, got {base_url!r}", field="base_url")
        if timeout_s <= 0:
            raise ConfigError(f"timeout_s must be > 0, got {timeout_s!r}", field="timeout_s")
        root = base_url.rstrip("/")
        root = root.removesuffix("/v1")
        self._url = root + endpoint
        self._endpoint = endpoint
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout_s
        self._name = name or f"rm:{model}"
        self._render = render or plain_pair

    @property
    def name(self) -> str:
        return self._name

    @property
    def url(self) -> str:
        return self._url

    async def score(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Score]:
        if not candidates:
            return []
        body = {"model": self._model, "input": [self._render(problem, c) for c in candidates]}
        payload = await self._post(body)
        items = self._items(payload, len(candidates))
        key = "probs" if self._endpoint == "/classify" else "data"
        scores = []
        for i, item in enumerate(items):
            raw = item.get(key, item.get("probabilities")) if key == "probs" else item.get(key)
            value = self._value(raw, i)
            scores.append(Score(self._name, value, rationale=f"{self._endpoint} {key}: {_brief(raw)}"))
        return scores

    async def _post(self, body: dict[str, Any]) -> Any:
        try:
            async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client:
                response = await client.post(self._url, json=body)
        except httpx.TimeoutException as exc:
            raise BackendError(f"timed out after {self._timeout} s: {exc}", endpoint=self._url, retryable=True) from exc
        except httpx.TransportError as exc:
            raise BackendError(f"{type(exc).__name__}: {exc}", endpoint=self._url, retryable=True) from exc
        if response.status_code != 200:
            status = response.status_code
            raise BackendError(
                f"HTTP {status}: {response.text[:300]}",
                endpoint=self._url,
                retryable=status == 429 or status >= 500,
                status=status,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(
                f"the reply is not JSON: {response.text[:200]!r}", endpoint=self._url, retryable=False
            ) from exc

    def _bad(self, why: str) -> BackendError:
        return BackendError(f"malformed {self._endpoint} reply: {why}", endpoint=self._url, retryable=False)

    def _items(self, payload: Any, n: int) -> list[dict[str, Any]]:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise self._bad(f"no 'data' list in {_brief(payload)}")
        if len(data) != n:
            raise self._bad(f"{len(data)} results for {n} inputs")
        items: list[dict[str, Any] | None] = [None] * n
        for position, item in enumerate(data):
            if not isinstance(item, dict):
                raise self._bad(f"result {position} is not an object: {_brief(item)}")
            index = item.get("index", position)
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n or items[index] is not None:
                raise self._bad(f"result {position} has a bad or repeated index {index!r}")
            items[index] = item
        return [item for item in items if item is not None]

    def _value(self, raw: Any, i: int) -> float:
        if self._endpoint == "/pooling" and isinstance(raw, list) and raw and isinstance(raw[-1], list):
            raw = raw[-1]  # one vector per token: the last token's
        if _is_number(raw):
            value = float(raw)
        elif isinstance(raw, list) and raw and all(_is_number(v) for v in raw):
            value = float(raw[-1])
        else:
            raise self._bad(f"result {i} has no numbers where expected: {_brief(raw)}")
        if not math.isfinite(value):
            raise self._bad(f"result {i} is not finite: {value!r}")
        return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _brief(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
