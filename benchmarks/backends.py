"""Backend throughput: tokens/s of each runnable backend at n=1 and n=8, and the overhead of longthink's
openai_compat client against the same server called directly with raw HTTP.

    .venv/bin/python benchmarks/backends.py            # full run (Qwen 0.5B, ~5 minutes on 2 cores)
    .venv/bin/python benchmarks/backends.py --quick    # SmolLM2, fewer tokens (~1 minute)

Writes benchmarks/results/backends.json (with a top-level ``summary`` and its ``provenance``) and prints a table.
Every figure is measured in this one run, side by side; the direct-vs-longthink ratio interleaves the two (ABAB...)
on identical greedy requests so that drift of the machine hits both alike. The in-process vLLM engine is measured
when ``vllm`` is installed (a GPU machine; ``--vllm-model`` names what it loads); otherwise the summary says so.

vLLM's server (its CPU build, from the environment ``python -m longthink.vllm_cpu setup`` builds; skipped with a
note when it is not built, or with ``--no-vllm-server``): the same requests through longthink and as raw HTTP,
interleaved round by round: n=1 and n=8 requests, and 16 problems solved concurrently by self-consistency with n=4
(longthink's search end to end; the raw side replays the exact request bodies longthink sent). Whether the n
siblings of a request share the prompt's prefix cache is read from vLLM's own counters.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import provenance

from longthink.llm import Message, SamplingParams
from longthink.llm.base import BaseLLM
from longthink.models import SMOLLM2_135M, ModelStore, find_spec

RESULTS = Path(__file__).resolve().parent / "results"
PROMPTS = [
    "A baker sells 23 loaves a day at $4 each. How much does she earn in a week? Think step by step.",
    "Explain in three sentences why batching helps GPU inference throughput.",
    "Write a Python function that returns the n-th Fibonacci number iteratively.",
    "List five considerations when routing delivery trucks with time windows.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model_path: Path, threads: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="bench-llama-server-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model_path), "--host", "127.0.0.1",
         "--port", str(port), "--n_threads", str(threads), "--n_threads_batch", str(threads), "--n_ctx", "4096"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited; see {log.name}")
        try:
            if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("server did not start in 120 s")


async def throughput(llm: BaseLLM, n: int, max_tokens: int, prompts: list[str]) -> dict[str, Any]:
    """Generate for each prompt (one request each, sequentially) and report completion tokens per second."""
    tokens = 0
    start = time.perf_counter()
    for i, p in enumerate(prompts):
        params = SamplingParams(n=n, max_tokens=max_tokens, temperature=0.8, seed=100 + i)
        [comps] = await llm.generate([[Message.user(p)]], params)
        if len(comps) != n:
            raise RuntimeError(f"{llm.model}: got {len(comps)} completions for n={n}")
        tokens += sum(c.completion_tokens for c in comps)
    elapsed = time.perf_counter() - start
    return {"n": n, "requests": len(prompts), "tokens": tokens, "seconds": round(elapsed, 2),
            "tokens_per_s": round(tokens / elapsed, 2)}  # fmt: skip


async def direct_vs_longthink(url: str, model: str, rounds: int, max_tokens: int) -> dict[str, Any]:
    """Same greedy chat request, alternately through raw httpx and through OpenAICompatLLM."""
    from longthink.llm.openai_compat import OpenAICompatLLM

    llm = OpenAICompatLLM([url], model=model, max_retries=0, timeout_s=300)
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPTS[0]}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "seed": 1,
    }
    direct_rates: list[float] = []
    ours_rates: list[float] = []

    async def direct(client: httpx.AsyncClient) -> float:
        t = time.perf_counter()
        r = await client.post(f"{url}/chat/completions", json=body)
        r.raise_for_status()
        return float(r.json()["usage"]["completion_tokens"]) / (time.perf_counter() - t)

    async def ours() -> float:
        t = time.perf_counter()
        [[c]] = await llm.generate(
            [[Message.user(PROMPTS[0])]], SamplingParams(max_tokens=max_tokens, temperature=0.0, seed=1)
        )
        return c.completion_tokens / (time.perf_counter() - t)

    async with httpx.AsyncClient(timeout=300) as client:
        await client.post(f"{url}/chat/completions", json=body)  # warm up the server (prompt cache etc.)
        await ours()
        for i in range(rounds):  # ABBA order so that neither side always runs first
            if i % 2 == 0:
                direct_rates.append(await direct(client))
                ours_rates.append(await ours())
            else:
                ours_rates.append(await ours())
                direct_rates.append(await direct(client))
    await llm.aclose()
    d, o = statistics.median(direct_rates), statistics.median(ours_rates)
    # Paired: each round's two requests ran back to back, so their ratio cancels the machine's drift.
    paired = statistics.median(b / a for a, b in zip(direct_rates, ours_rates, strict=True))
    return {
        "rounds": rounds,
        "direct_tokens_per_s_median": round(d, 2),
        "longthink_tokens_per_s_median": round(o, 2),
        "ratio": round(paired, 4),
        "ratio_of_medians": round(o / d, 4),
        "direct_samples": [round(x, 2) for x in direct_rates],
        "longthink_samples": [round(x, 2) for x in ours_rates],
    }


class Recording(BaseLLM):
    """Passes calls to ``inner`` and keeps every (prompt, params) it was asked, to replay them as raw HTTP."""

    def __init__(self, inner: BaseLLM) -> None:
        super().__init__(inner.model)
        self.inner = inner
        self.calls: list[tuple[Any, SamplingParams]] = []

    async def _generate(self, prompts: Any, params: SamplingParams) -> list[list[Any]]:
        self.calls.extend((p, params) for p in prompts)
        return await self.inner.generate(list(prompts), params)


async def vllm_server_section(rounds: int, max_tokens: int, quick: bool) -> dict[str, Any]:
    """longthink vs raw HTTP on one vLLM CPU server: throughput ratios per workload, and prefix-cache sharing."""
    from datasets import load_gsm8k  # benchmarks/ is on the path (see the top of this file)

    from longthink import vllm_cpu
    from longthink.llm.openai_compat import OpenAICompatLLM
    from longthink.llm.openai_wire import request_body
    from longthink.search import Problem, SearchContext, make_strategy

    # 16 GSM8K problems solved at once by self-consistency n=4: 64 sequences in flight, as a service would see
    problems = [
        Problem.from_text(p.id, p.question, answer_kind="number", max_tokens=max_tokens)
        for p in load_gsm8k(4 if quick else 16)
    ]
    prompts = PROMPTS[:2]
    workloads: dict[str, list[tuple[Any, SamplingParams]]] = {
        "n=1": [
            ([Message.user(p)], SamplingParams(n=1, max_tokens=max_tokens, temperature=0.8, seed=100 + i))
            for i, p in enumerate(prompts)
        ],
        "n=8": [
            ([Message.user(p)], SamplingParams(n=8, max_tokens=max_tokens, temperature=0.8, seed=200 + i))
            for i, p in enumerate(prompts)
        ],
    }
    server = vllm_cpu.serve()  # after everything that can fail without it: try/finally stops it
    name = server.served_name
    out: dict[str, Any] = {"model": name, "server_args": list(vllm_cpu.DEFAULT_ARGS), "workloads": {}}
    try:
        llm = OpenAICompatLLM([server.base_url], model=name, timeout_s=900, max_retries=0)
        # the concurrent search workload: record what longthink's self-consistency sends, to replay it raw.
        # Unseeded: vLLM 0.32's CPU engine died ("CPU Generator does not use offset") on 16 seeded n=4 requests
        # at once, so the two sides sample alike but not identically; the ratio is of tokens per second.
        recorder = Recording(llm)
        strategy = make_strategy("self_consistency", n=4)
        await asyncio.gather(*(strategy.solve(p, SearchContext(llm=recorder)) for p in problems))
        workloads[f"{len(problems)} concurrent problems, self-consistency n=4"] = []
        concurrent_key = next(k for k in workloads if "concurrent" in k)

        async def through_longthink(key: str) -> tuple[int, float]:
            start = time.perf_counter()
            if key == concurrent_key:
                results = await asyncio.gather(*(strategy.solve(p, SearchContext(llm=llm)) for p in problems))
                tokens = sum(r.spend.completion_tokens for r in results)
            else:
                tokens = 0
                for prompt, params in workloads[key]:  # one request at a time, like a single user
                    [comps] = await llm.generate([prompt], params)
                    tokens += sum(c.completion_tokens for c in comps)
            return tokens, time.perf_counter() - start

        async def raw(client: httpx.AsyncClient, key: str) -> tuple[int, float]:
            calls = recorder.calls if key == concurrent_key else workloads[key]

            async def one(prompt: Any, params: SamplingParams) -> int:
                normalized = tuple(prompt) if not isinstance(prompt, str) else prompt
                body = request_body(normalized, params, name)
                if params.n > 1:
                    body["n"] = params.n
                path = "/chat/completions" if not isinstance(prompt, str) else "/completions"
                r = await client.post(server.base_url + path, json=body)
                r.raise_for_status()
                return int(r.json()["usage"]["completion_tokens"])

            start = time.perf_counter()
            if key == concurrent_key:
                tokens = sum(await asyncio.gather(*(one(p, q) for p, q in calls)))
            else:
                tokens = 0
                for prompt, params in calls:
                    tokens += await one(prompt, params)
            return tokens, time.perf_counter() - start

        async with httpx.AsyncClient(timeout=900) as client:
            for key in workloads:
                pairs: list[dict[str, float]] = []
                for i in range(rounds):  # ABBA: neither side always first
                    order = ("raw", "longthink") if i % 2 == 0 else ("longthink", "raw")
                    got: dict[str, tuple[int, float]] = {}
                    for side in order:
                        got[side] = await (raw(client, key) if side == "raw" else through_longthink(key))
                    pairs.append(
                        {
                            "raw_tokens": got["raw"][0],
                            "raw_s": round(got["raw"][1], 3),
                            "longthink_tokens": got["longthink"][0],
                            "longthink_s": round(got["longthink"][1], 3),
                            "ratio": round(
                                (got["longthink"][0] / got["longthink"][1]) / (got["raw"][0] / got["raw"][1]), 4
                            ),
                        }
                    )
                    print(f"  vLLM {key} round {i + 1}: ratio {pairs[-1]['ratio']}", flush=True)
                ratios = [p["ratio"] for p in pairs]
                out["workloads"][key] = {
                    "rounds": pairs,
                    "ratio_median": round(statistics.median(ratios), 4),
                    "raw_tokens_per_s_median": round(statistics.median(p["raw_tokens"] / p["raw_s"] for p in pairs), 2),
                    "longthink_tokens_per_s_median": round(
                        statistics.median(p["longthink_tokens"] / p["longthink_s"] for p in pairs), 2
                    ),
                }
        out["prefix_cache"] = await prefix_sharing(server, name, max_tokens)
        await llm.aclose()
    finally:
        server.stop()
    return out


async def prefix_sharing(server: Any, name: str, max_tokens: int) -> dict[str, Any]:
    """Do the n siblings of one request reuse the prompt's cached prefix? vLLM's counters, for a fresh prompt."""
    from longthink.llm.openai_compat import OpenAICompatLLM

    llm = OpenAICompatLLM([server.base_url], model=name, timeout_s=900, max_retries=0)
    report: dict[str, Any] = {}
    long_context = " ".join(f"Order {k}: {k * 7 % 23} crates to depot {k % 5}." for k in range(60))
    for label, n, fan_out in (("one request with n=8", 8, False), ("8 requests with n=1", 8, True)):
        prompt = [Message.user(f"[{label}] {long_context} Which depot gets the most crates?")]
        before = server.metrics()
        if fan_out:
            await asyncio.gather(
                *(llm.generate([prompt], SamplingParams(n=1, max_tokens=16, seed=k)) for k in range(n))
            )
        else:
            await llm.generate([prompt], SamplingParams(n=n, max_tokens=16, seed=1))
        after = server.metrics()
        queries = after.get("vllm:prefix_cache_queries_total", 0) - before.get("vllm:prefix_cache_queries_total", 0)
        hits = after.get("vllm:prefix_cache_hits_total", 0) - before.get("vllm:prefix_cache_hits_total", 0)
        prompt_tokens = after.get("vllm:prompt_tokens_total", 0) - before.get("vllm:prompt_tokens_total", 0)
        report[label] = {
            "prompt_tokens": prompt_tokens,
            "prefix_cache_queries": queries,
            "prefix_cache_hits": hits,
            "hit_rate": round(hits / queries, 4) if queries else None,
        }
    await llm.aclose()
    return report


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="SmolLM2, fewer tokens: about a minute")
    ap.add_argument("--model", default=None, help="known model name or GGUF path (default: Qwen 0.5B)")
    ap.add_argument(
        "--threads", type=int, default=None, help="CPU threads for every engine (default: the engine's default)"
    )
    ap.add_argument("--no-transformers", action="store_true", help="skip the transformers backend")
    ap.add_argument("--no-vllm", action="store_true", help="skip the in-process vLLM engine")
    ap.add_argument("--vllm-model", default=None, help="what the vLLM engine loads (default: --model)")
    ap.add_argument("--no-vllm-server", action="store_true", help="skip vLLM's CPU server (longthink vs raw HTTP)")
    ap.add_argument(
        "--only-vllm-server", action="store_true", help="measure only vLLM's server (writes backends_vllm.json)"
    )
    ap.add_argument("--vllm-rounds", type=int, default=None, help="paired rounds per vLLM workload (default 4)")
    ap.add_argument("--out", type=Path, default=RESULTS / "backends.json")
    args = ap.parse_args()

    if args.only_vllm_server:  # the vLLM section alone, in its own results file
        section = await vllm_server_section(args.vllm_rounds or 2, 64, args.quick)
        ratios = {key: w["ratio_median"] for key, w in section["workloads"].items()}
        out = args.out if args.out != RESULTS / "backends.json" else RESULTS / "backends_vllm.json"
        settings = {"rounds": args.vllm_rounds or 2, "max_tokens": 64, "quick": args.quick, "vllm_server_only": True}
        result = {
            "summary": {
                "vllm_ratio_longthink_vs_raw": ratios,
                "vllm_ratio_longthink_vs_raw_min": min(ratios.values()),
                "vllm_prefix_hit_rate_n8": section["prefix_cache"]["one request with n=8"]["hit_rate"],
                "model": section["model"],
            },
            "provenance": provenance(settings),
            "vllm_server": section,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["summary"], indent=1))
        print(f"wrote {out}")
        return

    from longthink.llm.llama_cpp import LlamaCppLLM, default_threads

    args.threads = args.threads or default_threads()
    model = args.model or ("smollm2-135m-instruct" if args.quick else "qwen2.5-coder-0.5b-instruct")
    spec = find_spec(model)
    path = ModelStore().ensure(spec) if spec else Path(model)
    max_tokens = 48 if args.quick else 128
    prompts = PROMPTS[:2] if args.quick else PROMPTS
    rows: list[dict[str, Any]] = []

    async def measure(name: str, llm: BaseLLM, shown: str | None = None) -> None:
        for n in (1, 8):
            r = await throughput(llm, n, max_tokens, prompts)
            rows.append({"backend": name, "model": shown or llm.model, **r})
            print(f"  {name:<24} n={n}: {r['tokens_per_s']:7.2f} tok/s ({r['tokens']} tokens)", flush=True)

    print(f"model {model}, {args.threads} thread(s), max_tokens {max_tokens}", flush=True)
    llm: BaseLLM = LlamaCppLLM(str(path), n_threads=args.threads, n_ctx=8192, max_sequences=8)
    await measure("llama_cpp (in process)", llm)
    await llm.aclose()

    proc, url = start_server(path, args.threads)
    try:
        from longthink.llm.openai_compat import OpenAICompatLLM

        served = str(path)  # llama_cpp.server names the model by its path
        llm = OpenAICompatLLM([url], model=served, timeout_s=600)
        await measure("openai_compat (llama.cpp server)", llm, shown=model if spec else path.name)
        await llm.aclose()
        ratio = await direct_vs_longthink(url, served, rounds=4 if args.quick else 10, max_tokens=max_tokens)
        print(f"  direct vs longthink: ratio {ratio['ratio']}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    transformers_note = "skipped (--no-transformers)"
    if not args.no_transformers:
        try:
            from longthink.llm.transformers import TransformersLLM

            tpath = ModelStore().ensure(SMOLLM2_135M)  # dequantising Qwen takes minutes; SmolLM2 ~40 s
            t0 = time.perf_counter()
            llm = TransformersLLM(str(tpath), n_threads=args.threads, max_batch_sequences=8)
            transformers_note = f"SmolLM2 (loaded in {time.perf_counter() - t0:.0f} s)"
            await measure("transformers", llm)
            await llm.aclose()
        except ImportError as exc:
            transformers_note = f"not installed: {exc}"

    vllm_note = "skipped (--no-vllm)"
    if not args.no_vllm:
        if importlib.util.find_spec("vllm") is None:
            vllm_note = "not measured: vllm is not installed here (pip install 'longthink[vllm]' on a GPU machine)"
        else:
            from longthink.llm.vllm_engine import VLLMEngineLLM

            llm = VLLMEngineLLM(args.vllm_model or model)
            await measure("vllm_engine", llm)
            await llm.aclose()
            vllm_note = f"measured ({llm.model})"

    from longthink import vllm_cpu

    server_section: dict[str, Any] | None = None
    if args.no_vllm_server:
        server_note = "skipped (--no-vllm-server)"
    elif not vllm_cpu.is_ready():
        server_note = "not measured: the vllm-cpu environment is not built (python -m longthink.vllm_cpu setup)"
    else:
        print("vLLM server (CPU build): longthink vs raw HTTP", flush=True)
        server_section = await vllm_server_section(args.vllm_rounds or 2, 64, args.quick)
        server_note = f"measured ({server_section['model']}, vllm-cpu {vllm_cpu.VLLM_VERSION})"

    summary = {
        "ratio_openai_compat_vs_direct": ratio["ratio"],
        "model": model,
        "threads": args.threads,
        "max_tokens": max_tokens,
        "tokens_per_s": {f"{r['backend']} n={r['n']}": r["tokens_per_s"] for r in rows},
        "batched_speedup_llama_cpp_n8_vs_n1": round(
            next(r["tokens_per_s"] for r in rows if r["backend"].startswith("llama_cpp") and r["n"] == 8)
            / next(r["tokens_per_s"] for r in rows if r["backend"].startswith("llama_cpp") and r["n"] == 1),
            2,
        ),
        "transformers": transformers_note,
        "vllm_engine": vllm_note,
        "vllm_server": server_note,
    }
    if server_section is not None:
        for key, w in server_section["workloads"].items():
            summary[f"vllm_ratio_longthink_vs_raw {key}"] = w["ratio_median"]
        summary["vllm_ratio_longthink_vs_raw_min"] = min(
            w["ratio_median"] for w in server_section["workloads"].values()
        )
        summary["vllm_prefix_hit_rate_n8"] = server_section["prefix_cache"]["one request with n=8"]["hit_rate"]
    settings = {
        "vllm_server": server_section is not None,
        "vllm_rounds": args.vllm_rounds,
        "model": model,
        "threads": args.threads,
        "max_tokens": max_tokens,
        "prompts": len(prompts),
        "rounds": ratio["rounds"],
        "transformers": not args.no_transformers,
        "vllm": not args.no_vllm,
        "vllm_model": args.vllm_model,
        "quick": args.quick,
    }
    result = {
        "summary": summary,
        "provenance": provenance(settings),
        "rows": rows,
        "direct_vs_longthink": ratio,
        "vllm_server": server_section,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "quick": args.quick,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print()
    print("| backend | model | n | tokens | seconds | tokens/s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['model']} | {r['n']} | {r['tokens']} | {r['seconds']} | {r['tokens_per_s']} |")
    lt, direct = ratio["longthink_tokens_per_s_median"], ratio["direct_tokens_per_s_median"]
    print(
        f"\nopenai_compat through longthink / direct HTTP (median of {ratio['rounds']} paired rounds): "
        f"{ratio['ratio']} ({lt} vs {direct} tok/s)"
    )
    if server_section is not None:
        print("\n| vLLM server workload | raw tok/s | longthink tok/s | longthink / raw (median) |\n|---|---|---|---|")
        for key, w in server_section["workloads"].items():
            raw_rate, ours_rate = w["raw_tokens_per_s_median"], w["longthink_tokens_per_s_median"]
            print(f"| {key} | {raw_rate} | {ours_rate} | {w['ratio_median']} |")
        for label, c in server_section["prefix_cache"].items():
            hits, queries = c["prefix_cache_hits"], c["prefix_cache_queries"]
            print(f"prefix cache, {label}: {hits:.0f} of {queries:.0f} prompt tokens hit ({c['hit_rate']})")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    asyncio.run(main())
