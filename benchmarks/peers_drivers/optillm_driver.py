"""Runs optillm 0.4.0's approaches inside its own virtual environment for ``benchmarks/peers.py`` (never imported
by the project).

Protocol (JSON lines, as ``its_hub_driver.py``): the first stdin line is ``{"base_url", "model", "max_tokens"}``;
each later line a task ``{"id", "messages", "algorithm", "budget"}`` with ``algorithm`` one of
``self_consistency``, ``bon``, ``mcts``; one JSON line answers each: ``{"id", "text", "wall_s",
"completion_tokens", "error"}`` (``completion_tokens`` is optillm's own count).

The approaches are called the way optillm's proxy calls them (``execute_single_approach`` after
``parse_conversation``, with the request's ``max_tokens``), with one change of parameter: the proxy runs
self-consistency with a fixed 5 samples and best-of-N with the server-wide ``--best-of-n``, so the driver sets
``num_samples`` / ``best_of_n`` to the task's budget. MCTS runs at the proxy's defaults (2 simulations, depth 1,
exploration 0.2). The OpenAI client talks straight to the vLLM server, as the proxy's would with ``--base-url``.
"""

from __future__ import annotations

import json
import logging
import sys
import time


def main() -> None:
    logging.disable(logging.WARNING)
    from openai import OpenAI
    from optillm import server
    from optillm.self_consistency import AdvancedSelfConsistency

    config = json.loads(sys.stdin.readline())
    client = OpenAI(api_key="none", base_url=config["base_url"], timeout=1800.0, max_retries=0)
    model = config["model"]
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        task = json.loads(line)
        out: dict[str, object] = {"id": task["id"], "text": None, "error": None}
        request_config = {"max_tokens": config["max_tokens"], "n": 1, "stream": False}
        start = time.perf_counter()
        try:
            system_prompt, query, _ = server.parse_conversation(task["messages"])
            budget = int(task["budget"])
            if task["algorithm"] == "self_consistency":
                sc = AdvancedSelfConsistency(client, model, num_samples=budget, request_config=request_config)
                result = sc.evaluate(system_prompt, query)["aggregated_result"]
                clusters = result["clusters"]
                text = clusters[0]["answer"] if clusters else "No consistent answer found."
                tokens = sc.self_consistency_completion_tokens
                out["responses"] = result["total_responses"]
            else:
                approach = {"bon": "bon", "mcts": "mcts"}[task["algorithm"]]
                server.server_config["best_of_n"] = budget
                text, tokens = server.execute_single_approach(
                    approach, system_prompt, query, client, model, request_config
                )
            out["text"] = text if isinstance(text, str) else json.dumps(text)
            out["completion_tokens"] = tokens
        except Exception as exc:  # noqa: BLE001 - a peer's failure is a result row, reported with its type
            out["error"] = f"{type(exc).__name__}: {exc}"
        out["wall_s"] = time.perf_counter() - start
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
