"""Runs its_hub 1.2.0 inside its own virtual environment for ``benchmarks/peers.py`` (never imported by the project).

Protocol (JSON lines): the first line on stdin is the configuration
``{"base_url", "model", "max_tokens", "temperature", "repo"}``; every later line is a task
``{"id", "messages", "algorithm", "budget"}`` with ``algorithm`` one of ``self_consistency``, ``best_of_n``,
``adaptive_self_consistency``. One JSON line answers each task: ``{"id", "text", "wall_s", "calls",
"prompt_tokens", "completion_tokens", "responses", "error"}``; ``calls`` and the token counts are its_hub's own
usage accounting (generation only; the judge's calls are counted by the server's meter).

Self-consistency votes on the answers that longthink's extractor reads out of each response (the
``consistency_space_projection_func`` its_hub asks for; its default, exact text, would vote on whole texts), loaded
from the repository's ``longthink/answers.py`` without importing the ``longthink`` package. Best-of-N uses the
judge its_hub ships (``LLMJudge``, the same model on the same server, its default prompt and JSON schema).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
import types
from pathlib import Path


def load_extractor(repo: str):
    """``longthink.answers.extract_answer`` from the checkout at ``repo``, without running ``longthink/__init__``."""
    root = Path(repo) / "longthink"
    pkg = types.ModuleType("longthink")
    pkg.__path__ = [str(root)]
    sys.modules.setdefault("longthink", pkg)
    return importlib.import_module("longthink.answers").extract_answer


async def main() -> None:
    from its_hub import AdaptiveSelfConsistency, BestOfN, LLMJudge, OpenAICompatibleLanguageModel, SelfConsistency
    from its_hub.api import ChatMessage, GenerationUsage

    config = json.loads(sys.stdin.readline())
    extract = load_extractor(config["repo"])

    def project(text: str) -> str:
        value = extract(text, "number").value
        return value if value is not None else "<no answer>" + text.strip()

    lm = OpenAICompatibleLanguageModel(
        endpoint=config["base_url"],
        api_key="none",
        model_name=config["model"],
        max_completion_tokens=config["max_tokens"],
        temperature=config["temperature"],
    )
    judge_lm = OpenAICompatibleLanguageModel(
        endpoint=config["base_url"],
        api_key="none",
        model_name=config["model"],
        max_completion_tokens=config["max_tokens"],
        temperature=0.0,
    )
    algorithms = {
        "self_consistency": SelfConsistency(consistency_space_projection_func=project),
        "adaptive_self_consistency": AdaptiveSelfConsistency(consistency_space_projection_func=project),
        "best_of_n": BestOfN(LLMJudge(judge_lm)),
    }
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        out: dict[str, object] = {"id": task["id"], "text": None, "error": None}
        start = time.perf_counter()
        try:
            prompt = [ChatMessage(role=m["role"], content=m["content"]) for m in task["messages"]]
            result = await algorithms[task["algorithm"]].ainfer(
                lm, prompt, budget=int(task["budget"]), return_response_only=False
            )
            out["text"] = result.the_one.get("content") or ""
            out["responses"] = len(result.responses)
            usage = getattr(result, "usage", None) or GenerationUsage()
            out.update(
                calls=usage.num_calls, prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens
            )
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a result row, reported with its type
            out["error"] = f"{type(exc).__name__}: {exc}"
        out["wall_s"] = time.perf_counter() - start
        print(json.dumps(out), flush=True)
    await lm.close()
    await judge_lm.close()


if __name__ == "__main__":
    asyncio.run(main())
