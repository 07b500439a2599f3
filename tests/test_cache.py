"""The generation cache: a seeded request is generated once and replayed from disk."""

from __future__ import annotations

from pathlib import Path

from longthink.llm import Message, SamplingParams
from longthink.llm.cache import CachedLLM
from longthink.testing import RandomLLM


async def test_seeded_requests_are_replayed(tmp_path: Path) -> None:
    inner = RandomLLM({"a b": 1, "c d e": 1}, seed=1)
    llm = CachedLLM(inner, tmp_path)
    params = SamplingParams(n=3, seed=7, logprobs=True, top_logprobs=1)
    first = await llm.generate([[Message.user("q1")], "raw q2"], params)
    again = await llm.generate([[Message.user("q1")], "raw q2"], params)
    assert first == again
    assert (llm.hits, llm.misses) == (2, 2)
    assert inner.usage.requests == 1  # the second call never reached the model
    # a new prompt in a batch only generates what is missing
    await llm.generate(["raw q2", "raw q3"], params)
    assert (llm.hits, llm.misses) == (3, 3)
    assert inner.calls[-1][0] == ["raw q3"]


async def test_unseeded_and_corrupt_entries_regenerate(tmp_path: Path) -> None:
    inner = RandomLLM({"x": 1}, seed=1)
    llm = CachedLLM(inner, tmp_path)
    await llm.generate(["q"], SamplingParams())
    await llm.generate(["q"], SamplingParams())
    assert llm.hits == 0 and inner.usage.requests == 2
    await llm.generate(["q"], SamplingParams(seed=1))
    for f in tmp_path.rglob("*.json"):
        f.write_text("{not json")
    await llm.generate(["q"], SamplingParams(seed=1))
    assert inner.usage.requests == 4
